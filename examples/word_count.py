"""Streaming word count, the PyFlink way: run it with `python examples/word_count.py` (local, in this
process) or submit it to a cluster with `flink run -py examples/word_count.py`."""

from ha_flink.common import Types
from ha_flink.datastream import StreamExecutionEnvironment

TEXT = [
    "To be, or not to be, that is the question:",
    "Whether 'tis nobler in the mind to suffer",
    "The slings and arrows of outrageous fortune,",
]


def main() -> None:
    env = StreamExecutionEnvironment.get_execution_environment()
    env.set_parallelism(2)
    (env.from_collection(TEXT, type_info=Types.STRING())
        .flat_map(lambda line: [w.strip(",:'").lower() for w in line.split()], output_type=Types.STRING())
        .map(lambda word: (word, 1), output_type=Types.TUPLE([Types.STRING(), Types.INT()]))
        .key_by(lambda pair: pair[0])
        .reduce(lambda a, b: (a[0], a[1] + b[1]))
        .print())
    env.execute("word count")


if __name__ == "__main__":
    main()
