"""A fast source and a slow sink across a network exchange; both write their progress to files:
`flink run -d -py backpressure_job.py <progress-folder>`."""

import sys
import time
from pathlib import Path

from ha_flink.datastream import SinkFunction, SourceFunction, StreamExecutionEnvironment


class Fast(SourceFunction):
    def __init__(self, folder: str) -> None:
        self.folder = folder
        self.running = True

    def run(self, ctx) -> None:
        progress = Path(self.folder) / "emitted"
        n = 0
        while self.running:
            ctx.collect(n)
            n += 1
            if n % 500 == 0:
                progress.write_text(str(n))

    def cancel(self) -> None:
        self.running = False


class Slow(SinkFunction):
    def __init__(self, folder: str) -> None:
        self.folder = folder
        self.count = 0

    def invoke(self, value, context) -> None:
        time.sleep(0.001)
        self.count += 1
        if self.count % 100 == 0:
            (Path(self.folder) / "consumed").write_text(str(self.count))


if __name__ == "__main__":
    folder = sys.argv[1]
    env = StreamExecutionEnvironment.get_execution_environment()
    env.add_source(Fast(folder)).key_by(lambda n: 0).add_sink(Slow(folder))
    env.execute("back-pressure")
