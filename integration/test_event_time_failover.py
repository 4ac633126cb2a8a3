"""Windows and event-time timers are checkpointed keyed state: on a real HA cluster, a TaskManager killed
and then the leading JobManager killed while windows are open still give every (key, second) count exactly
once in the two-phase-commit file output."""

from __future__ import annotations

import re
import signal
from pathlib import Path
from typing import Callable

from ha_flink.testing.cluster import Cluster
from ha_flink.testing.processes import wait_for
from integration.event_time_job import expected_lines

HERE = Path(__file__).resolve().parent
FAST_RESTARTS = {"restart-strategy.type": "fixed-delay", "restart-strategy.fixed-delay.attempts": "10",
                 "restart-strategy.fixed-delay.delay": "100 ms", "taskmanager.numberOfTaskSlots": "1"}


def completed_ids(log: str) -> list[int]:
    return [int(m) for m in re.findall(r"Completed checkpoint (\d+) of job", log)]


def committed_lines(out: Path) -> list[str]:
    lines: list[str] = []
    for path in out.iterdir():
        if path.name.startswith("part-"):
            lines += path.read_text().splitlines()
    return sorted(lines)


def test_windows_and_timers_survive_a_taskmanager_kill_and_a_leader_kill_exactly_once(
    cluster_factory: Callable[..., Cluster], tmp_path: Path
) -> None:
    cluster = cluster_factory(**FAST_RESTARTS)
    first = cluster.start_leader()
    standby = cluster.start_jobmanager()
    cluster.start_taskmanager()
    doomed = cluster.start_taskmanager()  # with one slot each, both TaskManagers run a share of the job
    n, out = 12_000, tmp_path / "out"
    submitted = cluster.flink("run", "-d", "-py", str(HERE / "event_time_job.py"), str(out), str(n), "2000")
    assert submitted.returncode == 0, submitted.stdout + submitted.stderr
    job_id = cluster.job_id(submitted)

    wait_for(lambda: len(completed_ids(first.output())) >= 2, 30, what="completed checkpoints")
    doomed.kill(signal.SIGKILL)
    cluster.start_taskmanager()  # the replacement
    wait_for(lambda: "restores checkpoint" in first.output(), 30, what="the restart after the TaskManager kill")
    restored_at = len(completed_ids(first.output()))
    wait_for(lambda: len(completed_ids(first.output())) >= restored_at + 2, 30,
             what="checkpoints after the restore")
    first.kill(signal.SIGKILL)
    wait_for(lambda: "Granted leadership" in standby.output(), 30, what="the standby to lead")
    wait_for(lambda: '"status": "FINISHED"' in cluster.job_result(job_id), 90, what="the job to finish")
    assert "restores checkpoint" in standby.output()
    assert committed_lines(out) == expected_lines(n)
