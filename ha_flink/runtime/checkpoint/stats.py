"""Checkpoint statistics of one job, as Flink's CheckpointStatsTracker keeps them for
`GET /jobs/<id>/checkpoints`, the dashboard and the checkpoint metrics: counts, the last checkpoints
(`web.checkpoints.history`, 10), the latest completed / failed / savepoint / restored, and a summary of
sizes and durations. I/O-free: the coordinator reports, the REST API reads."""

from __future__ import annotations

import collections
import statistics
from dataclasses import dataclass, field
from typing import Any, Collection

HISTORY_SIZE = 10


@dataclass
class CheckpointStats:
    checkpoint_id: int
    is_savepoint: bool
    trigger_timestamp: int
    num_subtasks: int
    status: str = "IN_PROGRESS"  # COMPLETED, FAILED
    latest_ack_timestamp: int = 0
    num_acknowledged_subtasks: int = 0
    state_size: int = 0  # full: every file the checkpoint references
    checkpointed_size: int = 0  # written for this checkpoint (less than state_size when incremental)
    external_path: str = ""
    failure_timestamp: int = 0
    failure_message: str = ""
    is_synchronous: bool = False  # a stop-with-savepoint's (Flink's SYNC_SAVEPOINT)
    # vertex id -> its subtasks expected to acknowledge; subtask acks: (vertex, index) -> SubtaskAck
    subtasks: dict[str, int] = field(default_factory=dict)
    acks: dict[tuple[str, int], SubtaskAck] = field(default_factory=dict)

    @property
    def end_to_end_duration(self) -> int:
        end = self.failure_timestamp if self.status == "FAILED" else self.latest_ack_timestamp
        return max(0, end - self.trigger_timestamp) if end else 0

    @property
    def checkpoint_type(self) -> str:
        if not self.is_savepoint:
            return "CHECKPOINT"
        return "SYNC_SAVEPOINT" if self.is_synchronous else "SAVEPOINT"

    def to_json(self) -> dict[str, Any]:
        """Flink's CheckpointStatistics (className: completed, failed, in_progress)."""
        entry = {
            "className": _CLASS_NAMES[self.status], "id": self.checkpoint_id,
            "status": self.status, "is_savepoint": self.is_savepoint,
            "savepointFormat": "CANONICAL" if self.is_savepoint else None,
            "checkpoint_type": self.checkpoint_type,
            "trigger_timestamp": self.trigger_timestamp, "latest_ack_timestamp": self.latest_ack_timestamp,
            "state_size": self.state_size, "checkpointed_size": self.checkpointed_size,
            "end_to_end_duration": self.end_to_end_duration,
            # (aligned barriers: no in-flight data is buffered, processed during alignment or persisted)
            "alignment_buffered": 0, "processed_data": 0, "persisted_data": 0,
            "num_subtasks": self.num_subtasks, "num_acknowledged_subtasks": self.num_acknowledged_subtasks,
            "tasks": {vertex: self.task_json(vertex) for vertex in self.subtasks},
        }
        if self.status == "COMPLETED":
            entry.update({"external_path": self.external_path, "discarded": False})
        if self.status == "FAILED":
            entry.update({"failure_timestamp": self.failure_timestamp, "failure_message": self.failure_message})
        return entry


    def task_json(self, vertex: str) -> dict[str, Any]:
        """Flink's TaskCheckpointStatistics of one vertex in this checkpoint."""
        acks = [ack for (v, _), ack in self.acks.items() if v == vertex]
        latest = max((ack.timestamp for ack in acks), default=0)
        return {"id": self.checkpoint_id, "status": self.status, "latest_ack_timestamp": latest,
                "checkpointed_size": sum(a.checkpointed_size for a in acks), "state_size": sum(a.state_size for a in acks),
                "end_to_end_duration": max(0, latest - self.trigger_timestamp) if latest else 0,
                "alignment_buffered": 0, "processed_data": 0, "persisted_data": 0,
                "num_subtasks": self.subtasks.get(vertex, 0), "num_acknowledged_subtasks": len(acks)}

    def subtask_details_json(self, vertex: str) -> dict[str, Any]:
        """Flink's TaskCheckpointStatisticsWithSubtaskDetails: the vertex's figures, a summary over its
        acknowledged subtasks, and each subtask (className completed, or pending while it has not acked)."""
        acks = {index: ack for (v, index), ack in self.acks.items() if v == vertex}
        durations = [max(0, a.timestamp - self.trigger_timestamp) for a in acks.values()]
        zeros = _summary([])
        subtasks: list[dict[str, Any]] = []
        for index in range(self.subtasks.get(vertex, 0)):
            ack = acks.get(index)
            if ack is None:
                subtasks.append({"className": "pending", "index": index, "status": "pending_or_failed"})
                continue
            subtasks.append({
                "className": "completed", "index": index, "status": "completed", "ack_timestamp": ack.timestamp,
                "end_to_end_duration": max(0, ack.timestamp - self.trigger_timestamp),
                "checkpointed_size": ack.checkpointed_size, "state_size": ack.state_size,
                "checkpoint": {"sync": 0, "async": 0},  # (not measured apart: the whole is end_to_end_duration)
                "alignment": {"buffered": 0, "processed": 0, "persisted": 0, "duration": 0},
                "start_delay": 0, "unaligned_checkpoint": False, "aborted": False})
        return {**self.task_json(vertex), "summary": {
            "checkpointed_size": _summary([a.checkpointed_size for a in acks.values()]),
            "state_size": _summary([a.state_size for a in acks.values()]),
            "end_to_end_duration": _summary(durations),
            "checkpoint_duration": {"sync": zeros, "async": zeros},
            "alignment": {"buffered": zeros, "processed": zeros, "persisted": zeros, "duration": zeros},
            "start_delay": zeros}, "subtasks": subtasks}


