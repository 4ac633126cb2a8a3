"""CompletedCheckpointStore: the completed checkpoints of one job under
`jobs/<jobid>/checkpoints/<%019d id>`, payloads `completedCheckpoint<hex>` in the storage dir.

Adding a checkpoint commits it (its node) before any older one is subsumed, so there is never a moment
without a checkpoint to recover from. At most `state.checkpoints.num-retained` are kept; a checkpoint
another owner still holds (a JobMaster of an earlier leader still releasing it, say) is never deleted
from under it. The store keeps its own list in memory, so adding costs a constant number of ZooKeeper
round trips whatever the number retained: one transaction to add, two to subsume the oldest. The first
checkpoint a job completes also marks its job record (ha/job_record.py) in the same transaction.

Recovery separates damage from an outage: an entry whose node exists (so it was committed) but whose
pointer or handle file is damaged is reported in `damaged` with its id, for the coordinator to rebuild
from the checkpoint's own `_metadata` and `repair`; a storage or ZooKeeper that cannot be reached raises,
and recovery is tried again."""

from __future__ import annotations

import logging
import pickle
from dataclasses import dataclass, field
from typing import Any

from kazoo.client import TransactionRequest
from kazoo.exceptions import NoNodeError

from ha_flink.ha import job_record, paths
from ha_flink.ha.state_handle_store import StateHandleDamagedError, ZooKeeperStateHandleStore

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class CompletedCheckpoint:
    """What a new leader needs to restore a job: where the checkpoint's `_metadata` is."""

    job_id: str
    checkpoint_id: int
    timestamp: float
    external_pointer: str  # URL of the checkpoint folder holding _metadata
    properties: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class DamagedCheckpoint:
    """A committed checkpoint whose node exists but whose pointer or handle file cannot be used."""

    checkpoint_id: int
    error: StateHandleDamagedError


class RetainedCheckpoints:
    """The checkpoints a store holds, oldest first: what both the ZooKeeper and the standalone store keep."""

    def __init__(self, job_id: str, max_retained: int) -> None:
        if max_retained < 1:
            raise ValueError(f"state.checkpoints.num-retained must be >= 1, got {max_retained}")
        self.job_id = job_id
        self.max_retained = max_retained
        self._checkpoints: list[CompletedCheckpoint] = []
        self.damaged: list[DamagedCheckpoint] = []  # committed, but unreadable where the store keeps them
        self.location = "this JobManager's memory"  # where the store keeps its checkpoints, for messages

    @property
    def had_checkpoints(self) -> bool:
        """Whether a checkpoint of this job was ever committed, as far as the store can tell."""
        return bool(self._checkpoints)

    def release(self) -> None:
        """Leadership lost: let go of every checkpoint held, without deleting any (nothing to do here)."""

    def latest(self) -> CompletedCheckpoint | None:
        return self._checkpoints[-1] if self._checkpoints else None

    def all(self) -> list[CompletedCheckpoint]:
        return list(self._checkpoints)


