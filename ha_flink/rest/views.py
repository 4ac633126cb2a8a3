"""The JSON bodies of the REST API, in Flink's shapes (its `JobDetailsInfo`, `JobExceptionsInfoWithHistory`,
`CheckpointConfigInfo`, ...), built from snapshots of the leader's jobs (`runtime/jobmanager/gateway.py`),
never from JobMaster fields. I/O-free: the server passes in what it fetched (task metrics) and the time.

Flink's clients read these with a strict mapper (an unknown field fails the whole answer), so Flink's
endpoints carry Flink's fields only, judged by Flink's own classes (integration/test_rest_shapes.py). What
ha-flink shows beyond them (a job's failure, attempt, restore, records/s) is in its own endpoint,
`/jobs/<id>/dashboard` (`job_dashboard`), which the dashboard reads."""

from __future__ import annotations

import collections
from typing import Any

from ha_flink.common.job_status import JobStatus
from ha_flink.config.sensitive import masked_items
from ha_flink.ha.job_result_store import JobResult
from ha_flink.rest.java_throwable import failure_cause
from ha_flink.rpc import flink_pb2 as pb
from ha_flink.runtime.jobmanager.dispatcher import LOST_JOB_NAME, UNRECOVERED_JOB_NAME
from ha_flink.runtime.jobmanager.gateway import JobSnapshot, VertexSnapshot

# Flink's ExecutionState names, as the dashboard and the `tasks` counts use them
TASK_STATES = ("CREATED", "SCHEDULED", "DEPLOYING", "RUNNING", "FINISHED", "CANCELING", "CANCELED", "FAILED",
               "RECONCILING", "INITIALIZING")
_TASK_STATE = {"FINISHING": "RUNNING", "CANCELLING": "CANCELING"}

TaskMetrics = dict[tuple[str, str, int], pb.TaskMetrics]
# every job shares one slot sharing group (DataStream.slot_sharing_group only names it): one id for all
SLOT_SHARING_GROUP_ID = "a3a1b1c1d1e1f1a1b1c1d1e1f1a1b1c1"


def _task_state(state: str) -> str:
    return _TASK_STATE.get(state, state)


def _duration(start: int, end: int, now: int) -> int:
    return (end if end > 0 else now) - start


def _task_counts(states: list[str]) -> dict[str, int]:
    counts = dict.fromkeys(TASK_STATES, 0)
    for state in states:
        counts[_task_state(state)] = counts.get(_task_state(state), 0) + 1
    return {k.lower(): v for k, v in counts.items()}


def _vertex_status(states: list[str]) -> str:
    """Flink's ExecutionJobVertex aggregation: the 'most active' state of its subtasks."""
    mapped = {_task_state(s) for s in states}
    for state in ("FAILED", "CANCELING", "CANCELED", "RUNNING", "DEPLOYING", "SCHEDULED", "CREATED"):
        if state in mapped:
            return state
    return "FINISHED" if mapped == {"FINISHED"} else "CREATED"


def job_overview(job: JobSnapshot, now: int) -> dict[str, Any]:
    states = [subtask.state for _, subtask in job.subtasks()]
    counts = _task_counts(states)
    return {"jid": job.job_id, "name": job.name, "state": job.status, "start-time": job.start_time,
            "end-time": job.end_time, "duration": _duration(job.start_time, job.end_time, now),
            "last-modification": max(job.timestamps.values()), "tasks": {"total": len(states), **counts},
            "pending-operators": 0,  # (Flink's operators still waiting for resources: ours deploy at once)
            "jobType": job.job_type, "schedulerType": "Default"}


def unrecovered_job_overview(job_id: str, reason: str, now: int) -> dict[str, Any]:
    """A stored job this leader cannot recover yet (its graph unreadable): INITIALIZING, with why."""
    return {"jid": job_id, "name": UNRECOVERED_JOB_NAME, "state": "INITIALIZING", "start-time": -1,
            "end-time": -1, "duration": 0, "last-modification": now, "tasks": {"total": 0, **_task_counts([])},
            "pending-operators": 0}


def lost_job_overview(result: JobResult) -> dict[str, Any]:
    """A job this leader found lost (its graph gone): FAILED, with why."""
    end = int(result.timestamp * 1000)
    return {"jid": result.job_id, "name": LOST_JOB_NAME, "state": result.status, "start-time": -1,
            "end-time": end, "duration": 0, "last-modification": end, "tasks": {"total": 0, **_task_counts([])},
            "pending-operators": 0}


def jobs_overview(jobs: list[JobSnapshot], pending: dict[str, str], lost: dict[str, JobResult],
                  now: int) -> list[dict[str, Any]]:
    """Every job the leader knows: those it runs or ran, those it cannot recover yet (`pending`: why), those
    it found lost."""
    known = {job.job_id for job in jobs}
    return ([job_overview(job, now) for job in jobs]
            + [unrecovered_job_overview(job_id, reason, now) for job_id, reason in sorted(pending.items())]
            + [lost_job_overview(result) for job_id, result in sorted(lost.items()) if job_id not in known])


