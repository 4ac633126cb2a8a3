"""The DataStream API, shaped like `pyflink.datastream`: a PyFlink program ports by changing its import
root from `pyflink.` to `ha_flink.`."""

from __future__ import annotations

from ha_flink.datastream.data_stream import DataStream, DataStreamSink, KeyedStream
from ha_flink.datastream.functions import (
    AggregateFunction, FilterFunction, FlatMapFunction, KeyedProcessFunction, KeySelector, MapFunction,
    ProcessFunction, ReduceFunction, RuntimeContext, SinkFunction, SourceFunction, TimeDomain, TimerService,
)
from ha_flink.datastream.stream_execution_environment import (
    JobClient, RuntimeExecutionMode, StreamExecutionEnvironment,
)

__all__ = [
    "AggregateFunction", "DataStream", "DataStreamSink", "FilterFunction", "FlatMapFunction", "JobClient",
    "KeySelector", "KeyedProcessFunction", "KeyedStream", "MapFunction", "ProcessFunction", "ReduceFunction",
    "RuntimeContext", "RuntimeExecutionMode", "SinkFunction", "SourceFunction", "StreamExecutionEnvironment",
    "TimeDomain", "TimerService",
]
