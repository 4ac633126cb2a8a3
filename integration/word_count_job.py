"""Keyed word count at parallelism 2: `flink run -py word_count_job.py <out-folder> <copies>`."""

import sys

from ha_flink.datastream import StreamExecutionEnvironment
from ha_flink.testing.sinks import CollectSink

WORDS = ["apple", "banana", "cherry", "date", "elder", "fig", "grape"]

if __name__ == "__main__":
    out, copies = sys.argv[1], int(sys.argv[2])
    env = StreamExecutionEnvironment.get_execution_environment()
    env.set_parallelism(2)
    lines = [" ".join(WORDS[: i % len(WORDS) + 1]) for i in range(copies)]
    (env.from_collection(lines)
        .flat_map(lambda line: line.split())
        .map(lambda w: (w, 1))
        .key_by(lambda t: t[0])
        .reduce(lambda a, b: (a[0], a[1] + b[1]))
        .add_sink(CollectSink(out)))
    env.execute("word count")
