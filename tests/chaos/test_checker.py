"""The chaos suite's verdicts on made-up output and logs: they must catch a lost record, a duplicate, a
count restarted from a lost state, checkpoint ids going back, and a resumed stale leader that acts."""

from __future__ import annotations

from ha_flink.testing.chaos import faults as F
from ha_flink.testing.chaos.checker import (
    check_output, checkpoint_order_problems, failover_timings, leadership_problems,
)
from ha_flink.testing.chaos.logs import parse_log

KEYS = 17


def lines_for(numbers: list[int]) -> list[str]:
    """The chaos job's lines for `numbers` processed in this order (running count per key)."""
    counts: dict[int, int] = {}
    out = []
    for n in numbers:
        counts[n % KEYS] = counts.get(n % KEYS, 0) + 1
        out.append(f"{n} {n % KEYS} {counts[n % KEYS]}")
    return out


def test_exact_output_of_two_sources_stopped_at_different_points_passes() -> None:
    # subtask 0 emits 1, 3, 5, ...; subtask 1 emits 2, 4, ...; each stopped wherever the savepoint was
    numbers = list(range(1, 400, 2)) + list(range(2, 301, 2))
    check = check_output(lines_for(numbers), parallelism=2, start=1, keys=KEYS)
    assert check.ok, check.summary()
    assert check.records == len(numbers)


def test_a_lost_record_a_duplicate_and_a_recount_are_each_named() -> None:
    numbers = list(range(1, 201))
    lost = [n for n in numbers if n != 57]
    check = check_output(lines_for(lost), 2, 1, KEYS)
    assert not check.ok and check.lost == [57] and not check.duplicated

    twice = lines_for(numbers) + [lines_for(numbers)[99]]
    check = check_output(twice, 2, 1, KEYS)
    assert not check.ok and check.duplicated == [100]

    # state lost on a restart: key 3's count starts again from 1 for its later records
    recounted = lines_for(numbers[:100]) + [line if int(line.split()[1]) != 3 else
                                             f"{line.split()[0]} 3 {int(line.split()[2]) - 5}"
                                             for line in lines_for(numbers)[100:]]
    check = check_output(recounted, 2, 1, KEYS)
    assert not check.ok and check.bad_counts and check.bad_counts[0].startswith("key 3:")
    assert not check.lost and not check.duplicated


def test_nothing_committed_is_not_a_pass() -> None:
    assert not check_output([], 2, 1, KEYS).ok


def jm_log(pid: int, *lines: tuple[str, str]) -> str:
    out = [f"2026-11-30 10:00:00,000 INFO ha_flink.entrypoint - Starting standalonesession (pid {pid}); logging to x"]
    out += [f"2026-11-30 10:00:{t} INFO x - {message}" for t, message in lines]
    return "\n".join(out) + "\n"


def test_a_resumed_stale_leader_that_completes_a_checkpoint_is_caught() -> None:
    old = parse_log(jm_log(1, ("01,000", "Granted leadership with session id A"),
                           ("02,000", "Completed checkpoint 5 of job j (4 tasks, 10 ms)"),
                           # paused here past the session timeout; resumed, it still commits one
                           ("09,000", "Completed checkpoint 6 of job j (4 tasks, 10 ms)")), "jm-0.log")
    new = parse_log(jm_log(2, ("05,000", "Granted leadership with session id B"),
                           ("05,100", "Job c (j) restores checkpoint 5"),
                           ("06,000", "Completed checkpoint 6 of job j (4 tasks, 10 ms)")), "jm-1.log")
    problems = leadership_problems(old + new)
    assert len(problems) == 1 and "session A" in problems[0] and "later session B" in problems[0]
    order = checkpoint_order_problems(old + new, "j")
    assert len(order) == 1 and "checkpoint 6" in order[0]


def test_a_leader_hand_over_with_a_revoke_is_clean_and_timed() -> None:
    old = parse_log(jm_log(1, ("01,000", "Granted leadership with session id A"),
                           ("02,000", "Completed checkpoint 5 of job j (4 tasks, 10 ms)"),
                           ("03,000", "Leadership A revoked: suspending every job, keeping all HA data")), "jm-0.log")
    new = parse_log(jm_log(2, ("03,100", "Granted leadership with session id B"),
                           ("03,150", "Job c (j) restores checkpoint 5"),
                           ("03,200", "Job c (j) attempt 0: all 4 tasks RUNNING"),
                           ("03,300", "Job c (j) attempt 0: all 4 tasks deployed"),
                           ("03,500", "Completed checkpoint 6 of job j (4 tasks, 10 ms)")), "jm-1.log")
    lifetimes = old + new
    assert leadership_problems(lifetimes) == [] and checkpoint_order_problems(lifetimes, "j") == []
    fault_at = old[0].lines[-1].time - 0.5
    timing = failover_timings(F.LEADER_SIGTERM, fault_at, lifetimes, "j", expect_new_leader=True)
    assert (round(timing.new_leader_s, 3), round(timing.running_s, 3), round(timing.checkpoint_s, 3)) == (0.6, 0.7, 1.0)


