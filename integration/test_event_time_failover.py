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


def test_stop_with_drain_fires_every_window_and_timer_and_finishes_with_the_savepoint(
    cluster_factory: Callable[..., Cluster], tmp_path: Path
) -> None:
    """`flink stop --drain`: the sources end their input, event time reaches its end, so the windows and
    timers still open (the last second of every key) fire into the output before the savepoint; the job
    ends FINISHED with its output committed. A plain stop would leave those windows unfired."""
    cluster = cluster_factory(**{**FAST_RESTARTS, "taskmanager.numberOfTaskSlots": "2"})
    leader = cluster.start_leader()
    cluster.start_taskmanager()
    cluster.start_taskmanager()
    out = tmp_path / "out"
    # a source of parallelism 1 emits 0, 1, 2, ... at 2,000 records/s: it would need 100 s to end by itself
    submitted = cluster.flink("run", "-d", "-py", str(HERE / "event_time_job.py"), str(out), "200000", "2000", "1")
    assert submitted.returncode == 0, submitted.stdout + submitted.stderr
    job_id = cluster.job_id(submitted)
    wait_for(lambda: len(completed_ids(leader.output())) >= 3, 30, what="completed checkpoints")

    stopped = cluster.flink("stop", "--drain", "-p", str(tmp_path / "savepoints"), job_id)
    assert stopped.returncode == 0, stopped.stdout + stopped.stderr
    path = Path(stopped.stdout.split("Path: ")[1].split()[0])
    assert (path / "_metadata").is_file() and path.parent == tmp_path / "savepoints"
    wait_for(lambda: '"status": "FINISHED"' in cluster.job_result(job_id), 30, what="the job to finish")

    lines = committed_lines(out)
    emitted = sum(int(line.split()[3]) for line in lines if line.startswith("window"))
    assert 0 < emitted < 200000
    # every record the source emitted is counted once by a window and once by a timer: the windows of the
    # last second (their end past the watermark when the stop came) fired too
    assert lines == expected_lines(emitted)
    assert not [p for p in out.rglob("*") if p.is_file() and not p.name.startswith("part-")], \
        "uncommitted (in-progress or pending) files left"
