"""Flink's diagnostic REST endpoints of the JobManager and the TaskManagers, in Flink 2.3's shapes: the
environment (`EnvironmentInfo`), log file lists (`LogListInfo`), log files as text (`/jobmanager/log`,
`/stdout`, `/logs/<file>` and the TaskManagers' own), thread dumps (`ThreadDumpInfo`), log URLs
(`LogUrlResponse`) and a TaskManager's own metrics (`MetricCollectionResponseBody`, aggregated over
TaskManagers as `AggregatedMetricsResponseBody`).

These paths are not answered locally: a standby forwards them to the leader (server.py's middleware), so
`/jobmanager/*` is the leader's view, as Flink's REST serves the leading JobManager's. A TaskManager's
figures are asked of it over gRPC by the leader (`TaskExecutorGateway`), never read from its disk here,
so its log is readable without SSH. A log file name must be a plain file of the log directory: a name
with '/' or '..' is refused (400), a symbolic link or a missing file is not found (404), both naming the
file; at most the last `MAX_LOG_BYTES` of a file are answered."""

from __future__ import annotations

import asyncio
import platform
import sys
from typing import Any, Awaitable, Callable, NoReturn, TypeVar

import grpc
from fastapi import FastAPI, HTTPException, Query
from fastapi.responses import Response

from ha_flink.config import Configuration
from ha_flink.rest import views
from ha_flink.rpc import flink_pb2 as pb
from ha_flink.runtime.diagnostics import (
    MAX_LOG_BYTES, LogChunk, LogFile, LogFileError, LogFileProblem, LogLocation, check_log_file_name,
    thread_dump, thread_dump_depth,
)
from ha_flink.runtime.jobmanager.jobmanager import JobManager
from ha_flink.runtime.jobmanager.resource_manager import ResourceManager, TaskExecutorGateway, TaskManagerInfo

T = TypeVar("T")

TASK_MANAGER_TIMEOUT = 10.0  # seconds a TaskManager gets to answer a diagnostic request
# Flink's MetricsAggregationParameter.AggregationMode, in its order; all of them when `agg` is not given
# Flink's HistoryServerOptions: without them Flink serves no log URL; we answer our own routes' URLs
JOB_MANAGER_LOG_URL_PATTERN = "historyserver.log.jobmanager.url-pattern"
TASK_MANAGER_LOG_URL_PATTERN = "historyserver.log.taskmanager.url-pattern"
JOB_MANAGER_LOG_PATH = "web.log.path"  # Flink's WebOptions.LOG_PATH: the JobManager's log file
TEXT = "text/plain; charset=utf-8"


# -- the JSON bodies (pure) ------------------------------------------------------------------------------

def environment_info() -> dict[str, Any]:
    """Flink's EnvironmentInfo of this process: `jvm` is the Python interpreter (its version, the machine,
    the command line after the interpreter: its options and the daemon's arguments), `classpath` its module
    search path (sys.path), as the JVM's class path is Flink's."""
    version = f"{platform.python_implementation()} {platform.python_version()} - {sys.executable}"
    return {"jvm": {"version": version, "arch": platform.machine(), "options": list(sys.orig_argv[1:])},
            "classpath": [entry for entry in sys.path if entry]}


def log_list(files: list[LogFile]) -> dict[str, Any]:
    return {"logs": [{"name": f.name, "size": f.size, "mtime": f.mtime} for f in files]}


def thread_dump_info(threads: list[tuple[str, str]]) -> dict[str, Any]:
    return {"threadInfos": [{"threadName": name, "stringifiedThreadInfo": text} for name, text in threads]}


def log_url(pattern: str | None, default: str, job_id: str, taskmanager_id: str | None = None) -> str:
    """Flink's GeneratedLogUrlHandler: the pattern with `<jobid>` (and `<tmid>`) filled in; a pattern
    without a scheme gets http:// (Flink's LogUrlUtil). No pattern: `default`, our own log route."""
    if not pattern:
        return default
    url = pattern if "://" in pattern else f"http://{pattern}"
    url = url.replace("<jobid>", job_id)
    return url.replace("<tmid>", taskmanager_id) if taskmanager_id is not None else url


# -- the routes ----------------------------------------------------------------------------------------

def leading_resource_manager(jm: JobManager) -> ResourceManager:
    """The leader's ResourceManager; a 503 if leadership was lost while the request was being answered."""
    if jm.resource_manager is None:
        raise HTTPException(503, "this JobManager just lost its leadership; retry shortly")
    return jm.resource_manager


