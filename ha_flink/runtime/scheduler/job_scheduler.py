"""The job's state machine, without I/O: what the JobMaster decides when anything happens to its job.

`JobScheduler.handle(event, now_ms)` takes one event (a dataclass: a task's state report, a lost
TaskManager, a restart timer that fired, the result of a step the JobMaster carried out, a cancel) and
returns the instructions (dataclasses) the JobMaster is to carry out: prepare an attempt (restore state,
take slots), deploy subtasks, cancel them, start a timer, release slots, abort pending checkpoints, end
the job. It owns the job status, the state and attempt number of every subtask, where each runs, which are
restarting, the restart counters and the exception history; nothing else changes them. It never awaits,
sleeps, reads a clock or calls a peer, so its unit tests (`tests/scheduler/test_job_scheduler.py`) feed
event sequences and read the instructions, in milliseconds. The model is dask's `worker_state_machine.py`.

A result arriving for an attempt (or a region) that is no longer current is ignored: every event that
answers an instruction carries the attempt the instruction was for."""

from __future__ import annotations

import collections
import logging
from dataclasses import dataclass, field
from typing import Protocol, Union

from ha_flink.common.job_status import GLOBALLY_TERMINAL, JobStatus
from ha_flink.runtime.execution_state import ExecutionState
from ha_flink.runtime.graph.job_graph import JobGraph
from ha_flink.runtime.scheduler.failover import tasks_to_restart
from ha_flink.runtime.scheduler.restart_strategies import RestartStrategy

logger = logging.getLogger(__name__)

SubtaskKey = tuple[str, int]  # (vertex id, subtask index)
EXCEPTION_HISTORY_SIZE = 16  # Flink's web.exception-history-size
STOPPING = frozenset({JobStatus.SUSPENDED, JobStatus.CANCELLING})  # no (re)deployment may start any more


class SlotOwner(Protocol):
    """Where a subtask runs, as far as decisions go: which TaskManager (the JobMaster's TaskManagerInfo)."""

    resource_id: str
    address: str


Slot = tuple[SlotOwner, int]  # a TaskManager and the index of one of its slots


# -- events ------------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class ScheduleDue:
    """Start attempt `attempt`: the job was submitted or recovered (0), or a restart's backoff is over."""
    attempt: int


@dataclass(frozen=True, slots=True)
class AttemptPrepared:
    """The JobMaster restored the attempt's state (`checkpoint_id`: the checkpoint restored, if one was)
    and took one slot per parallel subtask index."""
    attempt: int
    checkpoint_id: int | None
    slots: tuple[Slot, ...]


@dataclass(frozen=True, slots=True)
class AttemptPreparationFailed:
    """The attempt's state could not be restored (storage down, a damaged checkpoint, a bad savepoint)."""
    attempt: int
    failure: str


@dataclass(frozen=True, slots=True)
class AttemptDeployed:
    """Every subtask of the attempt was deployed."""
    attempt: int


@dataclass(frozen=True, slots=True)
class DeploymentFailed:
    """A subtask's deployment failed. `damaged`: because a state file of the restored checkpoint is
    damaged (the JobMaster marked the checkpoint unrestorable, so the next restore takes an older one)."""
    subtask: SubtaskKey
    attempt: int
    failure: str
    damaged: bool = False
    region: bool = False  # it was a region's redeployment


@dataclass(frozen=True, slots=True)
class TaskStateChanged:
    subtask: SubtaskKey
    attempt: int
    state: ExecutionState
    failure: str = ""


@dataclass(frozen=True, slots=True)
class TaskManagerLost:
    resource_id: str
    reason: str


@dataclass(frozen=True, slots=True)
class JobFailed:
    """A failure that is not one task's report: too many failed checkpoints, a declined one, ..."""
    failure: str


@dataclass(frozen=True, slots=True)
class RegionRestartDue:
    """A region's restart backoff is over."""
    region: frozenset[SubtaskKey]


@dataclass(frozen=True, slots=True)
class RegionPrepared:
    """The region's state was restored (`checkpoint_id`) and its subtasks whose TaskManager was lost got
    new slots (`replaced`)."""
    region: frozenset[SubtaskKey]
    checkpoint_id: int | None
    replaced: tuple[tuple[SubtaskKey, Slot], ...] = ()


@dataclass(frozen=True, slots=True)
class RegionPreparationFailed:
    region: frozenset[SubtaskKey]
    failure: str


