"""Process functions in PyFlink's idiom over events (`key,timestamp_ms,value` lines):
- keyed state as in PyFlink's state docs: per key a ValueState running sum, a MapState of the values seen,
  a ListState of the last three values; each record emits (key, sum, distinct values, last three);
- the process function example of Flink's docs (CountWithTimeoutFunction): counts records per key and
  emits (key, count, timer time) when a key saw no record for 1 s of event time.
Each result goes to a FileSink folder under the output path ("state", "timers")."""

import sys

from pyflink.common import Duration, Encoder, Types, WatermarkStrategy
from pyflink.common.watermark_strategy import TimestampAssigner
from pyflink.datastream import StreamExecutionEnvironment
from pyflink.datastream.connectors.file_system import FileSink, FileSource, StreamFormat
from pyflink.datastream.functions import KeyedProcessFunction, RuntimeContext
from pyflink.datastream.state import ListStateDescriptor, MapStateDescriptor, ValueStateDescriptor

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


class Summarize(KeyedProcessFunction):
    def open(self, runtime_context: RuntimeContext):
        self.total = runtime_context.get_state(ValueStateDescriptor("total", Types.LONG()))
        self.seen = runtime_context.get_map_state(MapStateDescriptor("seen", Types.INT(), Types.INT()))
        self.recent = runtime_context.get_list_state(ListStateDescriptor("recent", Types.INT()))

    def process_element(self, value, ctx):
        total = (self.total.value() or 0) + value[2]
        self.total.update(total)
        self.seen.put(value[2], (self.seen.get(value[2]) or 0) + 1)
        recent = (list(self.recent.get()) + [value[2]])[-3:]
        self.recent.update(recent)
        yield ctx.get_current_key(), total, len(list(self.seen.keys())), tuple(recent)


TIMEOUT_MS = 1000


class CountWithTimeoutFunction(KeyedProcessFunction):
    def open(self, runtime_context: RuntimeContext):
        self.state = runtime_context.get_state(ValueStateDescriptor(
            "my_state", Types.TUPLE([Types.STRING(), Types.LONG(), Types.LONG()])))

    def process_element(self, value, ctx: KeyedProcessFunction.Context):
        current = self.state.value()
        if current is None:
            current = (value[0], 0, 0)
        current = (current[0], current[1] + 1, ctx.timestamp())
        self.state.update(current)
        ctx.timer_service().register_event_time_timer(current[2] + TIMEOUT_MS)

    def on_timer(self, timestamp, ctx: KeyedProcessFunction.OnTimerContext):
        result = self.state.value()
        if timestamp == result[2] + TIMEOUT_MS:
            yield result[0], result[1], timestamp


def main(input_path, output_path):
    env = StreamExecutionEnvironment.get_execution_environment()
    env.set_parallelism(2)
    keyed = read_events(env, input_path, 200).key_by(lambda e: e[0])
    write_strings(keyed.process(Summarize()), output_path + "/state")
    write_strings(keyed.process(CountWithTimeoutFunction()), output_path + "/timers")
    env.execute("process functions")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
