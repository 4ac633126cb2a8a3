"""Checkpoint statistics of one job, as Flink's CheckpointStatsTracker keeps them for
`GET /jobs/<id>/checkpoints`, the dashboard and the checkpoint metrics: counts, the last checkpoints
(`web.checkpoints.history`, 10), the latest completed / failed / savepoint / restored, and a summary of
sizes and durations. I/O-free: the coordinator reports, the REST API reads."""

from __future__ import annotations

import collections
import statistics
from dataclasses import dataclass
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

    @property
    def end_to_end_duration(self) -> int:
        end = self.failure_timestamp if self.status == "FAILED" else self.latest_ack_timestamp
        return max(0, end - self.trigger_timestamp) if end else 0

    def to_json(self) -> dict[str, Any]:
        entry = {
            "@class": self.status.lower(), "id": self.checkpoint_id,
            "status": self.status, "is_savepoint": self.is_savepoint,
            "checkpoint_type": "SAVEPOINT" if self.is_savepoint else "CHECKPOINT",
            "trigger_timestamp": self.trigger_timestamp, "latest_ack_timestamp": self.latest_ack_timestamp,
            "state_size": self.state_size, "checkpointed_size": self.checkpointed_size,
            "end_to_end_duration": self.end_to_end_duration, "num_subtasks": self.num_subtasks,
            "num_acknowledged_subtasks": self.num_acknowledged_subtasks,
        }
        if self.status == "COMPLETED":
            entry.update({"external_path": self.external_path, "discarded": False})
        if self.status == "FAILED":
            entry.update({"failure_timestamp": self.failure_timestamp, "failure_message": self.failure_message})
        return entry


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

    def triggered(self, checkpoint_id: int, timestamp: int, num_subtasks: int, is_savepoint: bool = False) -> None:
        stats = CheckpointStats(checkpoint_id, is_savepoint, timestamp, num_subtasks)
        self.history[checkpoint_id] = self._pending[checkpoint_id] = stats
        while len(self.history) > self.history_size:
            self.history.popitem(last=False)

    def acknowledged(self, checkpoint_id: int, timestamp: int, state_size: int, checkpointed_size: int) -> None:
        stats = self._pending.get(checkpoint_id)
        if stats is not None:
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
                        "end_to_end_duration": _summary(list(self._durations))},
            "latest": {"completed": latest(self.latest_completed), "savepoint": latest(self.latest_savepoint),
                       "failed": latest(self.latest_failed), "restored": latest(self.latest_restored)},
            "history": [c.to_json() for c in reversed(self.history.values())],
        }
