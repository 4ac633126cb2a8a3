"""Figures of the cluster runtime (issue: cluster runtime), on real processes and a real ZooKeeper:

1. throughput of a bounded map -> key_by -> reduce over 2,000,000 records (1,000 words), p=2 on two
   TaskManagers and p=1 (goal >= 300,000 records/s);
2. leader SIGKILL -> all tasks RUNNING on the new leader, session timeout 3 s (goal median of 5 <= 3.3 s),
   and grant -> all tasks RUNNING (goal <= 0.3 s);
3. leader SIGTERM -> all tasks RUNNING (goal <= 0.5 s);
4. resident memory of an idle TaskManager and of a standby JobManager (goal <= 80 MiB each);
5. `flink run -d -py` wall time to an acknowledged job id (goal <= 1 s).

Run: `.venv/bin/python bench/runtime.py [--records N] [--runs N] [--no-record]`."""

from __future__ import annotations

import argparse
import datetime
import re
import signal
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import bench_cluster, report, spread  # noqa: E402
from ha_flink.testing.cluster import Cluster, DaemonProcess  # noqa: E402
from ha_flink.testing.processes import wait_for  # noqa: E402

JOBS = Path(__file__).resolve().parent / "jobs"
INTEGRATION = Path(__file__).resolve().parents[1] / "integration"
STAMP = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) ")


def stamp_of(line: str) -> float | None:
    """The wall-clock time a daemon's log line is stamped with (None: the line has no stamp)."""
    match = STAMP.match(line)
    if not match:
        return None
    return datetime.datetime.strptime(match.group(1), "%Y-%m-%d %H:%M:%S,%f").timestamp()


def log_time(daemon: DaemonProcess, text: str, after: float) -> float | None:
    """Wall-clock time of the first log line containing `text` stamped after `after`."""
    for line in daemon.output().splitlines():
        if text in line:
            stamp = stamp_of(line)
            if stamp is not None and stamp >= after:
                return stamp
    return None


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def job_runtime_ms(cluster: Cluster, *args: str) -> int:
    """`flink run -py <args>` to its end; the job runtime it reports."""
    result = cluster.flink("run", "-py", *args, timeout=900)
    if result.returncode != 0:
        raise RuntimeError(result.stdout + result.stderr)
    return int(re.search(r"Job Runtime: (\d+) ms", result.stdout).group(1))


def throughput(cluster: Cluster, records: int, parallelism: int) -> float:
    return records / (job_runtime_ms(cluster, str(JOBS / "throughput_job.py"), str(records), str(parallelism)) / 1000)


def failover(cluster: Cluster, leader: DaemonProcess, sig: int,
             patience: float = 1.0) -> tuple[float, float, DaemonProcess]:
    """Kill the leader; seconds to (new grant, all tasks RUNNING); returns the new leader. `patience`
    stretches the waits (10 s for the process to end, 60 s for the new leader) on a loaded machine."""
    standbys = [d for d in cluster.daemons if d.kind == "jobmanager" and d is not leader and d.process.poll() is None]
    signalled = time.time()
    leader.kill(sig)
    leader.process.wait(10 * patience)

    def new_leader() -> DaemonProcess | None:
        return next((d for d in standbys if log_time(d, "all ", signalled) and
                     log_time(d, "tasks RUNNING", signalled)), None)

    winner = wait_for(new_leader, 60 * patience, what="the new leader to run every task")
    granted = log_time(winner, "Granted leadership", signalled)
    running = log_time(winner, "tasks RUNNING", signalled)
    return granted - signalled, running - signalled, winner


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=2_000_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--no-record", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, bench_cluster(Path(tmp), {"taskmanager.numberOfTaskSlots": "1"}) as cluster:
        workdir = Path(tmp)
        leader = cluster.start_leader()
        standby = cluster.start_jobmanager()
        tms = [cluster.start_taskmanager(), cluster.start_taskmanager()]
        time.sleep(1.0)  # let the idle processes settle before reading their memory
        idle_tm, standby_jm = max(rss_mib(t.pid) for t in tms), rss_mib(standby.pid)

        started = time.monotonic()
        submitted = cluster.flink("run", "-d", "-py", str(INTEGRATION / "unbounded_job.py"),
                                  str(workdir / "out"))
        submit_seconds = time.monotonic() - started
        assert submitted.returncode == 0, submitted.stderr
        wait_for(lambda: log_time(leader, "tasks RUNNING", 0), 30, what="the job to run")

        kills, grants_to_running, terms = [], [], []
        for _ in range(args.runs):
            granted, running, leader = failover(cluster, leader, signal.SIGKILL)
            kills.append(running)
            grants_to_running.append(running - granted)
            cluster.start_jobmanager()  # a fresh standby for the next round
        for _ in range(max(3, args.runs // 2)):
            _, running, leader = failover(cluster, leader, signal.SIGTERM)
            terms.append(running)
            cluster.start_jobmanager()
        cancel = cluster.flink("list")
        job_id = re.search(r"^([0-9a-f]{32})  ", cancel.stdout, re.M).group(1)  # (a row of the table)
        cluster.flink("cancel", job_id)
        wait_for(lambda: "No running jobs." in cluster.flink("list").stdout, 30, what="the cancel")

        rate_p2 = throughput(cluster, args.records, 2)
        rate_p1 = throughput(cluster, args.records, 1)

    seconds = spread

    table = "\n".join([
        "| figure | measured | goal |",
        "|---|---|---|",
        f"| bounded word count, {args.records:,} records, p=2 on two TaskManagers | {rate_p2:,.0f} records/s | >= 300,000 |",
        f"| same, p=1 | {rate_p1:,.0f} records/s | (also p=1) |",
        f"| leader SIGKILL -> all tasks RUNNING, session timeout 3 s | {seconds(kills)} | median <= 3.3 s |",
        f"| grant -> all tasks RUNNING (after SIGKILL) | {seconds(grants_to_running)} | <= 0.3 s |",
        f"| leader SIGTERM -> all tasks RUNNING | {seconds(terms)} | <= 0.5 s |",
        f"| resident memory, idle TaskManager | {idle_tm:.0f} MiB | <= 80 MiB |",
        f"| resident memory, standby JobManager | {standby_jm:.0f} MiB | <= 80 MiB |",
        f"| `flink run -d -py` to an acknowledged job id | {submit_seconds:.2f} s | <= 1 s |",
    ])
    report("Cluster runtime: throughput, failover, footprint", "make bench (bench/runtime.py)", table,
           "One ZooKeeper 3.8 server (tickTime 200 ms), 2 JobManagers, 2 TaskManagers with 1 slot each, heartbeat "
           "interval 0.5 s / timeout 5 s, all on loopback. Times come from the JobManagers' log stamps.",
           not args.no_record)


if __name__ == "__main__":
    main()
