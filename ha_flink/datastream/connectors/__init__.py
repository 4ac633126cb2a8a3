"""Sources and sinks, named as in `pyflink.datastream.connectors`."""

from __future__ import annotations

from ha_flink.datastream.connectors.base import Boundedness, Sink, Source

__all__ = ["Boundedness", "Sink", "Source"]
