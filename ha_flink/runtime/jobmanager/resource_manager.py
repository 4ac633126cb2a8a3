"""The ResourceManager: which TaskManagers are registered with this leader, their slots, their liveness.

A TaskManager counts as lost when its heartbeats stop for `heartbeat.timeout`, or at once when the gRPC
connection to it fails (keepalive notices a dead peer within about two seconds), whichever comes first."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from dataclasses import dataclass, field
from typing import Callable

import grpc

from ha_flink.aio.owner import LoopOwner
from ha_flink.aio.tasks import TaskGroup
from ha_flink.rpc import flink_pb2 as pb
from ha_flink.rpc import flink_pb2_grpc as pb_grpc
from ha_flink.rpc.channels import complete, rpc_channel
from ha_flink.rpc.fencing import fencing_metadata
from ha_flink.security.tls import TlsSettings

logger = logging.getLogger(__name__)


@dataclass
class TaskManagerInfo:
    resource_id: str
    address: str
    slots: int
    channel: grpc.aio.Channel
    data_port: int = 0

    @property
    def data_address(self) -> str:
        """host:port of its data exchange: the host of its RPC address, its data port."""
        return f"{self.address.rpartition(':')[0]}:{self.data_port}"
    last_heartbeat: float = field(default_factory=time.monotonic)

    def gateway(self, session_id: uuid.UUID | None) -> TaskExecutorGateway:
        """This TaskManager's RPCs, fenced with the leader's `session_id`."""
        return TaskExecutorGateway(self, session_id)


class TaskExecutorGateway:
    """The TaskExecutor RPCs a leader makes, each fenced with its session id. A call cut short because the
    TaskManager was declared lost meanwhile (its channel closed) fails with ChannelClosedError, not as a
    cancellation of the caller (`channels.complete`)."""

    def __init__(self, info: TaskManagerInfo, session_id: uuid.UUID | None) -> None:
        self.address = info.address
        self._stub = pb_grpc.TaskExecutorStub(info.channel)
        self._metadata = fencing_metadata(session_id)

    async def deploy_task(self, request: pb.DeployTaskRequest, timeout: float, wait_for_ready: bool = False) -> pb.Empty:
        """`wait_for_ready`: wait (within `timeout`) for the channel to connect instead of failing at once."""
        return await complete(self._stub.DeployTask(request, metadata=self._metadata, timeout=timeout,
                                                    wait_for_ready=wait_for_ready), self.address)

    async def cancel_task(self, request: pb.CancelTaskRequest, timeout: float) -> pb.Empty:
        return await complete(self._stub.CancelTask(request, metadata=self._metadata, timeout=timeout), self.address)

    async def cancel_job(self, request: pb.JobId, timeout: float) -> pb.Empty:
        return await complete(self._stub.CancelJob(request, metadata=self._metadata, timeout=timeout), self.address)

    async def trigger_checkpoint(self, request: pb.CheckpointRequest, timeout: float) -> pb.Empty:
        return await complete(self._stub.TriggerCheckpoint(request, metadata=self._metadata, timeout=timeout),
                              self.address)

    async def notify_checkpoint_complete(self, request: pb.CheckpointRequest, timeout: float) -> pb.Empty:
        return await complete(self._stub.NotifyCheckpointComplete(request, metadata=self._metadata, timeout=timeout),
                              self.address)

    async def request_task_metrics(self, timeout: float) -> pb.TaskMetricsReport:
        return await complete(self._stub.RequestTaskMetrics(pb.Empty(), metadata=self._metadata, timeout=timeout),
                              self.address)

    # diagnostics, for the REST API (Flink's /taskmanagers/<id>/logs, /log, /stdout, /thread-dump, /metrics)

    async def list_log_files(self, timeout: float) -> pb.LogFileList:
        return await complete(self._stub.ListLogFiles(pb.Empty(), metadata=self._metadata, timeout=timeout),
                              self.address)

    async def read_log_file(self, request: pb.LogFileRequest, timeout: float) -> pb.LogFileChunk:
        return await complete(self._stub.ReadLogFile(request, metadata=self._metadata, timeout=timeout), self.address)

    async def sample_task_stacks(self, request: pb.StackSampleRequest, timeout: float) -> pb.StackSamples:
        return await complete(self._stub.SampleTaskStacks(request, metadata=self._metadata, timeout=timeout),
                              self.address)

    async def request_thread_dump(self, timeout: float) -> pb.ThreadDump:
        return await complete(self._stub.RequestThreadDump(pb.Empty(), metadata=self._metadata, timeout=timeout),
                              self.address)

    async def request_task_manager_metrics(self, timeout: float) -> pb.TaskManagerMetrics:
        return await complete(self._stub.RequestTaskManagerMetrics(pb.Empty(), metadata=self._metadata,
                                                                   timeout=timeout), self.address)


class ResourceManager:
    def __init__(self, heartbeat_interval: float, heartbeat_timeout: float, tls: TlsSettings | None = None) -> None:
        self.tls = tls  # security.ssl.internal: the channels to TaskManagers are mutual TLS
        self.heartbeat_interval = heartbeat_interval
        self.heartbeat_timeout = heartbeat_timeout
        self.task_managers: dict[str, TaskManagerInfo] = {}
        self.allocated: dict[tuple[str, int], str] = {}  # (resource id, slot) -> job id
        self.changed = asyncio.Event()
        self.on_lost: list[Callable[[str, str], None]] = []
        self.on_task_state: list[Callable[[pb.TaskExecutionState, str], None]] = []
        self._owner = LoopOwner("the ResourceManager")
        self._background = TaskGroup("ResourceManager")  # the heartbeat monitor, connection watchers, closes
        self._background.spawn(self._monitor_heartbeats(), "heartbeat monitor")

    def close(self) -> None:
        self._background.cancel()
        for info in self.task_managers.values():
            self._background.spawn(info.channel.close(), f"close {info.address}")
        self.task_managers.clear()

    def register(self, request: pb.RegisterTaskManagerRequest) -> pb.RegisterTaskManagerResponse:
        self._owner.check()
        old = self.task_managers.pop(request.resource_id, None)
        if old is not None:
            self._background.spawn(old.channel.close(), f"close {old.address}")
        info = TaskManagerInfo(request.resource_id, request.address, request.slots,
                               rpc_channel(request.address, self.tls), data_port=request.data_port)
        self.task_managers[request.resource_id] = info
        self._background.spawn(self._watch_connection(info), f"watch {info.address}")
        logger.info("Registered TaskManager %s at %s with %d slots", info.resource_id, info.address, info.slots)
        self._notify()
        return pb.RegisterTaskManagerResponse(heartbeat_interval_ms=int(self.heartbeat_interval * 1000),
                                              heartbeat_timeout_ms=int(self.heartbeat_timeout * 1000))

    def heartbeat(self, request: pb.TaskManagerHeartbeat) -> bool:
        self._owner.check()
        info = self.task_managers.get(request.resource_id)
        if info is None:
            return False
        info.last_heartbeat = time.monotonic()
        for state in request.tasks:
            for listener in self.on_task_state:
                listener(state, request.resource_id)
        return True

    def task_state(self, state: pb.TaskExecutionState) -> None:
        for listener in self.on_task_state:
            listener(state, "")

    def total_slots(self) -> int:
        return sum(info.slots for info in self.task_managers.values())

    def free_slots(self) -> list[tuple[TaskManagerInfo, int]]:
        """Unallocated slots, spread over TaskManagers (slot 0 of each, then slot 1 of each, ...), so that
        a job of parallelism n on n TaskManagers gets one subtask per TaskManager."""
        infos = sorted(self.task_managers.values(), key=lambda i: i.resource_id)
        most = max((info.slots for info in infos), default=0)
        return [(info, index) for index in range(most) for info in infos
                if index < info.slots and (info.resource_id, index) not in self.allocated]

    def allocate(self, job_id: str, count: int) -> list[tuple[TaskManagerInfo, int]] | None:
        self._owner.check()
        slots = self.free_slots()
        if len(slots) < count:
            return None
        for info, index in slots[:count]:
            self.allocated[(info.resource_id, index)] = job_id
        return slots[:count]

    def release(self, job_id: str) -> None:
        self._owner.check()
        for key in [k for k, owner in self.allocated.items() if owner == job_id]:
            del self.allocated[key]
        self._notify()

    def lose(self, resource_id: str, reason: str) -> None:
        self._owner.check()
        info = self.task_managers.pop(resource_id, None)
        if info is None:
            return
        for key in [k for k in self.allocated if k[0] == resource_id]:
            del self.allocated[key]
        logger.info("TaskManager %s at %s is lost: %s", resource_id, info.address, reason)
        self._background.spawn(info.channel.close(), f"close {info.address}")
        for listener in self.on_lost:
            listener(resource_id, reason)
        self._notify()

    def _notify(self) -> None:
        self.changed.set()
        self.changed = asyncio.Event()

    async def _monitor_heartbeats(self) -> None:
        while True:
            await asyncio.sleep(min(self.heartbeat_interval, 1.0))
            now = time.monotonic()
            for info in list(self.task_managers.values()):
                if now - info.last_heartbeat > self.heartbeat_timeout:
                    self.lose(info.resource_id, f"no heartbeat for {self.heartbeat_timeout:g} s")

    async def _watch_connection(self, info: TaskManagerInfo) -> None:
        state = info.channel.get_state(try_to_connect=True)
        seen_ready = False
        while self.task_managers.get(info.resource_id) is info:
            if state == grpc.ChannelConnectivity.READY:
                seen_ready = True
            elif seen_ready and state == grpc.ChannelConnectivity.TRANSIENT_FAILURE:
                # (IDLE alone is not loss: a quiet channel idles too. Asking to connect at every change
                # moves a dead peer on from IDLE to TRANSIENT_FAILURE within a reconnect attempt.)
                self.lose(info.resource_id, f"connection to {info.address} lost")
                return
            try:
                await info.channel.wait_for_state_change(state)
            except Exception:
                return
            state = info.channel.get_state(try_to_connect=True)
