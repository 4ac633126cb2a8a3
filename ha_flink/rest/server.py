"""The REST endpoint and web dashboard of a JobManager, on `rest.port`: Flink's paths and JSON shapes
(`/overview`, `/jobs/<id>`, `/jobs/<id>/checkpoints`, savepoint triggers, ...; the bodies are built in
views.py), job submission (`POST /jobs` with a pickled job graph), our own `GET /cluster/ha`, the
OpenAPI document at `/openapi.json`, and the dashboard's static files at `/`.

Every JobManager serves it. The leader answers itself; a standby forwards the request to the leader's
REST address (published in ZooKeeper as `rest_server`) and returns its answer; with no leader it answers
503 with a message saying so. The dashboard, `/config`, `/cluster/ha` and the OpenAPI document are
answered by whichever JobManager is asked, so they work during an election too.

Errors are `{"errors": [message]}` with a 4xx status, as Flink's: a bad request never gets a 500."""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import http.client
import logging
import os
import re
import socket
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from pathlib import Path
from typing import Any, NoReturn

import uvicorn

from fastapi import Body, FastAPI, HTTPException, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from ha_flink import FLINK_REVISION, FLINK_VERSION
from ha_flink.common.job_status import JobStatus
from ha_flink.config import Configuration, HighAvailabilityOptions, RestOptions, WebOptions
from ha_flink.config.sensitive import masked
from ha_flink.fs import Storage, StorageError
from ha_flink.rest import flame_graphs, vertex_views, views
from ha_flink.rest.diagnostics import leading_resource_manager, register_diagnostic_routes
from ha_flink.rest.java_throwable import failure_cause
from ha_flink.rest.limits import ContentLengthLimit
from ha_flink.rest.versioning import VersionedPaths
from ha_flink.rpc import flink_pb2 as pb
from ha_flink.ha.job_result_store import JobResult
from ha_flink.runtime.checkpoint.coordinator import SavepointError, check_savepoint_folder, dispose_savepoint
from ha_flink.runtime.checkpoint.stats import CheckpointStats
from ha_flink.runtime.checkpoint.storage import is_absolute_location
from ha_flink.security.tls import rest_client_tls, rest_server_tls, url_opener
from ha_flink.runtime.jobmanager.dispatcher import Dispatcher, JobAlreadyTerminatedError, JobSubmissionError
from ha_flink.runtime.jobmanager.gateway import JobSnapshot, checkpoint_statistics, job_snapshot
from ha_flink.runtime.jobmanager.job_master import JobMaster
from ha_flink.runtime.jobmanager.jobmanager import JobManager
from ha_flink.runtime.jobmanager.resource_manager import ResourceManager, TaskManagerInfo

logger = logging.getLogger(__name__)

FORWARD_TIMEOUT = 10.0
REST_SHUTDOWN_SECONDS = 2  # in-flight requests get this long to be answered when the daemon stops
FORWARDED_HEADER = "x-flink-forwarded-by"
STATIC_DIR = Path(__file__).resolve().parent / "static"
# answered by every JobManager itself, leader or not
LOCAL_PATHS = ("/", "/config", "/cluster/ha", "/openapi.json", "/favicon.ico")
LOCAL_PREFIXES = ("/web/",)
JOB_ID = re.compile(r"^[0-9A-Za-z_-]{1,64}$")
ZOOKEEPER_QUERY_TIMEOUT = 3.0
OPERATION_TTL_SECONDS = 300.0
# one thread of its own for /cluster/ha's ZooKeeper reads: a read stuck in a connection loss holds only it
_ZOOKEEPER_READER = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="rest-zookeeper")  # Flink's rest.async.store-duration


class SavepointTriggerRequest(BaseModel):
    """Flink's SavepointTriggerRequestBody (`triggerId`: the caller's own request id, as Flink 1.15+)."""

    model_config = ConfigDict(populate_by_name=True, extra="forbid")
    target_directory: str | None = Field(None, alias="target-directory")
    cancel_job: bool = Field(False, alias="cancel-job")
    format_type: str | None = Field(None, alias="formatType", pattern="^(CANONICAL|NATIVE)$")
    trigger_id: str | None = Field(None, alias="triggerId", pattern="^[0-9A-Za-z_-]{1,64}$")


class StopWithSavepointRequest(BaseModel):
    """Flink's StopWithSavepointRequestBody. `drain: true`: the sources end their input before the savepoint
    (event time reaches its end: every window and timer fires), and the job finishes with it."""

    model_config = ConfigDict(extra="forbid")
    targetDirectory: str | None = None
    drain: bool = False
    formatType: str | None = Field(None, pattern="^(CANONICAL|NATIVE)$")
    triggerId: str | None = Field(None, pattern="^[0-9A-Za-z_-]{1,64}$")


class CheckpointTriggerRequest(BaseModel):
    """Flink's CheckpointTriggerRequestBody (`flink checkpoint [--full]`)."""

    model_config = ConfigDict(extra="forbid")
    checkpointType: str = Field("CONFIGURED", pattern="^(CONFIGURED|FULL|INCREMENTAL)$")
    triggerId: str | None = Field(None, pattern="^[0-9A-Za-z_-]{1,64}$")


class SavepointDisposalRequest(BaseModel):
    """Flink's SavepointDisposalRequest (`flink savepoint -d <path>`)."""

    model_config = ConfigDict(populate_by_name=True, extra="forbid")
    savepoint_path: str = Field(alias="savepoint-path", min_length=1, max_length=4096)


