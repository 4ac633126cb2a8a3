"""PyFlink's `pyflink.metrics`: the interfaces of user metrics (metricbase.py) and ha-flink's implementation
of them (groups.py), which the runtime reports through the Prometheus endpoint and the REST API. A layer of
its own, below `core` (whose RuntimeContext answers a MetricGroup)."""

from ha_flink.metrics.metricbase import Counter, Distribution, Meter, Metric, MetricGroup

__all__ = ["MetricGroup", "Metric", "Counter", "Meter", "Distribution"]
