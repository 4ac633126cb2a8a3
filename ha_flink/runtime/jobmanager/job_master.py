"""The JobMaster of one job: takes slots, deploys every subtask, follows their states, drives the job's
checkpoint coordinator, and answers failures: a failed task or a lost TaskManager restarts every task
(`full`) or only the affected pipelined regions (`region`, scheduler/failover.py), from the latest
completed checkpoint, after the backoff of the restart strategy (scheduler/restart_strategies.py); when
the strategy gives up the job FAILS. Slot sharing as in Flink: slot i runs subtask i of every vertex, so a
job needs as many slots as its highest parallelism; a region whose TaskManager was lost gets new slots."""

from __future__ import annotations

import asyncio
import collections
import functools
import logging
import time
from typing import Any, Callable

import cloudpickle
import grpc

from ha_flink.config import (
    CheckpointingOptions, Configuration, HighAvailabilityOptions, JobManagerOptions, StateBackendOptions,
)
from ha_flink.fs import Storage, join_url
from ha_flink.rpc import flink_pb2 as pb
from ha_flink.runtime.deployment import InputChannelDescriptor, OutputDescriptor, TaskDeploymentDescriptor
from ha_flink.runtime.graph.job_graph import JobGraph
from ha_flink.runtime.jobmanager.resource_manager import ResourceManager, TaskManagerInfo
from ha_flink.runtime.network.partition import partition_id
from ha_flink.runtime.checkpoint.coordinator import CheckpointCoordinator, SavepointError, restored_from_savepoint
from ha_flink.runtime.scheduler.failover import tasks_to_restart
from ha_flink.runtime.state.backend import StateBackendSettings
from ha_flink.runtime.scheduler.restart_strategies import restart_strategy_from_config

logger = logging.getLogger(__name__)

TERMINAL = ("FINISHED", "CANCELED", "FAILED")
EXCEPTION_HISTORY_SIZE = 16  # Flink's web.exception-history-size
STOPPING = ("SUSPENDED", "CANCELLING")  # no (re)deployment may start any more
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


def _task_failure_text(task: str, traceback: str) -> str:
    return f"{task} failed:\n{traceback}"