def test_acting_without_any_leadership_is_caught() -> None:
    lifetimes = parse_log(jm_log(1, ("01,000", "Submitted job x (j)")), "jm-0.log")
    assert "acted without leadership" in leadership_problems(lifetimes)[0]


def test_a_restarted_daemon_appending_to_the_same_log_is_two_lifetimes() -> None:
    text = jm_log(1, ("01,000", "Granted leadership with session id A")) + \
        jm_log(2, ("05,000", "JobManager serving RPC at x"))
    first, second = parse_log(text, "jm-0.log")
    assert (first.pid, second.pid) == (1, 2)
    assert first.session_at(first.lines[-1].time) == "A" and second.session_at(second.lines[-1].time) is None


def test_the_fault_plan_is_the_same_for_the_same_seed_and_names_unknown_kinds() -> None:
    counts = {F.LEADER_SIGKILL: 5, F.ZOOKEEPER_QUORUM: 2}
    assert F.plan(7, counts) == F.plan(7, counts)
    assert F.plan(7, counts) != F.plan(8, counts)
    assert sorted(f.kind for f in F.plan(7, counts)) == [F.LEADER_SIGKILL] * 5 + [F.ZOOKEEPER_QUORUM] * 2
    try:
        F.plan(1, {"leader-sigkil": 1})
    except ValueError as error:
        assert "leader-sigkil" in str(error) and F.LEADER_SIGKILL in str(error)
    else:
        raise AssertionError("an unknown fault kind was accepted")


def test_the_vandal_and_the_storage_blip_name_what_they_do_and_every_act_is_picked() -> None:
    vandal = [F.Fault(F.ZOOKEEPER_VANDAL, pick, 0.5, 2.0) for pick in range(len(F.VANDAL_ACTS))]
    blips = [F.Fault(F.STORAGE_BLIP_AT_FAILOVER, pick, 0.5, 2.0) for pick in range(len(F.BLIP_ACTS))]
    assert [f.act for f in vandal] == list(F.VANDAL_ACTS) and [f.act for f in blips] == list(F.BLIP_ACTS)
    assert vandal[1].describe() == "zookeeper-vandal (after 0.5 s, pick 1: delete the latch folder)"
    assert blips[2].describe().endswith("make the HA storage dir unreachable, outage 2.0 s)")
    assert F.Fault(F.LEADER_SIGKILL, 3, 0.5, 2.0).act == ""
    # a plan does every act of a kind in turn
    plan = F.plan(5, {F.ZOOKEEPER_VANDAL: 8, F.STORAGE_BLIP_AT_FAILOVER: 3, F.LEADER_SIGKILL: 2})
    vandal_acts = [f.act for f in plan if f.kind == F.ZOOKEEPER_VANDAL]
    assert sorted(vandal_acts) == sorted(F.VANDAL_ACTS * 2)
    assert sorted(f.act for f in plan if f.kind == F.STORAGE_BLIP_AT_FAILOVER) == sorted(F.BLIP_ACTS)


def test_a_commit_made_before_a_pause_and_logged_after_it_is_not_a_breach() -> None:
    """Paused between its ZooKeeper commit and the log line, a leader logs the checkpoint late; the span
    from its trigger to the line overlaps its leadership, so nothing shows it acted after the new leader."""
    old = parse_log(jm_log(1, ("01,000", "Granted leadership with session id A"),
                           ("09,000", "Completed checkpoint 6 of job j (4 tasks, 5000 ms)")), "jm-0.log")
    new = parse_log(jm_log(2, ("05,000", "Granted leadership with session id B"),
                           ("06,000", "Completed checkpoint 7 of job j (4 tasks, 10 ms)")), "jm-1.log")
    assert leadership_problems(old + new) == []
    assert checkpoint_order_problems(old + new, "j") == []


def test_a_commit_in_flight_when_the_leader_steps_down_counts_as_its_own() -> None:
    """SIGTERM: the revoke is logged while a checkpoint's commit is on its way; ZooKeeper still checked the
    latch, so the commit belongs to the leadership that sent it."""
    lifetimes = parse_log(jm_log(1, ("01,000", "Granted leadership with session id A"),
                                 ("02,000", "Leadership A revoked: suspending every job, keeping all HA data"),
                                 ("02,020", "Completed checkpoint 9 of job j (4 tasks, 70 ms)")), "jm-0.log")
    assert leadership_problems(lifetimes) == []
    late = parse_log(jm_log(1, ("01,000", "Granted leadership with session id A"),
                            ("02,000", "Leadership A revoked: suspending every job, keeping all HA data"),
                            ("02,500", "Completed checkpoint 9 of job j (4 tasks, 70 ms)")), "jm-0.log")
    assert "acted without leadership" in leadership_problems(late)[0]
