"""The long chaos run (`make chaos`): a cluster started by the bin/ scripts (3-node ZooKeeper ensemble,
3 JobManagers, 3 TaskManagers) running the exactly-once job while seeded faults hit it: by default 100
leader SIGKILLs and a mix of every other fault kind. Prints each fault as it goes, then the verdict (zero
lost, zero duplicated, the checks of ha_flink.testing.chaos.checker) and the failover figures, median and
max per fault kind, measured from the daemons' log timestamps; records them in BENCHMARKS.md with the seed.

`bench/chaos.py --seed N` repeats a run; `--leader-kills 10 --mixed 2` is a shorter one."""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import median_max, report  # noqa: E402
from ha_flink.testing.chaos import faults as F  # noqa: E402
from ha_flink.testing.chaos.harness import run_chaos  # noqa: E402

# Real Flink 2.3 on this kind of machine (../shared/reference), seconds after the signal to all tasks RUNNING.
FLINK = {F.LEADER_SIGKILL: "median ~4.1 s", F.LEADER_SIGTERM: "2.45 s", F.TASKMANAGER_SIGKILL: "16.05 s"}
GOALS = {F.LEADER_SIGKILL: "<= 0.5 s", F.LEADER_SIGTERM: "<= 0.5 s", F.TASKMANAGER_SIGKILL: "<= 1.5 s"}
FROM = {F.ZOOKEEPER_QUORUM: "the quorum serving again", F.STORAGE_OUTAGE: "the folder taken away",
        F.CLUSTER_RESTART: "stop-cluster.sh", F.LEADER_PARTITION: "the cut", F.ZOOKEEPER_VANDAL: "the damage",
        F.STORAGE_BLIP_AT_FAILOVER: "the damage, right before the leader SIGKILL"}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=None, help="repeat a run (default: a new random seed)")
    parser.add_argument("--leader-kills", type=int, default=100)
    parser.add_argument("--mixed", type=int, default=10,
                        help="leader SIGTERMs, TaskManager SIGKILLs and quorum losses each; half as many of the "
                             "other kinds")
    parser.add_argument("--rate", type=float, default=1000.0, help="records per second of the job's source")
    parser.add_argument("--dir", type=Path, default=None, help="keep the run's files there")
    parser.add_argument("--storage", choices=("file", "s3"), default="file",
                        help="where checkpoints go: local disk, or a moto S3 server (default: file)")
    parser.add_argument("--no-record", action="store_true", help="print only; leave BENCHMARKS.md alone")
    args = parser.parse_args()
    half = max(1, args.mixed // 2)
    counts = {F.LEADER_SIGKILL: args.leader_kills, F.LEADER_SIGTERM: args.mixed, F.TASKMANAGER_SIGKILL: args.mixed,
              F.ZOOKEEPER_QUORUM: args.mixed, F.LEADER_SIGSTOP: half, F.LEADER_PARTITION: half,
              F.ZOOKEEPER_ONE_NODE: half,
              F.STORAGE_OUTAGE: half, F.CLUSTER_RESTART: max(1, half // 2), F.ZOOKEEPER_VANDAL: half,
              F.STORAGE_BLIP_AT_FAILOVER: half}
    directory = args.dir or Path(tempfile.mkdtemp(prefix="ha-flink-chaos-"))
    directory.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    result = run_chaos(directory, args.seed, counts, rate=args.rate, say=lambda line: print(line, flush=True),
                       storage=args.storage)
    took = time.monotonic() - started
    print(f"seed {result.seed}: {'PASSED' if result.ok else 'FAILED'} in {took / 60:.1f} min; files in {directory}")
    for problem in result.problems:
        print(f"  problem: {problem}")

    rows = []
    for kind in F.KINDS:
        timings = [t for t in result.timings if t.fault == kind]
        if not timings:
            continue
        rows.append(f"| {kind} (n={len(timings)}{', from ' + FROM[kind] if kind in FROM else ''}) | "
                    f"{median_max([t.new_leader_s for t in timings])} | {median_max([t.running_s for t in timings])} | "
                    f"{median_max([t.checkpoint_s for t in timings])} | {GOALS.get(kind, '')} | {FLINK.get(kind, '')} |")
    output = result.output
    verdict = (f"Seed {result.seed}: {len(result.faults)} faults ({', '.join(f'{n} {k}' for k, n in counts.items())}) "
               f"in {took / 60:.1f} min; {result.checkpoints} checkpoints completed. Output: "
               f"{output.summary() if output else 'not checked'}. Checks (checkpoint ids strictly increasing, one "
               f"acting leader at a time, a finished job never re-run, no HA data left after cancel, resume after "
               f"stop-cluster/start-cluster): {'no problem' if not result.problems else '; '.join(result.problems)}.")
    table = "\n".join(["| fault | new leader (median / max, s) | all tasks RUNNING (median / max, s) | next "
                       "checkpoint (median / max, s) | goal (RUNNING) | Flink 2.3 (RUNNING) |",
                       "|---|---|---|---|---|---|", *rows])
    command = f"make chaos (bench/chaos.py --seed {result.seed}{' --storage s3' if args.storage == 's3' else ''})"
    report("Chaos: failover under seeded faults", command, table,
           f"{verdict}\n\nA cluster started by the bin/ scripts: 3 ZooKeeper servers (tickTime 200 ms), 3 "
           "JobManagers, 3 TaskManagers with 1 slot each (one spare), all on this host; session timeout 3 s with "
           "tolerate-suspended-connections (revoking once a suspension outlasts it); fixed-delay restarts of "
           f"100 ms; checkpoints every 200 ms to {'a moto S3 server' if args.storage == 's3' else 'local disk'}; "
           f"the job counts {args.rate:,.0f} numbers/s, keyed by n % 17, into the two-phase-commit FileSink at "
           "p=2. Times are from the fault (the signal) to the line in the daemons' logs, in seconds; a leader kill "
           "is followed by a new JobManager in its place (the standby of the next kill).",
           keep=not args.no_record and result.ok)
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