def job_metrics(job: JobMaster, now_ms: int) -> dict[str, float]:
    """Flink's job-scope metrics of one job (ms where a time): what Prometheus and the REST API show."""
    coordinator = job.coordinator
    stats = coordinator.stats if coordinator is not None else None
    last = stats.latest_completed if stats is not None else None
    outage = job.outage_since if job.status not in TERMINAL else None
    return {
        "numRestarts": job.num_restarts,
        "uptime": now_ms - job.running_since if job.running_since is not None and job.status == "RUNNING" else 0,
        "downtime": now_ms - outage if outage is not None else 0,
        "restartingTime": now_ms - outage if outage is not None else job.last_restart_ms,
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
    def __init__(self, graph: JobGraph, resource_manager: ResourceManager, session_id: Any, config: Configuration,
                 on_terminal: Callable[[JobMaster], None], ha: Any = None, fence: Any = None) -> None:
        self.graph = graph
        self.rm = resource_manager
        self.session_id = session_id
        self.on_terminal = on_terminal
        self.fence = fence
        config = config.copy()
        for key, value in graph.settings.items():  # the job's own settings win over the cluster's
            config.set(key, value, source=f"job {graph.job_id}")
        checkpointing = graph.checkpoint_interval_ms is not None or \
            config.get(CheckpointingOptions.CHECKPOINTING_INTERVAL) is not None
        self.config = config
        self.restarts = restart_strategy_from_config(config, checkpointing)
        self.checkpoints_dir = checkpoints_dir(config)
        self.coordinator: CheckpointCoordinator | None = None
        interval = graph.checkpoint_interval_ms or (
            config.get(CheckpointingOptions.CHECKPOINTING_INTERVAL).total_seconds() * 1000 if checkpointing else None)
        if interval and ha is not None:
            self.coordinator = CheckpointCoordinator(
                graph, ha, fence, Storage(config), self.checkpoints_dir, interval / 1000,
                config.get(CheckpointingOptions.MAX_RETAINED_CHECKPOINTS),
                timeout_s=config.get(CheckpointingOptions.CHECKPOINTING_TIMEOUT).total_seconds(),
                min_pause_s=config.get(CheckpointingOptions.MIN_PAUSE_BETWEEN_CHECKPOINTS).total_seconds(),
                max_concurrent=config.get(CheckpointingOptions.MAX_CONCURRENT_CHECKPOINTS),
                tolerable_failures=config.get(CheckpointingOptions.TOLERABLE_FAILED_CHECKPOINTS))
        self.restored_checkpoint_id: int | None = None
        self._restored: dict[tuple[str, int], Any] | None = None  # restore plans for the next deployment
        self.failover = config.get(JobManagerOptions.FAILOVER_STRATEGY)
        self.state_backend = StateBackendSettings(config.get(StateBackendOptions.STATE_BACKEND),
                                                  config.get(StateBackendOptions.INCREMENTAL_CHECKPOINTS))
        self._status = "CREATED"
        self.failure = ""
        self.task_failure: tuple[str, str] | None = None  # the latest failed subtask and its traceback
        self.start_time = getattr(graph, "submission_time", 0) or int(time.time() * 1000)  # (older graphs lack it)
        self.end_time = -1
        self.timestamps: dict[str, int] = {"CREATED": int(time.time() * 1000)}  # when it last switched to each state
        self.num_restarts = 0  # full and region restarts under this leader (Flink's numRestarts)
        self.running_since: int | None = None  # every task RUNNING since (ms)
        self.outage_since: int | None = None  # a failure's restart not finished since (ms)
        self.last_restart_ms = 0  # how long the last restart took, from the failure to every task RUNNING
        self.exceptions: collections.deque[dict[str, Any]] = collections.deque(maxlen=EXCEPTION_HISTORY_SIZE)
        self.attempt = 0
        self.states: dict[tuple[str, int], str] = {}
        self.placement: dict[tuple[str, int], TaskManagerInfo] = {}
        self.slot_of: dict[tuple[str, int], int] = {}
        self.attempts: dict[tuple[str, int], int] = {}  # per subtask: region failover restarts some only
        self.restarting: set[tuple[str, int]] = set()
        self._scheduling: asyncio.Task[None] | None = None
        self._restart_timer: asyncio.TimerHandle | None = None

    @property
    def job_id(self) -> str:
        return self.graph.job_id

    @property
    def status(self) -> str:
        return self._status

    @status.setter
    def status(self, value: str) -> None:
        if value != self._status:
            now = int(time.time() * 1000)
            self.timestamps[value] = now
            if value in TERMINAL:
                self.end_time = now
            if value != "RUNNING":
                self.running_since = None
        self._status = value

    def _record_exception(self, failure: str, failed: set[tuple[str, int]], name: str | None = None) -> None:
        """Flink's exception history entry: the root cause of one failover, with the task and its host."""
        key = min(failed) if failed else None
        vertex = self.graph.vertices[key[0]] if key else None
        info = self.placement.get(key) if key else None
        first_line = failure.strip().splitlines()[-1] if failure.strip() else failure
        if name is None:
            name = first_line.split(":", 1)[0] if ":" in first_line else "JobFailure"
        self.exceptions.appendleft({
            "exceptionName": name,
            "stacktrace": failure, "timestamp": int(time.time() * 1000),
            "taskName": f"{vertex.name} ({key[1] + 1}/{vertex.parallelism})" if vertex else None,
            "endpoint": info.address if info else None, "taskManagerId": info.resource_id if info else None,
            "failureLabels": {}, "concurrentExceptions": []})

    def _failover_started(self, whole_job: bool = True) -> None:
        """A restart begins. Only a restart of the whole job is an outage (downtime, restartingTime, uptime
        from 0 again); a region failover leaves the job RUNNING, as Flink counts it."""
        self.num_restarts += 1
        if whole_job:
            if self.outage_since is None:
                self.outage_since = int(time.time() * 1000)
            self.running_since = None

    def required_slots(self) -> int:
        return max(vertex.parallelism for vertex in self.graph.vertices.values())

    def start(self) -> None:
        self._restart_timer = None
        if self.status in TERMINAL or self.status in STOPPING:
            return
        self._scheduling = asyncio.ensure_future(self._schedule())

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
            if self.status in TERMINAL or self.status in STOPPING:
                return False
        return True

    async def _schedule(self) -> None:
        attempt = self.attempt
        self.status = "CREATED" if self.attempt == 0 else "RESTARTING"
        if attempt > 0:
            logger.info("Job %s (%s) attempt %d: scheduling", self.graph.name, self.job_id, attempt)
            if not await self._await_zookeeper(f"attempt {attempt}"):
                return
        restored = None
        self.restored_checkpoint_id = None
        if self.coordinator is not None:
            try:  # (on every attempt until the store was read once: a storage blip must not mean empty state)
                if not self.coordinator.initialized:
                    await self.coordinator.initialize()
                latest = await self.coordinator.restored_state()
            except Exception as error:
                self._show_recovery_notes()
                self._restore_failed(f"cannot restore the latest checkpoint of job {self.job_id}: {error}")
                return
            self._show_recovery_notes()
            if latest is not None:
                self.restored_checkpoint_id, restored = latest
                logger.info("Job %s (%s) restores checkpoint %d", self.graph.name, self.job_id, latest[0])
        if restored is None and self.graph.savepoint_path:
            try:
                savepoint_id, restored = await restored_from_savepoint(
                    self.graph, Storage(self.config), self.graph.savepoint_path, self.graph.allow_non_restored_state,
                    asyncio.get_running_loop())
            except Exception as error:
                self._restore_failed(f"cannot restore the savepoint of job {self.job_id}: {error}")
                return
            logger.info("Job %s (%s) restores savepoint %s", self.graph.name, self.job_id, self.graph.savepoint_path)
            if self.coordinator is not None:
                self.coordinator.stats.restored(savepoint_id, int(time.time() * 1000), True,
                                                self.graph.savepoint_path)
        self._restored = restored
        while (slots := self.rm.allocate(self.job_id, self.required_slots())) is None:
            await self.rm.changed.wait()
        if self.status in TERMINAL or self.status in STOPPING:  # cancelled or suspended while waiting
            self.rm.release(self.job_id)
            return
        self.placement = {(v.id, i): slots[i][0] for v in self.graph.vertices.values() for i in range(v.parallelism)}
        self.slot_of = {key: slots[key[1]][1] for key in self.placement}
        self.attempts = {key: self.attempt for key in self.placement}
        self.restarting = set()
        self.states = {key: "DEPLOYING" for key in self.placement}
        self.status = "RUNNING"
        descriptors = [self._descriptor(v, i) for v in self.graph.vertices.values() for i in range(v.parallelism)]
        restored_id = self.restored_checkpoint_id
        results = await asyncio.gather(*(self._deploy(d) for d in descriptors), return_exceptions=True)
        for result in results:  # (the next attempt must know, whatever failure came first)
            self._state_damaged(result, restored_id)
        if self.attempt != attempt or self.status != "RUNNING":
            return  # a failure or cancel during deployment was handled already
        for descriptor, result in zip(descriptors, results):
            if isinstance(result, Exception):
                self._task_failed(f"deploying {descriptor.vertex.name} ({descriptor.subtask_index + 1}/"
                                  f"{descriptor.vertex.parallelism}) failed: {_rpc_details(result)}")
                return
        logger.info("Job %s (%s) attempt %d: all %d tasks deployed", self.graph.name, self.job_id, self.attempt,
                    len(descriptors))
        if self.coordinator is not None and self.coordinator._loop_task is None:
            self.coordinator.start(self._can_checkpoint, self._trigger_checkpoint, self._task_failed)

    def _descriptor(self, vertex: Any, index: int) -> TaskDeploymentDescriptor:
        graph = self.graph
        attempt = self.attempts[(vertex.id, index)]
        outputs = []
        for edge_index, edge in enumerate(vertex.outputs):
            target = graph.vertices[edge.target]
            consumers = [index] if edge.partitioner.is_pointwise else range(target.parallelism)
            outputs.append(OutputDescriptor(partition_id(self.job_id, vertex.id, index, attempt, edge_index),
                                            len(consumers),
                                            tuple(self.placement[(target.id, c)].address for c in consumers)))
        inputs = []
        for edge in vertex.inputs:
            producer = graph.vertices[edge.source]
            edge_index = producer.outputs.index(edge)
            producers = [index] if edge.partitioner.is_pointwise else range(producer.parallelism)
            for p in producers:
                inputs.append(InputChannelDescriptor(
                    partition_id(self.job_id, producer.id, p, self.attempts[(producer.id, p)], edge_index),
                    0 if edge.partitioner.is_pointwise else index,
                    self.placement[(producer.id, p)].address))
        restored = (self._restored or {}).get((vertex.id, index))
        return TaskDeploymentDescriptor(self.job_id, graph.name, vertex, index, attempt, self.slot_of[(vertex.id, index)],
                                        inputs, outputs, graph.runtime_mode, graph.config, restored,
                                        self.checkpoints_dir if self.coordinator is not None else None,
                                        self.config.get(CheckpointingOptions.CHECKPOINTING_MODE) == "EXACTLY_ONCE",
                                        self.state_backend)

    async def _deploy(self, descriptor: TaskDeploymentDescriptor) -> None:
        info = self.placement[(descriptor.vertex.id, descriptor.subtask_index)]
        request = pb.DeployTaskRequest(job_id=self.job_id, deployment=cloudpickle.dumps(descriptor))
        await info.call("DeployTask", request, self.session_id, timeout=10)

    # -- events ---------------------------------------------------------------------------------------

    def on_task_state(self, state: pb.TaskExecutionState) -> None:
        key = (state.vertex_id, state.subtask_index)
        if state.job_id != self.job_id or self.status != "RUNNING" or key in self.restarting \
                or state.attempt != self.attempts.get(key):
            return  # another job, or a report of an attempt that is no longer current
        if key not in self.states or self.states[key] == state.state or self.states[key] in TERMINAL:
            return  # unknown, repeated, or a stale report after the task ended
        self.states[key] = state.state
        if state.state == "FAILED":
            vertex = self.graph.vertices[state.vertex_id]
            self.task_failure = (f"{vertex.name} ({state.subtask_index + 1}/{vertex.parallelism})", state.failure)
            self._task_failed(_task_failure_text(*self.task_failure), key)
        elif all(s == "FINISHED" for s in self.states.values()):
            self._terminate("FINISHED")
        elif state.state == "FINISHED" and self.coordinator is not None:
            vertex = self.graph.vertices[state.vertex_id]
            self.coordinator.task_finished(key, f"{vertex.name} ({state.subtask_index + 1}/{vertex.parallelism})")
        elif state.state == "FINISHING" and self.coordinator is not None and all(
                s in ("FINISHING", "FINISHED") for key, s in self.states.items()
                if self.graph.vertices[key[0]].is_source):
            self.coordinator.trigger_soon()  # every source ended: the final checkpoint need not wait
        elif state.state == "RUNNING" and all(s in ("RUNNING", "FINISHED") for s in self.states.values()):
            now = int(time.time() * 1000)
            if self.outage_since is not None:
                self.last_restart_ms, self.outage_since = now - self.outage_since, None
            if self.running_since is None:  # (a region back after its failover: the job ran on meanwhile)
                self.running_since = now
            logger.info("Job %s (%s) attempt %d: all %d tasks RUNNING", self.graph.name, self.job_id, self.attempt,
                        len(self.states))

    def failed_task(self) -> tuple[str, str] | None:
        """The subtask (its name, the user's traceback) whose failure the job FAILED with, if it was one."""
        cause = self.task_failure
        return cause if cause is not None and self.failure == _task_failure_text(*cause) else None

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
            self._record_exception(note.message, set(), name=note.kind)

    def _restore_failed(self, failure: str) -> None:
        """Never start with wrong state: a checkpoint that cannot be read is a failure (retried under the
        restart strategy, as storage may come back), and the job FAILS with it named when that gives up."""
        logger.error("%s", failure)
        self._record_exception(failure, set())
        self.restarts.notify_failure(int(time.time() * 1000))
        if self.restarts.can_restart():
            self._failover_started()
            self.status = "RESTARTING"
            self.attempt += 1
            self._restart_timer = asyncio.get_running_loop().call_later(self.restarts.backoff_ms() / 1000,
                                                                        self.start)
            return
        self.failure = failure
        self._terminate("FAILED")

    # -- checkpoints ----------------------------------------------------------------------------------

    def _can_checkpoint(self) -> set[tuple[str, int]]:
        """The subtasks a checkpoint now would wait for (empty: not now). Finished subtasks take no part,
        so the final checkpoint of a partly finished job can still complete (as Flink's FLIP-147)."""
        if self.status != "RUNNING" or self.restarting or \
                any(s not in ("RUNNING", "FINISHING", "FINISHED") for s in self.states.values()):
            return set()
        return {key for key, s in self.states.items() if s in ("RUNNING", "FINISHING")}

    async def _trigger_checkpoint(self, checkpoint_id: int, timestamp: int, savepoint: bool = False,
                                  drain: bool = False) -> None:
        hosts = {info.address: info for key, info in self.placement.items()
                 if self.graph.vertices[key[0]].is_source and self.states.get(key) in ("RUNNING", "FINISHING")}
        request = pb.CheckpointRequest(job_id=self.job_id, checkpoint_id=checkpoint_id, timestamp=timestamp,
                                       savepoint=savepoint, drain=drain)
        delivered = await asyncio.gather(*(self._call(info, "TriggerCheckpoint", request) for info in hosts.values()))
        if not all(delivered) and self.coordinator is not None:
            # some source will never take it: waiting for its ack would block later checkpoints until the
            # timeout (a lost TaskManager's failover follows anyway; a refusal means it follows another leader)
            self.coordinator.abort(checkpoint_id, "its trigger did not reach every source subtask")

    async def _call(self, info: TaskManagerInfo, method: str, request: Any) -> bool:
        try:
            await info.call(method, request, self.session_id, timeout=5)
            return True
        except Exception as error:  # a lost TaskManager: the failover that follows handles it
            details = error.details() if isinstance(error, grpc.RpcError) else str(error)
            logger.info("%s of job %s on %s not delivered: %s", method, self.job_id, info.address, details)
            return False

    async def trigger_savepoint(self, target_dir: str | None, then: str = "") -> str:
        """Take a savepoint; then keep running, or cancel, or stop (FINISHED) the job. `drain` stops as
        Flink's `stop --drain`: the sources end their input before the savepoint, so every window and
        event-time timer fires (the end of event time) and the savepoint is the job's final checkpoint;
        the tasks finish once it is complete."""
        target = target_dir or self.config.get(CheckpointingOptions.SAVEPOINT_DIRECTORY)
        if not target:
            raise SavepointError("no savepoint directory: give one, or set state.savepoints.dir")
        if self.coordinator is None:
            raise SavepointError(f"job {self.job_id} has checkpointing off (enable_checkpointing), so it cannot "
                                 "take savepoints")
        trigger = functools.partial(self._trigger_checkpoint, drain=True) if then == "drain" else \
            self._trigger_checkpoint
        path = await self.coordinator.trigger_savepoint(target, self._can_checkpoint(), trigger)
        if then == "drain":  # drained: the tasks finish on the savepoint's notification, after their commit
            deadline = time.monotonic() + DRAINED_FINISH_SECONDS
            while self.status == "RUNNING" and time.monotonic() < deadline:
                await asyncio.sleep(0.02)
            if self.status == "FINISHED":
                return path
        if then in ("cancel", "stop", "drain") and self.status != "RUNNING":  # a failover or cancel came meanwhile
            raise SavepointError(f"savepoint {path} was written, but job {self.job_id} is {self.status} now, so "
                                 f"it was not {'cancelled' if then == 'cancel' else 'stopped'}")
        if then in ("cancel", "stop", "drain"):
            self.status = "CANCELLING"
            await self._cancel_and_terminate("CANCELED" if then == "cancel" else "FINISHED")
        return path

    async def on_checkpoint_ack(self, ack: pb.CheckpointAck) -> None:
        key = (ack.vertex_id, ack.subtask_index)
        if self.coordinator is None or self.attempts.get(key) != ack.attempt or key in self.restarting:
            return
        completed = await self.coordinator.acknowledge(key, ack.checkpoint_id, ack.state_url, list(ack.shared_urls),
                                                       ack.restore_from_all, ack.state_size, ack.checkpointed_size)
        if completed is not None:
            request = pb.CheckpointRequest(job_id=self.job_id, checkpoint_id=completed)
            hosts = {info.address: info for info in self.placement.values()}
            await asyncio.gather(*(self._call(info, "NotifyCheckpointComplete", request) for info in hosts.values()))
            self.coordinator.notified(completed)

    def on_checkpoint_decline(self, decline: pb.CheckpointDecline) -> None:
        key = (decline.vertex_id, decline.subtask_index)
        if self.coordinator is None or self.attempts.get(key) != decline.attempt or key in self.restarting:
            return
        self.coordinator.decline(decline.checkpoint_id, decline.reason, self._task_failed)

    def _restart_region(self, region: set[tuple[str, int]], failure: str) -> None:
        """Region failover: only `region` stops and comes back, on the same slots (new ones where its
        TaskManager was lost); the rest runs on."""
        self.restarts.notify_failure(int(time.time() * 1000))
        if self.restarts.can_restart():
            self._failover_started(whole_job=False)
        else:
            logger.info("Job %s: the %s restart strategy gives up", self.job_id, self.restarts.name)
            self._cancel_tasks()
            self.failure = failure
            self._terminate("FAILED")
            return
        self.restarting |= region
        if self.coordinator is not None:
            self.coordinator.abort_pending()
        for key in region:
            asyncio.ensure_future(self._cancel_subtask(key))
        delay = self.restarts.backoff_ms() / 1000
        logger.info("Job %s: restarting a region of %d of %d tasks in %.3f s under the %s restart strategy",
                    self.job_id, len(region), len(self.placement), delay, self.restarts.name)
        self._restart_timer = asyncio.get_running_loop().call_later(
            delay, lambda: asyncio.ensure_future(self._redeploy(region)))

    async def _redeploy(self, region: set[tuple[str, int]]) -> None:
        self._restart_timer = None
        if self.status != "RUNNING":
            return
        if not await self._await_zookeeper(f"the restart of a region of {len(region)} tasks") \
                or self.status != "RUNNING":  # (a full failover may have come meanwhile)
            return
        latest = None
        if self.coordinator is not None:
            try:  # (an older checkpoint, if it comes to that, is for the whole job: every region the same)
                latest = await self.coordinator.restored_state(fall_back=False)
            except Exception as error:
                self._show_recovery_notes()
                self.restarting -= region
                self._task_failed(f"the restore of a region of {len(region)} tasks of job {self.job_id} failed: "
                                  f"{error}")
                return
            self._restored = latest[1] if latest is not None else None
            if latest is not None:
                logger.info("Job %s (%s) restores checkpoint %d for a region of %d tasks", self.graph.name,
                            self.job_id, latest[0], len(region))
        if not await self._replace_lost_slots(region):
            return
        for key in region:
            self.attempts[key] += 1
            self.states[key] = "DEPLOYING"
        descriptors = [self._descriptor(self.graph.vertices[v], i) for v, i in sorted(region)]
        self.restarting -= region
        results = await asyncio.gather(*(self._deploy(d) for d in descriptors), return_exceptions=True)
        failed = [d for d, r in zip(descriptors, results) if isinstance(r, Exception)]
        if failed and self.status == "RUNNING":
            error = results[descriptors.index(failed[0])]
            damaged = self._state_damaged(error, latest[0] if latest is not None else None)
            # a damaged checkpoint: the whole job goes back to an older one, never this region alone
            self._task_failed(f"redeploying {failed[0].vertex.name} failed: {_rpc_details(error)}",
                              None if damaged else (failed[0].vertex.id, failed[0].subtask_index))
            return
        logger.info("Job %s (%s): region of %d tasks redeployed (attempt %d)", self.graph.name, self.job_id,
                    len(region), max(self.attempts[key] for key in region))

    async def _replace_lost_slots(self, region: set[tuple[str, int]]) -> bool:
        """Give the subtasks of `region` whose TaskManager is gone a new slot each (one per lost slot, as
        they shared it); waits for free slots. False: the job stopped running meanwhile."""
        lost: dict[tuple[str, int], list[tuple[str, int]]] = {}
        for key in sorted(region):
            info = self.placement[key]
            if self.rm.task_managers.get(info.resource_id) is not info:
                lost.setdefault((info.resource_id, self.slot_of[key]), []).append(key)
        if not lost:
            return True
        while (slots := self.rm.allocate(self.job_id, len(lost))) is None:
            logger.info("Job %s: waiting for %d free slots to replace those of a lost TaskManager", self.job_id,
                        len(lost))
            await self.rm.changed.wait()
            if self.status != "RUNNING":
                return False
        for keys, (info, slot) in zip(lost.values(), slots):
            for key in keys:
                self.placement[key], self.slot_of[key] = info, slot
        return self.status == "RUNNING"

    async def _cancel_subtask(self, key: tuple[str, int]) -> None:
        info = self.placement[key]
        try:
            await info.call("CancelTask", pb.CancelTaskRequest(job_id=self.job_id, vertex_id=key[0],
                                                               subtask_index=key[1]), self.session_id, timeout=5)
        except Exception as error:  # a lost TaskManager: its tasks are gone anyway
            logger.debug("Cancel of %s on %s not delivered: %s", key, info.address, error)

    def on_task_manager_lost(self, resource_id: str, reason: str) -> None:
        lost = {key for key, info in self.placement.items() if info.resource_id == resource_id}
        if self.status == "RUNNING" and lost:
            self._task_failed(f"TaskManager {resource_id} was lost: {reason}", lost)

    def _task_failed(self, failure: str, failed: tuple[str, int] | set[tuple[str, int]] | None = None) -> None:
        """`failed`: the subtask that failed, or those of a lost TaskManager (None: the whole job)."""
        failed_set = {failed} if isinstance(failed, tuple) else set(failed or ())
        if self.status != "RUNNING" or (failed_set and failed_set <= self.restarting):
            return  # one failover per attempt (or per region), however many tasks report it
        logger.info("Job %s: %s", self.job_id, failure.splitlines()[0])
        self._record_exception(failure, failed_set)
        if failed_set and self.failover == "region":
            region = set().union(*(tasks_to_restart("region", self.graph, key) for key in failed_set))
            region -= self.restarting
            if len(region | self.restarting) < len(self.placement):
                self._restart_region(region, failure)
                return
        self._cancel_tasks()
        self.rm.release(self.job_id)
        if self.coordinator is not None:
            self.coordinator.abort_pending()
        self.restarts.notify_failure(int(time.time() * 1000))
        if self.restarts.can_restart():
            self._failover_started()
            self.attempt += 1
            self.status = "RESTARTING"
            delay = self.restarts.backoff_ms() / 1000
            logger.info("Job %s restarts (attempt %d) in %.3f s under the %s restart strategy", self.job_id,
                        self.attempt, delay, self.restarts.name)
            self._restart_timer = asyncio.get_running_loop().call_later(delay, self.start)
        else:
            logger.info("Job %s: the %s restart strategy gives up", self.job_id, self.restarts.name)
            self.failure = failure
            self._terminate("FAILED")

    def _stop_pending(self) -> None:
        if self.coordinator is not None and (self.status in TERMINAL or self.status == "SUSPENDED"):
            self.coordinator.stop()
        if self._restart_timer is not None:
            self._restart_timer.cancel()
            self._restart_timer = None
        if self._scheduling is not None:
            self._scheduling.cancel()

    def cancel(self) -> None:
        if self.status not in TERMINAL and self.status != "CANCELLING":
            self.status = "CANCELLING"  # (no checkpoint is triggered, no restart deploys any more)
            asyncio.ensure_future(self._cancel_and_terminate("CANCELED"))

    async def _cancel_and_terminate(self, status: str) -> None:
        """Terminal once every TaskManager has taken the cancel (and finished any snapshot write of the
        job's tasks): the cleanup that follows must not race a late checkpoint file into the job's folder."""
        await asyncio.gather(*(self._cancel_on(info) for info in self._task_managers()))
        if self.status == "CANCELLING":  # (not suspended meanwhile by a lost leadership)
            self._terminate(status)

    def suspend(self) -> None:
        """Leadership lost: stop without touching HA data (the TaskManagers cancel the tasks themselves)."""
        self.status = "SUSPENDED"
        self._stop_pending()
        self.rm.release(self.job_id)

    def _task_managers(self) -> list[TaskManagerInfo]:
        """Each TaskManager the job's subtasks are placed on, once."""
        return list({id(info): info for info in self.placement.values()}.values())

    def _cancel_tasks(self) -> None:
        for info in self._task_managers():
            asyncio.ensure_future(self._cancel_on(info))

    async def _cancel_on(self, info: TaskManagerInfo) -> None:
        try:
            await info.call("CancelJob", pb.JobId(job_id=self.job_id), self.session_id, timeout=5)
        except Exception as error:  # RpcError, or the closed channel of a lost TaskManager
            logger.debug("Cancel of job %s on %s not delivered: %s", self.job_id, info.address, error)

    def _terminate(self, status: str) -> None:
        self.status = status
        self._stop_pending()
        self.rm.release(self.job_id)
        logger.info("Job %s (%s) switched to %s", self.graph.name, self.job_id, status)
        self.on_terminal(self)
