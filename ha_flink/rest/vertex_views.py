"""The JSON bodies of a job vertex's endpoints, in Flink's shapes: the vertex with its subtasks
(`JobVertexDetailsInfo`), one subtask's attempt, subtask times, the vertex by TaskManager, back pressure,
accumulators, and the flame graph. Built from the leader's job snapshot and the tasks' reported figures,
like views.py; I/O-free. A `KeyError` names the vertex or subtask that does not exist (the server's 404).

What the runtime does not record is answered as Flink answers where it has no data: per-subtask start times
are the job's RUNNING time, bytes are not counted (records are), and there are no accumulators (PyFlink's
DataStream API has none)."""

from __future__ import annotations

import collections
from typing import Any

from ha_flink.common.job_status import JobStatus
from ha_flink.rest.views import TaskMetrics, _task_state, _vertex_status, current_figures, io_metrics, task_counts
from ha_flink.rest.views import _duration as duration
from ha_flink.rpc import flink_pb2 as pb
from ha_flink.runtime.jobmanager.gateway import JobSnapshot, SubtaskSnapshot, VertexSnapshot

# a subtask back-pressured more than this share of its time is HIGH, more than LOW's is LOW (Flink's levels)
_HIGH, _LOW = 0.5, 0.1


def vertex_of(job: JobSnapshot, vertex_id: str) -> VertexSnapshot:
    for vertex in job.vertices:
        if vertex.id == vertex_id:
            return vertex
    raise KeyError(f"vertex {vertex_id} not found in job {job.job_id}")


def subtask_of(job: JobSnapshot, vertex_id: str, index: int) -> SubtaskSnapshot:
    vertex = vertex_of(job, vertex_id)
    if not 0 <= index < len(vertex.subtasks):
        raise KeyError(f"subtask {index} not found in vertex {vertex_id} (parallelism {vertex.parallelism})")
    return vertex.subtasks[index]


def _endpoint(subtask: SubtaskSnapshot) -> str:
    return subtask.host or "(unassigned)"


def _attempt(job: JobSnapshot, subtask: SubtaskSnapshot, figures: pb.TaskMetrics | None, now: int) -> dict[str, Any]:
    """Flink's SubtaskExecutionAttemptDetailsInfo."""
    start = job.timestamps.get(JobStatus.RUNNING, -1)
    state = _task_state(subtask.state)
    return {
        "subtask": subtask.index, "status": state, "attempt": subtask.attempt, "endpoint": _endpoint(subtask),
        "start-time": start, "end-time": -1, "duration": duration(start, -1, now) if start > 0 else -1,
        "metrics": io_metrics([figures] if figures is not None else [], figures is not None),
        "taskmanager-id": subtask.resource_id or "(unassigned)",
        "status-duration": {s: 0 for s in ("CREATED", "SCHEDULED", "DEPLOYING", "INITIALIZING", "RUNNING")},
        "other-concurrent-attempts": [], "start_time": start,
    }


def _aggregated(figures: list[pb.TaskMetrics]) -> dict[str, Any]:
    """Flink's AggregatedTaskDetailsInfo: min/max/avg/sum/median/p25/p75/p95 of each figure over subtasks."""
    def summary(values: list[int]) -> dict[str, int]:
        if not values:
            return dict.fromkeys(("min", "max", "avg", "sum", "median", "p25", "p75", "p95"), 0)
        ordered = sorted(values)

        def pct(p: float) -> int:
            return ordered[min(len(ordered) - 1, int(p * len(ordered)))]
        return {"min": ordered[0], "max": ordered[-1], "avg": sum(ordered) // len(ordered), "sum": sum(ordered),
                "median": pct(0.5), "p25": pct(0.25), "p75": pct(0.75), "p95": pct(0.95)}
    zero = summary([])
    return {"metrics": {"read-bytes": zero, "write-bytes": zero,
                        "read-records": summary([m.records_in for m in figures]),
                        "write-records": summary([m.records_out for m in figures]),
                        "accumulated-backpressured-time": zero, "accumulated-idle-time": zero,
                        "accumulated-busy-time": zero},
            "status-duration": {s: zero for s in ("CREATED", "SCHEDULED", "DEPLOYING", "INITIALIZING", "RUNNING")}}


def vertex_details(job: JobSnapshot, vertex_id: str, metrics: TaskMetrics, now: int) -> dict[str, Any]:
    """Flink's JobVertexDetailsInfo."""
    vertex = vertex_of(job, vertex_id)
    figures = current_figures(job, vertex, metrics)
    return {"id": vertex.id, "name": vertex.name, "parallelism": vertex.parallelism,
            "maxParallelism": vertex.max_parallelism, "now": now,
            "subtasks": [_attempt(job, s, f, now) for s, f in zip(vertex.subtasks, figures)],
            "aggregated": _aggregated([f for f in figures if f is not None])}


