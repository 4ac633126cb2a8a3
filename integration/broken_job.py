"""A job script that fails while building its graph."""

from ha_flink.datastream import StreamExecutionEnvironment

env = StreamExecutionEnvironment.get_execution_environment()
env.from_collection([1, 2, 3]).map(lambda x: x).print()
raise RuntimeError("this script is broken before execute()")
