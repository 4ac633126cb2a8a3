"""The TaskExecutor: one TaskManager process's RPC endpoint and task runner.

It follows the leader's ResourceManager through leader retrieval. When the leader changes or its
connection drops it cancels the old leader's tasks, frees their slots and registers with the new leader
at once: connection loss is failure detection here, not only a missed heartbeat. Every call from a
JobMaster must carry the session id of the leader it follows (fencing); the data exchange, on a port of
its own (runtime/network/exchange.py), is not fenced.

A job's shipped Python dependencies are made usable on the thread of each of its tasks, before the task
unpickles its functions: the first task of the job here materializes them (`runtime/python_env.py`, under
the first `io.tmp.dirs` entry), the last one to end removes them again; a failure to do so (a requirements
install that fails, with pip's output) is the task's failure."""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import logging
import socket
import threading
import time
import traceback
import uuid
from typing import Any

import cloudpickle
import grpc

from ha_flink.aio.owner import LoopOwner
from ha_flink.aio.tasks import TaskGroup
from ha_flink.config import (
    Configuration, CoreOptions, HeartbeatManagerOptions, StateBackendOptions, TaskManagerOptions,
)
from ha_flink.ha import paths
from ha_flink.ha.services import HaServices
from ha_flink.rpc import flink_pb2 as pb
from ha_flink.rpc import flink_pb2_grpc as pb_grpc
from ha_flink.rpc.channels import SERVER_OPTIONS, rpc_channel
from ha_flink.rpc.peer_auth import add_port, server_interceptors
from ha_flink.security.tls import internal_tls
from ha_flink.rpc.fencing import LEADER_SESSION_KEY, FencingInterceptor, fencing_metadata
from ha_flink.fs import Storage, StorageError
from ha_flink.runtime.checkpoint.barrier import TaskSnapshot
from ha_flink.runtime.checkpoint.restore import CheckpointStateDamagedError, materialize
from ha_flink.runtime.checkpoint.storage import CheckpointStorageAccess
from ha_flink.runtime.deployment import TaskDeploymentDescriptor
from ha_flink.runtime.diagnostics import (
    MAX_LOG_BYTES, LogChunk, LogFileError, LogFileProblem, LogLocation, ProcessStatus, sample_stacks, thread_dump,
    thread_dump_depth,
)
from ha_flink.runtime.metrics.meter import TaskIOMeters
from ha_flink.runtime.metrics.prometheus import MetricSample
from ha_flink.runtime.metrics.user import user_metric_samples, user_metric_values
from ha_flink.runtime.network.exchange import (
    INITIAL_CREDITS, DataConnections, PartitionRequest, PartitionServer, RemoteInputChannel,
)
from ha_flink.runtime.network.local import LocalChannelKey, LocalGates, LocalOutputChannel
from ha_flink.runtime.network.partition import NetworkChannel, PartitionRegistry, ResultPartition
from ha_flink.runtime.partitioner import ForwardPartitioner
from ha_flink.runtime.python_env import JobPythonEnvironment, PythonEnvironmentCancelled, PythonEnvironments
from ha_flink.runtime.task.channels import InputGate, RecordWriter, TaskCancelled
from ha_flink.runtime.task.task import Task

logger = logging.getLogger(__name__)

GATE_CAPACITY = 32
SUBPARTITION_CAPACITY = 32
METER_SAMPLE_SECONDS = 1.0
TASK_STOP_SECONDS = 5.0  # how long a stopping TaskManager waits for its cancelled tasks' threads


class _RunningTask:
    def __init__(self, descriptor: TaskDeploymentDescriptor, task: Task, cancelled: threading.Event,
                 session_id: uuid.UUID) -> None:
        self.descriptor = descriptor
        self.task = task
        self.cancelled = cancelled
        self.session_id = session_id
        self.snapshot_write = threading.Lock()  # a cancel waits for a snapshot write in progress
        self.state = "DEPLOYING"
        self.failure = ""
        self.readers: list[RemoteInputChannel] = []
        self.partitions: list[ResultPartition] = []
        self.local_inputs: list[LocalChannelKey] = []  # gate channels fed in-process (LocalGates)
        self.thread: threading.Thread | None = None
        self.meters = TaskIOMeters()