class CompletedCheckpointStore(RetainedCheckpoints):
    def __init__(self, handles: ZooKeeperStateHandleStore, job_id: str, max_retained: int = 1,
                 job_node: str | None = None) -> None:
        super().__init__(job_id, max_retained)
        self.handles = handles
        self.location = f"ZooKeeper under {handles.root}"
        self.job_node = job_node  # jobs/<jobid>: its record says whether a checkpoint ever completed
        self.record: job_record.JobRecord | None = None  # as read at recovery (None: no node)

    @property
    def had_checkpoints(self) -> bool:
        """Whether the job record says a checkpoint of this job was ever committed (or one is here)."""
        return bool(self._checkpoints) or (self.record is not None and self.record.checkpointed)

    def recover(self) -> list[CompletedCheckpoint]:
        """Read (and lock) every stored checkpoint. Damaged entries go to `damaged` (each still locked, to
        be repaired or removed), logged with node and file; ZooKeeper or storage trouble raises."""
        readable: list[CompletedCheckpoint] = []
        self.damaged = []
        if self.job_node is not None:
            self.record = job_record.read(self.handles.client, self.job_node)
        for name in self.handles.names():
            if not name.isdigit():
                logger.warning("Ignoring %s in the checkpoint store of job %s: not a checkpoint node",
                               paths.join(self.handles.root, name), self.job_id)
                continue
            try:
                handle, data = self.handles.get_and_lock(name)
                try:
                    checkpoint = pickle.loads(data)
                except Exception as error:  # an unsealed handle of an older version, damaged
                    raise StateHandleDamagedError(paths.join(self.handles.root, name), handle.url,
                                                  f"is not a completed checkpoint ({type(error).__name__})") from None
                readable.append(checkpoint)
            except NoNodeError:
                continue  # removed meanwhile (an earlier leader's subsumption finishing)
            except StateHandleDamagedError as error:
                logger.error("Checkpoint %d of job %s cannot be read from its handle: %s", int(name), self.job_id,
                             error)
                self.damaged.append(DamagedCheckpoint(int(name), error))
        self._checkpoints = sorted(readable, key=lambda c: c.checkpoint_id)
        return list(self._checkpoints)

    def adopt(self, checkpoint: CompletedCheckpoint) -> bool:
        """Keep a damaged entry that the caller rebuilt (from the checkpoint's own folder) as one of the
        retained checkpoints, and repair it: a new handle file, the node pointed at it. Returns whether the
        repair was written (if not, this leader still uses the rebuilt checkpoint; the next one rebuilds it
        again)."""
        name = paths.checkpoint_name(checkpoint.checkpoint_id)
        self.damaged = [d for d in self.damaged if d.checkpoint_id != checkpoint.checkpoint_id]
        self._checkpoints = sorted([*self._checkpoints, checkpoint], key=lambda c: c.checkpoint_id)
        try:
            self.handles.replace(name, self.handles.version(name), pickle.dumps(checkpoint, 5))
            return True
        except Exception as error:  # noqa: BLE001 - the rebuilt checkpoint serves this leader either way
            logger.warning("The handle of checkpoint %d of job %s was not repaired: %s", checkpoint.checkpoint_id,
                           self.job_id, error)
            return False

    def _mark_checkpointed(self, tx: TransactionRequest, pointer: bytes) -> None:
        assert self.job_node is not None  # (used only with a job node)
        record = job_record.read(self.handles.client, self.job_node)
        if record is not None and record.readable:
            job_record.write(tx, self.handles.client, self.job_node,
                             job_record.JobRecord(record.job_graph_pointer, checkpointed=True))

    def add_checkpoint_and_subsume_old_ones(self, checkpoint: CompletedCheckpoint) -> list[CompletedCheckpoint]:
        """Commit `checkpoint`, then drop the oldest beyond the retained number. Returns the subsumed
        checkpoints that are gone from the store (their state files may be discarded by the caller). A
        handle that cannot be written raises its StorageError, with nothing committed."""
        if self._checkpoints and checkpoint.checkpoint_id <= self._checkpoints[-1].checkpoint_id:
            raise ValueError(f"checkpoint {checkpoint.checkpoint_id} of job {self.job_id} is not newer than "
                             f"the latest completed one, {self._checkpoints[-1].checkpoint_id}")
        mark = self._mark_checkpointed if self.job_node is not None and not self.had_checkpoints else None
        self.handles.add_and_lock(paths.checkpoint_name(checkpoint.checkpoint_id), pickle.dumps(checkpoint, 5),
                                  also=mark)
        if mark is not None:
            self.record = job_record.JobRecord(self.record.job_graph_pointer if self.record else None, True)
        self._checkpoints.append(checkpoint)
        # The new checkpoint is committed: from here on nothing may raise, or the caller would take a
        # completed checkpoint for a failed one. A subsumption that fails is retried at the next add.
        removed: list[CompletedCheckpoint] = []
        kept: list[CompletedCheckpoint] = []
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
        for damaged in [d for d in self.damaged if d.checkpoint_id < checkpoint.checkpoint_id]:
            try:  # a damaged entry older than a new checkpoint will never be restored: its node goes
                self.handles.release_and_try_remove(paths.checkpoint_name(damaged.checkpoint_id))
                self.damaged.remove(damaged)
                logger.info("Removed the damaged entry of checkpoint %d of job %s (checkpoint %d completed)",
                            damaged.checkpoint_id, self.job_id, checkpoint.checkpoint_id)
            except Exception as error:
                logger.warning("Could not remove the damaged entry of checkpoint %d of job %s: %s",
                               damaged.checkpoint_id, self.job_id, error)
        return removed

    def release(self) -> None:
        """Leadership lost: drop this owner's lock on every entry (the damaged ones too), deleting nothing, so
        the next leader can subsume and clean them up."""
        self.handles.release_all()

    def shutdown(self, globally_terminal: bool) -> None:
        """Terminal job: remove every checkpoint this store may remove. Otherwise: release, keep all."""
        if globally_terminal:
            for checkpoint in self._checkpoints:
                self.handles.release_and_try_remove(paths.checkpoint_name(checkpoint.checkpoint_id))
        else:
            for checkpoint in self._checkpoints:
                self.handles.release(paths.checkpoint_name(checkpoint.checkpoint_id))
        self._checkpoints = []
