"""One JobManager process: a gRPC endpoint that always runs, and a leader contender. While it leads it
runs the ResourceManager and the Dispatcher (with its JobMasters) and publishes their address; when
leadership is revoked it suspends every job and keeps all HA data, so the next leader recovers them.

The REST endpoint is not built here (REST is a layer above the runtime and reads it): whoever starts a
JobManager passes a `RestEndpointFactory` (`ha_flink.rest.server.start_rest_endpoint`), or none."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
import uuid
from typing import Any, Awaitable, Callable, Protocol

import grpc

from ha_flink.config import (
    Configuration, HeartbeatManagerOptions, HighAvailabilityOptions, MetricOptions,
)
from ha_flink.fs import Storage
from ha_flink.fs.filesystems import scheme_of
from ha_flink.ha import paths
from ha_flink.ha.services import HaServices
from ha_flink.rpc import flink_pb2 as pb
from ha_flink.rpc import flink_pb2_grpc as pb_grpc
from ha_flink.rpc.channels import SERVER_OPTIONS
from ha_flink.rpc.fencing import FencingInterceptor
from ha_flink.rpc.peer_auth import add_port, server_interceptors
from ha_flink.security.tls import internal_tls
from ha_flink.runtime.jobmanager.dispatcher import (
    LOST_JOB_NAME, UNRECOVERED_JOB_NAME, Dispatcher, JobAlreadyTerminatedError, JobSubmissionError,
)
from ha_flink.runtime.jobmanager.job_master import checkpoints_dir, job_metrics
from ha_flink.runtime.jobmanager.metric_fetcher import MetricFetcher
from ha_flink.runtime.metrics.prometheus import MetricSample
from ha_flink.runtime.jobmanager.resource_manager import ResourceManager

logger = logging.getLogger(__name__)

LEADER_HISTORY_SIZE = 100


class RestEndpoint(Protocol):
    """A REST server that a JobManager's owner started for it."""

    address: str  # the URL it answers at, http://<host>:<port>

    async def close(self) -> None:
        """Stop taking requests; answer those in progress first."""


RestEndpointFactory = Callable[["JobManager"], Awaitable[RestEndpoint]]


