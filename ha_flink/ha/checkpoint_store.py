"""CompletedCheckpointStore: the completed checkpoints of one job under
`jobs/<jobid>/checkpoints/<%019d id>`, payloads `completedCheckpoint<hex>` in the storage dir.

Adding a checkpoint commits it (its node) before any older one is subsumed, so there is never a moment
without a checkpoint to recover from. At most `state.checkpoints.num-retained` are kept; a checkpoint
another owner still holds (a JobMaster of an earlier leader still releasing it, say) is never deleted
from under it. The store keeps its own list in memory, so adding costs a constant number of ZooKeeper
round trips whatever the number retained: one transaction to add, two to subsume the oldest."""

from __future__ import annotations

import logging
import pickle
from dataclasses import dataclass, field
from typing import Any

from ha_flink.ha import paths
from ha_flink.ha.state_handle_store import StateHandleMissingError, ZooKeeperStateHandleStore

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class CompletedCheckpoint:
    """What a new leader needs to restore a job: where the checkpoint's `_metadata` is."""

    job_id: str
    checkpoint_id: int
    timestamp: float
    external_pointer: str  # URL of the checkpoint folder holding _metadata
    properties: dict[str, Any] = field(default_factory=dict)


class RetainedCheckpoints:
    """The checkpoints a store holds, oldest first: what both the ZooKeeper and the standalone store keep."""

    def __init__(self, job_id: str, max_retained: int) -> None:
        if max_retained < 1:
            raise ValueError(f"state.checkpoints.num-retained must be >= 1, got {max_retained}")
        self.job_id = job_id
        self.max_retained = max_retained
        self._checkpoints: list[CompletedCheckpoint] = []

    def latest(self) -> CompletedCheckpoint | None:
        return self._checkpoints[-1] if self._checkpoints else None

    def all(self) -> list[CompletedCheckpoint]:
        return list(self._checkpoints)


class CompletedCheckpointStore(RetainedCheckpoints):
    def __init__(self, handles: ZooKeeperStateHandleStore, job_id: str, max_retained: int = 1) -> None:
        super().__init__(job_id, max_retained)
        self.handles = handles
        self.unreadable: list[StateHandleMissingError] = []

    def recover(self) -> list[CompletedCheckpoint]:
        """Read (and lock) every stored checkpoint. One whose file is missing is logged and recorded in
        `unreadable` with its node and file named; if none is readable, that error is raised."""
        readable: list[CompletedCheckpoint] = []
        self.unreadable = []
        for name in self.handles.names():
            try:
                _, data = self.handles.get_and_lock(name)
                readable.append(pickle.loads(data))
            except StateHandleMissingError as error:
                logger.error("Checkpoint %s of job %s cannot be recovered: %s", name, self.job_id, error)
                self.unreadable.append(error)
                self.handles.release(name)
        if self.unreadable and not readable:
            raise self.unreadable[-1]
        self._checkpoints = sorted(readable, key=lambda c: c.checkpoint_id)
        return list(self._checkpoints)

    def add_checkpoint_and_subsume_old_ones(self, checkpoint: CompletedCheckpoint) -> list[CompletedCheckpoint]:
        """Commit `checkpoint`, then drop the oldest beyond the retained number. Returns the subsumed
        checkpoints that are gone from the store (their state files may be discarded by the caller)."""
        if self._checkpoints and checkpoint.checkpoint_id <= self._checkpoints[-1].checkpoint_id:
            raise ValueError(f"checkpoint {checkpoint.checkpoint_id} of job {self.job_id} is not newer than "
                             f"the latest completed one, {self._checkpoints[-1].checkpoint_id}")
        self.handles.add_and_lock(paths.checkpoint_name(checkpoint.checkpoint_id), pickle.dumps(checkpoint, 5))
        self._checkpoints.append(checkpoint)
        # The new checkpoint is committed: from here on nothing may raise, or the caller would take a
        # completed checkpoint for a failed one. A subsumption that fails is retried at the next add.
        removed = []
        kept = []
        while len(self._checkpoints) - len(kept) > self.max_retained:
            oldest = self._checkpoints.pop(len(kept))
            try:
                if self.handles.release_and_try_remove(paths.checkpoint_name(oldest.checkpoint_id)):
                    removed.append(oldest)
            except Exception as error:  # ZooKeeper or storage trouble: keep it, try again next time
                logger.warning("Could not subsume checkpoint %d of job %s (kept, retried at the next "
                               "checkpoint): %s", oldest.checkpoint_id, self.job_id, error)
                kept.append(oldest)
        self._checkpoints[:0] = kept
        return removed

    def shutdown(self, globally_terminal: bool) -> None:
        """Terminal job: remove every checkpoint this store may remove. Otherwise: release, keep all."""
        if globally_terminal:
            for checkpoint in self._checkpoints:
                self.handles.release_and_try_remove(paths.checkpoint_name(checkpoint.checkpoint_id))
        else:
            for checkpoint in self._checkpoints:
                self.handles.release(paths.checkpoint_name(checkpoint.checkpoint_id))
        self._checkpoints = []