def job_plan(job: JobSnapshot) -> dict[str, Any]:
    nodes = []
    for vertex in job.vertices:
        inputs = [{"num": n, "id": edge.source, "ship_strategy": edge.ship_strategy,
                   "exchange": "pipelined_bounded"} for n, edge in enumerate(vertex.inputs)]
        nodes.append({"id": vertex.id, "parallelism": vertex.parallelism, "operator": "", "operator_strategy": "",
                      "description": " -> ".join(vertex.operator_names) or vertex.name, "inputs": inputs,
                      "optimizer_properties": {}})
    return {"jid": job.job_id, "name": job.name, "type": job.job_type, "nodes": nodes}


def io_metrics(figures: list[pb.TaskMetrics], complete: bool) -> dict[str, Any]:
    """Flink's IOMetricsInfo over some subtasks' current attempts (bytes are not counted: records are)."""
    return {"read-bytes": 0, "read-bytes-complete": False, "write-bytes": 0, "write-bytes-complete": False,
            "read-records": sum(m.records_in for m in figures), "read-records-complete": complete,
            "write-records": sum(m.records_out for m in figures), "write-records-complete": complete,
            "accumulated-backpressured-time": 0, "accumulated-idle-time": 0, "accumulated-busy-time": 0.0}


def current_figures(job: JobSnapshot, vertex: VertexSnapshot, metrics: TaskMetrics) -> list[pb.TaskMetrics | None]:
    """Each subtask's reported figures, if they are of its current attempt."""
    figures = []
    for subtask in vertex.subtasks:
        reported = metrics.get((job.job_id, vertex.id, subtask.index))
        figures.append(reported if reported is not None and reported.attempt == subtask.attempt else None)
    return figures


def task_counts(states: list[str]) -> dict[str, int]:
    return {**dict.fromkeys(TASK_STATES, 0), **collections.Counter(_task_state(s) for s in states)}


def job_details(job: JobSnapshot, metrics: TaskMetrics, now: int) -> dict[str, Any]:
    """Flink's JobDetailsInfo."""
    vertices = []
    all_states = []
    running_since = job.timestamps.get(JobStatus.RUNNING, -1)
    for vertex in job.vertices:
        states = [subtask.state for subtask in vertex.subtasks]
        all_states += states
        current = [m for m in current_figures(job, vertex, metrics) if m is not None]
        vertices.append({
            "id": vertex.id, "slotSharingGroupId": SLOT_SHARING_GROUP_ID, "name": vertex.name,
            "maxParallelism": vertex.max_parallelism, "parallelism": vertex.parallelism,
            "status": _vertex_status(states), "start-time": running_since, "end-time": -1,
            "duration": _duration(job.timestamps.get(JobStatus.RUNNING, now), -1, now),
            "tasks": task_counts(states), "metrics": io_metrics(current, len(current) == len(vertex.subtasks)),
        })
    return {
        "jid": job.job_id, "name": job.name, "isStoppable": job.status == JobStatus.RUNNING, "state": job.status,
        "job-type": job.job_type, "schedulerType": "Default", "start-time": job.start_time, "end-time": job.end_time,
        "duration": _duration(job.start_time, job.end_time, now), "maxParallelism": -1, "now": now,
        "timestamps": {str(state): job.timestamps.get(state, 0) for state in JobStatus},
        "vertices": vertices, "status-counts": {k.upper(): v for k, v in _task_counts(all_states).items()},
        "plan": job_plan(job), "pending-operators": 0,
    }


def job_dashboard(job: JobSnapshot, metrics: TaskMetrics, now: int) -> dict[str, Any]:
    """Ours (`/jobs/<id>/dashboard`): the job's details with what Flink's JobDetailsInfo has no field for:
    why it failed, its attempt, its latest restore, its job metrics, each vertex's records/s and subtasks."""
    details = job_details(job, metrics, now)
    for vertex, shown in zip(job.vertices, details["vertices"]):
        current = [m for m in current_figures(job, vertex, metrics) if m is not None]
        shown["metrics"].update({
            "records-in-per-second": round(sum(m.records_in_per_second for m in current), 1),
            "records-out-per-second": round(sum(m.records_out_per_second for m in current), 1),
            "backpressured-ms-per-second": max((m.back_pressured_ms_per_second for m in current), default=0.0)})
        shown["subtasks"] = [{"subtask": subtask.index, "status": _task_state(subtask.state),
                              "attempt": subtask.attempt, "host": subtask.host} for subtask in vertex.subtasks]
    return {**details, "failure": job.failure or None, "attempt": job.attempt,
            "restored-checkpoint": job.restored_checkpoint, "metrics": job.metrics}


