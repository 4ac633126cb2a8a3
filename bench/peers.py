"""The word count of the runtime bench (numbers 1..N -> (word of i % 1000, 1) -> keyed running count ->
discard) on ha-flink and on a peer, in one run (issue: failover and scaling, item 4): Bytewax 0.21.1 (one
worker, `run_main`; installed into a virtualenv of the bench, cached under ~/.cache/ha-flink, never into the
project's dependencies), ha-flink locally at p=1 and p=2 (`python job.py`: the mini cluster), ha-flink on a
cluster of two TaskManagers at p=1 and p=2, and one bare Python loop doing the same work: the limit of one
core. Rows alternate between the systems run by run, so the machine's load is shared; the figures are
medians and ratios to the bare loop.

Run: `.venv/bin/python bench/peers.py [--records N] [--runs N] [--no-record]`."""

from __future__ import annotations

import argparse
import hashlib
import statistics
import subprocess
import sys
import tempfile
import venv
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import bench_cluster, report  # noqa: E402
from bench.local_runtime import ROOT, run  # noqa: E402
from bench.runtime import throughput  # noqa: E402

BYTEWAX = "bytewax==0.21.1"

BYTEWAX_FLOW = """
import sys, time
import bytewax.operators as op
from bytewax.dataflow import Dataflow
from bytewax.outputs import DynamicSink, StatelessSinkPartition
from bytewax.testing import TestingSource, run_main

WORDS = [f"word{i}" for i in range(1000)]

class _Discard(StatelessSinkPartition):
    def write_batch(self, items):
        pass

class Discard(DynamicSink):
    def build(self, step_id, worker_index, worker_count):
        return _Discard()

def count(state, value):
    state = (state or 0) + value
    return state, state

n = int(sys.argv[1])
flow = Dataflow("word_count")
numbers = op.input("numbers", flow, TestingSource(range(1, n + 1), batch_size=1000))
pairs = op.map("word", numbers, lambda i: (WORDS[i % 1000], 1))
op.output("discard", op.stateful_map("count", pairs, count), Discard())
started = time.perf_counter()
run_main(flow)
print(n / (time.perf_counter() - started))
"""

BARE_LOOP = """
import sys, time
WORDS = [f"word{i}" for i in range(1000)]
n = int(sys.argv[1])
started = time.perf_counter()
counts = {}
emitted = []
for i in range(1, n + 1):
    word = WORDS[i % 1000]
    count = counts[word] = counts.get(word, 0) + 1
    emitted.append((word, count))
    if len(emitted) >= 1000:
        emitted.clear()
print(n / (time.perf_counter() - started))
"""


def peer_python() -> Path:
    """The bench's own virtualenv with Bytewax (made once, then cached)."""
    folder = Path.home() / ".cache" / "ha-flink" / f"bench-peers-{hashlib.sha256(BYTEWAX.encode()).hexdigest()[:8]}"
    python = folder / "bin" / "python"
    marker = folder / ".installed"
    if not marker.exists():
        venv.create(folder, with_pip=True, clear=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", BYTEWAX], check=True, timeout=900)
        marker.write_text(BYTEWAX + "\n")
    return python


def rate_of(python: Path | str, script: str, records: int) -> float:
    done = subprocess.run([str(python), "-c", script, str(records)], capture_output=True, text=True, timeout=900)
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-2000:])
    return float(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=2_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--no-record", action="store_true")
    args = parser.parse_args()
    bytewax = peer_python()
    rates: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp, bench_cluster(Path(tmp), {"taskmanager.numberOfTaskSlots": "1"}) as cluster:
        cluster.start_leader()
        cluster.start_taskmanager()
        cluster.start_taskmanager()
        for _ in range(args.runs):
            rates.setdefault("one bare Python loop (the limit of one core)", []).append(
                rate_of(sys.executable, BARE_LOOP, args.records))
            rates.setdefault("Bytewax 0.21.1, one worker", []).append(rate_of(bytewax, BYTEWAX_FLOW, args.records))
            for p in (1, 2):
                rates.setdefault(f"ha-flink local, p={p}", []).append(args.records / run(ROOT, args.records, p)["net"])
            for p in (1, 2):
                rates.setdefault(f"ha-flink cluster (2 TaskManagers), p={p}", []).append(
                    throughput(cluster, args.records, p))
    bare = statistics.median(rates["one bare Python loop (the limit of one core)"])
    rows = [f"| {name} | {statistics.median(values):,.0f} | {statistics.median(values) / bare:.2f} |"
            for name, values in rates.items()]
    table = "\n".join(["| system | records/s | / bare loop |", "|---|---|---|", *rows])
    notes = (f"{args.records:,} records, median of {args.runs} runs per row, rows alternating run by run. "
             "ha-flink local: records / the job's net runtime; cluster: records / the job's runtime as "
             "`flink run` reports it (bench/runtime.py). Bytewax's source hands out batches of 1000, as "
             "ha-flink's do; its time is `run_main`'s. The bare loop emits the same running counts into a "
             "list it clears every 1000.")
    report("Word count: ha-flink beside Bytewax and a bare loop", "bench/peers.py", table, notes, not args.no_record)


if __name__ == "__main__":
    main()
