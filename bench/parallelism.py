"""What parallelism buys (issue 18, item 2): the word count of bench/jobs/throughput_job.py (bounded map ->
key_by -> reduce, 1,000 words) at p=1 and p=2 on a cluster of two TaskManagers of one slot (real processes,
a real ZooKeeper), with and without a checkpoint every 100 ms, and in a local run (the mini cluster), in one
invocation with the runs alternating, so every row sees the same machine load.

Besides records/s it prints the CPU seconds the TaskManager processes spent per million records (from
/proc/<pid>/stat, summed over both), which other load on the machine changes far less than a rate: p=2
buys throughput only as far as its CPU per record stays near p=1's.

Run: `.venv/bin/python bench/parallelism.py [--records N] [--runs N] [--no-record]`."""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import bench_cluster, cpu_seconds, report  # noqa: E402
from bench.local_runtime import ROOT, run  # noqa: E402
from bench.runtime import JOBS, job_runtime_ms  # noqa: E402

def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=4_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--no-record", action="store_true")
    args = parser.parse_args()
    rates: dict[str, list[float]] = {}
    cpu: dict[str, list[float]] = {}
    loads = []
    with tempfile.TemporaryDirectory() as tmp, bench_cluster(Path(tmp), {"taskmanager.numberOfTaskSlots": "1"}) as cluster:
        cluster.start_leader()
        taskmanagers = [cluster.start_taskmanager(), cluster.start_taskmanager()]
        for _ in range(args.runs):
            loads.append(os.getloadavg()[0])
            for p in (1, 2):
                for interval in (0, 100):
                    name = f"cluster, p={p}" + (", checkpoint every 100 ms" if interval else "")
                    before = sum(cpu_seconds(tm.pid) for tm in taskmanagers)
                    runtime = job_runtime_ms(cluster, str(JOBS / "throughput_job.py"), str(args.records), str(p),
                                             str(interval)) / 1000
                    spent = sum(cpu_seconds(tm.pid) for tm in taskmanagers) - before
                    rates.setdefault(name, []).append(args.records / runtime)
                    cpu.setdefault(name, []).append(spent / (args.records / 1e6))
            for p in (1, 2):
                rates.setdefault(f"local, p={p}", []).append(args.records / run(ROOT, args.records, p)["net"])

    def rate(name: str) -> float:
        return statistics.median(rates[name])

    rows = ["| run | records/s | TaskManager CPU s per M records | / p=1 of its kind |", "|---|---|---|---|"]
    for name in rates:
        base = name.replace("p=2", "p=1")
        ratio = f"{rate(name) / rate(base):.2f}" if name != base else ""
        cpu_cell = f"{statistics.median(cpu[name]):.3f}" if name in cpu else ""
        rows.append(f"| {name} | {rate(name):,.0f} | {cpu_cell} | {ratio} |")
    for p in (1, 2):
        plain, checkpointed = f"cluster, p={p}", f"cluster, p={p}, checkpoint every 100 ms"
        rows.append(f"| rate lost to checkpoints, p={p} | {1 - rate(checkpointed) / rate(plain):+.1%} | | |")
    notes = (f"{args.records:,} records, median of {args.runs} runs per row, rows alternating run by run; "
             f"1-minute load average at the start of each round: {', '.join(f'{v:.1f}' for v in loads)}. "
             "Cluster: records / the job's runtime as `flink run` reports it, two TaskManagers of one slot; "
             "local: records / the job's net runtime. Goals (issue 18): cluster p=2 >= 1.6x p=1 and >= 2 M "
             "records/s; local p=2 no slower than p=1; checkpoint overhead within 10%.")
    report("What parallelism buys: word count at p=1 and p=2", "bench/parallelism.py", "\n".join(rows), notes,
           not args.no_record)


if __name__ == "__main__":
    main()
