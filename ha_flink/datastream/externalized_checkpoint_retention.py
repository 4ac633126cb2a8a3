"""`ExternalizedCheckpointRetention`, as in `pyflink.datastream.externalized_checkpoint_retention`: what
happens to a job's checkpoints when it is cancelled (`execution.checkpointing.externalized-checkpoint-
retention`). A FAILED job keeps them unless NO_EXTERNALIZED_CHECKPOINTS (see CheckpointingOptions)."""

from __future__ import annotations

import enum

__all__ = ["ExternalizedCheckpointRetention"]


class ExternalizedCheckpointRetention(enum.Enum):
    DELETE_ON_CANCELLATION = 0
    RETAIN_ON_CANCELLATION = 1
    NO_EXTERNALIZED_CHECKPOINTS = 2
