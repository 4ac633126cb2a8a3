"""The checkpoint barrier: injected by the sources, carried in the record stream between batches. A task
that has seen the barrier of checkpoint n on every input has seen exactly the records before it: its
state then is its part of checkpoint n."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class CheckpointBarrier:
    checkpoint_id: int
    timestamp_ms: int
    savepoint: bool = False  # state in the canonical format, self-contained (no shared files)
    # stop-with-savepoint --drain: a source ends its input before it takes this savepoint, so every
    # operator flushes (event time reaches its end, windows fire) and the savepoint is the final checkpoint
    drain: bool = False
    # stop-with-savepoint: a source emits nothing after this barrier (Flink's synchronous savepoint), so no
    # record reaches a sink after the state the savepoint holds; it resumes if the savepoint fails
    stop: bool = False


@dataclass
class TaskSnapshot:
    """One subtask's part of a checkpoint: its source position (if a source) and each chained operator's
    state, in chain order, pickled (after the asynchronous part: state files uploaded)."""

    checkpoint_id: int
    vertex_id: str
    subtask_index: int
    data: bytes
    shared_urls: list[str] = field(default_factory=list)  # shared files the snapshot references
    shared_bytes: int = 0  # their size
    uploaded_bytes: int = 0  # the size of those uploaded for this checkpoint (incremental: the new ones)
    restore_from_all: bool = False  # union or broadcast operator state: a restore reads every subtask's
