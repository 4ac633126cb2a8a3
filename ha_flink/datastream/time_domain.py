"""`TimeDomain`, as in `pyflink.datastream.time_domain`: whether a firing timer is of event or processing time."""

from __future__ import annotations

from ha_flink.core.functions import TimeDomain

__all__ = ["TimeDomain"]