@dataclass(frozen=True, slots=True)
class CancelRequested:
    """Cancel the job (`CANCELED`), or stop it after a savepoint (`FINISHED`)."""
    final: JobStatus = JobStatus.CANCELED


@dataclass(frozen=True, slots=True)
class TasksCancelled:
    """Every TaskManager of the job took its cancel (and finished the job's snapshot writes)."""
    final: JobStatus


@dataclass(frozen=True, slots=True)
class LeadershipLost:
    pass


@dataclass(frozen=True, slots=True)
class RecoveryNoted:
    """What the checkpoint recovery decided (a repaired handle, an older checkpoint restored, ...): it goes
    into the exception history under `kind`, so nothing of it happens silently."""
    kind: str
    message: str


Event = Union[ScheduleDue, AttemptPrepared, AttemptPreparationFailed, AttemptDeployed, DeploymentFailed,
              TaskStateChanged, TaskManagerLost, JobFailed, RegionRestartDue, RegionPrepared,
              RegionPreparationFailed, CancelRequested, TasksCancelled, LeadershipLost, RecoveryNoted]


# -- instructions ------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class PrepareAttempt:
    """Restore the attempt's state and take `slots` slots; answer AttemptPrepared or AttemptPreparationFailed.
    `wait_for_zookeeper`: hold it while this leader cannot reach ZooKeeper (a restart, not the first try)."""
    attempt: int
    slots: int
    wait_for_zookeeper: bool


@dataclass(frozen=True, slots=True)
class Deploy:
    """Deploy these subtasks (at their current attempts, to their slots); answer DeploymentFailed for the
    first that fails, and AttemptDeployed when all of an attempt's (not a region's) are deployed."""
    subtasks: tuple[SubtaskKey, ...]
    attempt: int
    checkpoint_id: int | None  # whose state they restore
    region: bool


@dataclass(frozen=True, slots=True)
class PrepareRegion:
    """Restore the region's state (the latest checkpoint, no fallback) and give its subtasks whose
    TaskManager is gone new slots; answer RegionPrepared or RegionPreparationFailed."""
    region: frozenset[SubtaskKey]


@dataclass(frozen=True, slots=True)
class StartTimer:
    delay_s: float
    event: ScheduleDue | RegionRestartDue


@dataclass(frozen=True, slots=True)
class CancelJob:
    """Cancel the job's tasks on these TaskManagers. With `final`, answer TasksCancelled once all took it."""
    task_managers: tuple[SlotOwner, ...]
    final: JobStatus | None = None


@dataclass(frozen=True, slots=True)
class CancelSubtasks:
    subtasks: tuple[tuple[SubtaskKey, SlotOwner], ...]


@dataclass(frozen=True, slots=True)
class ReleaseSlots:
    pass


@dataclass(frozen=True, slots=True)
class StartCheckpointing:
    pass


@dataclass(frozen=True, slots=True)
class AbortPendingCheckpoints:
    pass


@dataclass(frozen=True, slots=True)
class TriggerCheckpointSoon:
    """Every source ended: the final checkpoint need not wait for the interval."""


@dataclass(frozen=True, slots=True)
class TaskFinished:
    """Tell the checkpoint coordinator a subtask finished (it takes no part in later checkpoints)."""
    subtask: SubtaskKey
    name: str


@dataclass(frozen=True, slots=True)
class StopScheduling:
    """Cancel restart timers and any preparation or deployment in flight; stop the checkpoint coordinator."""


@dataclass(frozen=True, slots=True)
class JobTerminated:
    status: JobStatus


Instruction = Union[PrepareAttempt, Deploy, PrepareRegion, StartTimer, CancelJob, CancelSubtasks, ReleaseSlots,
                    StartCheckpointing, AbortPendingCheckpoints, TriggerCheckpointSoon, TaskFinished,
                    StopScheduling, JobTerminated]


@dataclass(slots=True)
class ExceptionEntry:
    """One entry of Flink's exception history: the root cause of one failover, with the task and its host."""
    exception_name: str
    stacktrace: str
    timestamp: int
    task_name: str | None
    endpoint: str | None
    task_manager_id: str | None


def task_failure_text(task: str, traceback: str) -> str:
    return f"{task} failed:\n{traceback}"


def failure_summary(failure: str) -> str:
    """One line for the log: "<task> failed: <the traceback's last line>", not the bare "<task> failed:"."""
    lines = [line.strip() for line in failure.strip().splitlines() if line.strip()]
    if not lines:
        return "(no reason given)"
    return lines[0] if len(lines) == 1 or not lines[0].endswith(":") else f"{lines[0]} {lines[-1]}"


