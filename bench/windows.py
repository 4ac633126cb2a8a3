"""Figures of the window operator (issue 7, item 2), in the local mini cluster (this process, one thread per
subtask, as `python job.py` runs a job):

1. a tumbling event-time window count over 2,000,000 records at parallelism 2: a parallel source of
   numbers n (event time n ms, key n % 1000) -> assign_timestamps_and_watermarks(bounded out-of-orderness
   100 ms) -> key_by -> TumblingEventTimeWindows -> aggregate(count) or reduce -> a discarding sink
   (goal >= 200,000 records/s), with 10 s windows (10 records per key and window) and with 1 s windows
   (the worst case: every record opens, fires and drops a window of its own);
2. for reference, the general path (every element through the trigger and the state API), on the heap and
   on the rocksdb backend, over fewer records.

With `--against REV`, instead: the fast-path figures of this tree and of commit REV (checked out into a
temporary worktree) measured in the same run, alternating, each in a fresh process, and their ratios (this
tree / REV): whether a change made the window path slower, with the machine's noise shared by both.

Run: `.venv/bin/python bench/windows.py [--records N] [--runs N] [--no-record] [--against REV]`."""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import report, worktree  # noqa: E402
from ha_flink.common import Configuration, Duration, Time, WatermarkStrategy  # noqa: E402
from ha_flink.datastream import AggregateFunction, SinkFunction, StreamExecutionEnvironment  # noqa: E402
from ha_flink.datastream.connectors.number_seq import RateLimitedNumberSequenceSource  # noqa: E402
from ha_flink.datastream.window import EventTimeTrigger, TumblingEventTimeWindows  # noqa: E402

KEYS = 1000


class Discard(SinkFunction):
    def invoke(self, value, context):
        pass


class ItsOwnTime:
    def extract_timestamp(self, value, record_timestamp):
        return value


class Count(AggregateFunction):
    def create_accumulator(self):
        return 0

    def add(self, value, accumulator):
        return accumulator + 1

    def get_result(self, accumulator):
        return accumulator


class GeneralPathTrigger(EventTimeTrigger):
    """EventTimeTrigger, but not the class itself: the operator takes its general path."""


def run(records: int, kind: str, window_ms: int, backend: str = "hashmap", general: bool = False) -> float:
    """Records per second of one run (wall time of `execute`, job set-up included)."""
    config = Configuration()
    config.set_string("state.backend.type", backend)
    if backend == "rocksdb":
        config.set_string("state.backend.rocksdb.localdir", tempfile.mkdtemp(prefix="bench-windows-"))
    env = StreamExecutionEnvironment.get_execution_environment(config).set_parallelism(2)
    strategy = WatermarkStrategy.for_bounded_out_of_orderness(Duration.of_millis(100)) \
        .with_timestamp_assigner(ItsOwnTime())
    windows = (env.from_source(RateLimitedNumberSequenceSource(0, records - 1), strategy, "numbers")
               .key_by(lambda n: n % KEYS).window(TumblingEventTimeWindows.of(Time.milliseconds(window_ms))))
    if general:
        windows = windows.trigger(GeneralPathTrigger())
    result = windows.aggregate(Count()) if kind == "aggregate" else windows.reduce(lambda a, b: a + b)
    result.add_sink(Discard())
    started = time.perf_counter()
    env.execute(f"window {kind} throughput")
    return records / (time.perf_counter() - started)


def rate_spread(rates: list[float]) -> str:
    return (f"median {statistics.median(rates):,.0f} records/s, min {min(rates):,.0f}, max {max(rates):,.0f} "
            f"(n={len(rates)})")


ROOT = Path(__file__).resolve().parents[1]


