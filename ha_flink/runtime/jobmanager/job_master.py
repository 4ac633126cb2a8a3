"""The JobMaster of one job: the driver of its pure state machine (`scheduler/job_scheduler.py`).

It turns what happens (gRPC reports of task states, checkpoint acks, a lost TaskManager, a restart timer,
the end of a deployment) into the scheduler's events, and carries out the instructions the scheduler
returns: restoring state through the checkpoint coordinator, taking slots from the ResourceManager,
deploying and cancelling subtasks over gRPC, starting timers. What to do on a failure (restart every task,
`full`, or only the affected pipelined regions, `region`; after which backoff; when to give up) is decided
in the scheduler, never here. Slot sharing as in Flink: slot i runs subtask i of every vertex, so a job
needs as many slots as its highest parallelism; a region whose TaskManager was lost gets new slots.

Everything here runs on the JobManager's event loop. Work it does not await at once runs in one of two
task groups: `_scheduling` (preparations, deployments: cancelled when the job ends or is suspended) and
`_tasks` (cancels and notifications, which must still reach the TaskManagers after the job ended: closed
with the JobManager)."""

from __future__ import annotations

import asyncio
import collections
import functools
import logging
import time
import uuid
from typing import Any, Awaitable, Callable

import cloudpickle
import grpc

from ha_flink.aio.owner import LoopOwner
from ha_flink.aio.tasks import TaskGroup
from ha_flink.common.job_status import GLOBALLY_TERMINAL, JobStatus
from ha_flink.config import (
    CheckpointingOptions, Configuration, HighAvailabilityOptions, JobManagerOptions, StateBackendOptions, WebOptions,
)
from ha_flink.fs import Storage, join_url
from ha_flink.ha.fencing import Fence
from ha_flink.ha.services import HaServices
from ha_flink.rpc import flink_pb2 as pb
from ha_flink.runtime.checkpoint.coordinator import (
    CheckpointCoordinator, CheckpointTriggerError, SavepointError, restored_from_savepoint,
)
from ha_flink.runtime.checkpoint.storage import is_absolute_location
from ha_flink.runtime.deployment import InputChannelDescriptor, OutputDescriptor, TaskDeploymentDescriptor
from ha_flink.runtime.execution_state import ExecutionState
from ha_flink.runtime.graph.job_graph import JobGraph, JobVertex
from ha_flink.runtime.jobmanager.resource_manager import ResourceManager, TaskExecutorGateway, TaskManagerInfo
from ha_flink.runtime.network.partition import partition_id
from ha_flink.runtime.scheduler import job_scheduler as js
from ha_flink.runtime.scheduler.job_scheduler import ExceptionEntry, JobScheduler, SubtaskKey
from ha_flink.runtime.scheduler.restart_strategies import restart_strategy_from_config
from ha_flink.runtime.state.backend import StateBackendSettings

logger = logging.getLogger(__name__)

DEPLOY_RETRY_SECONDS = 3.0  # a deployment refused as UNAVAILABLE is tried once more, this long
DRAINED_FINISH_SECONDS = 10.0  # after a drained savepoint, the tasks' own finish is awaited this long


def checkpoints_dir(config: Configuration) -> str:
    """`state.checkpoints.dir`, else `<high-availability.storageDir>/checkpoints`, else a local temp folder."""
    configured = config.get(CheckpointingOptions.CHECKPOINTS_DIRECTORY)
    if configured:
        return configured
    storage = config.get(HighAvailabilityOptions.HA_STORAGE_PATH)
    return join_url(storage, "checkpoints") if storage else "/tmp/ha-flink-checkpoints"


def _rpc_details(error: BaseException) -> str:
    return f"{error.code().name}: {error.details()}" if isinstance(error, grpc.RpcError) else str(error)


def _now_ms() -> int:
    return int(time.time() * 1000)


