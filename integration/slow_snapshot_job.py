"""Numbers at a steady rate through a map whose snapshots take 3 s while a file `slow` exists in the control
folder (it writes `snapshotting` when one starts), into CollectSink; checkpoints every 200 ms; runs until
stopped: `flink run -d -py slow_snapshot_job.py <out-folder> <control-folder>`. A savepoint can so be caught
in flight."""

import sys
import time
from pathlib import Path

from ha_flink.common import WatermarkStrategy
from ha_flink.datastream import StreamExecutionEnvironment
from ha_flink.datastream.connectors.number_seq import RateLimitedNumberSequenceSource
from ha_flink.datastream.functions import CheckpointedFunction, MapFunction
from ha_flink.testing.sinks import CollectSink


class SlowSnapshots(MapFunction, CheckpointedFunction):
    def __init__(self, control: str) -> None:
        self.control = control

    def map(self, value):
        return value

    def initialize_state(self, context) -> None:
        pass

    def snapshot_state(self, context) -> None:
        control = Path(self.control)
        if (control / "slow").exists():
            (control / "snapshotting").write_text(str(context.get_checkpoint_id()))
            time.sleep(3)


if __name__ == "__main__":
    env = StreamExecutionEnvironment.get_execution_environment()
    env.set_parallelism(1)
    env.enable_checkpointing(200)
    (env.from_source(RateLimitedNumberSequenceSource(records_per_second=500), WatermarkStrategy.no_watermarks(),
                     "numbers")
        .map(SlowSnapshots(sys.argv[2]))
        .add_sink(CollectSink(sys.argv[1])))
    env.execute("slow snapshots")