class JobManager(pb_grpc.DispatcherServicer, pb_grpc.ResourceManagerServicer, pb_grpc.JobMasterGatewayServicer):
    def __init__(self, config: Configuration, ha_services: HaServices, host: str | None = None, port: int = 0,
                 bind_host: str = "0.0.0.0", rest: RestEndpointFactory | None = None) -> None:
        self.config = config
        self.ha = ha_services
        self.tls = internal_tls(config)  # (a ConfigurationError here stops the daemon before it listens)
        self.host = host or socket.gethostname()
        self.bind_host = bind_host
        self.bind_port = port
        self._rest_factory = rest
        self.serves_rest = rest is not None  # (a local mini cluster serves none unless asked for a port)
        self._rest: RestEndpoint | None = None
        self.rest_address = ""
        self.rest_leader: str | None = None
        self.session_id: uuid.UUID | None = None
        self.dispatcher: Dispatcher | None = None
        self.resource_manager: ResourceManager | None = None
        self.granted_at: float | None = None
        self.started_at = int(time.time() * 1000)
        # the leaders this JobManager has seen, oldest first (GET /cluster/ha, the dashboard)
        self.leader_history: list[dict[str, Any]] = []
        self.metric_fetcher: MetricFetcher | None = None

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    async def start(self) -> None:
        self.loop = asyncio.get_running_loop()
        interceptor = FencingInterceptor(lambda: self.session_id, {"Dispatcher", "ResourceManager", "JobMasterGateway"},
                                         {"ResourceManager", "JobMasterGateway"})
        self.server = grpc.aio.server(interceptors=[*server_interceptors(self.tls), interceptor], options=SERVER_OPTIONS)
        pb_grpc.add_DispatcherServicer_to_server(self, self.server)
        pb_grpc.add_ResourceManagerServicer_to_server(self, self.server)
        pb_grpc.add_JobMasterGatewayServicer_to_server(self, self.server)
        self.port = add_port(self.server, f"{self.bind_host}:{self.bind_port}", self.tls)
        if self.port == 0:
            raise OSError(f"cannot bind the JobManager's RPC port {self.bind_port} (in use?)")
        await self.server.start()
        if self.serves_rest:
            await self._start_rest()
        self.election = self._new_election()
        self.election.start(self)
        logger.info("JobManager serving RPC at %s and REST at %s, contending for leadership", self.address,
                    self.rest_address or "(none)")
        # A standby that takes over reads its jobs' checkpoints at once: open the storage clients now rather
        # than then (a fresh process's first S3 call costs 0.4-0.7 s: client session, credentials, connection)
        self.loop.run_in_executor(None, self._warm_up_storage)

    def _warm_up_storage(self) -> None:
        storage = Storage(self.config)
        for url in {self.config.get(HighAvailabilityOptions.HA_STORAGE_PATH) or "", checkpoints_dir(self.config)}:
            if url and scheme_of(url) != "file":
                started = time.monotonic()
                try:
                    storage.exists(url)
                except Exception as error:  # best effort: the real operations will say what fails, naming it
                    logger.debug("Warming up the storage of %s failed: %s", url, error)
                    continue
                logger.info("Storage client for %s ready (%d ms)", url, (time.monotonic() - started) * 1000)

    def _new_election(self) -> Any:
        info = {"name": f"jobmanager@{self.address}", "address": self.address, "rest": self.rest_address,
                "pid": str(os.getpid()), "started": str(self.started_at)}
        return self.ha.leader_election(info["name"], info)

    def _on_rest_leader(self, address: str | None, session: Any) -> None:
        """(On the retrieval's thread.) Keeps the leader history: one entry per leader session seen, and
        one per time without a leader. A leader seen again with the same session after a gap was a blip of
        this JobManager's own connection, not an election: the gap is dropped."""
        self.rest_leader = address
        session_id = str(session) if address and session else None
        history = self.leader_history
        last = history[-1] if history else None
        if last is not None and last["session_id"] == session_id:
            return
        if last is None and session_id is None:
            return
        if session_id is not None and last is not None and len(history) >= 2 and last["session_id"] is None \
                and history[-2]["session_id"] == session_id:
            history.pop()
            return
        self.leader_history.append({"timestamp": int(time.time() * 1000), "leader": address if session_id else None,
                                    "session_id": session_id})
        del self.leader_history[:-LEADER_HISTORY_SIZE]

    @property
    def leader_changes(self) -> int:
        """How often the cluster's leader changed while this JobManager watched (the first seen is none)."""
        return max(0, sum(entry["session_id"] is not None for entry in self.leader_history) - 1)

    @property
    def zookeeper_state(self) -> str:
        client = getattr(self.ha, "client", None)
        return str(client.state) if client is not None else "NONE"

    def metric_samples(self) -> list[MetricSample]:
        """For the Prometheus reporter (on the event loop): Flink's JobManager and job metrics."""
        now = int(time.time() * 1000)
        rm, dispatcher = self.resource_manager, self.dispatcher
        leading = dispatcher is not None and rm is not None
        samples = [MetricSample("jobmanager_isLeader", float(leading)),
                   MetricSample("jobmanager_leaderChanges", self.leader_changes),
                   MetricSample("jobmanager_zooKeeperConnected", float(self.zookeeper_state == "CONNECTED"))]
        if dispatcher is None or rm is None:
            return samples
        jobs = list(dispatcher.jobs.values())
        samples += [MetricSample("jobmanager_numRegisteredTaskManagers", len(rm.task_managers)),
                    MetricSample("jobmanager_taskSlotsTotal", rm.total_slots()),
                    MetricSample("jobmanager_taskSlotsAvailable", len(rm.free_slots())),
                    MetricSample("jobmanager_numRunningJobs", sum(not j.status.is_globally_terminal_state() for j in jobs))]
        for job in jobs:
            labels = {"job_id": job.job_id, "job_name": job.graph.name}
            for name, value in job_metrics(job, now).items():
                samples.append(MetricSample(f"jobmanager_job_{name}", value, labels))
        return samples

    async def _start_rest(self) -> None:
        assert self._rest_factory is not None
        self._rest = await self._rest_factory(self)
        self.rest_address = self._rest.address
        self._rest_retrieval = self.ha.leader_retrieval(paths.REST_SERVER)
        self._rest_retrieval.start(self._on_rest_leader)

    async def stop(self) -> None:
        """Graceful: leave the election at once (a standby takes over without a session timeout)."""
        await self.loop.run_in_executor(None, self.election.close)
        await self._on_revoke()
        if self._rest is not None:
            self._rest_retrieval.stop()
            # answer the requests in progress before the loop and its executor go: a request still arriving
            # after the daemon's main returned would fail with a 500 instead of finding the port closed
            await self._rest.close()
        await self.server.stop(1)

    # -- leadership (called from the election's thread) ------------------------------------------------

    def grant(self, session_id: uuid.UUID) -> None:
        future = asyncio.run_coroutine_threadsafe(self._on_grant(session_id), self.loop)
        future.add_done_callback(self._grant_done)

    def _grant_done(self, future: Any) -> None:
        error = future.exception()
        if error is not None:
            # A leader that could not publish itself or start is useless: step down and rejoin behind
            # the other contenders, so one of them gets its chance.
            logger.error("Taking up leadership failed (%s); stepping down and contending again", error,
                         exc_info=error)
            asyncio.run_coroutine_threadsafe(self._restart_election(), self.loop)

    async def _restart_election(self) -> None:
        await self._on_revoke()
        await self.loop.run_in_executor(None, self.election.close)
        self.election = self._new_election()
        self.election.start(self)

    def revoke(self) -> None:
        asyncio.run_coroutine_threadsafe(self._on_revoke(), self.loop).result(30)

    async def _on_grant(self, session_id: uuid.UUID) -> None:
        self.granted_at = time.monotonic()
        logger.info("Granted leadership with session id %s", session_id)
        fence = self.election.fence(session_id)
        interval = self.config.get(HeartbeatManagerOptions.HEARTBEAT_INTERVAL).total_seconds()
        timeout = self.config.get(HeartbeatManagerOptions.HEARTBEAT_TIMEOUT).total_seconds()
        self.resource_manager = ResourceManager(interval, timeout, self.tls)
        self.dispatcher = Dispatcher(self.ha, fence, self.resource_manager, session_id, self.config)
        self.metric_fetcher = MetricFetcher(self.resource_manager, session_id,
                                            self.config.get(MetricOptions.FETCHER_UPDATE_INTERVAL).total_seconds())
        self.session_id = session_id
        for component, address in ((paths.DISPATCHER, self.address), (paths.RESOURCE_MANAGER, self.address),
                                   *(((paths.REST_SERVER, self.rest_address),) if self.serves_rest else ())):
            await self.loop.run_in_executor(None, self.election.publish, component, address, session_id)
        await self.dispatcher.recover_jobs()

    async def _on_revoke(self) -> None:
        if self.session_id is None:
            return
        logger.info("Leadership %s revoked: suspending every job, keeping all HA data", self.session_id)
        self.session_id = None
        dispatcher, resource_manager = self.dispatcher, self.resource_manager
        self.dispatcher = self.resource_manager = self.metric_fetcher = None
        try:
            if dispatcher is not None:
                suspended = dispatcher.suspend()
                # In the background: with ZooKeeper unreachable it would wait, and the locks are
                # ephemeral (they go with the session, if that is what was lost) anyway.
                self.loop.run_in_executor(None, dispatcher.release_suspended_jobs, suspended)
        finally:
            if resource_manager is not None:
                resource_manager.close()

    # -- Dispatcher service -----------------------------------------------------------------------------

    async def _leading(self, context: grpc.aio.ServicerContext) -> tuple[Dispatcher, ResourceManager]:
        """The leader's components (a fenced call may still arrive in the moment leadership goes)."""
        dispatcher, rm = self.dispatcher, self.resource_manager
        if dispatcher is None or rm is None:
            await context.abort(grpc.StatusCode.UNAVAILABLE, f"JobManager {self.address} does not lead any more")
            raise AssertionError("unreachable: context.abort raises")
        return dispatcher, rm

    async def SubmitJob(self, request: pb.SubmitJobRequest, context: grpc.aio.ServicerContext) -> pb.JobId:
        dispatcher, _ = await self._leading(context)
        try:
            return pb.JobId(job_id=await dispatcher.submit(request.job_graph))
        except JobSubmissionError as error:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(error))
            raise AssertionError("unreachable: context.abort raises") from error

    def _status(self, master: Any) -> pb.JobStatus:
        return pb.JobStatus(job_id=master.job_id, name=master.graph.name, state=master.status,
                            start_time=master.start_time, failure=master.failure)

    async def ListJobs(self, request: pb.Empty, context: grpc.aio.ServicerContext) -> pb.JobList:
        dispatcher, _ = await self._leading(context)
        jobs = [self._status(m) for m in dispatcher.jobs.values()]
        jobs += [pb.JobStatus(job_id=job_id, name=UNRECOVERED_JOB_NAME, state="INITIALIZING",
                              failure=f"cannot be recovered yet: {reason}")
                 for job_id, reason in sorted(dispatcher.pending.items())]  # stored, tried again
        jobs += [pb.JobStatus(job_id=job_id, name=LOST_JOB_NAME, state=result.status, failure=result.error or "")
                 for job_id, result in sorted(dispatcher.lost.items()) if job_id not in dispatcher.jobs]
        return pb.JobList(jobs=jobs)

    async def GetJobStatus(self, request: pb.JobId, context: grpc.aio.ServicerContext) -> pb.JobStatus:
        dispatcher, _ = await self._leading(context)
        master = dispatcher.jobs.get(request.job_id)
        if master is None:
            await self._unless_recovering(dispatcher, request.job_id, context)
            result = await self.loop.run_in_executor(None, dispatcher.results.get, request.job_id)
            if result is None:
                await context.abort(grpc.StatusCode.NOT_FOUND, f"no job {request.job_id}")
                raise AssertionError("unreachable: context.abort raises")
            return pb.JobStatus(job_id=result.job_id, state=result.status, failure=result.error or "")
        return self._status(master)

    async def _unless_recovering(self, dispatcher: Dispatcher, job_id: str, context: grpc.aio.ServicerContext) -> None:
        if job_id in dispatcher.pending:
            await context.abort(grpc.StatusCode.UNAVAILABLE, f"job {job_id} is stored, but this JobManager cannot "
                                f"recover it yet (tried again while it leads): {dispatcher.pending[job_id]}")
        if not dispatcher.recovered:  # a leader of a moment ago: the job may be among those it recovers
            await context.abort(grpc.StatusCode.UNAVAILABLE, f"the JobManager became the leader moments ago and "
                                f"is still recovering the stored jobs; job {job_id} may be one of them: retry shortly")

    async def CancelJob(self, request: pb.JobId, context: grpc.aio.ServicerContext) -> pb.Empty:
        dispatcher, _ = await self._leading(context)
        if request.job_id not in dispatcher.jobs and request.job_id not in dispatcher.pending:
            await self._unless_recovering(dispatcher, request.job_id, context)
        try:
            dispatcher.cancel(request.job_id)
        except KeyError as error:
            await context.abort(grpc.StatusCode.NOT_FOUND, str(error.args[0]))
        except JobAlreadyTerminatedError as error:  # (not FAILED_PRECONDITION: clients read that as "not leader")
            await context.abort(grpc.StatusCode.ABORTED, str(error))
        return pb.Empty()

    # -- ResourceManager service ------------------------------------------------------------------------

    async def RegisterTaskManager(self, request: pb.RegisterTaskManagerRequest,
                                  context: grpc.aio.ServicerContext) -> pb.RegisterTaskManagerResponse:
        _, rm = await self._leading(context)
        return rm.register(request)

    async def Heartbeat(self, request: pb.TaskManagerHeartbeat,
                        context: grpc.aio.ServicerContext) -> pb.HeartbeatResponse:
        _, rm = await self._leading(context)
        return pb.HeartbeatResponse(registered=rm.heartbeat(request))

    async def UpdateTaskExecutionState(self, request: pb.TaskExecutionState,
                                       context: grpc.aio.ServicerContext) -> pb.Empty:
        _, rm = await self._leading(context)
        rm.task_state(request)
        return pb.Empty()

    # -- JobMaster gateway ------------------------------------------------------------------------------

    async def AcknowledgeCheckpoint(self, request: pb.CheckpointAck, context: Any) -> pb.Empty:
        master = self.dispatcher.jobs.get(request.job_id) if self.dispatcher else None
        if master is not None:
            await master.on_checkpoint_ack(request)
        return pb.Empty()

    async def DeclineCheckpoint(self, request: pb.CheckpointDecline, context: Any) -> pb.Empty:
        master = self.dispatcher.jobs.get(request.job_id) if self.dispatcher else None
        if master is not None:
            master.on_checkpoint_decline(request)
        return pb.Empty()
