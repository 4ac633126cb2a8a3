"""Metrics: meters over counters (meter.py) and the Prometheus reporter every daemon serves
(prometheus.py), with Flink's metric names."""
