"""What the layers above the runtime (REST, the dashboard, metrics) may read of a job: frozen snapshots,
taken on the JobManager's event loop, never the JobMaster's own fields.

`job_snapshot(master, now_ms)` copies what a view needs (status, timestamps, every subtask's state, attempt
and host, the plan, the exception history, the checkpoint settings, the job metrics) into plain
dataclasses. A view built from a snapshot cannot change the job, cannot see a half-updated state, and
keeps working when the JobMaster's internals change. Commands (cancel, savepoint, stop) go through the
Dispatcher and the JobMaster's methods."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ha_flink.common.job_status import JobStatus
from ha_flink.config import CheckpointingOptions, StateBackendOptions
from ha_flink.runtime.jobmanager.job_master import JobMaster, job_metrics
from ha_flink.runtime.scheduler.job_scheduler import ExceptionEntry


@dataclass(frozen=True, slots=True)
class SubtaskSnapshot:
    index: int
    state: str  # ExecutionState (CREATED before the first deployment)
    attempt: int
    host: str | None  # the TaskManager's address
    resource_id: str | None


@dataclass(frozen=True, slots=True)
class VertexInput:
    source: str  # the producing vertex's id
    ship_strategy: str  # FORWARD, HASH, REBALANCE, ...


@dataclass(frozen=True, slots=True)
class VertexSnapshot:
    id: str
    name: str
    parallelism: int
    max_parallelism: int
    operator_names: tuple[str, ...]
    inputs: tuple[VertexInput, ...]
    subtasks: tuple[SubtaskSnapshot, ...]


@dataclass(frozen=True, slots=True)
class CheckpointSettings:
    mode: str  # EXACTLY_ONCE, AT_LEAST_ONCE
    interval_ms: int
    timeout_ms: int
    min_pause_ms: int
    max_concurrent: int
    tolerable_failures: int
    retention: str  # execution.checkpointing.externalized-checkpoint-retention
    state_backend: str
    checkpoints_dir: str


@dataclass(frozen=True, slots=True)
class JobSnapshot:
    job_id: str
    name: str
    status: JobStatus
    job_type: str  # STREAMING, BATCH
    start_time: int
    end_time: int
    timestamps: dict[JobStatus, int]
    failure: str
    attempt: int
    vertices: tuple[VertexSnapshot, ...]
    exceptions: tuple[ExceptionEntry, ...]
    restart_strategy: str
    user_config: dict[str, Any]
    checkpoints: CheckpointSettings | None  # None: checkpointing is off
    restored_checkpoint: dict[str, Any] | None  # the latest restore, in Flink's `latest.restored` shape
    metrics: dict[str, float]  # Flink's job-scope metrics

    def subtasks(self) -> list[tuple[VertexSnapshot, SubtaskSnapshot]]:
        return [(vertex, subtask) for vertex in self.vertices for subtask in vertex.subtasks]


def job_snapshot(master: JobMaster, now_ms: int) -> JobSnapshot:
    """Everything the views read of one job, copied now (call on the JobManager's event loop)."""
    scheduler, graph, config, coordinator = master.scheduler, master.graph, master.config, master.coordinator
    vertices = []
    for vertex in graph.vertices.values():
        subtasks = []
        for index in range(vertex.parallelism):
            key = (vertex.id, index)
            owner = scheduler.placement.get(key)
            subtasks.append(SubtaskSnapshot(index, str(scheduler.states.get(key, "CREATED")),
                                            scheduler.attempts.get(key, 0), owner.address if owner else None,
                                            owner.resource_id if owner else None))
        vertices.append(VertexSnapshot(
            vertex.id, vertex.name, vertex.parallelism, vertex.max_parallelism, tuple(vertex.operator_names),
            tuple(VertexInput(edge.source, edge.ship_strategy.upper()) for edge in vertex.inputs), tuple(subtasks)))
    settings = None
    restored = None
    if coordinator is not None:
        tracker = coordinator.tracker
        settings = CheckpointSettings(
            config.get(CheckpointingOptions.CHECKPOINTING_MODE), int(coordinator.interval_s * 1000),
            int(coordinator.timeout_s * 1000), int(tracker.min_pause_s * 1000), tracker.max_concurrent,
            tracker.tolerable_failures, config.get(CheckpointingOptions.EXTERNALIZED_CHECKPOINT_RETENTION),
            config.get(StateBackendOptions.STATE_BACKEND), master.checkpoints_dir)
        latest_restored = coordinator.stats.latest_restored
        restored = latest_restored.to_json() if latest_restored is not None else None
    return JobSnapshot(
        master.job_id, graph.name, scheduler.status, graph.runtime_mode, master.start_time, scheduler.end_time,
        dict(scheduler.timestamps), scheduler.failure, scheduler.attempt, tuple(vertices),
        tuple(scheduler.exceptions), scheduler.restarts.name, dict(graph.config), settings, restored,
        job_metrics(master, now_ms))


def checkpoint_statistics(master: JobMaster) -> dict[str, Any] | None:
    """Flink's `CheckpointingStatistics` of one job, as JSON (counts, summary, latest, history); None when
    checkpointing is off."""
    return master.coordinator.stats.to_json() if master.coordinator is not None else None
