"""The checkpoint bookkeeping of one job, without I/O: which checkpoints are in flight and whose
acknowledgements they still wait for, when one may be triggered (`execution.checkpointing.max-concurrent-
checkpoints`, `min-pause`), which expire (`timeout`), which a completed one subsumes, how many failed in a
row against `tolerable-failed-checkpoints`, and which shared state files (incremental RocksDB) no retained
checkpoint references any more.

Events come in as method calls with the time passed in (`now_ms` wall clock for checkpoint timestamps and
expiry, `now_s` monotonic for the pause), and each returns what follows from it: the checkpoint to
complete, those to discard, whether the job must fail over. The CheckpointCoordinator (coordinator.py)
is the driver: it asks the counter for ids, writes files and ZooKeeper, deletes what is discarded, and
keeps the statistics. Nothing here awaits, sleeps, reads a clock or touches a file, so the rules are
tested with event sequences alone (tests/checkpoint/test_tracker.py)."""

from __future__ import annotations

from dataclasses import dataclass, field

ExecutionKey = tuple[str, int]  # (vertex id, subtask index)


@dataclass
class PendingCheckpoint:
    checkpoint_id: int
    timestamp_ms: int
    expected: set[ExecutionKey]  # the subtasks running when it was triggered (finished ones do not ack)
    acks: dict[ExecutionKey, str] = field(default_factory=dict)
    shared: set[str] = field(default_factory=set)  # shared files the acknowledged snapshots reference
    restore_from_all: set[str] = field(default_factory=set)  # vertices whose subtasks restore from all
    savepoint_dir: str | None = None  # a savepoint: copied there, not kept as a checkpoint
    savepoint_path: str | None = None  # the savepoint's folder, once written

    @property
    def is_savepoint(self) -> bool:
        return self.savepoint_dir is not None


@dataclass(frozen=True, slots=True)
class Acknowledged:
    """What one acknowledgement led to."""

    known: bool  # the checkpoint is in flight (else the ack is late: given up, subsumed or unknown)
    first: bool  # the first ack of this subtask for it (statistics count each subtask once)
    complete: PendingCheckpoint | None = None  # every expected subtask acknowledged: the driver commits it


@dataclass(frozen=True, slots=True)
class Committed:
    """What the commit of a checkpoint leaves to clean up."""

    unreferenced_shared: list[str]  # shared files no retained checkpoint references any more
    subsumed: list[PendingCheckpoint]  # older checkpoints in flight that can no longer matter


class CheckpointTracker:
    def __init__(self, timeout_ms: float, min_pause_s: float = 0.0, max_concurrent: int = 1,
                 tolerable_failures: int = 0) -> None:
        self.timeout_ms = timeout_ms
        self.min_pause_s = min_pause_s
        self.max_concurrent = max_concurrent
        self.tolerable_failures = tolerable_failures
        self.pending: dict[int, PendingCheckpoint] = {}
        self.consecutive_failures = 0
        self.last_completion_s = float("-inf")  # monotonic time of the last completed checkpoint
        self.shared_of: dict[int, set[str]] = {}  # retained checkpoint -> the shared files it references

    # -- triggering -----------------------------------------------------------------------------------

    def may_trigger(self, now_s: float) -> bool:
        """Whether a periodic checkpoint may start now (savepoints do not count against the limits)."""
        in_flight = sum(not p.is_savepoint for p in self.pending.values())
        return in_flight < self.max_concurrent and now_s - self.last_completion_s >= self.min_pause_s

    def begin(self, checkpoint_id: int, timestamp_ms: int, expected: set[ExecutionKey],
              savepoint_dir: str | None = None) -> PendingCheckpoint:
        pending = PendingCheckpoint(checkpoint_id, timestamp_ms, set(expected), savepoint_dir=savepoint_dir)
        self.pending[checkpoint_id] = pending
        return pending

    def expire(self, now_ms: int) -> list[PendingCheckpoint]:
        """The checkpoints older than the timeout, taken out (a savepoint has a timeout of its caller's)."""
        expired = [p for p in self.pending.values()
                   if not p.is_savepoint and now_ms - p.timestamp_ms > self.timeout_ms]
        for pending in expired:
            del self.pending[pending.checkpoint_id]
        return expired

    # -- acknowledgements -----------------------------------------------------------------------------

    def acknowledge(self, execution: ExecutionKey, checkpoint_id: int, state_url: str,
                    shared: list[str] | tuple[str, ...] = (), restore_from_all: bool = False) -> Acknowledged:
        pending = self.pending.get(checkpoint_id)
        if pending is None:
            return Acknowledged(known=False, first=False)
        first = execution not in pending.acks
        pending.acks[execution] = state_url
        pending.shared.update(shared)
        if restore_from_all:
            pending.restore_from_all.add(execution[0])
        if not pending.expected <= pending.acks.keys():
            return Acknowledged(known=True, first=first)
        del self.pending[checkpoint_id]
        return Acknowledged(known=True, first=first, complete=pending)

    def take(self, checkpoint_id: int) -> PendingCheckpoint | None:
        """Give one up (declined, aborted, its savepoint timed out): taken out, or None if not in flight."""
        return self.pending.pop(checkpoint_id, None)

    def take_all(self) -> list[PendingCheckpoint]:
        """A failover or stop: nothing in flight can complete any more."""
        taken, self.pending = list(self.pending.values()), {}
        return taken

    def task_finished(self, execution: ExecutionKey) -> list[PendingCheckpoint]:
        """A subtask finished: checkpoints that still wait for its snapshot never get it. Taken out (not
        failures: it ended after its own final checkpoint, before this one's trigger reached it)."""
        dropped = [p for p in self.pending.values()
                   if not p.is_savepoint and execution in p.expected and execution not in p.acks]
        for pending in dropped:
            del self.pending[pending.checkpoint_id]
        return dropped

    # -- outcomes -------------------------------------------------------------------------------------

    def failed(self) -> bool:
        """Count one failed checkpoint; True when that exceeds the tolerable failures in a row (then the
        job fails over, and counting starts again)."""
        self.consecutive_failures += 1
        if self.consecutive_failures > self.tolerable_failures:
            self.consecutive_failures = 0
            return True
        return False

    def garbage_of(self, pending: PendingCheckpoint) -> list[str]:
        """The shared files of a checkpoint that will not complete that no completed one references (the
        backends reuse only files of confirmed checkpoints, so nobody else will)."""
        referenced = set().union(*self.shared_of.values())
        return sorted(url for url in pending.shared if url not in referenced)

    def committed(self, pending: PendingCheckpoint, removed: list[int], now_s: float) -> Committed:
        """`pending` is in the store now, which dropped the retained checkpoints `removed` (subsumed)."""
        self.shared_of[pending.checkpoint_id] = set(pending.shared)
        self.consecutive_failures = 0
        self.last_completion_s = now_s
        unreferenced = set().union(*(self.shared_of.pop(old, set()) for old in removed))
        still = set().union(*self.shared_of.values())
        subsumed = [p for c, p in sorted(self.pending.items()) if c < pending.checkpoint_id and not p.is_savepoint]
        for older in subsumed:
            del self.pending[older.checkpoint_id]
        return Committed(sorted(unreferenced - still), subsumed)

    def recovered(self, shared_of: dict[int, set[str]]) -> None:
        """The retained checkpoints read from the store (by a new leader, or a restart)."""
        self.shared_of = {checkpoint_id: set(urls) for checkpoint_id, urls in shared_of.items()}
