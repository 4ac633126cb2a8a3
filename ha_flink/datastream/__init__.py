"""The DataStream API, shaped like `pyflink.datastream`: a PyFlink program ports by changing its import
root from `pyflink.` to `ha_flink.`.

Names are resolved on first use (PEP 562): the runtime imports `ha_flink.datastream.functions` and
`.state`, and the API modules import the runtime, so eager imports here would be circular."""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "DataStream": "data_stream", "DataStreamSink": "data_stream", "KeyedStream": "data_stream",
    "ConnectedStreams": "data_stream", "BroadcastStream": "data_stream", "BroadcastConnectedStream": "data_stream",
    "IntervalJoin": "data_stream", "IntervalJoined": "data_stream", "OutputTag": "output_tag",
    "CoMapFunction": "functions", "CoFlatMapFunction": "functions", "CoProcessFunction": "functions",
    "KeyedCoProcessFunction": "functions", "BroadcastProcessFunction": "functions",
    "KeyedBroadcastProcessFunction": "functions", "ProcessJoinFunction": "functions",
    "AggregateFunction": "functions", "FilterFunction": "functions", "FlatMapFunction": "functions",
    "CheckpointedFunction": "functions", "FunctionInitializationContext": "functions",
    "FunctionSnapshotContext": "functions",
    "KeyedProcessFunction": "functions", "KeySelector": "functions", "MapFunction": "functions",
    "ProcessFunction": "functions", "ReduceFunction": "functions", "RuntimeContext": "functions",
    "SinkFunction": "functions", "SourceFunction": "functions", "TimeDomain": "functions",
    "TimerService": "functions",
    "WindowFunction": "functions", "AllWindowFunction": "functions", "ProcessWindowFunction": "functions",
    "ProcessAllWindowFunction": "functions",
    "WindowedStream": "windowed_stream", "AllWindowedStream": "windowed_stream",
    **{name: "window" for name in (
        "Window", "TimeWindow", "CountWindow", "GlobalWindow", "WindowAssigner", "MergingWindowAssigner",
        "TriggerResult", "Trigger", "TimeWindowSerializer", "CountWindowSerializer")},
    "JobClient": "stream_execution_environment", "RuntimeExecutionMode": "stream_execution_environment",
    "CheckpointingMode": "stream_execution_environment",
    "StreamExecutionEnvironment": "stream_execution_environment",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'ha_flink.datastream' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"ha_flink.datastream.{module}"), name)
    globals()[name] = value
    return value
