"""Local execution (`python job.py`, no cluster): throughput of the word-count bench (bounded map -> key_by
-> reduce over 2,000,000 records, 1,000 words) at p=1 and p=2, in this tree and, with `--baseline REV`, in
a git worktree of REV, runs alternating in one invocation so both see the same machine load.

Each run is a fresh process (as a user's `python job.py`); its figures: records / the job's net runtime
(`JobExecutionResult.get_net_runtime()`), and records / the wall time of `env.execute()` (the mini
cluster's start and stop included).

Run: `.venv/bin/python bench/local_runtime.py [--baseline REV] [--records N] [--runs N] [--no-record]`."""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import report, worktree  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]

# Runs in a fresh interpreter with the tree to measure first on the path (before the editable install).
RUNNER = """
import json, sys, time
sys.path.insert(0, sys.argv[1])
from ha_flink.common import WatermarkStrategy
from ha_flink.datastream import SinkFunction, StreamExecutionEnvironment
from ha_flink.datastream.connectors.number_seq import NumberSequenceSource
import ha_flink
assert ha_flink.__file__.startswith(sys.argv[1]), ha_flink.__file__
WORDS = [f"word{i}" for i in range(1000)]
class Discard(SinkFunction):
    def invoke(self, value, context):
        pass
records, parallelism = int(sys.argv[2]), int(sys.argv[3])
env = StreamExecutionEnvironment.get_execution_environment()
env.set_parallelism(parallelism)
(env.from_source(NumberSequenceSource(1, records), WatermarkStrategy.no_watermarks(), "numbers")
    .map(lambda i: (WORDS[i % 1000], 1)).key_by(lambda pair: pair[0])
    .reduce(lambda a, b: (a[0], a[1] + b[1])).add_sink(Discard()))
started = time.monotonic()
result = env.execute("word count throughput")
print(json.dumps({"wall": time.monotonic() - started, "net": result.get_net_runtime() / 1000}))
"""


def run(tree: Path, records: int, parallelism: int) -> dict[str, float]:
    out = subprocess.run([sys.executable, "-c", RUNNER, str(tree), str(records), str(parallelism)],
                         capture_output=True, text=True, timeout=600, cwd=tree)
    if out.returncode != 0:
        raise RuntimeError(f"the run in {tree} failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--baseline", help="a git revision to measure beside this tree")
    parser.add_argument("--records", type=int, default=2_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--no-record", action="store_true")
    args = parser.parse_args()
    with contextlib.ExitStack() as stack:
        trees = {"this tree": ROOT}
        if args.baseline:
            baseline, _ = stack.enter_context(worktree(args.baseline))
            trees = {args.baseline: baseline, **trees}
        figures: dict[tuple[str, int], list[dict[str, float]]] = {}
        for _ in range(args.runs):
            for parallelism in (1, 2):
                for name, tree in trees.items():
                    figures.setdefault((name, parallelism), []).append(run(tree, args.records, parallelism))

    def rate(name: str, parallelism: int, key: str) -> float:
        return args.records / statistics.median(run[key] for run in figures[(name, parallelism)])

    rows = ["| tree | p | records/s (net runtime) | records/s (wall of execute()) | p=2 / p=1 |", "|---|---|---|---|---|"]
    for name in trees:
        for parallelism in (1, 2):
            ratio = f"{rate(name, 2, 'net') / rate(name, 1, 'net'):.2f}" if parallelism == 2 else ""
            rows.append(f"| {name} | {parallelism} | {rate(name, parallelism, 'net'):,.0f} | "
                        f"{rate(name, parallelism, 'wall'):,.0f} | {ratio} |")
    if args.baseline:
        for parallelism in (1, 2):
            rows.append(f"| this tree / {args.baseline} | {parallelism} | "
                        f"{rate('this tree', parallelism, 'net') / rate(args.baseline, parallelism, 'net'):.2f}x | "
                        f"{rate('this tree', parallelism, 'wall') / rate(args.baseline, parallelism, 'wall'):.2f}x | |")
    report("Local execution throughput (word count)", "bench/local_runtime.py", "\n".join(rows),
           f"{args.records:,} records, median of {args.runs} fresh processes per row, runs alternating between trees.",
           not args.no_record)


if __name__ == "__main__":
    main()
