"""An unbounded streaming word count with exactly-once checkpoints: lines of text arrive at a steady rate
(a rate-limited number sequence picks them), are split into words and counted per word; each updated count
goes to the TaskManagers' stdout (their `.out` files in log/).

On a cluster it runs until cancelled: `bin/flink run -d -py examples/streaming_word_count.py` (what
`make run` submits), then `bin/flink list` and `bin/flink cancel <job id>`. Kill the leading JobManager
(`kill <pid>`, pids in /tmp/flink-$USER-standalonesession.pid) and the standby takes over the job from its
latest checkpoint."""

from ha_flink.common import Types, WatermarkStrategy
from ha_flink.datastream import StreamExecutionEnvironment
from ha_flink.datastream.connectors.number_seq import RateLimitedNumberSequenceSource

LINES = [
    "To be, or not to be, that is the question:",
    "Whether 'tis nobler in the mind to suffer",
    "The slings and arrows of outrageous fortune,",
    "Or to take arms against a sea of troubles",
    "And by opposing end them.",
]


def main() -> None:
    env = StreamExecutionEnvironment.get_execution_environment()
    env.set_parallelism(2)
    env.enable_checkpointing(5000)
    lines = env.from_source(RateLimitedNumberSequenceSource(records_per_second=5),
                            WatermarkStrategy.no_watermarks(), "lines")
    (lines.map(lambda n: LINES[n % len(LINES)], output_type=Types.STRING())
        .flat_map(lambda line: [w.strip(",:.'").lower() for w in line.split()], output_type=Types.STRING())
        .map(lambda word: (word, 1), output_type=Types.TUPLE([Types.STRING(), Types.INT()]))
        .key_by(lambda pair: pair[0])
        .reduce(lambda a, b: (a[0], a[1] + b[1]))
        .print())
    env.execute("streaming word count")


if __name__ == "__main__":
    main()