class TriggeredOperations:
    """The savepoint (and stop-with-savepoint) or checkpoint operations the leader runs, by trigger id
    (Flink's CompletedOperationCache), answering with the savepoint's `location` or the checkpoint's
    `checkpointId`. Kept in the leader's memory: a new leader does not know an old one's."""

    def __init__(self, kind: str, result_key: str) -> None:
        self._operations: dict[tuple[str, str], tuple[float, asyncio.Task[Any]]] = {}
        self.kind = kind
        self.result_key = result_key

    def check_free(self, job_id: str, trigger_id: str | None) -> None:
        if trigger_id is not None and self.status(job_id, trigger_id) is not None:
            raise HTTPException(409, f"triggerId {trigger_id} of job {job_id} is in use already")

    def answer(self, job_id: str, trigger_id: str) -> dict[str, Any]:
        status = self.status(job_id, trigger_id)
        if status is None:
            of_job = f" of job {job_id}" if job_id else ""
            raise HTTPException(404, f"no {self.kind} operation {trigger_id}{of_job} on this leader (a new leader "
                                     "does not know the operations of the one before)")
        return status

    def start(self, job_id: str, operation: Any, trigger_id: str | None = None) -> str:
        now = time.monotonic()
        for key, (started, task) in list(self._operations.items()):
            if task.done() and now - started > OPERATION_TTL_SECONDS:
                del self._operations[key]
        trigger_id = trigger_id or uuid.uuid4().hex
        task = asyncio.ensure_future(operation)
        task.add_done_callback(lambda t: t.cancelled() or t.exception())  # retrieved: no "never retrieved" log
        self._operations[(job_id, trigger_id)] = (now, task)
        return trigger_id

    def status(self, job_id: str, trigger_id: str) -> dict[str, Any] | None:
        entry = self._operations.get((job_id, trigger_id))
        if entry is None:
            return None
        task = entry[1]
        if not task.done():
            return {"status": {"id": "IN_PROGRESS"}, "operation": None}
        error = task.exception() if not task.cancelled() else RuntimeError("the operation was cancelled")
        if error is not None:
            return {"status": {"id": "COMPLETED"}, "operation": {"failure-cause": failure_cause(error)}}
        # (a disposal's result is None: Flink's AsynchronousOperationInfo, whose failure-cause is null)
        return {"status": {"id": "COMPLETED"}, "operation": {self.result_key: task.result()}}


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"errors": [message]}, status_code=status)