def checkpoint_config(job: JobSnapshot) -> dict[str, Any]:
    settings = job.checkpoints
    assert settings is not None
    retention = settings.retention
    return {
        "mode": settings.mode.lower(),
        "interval": settings.interval_ms, "timeout": settings.timeout_ms,
        "min_pause": settings.min_pause_ms, "max_concurrent": settings.max_concurrent,
        "externalization": {"enabled": retention != "NO_EXTERNALIZED_CHECKPOINTS",
                            "delete_on_cancellation": retention != "RETAIN_ON_CANCELLATION"},
        "state_backend": settings.state_backend,
        "checkpoint_storage": f"FileSystemCheckpointStorage ({settings.checkpoints_dir})",
        "unaligned_checkpoints": False,
        "tolerable_failed_checkpoints": settings.tolerable_failures,
        "aligned_checkpoint_timeout": 0, "checkpoints_after_tasks_finish": True,
        "state_changelog_enabled": False, "changelog_periodic_materialization_interval": 0,
        "changelog_storage": "memory",
    }


def job_exceptions(job: JobSnapshot, max_exceptions: int = 20) -> dict[str, Any]:
    entries: list[dict[str, Any]] = [{"exceptionName": e.exception_name, "stacktrace": e.stacktrace, "timestamp": e.timestamp,
                "taskName": e.task_name, "endpoint": e.endpoint, "taskManagerId": e.task_manager_id,
                "failureLabels": {}, "concurrentExceptions": []} for e in list(job.exceptions)[:max_exceptions]]
    return {"exceptionHistory": {"entries": entries, "truncated": len(job.exceptions) > max_exceptions}}


def job_config(job: JobSnapshot) -> dict[str, Any]:
    return {
        "jid": job.job_id, "name": job.name,
        "execution-config": {
            "job-parallelism": max(v.parallelism for v in job.vertices),
            "object-reuse-mode": False,
            "restart-strategy": job.restart_strategy,
            "user-config": masked_items(job.user_config),
        },
    }


# -- metrics of a vertex and its subtasks (Flink's JobVertexMetricsHandler, SubtaskMetricsHandler,
#    AggregatingSubtasksMetricsHandler): ids below the subtask are the task's metrics (numRecordsIn, ...) and
#    its operators' user metrics, "<operator>.<groups>.<name>" -----------------------------------------------

AGGREGATIONS = ("min", "max", "avg", "sum", "skew")


def query_list(text: str | None) -> list[str] | None:
    """A comma-separated query parameter (`get=`, `agg=`, `taskmanagers=`); None when not given."""
    return None if text is None else [name.strip() for name in text.split(",") if name.strip()]


def parse_aggregations(agg: str | None) -> list[str]:
    """`agg=` of the aggregated metric routes (all of them when not given); ValueError names an unknown one."""
    chosen = query_list(agg) or list(AGGREGATIONS)
    unknown = [name for name in chosen if name not in AGGREGATIONS]
    if unknown:
        raise ValueError(f"agg {', '.join(unknown)} is not supported; accepted: {', '.join(AGGREGATIONS)}")
    return chosen


def subtask_metric_values(metrics: pb.TaskMetrics) -> dict[str, str]:
    """One subtask's metrics as REST shows them: id -> value as text, as Flink's MetricStore."""
    return {
        "numRecordsIn": str(metrics.records_in), "numRecordsOut": str(metrics.records_out),
        "numRecordsInPerSecond": str(metrics.records_in_per_second),
        "numRecordsOutPerSecond": str(metrics.records_out_per_second),
        "backPressuredTimeMsPerSecond": str(metrics.back_pressured_ms_per_second),
        "isBackPressured": str(metrics.back_pressured_ms_per_second > 100).lower(),
        "currentInputWatermark": str(metrics.current_input_watermark),
        **dict(metrics.user_metrics),
    }


def _current_subtask_values(job: JobSnapshot, vertex_id: str, metrics: TaskMetrics) -> dict[int, dict[str, str]]:
    """subtask index -> its metrics, for the subtasks whose current attempt reported (KeyError: no such vertex)."""
    vertex = next((v for v in job.vertices if v.id == vertex_id), None)
    if vertex is None:
        raise KeyError(f"vertex {vertex_id} not found in job {job.job_id}")
    current = {}
    for subtask in vertex.subtasks:
        reported = metrics.get((job.job_id, vertex_id, subtask.index))
        if reported is not None and reported.attempt == subtask.attempt:
            current[subtask.index] = subtask_metric_values(reported)
    return current


def metric_answer(values: dict[str, str], get: list[str] | None) -> list[dict[str, str]]:
    """Without `get`: the ids; with it, those of them that exist, with their values (Flink's shape)."""
    if get is None:
        return [{"id": name} for name in sorted(values)]
    return [{"id": name, "value": values[name]} for name in get if name in values]


