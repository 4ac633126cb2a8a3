"""Bounded map -> key_by -> reduce over N generated records with 1,000 distinct words:
`flink run -py throughput_job.py <records> <parallelism> [checkpoint-interval-ms]`."""

import sys

from ha_flink.common import WatermarkStrategy
from ha_flink.datastream import SinkFunction, StreamExecutionEnvironment
from ha_flink.datastream.connectors.number_seq import NumberSequenceSource

WORDS = [f"word{i}" for i in range(1000)]


class Discard(SinkFunction):
    def invoke(self, value, context):
        pass


if __name__ == "__main__":
    records, parallelism = int(sys.argv[1]), int(sys.argv[2])
    env = StreamExecutionEnvironment.get_execution_environment()
    env.set_parallelism(parallelism)
    if len(sys.argv) > 3 and int(sys.argv[3]) > 0:
        env.enable_checkpointing(int(sys.argv[3]))
    (env.from_source(NumberSequenceSource(1, records), WatermarkStrategy.no_watermarks(), "numbers")
        .map(lambda i: (WORDS[i % 1000], 1))
        .key_by(lambda pair: pair[0])
        .reduce(lambda a, b: (a[0], a[1] + b[1]))
        .add_sink(Discard()))
    env.execute("word count throughput")