def create_app(jm: JobManager, config: Configuration) -> FastAPI:
    app = FastAPI(title="ha-flink REST API", version="1", docs_url=None, redoc_url=None,
                  description="Apache Flink's REST API (paths and JSON shapes) on an HA cluster: any JobManager "
                              "answers; a standby forwards to the leader, or answers 503 during an election.")
    operations = TriggeredOperations("savepoint", "location")
    checkpoint_operations = TriggeredOperations("checkpoint", "checkpointId")
    disposals = TriggeredOperations("savepoint disposal", "failure-cause")
    storage = Storage(config)
    forwarding = url_opener(rest_client_tls(config))  # a standby calls the leader with the REST client keys

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, error: RequestValidationError) -> JSONResponse:
        messages = [f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg')}" for e in error.errors()]
        return JSONResponse({"errors": messages or ["invalid request"]}, status_code=400)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException) -> JSONResponse:
        message = error.detail if isinstance(error.detail, str) else str(error.detail)
        if error.status_code == 404 and message == "Not Found":
            message = f"Not found: {request.method} {request.url.path}"
        return JSONResponse({"errors": [message]}, status_code=error.status_code, headers=error.headers)

    @app.exception_handler(Exception)
    async def internal_error(request: Request, error: Exception) -> JSONResponse:
        logger.exception("REST %s %s failed", request.method, request.url.path)
        return _error(500, f"internal error while answering {request.method} {request.url.path}: {error}")

    @app.middleware("http")
    async def leader_or_forward(request: Request, call_next: Any) -> Response:
        path = request.url.path
        if jm.dispatcher is not None or path in LOCAL_PATHS or path.startswith(LOCAL_PREFIXES):
            return await call_next(request)
        return await _forward(jm, request, forwarding)

    def dispatcher() -> Dispatcher:
        if jm.dispatcher is None:  # leadership lost while the request was being answered
            raise HTTPException(503, "this JobManager just lost its leadership; retry shortly")
        return jm.dispatcher

    def resource_manager() -> ResourceManager:
        return leading_resource_manager(jm)

    def job_master(job_id: str) -> JobMaster:
        """For commands (savepoint, stop): what the JobMaster is to do."""
        master = dispatcher().jobs.get(job_id)
        if master is None:
            not_found(job_id)
        return master

    def snapshot(job_id: str) -> JobSnapshot:
        """For views: what they may read of the job, copied now."""
        return job_snapshot(job_master(job_id), int(time.time() * 1000))

    def snapshots() -> list[JobSnapshot]:
        now = int(time.time() * 1000)
        return [job_snapshot(master, now) for master in dispatcher().jobs.values()]

    def overviews() -> list[dict[str, Any]]:
        leader = dispatcher()
        return views.jobs_overview(snapshots(), dict(leader.pending), dict(leader.lost), int(time.time() * 1000))

    def not_found(job_id: str) -> NoReturn:
        if job_id in dispatcher().pending:
            raise HTTPException(503, f"job {job_id} is stored, but this JobManager cannot recover it yet (tried "
                                     f"again while it leads): {dispatcher().pending[job_id]}")
        if not dispatcher().recovered:  # a leader of a moment ago: the job may be among those it recovers
            raise HTTPException(503, f"this JobManager became the leader moments ago and is still recovering the "
                                     f"stored jobs; job {job_id} may be one of them: retry shortly")
        raise HTTPException(404, f"Job {job_id} not found")

    # logs, thread dumps, environment, TaskManager metrics (before /taskmanagers/{id}, which would take theirs)
    register_diagnostic_routes(app, jm, config)

    # -- cluster ---------------------------------------------------------------------------------------

    @app.get("/config", summary="Dashboard configuration")
    async def dashboard_config() -> dict[str, Any]:
        offset = -time.timezone * 1000
        return {"refresh-interval": int(config.get(WebOptions.REFRESH_INTERVAL).total_seconds() * 1000),
                "timezone-name": time.tzname[0], "timezone-offset": offset,
                "flink-version": FLINK_VERSION, "flink-revision": FLINK_REVISION,
                "features": {"web-submit": False, "web-cancel": config.get(WebOptions.CANCEL_ENABLE),
                             "web-rescale": False, "web-history": False}}

    @app.get("/overview", summary="Cluster overview")
    async def overview() -> dict[str, Any]:
        rm = resource_manager()
        states = [job.status for job in snapshots()]
        return {
            "taskmanagers": len(rm.task_managers),
            "slots-total": rm.total_slots(),
            "slots-available": len(rm.free_slots()),
            "jobs-running": sum(not s.is_globally_terminal_state() for s in states),
            "jobs-finished": states.count(JobStatus.FINISHED),
            "jobs-cancelled": states.count(JobStatus.CANCELED),
            "jobs-failed": states.count(JobStatus.FAILED),
            "flink-version": FLINK_VERSION,
            "flink-commit": FLINK_REVISION,
        }

    @app.get("/cluster/ha", summary="High availability: leader, standbys, election history, ZooKeeper state")
    async def cluster_ha() -> dict[str, Any]:
        return await _cluster_ha(jm, config)

    @app.get("/jobmanager/config", summary="The cluster configuration (secrets hidden)")
    async def jobmanager_config() -> list[dict[str, str]]:
        return [{"key": k, "value": masked(k, v)} for k, v in sorted(config.to_dict().items())]

    @app.get("/jobmanager/metrics", summary="JobManager metrics: the list of ids, or values with ?get=a,b")
    async def jobmanager_metrics(get: str | None = Query(None, max_length=2000)) -> list[dict[str, Any]]:
        metrics = {s.name.removeprefix("jobmanager_"): s.value for s in jm.metric_samples() if not s.labels}
        if get is None:
            return [{"id": name} for name in sorted(metrics)]
        wanted = [name.strip() for name in get.split(",") if name.strip()]
        return [{"id": name, "value": str(metrics[name])} for name in wanted if name in metrics]

    @app.get("/taskmanagers", summary="The registered TaskManagers")
    async def taskmanagers() -> dict[str, Any]:
        dispatcher()
        rm = resource_manager()
        return {"taskmanagers": [_taskmanager(rm, info) for info in rm.task_managers.values()]}

    @app.get("/taskmanagers/{taskmanager_id}", summary="One TaskManager, with the tasks it runs")
    async def taskmanager(taskmanager_id: str) -> dict[str, Any]:
        jobs = snapshots()
        rm = resource_manager()
        info = rm.task_managers.get(taskmanager_id)
        if info is None:
            raise HTTPException(404, f"TaskManager {taskmanager_id} is not registered")
        tasks = collections.Counter(job.job_id for job in jobs if job.status == JobStatus.RUNNING
                                    for _, subtask in job.subtasks()
                                    if subtask.resource_id == info.resource_id and subtask.host == info.address)
        zero = dict.fromkeys(("heapUsed", "heapCommitted", "heapMax", "nonHeapUsed", "nonHeapCommitted", "nonHeapMax",
                              "directCount", "directUsed", "directMax", "mappedCount", "mappedUsed", "mappedMax",
                              "nettyShuffleMemorySegmentsAvailable", "nettyShuffleMemorySegmentsUsed",
                              "nettyShuffleMemorySegmentsTotal", "nettyShuffleMemoryAvailable",
                              "nettyShuffleMemoryUsed", "nettyShuffleMemoryTotal"), 0)
        shown = _taskmanager(rm, info)
        return {**shown, "assignedTasks": sum(tasks.values()),
                # (by job, not by slot: the tasks of each job on this TaskManager, counted together)
                "allocatedSlots": [{"jobId": job_id, "resource": _resource_profile(1), "assignedTasks": count}
                                   for job_id, count in sorted(tasks.items())],
                "metrics": {**zero, "garbageCollectors": []}}

    # -- jobs ------------------------------------------------------------------------------------------

    @app.get("/jobs", summary="Job ids and states")
    async def jobs() -> dict[str, Any]:
        return {"jobs": [{"id": job["jid"], "status": job["state"]}
                         for job in overviews()]}

    @app.get("/jobs/overview", summary="Every job with its task counts")
    async def jobs_overview() -> dict[str, Any]:
        return {"jobs": overviews()}

    @app.post("/jobs", status_code=202, summary="Submit a job (body: a job graph, as `flink run` sends it)")
    async def submit(request: Request) -> Any:
        try:
            job_id = await dispatcher().submit(await request.body())
        except JobSubmissionError as error:
            return _error(400, str(error))
        return JSONResponse({"jobid": job_id}, status_code=202)

    @app.get("/jobs/metrics", summary="Job metrics aggregated over jobs (?get=, agg=, jobs=)")
    async def jobs_metrics(get: str | None = Query(None, max_length=8000), agg: str | None = Query(None),
                           jobs: str | None = Query(None, max_length=8000)) -> list[dict[str, Any]]:
        chosen = [job for job in snapshots() if jobs is None or job.job_id in jobs.split(",")]
        return views.aggregated_metrics([views.job_metric_values(job) for job in chosen], metric_names(get),
                                        aggregations(agg))

    @app.get("/jobs/{job_id}", summary="Job details: state, vertices with records, plan")
    async def job(job_id: str) -> Any:
        return await job_view(job_id, views.job_details)

    @app.get("/jobs/{job_id}/dashboard", summary="Ours: the job's details with its failure, attempt, restore, "
                                                  "job metrics and each vertex's records/s and subtasks")
    async def job_dashboard(job_id: str) -> Any:
        return await job_view(job_id, views.job_dashboard)

    async def job_view(job_id: str, view: Any) -> Any:
        master = dispatcher().jobs.get(job_id)
        if master is None:
            if not dispatcher().recovered or job_id in dispatcher().pending:
                not_found(job_id)
            return await _finished_job(jm, job_id, dashboard=view is views.job_dashboard)
        now = int(time.time() * 1000)
        return view(job_snapshot(master, now), await task_metrics(), now)

    @app.get("/jobs/{job_id}/status", summary="The job's state")
    async def job_status(job_id: str) -> Any:
        master = dispatcher().jobs.get(job_id)
        if master is None:
            if not dispatcher().recovered or job_id in dispatcher().pending:
                not_found(job_id)
            result = await _job_result(jm, job_id)
            return {"status": result.status} if result is not None else _error(404, f"Job {job_id} not found")
        return {"status": master.status}

    @app.get("/jobs/{job_id}/execution-result", summary="The job's result once it ended (IN_PROGRESS before)")
    async def job_execution_result(job_id: str) -> Any:
        master = dispatcher().jobs.get(job_id)
        if master is not None and not master.status.is_globally_terminal_state():
            return {"status": {"id": "IN_PROGRESS"}}
        if master is not None:
            job = snapshot(job_id)
            return views.execution_result(job_id, job.name, job.status, job.start_time, job.end_time, job.failure)
        if not dispatcher().recovered or job_id in dispatcher().pending:
            not_found(job_id)
        result = await _job_result(jm, job_id)
        if result is None:
            return _error(404, f"Job {job_id} not found")
        end = int(result.timestamp * 1000)
        return views.execution_result(job_id, "", result.status, -1, end, result.error or "")

    @app.patch("/jobs/{job_id}/clientHeartbeat", status_code=202, summary="An attached client is still there")
    async def client_heartbeat(job_id: str) -> Any:
        job_master(job_id)  # (a client-heartbeat timeout cancels nothing here: the job is not tied to a client)
        return JSONResponse({}, status_code=202)

    @app.get("/jobs/{job_id}/accumulators", summary="The job's accumulators (PyFlink's DataStream API has none)")
    async def job_accumulators(job_id: str, includeSerializedValue: bool = Query(False)) -> dict[str, Any]:
        snapshot(job_id)
        # (Flink's client needs the serialized map even when empty, includeSerializedValue or not)
        return {"job-accumulators": [], "user-task-accumulators": [], "serialized-user-task-accumulators": {}}

    @app.get("/jobs/{job_id}/metrics", summary="Job metrics: ids, or values with ?get=")
    async def job_metrics(job_id: str, get: str | None = Query(None, max_length=8000)) -> list[dict[str, str]]:
        return views.metric_answer(views.job_metric_values(snapshot(job_id)), metric_names(get))

    @app.get("/jobs/{job_id}/resource-requirements", summary="Each vertex's parallelism bounds")
    async def resource_requirements(job_id: str) -> dict[str, Any]:
        # (Flink's JobResourceRequirementsBody: the default scheduler runs each vertex at its parallelism)
        return {vertex.id: {"parallelism": {"lowerBound": 1, "upperBound": vertex.parallelism}}
                for vertex in snapshot(job_id).vertices}

    @app.put("/jobs/{job_id}/resource-requirements", summary="Refused: needs Flink's adaptive scheduler")
    async def update_resource_requirements(job_id: str) -> Any:
        snapshot(job_id)
        return _error(400, "Changing a running job's resource requirements is only supported by Flink's adaptive "
                           "scheduler, which ha-flink does not have: take a savepoint (flink stop) and run the job "
                           "again from it at another parallelism (flink run -s <savepoint> -p <n>)")

    @app.get("/jobs/{job_id}/jobmanager/config", summary="The configuration of the JobManager running the job")
    async def job_jobmanager_config(job_id: str) -> list[dict[str, str]]:
        snapshot(job_id)
        return await jobmanager_config()

    # -- a vertex, its subtasks and their attempts (vertex_views.py) --

    async def vertex_view(job_id: str, build: Any, *args: Any) -> Any:
        try:
            return build(snapshot(job_id), *args)
        except KeyError as error:
            raise HTTPException(404, error.args[0]) from None

    @app.get("/jobs/{job_id}/vertices/{vertex_id}", summary="A vertex with its subtasks")
    async def vertex(job_id: str, vertex_id: str) -> Any:
        return await vertex_view(job_id, vertex_views.vertex_details, vertex_id, await task_metrics(), _now())

    @app.get("/jobs/{job_id}/vertices/{vertex_id}/subtasktimes", summary="When each subtask reached its states")
    async def subtask_times(job_id: str, vertex_id: str) -> Any:
        return await vertex_view(job_id, vertex_views.subtask_times, vertex_id, _now())

    @app.get("/jobs/{job_id}/vertices/{vertex_id}/taskmanagers", summary="A vertex's subtasks by TaskManager")
    async def vertex_taskmanagers(job_id: str, vertex_id: str) -> Any:
        return await vertex_view(job_id, vertex_views.vertex_taskmanagers, vertex_id, await task_metrics(), _now())

    @app.get("/jobs/{job_id}/vertices/{vertex_id}/backpressure", summary="A vertex's back pressure")
    async def vertex_back_pressure(job_id: str, vertex_id: str) -> Any:
        return await vertex_view(job_id, vertex_views.back_pressure, vertex_id, await task_metrics(), _now())

    @app.get("/jobs/{job_id}/vertices/{vertex_id}/accumulators", summary="A vertex's accumulators (none)")
    async def vertex_accumulators(job_id: str, vertex_id: str) -> Any:
        return await vertex_view(job_id, vertex_views.vertex_accumulators, vertex_id)

    @app.get("/jobs/{job_id}/vertices/{vertex_id}/subtasks/accumulators", summary="Each subtask's accumulators")
    async def subtasks_accumulators(job_id: str, vertex_id: str) -> Any:
        return await vertex_view(job_id, vertex_views.subtasks_accumulators, vertex_id)

    async def sample_vertex(job_id: str, vertex_id: str, subtask: int | None) -> flame_graphs.Stacks:
        """The stacks of a vertex's task threads (one subtask's, or all), from the TaskManagers running them."""
        vertex = vertex_views.vertex_of(snapshot(job_id), vertex_id)
        by_taskmanager: dict[str, list[int]] = {}
        for task in vertex.subtasks:
            if task.resource_id is not None and (subtask is None or task.index == subtask):
                by_taskmanager.setdefault(task.resource_id, []).append(task.index)
        rm = resource_manager()
        wait_s = graphs.samples * graphs.delay_ms / 1000 + 10.0

        async def sampled(resource_id: str, indices: list[int]) -> flame_graphs.Stacks:
            info = rm.task_managers[resource_id]
            answer = await info.gateway(jm.session_id).sample_task_stacks(pb.StackSampleRequest(
                job_id=job_id, vertex_id=vertex_id, subtasks=indices, samples=graphs.samples,
                delay_ms=graphs.delay_ms, depth=graphs.depth), wait_s)
            return collections.Counter({tuple(s.frames): s.count for s in answer.stacks})

        return await flame_graphs.gather_stacks([sampled(r, i) for r, i in by_taskmanager.items()
                                                 if r in rm.task_managers])

    graphs = flame_graphs.FlameGraphs(config, sample_vertex)

    @app.get("/jobs/{job_id}/vertices/{vertex_id}/flamegraph",
             summary="A vertex's flame graph of sampled task stacks (rest.flamegraph.enabled; type=FULL)")
    async def vertex_flame_graph(job_id: str, vertex_id: str, type: str = Query("FULL", max_length=16),
                                 subtaskindex: int | None = Query(None, ge=0)) -> Any:
        await vertex_view(job_id, vertex_views.vertex_of, vertex_id)
        if type.upper() != "FULL":
            return _error(400, f"flame graph type {type} is not offered: Python cannot tell whether a thread is "
                               "on a CPU, so only FULL (every sample) is; ask for type=FULL")
        return graphs.answer(job_id, vertex_id, subtaskindex)

    # -- metrics of a vertex's subtasks: the task's and the user's (RuntimeContext.get_metrics_group()) --

    async def task_metrics() -> views.TaskMetrics:
        return await jm.metric_fetcher.task_metrics() if jm.metric_fetcher is not None else {}

    metric_names = views.query_list

    def aggregations(agg: str | None) -> list[str]:
        try:
            return views.parse_aggregations(agg)
        except ValueError as error:
            raise HTTPException(400, str(error)) from None

    @app.get("/jobs/{job_id}/vertices/{vertex_id}/metrics", summary="A vertex's metrics: ids, or values with ?get=")
    async def vertex_metrics(job_id: str, vertex_id: str, get: str | None = Query(None, max_length=8000)) -> Any:
        try:
            return views.vertex_metrics(snapshot(job_id), vertex_id, await task_metrics(), metric_names(get))
        except KeyError as error:
            raise HTTPException(404, error.args[0]) from None

    @app.get("/jobs/{job_id}/vertices/{vertex_id}/watermarks", summary="Each subtask's current input watermark")
    async def vertex_watermarks(job_id: str, vertex_id: str) -> Any:
        return await vertex_view(job_id, views.vertex_watermarks, vertex_id, await task_metrics())

    @app.get("/jobs/{job_id}/vertices/{vertex_id}/subtasks/metrics",
             summary="A vertex's metrics aggregated over its subtasks (?get=, agg=min,max,avg,sum, subtasks=0,2-3)")
    async def aggregated_metrics(job_id: str, vertex_id: str, get: str | None = Query(None, max_length=8000),
                                 agg: str | None = Query(None, max_length=100),
                                 subtasks: str | None = Query(None, max_length=1000)) -> Any:
        chosen_aggregations = aggregations(agg)
        try:
            chosen = _subtask_list(subtasks)
        except ValueError as error:
            return _error(400, str(error))
        try:
            return views.aggregated_subtask_metrics(snapshot(job_id), vertex_id, await task_metrics(),
                                                    metric_names(get), chosen_aggregations, chosen)
        except KeyError as error:
            raise HTTPException(404, error.args[0]) from None

    @app.get("/jobs/{job_id}/vertices/{vertex_id}/subtasks/{index}", summary="A subtask's current attempt")
    async def subtask(job_id: str, vertex_id: str, index: int) -> Any:
        return await vertex_view(job_id, vertex_views.subtask_attempt, vertex_id, index, None, await task_metrics(),
                                 _now())

    @app.get("/jobs/{job_id}/vertices/{vertex_id}/subtasks/{index}/attempts/{attempt}",
             summary="A subtask's attempt (the current one: earlier attempts are not kept)")
    async def subtask_attempt(job_id: str, vertex_id: str, index: int, attempt: int) -> Any:
        return await vertex_view(job_id, vertex_views.subtask_attempt, vertex_id, index, attempt,
                                 await task_metrics(), _now())

    @app.get("/jobs/{job_id}/vertices/{vertex_id}/subtasks/{index}/attempts/{attempt}/accumulators",
             summary="A subtask attempt's accumulators (none)")
    async def subtask_attempt_accumulators(job_id: str, vertex_id: str, index: int, attempt: int) -> Any:
        return await vertex_view(job_id, vertex_views.subtask_accumulators, vertex_id, index, attempt)

    @app.get("/jobs/{job_id}/vertices/{vertex_id}/subtasks/{index}/metrics",
             summary="One subtask's metrics: ids, or values with ?get=")
    async def subtask_metrics(job_id: str, vertex_id: str, index: int,
                              get: str | None = Query(None, max_length=8000)) -> Any:
        try:
            return views.subtask_metrics(snapshot(job_id), vertex_id, index, await task_metrics(), metric_names(get))
        except KeyError as error:
            raise HTTPException(404, error.args[0]) from None

    @app.patch("/jobs/{job_id}", status_code=202, summary="Cancel a job (mode=cancel)")
    async def cancel(job_id: str, mode: str = Query("cancel", max_length=100)) -> Any:
        if mode != "cancel":
            return _error(400, f"mode {mode!r} is not supported; accepted: cancel")
        if job_id not in dispatcher().jobs and job_id not in dispatcher().pending:
            not_found(job_id)
        try:
            dispatcher().cancel(job_id)
        except JobAlreadyTerminatedError as error:
            raise HTTPException(409, str(error)) from None
        return JSONResponse({}, status_code=202)

    @app.get("/jobs/{job_id}/config", summary="Job configuration")
    async def job_config(job_id: str) -> dict[str, Any]:
        return views.job_config(snapshot(job_id))

    @app.get("/jobs/{job_id}/exceptions", summary="Job exception history")
    async def job_exceptions(job_id: str, maxExceptions: int = Query(20, ge=1, le=1000)) -> dict[str, Any]:
        return views.job_exceptions(snapshot(job_id), maxExceptions)

    @app.get("/jobs/{job_id}/checkpoints", summary="Checkpoint statistics: counts, summary, latest, history")
    async def job_checkpoints(job_id: str) -> dict[str, Any]:
        statistics = checkpoint_statistics(job_master(job_id))
        if statistics is None:
            raise HTTPException(404, f"Checkpointing is not enabled for job {job_id}")
        return statistics

    @app.post("/jobs/{job_id}/checkpoints", status_code=202, summary="Trigger a checkpoint (flink checkpoint)")
    async def trigger_checkpoint(job_id: str, body: CheckpointTriggerRequest | None = Body(None)) -> Any:
        body = body or CheckpointTriggerRequest.model_validate({})
        master = job_master(job_id)
        if master.status != JobStatus.RUNNING:
            raise HTTPException(409, f"Job {job_id} is {master.status}, not RUNNING: no checkpoint can be taken")
        checkpoint_operations.check_free(job_id, body.triggerId)
        trigger_id = checkpoint_operations.start(job_id, master.trigger_checkpoint(body.checkpointType),
                                                 body.triggerId)
        return JSONResponse({"request-id": trigger_id}, status_code=202)

    @app.get("/jobs/{job_id}/checkpoints/config", summary="Checkpointing configuration")
    async def job_checkpoint_config(job_id: str) -> dict[str, Any]:
        job = snapshot(job_id)
        if job.checkpoints is None:
            raise HTTPException(404, f"Checkpointing is not enabled for job {job_id}")
        return views.checkpoint_config(job)

    @app.get("/jobs/{job_id}/checkpoints/details/{checkpoint_id}", summary="One checkpoint of the history")
    async def checkpoint_details(job_id: str, checkpoint_id: int) -> dict[str, Any]:
        return checkpoint_stats(job_id, checkpoint_id).to_json()

    @app.get("/jobs/{job_id}/checkpoints/details/{checkpoint_id}/subtasks/{vertex_id}",
             summary="One checkpoint of one vertex, by subtask")
    async def checkpoint_subtask_details(job_id: str, checkpoint_id: int, vertex_id: str) -> dict[str, Any]:
        stats = checkpoint_stats(job_id, checkpoint_id)
        if vertex_id not in stats.subtasks:
            raise HTTPException(404, f"vertex {vertex_id} has no subtask in checkpoint {checkpoint_id} of job {job_id}")
        return stats.subtask_details_json(vertex_id)

    def checkpoint_stats(job_id: str, checkpoint_id: int) -> CheckpointStats:
        coordinator = job_master(job_id).coordinator
        if coordinator is None:
            raise HTTPException(404, f"Checkpointing is not enabled for job {job_id}")
        stats = coordinator.stats.details(checkpoint_id)
        if stats is None:
            raise HTTPException(404, f"checkpoint {checkpoint_id} of job {job_id} is not among the last "
                                     f"{coordinator.stats.history_size} this leader keeps")
        return stats

    @app.get("/jobs/{job_id}/checkpoints/{trigger_id}", summary="Status of a checkpoint triggered on request")
    async def checkpoint_status(job_id: str, trigger_id: str) -> dict[str, Any]:
        return checkpoint_operations.answer(job_id, trigger_id)

    @app.get("/jobs/{job_id}/plan", summary="The job's dataflow plan")
    async def job_plan(job_id: str) -> dict[str, Any]:
        return {"plan": views.job_plan(snapshot(job_id))}

    def start_savepoint(job_id: str, target: str | None, then: str, trigger_id: str | None,
                        format_type: str | None) -> JSONResponse:
        if format_type == "NATIVE":  # (refused before it is accepted: never a canonical one in its place)
            raise HTTPException(400, "formatType NATIVE is not supported: ha-flink writes CANONICAL savepoints "
                                     "(its state format, which any state backend restores); ask for CANONICAL")
        master = job_master(job_id)
        if master.status != JobStatus.RUNNING:
            raise HTTPException(409, f"Job {job_id} is {master.status}, not RUNNING: no savepoint can be taken")
        if target is not None and not is_absolute_location(target):
            raise HTTPException(400, f"target directory {target!r} is neither an absolute path nor a URL")
        operations.check_free(job_id, trigger_id)
        trigger_id = operations.start(job_id, master.trigger_savepoint(target, then), trigger_id)
        return JSONResponse({"request-id": trigger_id}, status_code=202)

    @app.post("/jobs/{job_id}/savepoints", status_code=202, summary="Trigger a savepoint (then cancel, if asked)")
    async def trigger_savepoint(job_id: str, body: SavepointTriggerRequest | None = Body(None)) -> Any:
        body = body or SavepointTriggerRequest.model_validate({})
        return start_savepoint(job_id, body.target_directory, "cancel" if body.cancel_job else "", body.trigger_id,
                               body.format_type)

    @app.post("/jobs/{job_id}/stop", status_code=202, summary="Stop a job with a savepoint")
    async def stop_with_savepoint(job_id: str, body: StopWithSavepointRequest | None = Body(None)) -> Any:
        body = body or StopWithSavepointRequest.model_validate({})
        return start_savepoint(job_id, body.targetDirectory, "drain" if body.drain else "stop", body.triggerId,
                               body.formatType)

    @app.get("/jobs/{job_id}/savepoints/{trigger_id}", summary="Status of a savepoint or stop operation")
    async def savepoint_status(job_id: str, trigger_id: str) -> dict[str, Any]:
        return operations.answer(job_id, trigger_id)

    @app.post("/savepoint-disposal", status_code=202, summary="Dispose of a savepoint (flink savepoint -d)")
    async def dispose(body: SavepointDisposalRequest) -> Any:
        loop = asyncio.get_running_loop()
        # checked before it is accepted: a refusal is this request's 400, which Flink's CLI shows as it is
        try:
            await loop.run_in_executor(None, check_savepoint_folder, storage, body.savepoint_path)
        except SavepointError as error:
            return _error(400, str(error))
        except StorageError as error:
            return _error(503, f"the savepoint's storage cannot be reached: {error}")

        async def disposal() -> None:
            await loop.run_in_executor(None, dispose_savepoint, storage, body.savepoint_path)

        trigger_id = disposals.start("", disposal())
        return JSONResponse({"request-id": trigger_id}, status_code=202)

    @app.get("/savepoint-disposal/{trigger_id}", summary="Status of a savepoint disposal")
    async def disposal_status(trigger_id: str) -> dict[str, Any]:
        return disposals.answer("", trigger_id)

    # -- dashboard -------------------------------------------------------------------------------------

    @app.get("/", include_in_schema=False)
    async def dashboard() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html")

    app.mount("/web", StaticFiles(directory=STATIC_DIR), name="web")
    return app


