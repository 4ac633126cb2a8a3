"""Keyed word count at parallelism 2: `flink run -py word_count_job.py <out-folder> <copies>`."""

import collections
import sys

from ha_flink.datastream import StreamExecutionEnvironment
from ha_flink.testing.sinks import CollectSink

WORDS = ["apple", "banana", "cherry", "date", "elder", "fig", "grape"]


def input_lines(copies):
    return [" ".join(WORDS[: i % len(WORDS) + 1]) for i in range(copies)]


def expected_counts(copies):
    """What the job must count for `copies` (the tests' expectation, from the input itself)."""
    return dict(collections.Counter(word for line in input_lines(copies) for word in line.split()))


if __name__ == "__main__":
    out, copies = sys.argv[1], int(sys.argv[2])
    env = StreamExecutionEnvironment.get_execution_environment()
    env.set_parallelism(2)
    (env.from_collection(input_lines(copies))
        .flat_map(lambda line: line.split())
        .map(lambda w: (w, 1))
        .key_by(lambda t: t[0])
        .reduce(lambda a, b: (a[0], a[1] + b[1]))
        .add_sink(CollectSink(out)))
    env.execute("word count")
