"""Keyed counting with checkpoints every 200 ms: numbers 1..N at a fixed rate, counted per n % 10 into
CollectSink; optionally fails once (first attempt) at one number:
`flink run -py checkpointed_count_job.py <out-folder> <N> <records-per-second> <fail-at or -1> [parallelism]`."""

import sys

from ha_flink.common import WatermarkStrategy
from ha_flink.datastream import StreamExecutionEnvironment
from ha_flink.datastream.connectors.number_seq import RateLimitedNumberSequenceSource
from ha_flink.testing.functions import FailOnceAt
from ha_flink.testing.sinks import CollectSink


if __name__ == "__main__":
    out, n, rate, fail_at = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
    env = StreamExecutionEnvironment.get_execution_environment()
    env.set_parallelism(int(sys.argv[5]) if len(sys.argv) > 5 else 2)
    env.enable_checkpointing(200)
    (env.from_source(RateLimitedNumberSequenceSource(1, n, records_per_second=rate),
                     WatermarkStrategy.no_watermarks(), "numbers")
        .map(FailOnceAt(fail_at))
        .map(lambda v: (v % 10, 1))
        .key_by(lambda t: t[0])
        .reduce(lambda a, b: (a[0], a[1] + b[1]))
        .add_sink(CollectSink(out)))
    env.execute("checkpointed count")