def _subtask_list(text: str | None) -> list[int] | None:
    """Flink's `subtasks` parameter: indexes and ranges, "0,2-4"; None: every subtask."""
    if text is None or not text.strip():
        return None
    chosen: list[int] = []
    for part in text.split(","):
        first, _, last = part.strip().partition("-")
        if not first.isdigit() or (last and not last.isdigit()) or (last and int(last) < int(first)):
            raise ValueError(f"subtasks {text!r}: {part.strip()!r} is neither an index nor a range such as 0-3")
        chosen += range(int(first), int(last or first) + 1)
    return chosen


def _resource_profile(slots: int) -> dict[str, Any]:
    """Flink's ResourceProfileInfo: slots are uniform and unmetered here (one core each, memory not split)."""
    return {"cpuCores": float(slots), "taskHeapMemory": 0, "taskOffHeapMemory": 0, "managedMemory": 0,
            "networkMemory": 0, "extendedResources": {}}


def _taskmanager(rm: ResourceManager, info: TaskManagerInfo) -> dict[str, Any]:
    """Flink's TaskManagerInfo (memory and hardware figures that a Python TaskManager does not have are 0)."""
    free = sum(1 for owner, _ in rm.free_slots() if owner is info)
    return {"id": info.resource_id, "path": info.address, "dataPort": info.data_port,
            "jmxPort": -1, "timeSinceLastHeartbeat": int((time.monotonic() - info.last_heartbeat) * 1000),
            "slotsNumber": info.slots, "freeSlots": free, "assignedTasks": 0,
            "totalResource": _resource_profile(info.slots), "freeResource": _resource_profile(free),
            "hardware": {"cpuCores": 0, "physicalMemory": 0, "freeMemory": 0, "managedMemory": 0},
            "memoryConfiguration": {key: 0 for key in (
                "frameworkHeap", "taskHeap", "frameworkOffHeap", "taskOffHeap", "networkMemory", "managedMemory",
                "jvmMetaspace", "jvmOverhead", "totalFlinkMemory", "totalProcessMemory")},
            "blocked": False}


