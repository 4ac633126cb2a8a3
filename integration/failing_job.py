"""A job whose map always fails: `flink run -py failing_job.py`."""

from ha_flink.datastream import MapFunction, StreamExecutionEnvironment


class Explode(MapFunction):
    def map(self, value):
        raise ValueError(f"cannot handle {value}")


if __name__ == "__main__":
    env = StreamExecutionEnvironment.get_execution_environment()
    env.from_collection([1, 2, 3]).map(Explode()).print()
    env.execute("always failing")
