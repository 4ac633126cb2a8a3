"""Restart strategies on a real cluster, timed from the JobManager's log (millisecond timestamps): the
backoffs `exponential-delay` and `failure-rate` announce, and that each restart waited that long."""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path
from typing import Callable

from ha_flink.testing.cluster import Cluster
from ha_flink.testing.processes import wait_for

HERE = Path(__file__).resolve().parent
FAILING_JOB = str(HERE / "failing_job.py")
RESTART = re.compile(r"^(\S+ \S+) INFO \S+ - Job \S+ restarts \(attempt (\d+)\) in ([\d.]+) s under the (\S+) "
                     r"restart strategy$", re.M)


def timestamp(text: str) -> float:
    return datetime.strptime(text, "%Y-%m-%d %H:%M:%S,%f").timestamp()


def restarts(log: str) -> list[tuple[float, int, float]]:
    """(when announced, attempt, announced backoff in s) per restart."""
    return [(timestamp(m[1]), int(m[2]), float(m[3])) for m in RESTART.finditer(log)]


def scheduled_at(log: str, attempt: int) -> float:
    match = re.search(rf"^(\S+ \S+) INFO \S+ - Job .* attempt {attempt}: scheduling$", log, re.M)
    assert match, f"attempt {attempt} was never scheduled"
    return timestamp(match[1])


def assert_each_restart_waited_its_backoff(log: str, up_to: int = 1000) -> None:
    for announced, attempt, backoff in restarts(log)[:up_to]:
        waited = scheduled_at(log, attempt) - announced
        assert backoff - 0.002 <= waited < backoff + 2.0, (attempt, backoff, waited)


def test_exponential_delay_doubles_its_backoff_up_to_the_maximum_then_gives_up(
    cluster_factory: Callable[..., Cluster],
) -> None:
    cluster = cluster_factory(**{"restart-strategy.type": "exponential-delay",
                                 "restart-strategy.exponential-delay.initial-backoff": "100 ms",
                                 "restart-strategy.exponential-delay.backoff-multiplier": "2",
                                 "restart-strategy.exponential-delay.max-backoff": "500 ms",
                                 "restart-strategy.exponential-delay.jitter-factor": "0",
                                 "restart-strategy.exponential-delay.attempts-before-reset-backoff": "5"})
    leader = cluster.start_jobmanager()
    cluster.start_taskmanager()
    result = cluster.flink("run", "-py", FAILING_JOB, timeout=60)
    assert result.returncode == 1 and "ValueError: cannot handle 1" in result.stderr
    log = leader.output()
    assert [(attempt, backoff) for _, attempt, backoff in restarts(log)] == [
        (1, 0.1), (2, 0.2), (3, 0.4), (4, 0.5), (5, 0.5)]
    assert {match[3] for match in RESTART.findall(log)} == {"exponential-delay"}
    assert_each_restart_waited_its_backoff(log)
    assert "the exponential-delay restart strategy gives up" in log


def test_failure_rate_gives_up_when_too_many_failures_fall_in_its_interval(
    cluster_factory: Callable[..., Cluster],
) -> None:
    cluster = cluster_factory(**{"restart-strategy.type": "failure-rate",
                                 "restart-strategy.failure-rate.max-failures-per-interval": "3",
                                 "restart-strategy.failure-rate.failure-rate-interval": "1 min",
                                 "restart-strategy.failure-rate.delay": "150 ms"})
    leader = cluster.start_jobmanager()
    cluster.start_taskmanager()
    result = cluster.flink("run", "-py", FAILING_JOB, timeout=60)
    assert result.returncode == 1
    log = leader.output()
    assert [(attempt, backoff) for _, attempt, backoff in restarts(log)] == [(1, 0.15), (2, 0.15), (3, 0.15)]
    assert_each_restart_waited_its_backoff(log)
    assert "the failure-rate restart strategy gives up" in log


def test_failure_rate_keeps_restarting_while_failures_are_spread_wider_than_its_interval(
    cluster_factory: Callable[..., Cluster],
) -> None:
    # 2 failures per 1 s are allowed, and each restart waits 0.6 s: no 1 s window ever holds 3 failures.
    cluster = cluster_factory(**{"restart-strategy.type": "failure-rate",
                                 "restart-strategy.failure-rate.max-failures-per-interval": "2",
                                 "restart-strategy.failure-rate.failure-rate-interval": "1 s",
                                 "restart-strategy.failure-rate.delay": "600 ms"})
    leader = cluster.start_jobmanager()
    cluster.start_taskmanager()
    submitted = cluster.flink("run", "-d", "-py", FAILING_JOB)
    assert submitted.returncode == 0, submitted.stderr
    job_id = cluster.job_id(submitted)
    wait_for(lambda: "attempt 5: scheduling" in leader.output(), 30, what="five restarts")
    log = leader.output()
    assert "gives up" not in log
    assert_each_restart_waited_its_backoff(log, up_to=5)  # (a sixth may be announced but not yet due)
    assert cluster.flink("cancel", job_id).returncode == 0
    wait_for(lambda: '"status": "CANCELED"' in cluster.job_result(job_id), 20, what="the job to be cancelled")