def subtask_attempt(job: JobSnapshot, vertex_id: str, index: int, attempt: int | None, metrics: TaskMetrics,
                    now: int) -> dict[str, Any]:
    """One subtask's current attempt (or `attempt`, which must be the current one: earlier attempts are not
    kept), as Flink's SubtaskExecutionAttemptDetailsInfo."""
    subtask = subtask_of(job, vertex_id, index)
    if attempt is not None and attempt != subtask.attempt:
        raise KeyError(f"attempt {attempt} of subtask {index} of vertex {vertex_id} is not kept (its current "
                       f"attempt is {subtask.attempt})")
    vertex = vertex_of(job, vertex_id)
    return _attempt(job, subtask, current_figures(job, vertex, metrics)[index], now)


def subtask_times(job: JobSnapshot, vertex_id: str, now: int) -> dict[str, Any]:
    """Flink's SubtasksTimesInfo: when each subtask reached each state (the job's times: not kept per task)."""
    vertex = vertex_of(job, vertex_id)
    start = job.timestamps.get(JobStatus.RUNNING, -1)
    return {"id": vertex.id, "name": vertex.name, "now": now,
            "subtasks": [{"subtask": s.index, "endpoint": _endpoint(s),
                          "duration": duration(start, -1, now) if start > 0 else -1,
                          "timestamps": {_task_state(s.state): max(start, 0)}} for s in vertex.subtasks]}


def vertex_taskmanagers(job: JobSnapshot, vertex_id: str, metrics: TaskMetrics, now: int) -> dict[str, Any]:
    """Flink's JobVertexTaskManagersInfo: the vertex's subtasks grouped by the TaskManager running them."""
    vertex = vertex_of(job, vertex_id)
    figures = current_figures(job, vertex, metrics)
    groups: dict[tuple[str, str], list[tuple[SubtaskSnapshot, pb.TaskMetrics | None]]] = collections.defaultdict(list)
    for subtask, figure in zip(vertex.subtasks, figures):
        groups[(_endpoint(subtask), subtask.resource_id or "(unassigned)")].append((subtask, figure))
    start = job.timestamps.get(JobStatus.RUNNING, -1)
    taskmanagers = []
    for (endpoint, resource_id), members in sorted(groups.items()):
        states = [s.state for s, _ in members]
        reported = [f for _, f in members if f is not None]
        taskmanagers.append({
            "endpoint": endpoint, "status": _vertex_status(states), "start-time": start, "end-time": -1,
            "duration": duration(start, -1, now) if start > 0 else -1,
            "metrics": io_metrics(reported, len(reported) == len(members)), "status-counts": task_counts(states),
            "taskmanager-id": resource_id, "aggregated": _aggregated(reported)})
    return {"id": vertex.id, "name": vertex.name, "now": now, "taskmanagers": taskmanagers}


def _level(ratio: float) -> str:
    return "high" if ratio > _HIGH else "low" if ratio > _LOW else "ok"


def back_pressure(job: JobSnapshot, vertex_id: str, metrics: TaskMetrics, now: int) -> dict[str, Any]:
    """Flink's JobVertexBackPressureInfo from each subtask's backPressuredTimeMsPerSecond (as Flink 1.13+
    computes it: from the task's time back-pressured, not by sampling stacks)."""
    vertex = vertex_of(job, vertex_id)
    subtasks, ratios = [], []
    for subtask, figure in zip(vertex.subtasks, current_figures(job, vertex, metrics)):
        ratio = min(1.0, (figure.back_pressured_ms_per_second if figure is not None else 0.0) / 1000)
        ratios.append(ratio)
        subtasks.append({"subtask": subtask.index, "attempt-number": subtask.attempt,
                         "backpressure-level": _level(ratio), "ratio": round(ratio, 3), "idleRatio": 0.0,
                         "busyRatio": round(1.0 - ratio, 3), "other-concurrent-attempts": []})
    return {"status": "ok", "backpressure-level": _level(max(ratios, default=0.0)), "end-timestamp": now, "subtasks": subtasks}


def vertex_accumulators(job: JobSnapshot, vertex_id: str) -> dict[str, Any]:
    """Flink's JobVertexAccumulatorsInfo: PyFlink's DataStream API has no accumulators, so none."""
    return {"id": vertex_of(job, vertex_id).id, "user-accumulators": []}


def subtasks_accumulators(job: JobSnapshot, vertex_id: str) -> dict[str, Any]:
    vertex = vertex_of(job, vertex_id)
    return {"id": vertex.id, "parallelism": vertex.parallelism,
            "subtasks": [{"subtask": s.index, "attempt": s.attempt, "endpoint": _endpoint(s), "user-accumulators": []}
                         for s in vertex.subtasks]}


def subtask_accumulators(job: JobSnapshot, vertex_id: str, index: int, attempt: int) -> dict[str, Any]:
    subtask = subtask_of(job, vertex_id, index)
    if attempt != subtask.attempt:
        raise KeyError(f"attempt {attempt} of subtask {index} of vertex {vertex_id} is not kept (its current "
                       f"attempt is {subtask.attempt})")
    return {"subtask": index, "attempt": attempt, "id": f"{vertex_id}_{index}_{attempt}", "user-accumulators": []}