def job_metrics(job: JobMaster, now_ms: int) -> dict[str, float]:
    """Flink's job-scope metrics of one job (ms where a time): what Prometheus and the REST API show."""
    coordinator = job.coordinator
    stats = coordinator.stats if coordinator is not None else None
    last = stats.latest_completed if stats is not None else None
    scheduler = job.scheduler
    outage = scheduler.outage_since if job.status not in GLOBALLY_TERMINAL else None
    running = scheduler.running_since
    return {
        "numRestarts": scheduler.num_restarts,
        "uptime": now_ms - running if running is not None and job.status == JobStatus.RUNNING else 0,
        "downtime": now_ms - outage if outage is not None else 0,
        "restartingTime": now_ms - outage if outage is not None else scheduler.last_restart_ms,
        "numberOfCompletedCheckpoints": stats.completed if stats else 0,
        "numberOfFailedCheckpoints": stats.failed if stats else 0,
        "numberOfInProgressCheckpoints": stats.in_progress if stats else 0,
        "lastCheckpointDuration": last.end_to_end_duration if last else -1,
        "lastCheckpointSize": last.checkpointed_size if last else -1,  # (Flink: the incremental size)
        "lastCheckpointFullSize": last.state_size if last else -1,
        "lastCompletedCheckpointId": last.checkpoint_id if last else -1,
        "lastCheckpointRestoreTimestamp": stats.latest_restored.restore_timestamp
        if stats is not None and stats.latest_restored is not None else -1,
    }