def register_diagnostic_routes(app: FastAPI, jm: JobManager, config: Configuration) -> None:
    """Adds the routes to `app` (create_app calls it before its own `/taskmanagers/{id}`, which would
    otherwise take `/taskmanagers/metrics`)."""

    def resource_manager() -> ResourceManager:
        return leading_resource_manager(jm)

    def task_manager(taskmanager_id: str) -> TaskManagerInfo:
        info = resource_manager().task_managers.get(taskmanager_id)
        if info is None:
            raise HTTPException(404, f"TaskManager {taskmanager_id} is not registered with the leader")
        return info

    def gateway(info: TaskManagerInfo) -> TaskExecutorGateway:
        return info.gateway(jm.session_id)

    async def ask(info: TaskManagerInfo, call: Callable[[TaskExecutorGateway], Awaitable[T]]) -> T:
        """A TaskManager's answer; its refusal (a bad file name, a missing file) as 400/404, its silence as 503."""
        try:
            return await call(gateway(info))
        except grpc.aio.AioRpcError as error:
            status = {grpc.StatusCode.INVALID_ARGUMENT: 400, grpc.StatusCode.NOT_FOUND: 404}.get(error.code(), 503)
            raise HTTPException(status, error.details() if status != 503 else
                                f"TaskManager {info.resource_id} at {info.address} did not answer: "
                                f"{error.code().name} {error.details()}") from None
        except ConnectionError as error:  # its channel closed: declared lost meanwhile
            raise HTTPException(503, f"TaskManager {info.resource_id} at {info.address} did not answer: "
                                     f"{error}") from None

    async def known_job(job_id: str) -> None:
        dispatcher = jm.dispatcher
        if dispatcher is None:
            raise HTTPException(503, "this JobManager just lost its leadership; retry shortly")
        if job_id in dispatcher.jobs or job_id in dispatcher.pending:
            return
        result = await asyncio.get_running_loop().run_in_executor(None, dispatcher.results.get, job_id)
        if result is None:
            raise HTTPException(404, f"Job {job_id} not found")

    def own_logs() -> LogLocation:
        return LogLocation.of_this_process(config, JOB_MANAGER_LOG_PATH)

    def refused(error: LogFileError, whose: str) -> NoReturn:
        raise HTTPException(400 if error.problem is LogFileProblem.BAD_NAME else 404, f"{whose}: {error}")

    async def own_file(read: Callable[[], LogChunk]) -> Response:
        try:
            chunk = await asyncio.get_running_loop().run_in_executor(None, read)
        except LogFileError as error:
            refused(error, f"JobManager {jm.address}")
        return Response(chunk.data, media_type=TEXT)

    # -- the JobManager (the leader) ---------------------------------------------------------------------

    @app.get("/jobmanager/environment", summary="The JobManager's environment: interpreter, options, module path")
    async def jobmanager_environment() -> dict[str, Any]:
        return environment_info()

    @app.get("/jobs/{job_id}/jobmanager/environment", summary="The environment of the job's JobManager")
    async def job_jobmanager_environment(job_id: str) -> dict[str, Any]:
        await known_job(job_id)
        return environment_info()

    @app.get("/jobmanager/logs", summary="The files of the JobManager's log directory")
    async def jobmanager_logs() -> dict[str, Any]:
        return log_list(await asyncio.get_running_loop().run_in_executor(None, own_logs().files))

    @app.get("/jobmanager/log", summary="The JobManager's log (its last 8 MiB), as text")
    async def jobmanager_log() -> Response:
        return await own_file(lambda: own_logs().read_log())

    @app.get("/jobmanager/stdout", summary="The JobManager's .out file (stdout, stderr), as text")
    async def jobmanager_stdout() -> Response:
        return await own_file(lambda: own_logs().read_stdout())

    @app.get("/jobmanager/logs/{filename:path}", summary="A file of the JobManager's log directory, as text")
    async def jobmanager_log_file(filename: str) -> Response:
        return await own_file(lambda: own_logs().read(filename))

    @app.get("/jobmanager/thread-dump", summary="The JobManager's Python threads with their stacks")
    async def jobmanager_thread_dump() -> dict[str, Any]:
        return thread_dump_info([(t.name, t.text) for t in thread_dump(thread_dump_depth(config))])

    @app.get("/jobs/{job_id}/jobmanager/log-url", summary="Where the job's JobManager log is read")
    async def jobmanager_log_url(job_id: str) -> dict[str, Any]:
        await known_job(job_id)
        pattern = config.get_raw(JOB_MANAGER_LOG_URL_PATTERN)
        return {"url": log_url(pattern and str(pattern), f"{jm.rest_address}/jobmanager/log", job_id)}

    @app.get("/jobs/{job_id}/taskmanagers/{taskmanager_id}/log-url", summary="Where a TaskManager's log is read")
    async def taskmanager_log_url(job_id: str, taskmanager_id: str) -> dict[str, Any]:
        await known_job(job_id)
        pattern = config.get_raw(TASK_MANAGER_LOG_URL_PATTERN)
        if not pattern:  # our own route: only for a TaskManager that is there to answer it
            task_manager(taskmanager_id)
        return {"url": log_url(pattern and str(pattern), f"{jm.rest_address}/taskmanagers/{taskmanager_id}/log",
                               job_id, taskmanager_id)}

    # -- the TaskManagers (asked over gRPC) ----------------------------------------------------------------

    async def task_manager_metrics(info: TaskManagerInfo) -> dict[str, str]:
        report = await ask(info, lambda g: g.request_task_manager_metrics(TASK_MANAGER_TIMEOUT))
        return dict(report.metrics)

    @app.get("/taskmanagers/metrics",
             summary="TaskManager metrics aggregated over TaskManagers (?get=, agg=min,max,avg,sum,skew, "
                     "taskmanagers=)")
    async def aggregated_taskmanager_metrics(get: str | None = Query(None, max_length=8000),
                                             agg: str | None = Query(None, max_length=100),
                                             taskmanagers: str | None = Query(None, max_length=8000)) -> Any:
        try:
            aggregations = views.parse_aggregations(agg)
        except ValueError as error:
            raise HTTPException(400, str(error)) from None
        registered = resource_manager().task_managers
        chosen = views.query_list(taskmanagers)
        missing = [tm for tm in chosen or () if tm not in registered]
        if missing:
            raise HTTPException(404, f"TaskManager {', '.join(missing)} is not registered with the leader")
        infos = [registered[tm] for tm in chosen] if chosen else list(registered.values())
        reports = await asyncio.gather(*(task_manager_metrics(info) for info in infos), return_exceptions=True)
        # (one that does not answer is left out of the figures, as Flink's MetricFetcher leaves it out)
        return views.aggregated_metrics([r for r in reports if isinstance(r, dict)], views.query_list(get), aggregations)

    @app.get("/taskmanagers/{taskmanager_id}/metrics", summary="A TaskManager's own metrics: ids, or values with ?get=")
    async def taskmanager_metrics(taskmanager_id: str, get: str | None = Query(None, max_length=8000)) -> Any:
        return views.metric_answer(await task_manager_metrics(task_manager(taskmanager_id)), views.query_list(get))

    @app.get("/taskmanagers/{taskmanager_id}/logs", summary="The files of a TaskManager's log directory")
    async def taskmanager_logs(taskmanager_id: str) -> dict[str, Any]:
        listing = await ask(task_manager(taskmanager_id), lambda g: g.list_log_files(TASK_MANAGER_TIMEOUT))
        return log_list([LogFile(f.name, f.size, f.mtime) for f in listing.files])

    async def taskmanager_file(taskmanager_id: str, kind: pb.LogFileKind.ValueType, name: str = "") -> Response:
        info = task_manager(taskmanager_id)
        if kind == pb.NAMED:
            try:
                check_log_file_name(name)  # (refused here already: nothing odd goes on to the TaskManager)
            except LogFileError as error:
                refused(error, f"TaskManager {taskmanager_id}")
        request = pb.LogFileRequest(kind=kind, name=name, max_bytes=MAX_LOG_BYTES)
        chunk = await ask(info, lambda g: g.read_log_file(request, TASK_MANAGER_TIMEOUT))
        return Response(chunk.data, media_type=TEXT)

    @app.get("/taskmanagers/{taskmanager_id}/log", summary="A TaskManager's log (its last 8 MiB), as text")
    async def taskmanager_log(taskmanager_id: str) -> Response:
        return await taskmanager_file(taskmanager_id, pb.LOG)

    @app.get("/taskmanagers/{taskmanager_id}/stdout", summary="A TaskManager's .out file (stdout, stderr), as text")
    async def taskmanager_stdout(taskmanager_id: str) -> Response:
        return await taskmanager_file(taskmanager_id, pb.STDOUT)

    @app.get("/taskmanagers/{taskmanager_id}/logs/{filename:path}",
             summary="A file of a TaskManager's log directory, as text")
    async def taskmanager_log_file(taskmanager_id: str, filename: str) -> Response:
        return await taskmanager_file(taskmanager_id, pb.NAMED, filename)

    @app.get("/taskmanagers/{taskmanager_id}/thread-dump", summary="A TaskManager's Python threads with their stacks")
    async def taskmanager_thread_dump(taskmanager_id: str) -> dict[str, Any]:
        dump = await ask(task_manager(taskmanager_id), lambda g: g.request_thread_dump(TASK_MANAGER_TIMEOUT))
        return thread_dump_info([(t.name, t.text) for t in dump.threads])
