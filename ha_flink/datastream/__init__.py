"""The DataStream API, shaped like `pyflink.datastream`: a PyFlink program ports by changing its import
root from `pyflink.` to `ha_flink.`.

The function interfaces, state descriptors, windows and `OutputTag` are defined in `ha_flink.core` (the
runtime is written against them) and re-exported here and under PyFlink's module names."""

from __future__ import annotations

from ha_flink.datastream.async_data_stream import AsyncDataStream  # noqa: F401
from ha_flink.datastream.checkpoint_config import CheckpointConfig  # noqa: F401
from ha_flink.datastream.checkpoint_storage import (  # noqa: F401
    CheckpointStorage, FileSystemCheckpointStorage, JobManagerCheckpointStorage,
)
from ha_flink.datastream.slot_sharing_group import MemorySize, SlotSharingGroup  # noqa: F401
from ha_flink.datastream.state_backend import (  # noqa: F401
    EmbeddedRocksDBStateBackend, HashMapStateBackend, PredefinedOptions, StateBackend,
)
from ha_flink.datastream.externalized_checkpoint_retention import ExternalizedCheckpointRetention  # noqa: F401
from ha_flink.datastream.data_stream import (  # noqa: F401
    BroadcastConnectedStream, BroadcastStream, ConnectedStreams, DataStream, DataStreamSink, IntervalJoin, IntervalJoined, KeyedStream,
)
from ha_flink.datastream.functions import (  # noqa: F401
    AsyncFunction, AsyncRetryPredicate, AsyncRetryStrategy,
    AggregateFunction, AllWindowFunction, BroadcastProcessFunction, CheckpointedFunction, CoFlatMapFunction, CoMapFunction, CoProcessFunction, FilterFunction, FlatMapFunction, FunctionInitializationContext, FunctionSnapshotContext, KeySelector, KeyedBroadcastProcessFunction, KeyedCoProcessFunction, KeyedProcessFunction, MapFunction, Partitioner, ProcessAllWindowFunction, ProcessFunction, ProcessJoinFunction, ProcessWindowFunction, ReduceFunction, RuntimeContext, SinkFunction, SourceFunction, TimeDomain, TimerService, WindowFunction,
)
from ha_flink.datastream.output_tag import (  # noqa: F401
    OutputTag,
)
from ha_flink.datastream.stream_execution_environment import (  # noqa: F401
    CheckpointingMode, JobClient, RuntimeExecutionMode, StreamExecutionEnvironment,
)
from ha_flink.datastream.window import (  # noqa: F401
    CountWindow, CountWindowSerializer, GlobalWindow, MergingWindowAssigner, TimeWindow, TimeWindowSerializer, Trigger, TriggerResult, Window, WindowAssigner,
)
from ha_flink.datastream.windowed_stream import (  # noqa: F401
    AllWindowedStream, WindowedStream,
)

__all__ = [
    "AsyncDataStream",
    "AsyncFunction",
    "AsyncRetryPredicate",
    "AsyncRetryStrategy",
    "CheckpointStorage",
    "FileSystemCheckpointStorage",
    "JobManagerCheckpointStorage",
    "MemorySize",
    "SlotSharingGroup",
    "EmbeddedRocksDBStateBackend",
    "HashMapStateBackend",
    "PredefinedOptions",
    "StateBackend",
    "Partitioner",
    "ExternalizedCheckpointRetention",
    "AggregateFunction",
    "AllWindowFunction",
    "AllWindowedStream",
    "BroadcastConnectedStream",
    "BroadcastProcessFunction",
    "BroadcastStream",
    "CheckpointConfig",
    "CheckpointedFunction",
    "CheckpointingMode",
    "CoFlatMapFunction",
    "CoMapFunction",
    "CoProcessFunction",
    "ConnectedStreams",
    "CountWindow",
    "CountWindowSerializer",
    "DataStream",
    "DataStreamSink",
    "FilterFunction",
    "FlatMapFunction",
    "FunctionInitializationContext",
    "FunctionSnapshotContext",
    "GlobalWindow",
    "IntervalJoin",
    "IntervalJoined",
    "JobClient",
    "KeySelector",
    "KeyedBroadcastProcessFunction",
    "KeyedCoProcessFunction",
    "KeyedProcessFunction",
    "KeyedStream",
    "MapFunction",
    "MergingWindowAssigner",
    "OutputTag",
    "ProcessAllWindowFunction",
    "ProcessFunction",
    "ProcessJoinFunction",
    "ProcessWindowFunction",
    "ReduceFunction",
    "RuntimeContext",
    "RuntimeExecutionMode",
    "SinkFunction",
    "SourceFunction",
    "StreamExecutionEnvironment",
    "TimeDomain",
    "TimeWindow",
    "TimeWindowSerializer",
    "TimerService",
    "Trigger",
    "TriggerResult",
    "Window",
    "WindowAssigner",
    "WindowFunction",
    "WindowedStream",
]
