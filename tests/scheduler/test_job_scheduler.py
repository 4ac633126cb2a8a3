"""The job's state machine driven by event sequences alone: no sockets, no loop, no clock."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from ha_flink.common import JobStatus, WatermarkStrategy
from ha_flink.datastream import StreamExecutionEnvironment
from ha_flink.datastream.connectors.number_seq import NumberSequenceSource
from ha_flink.runtime.execution_state import ExecutionState
from ha_flink.runtime.graph.job_graph import JobGraph
from ha_flink.runtime.scheduler import job_scheduler as js
from ha_flink.runtime.scheduler.job_scheduler import JobScheduler
from ha_flink.runtime.scheduler.restart_strategies import FixedDelayRestart, NoRestart

RUNNING, FAILED, FINISHED, FINISHING = (ExecutionState.RUNNING, ExecutionState.FAILED, ExecutionState.FINISHED,
                                        ExecutionState.FINISHING)


@dataclass(frozen=True)
class TM:  # what the scheduler knows of a TaskManager
    resource_id: str
    address: str


TM1, TM2 = TM("tm-1", "127.0.0.1:6121"), TM("tm-2", "127.0.0.1:6122")


def two_lane_job() -> JobGraph:
    """source -> map -> sink, all forward, parallelism 2: two pipelined regions (one per lane)."""
    env = StreamExecutionEnvironment.get_execution_environment().set_parallelism(2)
    env.from_source(NumberSequenceSource(1, 10), WatermarkStrategy.no_watermarks(), "numbers") \
        .map(str).disable_chaining().map(str).print()
    return env.get_job_graph()


def of(instructions: list[js.Instruction], kind: type) -> list:  # type: ignore[type-arg]
    return [i for i in instructions if isinstance(i, kind)]


def running(scheduler: JobScheduler, now: int = 1000) -> None:
    """Bring attempt `scheduler.attempt` to every task RUNNING, one slot on each TaskManager."""
    assert of(scheduler.handle(js.ScheduleDue(scheduler.attempt), now), js.PrepareAttempt)
    deploy = of(scheduler.handle(js.AttemptPrepared(scheduler.attempt, None, ((TM1, 0), (TM2, 0))), now), js.Deploy)
    assert deploy and not deploy[0].region
    for key in list(scheduler.states):
        scheduler.handle(js.TaskStateChanged(key, scheduler.attempts[key], RUNNING), now)
    scheduler.handle(js.AttemptDeployed(scheduler.attempt), now)


@pytest.fixture
def graph() -> JobGraph:
    return two_lane_job()


def test_a_job_is_prepared_deployed_and_finishes(graph: JobGraph) -> None:
    scheduler = JobScheduler(graph, NoRestart(), checkpointing=True, created_ms=0)
    prepare = scheduler.handle(js.ScheduleDue(0), 10)
    assert prepare == [js.PrepareAttempt(0, 2, wait_for_zookeeper=False)]
    deploy = scheduler.handle(js.AttemptPrepared(0, 7, ((TM1, 0), (TM2, 0))), 20)
    assert scheduler.status == JobStatus.RUNNING and scheduler.restored_checkpoint_id == 7
    assert deploy == [js.Deploy(tuple(scheduler.placement), 0, 7, region=False)]
    assert {key: owner.resource_id for key, owner in scheduler.placement.items()} == {
        (v, i): f"tm-{i + 1}" for v in graph.vertices for i in range(2)}
    assert scheduler.checkpoint_participants() == set()  # still deploying
    for key in scheduler.states:
        scheduler.handle(js.TaskStateChanged(key, 0, RUNNING), 30)
    assert scheduler.running_since == 30
    assert scheduler.handle(js.AttemptDeployed(0), 31) == [js.StartCheckpointing()]
    assert scheduler.checkpoint_participants() == set(scheduler.states)
    sources = scheduler.live_sources()
    assert len(sources) == 2 and all(graph.vertices[v].is_source for v, _ in sources)
    out: list[js.Instruction] = []
    for key in sources:
        out += scheduler.handle(js.TaskStateChanged(key, 0, FINISHING), 40)
    assert out.count(js.TriggerCheckpointSoon()) == 1  # when the last source ended
    keys = sorted(scheduler.states)
    for key in keys[:-1]:
        scheduler.handle(js.TaskStateChanged(key, 0, FINISHED), 50)
    assert scheduler.checkpoint_participants() == {keys[-1]}  # finished subtasks take no part
    last = scheduler.handle(js.TaskStateChanged(keys[-1], 0, FINISHED), 60)
    assert last == [js.StopScheduling(), js.ReleaseSlots(), js.JobTerminated(JobStatus.FINISHED)]
    assert scheduler.status == JobStatus.FINISHED and scheduler.end_time == 60
    assert scheduler.timestamps[JobStatus.RUNNING] == 20


def test_a_task_failure_during_a_checkpoint_restarts_the_whole_job_once(graph: JobGraph) -> None:
    scheduler = JobScheduler(graph, FixedDelayRestart(attempts=3, delay_ms=250), checkpointing=True)
    running(scheduler)
    key = sorted(scheduler.states)[0]
    out = scheduler.handle(js.TaskStateChanged(key, 0, FAILED, "Traceback: ValueError: boom"), 2000)
    assert of(out, js.CancelJob)[0].task_managers == (TM1, TM2)
    assert js.ReleaseSlots() in out and js.AbortPendingCheckpoints() in out  # the pending checkpoint is void
    assert of(out, js.StartTimer) == [js.StartTimer(0.25, js.ScheduleDue(1))]
    assert scheduler.status == JobStatus.RESTARTING and scheduler.attempt == 1 and scheduler.num_restarts == 1
    assert scheduler.outage_since == 2000 and scheduler.running_since is None
    assert scheduler.checkpoint_participants() == set()
    assert not scheduler.is_current(key, 0)  # a late ack of the failed attempt counts for nothing
    # the other subtasks report their failure too: still one failover
    for other in sorted(scheduler.states)[1:]:
        assert scheduler.handle(js.TaskStateChanged(other, 0, FAILED, "cancelled"), 2001) == []
    assert scheduler.handle(js.JobFailed("checkpoint declined"), 2002) == []
    entry = scheduler.exceptions[0]
    assert entry.exception_name == "Traceback" and entry.task_name == scheduler.name_of(key)
    assert entry.endpoint == TM1.address and len(scheduler.exceptions) == 1
    # the backoff is over: attempt 1 waits for ZooKeeper, then runs with fresh attempts
    assert scheduler.handle(js.ScheduleDue(1), 2250) == [js.PrepareAttempt(1, 2, wait_for_zookeeper=True)]
    running(scheduler, now=2400)
    assert set(scheduler.attempts.values()) == {1} and scheduler.last_restart_ms == 400
    assert scheduler.handle(js.TaskStateChanged(key, 0, FAILED, "late"), 2500) == []  # a stale attempt


def test_the_restart_strategy_giving_up_fails_the_job_with_the_tasks_traceback(graph: JobGraph) -> None:
    scheduler = JobScheduler(graph, NoRestart())
    running(scheduler)
    key = sorted(scheduler.states)[1]
    out = scheduler.handle(js.TaskStateChanged(key, 0, FAILED, "ValueError: bad record 42"), 3000)
    assert out[-1] == js.JobTerminated(JobStatus.FAILED) and js.StopScheduling() in out
    assert js.AbortPendingCheckpoints() not in out  # checkpointing off
    assert scheduler.failed_task() == (scheduler.name_of(key), "ValueError: bad record 42")
    assert "bad record 42" in scheduler.failure


def test_region_failover_restarts_one_lane_and_the_other_runs_on(graph: JobGraph) -> None:
    scheduler = JobScheduler(graph, FixedDelayRestart(attempts=5, delay_ms=100), failover="region",
                             checkpointing=True)
    running(scheduler)
    lane = {key for key in scheduler.states if key[1] == 1}
    failed = min(lane)
    out = scheduler.handle(js.TaskStateChanged(failed, 0, FAILED, "boom"), 5000)
    assert of(out, js.CancelJob) == [] and js.AbortPendingCheckpoints() in out
    assert {key for key, _ in of(out, js.CancelSubtasks)[0].subtasks} == lane
    assert of(out, js.StartTimer) == [js.StartTimer(0.1, js.RegionRestartDue(frozenset(lane)))]
    assert scheduler.status == JobStatus.RUNNING and scheduler.restarting == lane and scheduler.attempt == 0
    assert scheduler.outage_since is None and scheduler.num_restarts == 1  # a region failover is no outage
    assert scheduler.checkpoint_participants() == set()  # no checkpoint while a region restarts
    assert scheduler.handle(js.TaskStateChanged(failed, 0, FAILED, "again"), 5001) == []  # its own failure
    assert scheduler.handle(js.RegionRestartDue(frozenset(lane)), 5100) == [js.PrepareRegion(frozenset(lane))]
    # the lane's TaskManager was lost meanwhile: its subtasks get a slot on tm-1
    replaced = tuple((key, (TM1, 1)) for key in sorted(lane))
    deploy = scheduler.handle(js.RegionPrepared(frozenset(lane), 9, replaced), 5200)
    assert deploy == [js.Deploy(tuple(sorted(lane)), 0, 9, region=True)]
    assert {scheduler.attempts[key] for key in lane} == {1} and {scheduler.placement[key] for key in lane} == {TM1}
    assert {scheduler.slot_of[key] for key in lane} == {1}
    assert {scheduler.attempts[key] for key in set(scheduler.states) - lane} == {0}
    # a deployment failure of the region fails the region again; one from a damaged checkpoint the whole job
    again = scheduler.handle(js.DeploymentFailed(failed, 1, "UNAVAILABLE", region=True), 5300)
    assert of(again, js.StartTimer)[0].event == js.RegionRestartDue(frozenset(lane))
    scheduler.handle(js.RegionRestartDue(frozenset(lane)), 5400)
    scheduler.handle(js.RegionPrepared(frozenset(lane), 9), 5500)
    whole = scheduler.handle(js.DeploymentFailed(failed, 2, "DATA_LOSS: chk-9", damaged=True, region=True), 5600)
    assert of(whole, js.StartTimer)[0].event == js.ScheduleDue(1) and scheduler.status == JobStatus.RESTARTING


def test_a_region_restart_timer_after_a_full_failover_does_nothing(graph: JobGraph) -> None:
    scheduler = JobScheduler(graph, FixedDelayRestart(attempts=5, delay_ms=100), failover="region")
    running(scheduler)
    lane = frozenset(key for key in scheduler.states if key[1] == 0)
    scheduler.handle(js.TaskStateChanged(min(lane), 0, FAILED, "boom"), 1)
    scheduler.handle(js.JobFailed("too many failed checkpoints"), 2)  # the whole job
    assert scheduler.status == JobStatus.RESTARTING and scheduler.restarting == set(lane)
    assert scheduler.handle(js.RegionRestartDue(lane), 3) == []
    running(scheduler)
    assert scheduler.restarting == set() and scheduler.handle(js.RegionPrepared(lane, None), 4) == []


def test_a_lost_task_manager_fails_the_subtasks_it_ran(graph: JobGraph) -> None:
    scheduler = JobScheduler(graph, FixedDelayRestart(attempts=1, delay_ms=0), failover="region")
    running(scheduler)
    assert scheduler.handle(js.TaskManagerLost("tm-3", "no heartbeat"), 1) == []  # runs nothing of the job
    out = scheduler.handle(js.TaskManagerLost("tm-2", "no heartbeat for 5 s"), 2)
    assert {key for key, _ in of(out, js.CancelSubtasks)[0].subtasks} == {k for k in scheduler.states if k[1] == 1}
    assert scheduler.exceptions[0].stacktrace == "TaskManager tm-2 was lost: no heartbeat for 5 s"


def test_leadership_lost_mid_restart_suspends_and_no_late_result_redeploys(graph: JobGraph) -> None:
    scheduler = JobScheduler(graph, FixedDelayRestart(attempts=3, delay_ms=1000))
    running(scheduler)
    scheduler.handle(js.TaskStateChanged(min(scheduler.states), 0, FAILED, "boom"), 10)
    assert scheduler.status == JobStatus.RESTARTING
    assert scheduler.handle(js.LeadershipLost(), 20) == [js.StopScheduling(), js.ReleaseSlots()]
    assert scheduler.status == JobStatus.SUSPENDED and not scheduler.status.is_globally_terminal_state()
    assert scheduler.status.is_terminal_state()
    assert scheduler.handle(js.ScheduleDue(1), 1010) == []  # the restart timer fired all the same
    # a preparation that was in flight answers: its slots go back, nothing deploys
    assert scheduler.handle(js.AttemptPrepared(1, None, ((TM1, 0), (TM2, 0))), 1020) == [js.ReleaseSlots()]
    assert scheduler.handle(js.AttemptPreparationFailed(1, "storage down"), 1030) == []
    assert scheduler.handle(js.TasksCancelled(JobStatus.CANCELED), 1040) == []


def test_cancel_waits_for_every_task_manager_and_beats_a_pending_restart(graph: JobGraph) -> None:
    scheduler = JobScheduler(graph, FixedDelayRestart(attempts=3, delay_ms=1000))
    running(scheduler)
    scheduler.handle(js.TaskStateChanged(min(scheduler.states), 0, FAILED, "boom"), 10)
    out = scheduler.handle(js.CancelRequested(), 20)
    assert out == [js.CancelJob((TM1, TM2), final=JobStatus.CANCELED)] and scheduler.status == JobStatus.CANCELLING
    assert scheduler.handle(js.CancelRequested(), 21) == []  # one cancel
    assert scheduler.handle(js.ScheduleDue(1), 1010) == []  # no restart deploys any more
    assert scheduler.handle(js.TasksCancelled(JobStatus.CANCELED), 1020)[-1] == js.JobTerminated(JobStatus.CANCELED)
    # as Flink shows a cancelled job's tasks: the one that failed FAILED, every other CANCELED
    assert sorted(scheduler.states.values()) == sorted([ExecutionState.FAILED] + [ExecutionState.CANCELED] * (
        len(scheduler.states) - 1))
    assert scheduler.handle(js.CancelRequested(), 1030) == []  # terminal


def test_a_savepoint_stop_ends_the_job_finished_after_the_cancels(graph: JobGraph) -> None:
    scheduler = JobScheduler(graph, NoRestart())
    running(scheduler)
    assert scheduler.handle(js.CancelRequested(JobStatus.FINISHED), 1)[0].final == JobStatus.FINISHED
    assert scheduler.handle(js.TasksCancelled(JobStatus.FINISHED), 2)[-1] == js.JobTerminated(JobStatus.FINISHED)
    assert set(scheduler.states.values()) == {ExecutionState.FINISHED}  # (they were RUNNING before)


def test_a_restore_that_fails_is_retried_under_the_restart_strategy_and_named_when_it_gives_up(
        graph: JobGraph) -> None:
    scheduler = JobScheduler(graph, FixedDelayRestart(attempts=1, delay_ms=500), checkpointing=True)
    scheduler.handle(js.ScheduleDue(0), 0)
    out = scheduler.handle(js.AttemptPreparationFailed(0, "cannot restore checkpoint 4: storage down"), 1)
    assert out == [js.StartTimer(0.5, js.ScheduleDue(1))] and scheduler.status == JobStatus.RESTARTING
    assert scheduler.exceptions[0].stacktrace == "cannot restore checkpoint 4: storage down"
    scheduler.handle(js.ScheduleDue(1), 501)
    out = scheduler.handle(js.AttemptPreparationFailed(1, "cannot restore checkpoint 4: storage down"), 502)
    assert out[-1] == js.JobTerminated(JobStatus.FAILED) and scheduler.failure.endswith("storage down")
    assert scheduler.failed_task() is None  # not a task's failure


def test_a_recovery_note_goes_into_the_exception_history(graph: JobGraph) -> None:
    scheduler = JobScheduler(graph, NoRestart(), checkpointing=True)
    scheduler.handle(js.RecoveryNoted("CheckpointFallback", "restores checkpoint 3, chk-4 is damaged"), 7)
    entry = scheduler.exceptions[0]
    assert (entry.exception_name, entry.timestamp, entry.task_name) == ("CheckpointFallback", 7, None)


def test_a_deployment_failure_of_a_first_attempt_restarts_the_whole_job(graph: JobGraph) -> None:
    scheduler = JobScheduler(graph, FixedDelayRestart(attempts=1, delay_ms=0), failover="region")
    scheduler.handle(js.ScheduleDue(0), 0)
    scheduler.handle(js.AttemptPrepared(0, None, ((TM1, 0), (TM2, 0))), 1)
    key = min(scheduler.states)
    out = scheduler.handle(js.DeploymentFailed(key, 0, "UNAVAILABLE: connection refused"), 2)
    assert of(out, js.StartTimer)[0].event == js.ScheduleDue(1)
    assert scheduler.exceptions[0].stacktrace == f"deploying {scheduler.name_of(key)} failed: UNAVAILABLE: " \
                                                 "connection refused"
    assert scheduler.handle(js.AttemptDeployed(0), 3) == []  # the old attempt's deployment ending


def test_the_log_line_of_a_task_failure_carries_its_reason() -> None:
    """(The first line of a task's failure is "<task> failed:"; its reason is the traceback's last line.)"""
    traceback = "Traceback (most recent call last):\n  File \"x.py\", line 1\nRuntimeError: input channel failed: ABORTED\n"
    assert js.failure_summary(js.task_failure_text("Sink (11/64)", traceback)) == \
        "Sink (11/64) failed: RuntimeError: input channel failed: ABORTED"
    assert js.failure_summary(js.task_failure_text("Sink (1/1)", "input channel failed: UNAVAILABLE")) == \
        "Sink (1/1) failed: input channel failed: UNAVAILABLE"
    assert js.failure_summary("TaskManager tm-1 lost: no heartbeat for 20 s\nmore") == \
        "TaskManager tm-1 lost: no heartbeat for 20 s"
    assert js.failure_summary("") == "(no reason given)"
