"""An unbounded job: numbers at a steady rate, keyed by parity, into CollectSink; runs until cancelled.
`flink run -d -py unbounded_job.py <out-folder>`."""

import sys

from ha_flink.common import WatermarkStrategy
from ha_flink.datastream import StreamExecutionEnvironment
from ha_flink.datastream.connectors.number_seq import RateLimitedNumberSequenceSource
from ha_flink.testing.sinks import CollectSink

if __name__ == "__main__":
    env = StreamExecutionEnvironment.get_execution_environment()
    env.set_parallelism(2)
    (env.from_source(RateLimitedNumberSequenceSource(records_per_second=200), WatermarkStrategy.no_watermarks(),
                     "numbers")
        .key_by(lambda n: n % 2)
        .map(lambda n: n)
        .add_sink(CollectSink(sys.argv[1])))
    env.execute("unbounded numbers")
