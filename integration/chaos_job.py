"""The chaos suite's exactly-once job: numbers from `start` on (unbounded, at a fixed rate; subtask i of p
emits start+i, start+i+p, ...) keyed by n % KEYS, a keyed running count in ValueState, and one line per
number, `<n> <key> <count of key so far>`, into the two-phase-commit FileSink; checkpoints every 200 ms.
The run ends with `flink stop --savepointPath`, which commits what the final savepoint covers.
`flink run -d -py chaos_job.py <out-dir> <records-per-second> [parallelism]`.

`ha_flink.testing.chaos.checker.check_output` reads the committed lines back."""

from __future__ import annotations

import sys

from ha_flink.common import Encoder, Types, WatermarkStrategy
from ha_flink.datastream import KeyedProcessFunction, StreamExecutionEnvironment
from ha_flink.datastream.connectors.file_system import BucketAssigner, FileSink
from ha_flink.datastream.connectors.number_seq import RateLimitedNumberSequenceSource
from ha_flink.datastream.state import ValueStateDescriptor

KEYS = 17
START = 1


class RunningCount(KeyedProcessFunction):
    def open(self, runtime_context):
        self.count = runtime_context.get_state(ValueStateDescriptor("count", Types.LONG()))

    def process_element(self, value, ctx):
        count = (self.count.value() or 0) + 1
        self.count.update(count)
        yield f"{value} {ctx.get_current_key()} {count}"


def build(env, out, rate, parallelism):
    env.set_parallelism(parallelism)
    env.enable_checkpointing(200)
    sink = FileSink.for_row_format(out, Encoder.simple_string_encoder()) \
        .with_bucket_assigner(BucketAssigner.base_path_bucket_assigner()).build()
    (env.from_source(RateLimitedNumberSequenceSource(START, None, records_per_second=rate),
                     WatermarkStrategy.no_watermarks(), "numbers").uid("numbers")
        .key_by(lambda n: n % KEYS)
        .process(RunningCount()).uid("running-count")
        .sink_to(sink).uid("file-sink"))


if __name__ == "__main__":
    environment = StreamExecutionEnvironment.get_execution_environment()
    build(environment, sys.argv[1], float(sys.argv[2]), int(sys.argv[3]) if len(sys.argv) > 3 else 2)
    environment.execute("chaos running count")
