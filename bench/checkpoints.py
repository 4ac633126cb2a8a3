"""Figures of checkpoints and recovery (issue: checkpoints), on real processes and a real ZooKeeper:

1. throughput of the runtime issue's word count (2,000,000 records, p=2) with 1 s exactly-once
   checkpoints against none: goal <= 10% loss, zero failed checkpoints;
2. TaskManager SIGKILL -> all tasks RUNNING again, spare slots available, restart delay 0: goal <= 1.5 s
   median;
3. checkpoint duration with ~100 MB of keyed state (hashmap backend, local disk): record;
4. recovery with that state, leader SIGKILL: grant -> all tasks RUNNING: record.

Run: `.venv/bin/python bench/checkpoints.py [--records N] [--runs N] [--state-mb M] [--no-record]`."""

from __future__ import annotations

import argparse
import json
import re
import signal
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import bench_cluster, report, spread  # noqa: E402
from bench.runtime import job_runtime_ms, log_time  # noqa: E402
from ha_flink.testing.cluster import DaemonProcess  # noqa: E402
from ha_flink.testing.processes import wait_for  # noqa: E402

JOBS = Path(__file__).resolve().parent / "jobs"
INTEGRATION = Path(__file__).resolve().parents[1] / "integration"


def busy_taskmanager(leader: DaemonProcess, tms: list[DaemonProcess]) -> DaemonProcess:
    """A TaskManager running tasks: no free slot, as the leader's REST API reports."""
    with urllib.request.urlopen(f"{leader.rest_address()}/taskmanagers", timeout=10) as answer:
        busy = {tm["path"] for tm in json.load(answer)["taskmanagers"] if tm["freeSlots"] == 0}
    return next(t for t in tms if t.address() in busy)


def job_id_of(output: str) -> str:
    return output.split("JobID ")[1].split()[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=2_000_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--state-mb", type=float, default=100.0)
    parser.add_argument("--no-record", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, bench_cluster(Path(tmp), {
            "taskmanager.numberOfTaskSlots": "1", "restart-strategy.type": "fixed-delay",
            "restart-strategy.fixed-delay.attempts": "100", "restart-strategy.fixed-delay.delay": "0 ms",
            "state.checkpoints.dir": str(Path(tmp) / "checkpoints")}) as cluster:
        workdir = Path(tmp)
        leader = cluster.start_leader()
        cluster.start_jobmanager()
        tms = [cluster.start_taskmanager() for _ in range(3)]  # one spare slot

        plain = job_runtime_ms(cluster, str(JOBS / "throughput_job.py"), str(args.records), "2")
        before = leader.output()
        checkpointed = job_runtime_ms(cluster, str(JOBS / "throughput_job.py"), str(args.records), "2", "1000")
        during = leader.output()[len(before):]
        completed_during = len(re.findall(r"Completed checkpoint \d+", during))
        failed_during = len(re.findall(r"Checkpoint failure", during))

        # TaskManager SIGKILL with a spare slot and no restart delay
        submitted = cluster.flink("run", "-d", "-py", str(INTEGRATION / "checkpointed_count_job.py"),
                                  str(workdir / "out"), "100000000", "2000", "-1")
        job_id = job_id_of(submitted.stdout)
        wait_for(lambda: "Completed checkpoint" in leader.output().split(job_id, 1)[-1], 30,
                 what="the job's first checkpoint")
        recoveries = []
        for _ in range(args.runs):
            victim = busy_taskmanager(leader, tms)
            killed_at = time.time()
            victim.kill(signal.SIGKILL)
            tms.remove(victim)
            running = wait_for(lambda: log_time(leader, "tasks RUNNING", killed_at), 30,
                               what="all tasks running again")
            recoveries.append(running - killed_at)
            tms.append(cluster.start_taskmanager())  # a new spare
            time.sleep(2.5)  # let a checkpoint complete before the next kill (a measurement pause)
        cluster.flink("cancel", job_id)

        # ~100 MB of keyed state: checkpoint duration, then recovery after a leader SIGKILL
        big = cluster.flink("run", "-d", "-py", str(JOBS / "big_state_job.py"), str(args.state_mb))
        big_id = job_id_of(big.stdout)
        keys = int(args.state_mb * 10_000)
        deadline = time.monotonic() + 600

        def big_checkpoints() -> list[int]:
            text = leader.output().split(big_id, 1)[-1]
            return [int(ms) for ms in re.findall(rf"Completed checkpoint \d+ of job {big_id} \(\d+ tasks, (\d+) ms\)", text)]

        # wait until the state is built: a few completed checkpoints after enough time for all keys
        time.sleep(max(5.0, keys / 150_000))  # the source fills the keys at roughly this rate
        wait_for(lambda: len(big_checkpoints()) >= 3 or time.monotonic() > deadline, 600, what="big checkpoints")
        durations = big_checkpoints()[-3:]
        state_bytes = sum(p.stat().st_size for p in (workdir / "checkpoints" / big_id).rglob("*")
                          if p.is_file() and p.name != "_metadata") / max(1, len(list(
                              (workdir / "checkpoints" / big_id).glob("chk-*"))))
        standby = next(d for d in cluster.daemons if d.kind == "jobmanager" and d is not leader
                       and d.process.poll() is None)
        killed_at = time.time()
        leader.kill(signal.SIGKILL)
        wait_for(lambda: log_time(standby, "tasks RUNNING", killed_at), 120, what="the big job to recover")
        granted = log_time(standby, "Granted leadership", killed_at)
        recovered = log_time(standby, "tasks RUNNING", killed_at)
        cluster.flink("cancel", big_id)

    loss = (checkpointed - plain) / plain * 100
    table = "\n".join([
        "| figure | measured | goal |",
        "|---|---|---|",
        f"| word count {args.records:,} records p=2, no checkpoints | {args.records / plain * 1000:,.0f} records/s | |",
        f"| same with 1 s exactly-once checkpoints | {args.records / checkpointed * 1000:,.0f} records/s "
        f"({loss:+.1f}% runtime; {completed_during} completed, {failed_during} failed) | <= 10% loss, 0 failed |",
        f"| TaskManager SIGKILL -> all tasks RUNNING (spare slot, delay 0) | {spread(recoveries)} | median <= 1.5 s |",
        f"| checkpoint duration, ~{state_bytes / 2**20:.0f} MB keyed state (hashmap, local disk) | "
        f"{spread([d / 1000 for d in durations])} | record |",
        f"| recovery with that state: grant -> all tasks RUNNING | {recovered - granted:.2f} s | record |",
    ])
    report("Checkpoints and recovery", "make bench (bench/checkpoints.py)", table,
           "One ZooKeeper, 2 JobManagers, 3 TaskManagers with 1 slot each (one spare), fixed-delay restarts with "
           "0 delay, state.checkpoints.dir on local disk. Detection of a killed TaskManager is by its gRPC "
           "connection (keepalive 1 s).", not args.no_record)


if __name__ == "__main__":
    main()