def run_in(tree: Path, records: int, kind: str, window_ms: int) -> float:
    """One run of `run()` as the bench module of `tree` has it, in a process of its own."""
    code = (f"import sys; sys.path.insert(0, {str(tree)!r}); from bench.windows import run; "
            f"print(run({records}, {kind!r}, {window_ms}))")
    done = subprocess.run([sys.executable, "-c", code], cwd=tree, capture_output=True, text=True, timeout=900,
                          check=True)
    return float(done.stdout.strip().splitlines()[-1])


def against(rev: str, records: int, runs: int, keep: bool) -> None:
    with worktree(rev) as (base, commit):
        rows = []
        for window_ms in (10_000, 1000):
            for kind in ("aggregate", "reduce"):
                rates: dict[str, list[float]] = {"this": [], "base": []}
                for i in range(runs):  # alternate which goes first, so drift of the machine hits both
                    order = [("this", ROOT), ("base", base)] if i % 2 == 0 else [("base", base), ("this", ROOT)]
                    for name, tree in order:
                        rates[name].append(run_in(tree, records, kind, window_ms))
                this, then = statistics.median(rates["this"]), statistics.median(rates["base"])
                print(window_ms, kind, f"this {this:,.0f}", f"{commit} {then:,.0f}", f"ratio {this / then:.2f}",
                      flush=True)
                rows.append((f"tumbling {window_ms // 1000} s event-time window count ({kind}), {records:,} records, "
                             f"p=2", f"{this:,.0f}", f"{then:,.0f}", f"{this / then:.2f}"))
        table = "\n".join([f"| figure | this tree, records/s | {commit}, records/s | ratio |", "|---|---|---|---|",
                           *(f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows)])
        report(f"Windows: this tree against {commit}", f"bench/windows.py --against {rev}", table,
               f"Medians of {runs} runs each, alternating between the two trees, each run a fresh process; a "
               "ratio of 1.00 is no change (the runs' own spread on this machine is about 10-20%).", keep)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=2_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--no-record", action="store_true")
    parser.add_argument("--against", metavar="REV", help="compare with commit REV in the same run")
    args = parser.parse_args()
    if args.against:
        against(args.against, args.records, args.runs, not args.no_record)
        return

    rows = []
    for window_ms in (10_000, 1000):
        for kind in ("aggregate", "reduce"):
            rates = [run(args.records, kind, window_ms) for _ in range(args.runs)]
            print(window_ms, kind, [f"{r:,.0f}" for r in rates], flush=True)
            per_window = window_ms // KEYS
            rows.append((f"tumbling {window_ms // 1000} s event-time window count ({kind}), {args.records:,} records, "
                         f"p=2, {per_window} record{'s' if per_window > 1 else ''} per key and window",
                         rate_spread(rates), ">= 200,000 records/s"))
    small = max(args.records // 10, 1000)
    for backend in ("hashmap", "rocksdb"):
        rates = [run(small, "aggregate", 10_000, backend, general=True) for _ in range(args.runs)]
        print("general", backend, [f"{r:,.0f}" for r in rates], flush=True)
        rows.append((f"10 s windows through the general path (trigger calls, state API), {small:,} records, "
                     f"{backend}", f"median {statistics.median(rates):,.0f} records/s", "record"))
    table = "\n".join(["| figure | measured | goal |", "|---|---|---|",
                       *(f"| {name} | {value} | {goal} |" for name, value, goal in rows)])
    report("Windows: tumbling event-time window throughput", "bench/windows.py", table,
           f"Local mini cluster (one process, a thread per subtask, sharing one GIL). Source: numbers n from 2 "
           f"parallel subtasks, event time n ms, key n % {KEYS}: a 10 s window of a key holds 10 records, a 1 s "
           f"one a single record ({args.records:,} window firings per run). Rates are records "
           "over the wall time of `env.execute()` (job set-up and the final firings included). The fast path "
           "(aligned event-time windows, default trigger, no evictor, heap state) works on the heap backend's "
           "dicts directly; the general path calls the trigger and the state API per element.",
           not args.no_record)


if __name__ == "__main__":
    main()
