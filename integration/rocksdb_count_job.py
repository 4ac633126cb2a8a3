"""Keyed counting over many keys in the rocksdb state backend with incremental checkpoints every 500 ms:
numbers 1..N counted per n % K; a key's count is emitted once it reaches N / K (so a count replayed twice
would show as more); fails once at one number:
`flink run -py rocksdb_count_job.py <out-folder> <N> <K> <records-per-second> <fail-at or -1>`."""

import sys

from ha_flink.common import Configuration, WatermarkStrategy
from ha_flink.datastream import KeyedProcessFunction, StreamExecutionEnvironment
from ha_flink.datastream.connectors.number_seq import RateLimitedNumberSequenceSource
from ha_flink.datastream.state import ValueStateDescriptor
from ha_flink.testing.functions import FailOnceAt
from ha_flink.testing.sinks import CollectSink


class CountPerKey(KeyedProcessFunction):
    def __init__(self, report_at):
        self.report_at = report_at

    def open(self, runtime_context):
        self.count = runtime_context.get_state(ValueStateDescriptor("count"))

    def process_element(self, value, ctx):
        count = (self.count.value() or 0) + 1
        self.count.update(count)
        if count >= self.report_at:
            yield (ctx.get_current_key(), count)


if __name__ == "__main__":
    out, n, keys, rate, fail_at = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5])
    config = Configuration()
    config.set_string("state.backend.type", "rocksdb")
    config.set_string("state.backend.incremental", "true")
    env = StreamExecutionEnvironment.get_execution_environment(config)
    env.set_parallelism(2)
    env.enable_checkpointing(500)
    (env.from_source(RateLimitedNumberSequenceSource(1, n, records_per_second=rate),
                     WatermarkStrategy.no_watermarks(), "numbers")
        .map(FailOnceAt(fail_at))
        .key_by(lambda v: v % keys)
        .process(CountPerKey(n // keys))
        .add_sink(CollectSink(out)))
    env.execute("rocksdb count")
