"""Numbers 1..N through a map that may fail once into the two-phase-commit FileSink, checkpoints every
200 ms: `flink run -py exactly_once_file_job.py <out-dir> <N> <records-per-second> <fail-at or -1>`."""

import sys

from ha_flink.common import Encoder, WatermarkStrategy
from ha_flink.datastream import StreamExecutionEnvironment
from ha_flink.datastream.connectors.file_system import BucketAssigner, FileSink
from ha_flink.datastream.connectors.number_seq import RateLimitedNumberSequenceSource
from ha_flink.testing.functions import FailOnceAt


def build(env, out, n, rate, fail_at):
    env.set_parallelism(2)
    env.enable_checkpointing(200)
    sink = FileSink.for_row_format(out, Encoder.simple_string_encoder()) \
        .with_bucket_assigner(BucketAssigner.base_path_bucket_assigner()).build()
    (env.from_source(RateLimitedNumberSequenceSource(1, n, records_per_second=rate),
                     WatermarkStrategy.no_watermarks(), "numbers")
        .map(FailOnceAt(fail_at))
        .sink_to(sink))


if __name__ == "__main__":
    environment = StreamExecutionEnvironment.get_execution_environment()
    build(environment, sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4]))
    environment.execute("exactly-once file output")
