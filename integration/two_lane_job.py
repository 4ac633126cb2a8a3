"""Two parallel lanes, all forward (each lane its own pipelined region); the map of lane 2 fails once, on
its first attempt, unless `steady` is given: `flink run -d -py two_lane_job.py <out-folder> [steady]`."""

import sys

from ha_flink.common import WatermarkStrategy
from ha_flink.datastream import MapFunction, StreamExecutionEnvironment
from ha_flink.datastream.connectors.number_seq import RateLimitedNumberSequenceSource
from ha_flink.testing.sinks import CollectSink


class FailOnceOnLaneTwo(MapFunction):
    def __init__(self, fail: bool):
        self.fail = fail

    def open(self, runtime_context):
        self.lane = runtime_context.get_index_of_this_subtask()
        self.attempt = runtime_context.get_attempt_number()
        self.seen = 0

    def map(self, value):
        self.seen += 1
        if self.fail and self.lane == 1 and self.attempt == 0 and self.seen > 100:
            raise RuntimeError("lane 2 fails on its first attempt")
        return (self.lane, self.attempt, value)


if __name__ == "__main__":
    env = StreamExecutionEnvironment.get_execution_environment()
    env.set_parallelism(2)
    (env.from_source(RateLimitedNumberSequenceSource(records_per_second=400), WatermarkStrategy.no_watermarks(),
                     "numbers")
        .map(FailOnceOnLaneTwo(fail=sys.argv[2:] != ["steady"]))
        .add_sink(CollectSink(sys.argv[1])))
    env.execute("two lanes")
