"""ha-flink: Apache Flink's standalone cluster with ZooKeeper high availability, in Python."""

from __future__ import annotations

__version__ = "0.1.0"
