"""Operator state on a cluster: each map subtask counts its records in operator list state and records in
union list state how many it had counted; a restored subtask emits the union it got back. Fails once at
one number: `flink run -py operator_state_job.py <out-folder> <N> <records-per-second> <fail-at>`."""

import sys

from ha_flink.common import WatermarkStrategy
from ha_flink.datastream import CheckpointedFunction, MapFunction, StreamExecutionEnvironment
from ha_flink.datastream.connectors.number_seq import RateLimitedNumberSequenceSource
from ha_flink.datastream.state import ListStateDescriptor
from ha_flink.testing.functions import FailOnceAt
from ha_flink.testing.sinks import CollectSink


class CountingMap(MapFunction, CheckpointedFunction):
    def initialize_state(self, context):
        store = context.get_operator_state_store()
        self.count_state = store.get_list_state(ListStateDescriptor("count"))
        self.union = store.get_union_list_state(ListStateDescriptor("counts of all subtasks"))
        self.count = sum(self.count_state.get())
        self.restored_union = sorted(self.union.get()) if context.is_restored() else None

    def open(self, runtime_context):
        self.subtask = runtime_context.get_index_of_this_subtask()

    def snapshot_state(self, context):
        self.count_state.update([self.count])
        self.union.update([(self.subtask, self.count)])

    def map(self, value):
        self.count += 1
        if self.restored_union is not None:
            union, self.restored_union = self.restored_union, None
            return ("restored", self.subtask, union)
        return ("count", self.subtask, self.count)


if __name__ == "__main__":
    out, n, rate, fail_at = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
    env = StreamExecutionEnvironment.get_execution_environment()
    env.set_parallelism(2)
    env.enable_checkpointing(200)
    (env.from_source(RateLimitedNumberSequenceSource(1, n, records_per_second=rate),
                     WatermarkStrategy.no_watermarks(), "numbers")
        .map(FailOnceAt(fail_at))
        .map(CountingMap())
        .add_sink(CollectSink(out)))
    env.execute("operator state count")