async def _job_result(jm: JobManager, job_id: str) -> JobResult | None:
    """The kept result of a job that ended under an earlier leader, or None."""
    dispatcher = jm.dispatcher
    if not JOB_ID.match(job_id) or dispatcher is None:
        return None
    result: JobResult | None = await asyncio.get_running_loop().run_in_executor(None, dispatcher.results.get, job_id)
    return result


async def _finished_job(jm: JobManager, job_id: str, dashboard: bool = False) -> Any:
    """A job this leader does not run: ended under an earlier leader (its result is kept), or unknown."""
    result = await _job_result(jm, job_id)
    if result is None:
        return _error(404, f"Job {job_id} not found")
    end, now = int(result.timestamp * 1000), _now()
    details = {"jid": job_id, "name": "", "isStoppable": False, "state": result.status, "job-type": "STREAMING",
               "start-time": -1, "end-time": end, "duration": 0, "maxParallelism": -1, "now": now,
               "timestamps": {str(result.status): end}, "vertices": [],
               "status-counts": {state: 0 for state in views.TASK_STATES},
               "plan": {"jid": job_id, "name": "", "type": "STREAMING", "nodes": []}, "pending-operators": 0}
    return {**details, "failure": result.error} if dashboard else details


def _now() -> int:
    return int(time.time() * 1000)


