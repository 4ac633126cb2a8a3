"""PyFlink API compatibility: PyFlink 2.3's public names and signatures against ha-flink's."""
