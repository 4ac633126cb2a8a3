"""Figures of the state backends (issue: checkpoints), on real processes and a real ZooKeeper: checkpoint
duration and size for ~100 MB of keyed state on local disk with `hashmap`, `rocksdb` (full) and `rocksdb`
with incremental checkpoints after a 1% change between checkpoints (goal: bounded by disk bandwidth,
incremental < 10% of full), and the TaskManagers' memory (RSS) holding that state.

Run: `.venv/bin/python bench/state_backends.py [--state-mb M] [--no-record]`."""

from __future__ import annotations

import argparse
import re
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import bench_cluster, report, spread  # noqa: E402
from ha_flink.testing.processes import wait_for  # noqa: E402

JOBS = Path(__file__).resolve().parent / "jobs"
INTERVAL_S = 2.0  # big_state_job.py's checkpoint interval


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def uploaded_bytes(job_dir: Path, checkpoint_id: int) -> int:
    """What checkpoint `checkpoint_id` wrote: its chk-<id>/ folder and the shared files it uploaded
    (rocksdb names them `<owner>-<token>-chk<id>-<file>`)."""
    folder = sum(p.stat().st_size for p in (job_dir / f"chk-{checkpoint_id}").glob("*") if p.is_file())
    shared = sum(p.stat().st_size for p in (job_dir / "shared").glob(f"*-chk{checkpoint_id}-*") if p.is_file())
    return folder + shared


def measure(cluster, leader, workdir: Path, state_mb: float, backend: str, incremental: bool,
            changes_per_s: float) -> tuple[list[float], list[int], float]:
    submitted = cluster.flink("run", "-d", "-py", str(JOBS / "big_state_job.py"), str(state_mb), backend,
                              str(incremental).lower(), str(changes_per_s))
    job_id = submitted.stdout.split("JobID ")[1].split()[0]
    job_dir = workdir / "checkpoints" / job_id
    pattern = rf"Completed checkpoint (\d+) of job {job_id} \(\d+ tasks, (\d+) ms\)"

    def completed() -> list[tuple[int, int]]:
        return [(int(i), int(ms)) for i, ms in re.findall(pattern, leader.output())]

    # The state is built when a checkpoint no longer grows: wait until two in a row are within 5% in size
    # (for incremental rocksdb: the first full upload is followed by small ones).
    deadline = time.monotonic() + 900
    built_at = None
    while built_at is None and time.monotonic() < deadline:
        done = completed()
        if len(done) >= 3:
            sizes = [uploaded_bytes(job_dir, i) for i, _ in done[-3:]]
            if incremental:
                if sizes[-1] < sizes[0] * 0.5 and sizes[-2] < sizes[0] * 0.5:
                    built_at = done[-1][0]
            elif abs(sizes[-1] - sizes[-2]) < 0.05 * max(sizes[-1], 1):
                built_at = done[-1][0]
        time.sleep(0.5)  # a measurement poll, not a test wait
    assert built_at is not None, "the state was never built"
    wait_for(lambda: len([i for i, _ in completed() if i > built_at]) >= 3, 120, what="three more checkpoints")
    after = [(i, ms) for i, ms in completed() if i > built_at][:3]
    durations = [ms / 1000 for _, ms in after]
    sizes = [uploaded_bytes(job_dir, i) for i, _ in after]
    memory = sum(rss_mib(d.process.pid) for d in cluster.daemons
                 if d.kind == "taskmanager" and d.process.poll() is None)
    if incremental:  # the full size it builds on: what the first checkpoint of the built state uploaded
        first = completed()[0][0]
        full = max(uploaded_bytes(job_dir, i) for i, _ in completed() if i <= built_at and i >= first)
        sizes = [full] + sizes
    cluster.flink("cancel", job_id)
    wait_for(lambda: not (workdir / "checkpoints" / job_id).exists(), 60, what="the job's checkpoints to go")
    return durations, sizes, memory


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--state-mb", type=float, default=100.0)
    parser.add_argument("--no-record", action="store_true")
    args = parser.parse_args()
    keys = int(args.state_mb * 10_000)
    changes = keys * 0.01 / INTERVAL_S  # 1% of the keys between two checkpoints
    rows = []
    with tempfile.TemporaryDirectory() as tmp, bench_cluster(Path(tmp), {
            "taskmanager.numberOfTaskSlots": "2", "restart-strategy.type": "none",
            "state.checkpoints.dir": str(Path(tmp) / "checkpoints"),
            "state.checkpoints.num-retained": "20",  # the folders stay to be measured
            "state.backend.rocksdb.localdir": str(Path(tmp) / "rocksdb")}) as cluster:
        leader = cluster.start_leader()
        for backend, incremental in (("hashmap", False), ("rocksdb", False), ("rocksdb", True)):
            taskmanager = cluster.start_taskmanager()  # a fresh process each time: its RSS is this state's
            durations, sizes, memory = measure(cluster, leader, Path(tmp), args.state_mb, backend, incremental,
                                               changes)
            taskmanager.kill(signal.SIGTERM)
            taskmanager.process.wait(30)
            rows.append((backend, incremental, durations, sizes, memory))
            print(backend, incremental, durations, sizes, f"{memory:.0f} MiB", flush=True)

    lines = ["| backend | checkpoint duration | written per checkpoint | TaskManager RSS | goal |",
             "|---|---|---|---|---|"]
    full_rocksdb = None
    for backend, incremental, durations, sizes, memory in rows:
        name = f"{backend}{' incremental, 1% changed' if incremental else ''}"
        if incremental:
            full, sizes = sizes[0], sizes[1:]
            share = statistics.median(sizes) / (full_rocksdb or full) * 100
            written = (f"median {statistics.median(sizes) / 2**20:.2f} MiB ({share:.1f}% of a full checkpoint), "
                       f"max {max(sizes) / 2**20:.2f} MiB (n={len(sizes)})")
            goal = "< 10% of full"
        else:
            written = f"{sum(sizes) / len(sizes) / 2**20:.1f} MiB"
            goal = "bounded by disk bandwidth"
            if backend == "rocksdb":
                full_rocksdb = sum(sizes) / len(sizes)
        lines.append(f"| {name} | {spread(durations)} | {written} | {memory:.0f} MiB | {goal} |")
    table = "\n".join(lines)
    report("State backends", "bench/state_backends.py", table,
           f"~{args.state_mb:.0f} MB of keyed state ({keys:,} keys of ~100 bytes, p=2, one TaskManager with 2 "
           "slots), 2 s checkpoint interval, state.checkpoints.dir and RocksDB's local folder on the same local "
           "disk. Durations are the coordinator's trigger -> completed; the snapshot's synchronous part stalls "
           "processing only for the copy (hashmap) or the RocksDB checkpoint (rocksdb). rocksdb writes "
           "compressed SST files, so it writes fewer bytes than the pickled hashmap snapshot. An incremental "
           "checkpoint uploads the SST files written since the last confirmed one: usually the 1% changed, "
           "more when a RocksDB compaction has just rewritten files (the max).",
           not args.no_record)


if __name__ == "__main__":
    main()
