"""The REST endpoint of a JobManager: Flink's paths (`/overview`, `/jobs`, `/jobs/<id>`,
`/taskmanagers`, `/jobmanager/config`) plus job submission (`POST /jobs` with a pickled job graph) and
cancellation (`PATCH /jobs/<id>?mode=cancel`).

Every JobManager serves it. The leader answers itself; a standby forwards the request to the leader's
REST address (published in ZooKeeper as `rest_server`) and returns its answer; with no leader it answers
503 with a message saying so."""

from __future__ import annotations

import asyncio
import logging
import socket
import urllib.error
import urllib.request
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse

from ha_flink.config import Configuration
from ha_flink.runtime.jobmanager.dispatcher import JobSubmissionError

if TYPE_CHECKING:
    from ha_flink.runtime.jobmanager.jobmanager import JobManager

logger = logging.getLogger(__name__)

FORWARD_TIMEOUT = 10.0
FORWARDED_HEADER = "x-flink-forwarded-by"


def create_app(jm: JobManager, config: Configuration) -> FastAPI:
    app = FastAPI(title="ha-flink REST API", docs_url=None, redoc_url=None)

    @app.middleware("http")
    async def leader_or_forward(request: Request, call_next: Any) -> Response:
        if jm.dispatcher is not None:
            return await call_next(request)
        return await _forward(jm, request)

    @app.get("/overview")
    async def overview() -> dict[str, Any]:
        rm, jobs = jm.resource_manager, list(jm.dispatcher.jobs.values())
        states = [job.status for job in jobs]
        return {
            "taskmanagers": len(rm.task_managers),
            "slots-total": rm.total_slots(),
            "slots-available": len(rm.free_slots()),
            "jobs-running": sum(s not in ("FINISHED", "CANCELED", "FAILED") for s in states),
            "jobs-finished": states.count("FINISHED"),
            "jobs-cancelled": states.count("CANCELED"),
            "jobs-failed": states.count("FAILED"),
            "flink-version": "ha-flink",
            "leader": jm.address,
        }

    @app.get("/jobs")
    async def jobs() -> dict[str, Any]:
        return {"jobs": [{"id": job.job_id, "status": job.status} for job in jm.dispatcher.jobs.values()]}

    @app.get("/jobs/overview")
    async def jobs_overview() -> dict[str, Any]:
        return {"jobs": [_job(job) for job in jm.dispatcher.jobs.values()]}

    @app.get("/jobs/{job_id}")
    async def job(job_id: str) -> Any:
        master = jm.dispatcher.jobs.get(job_id)
        if master is None:
            return JSONResponse({"errors": [f"Job {job_id} not found"]}, status_code=404)
        return _job(master)

    @app.patch("/jobs/{job_id}")
    async def cancel(job_id: str, mode: str = "cancel") -> Any:
        if mode != "cancel":
            return JSONResponse({"errors": [f"mode {mode!r} is not supported; accepted: cancel"]}, status_code=400)
        try:
            jm.dispatcher.cancel(job_id)
        except KeyError as error:
            return JSONResponse({"errors": [str(error.args[0])]}, status_code=404)
        return JSONResponse({}, status_code=202)

    @app.post("/jobs")
    async def submit(request: Request) -> Any:
        try:
            job_id = await jm.dispatcher.submit(await request.body())
        except JobSubmissionError as error:
            return JSONResponse({"errors": [str(error)]}, status_code=400)
        return JSONResponse({"jobid": job_id}, status_code=202)

    @app.get("/taskmanagers")
    async def taskmanagers() -> dict[str, Any]:
        rm = jm.resource_manager
        free = {(info.resource_id, index) for info, index in rm.free_slots()}
        return {"taskmanagers": [
            {"id": info.resource_id, "path": info.address, "slotsNumber": info.slots,
             "freeSlots": sum((info.resource_id, i) in free for i in range(info.slots))}
            for info in rm.task_managers.values()]}

    @app.get("/jobmanager/config")
    async def jobmanager_config() -> list[dict[str, str]]:
        secret = ("secret", "password", "key")
        return [{"key": k, "value": "******" if any(s in k.lower() for s in secret) else v}
                for k, v in sorted(config.to_dict().items())]

    return app


def _job(master: Any) -> dict[str, Any]:
    return {"jid": master.job_id, "name": master.graph.name, "state": master.status,
            "start-time": master.start_time, "failure": master.failure or None}


async def _forward(jm: JobManager, request: Request) -> Response:
    leader = jm.rest_leader
    if leader is None or request.headers.get(FORWARDED_HEADER):
        return JSONResponse({"errors": ["No leading JobManager at the moment (leader election in progress); "
                                        "retry shortly"]}, status_code=503)
    url = f"{leader}{request.url.path}" + (f"?{request.url.query}" if request.url.query else "")
    body = await request.body()

    def call() -> tuple[int, bytes, str]:
        forwarded = urllib.request.Request(url, data=body or None, method=request.method,
                                           headers={FORWARDED_HEADER: jm.address,
                                                    "content-type": request.headers.get("content-type", "")})
        try:
            with urllib.request.urlopen(forwarded, timeout=FORWARD_TIMEOUT) as answer:
                return answer.status, answer.read(), answer.headers.get("content-type", "application/json")
        except urllib.error.HTTPError as error:
            return error.code, error.read(), error.headers.get("content-type", "application/json")

    try:
        status, content, media_type = await asyncio.get_running_loop().run_in_executor(None, call)
    except OSError as error:
        return JSONResponse({"errors": [f"the leading JobManager at {leader} does not answer: {error}"]},
                            status_code=503)
    return Response(content, status_code=status, media_type=media_type)


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
