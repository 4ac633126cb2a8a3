"""Leader SIGKILL -> all tasks RUNNING on the new leader (issue: failover and scaling, item 1), on real
processes and a real ZooKeeper, with the JobManagers guarded (deploy/guardian.py, as the bin/ scripts start
them) and unguarded, at ZooKeeper session timeouts of 3 s and 10 s (the shipped conf/'s), in one run: the
guardian closes a dead leader's session at once, so its figure should not depend on the timeout.

Run: `.venv/bin/python bench/guardian_failover.py [--runs N] [--no-record]`."""

from __future__ import annotations

import argparse
import signal
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import bench_cluster, report, spread  # noqa: E402
from bench.runtime import INTEGRATION, failover, log_time  # noqa: E402
from ha_flink.testing.processes import wait_for  # noqa: E402


def kills(session_timeout: str, guardian: bool, runs: int) -> list[float]:
    """Seconds from each leader SIGKILL to every task RUNNING on the next leader."""
    with tempfile.TemporaryDirectory() as tmp, bench_cluster(Path(tmp), {
            "taskmanager.numberOfTaskSlots": "1",
            "high-availability.zookeeper.client.session-timeout": session_timeout}) as cluster:
        leader = cluster.start_leader(guardian=guardian)
        cluster.start_jobmanager(guardian=guardian)
        cluster.start_taskmanager()
        cluster.start_taskmanager()
        submitted = cluster.flink("run", "-d", "-py", str(INTEGRATION / "unbounded_job.py"), str(Path(tmp) / "out"))
        assert submitted.returncode == 0, submitted.stderr
        wait_for(lambda: log_time(leader, "tasks RUNNING", 0), 30, what="the job to run")
        figures = []
        for _ in range(runs):
            _, running, leader = failover(cluster, leader, signal.SIGKILL)
            figures.append(running)
            cluster.start_jobmanager(guardian=guardian)  # a fresh standby for the next round
        return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--no-record", action="store_true")
    args = parser.parse_args()
    rows = []
    for timeout in ("3 s", "10 s"):
        for guardian in (True, False):
            figures = kills(timeout, guardian, args.runs)
            rows.append(f"| session timeout {timeout}, {'guarded' if guardian else 'unguarded'} | {spread(figures)} |")
    table = "\n".join(["| leader SIGKILL -> all tasks RUNNING on the new leader | seconds |", "|---|---|", *rows])
    notes = ("Two JobManagers, two TaskManagers of one slot, the unbounded job at parallelism 2; times from the "
             "daemons' log lines (the new leader's 'all N tasks RUNNING'). Guarded: the guardian sees the "
             "JobManager's death through waitpid and closes its ZooKeeper session; unguarded: the session times "
             "out. Goal (issue 18): guarded median <= 0.5 s at any session timeout.")
    report("Leader SIGKILL failover with and without the guardian", "bench/guardian_failover.py", table, notes,
           not args.no_record)


if __name__ == "__main__":
    main()