async def _cluster_ha(jm: JobManager, config: Configuration) -> dict[str, Any]:
    """This JobManager's view of the election. Contenders come from the latch nodes in ZooKeeper."""
    contenders: list[dict[str, Any]] | None = None
    error = None
    if jm.zookeeper_state not in ("CONNECTED", "NONE"):
        # kazoo would queue the reads until it reconnects: do not tie up a thread per request meanwhile
        error = f"cannot list the contenders: the ZooKeeper connection is {jm.zookeeper_state}"
    else:
        try:
            contenders = await asyncio.wait_for(
                asyncio.get_running_loop().run_in_executor(_ZOOKEEPER_READER, jm.ha.contenders),
                ZOOKEEPER_QUERY_TIMEOUT)
        except Exception as exc:  # ZooKeeper unreachable: say so, answer the rest
            error = f"cannot list the contenders in ZooKeeper: {type(exc).__name__} {exc}".strip()
    history = list(jm.leader_history)
    current = history[-1] if history and history[-1]["session_id"] else None
    leading = jm.dispatcher is not None
    if getattr(jm.ha, "client", None) is None:  # no ZooKeeper HA: this one JobManager leads, no election
        history = [{"timestamp": jm.started_at, "leader": jm.rest_address, "session_id": str(jm.session_id)}]
        current = history[0] if leading else None
        contenders = [{"address": jm.address, "rest": jm.rest_address, "pid": str(os.getpid()), "latch": None}]
    masters = []
    for index, contender in enumerate(contenders or []):
        rest = contender.get("rest")
        is_leader = current is not None and rest == current["leader"]
        masters.append({"address": contender.get("address"), "rest-address": rest, "pid": contender.get("pid"),
                        "role": "leader" if is_leader else "standby", "latch": contender.get("latch"),
                        "position": index})
    return {
        "cluster-id": config.get(HighAvailabilityOptions.HA_CLUSTER_ID),
        "high-availability": config.get(HighAvailabilityOptions.HA_MODE),
        "answered-by": {"address": jm.address, "rest-address": jm.rest_address,
                        "role": "leader" if leading else "standby"},
        "leader": None if current is None else {
            "rest-address": current["leader"], "session-id": current["session_id"], "since": current["timestamp"],
            "address": next((m["address"] for m in masters if m["rest-address"] == current["leader"]), None)},
        "election-in-progress": current is None,
        "masters": masters,
        "masters-error": error,
        "leader-changes": jm.leader_changes,
        "election-history": list(reversed(history)),
        "zookeeper": {"quorum": config.get(HighAvailabilityOptions.HA_ZOOKEEPER_QUORUM),
                      "state": jm.zookeeper_state},
    }


