"""Builds keyed state of about `megabytes` MB (1,000,000 keys of ~100 bytes), then idles on an unbounded
source so checkpoints and recoveries of that state can be timed:
`flink run -d -py big_state_job.py <megabytes>`."""

import sys

from ha_flink.common import Types, WatermarkStrategy
from ha_flink.datastream import KeyedProcessFunction, StreamExecutionEnvironment
from ha_flink.datastream.connectors.number_seq import RateLimitedNumberSequenceSource
from ha_flink.datastream.state import ValueStateDescriptor


class Remember(KeyedProcessFunction):
    def open(self, runtime_context):
        self.value = runtime_context.get_state(ValueStateDescriptor("payload", Types.STRING()))

    def process_element(self, value, ctx):
        self.value.update("x" * 90 + str(value))
        return []


if __name__ == "__main__":
    keys = int(float(sys.argv[1]) * 10_000)  # ~100 bytes each
    env = StreamExecutionEnvironment.get_execution_environment()
    env.set_parallelism(2)
    env.enable_checkpointing(2000)
    (env.from_source(RateLimitedNumberSequenceSource(0, None, None), WatermarkStrategy.no_watermarks(), "keys")
        .map(lambda n: n % keys)
        .key_by(lambda k: k)
        .process(Remember())
        .add_sink(lambda value, context: None))
    env.execute("big state")
