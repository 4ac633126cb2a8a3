"""The checkpoint rules without I/O (runtime/checkpoint/tracker.py), driven by event sequences: no
sockets, no files, no clock; each test runs in microseconds."""

from __future__ import annotations

from ha_flink.runtime.checkpoint.tracker import CheckpointTracker

SOURCE, SINK = ("source", 0), ("sink", 0)
BOTH = {SOURCE, SINK}


def test_a_checkpoint_completes_once_every_expected_subtask_acknowledged() -> None:
    tracker = CheckpointTracker(timeout_ms=1000)
    tracker.begin(1, 0, BOTH)
    first = tracker.acknowledge(SOURCE, 1, "s1")
    assert first.known and first.first and first.complete is None
    again = tracker.acknowledge(SOURCE, 1, "s1-again")  # a repeated ack is recorded, counted once
    assert again.known and not again.first and again.complete is None
    done = tracker.acknowledge(SINK, 1, "k1", shared=["shared/a"], restore_from_all=True)
    assert done.complete is not None and done.complete.acks == {SOURCE: "s1-again", SINK: "k1"}
    assert done.complete.shared == {"shared/a"} and done.complete.restore_from_all == {"sink"}
    assert 1 not in tracker.pending


def test_late_acks_after_expiry_are_ignored_and_the_expiry_counts_as_a_failure() -> None:
    tracker = CheckpointTracker(timeout_ms=1000, tolerable_failures=1)
    tracker.begin(1, 0, BOTH)
    assert tracker.expire(1000) == []  # not older than the timeout yet
    expired = tracker.expire(1001)
    assert [p.checkpoint_id for p in expired] == [1] and not tracker.pending
    assert tracker.failed() is False  # one failure is tolerated
    late = tracker.acknowledge(SOURCE, 1, "s1")
    assert not late.known and late.complete is None
    tracker.begin(2, 2000, BOTH)
    assert tracker.expire(3001)
    assert tracker.failed() is True  # the second in a row exceeds it: fail over, counting starts again
    assert tracker.consecutive_failures == 0


def test_a_completed_checkpoint_resets_the_failure_count() -> None:
    tracker = CheckpointTracker(timeout_ms=1000, tolerable_failures=1)
    assert tracker.failed() is False
    tracker.begin(1, 0, {SOURCE})
    complete = tracker.acknowledge(SOURCE, 1, "s").complete
    assert complete is not None
    tracker.committed(complete, [], now_s=5.0)
    assert tracker.failed() is False  # one in a row again, not two


def test_max_concurrent_and_min_pause_hold_back_triggers_but_not_savepoints() -> None:
    tracker = CheckpointTracker(timeout_ms=10_000, min_pause_s=2.0, max_concurrent=1)
    assert tracker.may_trigger(0.0)
    tracker.begin(1, 0, {SOURCE})
    assert not tracker.may_trigger(0.1)  # one in flight already
    tracker.begin(2, 0, {SOURCE}, savepoint_dir="/savepoints")
    complete = tracker.acknowledge(SOURCE, 1, "s").complete
    assert complete is not None
    tracker.committed(complete, [], now_s=10.0)
    assert 2 in tracker.pending  # a savepoint is never subsumed
    assert not tracker.may_trigger(11.0)  # within the pause after the completion
    assert tracker.may_trigger(12.0)
    assert tracker.expire(10**9) == []  # nor expired here: its caller has its own timeout


def test_a_completion_subsumes_older_checkpoints_in_flight() -> None:
    tracker = CheckpointTracker(timeout_ms=10_000, max_concurrent=3)
    for checkpoint_id in (1, 2, 3):
        tracker.begin(checkpoint_id, 0, BOTH)
    tracker.acknowledge(SOURCE, 2, "s2")
    complete = tracker.acknowledge(SINK, 2, "k2").complete
    assert complete is not None
    committed = tracker.committed(complete, [], now_s=1.0)
    assert [p.checkpoint_id for p in committed.subsumed] == [1]
    assert list(tracker.pending) == [3]


def test_a_subtask_that_finished_drops_only_the_checkpoints_still_waiting_for_it() -> None:
    tracker = CheckpointTracker(timeout_ms=10_000, max_concurrent=3)
    tracker.begin(7, 0, BOTH)
    tracker.acknowledge(SOURCE, 7, "s7")
    tracker.begin(8, 0, {SINK})
    dropped = tracker.task_finished(SOURCE)
    assert dropped == [] and set(tracker.pending) == {7, 8}  # 7 has its snapshot, 8 never expected it
    dropped = tracker.task_finished(SINK)
    assert sorted(p.checkpoint_id for p in dropped) == [7, 8]


def test_a_failover_during_a_checkpoint_takes_everything_in_flight() -> None:
    tracker = CheckpointTracker(timeout_ms=10_000, max_concurrent=2)
    tracker.begin(1, 0, BOTH)
    tracker.acknowledge(SOURCE, 1, "s1")
    tracker.begin(2, 0, BOTH, savepoint_dir="/sp")
    taken = tracker.take_all()
    assert sorted(p.checkpoint_id for p in taken) == [1, 2] and not tracker.pending
    assert not tracker.acknowledge(SINK, 1, "k1").known  # the sink's ack of the old attempt comes too late


def test_shared_files_are_garbage_once_no_retained_checkpoint_references_them() -> None:
    tracker = CheckpointTracker(timeout_ms=10_000, max_concurrent=2)
    tracker.recovered({1: {"shared/a", "shared/b"}})  # read from the store by a new leader
    tracker.begin(2, 0, {SOURCE})
    complete = tracker.acknowledge(SOURCE, 2, "s2", shared=["shared/b", "shared/c"]).complete
    assert complete is not None
    committed = tracker.committed(complete, removed=[1], now_s=1.0)  # 1 subsumed by the store
    assert committed.unreferenced_shared == ["shared/a"]  # b lives on in 2
    failed = tracker.begin(4, 0, BOTH)
    tracker.acknowledge(SOURCE, 4, "s4", shared=["shared/c", "shared/e"])
    assert tracker.take(4) is failed
    assert tracker.garbage_of(failed) == ["shared/e"]  # c is referenced by the completed checkpoint 2