def vertex_metrics(job: JobSnapshot, vertex_id: str, metrics: TaskMetrics, get: list[str] | None) -> list[dict[str, str]]:
    """`/jobs/<id>/vertices/<vertex>/metrics`: every subtask's metrics, as "<subtask index>.<id>"."""
    values = {f"{index}.{name}": value for index, subtask in _current_subtask_values(job, vertex_id, metrics).items()
              for name, value in subtask.items()}
    return metric_answer(values, get)


def vertex_watermarks(job: JobSnapshot, vertex_id: str, metrics: TaskMetrics) -> list[dict[str, str]]:
    """`/jobs/<id>/vertices/<vertex>/watermarks`: each subtask's currentInputWatermark, as Flink answers it."""
    current = _current_subtask_values(job, vertex_id, metrics)
    return [{"id": f"{index}.currentInputWatermark", "value": values["currentInputWatermark"]}
            for index, values in sorted(current.items())]


def subtask_metrics(job: JobSnapshot, vertex_id: str, index: int, metrics: TaskMetrics,
                    get: list[str] | None) -> list[dict[str, str]]:
    """`/jobs/<id>/vertices/<vertex>/subtasks/<index>/metrics` (KeyError: no such vertex or subtask)."""
    vertex = next((v for v in job.vertices if v.id == vertex_id), None)
    if vertex is not None and not 0 <= index < vertex.parallelism:
        raise KeyError(f"subtask {index} not found in vertex {vertex_id} (parallelism {vertex.parallelism})")
    return metric_answer(_current_subtask_values(job, vertex_id, metrics).get(index, {}), get)


def aggregated_subtask_metrics(job: JobSnapshot, vertex_id: str, metrics: TaskMetrics, get: list[str] | None,
                               aggregations: list[str], subtasks: list[int] | None) -> list[dict[str, Any]]:
    """`/jobs/<id>/vertices/<vertex>/subtasks/metrics?get=..&agg=min,max,avg,sum&subtasks=..`: each metric
    over the subtasks (all by default); values that are not numbers are left out of the figures."""
    current = _current_subtask_values(job, vertex_id, metrics)
    return aggregated_metrics([current[i] for i in sorted(current) if subtasks is None or i in subtasks], get,
                              aggregations)


def aggregated_metrics(chosen: list[dict[str, str]], get: list[str] | None,
                       aggregations: list[str]) -> list[dict[str, Any]]:
    """Flink's AggregatedMetricsResponseBody over some entities' metric values (subtasks, jobs, TaskManagers):
    without `get` the ids; with it each metric's figures over the entities whose value is a number (one none
    has is left out). Skew as Flink's DoubleDataSkew: the mean absolute deviation in percent of the mean,
    at most 100."""
    if get is None:
        return [{"id": name} for name in sorted({name for values in chosen for name in values})]
    answer: list[dict[str, Any]] = []
    for name in get:
        numbers = []
        for values in chosen:
            try:
                numbers.append(float(values[name]))
            except (KeyError, ValueError):
                continue
        if not numbers:
            continue
        mean = sum(numbers) / len(numbers)
        skew = 0.0 if mean == 0 else min(100.0, sum(abs(n - mean) for n in numbers) / len(numbers) / mean * 100)
        figures = {"min": min(numbers), "max": max(numbers), "sum": sum(numbers), "avg": mean, "skew": skew}
        answer.append({"id": name, **{agg: figures[agg] for agg in aggregations}})
    return answer


def job_metric_values(job: JobSnapshot) -> dict[str, str]:
    """A job's metrics as REST shows them (Flink's job scope: uptime, numRestarts, checkpoint figures, ...)."""
    return {name: str(int(value) if float(value).is_integer() else value) for name, value in job.metrics.items()}


def execution_result(job_id: str, name: str, status: str, start: int, end: int, failure: str) -> dict[str, Any]:
    """Flink's JobExecutionResultResponseBody of an ended job (its JobResult, with the failure-cause Flink's
    client turns back into the exception it raises)."""
    outcome = {JobStatus.FINISHED: "SUCCEEDED", JobStatus.FAILED: "FAILED", JobStatus.CANCELED: "CANCELED"}
    result: dict[str, Any] = {"id": job_id, "name": name, "application-status": outcome.get(JobStatus(status), "UNKNOWN"),
                              "accumulator-results": {}, "net-runtime": max(0, end - start) if start > 0 else 0,
                              "start-time": start, "end-time": end}
    if status == JobStatus.FAILED:
        result["failure-cause"] = failure_cause(RuntimeError(failure or "the job failed"))
    return {"status": {"id": "COMPLETED"}, "job-execution-result": result}