class JobMaster:
    def __init__(self, graph: JobGraph, resource_manager: ResourceManager, session_id: uuid.UUID | None,
                 config: Configuration, on_terminal: Callable[[JobMaster], None], ha: HaServices | None = None,
                 fence: Fence | None = None,
                 tasks: TaskGroup | None = None) -> None:
        self.graph = graph
        self.rm = resource_manager
        self.session_id = session_id
        self.on_terminal = on_terminal
        self.fence = fence
        config = config.copy()
        for key, value in graph.settings.items():  # the job's own settings win over the cluster's
            config.set(key, value, source=f"job {graph.job_id}")
        configured_interval = config.get(CheckpointingOptions.CHECKPOINTING_INTERVAL)
        checkpointing = graph.checkpoint_interval_ms is not None or configured_interval is not None
        self.config = config
        self.checkpoints_dir = checkpoints_dir(config)
        self.coordinator: CheckpointCoordinator | None = None
        interval = graph.checkpoint_interval_ms or (
            configured_interval.total_seconds() * 1000 if configured_interval is not None else None)
        if interval and ha is not None:
            self.coordinator = CheckpointCoordinator(
                graph, ha, fence, Storage(config), self.checkpoints_dir, interval / 1000,
                config.get(CheckpointingOptions.MAX_RETAINED_CHECKPOINTS),
                timeout_s=config.get(CheckpointingOptions.CHECKPOINTING_TIMEOUT).total_seconds(),
                min_pause_s=config.get(CheckpointingOptions.MIN_PAUSE_BETWEEN_CHECKPOINTS).total_seconds(),
                max_concurrent=config.get(CheckpointingOptions.MAX_CONCURRENT_CHECKPOINTS),
                tolerable_failures=config.get(CheckpointingOptions.TOLERABLE_FAILED_CHECKPOINTS),
                history_size=config.get(WebOptions.CHECKPOINTS_HISTORY_SIZE))
        self.scheduler = JobScheduler(
            graph, restart_strategy_from_config(config, checkpointing),
            failover=config.get(JobManagerOptions.FAILOVER_STRATEGY), checkpointing=self.coordinator is not None,
            created_ms=_now_ms())
        self._restored: dict[SubtaskKey, Any] | None = None  # restore plans for the next deployment
        self.state_backend = StateBackendSettings(config.get(StateBackendOptions.STATE_BACKEND),
                                                  config.get(StateBackendOptions.INCREMENTAL_CHECKPOINTS))
        self.start_time = graph.submission_time or _now_ms()
        self._events: collections.deque[js.Event] = collections.deque()
        self._handling = False
        self._timers: set[asyncio.TimerHandle] = set()
        self._scheduling = TaskGroup(f"job {graph.job_id} scheduling")
        self._tasks = tasks or TaskGroup(f"job {graph.job_id}")
        self._owner = LoopOwner(f"the JobMaster of job {graph.job_id}")
        self._cancelling: asyncio.Task[None] | None = None  # the CancelJob that ends the job (cancel, stop)

    # -- what the scheduler owns, for the views and the Dispatcher ------------------------------------

    @property
    def job_id(self) -> str:
        return self.graph.job_id

    @property
    def status(self) -> JobStatus:
        return self.scheduler.status

    @property
    def failure(self) -> str:
        return self.scheduler.failure

    @property
    def attempt(self) -> int:
        return self.scheduler.attempt

    @property
    def attempts(self) -> dict[SubtaskKey, int]:
        return self.scheduler.attempts

    @property
    def placement(self) -> dict[SubtaskKey, TaskManagerInfo]:
        return self.scheduler.placement  # type: ignore[return-value]  # (the slots it was given are TaskManagerInfos)

    @property
    def num_restarts(self) -> int:
        return self.scheduler.num_restarts

    @property
    def end_time(self) -> int:
        return self.scheduler.end_time

    @property
    def exceptions(self) -> collections.deque[ExceptionEntry]:
        return self.scheduler.exceptions

    def failed_task(self) -> tuple[str, str] | None:
        """The subtask (its name, the user's traceback) whose failure the job FAILED with, if it was one."""
        return self.scheduler.failed_task()

    # -- the driver loop ------------------------------------------------------------------------------

    def _handle(self, event: js.Event) -> None:
        """Feed one event to the scheduler and carry out its instructions. Events that arrive while
        instructions are carried out (a callback of the coordinator, say) queue behind them, so the scheduler
        always sees one event at a time, after the instructions of the one before."""
        self._owner.check()
        self._events.append(event)
        if self._handling:
            return
        self._handling = True
        try:
            while self._events:
                for instruction in self.scheduler.handle(self._events.popleft(), _now_ms()):
                    self._execute(instruction)
        finally:
            self._handling = False

    def _execute(self, instruction: js.Instruction) -> None:
        match instruction:
            case js.PrepareAttempt():
                self._scheduling.spawn(self._prepare_attempt(instruction), f"attempt {instruction.attempt}")
            case js.Deploy():
                self._scheduling.spawn(self._deploy_all(instruction), f"deploy {len(instruction.subtasks)} tasks")
            case js.PrepareRegion():
                self._scheduling.spawn(self._prepare_region(instruction.region), "region restart")
            case js.StartTimer():
                self._start_timer(instruction.delay_s, instruction.event)
            case js.CancelJob():
                task = self._tasks.spawn(self._cancel_job(instruction), "cancel")
                if instruction.final is not None:
                    self._cancelling = task
            case js.CancelSubtasks():
                for key, owner in instruction.subtasks:
                    self._tasks.spawn(self._cancel_subtask(key, owner), f"cancel {key}")  # type: ignore[arg-type]
            case js.ReleaseSlots():
                self.rm.release(self.job_id)
            case js.StartCheckpointing():
                if self.coordinator is not None and self.coordinator._loop_task is None:
                    self.coordinator.start(self._can_checkpoint, self._trigger_checkpoint, self._job_failed)
            case js.AbortPendingCheckpoints():
                if self.coordinator is not None:
                    self.coordinator.abort_pending()
            case js.TriggerCheckpointSoon():
                if self.coordinator is not None:
                    self.coordinator.trigger_soon()
            case js.TaskFinished():
                if self.coordinator is not None:
                    self.coordinator.task_finished(instruction.subtask, instruction.name)
            case js.StopScheduling():
                if self.coordinator is not None:
                    self.coordinator.stop()
                for timer in self._timers:
                    timer.cancel()
                self._timers.clear()
                self._scheduling.cancel()
            case js.JobTerminated():
                self.on_terminal(self)

    def _start_timer(self, delay_s: float, event: js.ScheduleDue | js.RegionRestartDue) -> None:
        def fire() -> None:
            self._timers.discard(handle)
            self._handle(event)

        handle = asyncio.get_running_loop().call_later(delay_s, fire)
        self._timers.add(handle)

    # -- commands -------------------------------------------------------------------------------------

    def start(self) -> None:
        self._handle(js.ScheduleDue(self.scheduler.attempt))

    def cancel(self) -> None:
        self._handle(js.CancelRequested())

    def suspend(self) -> None:
        """Leadership lost: stop without touching HA data (the TaskManagers cancel the tasks themselves)."""
        self._handle(js.LeadershipLost())

    def on_task_state(self, state: pb.TaskExecutionState) -> None:
        if state.job_id == self.job_id:
            self._handle(js.TaskStateChanged((state.vertex_id, state.subtask_index), state.attempt,
                                             ExecutionState(state.state), state.failure))

    def on_task_manager_lost(self, resource_id: str, reason: str) -> None:
        self._handle(js.TaskManagerLost(resource_id, reason))

    def _job_failed(self, failure: str) -> None:
        self._handle(js.JobFailed(failure))

    # -- carrying out instructions --------------------------------------------------------------------

    def _can_reach_zookeeper(self) -> bool:
        """Whether this leader can still commit anything (always, without ZooKeeper HA)."""
        return self.fence is None or self.fence.client.state == "CONNECTED"

    async def _await_zookeeper(self, what: str) -> bool:
        """Hold a (re)deployment while this leader's ZooKeeper connection is down: it could commit no
        checkpoint, and its TaskManagers may already follow a leader elected meanwhile. False: the job
        stopped (suspended, cancelled) while waiting."""
        if self._can_reach_zookeeper():
            return True
        logger.info("Job %s (%s): %s waits until the connection to ZooKeeper is back", self.graph.name,
                    self.job_id, what)
        while not self._can_reach_zookeeper():
            await asyncio.sleep(0.1)
            if self.status in GLOBALLY_TERMINAL or self.status in js.STOPPING:
                return False
        return True

    async def _prepare_attempt(self, instruction: js.PrepareAttempt) -> None:
        attempt = instruction.attempt
        if instruction.wait_for_zookeeper and not await self._await_zookeeper(f"attempt {attempt}"):
            return
        restored, checkpoint_id = None, None
        if self.coordinator is not None:
            try:  # (on every attempt until the store was read once: a storage blip must not mean empty state)
                if not self.coordinator.initialized:
                    await self.coordinator.initialize()
                latest = await self._latest_checkpoint(fall_back=True)
            except Exception as error:
                self._show_recovery_notes()
                self._handle(js.AttemptPreparationFailed(
                    attempt, f"cannot restore the latest checkpoint of job {self.job_id}: {error}"))
                return
            self._show_recovery_notes()
            if latest is not None:
                checkpoint_id, restored = latest
                logger.info("Job %s (%s) restores checkpoint %d", self.graph.name, self.job_id, checkpoint_id)
        if restored is None and self.graph.savepoint_path:
            try:
                savepoint_id, restored = await restored_from_savepoint(
                    self.graph, Storage(self.config), self.graph.savepoint_path, self.graph.allow_non_restored_state,
                    asyncio.get_running_loop())
            except Exception as error:
                self._handle(js.AttemptPreparationFailed(
                    attempt, f"cannot restore the savepoint of job {self.job_id}: {error}"))
                return
            logger.info("Job %s (%s) restores savepoint %s", self.graph.name, self.job_id, self.graph.savepoint_path)
            if self.coordinator is not None:
                self.coordinator.stats.restored(savepoint_id, _now_ms(), True, self.graph.savepoint_path)
        self._restored = restored
        while (slots := self.rm.allocate(self.job_id, instruction.slots)) is None:
            await self.rm.changed.wait()
        self._handle(js.AttemptPrepared(attempt, checkpoint_id, tuple(slots)))

    async def _prepare_region(self, region: frozenset[SubtaskKey]) -> None:
        if not await self._await_zookeeper(f"the restart of a region of {len(region)} tasks"):
            return
        checkpoint_id = None
        if self.coordinator is not None:
            try:  # (an older checkpoint, if it comes to that, is for the whole job: every region the same)
                latest = await self._latest_checkpoint(fall_back=False)
            except Exception as error:
                self._show_recovery_notes()
                self._handle(js.RegionPreparationFailed(
                    region, f"the restore of a region of {len(region)} tasks of job {self.job_id} failed: {error}"))
                return
            self._restored = latest[1] if latest is not None else None
            if latest is not None:
                checkpoint_id = latest[0]
                logger.info("Job %s (%s) restores checkpoint %d for a region of %d tasks", self.graph.name,
                            self.job_id, checkpoint_id, len(region))
        replaced = await self._replace_lost_slots(region)
        if replaced is not None:
            self._handle(js.RegionPrepared(region, checkpoint_id, replaced))

    async def _latest_checkpoint(self, fall_back: bool) -> tuple[int, dict[SubtaskKey, Any]] | None:
        """The checkpoint to restore, read once no completion is under way: a checkpoint whose last ack came
        before the failure may still be committing, and its commit subsumes (deletes) the one read before."""
        assert self.coordinator is not None
        await self.coordinator.settled()
        return await self.coordinator.restored_state(fall_back=fall_back)

    async def _replace_lost_slots(self, region: frozenset[SubtaskKey]) -> tuple[tuple[SubtaskKey, js.Slot], ...] | None:
        """A new slot for the subtasks of `region` whose TaskManager is gone (one per lost slot, as they
        shared it); waits for free slots. None: the job stopped running meanwhile."""
        lost: dict[tuple[str, int], list[SubtaskKey]] = {}
        for key in sorted(region):
            info = self.placement[key]
            if self.rm.task_managers.get(info.resource_id) is not info:
                lost.setdefault((info.resource_id, self.scheduler.slot_of[key]), []).append(key)
        if not lost:
            return ()
        while (slots := self.rm.allocate(self.job_id, len(lost))) is None:
            logger.info("Job %s: waiting for %d free slots to replace those of a lost TaskManager", self.job_id,
                        len(lost))
            await self.rm.changed.wait()
            if self.status != JobStatus.RUNNING:
                return None
        return tuple((key, slot) for keys, slot in zip(lost.values(), slots) for key in keys)

    def _descriptor(self, vertex: JobVertex, index: int) -> TaskDeploymentDescriptor:
        graph, placement, attempts = self.graph, self.placement, self.attempts
        attempt = attempts[(vertex.id, index)]
        outputs = []
        for edge_index, edge in enumerate(vertex.outputs):
            target = graph.vertices[edge.target]
            consumers = [index] if edge.is_pointwise else range(target.parallelism)
            outputs.append(OutputDescriptor(partition_id(self.job_id, vertex.id, index, attempt, edge_index),
                                            len(consumers),
                                            tuple(placement[(target.id, c)].address for c in consumers)))
        inputs = []
        for edge in vertex.inputs:
            producer = graph.vertices[edge.source]
            edge_index = producer.outputs.index(edge)
            producers = [index] if edge.is_pointwise else range(producer.parallelism)
            for p in producers:
                inputs.append(InputChannelDescriptor(
                    partition_id(self.job_id, producer.id, p, attempts[(producer.id, p)], edge_index),
                    0 if edge.is_pointwise else index,
                    placement[(producer.id, p)].address, placement[(producer.id, p)].data_address))
        restored = (self._restored or {}).get((vertex.id, index))
        return TaskDeploymentDescriptor(self.job_id, graph.name, vertex, index, attempt,
                                        self.scheduler.slot_of[(vertex.id, index)],
                                        inputs, outputs, graph.runtime_mode, graph.config, restored,
                                        self.checkpoints_dir if self.coordinator is not None else None,
                                        self.config.get(CheckpointingOptions.CHECKPOINTING_MODE) == "EXACTLY_ONCE",
                                        self.state_backend, python_dependencies=graph.python_dependencies,
                                        key_hash=graph.key_hash)

    async def _deploy(self, descriptor: TaskDeploymentDescriptor) -> None:
        info = self.placement[(descriptor.vertex.id, descriptor.subtask_index)]
        request = pb.DeployTaskRequest(job_id=self.job_id, deployment=cloudpickle.dumps(descriptor))
        gateway = info.gateway(self.session_id)
        try:
            await gateway.deploy_task(request, timeout=10)
        except grpc.RpcError as error:
            if error.code() != grpc.StatusCode.UNAVAILABLE or "failed to connect" not in (error.details() or ""):
                raise  # (only a connection that never came up: the task cannot have been deployed)
            # A refused first connection (seen under load, just after the TaskManager registered) leaves the
            # channel backing off: ask once more, waiting a little for it to connect. A TaskManager that is
            # really gone fails this one too, and the deployment fails as before.
            await gateway.deploy_task(request, timeout=DEPLOY_RETRY_SECONDS, wait_for_ready=True)

    async def _deploy_all(self, instruction: js.Deploy) -> None:
        keys = instruction.subtasks
        attempts = [self.attempts[key] for key in keys]
        descriptors = [self._descriptor(self.graph.vertices[v], i) for v, i in keys]
        results = await asyncio.gather(*(self._deploy(d) for d in descriptors), return_exceptions=True)
        # (every damaged file is marked, whatever failure the scheduler sees first: the next attempt must know)
        damaged = [self._state_damaged(result, instruction.checkpoint_id) for result in results]
        for key, attempt, result, was_damaged in zip(keys, attempts, results, damaged):
            if isinstance(result, Exception):
                self._handle(js.DeploymentFailed(key, attempt, _rpc_details(result), was_damaged, instruction.region))
                return
        if instruction.region:
            logger.info("Job %s (%s): region of %d tasks redeployed (attempt %d)", self.graph.name, self.job_id,
                        len(keys), max(attempts))
        else:
            self._handle(js.AttemptDeployed(instruction.attempt))

    async def _cancel_subtask(self, key: SubtaskKey, info: TaskManagerInfo) -> None:
        try:
            await info.gateway(self.session_id).cancel_task(
                pb.CancelTaskRequest(job_id=self.job_id, vertex_id=key[0], subtask_index=key[1]), timeout=5)
        except Exception as error:  # a lost TaskManager: its tasks are gone anyway
            logger.debug("Cancel of %s on %s not delivered: %s", key, info.address, error)

    async def _cancel_job(self, instruction: js.CancelJob) -> None:
        await asyncio.gather(*(self._cancel_on(info) for info in instruction.task_managers))  # type: ignore[arg-type]
        if instruction.final is not None:
            self._handle(js.TasksCancelled(instruction.final))

    async def _cancel_on(self, info: TaskManagerInfo) -> None:
        try:
            await info.gateway(self.session_id).cancel_job(pb.JobId(job_id=self.job_id), timeout=5)
        except Exception as error:  # RpcError, or the closed channel of a lost TaskManager
            logger.debug("Cancel of job %s on %s not delivered: %s", self.job_id, info.address, error)

    def _state_damaged(self, error: BaseException | None, checkpoint_id: int | None) -> bool:
        """Whether a TaskManager could not restore its state of `checkpoint_id` because a state file is
        damaged (DATA_LOSS): then the next restore passes that checkpoint over for an older one."""
        if checkpoint_id is None or self.coordinator is None or not isinstance(error, grpc.RpcError) \
                or error.code() != grpc.StatusCode.DATA_LOSS:
            return False
        self.coordinator.mark_unrestorable(checkpoint_id, error.details())
        self._show_recovery_notes()
        return True

    def _show_recovery_notes(self) -> None:
        """What the checkpoint recovery decided (a repaired handle, an older checkpoint restored, one that
        cannot be): in the log and the exception history, so that nothing of it happens silently."""
        if self.coordinator is None:
            return
        for note in self.coordinator.take_notes():
            logger.warning("Job %s (%s): %s", self.graph.name, self.job_id, note.message)
            self._handle(js.RecoveryNoted(note.kind, note.message))

    # -- checkpoints ----------------------------------------------------------------------------------

    def _can_checkpoint(self) -> set[SubtaskKey]:
        return self.scheduler.checkpoint_participants()

    async def _trigger_checkpoint(self, checkpoint_id: int, timestamp: int, savepoint: bool = False,
                                  drain: bool = False, stop: bool = False) -> None:
        hosts = {info.address: info for info in (self.placement[key] for key in self.scheduler.live_sources())}
        request = pb.CheckpointRequest(job_id=self.job_id, checkpoint_id=checkpoint_id, timestamp=timestamp,
                                       savepoint=savepoint, drain=drain, stop=stop)
        delivered = await asyncio.gather(*(self._deliver(info, "TriggerCheckpoint", functools.partial(
            TaskExecutorGateway.trigger_checkpoint, request=request, timeout=5)) for info in hosts.values()))
        if not all(delivered) and self.coordinator is not None:
            # some source will never take it: waiting for its ack would block later checkpoints until the
            # timeout (a lost TaskManager's failover follows anyway; a refusal means it follows another leader)
            self.coordinator.abort(checkpoint_id, "its trigger did not reach every source subtask")

    async def _deliver(self, info: TaskManagerInfo, method: str,
                       call: Callable[[TaskExecutorGateway], Awaitable[object]]) -> bool:
        try:
            await call(info.gateway(self.session_id))
            return True
        except Exception as error:  # a lost TaskManager: the failover that follows handles it
            details = error.details() if isinstance(error, grpc.RpcError) else str(error)
            logger.info("%s of job %s on %s not delivered: %s", method, self.job_id, info.address, details)
            return False

    async def trigger_checkpoint(self, checkpoint_type: str = "CONFIGURED") -> int:
        """A checkpoint now, as Flink's REST trigger (`flink checkpoint [--full]`); its id once complete.
        CONFIGURED and INCREMENTAL take the job's configured kind (a backend without incremental
        checkpoints writes every checkpoint in full). FULL of an incremental job is refused: its tasks would
        reuse the files of the last confirmed checkpoint."""
        if self.coordinator is None:
            raise CheckpointTriggerError(f"job {self.job_id} has checkpointing off (enable_checkpointing), so it "
                                         "cannot take checkpoints")
        if self.status != JobStatus.RUNNING:
            raise CheckpointTriggerError(f"job {self.job_id} is {self.status}, not RUNNING: no checkpoint now")
        incremental = self.config.get(StateBackendOptions.STATE_BACKEND) == "rocksdb" and \
            self.config.get(StateBackendOptions.INCREMENTAL_CHECKPOINTS)
        if checkpoint_type == "FULL" and incremental:
            raise CheckpointTriggerError(f"job {self.job_id} takes incremental rocksdb checkpoints "
                                         "(state.backend.incremental): a FULL one on request is not supported")
        return await self.coordinator.trigger_checkpoint()

    async def trigger_savepoint(self, target_dir: str | None, then: str = "") -> str:
        """Take a savepoint; then keep running, or cancel, or stop (FINISHED) the job. `drain` stops as
        Flink's `stop --drain`: the sources end their input before the savepoint, so every window and
        event-time timer fires (the end of event time) and the savepoint is the job's final checkpoint;
        the tasks finish once it is complete."""
        target = target_dir or self.config.get(CheckpointingOptions.SAVEPOINT_DIRECTORY)
        if not target:
            raise SavepointError("no savepoint directory: give one, or set state.savepoints.dir")
        if not is_absolute_location(target):
            raise SavepointError(f"savepoint directory {target!r} is neither an absolute path nor a URL")
        if self.coordinator is None:
            raise SavepointError(f"job {self.job_id} has checkpointing off (enable_checkpointing), so it cannot "
                                 "take savepoints")
        # stop: the sources emit nothing after the savepoint's barrier (Flink's synchronous savepoint), so
        # no record reaches a sink that the savepoint's state does not account for
        trigger = functools.partial(self._trigger_checkpoint, drain=True) if then == "drain" else \
            functools.partial(self._trigger_checkpoint, stop=True) if then == "stop" else self._trigger_checkpoint
        path = await self.coordinator.trigger_savepoint(target, self._can_checkpoint(), trigger, stop=then == "stop")
        if then == "drain":  # drained: the tasks finish on the savepoint's notification, after their commit
            deadline = time.monotonic() + DRAINED_FINISH_SECONDS
            while self.status == JobStatus.RUNNING and time.monotonic() < deadline:
                await asyncio.sleep(0.02)
            if self.status == JobStatus.FINISHED:
                return path
        if then in ("cancel", "stop", "drain"):
            if self.status != JobStatus.RUNNING:  # a failover or cancel came meanwhile
                self.coordinator.resume_periodic()
                raise SavepointError(f"savepoint {path} was written, but job {self.job_id} is {self.status} now, "
                                     f"so it was not {'cancelled' if then == 'cancel' else 'stopped'}")
            self._handle(js.CancelRequested(JobStatus.CANCELED if then == "cancel" else JobStatus.FINISHED))
            if self._cancelling is not None:
                await asyncio.shield(self._cancelling)
        return path

    async def on_checkpoint_ack(self, ack: pb.CheckpointAck) -> None:
        key = (ack.vertex_id, ack.subtask_index)
        if self.coordinator is None or not self.scheduler.is_current(key, ack.attempt):
            return
        completed = await self.coordinator.acknowledge(key, ack.checkpoint_id, ack.state_url, list(ack.shared_urls),
                                                       ack.restore_from_all, ack.state_size, ack.checkpointed_size)
        if completed is not None:
            request = pb.CheckpointRequest(job_id=self.job_id, checkpoint_id=completed)
            hosts = {info.address: info for info in self.placement.values()}
            notify = functools.partial(TaskExecutorGateway.notify_checkpoint_complete, request=request, timeout=5)
            await asyncio.gather(*(self._deliver(info, "NotifyCheckpointComplete", notify) for info in hosts.values()))
            self.coordinator.notified(completed)

    def on_checkpoint_decline(self, decline: pb.CheckpointDecline) -> None:
        key = (decline.vertex_id, decline.subtask_index)
        if self.coordinator is None or not self.scheduler.is_current(key, decline.attempt):
            return
        self.coordinator.decline(decline.checkpoint_id, decline.reason, self._job_failed)
