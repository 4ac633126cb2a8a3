"""The scale-out bench's job (bench/scale.py): numbers at a low steady rate -> key_by -> a count per key in
keyed ValueState (small state: `keys` keys in all) -> a sink that discards, at the given parallelism, with
checkpoints every `interval-ms` (0: none); unbounded, it runs until cancelled:
`flink run -d -py scale_job.py <parallelism> <interval-ms> [records-per-second] [keys]`."""

import sys

from ha_flink.common import Types, WatermarkStrategy
from ha_flink.datastream import KeyedProcessFunction, SinkFunction, StreamExecutionEnvironment
from ha_flink.datastream.connectors.number_seq import RateLimitedNumberSequenceSource
from ha_flink.datastream.state import ValueStateDescriptor


class Count(KeyedProcessFunction):
    def open(self, runtime_context):
        self.count = runtime_context.get_state(ValueStateDescriptor("count", Types.LONG()))

    def process_element(self, value, ctx):
        count = (self.count.value() or 0) + 1
        self.count.update(count)
        yield ctx.get_current_key(), count


class Discard(SinkFunction):
    def invoke(self, value, context):
        pass


if __name__ == "__main__":
    parallelism, interval = int(sys.argv[1]), int(sys.argv[2])
    rate = float(sys.argv[3]) if len(sys.argv) > 3 else 1000.0
    keys = int(sys.argv[4]) if len(sys.argv) > 4 else 1000
    env = StreamExecutionEnvironment.get_execution_environment()
    env.set_parallelism(parallelism)
    if interval > 0:
        env.enable_checkpointing(interval)
    (env.from_source(RateLimitedNumberSequenceSource(records_per_second=rate), WatermarkStrategy.no_watermarks(),
                     "numbers")
        .key_by(lambda n: n % keys)
        .process(Count())
        .add_sink(Discard()))
    env.execute(f"scale p={parallelism}")
