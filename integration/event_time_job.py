"""Event-time counting under failures: records i = 0..n-1 of key `k<i % 7>` at event time
`i * 10 - (i * 7919) % 200` ms (out of order by up to 200 ms, within the 300 ms bound, so none is late) are
counted per key and second twice, by a tumbling event-time window and by a keyed process function with
event-time timers, into the two-phase-commit FileSink (checkpoints every 200 ms):
`flink run -py event_time_job.py <out-dir> <n> <records-per-second> [<source-parallelism>]` (a source of
parallelism 1 emits 0, 1, 2, ... in order: stopped anywhere, it emitted a prefix).

Lines: `window <key> <second> <count>` and `timer <key> <second> <count>`; `expected_lines(n)` gives them."""

from __future__ import annotations

import collections
import sys

from ha_flink.common import Duration, Encoder, Types, WatermarkStrategy
from ha_flink.common.watermark_strategy import TimestampAssigner
from ha_flink.datastream import KeyedProcessFunction, StreamExecutionEnvironment
from ha_flink.datastream.connectors.file_system import BucketAssigner, FileSink
from ha_flink.datastream.connectors.number_seq import RateLimitedNumberSequenceSource
from ha_flink.datastream.functions import AggregateFunction, ProcessWindowFunction
from ha_flink.datastream.state import MapStateDescriptor
from ha_flink.datastream.window import TumblingEventTimeWindows

KEYS = 7


def event(i: int) -> tuple[str, int]:
    return f"k{i % KEYS}", i * 10 - (i * 7919) % 200


def expected_lines(n: int) -> list[str]:
    counts = collections.Counter((key, ts // 1000) for key, ts in map(event, range(n)))
    return sorted(f"{kind} {key} {second} {count}" for (key, second), count in counts.items()
                  for kind in ("window", "timer"))


class EventTime(TimestampAssigner):
    def extract_timestamp(self, value, record_timestamp):
        return value[1]


class Count(AggregateFunction):
    def create_accumulator(self):
        return 0

    def add(self, value, accumulator):
        return accumulator + 1

    def get_result(self, accumulator):
        return accumulator

    def merge(self, acc_a, acc_b):
        return acc_a + acc_b


class Label(ProcessWindowFunction):
    def process(self, key, context, counts):
        for count in counts:
            yield f"window {key} {context.window().start // 1000} {count}"


class PerSecond(KeyedProcessFunction):
    def open(self, runtime_context):
        self.counts = runtime_context.get_map_state(MapStateDescriptor("counts", Types.LONG(), Types.INT()))

    def process_element(self, value, ctx):
        end = value[1] // 1000 * 1000 + 999
        self.counts.put(end, (self.counts.get(end) or 0) + 1)
        ctx.timer_service().register_event_time_timer(end)

    def on_timer(self, timestamp, ctx):
        yield f"timer {ctx.get_current_key()} {timestamp // 1000} {self.counts.get(timestamp)}"
        self.counts.remove(timestamp)


def build(env, out, n, rate, source_parallelism=2):
    env.set_parallelism(2)
    env.enable_checkpointing(200)
    strategy = WatermarkStrategy.for_bounded_out_of_orderness(Duration.of_millis(300)) \
        .with_timestamp_assigner(EventTime())
    events = env.from_source(RateLimitedNumberSequenceSource(0, n - 1, records_per_second=rate),
                             WatermarkStrategy.no_watermarks(), "numbers").set_parallelism(source_parallelism) \
        .map(event).assign_timestamps_and_watermarks(strategy)
    keyed = events.key_by(lambda e: e[0])
    windows = keyed.window(TumblingEventTimeWindows.of(Duration.of_seconds(1))).aggregate(Count(), Label())
    timers = keyed.process(PerSecond())
    sink = FileSink.for_row_format(out, Encoder.simple_string_encoder()) \
        .with_bucket_assigner(BucketAssigner.base_path_bucket_assigner()).build()
    windows.union(timers).sink_to(sink)


if __name__ == "__main__":
    environment = StreamExecutionEnvironment.get_execution_environment()
    build(environment, sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), *map(int, sys.argv[4:5]))
    environment.execute("event-time counts")
