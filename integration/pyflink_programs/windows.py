"""One job, every window kind of PyFlink's window API over the same events (`key,timestamp_ms,value`),
each into a FileSink folder of its own under the output path."""

import sys

from pyflink.common import Duration, Encoder, Types, WatermarkStrategy
from pyflink.common.watermark_strategy import TimestampAssigner
from pyflink.datastream import StreamExecutionEnvironment
from pyflink.datastream.connectors.file_system import FileSink, FileSource, StreamFormat
from pyflink.datastream.functions import AggregateFunction, ProcessWindowFunction
from pyflink.datastream.window import (
    CountTrigger, EventTimeSessionWindows, GlobalWindows, PurgingTrigger, SlidingEventTimeWindows,
    TumblingEventTimeWindows,
)

EVENT_TYPE = Types.TUPLE([Types.STRING(), Types.LONG(), Types.INT()])


class EventTimestampAssigner(TimestampAssigner):
    def extract_timestamp(self, value, record_timestamp):
        return value[1]


def parse(line):
    key, timestamp, value = line.split(",")
    return key, int(timestamp), int(value)


def read_events(env, path, out_of_orderness_ms):
    strategy = WatermarkStrategy.for_bounded_out_of_orderness(Duration.of_millis(out_of_orderness_ms)) \
        .with_timestamp_assigner(EventTimestampAssigner())
    lines = env.from_source(FileSource.for_record_stream_format(StreamFormat.text_line_format(), path).build(),
                            WatermarkStrategy.no_watermarks(), "events")
    return lines.map(parse, output_type=EVENT_TYPE).assign_timestamps_and_watermarks(strategy)


def write_strings(ds, path):
    ds.map(str, output_type=Types.STRING()).sink_to(
        FileSink.for_row_format(path, Encoder.simple_string_encoder()).build())


class SumAggregate(AggregateFunction):
    def create_accumulator(self):
        return 0

    def add(self, value, accumulator):
        return accumulator + value[2]

    def get_result(self, accumulator):
        return accumulator

    def merge(self, acc_a, acc_b):
        return acc_a + acc_b


class WithWindow(ProcessWindowFunction):
    """(key, window start, window end, count, sum of values)"""

    def process(self, key, context: ProcessWindowFunction.Context, elements):
        values = [e[2] for e in elements]
        yield key, context.window().start, context.window().end, len(values), sum(values)


class WithAggregate(ProcessWindowFunction):
    def process(self, key, context: ProcessWindowFunction.Context, sums):
        for total in sums:
            yield key, context.window().start, context.window().end, total


def main(input_path, output_path):
    env = StreamExecutionEnvironment.get_execution_environment()
    env.set_parallelism(2)
    keyed = read_events(env, input_path, 300).key_by(lambda e: e[0])

    write_strings(keyed.window(TumblingEventTimeWindows.of(Duration.of_seconds(1))).process(WithWindow()),
                  output_path + "/tumbling")
    write_strings(keyed.window(SlidingEventTimeWindows.of(Duration.of_seconds(2), Duration.of_seconds(1)))
                  .aggregate(SumAggregate(), WithAggregate()), output_path + "/sliding")
    write_strings(keyed.window(EventTimeSessionWindows.with_gap(Duration.of_millis(500))).process(WithWindow()),
                  output_path + "/session")
    write_strings(keyed.count_window(3).reduce(lambda a, b: (a[0], max(a[1], b[1]), a[2] + b[2])),
                  output_path + "/count")
    write_strings(keyed.window(GlobalWindows.create()).trigger(PurgingTrigger.of(CountTrigger.of(4)))
                  .reduce(lambda a, b: (a[0], max(a[1], b[1]), a[2] + b[2])), output_path + "/global")
    env.execute("windows")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
