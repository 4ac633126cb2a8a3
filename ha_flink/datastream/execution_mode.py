"""`RuntimeExecutionMode`, as in `pyflink.datastream.execution_mode` (`execution.runtime-mode`)."""

from __future__ import annotations

import enum


class RuntimeExecutionMode(enum.Enum):
    STREAMING = 0
    BATCH = 1
    AUTOMATIC = 2