@dataclass
class JobScheduler:
    """The state machine of one job under one leader (see the module docstring)."""

    graph: JobGraph
    restarts: RestartStrategy
    failover: str = "full"  # jobmanager.execution.failover-strategy: full | region
    checkpointing: bool = False
    created_ms: int = 0
    status: JobStatus = JobStatus.CREATED
    failure: str = ""  # why the job FAILED
    task_failure: tuple[str, str] | None = None  # the latest failed subtask's name and its traceback
    attempt: int = 0  # of the whole job; a region failover raises only its subtasks' attempts
    restored_checkpoint_id: int | None = None
    states: dict[SubtaskKey, ExecutionState] = field(default_factory=dict)
    attempts: dict[SubtaskKey, int] = field(default_factory=dict)
    placement: dict[SubtaskKey, SlotOwner] = field(default_factory=dict)
    slot_of: dict[SubtaskKey, int] = field(default_factory=dict)
    restarting: set[SubtaskKey] = field(default_factory=set)
    timestamps: dict[JobStatus, int] = field(default_factory=dict)  # when it last switched to each status
    end_time: int = -1
    num_restarts: int = 0  # full and region restarts under this leader (Flink's numRestarts)
    running_since: int | None = None  # every task RUNNING since (ms)
    outage_since: int | None = None  # a whole-job restart not finished since (ms)
    last_restart_ms: int = 0  # how long the last restart took, from the failure to every task RUNNING
    exceptions: collections.deque[ExceptionEntry] = field(
        default_factory=lambda: collections.deque(maxlen=EXCEPTION_HISTORY_SIZE))

    def __post_init__(self) -> None:
        self.timestamps.setdefault(JobStatus.CREATED, self.created_ms)

    # -- queries (for the driver and the views) -----------------------------------------------------

    @property
    def job_id(self) -> str:
        return self.graph.job_id

    def required_slots(self) -> int:
        return max(vertex.parallelism for vertex in self.graph.vertices.values())

    def name_of(self, subtask: SubtaskKey) -> str:
        vertex = self.graph.vertices[subtask[0]]
        return f"{vertex.name} ({subtask[1] + 1}/{vertex.parallelism})"

    def is_current(self, subtask: SubtaskKey, attempt: int) -> bool:
        """Whether a report of `attempt` of `subtask` (an ack, a decline) is about a running execution."""
        return self.status == JobStatus.RUNNING and self.attempts.get(subtask) == attempt \
            and subtask not in self.restarting

    def checkpoint_participants(self) -> set[SubtaskKey]:
        """The subtasks a checkpoint now would wait for (empty: not now). Finished subtasks take no part,
        so the final checkpoint of a partly finished job can still complete (as Flink's FLIP-147)."""
        live = (ExecutionState.RUNNING, ExecutionState.FINISHING)
        if self.status != JobStatus.RUNNING or self.restarting or \
                any(s not in live and s != ExecutionState.FINISHED for s in self.states.values()):
            return set()
        return {key for key, s in self.states.items() if s in live}

    def live_sources(self) -> list[SubtaskKey]:
        """The source subtasks that take a checkpoint's trigger now."""
        return [key for key, state in self.states.items() if self.graph.vertices[key[0]].is_source
                and state in (ExecutionState.RUNNING, ExecutionState.FINISHING)]

    def task_managers(self) -> tuple[SlotOwner, ...]:
        """Each TaskManager the job's subtasks are placed on, once."""
        return tuple({id(owner): owner for owner in self.placement.values()}.values())

    def failed_task(self) -> tuple[str, str] | None:
        """The subtask (its name, the user's traceback) whose failure the job FAILED with, if it was one."""
        cause = self.task_failure
        return cause if cause is not None and self.failure == task_failure_text(*cause) else None

    # -- the state machine --------------------------------------------------------------------------

    def handle(self, event: Event, now_ms: int) -> list[Instruction]:
        handler = _HANDLERS[type(event)]
        return handler(self, event, now_ms)  # type: ignore[operator]

    def _set_status(self, status: JobStatus, now_ms: int) -> None:
        if status != self.status:
            self.timestamps[status] = now_ms
            if status in GLOBALLY_TERMINAL:
                self.end_time = now_ms
            if status != JobStatus.RUNNING:
                self.running_since = None
        self.status = status

    def _stopped(self) -> bool:
        return self.status in GLOBALLY_TERMINAL or self.status in STOPPING

    def _record_exception(self, failure: str, failed: set[SubtaskKey], now_ms: int, name: str | None = None) -> None:
        key = min(failed) if failed else None
        owner = self.placement.get(key) if key else None
        first_line = failure.strip().splitlines()[-1] if failure.strip() else failure
        if name is None:
            name = first_line.split(":", 1)[0] if ":" in first_line else "JobFailure"
        self.exceptions.appendleft(ExceptionEntry(
            name, failure, now_ms, self.name_of(key) if key else None,
            owner.address if owner else None, owner.resource_id if owner else None))

    def _terminate(self, status: JobStatus, now_ms: int) -> list[Instruction]:
        self._set_status(status, now_ms)
        logger.info("Job %s (%s) switched to %s", self.graph.name, self.job_id, status)
        return [StopScheduling(), ReleaseSlots(), JobTerminated(status)]

    def _schedule_due(self, event: ScheduleDue, now_ms: int) -> list[Instruction]:
        if event.attempt != self.attempt or self._stopped():
            return []
        self._set_status(JobStatus.CREATED if self.attempt == 0 else JobStatus.RESTARTING, now_ms)
        self.restored_checkpoint_id = None
        if self.attempt > 0:
            logger.info("Job %s (%s) attempt %d: scheduling", self.graph.name, self.job_id, self.attempt)
        return [PrepareAttempt(self.attempt, self.required_slots(), wait_for_zookeeper=self.attempt > 0)]

    def _attempt_prepared(self, event: AttemptPrepared, now_ms: int) -> list[Instruction]:
        if event.attempt != self.attempt or self._stopped():
            return [ReleaseSlots()]  # cancelled or suspended while it waited for slots
        slots = event.slots
        self.restored_checkpoint_id = event.checkpoint_id
        self.placement = {(v.id, i): slots[i][0] for v in self.graph.vertices.values() for i in range(v.parallelism)}
        self.slot_of = {key: slots[key[1]][1] for key in self.placement}
        self.attempts = {key: self.attempt for key in self.placement}
        self.restarting = set()
        self.states = {key: ExecutionState.DEPLOYING for key in self.placement}
        self._set_status(JobStatus.RUNNING, now_ms)
        return [Deploy(tuple(self.placement), self.attempt, event.checkpoint_id, region=False)]

    def _attempt_preparation_failed(self, event: AttemptPreparationFailed, now_ms: int) -> list[Instruction]:
        """Never start with wrong state: a checkpoint that cannot be read is a failure (retried under the
        restart strategy, as storage may come back), and the job FAILS with it named when that gives up."""
        if event.attempt != self.attempt or self._stopped():
            return []
        logger.error("%s", event.failure)
        self._record_exception(event.failure, set(), now_ms)
        self.restarts.notify_failure(now_ms)
        if self.restarts.can_restart():
            self._failover_started(now_ms)
            self.attempt += 1
            self._set_status(JobStatus.RESTARTING, now_ms)
            return [StartTimer(self.restarts.backoff_ms() / 1000, ScheduleDue(self.attempt))]
        self.failure = event.failure
        return self._terminate(JobStatus.FAILED, now_ms)

    def _attempt_deployed(self, event: AttemptDeployed, now_ms: int) -> list[Instruction]:
        if event.attempt != self.attempt or self.status != JobStatus.RUNNING:
            return []
        logger.info("Job %s (%s) attempt %d: all %d tasks deployed", self.graph.name, self.job_id, self.attempt,
                    len(self.placement))
        return [StartCheckpointing()] if self.checkpointing else []

    def _deployment_failed(self, event: DeploymentFailed, now_ms: int) -> list[Instruction]:
        if self.status != JobStatus.RUNNING or self.attempts.get(event.subtask) != event.attempt:
            return []  # a failure or cancel during deployment was handled already
        verb = "redeploying" if event.region else "deploying"
        failure = f"{verb} {self.name_of(event.subtask)} failed: {event.failure}"
        # a damaged checkpoint: the whole job goes back to an older one, never one region alone
        return self._task_failed(failure, {event.subtask} if event.region and not event.damaged else set(), now_ms)

    def _task_state_changed(self, event: TaskStateChanged, now_ms: int) -> list[Instruction]:
        key, state = event.subtask, event.state
        if self.status != JobStatus.RUNNING or key in self.restarting or event.attempt != self.attempts.get(key):
            return []  # a report of an attempt that is no longer current
        if key not in self.states or self.states[key] == state or self.states[key].is_terminal():
            return []  # unknown, repeated, or a stale report after the task ended
        self.states[key] = state
        if state == ExecutionState.FAILED:
            self.task_failure = (self.name_of(key), event.failure)
            return self._task_failed(task_failure_text(*self.task_failure), {key}, now_ms)
        if all(s == ExecutionState.FINISHED for s in self.states.values()):
            return self._terminate(JobStatus.FINISHED, now_ms)
        if state == ExecutionState.FINISHED and self.checkpointing:
            return [TaskFinished(key, self.name_of(key))]
        if state == ExecutionState.FINISHING and self.checkpointing and all(
                s in (ExecutionState.FINISHING, ExecutionState.FINISHED) for k, s in self.states.items()
                if self.graph.vertices[k[0]].is_source):
            return [TriggerCheckpointSoon()]
        if state == ExecutionState.RUNNING and all(
                s in (ExecutionState.RUNNING, ExecutionState.FINISHED) for s in self.states.values()):
            if self.outage_since is not None:
                self.last_restart_ms, self.outage_since = now_ms - self.outage_since, None
            if self.running_since is None:  # (a region back after its failover: the job ran on meanwhile)
                self.running_since = now_ms
            logger.info("Job %s (%s) attempt %d: all %d tasks RUNNING", self.graph.name, self.job_id, self.attempt,
                        len(self.states))
        return []

    def _task_manager_lost(self, event: TaskManagerLost, now_ms: int) -> list[Instruction]:
        lost = {key for key, owner in self.placement.items() if owner.resource_id == event.resource_id}
        if self.status != JobStatus.RUNNING or not lost:
            return []
        return self._task_failed(f"TaskManager {event.resource_id} was lost: {event.reason}", lost, now_ms)

    def _job_failed(self, event: JobFailed, now_ms: int) -> list[Instruction]:
        return self._task_failed(event.failure, set(), now_ms)

    def _failover_started(self, now_ms: int, whole_job: bool = True) -> None:
        """A restart begins. Only a restart of the whole job is an outage (downtime, restartingTime, uptime
        from 0 again); a region failover leaves the job RUNNING, as Flink counts it."""
        self.num_restarts += 1
        if whole_job:
            if self.outage_since is None:
                self.outage_since = now_ms
            self.running_since = None

    def _task_failed(self, failure: str, failed: set[SubtaskKey], now_ms: int) -> list[Instruction]:
        """`failed`: the subtask that failed, or those of a lost TaskManager (empty: the whole job)."""
        if self.status != JobStatus.RUNNING or (failed and failed <= self.restarting):
            return []  # one failover per attempt (or per region), however many tasks report it
        logger.info("Job %s: %s", self.job_id, failure_summary(failure))
        self._record_exception(failure, failed, now_ms)
        if failed and self.failover == "region":
            region = set().union(*(tasks_to_restart("region", self.graph, key) for key in failed))
            region -= self.restarting
            if len(region | self.restarting) < len(self.placement):
                return self._restart_region(region, failure, now_ms)
        instructions: list[Instruction] = [CancelJob(self.task_managers()), ReleaseSlots()]
        if self.checkpointing:
            instructions.append(AbortPendingCheckpoints())
        self.restarts.notify_failure(now_ms)
        if not self.restarts.can_restart():
            logger.info("Job %s: the %s restart strategy gives up", self.job_id, self.restarts.name)
            self.failure = failure
            return instructions + self._terminate(JobStatus.FAILED, now_ms)
        self._failover_started(now_ms)
        self.attempt += 1
        self._set_status(JobStatus.RESTARTING, now_ms)
        delay = self.restarts.backoff_ms() / 1000
        logger.info("Job %s restarts (attempt %d) in %.3f s under the %s restart strategy", self.job_id,
                    self.attempt, delay, self.restarts.name)
        return instructions + [StartTimer(delay, ScheduleDue(self.attempt))]

    def _restart_region(self, region: set[SubtaskKey], failure: str, now_ms: int) -> list[Instruction]:
        """Region failover: only `region` stops and comes back, on the same slots (new ones where its
        TaskManager was lost); the rest runs on."""
        self.restarts.notify_failure(now_ms)
        if not self.restarts.can_restart():
            logger.info("Job %s: the %s restart strategy gives up", self.job_id, self.restarts.name)
            self.failure = failure
            return [CancelJob(self.task_managers())] + self._terminate(JobStatus.FAILED, now_ms)
        self._failover_started(now_ms, whole_job=False)
        self.restarting |= region
        delay = self.restarts.backoff_ms() / 1000
        logger.info("Job %s: restarting a region of %d of %d tasks in %.3f s under the %s restart strategy",
                    self.job_id, len(region), len(self.placement), delay, self.restarts.name)
        instructions: list[Instruction] = [AbortPendingCheckpoints()] if self.checkpointing else []
        return instructions + [CancelSubtasks(tuple((key, self.placement[key]) for key in sorted(region))),
                               StartTimer(delay, RegionRestartDue(frozenset(region)))]

    def _region_restart_due(self, event: RegionRestartDue, now_ms: int) -> list[Instruction]:
        if self.status != JobStatus.RUNNING or not event.region <= self.restarting:
            return []  # a full failover came meanwhile
        return [PrepareRegion(event.region)]

    def _region_prepared(self, event: RegionPrepared, now_ms: int) -> list[Instruction]:
        region = event.region
        if self.status != JobStatus.RUNNING or not region <= self.restarting:
            return []
        for key, (owner, slot) in event.replaced:
            self.placement[key], self.slot_of[key] = owner, slot
        for key in region:
            self.attempts[key] += 1
            self.states[key] = ExecutionState.DEPLOYING
        self.restarting -= region
        return [Deploy(tuple(sorted(region)), self.attempt, event.checkpoint_id, region=True)]

    def _region_preparation_failed(self, event: RegionPreparationFailed, now_ms: int) -> list[Instruction]:
        if self.status != JobStatus.RUNNING or not event.region <= self.restarting:
            return []
        self.restarting -= event.region
        return self._task_failed(event.failure, set(), now_ms)

    def _cancel_requested(self, event: CancelRequested, now_ms: int) -> list[Instruction]:
        if self.status in GLOBALLY_TERMINAL or self.status == JobStatus.CANCELLING:
            return []
        self._set_status(JobStatus.CANCELLING, now_ms)  # (no checkpoint is triggered, no restart deploys any more)
        return [CancelJob(self.task_managers(), final=event.final)]

    def _tasks_cancelled(self, event: TasksCancelled, now_ms: int) -> list[Instruction]:
        """Terminal once every TaskManager has taken the cancel (and finished any snapshot write of the
        job's tasks): the cleanup that follows must not race a late checkpoint file into the job's folder."""
        if self.status != JobStatus.CANCELLING:  # (suspended meanwhile by a lost leadership)
            return []
        # as Flink shows them: every subtask still going ended with the job, CANCELED or (stopped after
        # a savepoint) FINISHED
        ended = ExecutionState.FINISHED if event.final == JobStatus.FINISHED else ExecutionState.CANCELED
        for key, state in self.states.items():
            if not state.is_terminal():
                self.states[key] = ended
        return self._terminate(event.final, now_ms)

    def _leadership_lost(self, event: LeadershipLost, now_ms: int) -> list[Instruction]:
        """Stop without touching HA data (the TaskManagers cancel the tasks themselves)."""
        self._set_status(JobStatus.SUSPENDED, now_ms)
        return [StopScheduling(), ReleaseSlots()]

    def _recovery_noted(self, event: RecoveryNoted, now_ms: int) -> list[Instruction]:
        self._record_exception(event.message, set(), now_ms, name=event.kind)
        return []


_HANDLERS = {
    ScheduleDue: JobScheduler._schedule_due,
    AttemptPrepared: JobScheduler._attempt_prepared,
    AttemptPreparationFailed: JobScheduler._attempt_preparation_failed,
    AttemptDeployed: JobScheduler._attempt_deployed,
    DeploymentFailed: JobScheduler._deployment_failed,
    TaskStateChanged: JobScheduler._task_state_changed,
    TaskManagerLost: JobScheduler._task_manager_lost,
    JobFailed: JobScheduler._job_failed,
    RegionRestartDue: JobScheduler._region_restart_due,
    RegionPrepared: JobScheduler._region_prepared,
    RegionPreparationFailed: JobScheduler._region_preparation_failed,
    CancelRequested: JobScheduler._cancel_requested,
    TasksCancelled: JobScheduler._tasks_cancelled,
    LeadershipLost: JobScheduler._leadership_lost,
    RecoveryNoted: JobScheduler._recovery_noted,
}