async def _forward(jm: JobManager, request: Request, opener: urllib.request.OpenerDirector) -> Response:
    leader = jm.rest_leader
    if leader is None or request.headers.get(FORWARDED_HEADER):
        return _error(503, f"No leading JobManager at the moment (leader election in progress; asked "
                           f"{jm.rest_address}); retry shortly")
    # the path as it came, percent-encoded (a decoded non-ASCII path could not be sent on)
    path = urllib.parse.quote(request.scope.get("raw_path", b"").decode("latin-1") or request.url.path,
                              safe="/%:@!$&'()*+,;=-._~")
    url = f"{leader}{path}" + (f"?{request.url.query}" if request.url.query else "")
    body = await request.body()

    def call() -> tuple[int, bytes, str]:
        forwarded = urllib.request.Request(url, data=body or None, method=request.method,
                                           headers={FORWARDED_HEADER: jm.address,
                                                    "content-type": request.headers.get("content-type", "")})
        try:
            with opener.open(forwarded, timeout=FORWARD_TIMEOUT) as answer:
                return answer.status, answer.read(), answer.headers.get("content-type", "application/json")
        except urllib.error.HTTPError as error:
            return error.code, error.read(), error.headers.get("content-type", "application/json")

    try:
        status, content, media_type = await asyncio.get_running_loop().run_in_executor(None, call)
    except (OSError, http.client.HTTPException) as error:  # refused, timed out, or died while answering
        return _error(503, f"the leading JobManager at {leader} does not answer: {type(error).__name__} {error}")
    return Response(content, status_code=status, media_type=media_type)