@dataclass(frozen=True)
class SubtaskAck:
    timestamp: int
    state_size: int
    checkpointed_size: int


_CLASS_NAMES = {"COMPLETED": "completed", "FAILED": "failed", "IN_PROGRESS": "in_progress"}


@dataclass
class RestoredStats:
    checkpoint_id: int
    restore_timestamp: int
    is_savepoint: bool
    external_path: str

    def to_json(self) -> dict[str, Any]:
        return {"id": self.checkpoint_id, "restore_timestamp": self.restore_timestamp,
                "is_savepoint": self.is_savepoint, "external_path": self.external_path}


def _summary(values: list[int]) -> dict[str, Any]:
    if not values:
        return {"min": 0, "max": 0, "avg": 0, "p50": 0, "p90": 0, "p95": 0, "p99": 0, "p999": 0}
    ordered = sorted(values)

    def pct(p: float) -> float:
        return float(ordered[min(len(ordered) - 1, int(p * len(ordered)))])

    return {"min": ordered[0], "max": ordered[-1], "avg": int(statistics.fmean(ordered)), "p50": pct(0.5),
            "p90": pct(0.9), "p95": pct(0.95), "p99": pct(0.99), "p999": pct(0.999)}


class CheckpointStatsTracker:
    def __init__(self, history_size: int = HISTORY_SIZE) -> None:
        self.history: collections.OrderedDict[int, CheckpointStats] = collections.OrderedDict()
        self.history_size = history_size
        self._pending: dict[int, CheckpointStats] = {}  # in progress, whether or not still in the history
        self.completed = 0
        self.failed = 0
        self.restored_count = 0
        self.latest_completed: CheckpointStats | None = None
        self.latest_savepoint: CheckpointStats | None = None
        self.latest_failed: CheckpointStats | None = None
        self.latest_restored: RestoredStats | None = None
        # the summary covers completed checkpoints since this leader took the job (as Flink's)
        self._durations: collections.deque[int] = collections.deque(maxlen=1000)
        self._sizes: collections.deque[int] = collections.deque(maxlen=1000)
        self._checkpointed_sizes: collections.deque[int] = collections.deque(maxlen=1000)

    @property
    def in_progress(self) -> int:
        return len(self._pending)

    def triggered(self, checkpoint_id: int, timestamp: int, num_subtasks: int, is_savepoint: bool = False,
                  expected: Collection[tuple[str, int]] = (), is_synchronous: bool = False) -> None:
        """`expected`: the (vertex id, subtask) executions that are to acknowledge (per-vertex figures)."""
        stats = CheckpointStats(checkpoint_id, is_savepoint, timestamp, num_subtasks, is_synchronous=is_synchronous,
                                subtasks=dict(collections.Counter(vertex for vertex, _ in expected)))
        self.history[checkpoint_id] = self._pending[checkpoint_id] = stats
        while len(self.history) > self.history_size:
            self.history.popitem(last=False)

    def acknowledged(self, checkpoint_id: int, timestamp: int, state_size: int, checkpointed_size: int,
                     execution: tuple[str, int] | None = None) -> None:
        stats = self._pending.get(checkpoint_id)
        if stats is not None:
            if execution is not None:
                stats.acks[execution] = SubtaskAck(timestamp, state_size, checkpointed_size)
            stats.num_acknowledged_subtasks += 1
            stats.state_size += state_size
            stats.checkpointed_size += checkpointed_size
            stats.latest_ack_timestamp = timestamp

    def completed_checkpoint(self, checkpoint_id: int, timestamp: int, external_path: str) -> None:
        stats = self._pending.pop(checkpoint_id, None)
        if stats is None:
            return
        stats.status, stats.external_path = "COMPLETED", external_path
        stats.latest_ack_timestamp = max(stats.latest_ack_timestamp, timestamp)
        self.completed += 1
        self._durations.append(stats.end_to_end_duration)
        self._sizes.append(stats.state_size)
        self._checkpointed_sizes.append(stats.checkpointed_size)
        if stats.is_savepoint:
            self.latest_savepoint = stats
        else:
            self.latest_completed = stats

    def failed_checkpoint(self, checkpoint_id: int, timestamp: int, message: str) -> None:
        stats = self._pending.pop(checkpoint_id, None)
        if stats is None:
            return
        stats.status, stats.failure_timestamp, stats.failure_message = "FAILED", timestamp, message
        self.failed += 1
        self.latest_failed = stats

    def fail_all_pending(self, timestamp: int, message: str, keep: Collection[int] = ()) -> None:
        """Every checkpoint in progress failed, but those of `keep` (their completion is under way)."""
        for checkpoint_id in [c for c in self._pending if c not in keep]:
            self.failed_checkpoint(checkpoint_id, timestamp, message)

    def details(self, checkpoint_id: int) -> CheckpointStats | None:
        """One checkpoint of the history (Flink keeps `web.checkpoints.history` of them), or None."""
        return self.history.get(checkpoint_id)

    def restored(self, checkpoint_id: int, timestamp: int, is_savepoint: bool, external_path: str) -> None:
        self.restored_count += 1
        self.latest_restored = RestoredStats(checkpoint_id, timestamp, is_savepoint, external_path)

    def to_json(self) -> dict[str, Any]:
        """Flink's `CheckpointingStatistics` shape."""
        def latest(stats: Any) -> Any:
            return stats.to_json() if stats is not None else None

        return {
            "counts": {"restored": self.restored_count, "total": self.completed + self.failed + self.in_progress,
                       "in_progress": self.in_progress, "completed": self.completed, "failed": self.failed},
            "summary": {"state_size": _summary(list(self._sizes)),
                        "checkpointed_size": _summary(list(self._checkpointed_sizes)),
                        "end_to_end_duration": _summary(list(self._durations)),
                        "alignment_buffered": _summary([]), "processed_data": _summary([]),
                        "persisted_data": _summary([])},
            "latest": {"completed": latest(self.latest_completed), "savepoint": latest(self.latest_savepoint),
                       "failed": latest(self.latest_failed), "restored": latest(self.latest_restored)},
            "history": [c.to_json() for c in reversed(self.history.values())],
        }
