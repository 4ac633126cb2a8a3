"""`CheckpointingMode`, as in `pyflink.datastream.checkpointing_mode` (`execution.checkpointing.mode`)."""

from __future__ import annotations

import enum


class CheckpointingMode(enum.Enum):
    """EXACTLY_ONCE aligns barriers; AT_LEAST_ONCE lets records of channels that delivered their barrier
    pass before the others' arrive."""

    EXACTLY_ONCE = 0
    AT_LEAST_ONCE = 1