class UvicornRestEndpoint:
    """The REST API and dashboard of one JobManager, served by uvicorn on the JobManager's event loop."""

    def __init__(self, jm: JobManager) -> None:
        bind = jm.config.get(RestOptions.BIND_ADDRESS) or jm.bind_host  # (jobmanager.bind-host, else 0.0.0.0)
        tls = rest_server_tls(jm.config)  # before binding: a keystore that cannot be used stops the start
        sock = bind_socket(bind, jm.config.get(RestOptions.PORT))
        self.address = f"{'https' if tls else 'http'}://{jm.host}:{sock.getsockname()[1]}"
        app = ContentLengthLimit(VersionedPaths(create_app(jm, jm.config)),
                                 jm.config.get(RestOptions.SERVER_MAX_CONTENT_LENGTH))
        config = uvicorn.Config(app, log_level="warning", lifespan="off",
                                timeout_graceful_shutdown=REST_SHUTDOWN_SECONDS)
        config.load()
        if tls is not None:
            # uvicorn builds its SSL context from files only; ours is built from the keystore in memory
            config.ssl = tls.server_context()
        self._server = uvicorn.Server(config)
        self._serving = asyncio.ensure_future(self._server.serve(sockets=[sock]))

    async def close(self) -> None:
        self._server.should_exit = True
        try:
            await asyncio.wait_for(asyncio.shield(self._serving), REST_SHUTDOWN_SECONDS + 1)
        except asyncio.TimeoutError:
            logger.warning("The REST server did not stop within %d s", REST_SHUTDOWN_SECONDS + 1)


async def start_rest_endpoint(jm: JobManager) -> UvicornRestEndpoint:
    """The `RestEndpointFactory` of every JobManager that serves REST (`rest.port`, `rest.bind-address`)."""
    return UvicornRestEndpoint(jm)


def bind_socket(host: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as error:
        sock.close()
        raise OSError(f"cannot bind the REST port {host}:{port} (rest.port): {error.strerror}") from None
    sock.listen(128)
    sock.setblocking(False)
    return sock
