"""Builds keyed state of about `megabytes` MB (1,000,000 keys of ~100 bytes per 100 MB), then idles on an
unbounded source so checkpoints and recoveries of that state can be timed; with `changes-per-second`,
after the state is built only that many keys per second change (an incremental checkpoint's workload):
`flink run -d -py big_state_job.py <megabytes> [hashmap|rocksdb] [incremental: true|false]
[changes-per-second]`."""

import sys
import time

from ha_flink.common import Configuration, Types, WatermarkStrategy
from ha_flink.datastream import FlatMapFunction, KeyedProcessFunction, StreamExecutionEnvironment
from ha_flink.datastream.connectors.number_seq import RateLimitedNumberSequenceSource
from ha_flink.datastream.state import ValueStateDescriptor


class Remember(KeyedProcessFunction):
    def open(self, runtime_context):
        self.value = runtime_context.get_state(ValueStateDescriptor("payload", Types.STRING()))

    def process_element(self, value, ctx):
        self.value.update("x" * 90 + str(value))
        return []


class Keys(FlatMapFunction):
    """Every key once (the build-up), then keys spread over the whole range at `changes` per second: a
    token bucket lets that many through and drops the rest of the source's numbers (sleeping here would
    hold a whole batch, and the checkpoint barrier behind it)."""

    def __init__(self, keys, changes):
        self.keys = keys
        self.changes = changes

    def open(self, runtime_context):
        self.rate = self.changes / runtime_context.get_number_of_parallel_subtasks()
        self.tokens = 0.0
        self.last = time.monotonic()

    def flat_map(self, n):
        if n < self.keys or not self.changes:
            yield n % self.keys
            return
        now = time.monotonic()
        self.tokens = min(self.tokens + (now - self.last) * self.rate, self.rate)
        self.last = now
        if self.tokens >= 1:
            self.tokens -= 1
            yield (n * 7919) % self.keys


if __name__ == "__main__":
    keys = int(float(sys.argv[1]) * 10_000)  # ~100 bytes each
    config = Configuration()
    if len(sys.argv) > 2:
        config.set_string("state.backend.type", sys.argv[2])
    if len(sys.argv) > 3:
        config.set_string("state.backend.incremental", sys.argv[3])
    changes = float(sys.argv[4]) if len(sys.argv) > 4 else 0.0
    env = StreamExecutionEnvironment.get_execution_environment(config)
    env.set_parallelism(2)
    env.enable_checkpointing(2000)
    (env.from_source(RateLimitedNumberSequenceSource(0, None, None), WatermarkStrategy.no_watermarks(), "keys")
        .flat_map(Keys(keys, changes))
        .key_by(lambda k: k)
        .process(Remember())
        .add_sink(lambda value, context: None))
    env.execute("big state")
