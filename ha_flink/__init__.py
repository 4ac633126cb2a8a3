"""ha-flink: Apache Flink's standalone cluster with ZooKeeper high availability, in Python."""

from __future__ import annotations

__version__ = "0.1.0"
# The Apache Flink release whose API (REST paths and shapes, CLI, configuration keys, PyFlink) ha-flink
# serves: what REST reports as `flink-version`, with ha-flink's own version as the revision.
FLINK_VERSION = "2.3.0"
FLINK_REVISION = f"ha-flink {__version__}"