class TaskExecutor(pb_grpc.TaskExecutorServicer):
    def __init__(self, config: Configuration, ha_services: HaServices, host: str | None = None, port: int = 0,
                 bind_host: str = "0.0.0.0", slots: int | None = None, data_port: int = 0) -> None:
        """`port` and `data_port`: of its RPC and its data exchange, 0 for any free one (the daemon passes
        taskmanager.rpc.port and taskmanager.data.port; a mini cluster of several TaskExecutors 0)."""
        self.config = config
        self.ha = ha_services
        self.tls = internal_tls(config)  # (a ConfigurationError here stops the daemon before it listens)
        self.host = host or config.get(TaskManagerOptions.HOST) or socket.gethostname()
        self.bind_host = bind_host
        self.bind_port = port
        self.data_port = data_port
        self.slots = slots or config.get(TaskManagerOptions.NUM_TASK_SLOTS)
        self.resource_id = f"{self.host}-{uuid.uuid4().hex[:8]}"
        self.heartbeat_interval = config.get(HeartbeatManagerOptions.HEARTBEAT_INTERVAL).total_seconds()
        self.tasks: dict[tuple[str, str, int, int], _RunningTask] = {}
        self.leader: tuple[str, uuid.UUID] | None = None
        self.registered = asyncio.Event()
        self.storage = Storage(config)
        self._channels: dict[str, grpc.aio.Channel] = {}  # one per peer address
        self.loop: asyncio.AbstractEventLoop  # set by start(), before anything else runs
        self._retrieval: Any = None
        self._stopped: asyncio.Event | None = None
        self._background = TaskGroup(f"TaskManager {self.resource_id}")
        self._owner = LoopOwner(f"the task table of TaskManager {self.resource_id}")
        tmp_dirs = config.get(CoreOptions.TMP_DIRS) or []
        self.python_environments = PythonEnvironments(tmp_dirs[0] if tmp_dirs else None)
        self.process_status = ProcessStatus()

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    # -- lifecycle ------------------------------------------------------------------------------------

    async def start(self) -> None:
        self.loop = asyncio.get_running_loop()
        self._stopped = asyncio.Event()
        self.partitions = PartitionRegistry()
        self.local_gates = LocalGates()
        self.data_server = PartitionServer(self.partitions, self.bind_host, self.data_port, self.tls,
                                           f"TaskManager {self.resource_id}")
        self.data_connections = DataConnections(self.tls)
        interceptor = FencingInterceptor(self._followed_session, {"TaskExecutor"}, {"TaskExecutor"},
                                         role="TaskManager")
        self.server = grpc.aio.server(interceptors=[*server_interceptors(self.tls), interceptor],
                                      options=SERVER_OPTIONS)
        pb_grpc.add_TaskExecutorServicer_to_server(self, self.server)
        self.port = add_port(self.server, f"{self.bind_host}:{self.bind_port}", self.tls)
        if self.port == 0:
            raise OSError(f"cannot bind the TaskManager's RPC port {self.bind_port}")
        await self.server.start()
        self.data_server.start()
        self._retrieval = self.ha.leader_retrieval(paths.RESOURCE_MANAGER)
        self._retrieval.start(lambda address, session: self.loop.call_soon_threadsafe(
            self._on_leader, address, session))
        self._background.spawn(self._heartbeat_loop(), "heartbeats")
        self._background.spawn(self._sample_meters(), "meters")
        logger.info("TaskManager %s serving at %s (data port %d) with %d slots", self.resource_id, self.address,
                    self.data_server.port, self.slots)

    async def stop(self) -> None:
        self._background.cancel()  # (heartbeats, registration, reports: nothing more goes to a JobManager)
        if self._retrieval is not None:
            self._retrieval.stop()
        threads = [t.thread for t in self.tasks.values() if t.thread is not None]
        self._cancel_all("the TaskManager is shutting down")
        # their threads end at the next poll of the cancel flag (user code that blocks longer is left)
        deadline = time.monotonic() + TASK_STOP_SECONDS
        for thread in threads:
            await self.loop.run_in_executor(None, thread.join, max(0.0, deadline - time.monotonic()))
        await self.loop.run_in_executor(None, self.python_environments.close)
        await self.loop.run_in_executor(None, self.data_connections.close)
        await self.loop.run_in_executor(None, self.data_server.stop)
        await self.server.stop(1)

    def _followed_session(self) -> uuid.UUID | None:
        return self.leader[1] if self.leader else None

    # -- following the leader ----------------------------------------------------------------------------

    def _on_leader(self, address: str | None, session_id: uuid.UUID | None) -> None:
        self._owner.check()
        new = (address, session_id) if address and session_id else None
        if new == self.leader:
            return
        if self.leader is not None:
            self._cancel_all(f"leader {self.leader[0]} ({self.leader[1]}) is no longer followed")
        self.leader = new
        self.registered.clear()
        logger.info("Following leader %s", new if new else "(none)")
        if new is not None:
            self._background.spawn(self._register(new), f"register at {new[0]}")

    async def _register(self, leader: tuple[str, uuid.UUID]) -> None:
        while self.leader == leader:
            try:
                stub = pb_grpc.ResourceManagerStub(self._channel(leader[0]))
                await stub.RegisterTaskManager(
                    pb.RegisterTaskManagerRequest(resource_id=self.resource_id, address=self.address,
                                                  slots=self.slots, data_port=self.data_server.port),
                    metadata=fencing_metadata(leader[1]), timeout=5)
                self.registered.set()
                logger.info("Registered at ResourceManager %s", leader[0])
                await self._send_heartbeat(leader)  # reports our (empty) state at once
                return
            except grpc.RpcError as error:
                logger.info("Registration at %s failed (%s); retrying", leader[0], error.details())
                await asyncio.sleep(0.2)

    def _channel(self, address: str) -> grpc.aio.Channel:
        if address not in self._channels:
            self._channels[address] = rpc_channel(address, self.tls)
        return self._channels[address]

    async def _heartbeat_loop(self) -> None:
        while True:
            await asyncio.sleep(self.heartbeat_interval)
            leader = self.leader
            if leader is None or not self.registered.is_set():
                continue
            try:
                await self._send_heartbeat(leader)
            except grpc.RpcError as error:
                logger.info("Heartbeat to %s failed: %s", leader[0], error.details())

    async def _send_heartbeat(self, leader: tuple[str, uuid.UUID]) -> None:
        stub = pb_grpc.ResourceManagerStub(self._channel(leader[0]))
        reported = [t for t in self.tasks.values() if t.session_id == leader[1]]  # only this leader's tasks
        states = [self._state_message(t) for t in reported]
        response = await stub.Heartbeat(pb.TaskManagerHeartbeat(resource_id=self.resource_id,
                                                                 free_slots=self.free_slots(), tasks=states),
                                        metadata=fencing_metadata(leader[1]), timeout=5)
        if not response.registered and self.leader == leader:
            # The leader declared us lost and has restarted our tasks elsewhere: ours must stop first.
            self._cancel_all(f"leader {leader[0]} no longer knows this TaskManager")
            self.registered.clear()
            self._background.spawn(self._register(leader), f"register at {leader[0]}")
            return
        for running in reported:  # delivered: ended tasks need not be reported again
            if running.state in ("FINISHED", "CANCELED", "FAILED"):
                # by identity: while the heartbeat was on its way (to a leader that may since have been
                # paused and deposed), a new leader may have deployed a task with the same execution id
                self._forget(running)

    def free_slots(self) -> int:
        used = {t.descriptor.slot_index for t in self.tasks.values() if t.state in ("DEPLOYING", "RUNNING", "FINISHING")}
        return self.slots - len(used)

    # -- tasks ----------------------------------------------------------------------------------------

    async def DeployTask(self, request: pb.DeployTaskRequest, context: Any) -> pb.Empty:
        descriptor: TaskDeploymentDescriptor = cloudpickle.loads(request.deployment)
        session = self.leader[1] if self.leader else None
        offered = dict(context.invocation_metadata() or ()).get(LEADER_SESSION_KEY)
        if session is None or offered != str(session):
            # Checked again here: the leader may have changed since the interceptor looked.
            await context.abort(grpc.StatusCode.FAILED_PRECONDITION,
                                f"DeployTask from leader session {offered}, but this TaskManager follows {session}")
        assert session is not None  # (context.abort raised otherwise)
        try:
            await self._deploy(descriptor, session)
        except CheckpointStateDamagedError as error:  # the JobMaster restores an older checkpoint then
            await context.abort(grpc.StatusCode.DATA_LOSS, f"{descriptor.vertex.name} "
                                f"({descriptor.subtask_index + 1}/{descriptor.vertex.parallelism}): {error}")
        except StorageError as error:
            await context.abort(grpc.StatusCode.UNAVAILABLE, f"{descriptor.vertex.name} "
                                f"({descriptor.subtask_index + 1}/{descriptor.vertex.parallelism}) cannot read its "
                                f"restored state now: {error}")
        return pb.Empty()

    async def _deploy(self, d: TaskDeploymentDescriptor, session_id: uuid.UUID) -> None:
        cancelled = threading.Event()
        vertex = d.vertex
        gate = InputGate(len(d.inputs), GATE_CAPACITY, cancelled) if d.inputs else None
        writers = []
        partitions: list[ResultPartition] = []
        for edge, output in zip(vertex.outputs, d.outputs):
            partition = ResultPartition(output.partition_id, output.subpartitions, SUBPARTITION_CAPACITY, cancelled)
            self.partitions.register(str(session_id), partition)
            partitions.append(partition)
            channels = [LocalOutputChannel(self.local_gates, (session_id, output.partition_id, index), cancelled)
                        if index < len(output.consumer_addresses) and output.consumer_addresses[index] == self.address
                        else NetworkChannel(sp) for index, sp in enumerate(partition.subpartitions)]
            if edge.ship_strategy == repr(ForwardPartitioner()):
                channels = channels[:1]
            writers.append(RecordWriter(functools.partial(edge.instantiate_partitioner, d.key_hash), channels,
                                        d.subtask_index))
        restored = None
        if d.restored is not None:  # read this subtask's snapshot files here, off the event loop
            try:
                restored = await self.loop.run_in_executor(None, materialize, d.restored, self.storage.read)
            except BaseException:
                for partition in partitions:
                    partition.abort()
                raise
        holder: list[_RunningTask] = []
        snapshot_storage = (CheckpointStorageAccess(self.storage, d.checkpoint_dir, d.job_id)
                            if d.checkpoint_dir is not None else None)
        backend = d.state_backend
        if backend.local_dir is None:  # where RocksDB keeps its files is this TaskManager's setting
            backend = dataclasses.replace(backend, local_dir=self.config.get(StateBackendOptions.ROCKSDB_LOCAL_DIR))
        task = Task(vertex, d.subtask_index, gate, writers, cancelled, d.runtime_mode, d.attempt, d.job_parameters,
                    restored=restored, on_snapshot=lambda snapshot: self._on_snapshot(holder[0], snapshot),
                    checkpointing=d.checkpoint_dir is not None, aligned=d.exactly_once,
                    on_data_ended=lambda: self.loop.call_soon_threadsafe(self._data_ended, holder[0]),
                    on_decline=lambda checkpoint_id, reason: self.loop.call_soon_threadsafe(
                        lambda: self._background.spawn(self._decline(holder[0], checkpoint_id, reason), "decline")),
                    state_backend=backend, snapshot_storage=snapshot_storage, key_hash=d.key_hash)
        running = _RunningTask(d, task, cancelled, session_id)
        running.meters.update(time.monotonic(), 0, 0, 0.0)  # its first rate one sampling period from now
        holder.append(running)
        running.partitions = partitions
        if self.leader is None or self.leader[1] != session_id:
            for partition in partitions:
                partition.abort()
            return  # the leader changed while we prepared: never start a deposed leader's task
        previous = self.tasks.get(d.execution_id)
        if previous is not None:
            self._finish(previous, "CANCELED", "")
        self._owner.check()
        self.tasks[d.execution_id] = running
        for index, channel in enumerate(d.inputs):
            assert gate is not None  # (made when there are inputs)
            if channel.producer_address == self.address:  # its producer's thread puts into the gate itself
                key = (session_id, channel.partition_id, channel.subpartition)
                self.local_gates.register(key, gate, index)
                running.local_inputs.append(key)
                continue
            reader = RemoteInputChannel(
                self.data_connections, channel.producer_data_address,
                PartitionRequest(str(session_id), channel.partition_id, channel.subpartition, INITIAL_CREDITS), gate,
                index, on_failure=functools.partial(self._on_reader_failure, running))
            running.readers.append(reader)
        for reader in running.readers:
            reader.start()
        running.state = "RUNNING"
        running.thread = threading.Thread(target=self._run_task, args=(running,), name=task.display_name, daemon=True)
        running.thread.start()
        await self._report(running)

    # -- checkpoints ------------------------------------------------------------------------------------

    def _on_snapshot(self, running: _RunningTask, snapshot: TaskSnapshot) -> None:
        """On the task's snapshot thread: write the snapshot where the JobMaster's coordinator will look,
        then acknowledge (from the event loop). A write that fails raises: the task declines."""
        d = running.descriptor
        if d.checkpoint_dir is None:
            return
        access = running.task.snapshot_storage
        assert isinstance(access, CheckpointStorageAccess)  # (what _deploy gives a task with a checkpoint dir)
        url = access.task_snapshot_url(snapshot.checkpoint_id, d.vertex.id, d.subtask_index, d.attempt)
        with running.snapshot_write:
            if running.cancelled.is_set():
                return  # its job may be cleaned up already: a file written now would outlive it
            self.storage.write_sealed(url, snapshot.data, overwrite=True)
        self.loop.call_soon_threadsafe(lambda: self._background.spawn(self._acknowledge(running, snapshot, url),
                                                                      "acknowledge"))

    async def _acknowledge(self, running: _RunningTask, snapshot: TaskSnapshot, url: str) -> None:
        d = running.descriptor
        await self._call_job_master(running, "AcknowledgeCheckpoint", pb.CheckpointAck(
            job_id=d.job_id, vertex_id=d.vertex.id, subtask_index=d.subtask_index, attempt=d.attempt,
            checkpoint_id=snapshot.checkpoint_id, state_url=url, shared_urls=snapshot.shared_urls,
            restore_from_all=snapshot.restore_from_all, state_size=len(snapshot.data) + snapshot.shared_bytes,
            checkpointed_size=len(snapshot.data) + snapshot.uploaded_bytes))

    async def _decline(self, running: _RunningTask, checkpoint_id: int, reason: str) -> None:
        d = running.descriptor
        await self._call_job_master(running, "DeclineCheckpoint", pb.CheckpointDecline(
            job_id=d.job_id, vertex_id=d.vertex.id, subtask_index=d.subtask_index, attempt=d.attempt,
            checkpoint_id=checkpoint_id, reason=reason))

    async def _call_job_master(self, running: _RunningTask, method: str, request: Any) -> None:
        leader = self.leader
        if leader is None or leader[1] != running.session_id:
            return  # the leader that deployed the task is gone: its checkpoints are void
        try:
            await getattr(pb_grpc.JobMasterGatewayStub(self._channel(leader[0])), method)(
                request, metadata=fencing_metadata(leader[1]), timeout=10)
        except grpc.RpcError as error:
            logger.info("%s %d of %s failed: %s", method, request.checkpoint_id, running.task.display_name,
                        error.details())

    def _data_ended(self, running: _RunningTask) -> None:
        """A task's input ended and it waits for the final checkpoint: tell the JobMaster (FINISHING)."""
        if running.state == "RUNNING":
            running.state = "FINISHING"
            self._background.spawn(self._report(running), "report")

    def _job_tasks(self, job_id: str) -> list[_RunningTask]:
        return [t for t in self.tasks.values() if t.descriptor.job_id == job_id and t.state in ("RUNNING", "FINISHING")]

    async def TriggerCheckpoint(self, request: pb.CheckpointRequest, context: Any) -> pb.Empty:
        for running in self._job_tasks(request.job_id):
            if running.descriptor.vertex.is_source:
                running.task.trigger_checkpoint(request.checkpoint_id, request.timestamp, request.savepoint,
                                                request.drain, request.stop)
        return pb.Empty()

    async def NotifyCheckpointComplete(self, request: pb.CheckpointRequest, context: Any) -> pb.Empty:
        for running in self._job_tasks(request.job_id):
            running.task.notify_checkpoint_complete(request.checkpoint_id)
        return pb.Empty()

    def _on_reader_failure(self, running: _RunningTask, reason: str) -> None:
        try:
            self.loop.call_soon_threadsafe(self._reader_failed, running, reason)
        except RuntimeError:  # the loop is closed: the TaskManager stopped, its tasks with it
            pass

    def _reader_failed(self, running: _RunningTask, reason: str) -> None:
        if not running.cancelled.is_set():
            self._finish(running, "FAILED", f"input channel failed: {reason}")

    def _run_task(self, running: _RunningTask) -> None:
        python_env: JobPythonEnvironment | None = None
        try:
            dependencies = running.descriptor.python_dependencies
            if dependencies is not None:  # (before the task unpickles its functions, which import the modules)
                python_env = self.python_environments.enter(running.descriptor.job_id, dependencies,
                                                            running.cancelled)
            running.task.run()
            outcome, failure = "FINISHED", ""
        except (TaskCancelled, PythonEnvironmentCancelled):
            outcome, failure = "CANCELED", ""
        except BaseException:
            outcome, failure = "FAILED", traceback.format_exc()
        finally:
            if python_env is not None:
                try:
                    self.python_environments.leave(python_env)
                except Exception:
                    logger.exception("Removing the Python environment of job %s failed", python_env.job_id)
        try:
            self.loop.call_soon_threadsafe(self._finish, running, outcome, failure)
        except RuntimeError:  # the loop is closed: the TaskManager stopped, nobody awaits this report
            pass

    def _finish(self, running: _RunningTask, state: str, failure: str) -> None:
        self._owner.check()
        if running.state in ("FINISHED", "CANCELED", "FAILED"):
            return
        running.state, running.failure = state, failure
        for key in running.local_inputs:
            gate = running.task.gate
            assert gate is not None  # (a task with local inputs has a gate)
            self.local_gates.unregister(key, gate)
        if state != "FINISHED":
            with running.snapshot_write:  # so no snapshot file of it is written after a cancel returns
                running.cancelled.set()
            for reader in running.readers:
                reader.cancel()
            for partition in running.partitions:
                partition.abort()  # its consumers' streams end instead of waiting for data forever
        logger.info("%s %s%s", running.task.display_name, state, f": {failure.strip().splitlines()[-1]}" if failure else "")
        self._background.spawn(self._report(running), "report")

    def _state_message(self, running: _RunningTask) -> pb.TaskExecutionState:
        d = running.descriptor
        return pb.TaskExecutionState(job_id=d.job_id, vertex_id=d.vertex.id, subtask_index=d.subtask_index,
                                     attempt=d.attempt, state=running.state, failure=running.failure)

    async def _report(self, running: _RunningTask) -> None:
        leader = self.leader
        ended = running.state in ("FINISHED", "CANCELED", "FAILED")
        if leader is None or leader[1] != running.session_id:
            if ended:  # a former leader's task: nobody needs to hear of it any more
                self._forget(running)
            return
        try:
            stub = pb_grpc.ResourceManagerStub(self._channel(leader[0]))
            await stub.UpdateTaskExecutionState(self._state_message(running), metadata=fencing_metadata(leader[1]),
                                                timeout=5)
        except grpc.RpcError as error:
            # Kept: the next heartbeat carries the state, and forgets the task once that was delivered.
            logger.info("Could not report %s of %s: %s", running.state, running.task.display_name, error.details())
            return
        if ended:
            self._forget(running)

    # -- metrics --------------------------------------------------------------------------------------

    async def _sample_meters(self) -> None:
        while True:
            now = time.monotonic()
            for running in list(self.tasks.values()):
                task = running.task
                running.meters.update(now, task.records_in, task.records_out, task.back_pressured_s)
                task.info.metric_group.update_meters(now)  # the user's meters (MeterView clocks are monotonic)
            await asyncio.sleep(METER_SAMPLE_SECONDS)

    def _task_metrics(self, running: _RunningTask, user_metrics: bool = True) -> pb.TaskMetrics:
        """`user_metrics`: with the operators' user metrics (their gauges are called)."""
        d, task, meters = running.descriptor, running.task, running.meters
        return pb.TaskMetrics(job_id=d.job_id, vertex_id=d.vertex.id, subtask_index=d.subtask_index,
                              attempt=d.attempt, state=running.state, records_in=task.records_in,
                              records_out=task.records_out, records_in_per_second=meters.records_in.rate,
                              records_out_per_second=meters.records_out.rate,
                              back_pressured_ms_per_second=min(1000.0, meters.back_pressured_ms.rate),
                              current_input_watermark=max(-(1 << 63), task.current_input_watermark),
                              user_metrics=user_metric_values(task.info.metric_group) if user_metrics else None)

    async def RequestTaskMetrics(self, request: pb.Empty, context: Any) -> pb.TaskMetricsReport:
        return pb.TaskMetricsReport(resource_id=self.resource_id,
                                    tasks=[self._task_metrics(t) for t in self.tasks.values()])

    def metric_samples(self) -> list[MetricSample]:
        """For the Prometheus reporter (on the event loop): Flink's task I/O metrics of every task here, and
        the user metrics of their operators."""
        connected = getattr(getattr(self.ha, "client", None), "state", "CONNECTED") == "CONNECTED"
        samples = [MetricSample("taskmanager_Status_numberOfSlots", self.slots, {"tm_id": self.resource_id}),
                   MetricSample("taskmanager_zooKeeperConnected", float(connected), {"tm_id": self.resource_id})]
        for running in self.tasks.values():
            d, m = running.descriptor, self._task_metrics(running, user_metrics=False)
            labels = {"tm_id": self.resource_id, "job_id": d.job_id, "job_name": d.job_name,
                      "task_id": d.vertex.id, "task_name": d.vertex.name, "subtask_index": str(d.subtask_index),
                      "task_attempt_num": str(d.attempt)}
            for name, value in (("numRecordsIn", m.records_in), ("numRecordsOut", m.records_out),
                                ("numRecordsInPerSecond", m.records_in_per_second),
                                ("numRecordsOutPerSecond", m.records_out_per_second),
                                ("backPressuredTimeMsPerSecond", m.back_pressured_ms_per_second),
                                ("isBackPressured", float(m.back_pressured_ms_per_second > 100))):
                samples.append(MetricSample(f"taskmanager_job_task_{name}", value, labels))
            samples += user_metric_samples(running.task.info.metric_group, d.vertex.id, labels)
        return samples

    # -- diagnostics (the leader's REST: Flink's /taskmanagers/<id>/logs, /log, /stdout, /thread-dump) -----

    def log_location(self) -> LogLocation:
        # (looked up per request: the daemon's log file is opened by its entry point, not by us)
        return LogLocation.of_this_process(self.config, "taskmanager.log.path")

    async def ListLogFiles(self, request: pb.Empty, context: Any) -> pb.LogFileList:
        files = await self.loop.run_in_executor(None, self.log_location().files)
        return pb.LogFileList(files=[pb.LogFileInfo(name=f.name, size=f.size, mtime=f.mtime) for f in files])

    async def ReadLogFile(self, request: pb.LogFileRequest, context: Any) -> pb.LogFileChunk:
        logs = self.log_location()
        limit = min(request.max_bytes or MAX_LOG_BYTES, MAX_LOG_BYTES)
        read = {pb.LOG: lambda: logs.read_log(limit), pb.STDOUT: lambda: logs.read_stdout(limit)}.get(
            request.kind, lambda: logs.read(request.name, limit))
        try:
            chunk: LogChunk = await self.loop.run_in_executor(None, read)
        except LogFileError as error:
            code = grpc.StatusCode.INVALID_ARGUMENT if error.problem is LogFileProblem.BAD_NAME \
                else grpc.StatusCode.NOT_FOUND
            await context.abort(code, f"TaskManager {self.resource_id}: {error}")
            raise AssertionError("unreachable: context.abort raises") from error
        own = logs.log_file if request.kind == pb.LOG else logs.stdout_file if request.kind == pb.STDOUT else None
        return pb.LogFileChunk(data=chunk.data, size=chunk.size, skipped=chunk.skipped,
                               name=own.name if own is not None else request.name)

    async def RequestThreadDump(self, request: pb.Empty, context: Any) -> pb.ThreadDump:
        return pb.ThreadDump(threads=[pb.ThreadStack(name=t.name, text=t.text)
                                      for t in thread_dump(thread_dump_depth(self.config))])

    async def SampleTaskStacks(self, request: pb.StackSampleRequest, context: Any) -> pb.StackSamples:
        wanted = set(request.subtasks)
        idents = [running.thread.ident for running in self.tasks.values()
                  if running.descriptor.job_id == request.job_id and running.descriptor.vertex.id == request.vertex_id
                  and (not wanted or running.descriptor.subtask_index in wanted)
                  and running.thread is not None and running.thread.ident is not None]
        samples = max(1, min(request.samples, 1000))
        seen = await self.loop.run_in_executor(None, sample_stacks, idents, samples,
                                               max(0, request.delay_ms) / 1000, max(1, request.depth))
        return pb.StackSamples(stacks=[pb.StackCount(frames=list(stack), count=count) for stack, count in seen.items()])

    async def RequestTaskManagerMetrics(self, request: pb.Empty, context: Any) -> pb.TaskManagerMetrics:
        values = await self.loop.run_in_executor(None, self.process_status.sample)
        # the TaskManager's own samples of its Prometheus registry (those without a task), under Flink's ids
        for sample in self.metric_samples():
            if set(sample.labels) == {"tm_id"}:
                values[sample.name.removeprefix("taskmanager_").replace("_", ".")] = str(sample.value)
        return pb.TaskManagerMetrics(resource_id=self.resource_id, metrics=values)

    def _forget(self, running: _RunningTask) -> None:
        self._owner.check()
        if self.tasks.get(running.descriptor.execution_id) is running:
            del self.tasks[running.descriptor.execution_id]

    async def CancelTask(self, request: pb.CancelTaskRequest, context: Any) -> pb.Empty:
        for running in list(self.tasks.values()):
            d = running.descriptor
            if (d.job_id, d.vertex.id, d.subtask_index) == (request.job_id, request.vertex_id, request.subtask_index):
                self._finish(running, "CANCELED", "")
        return pb.Empty()

    async def CancelJob(self, request: pb.JobId, context: Any) -> pb.Empty:
        self._cancel_job(request.job_id)
        return pb.Empty()

    def _cancel_job(self, job_id: str) -> None:
        for running in list(self.tasks.values()):
            if running.descriptor.job_id == job_id:
                self._finish(running, "CANCELED", "")
        self.partitions.release_job(job_id)

    def _cancel_all(self, reason: str) -> None:
        jobs = {running.descriptor.job_id for running in self.tasks.values()}
        if jobs:
            logger.info("Cancelling the tasks of %d job(s): %s", len(jobs), reason)
        for job_id in jobs:
            self._cancel_job(job_id)
