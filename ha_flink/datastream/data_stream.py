"""`DataStream`, `KeyedStream` and `DataStreamSink`, shaped like `pyflink.datastream.data_stream`.

Each call adds a transformation to the environment's graph and returns a new stream; nothing runs until
`env.execute()`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

from ha_flink.common.time import to_milliseconds
from ha_flink.datastream.connectors.base import Sink
from ha_flink.core.functions import (
    BroadcastProcessFunction, KeyedBroadcastProcessFunction, KeyedCoProcessFunction, KeyedProcessFunction,
    KeySelector, ProcessFunction, SinkFunction,
)
from ha_flink.core.output_tag import OutputTag
from ha_flink.runtime.graph.transformations import (
    OneInputTransformation, PartitionTransformation, SideOutputTransformation, Transformation,
    TwoInputTransformation, UnionTransformation,
)
from ha_flink.runtime.operators.base import StreamOperator
from ha_flink.runtime.operators.co import (
    BroadcastProcessOperator, CoFlatMapOperator, CoMapOperator, CoProcessOperator, IntervalJoinOperator,
)
from ha_flink.runtime.operators.basic import (
    FilterOperator, FlatMapOperator, KeyedProcessOperator, KeyedReduceOperator, MapOperator, PrintSinkOperator,
    ProcessOperator, SinkOperator, field_aggregation,
)
from ha_flink.runtime.operators.watermarks import TimestampsAndWatermarksOperator
from ha_flink.runtime.partitioner import (
    BroadcastPartitioner, ForwardPartitioner, KeyGroupStreamPartitioner, Partitioner, RebalancePartitioner,
    ShufflePartitioner,
)

if TYPE_CHECKING:
    from ha_flink.datastream.stream_execution_environment import StreamExecutionEnvironment


def _key_function(key_selector: Any) -> Callable[[Any], Any]:
    if isinstance(key_selector, KeySelector):
        return key_selector.get_key
    if callable(key_selector):
        return key_selector
    raise TypeError(f"key_by needs a KeySelector or a callable, got {key_selector!r}")


class DataStream:
    def __init__(self, env: StreamExecutionEnvironment, transformation: Transformation) -> None:
        self._env = env
        self._transformation = transformation

    # -- properties of this stream's operator --------------------------------------------------------

    def name(self, name: str) -> DataStream:
        self._transformation.name = name
        if isinstance(self._transformation, OneInputTransformation):
            self._transformation.operator.name = name
        return self

    def get_name(self) -> str:
        return self._transformation.name

    def uid(self, uid: str) -> DataStream:
        self._transformation.uid = uid
        return self

    def set_uid_hash(self, uid_hash: str) -> DataStream:
        return self.uid(uid_hash)

    def set_parallelism(self, parallelism: int) -> DataStream:
        if parallelism < 1:
            raise ValueError(f"parallelism of {self.get_name()} must be >= 1, got {parallelism}")
        self._transformation.parallelism = parallelism
        return self

    def set_max_parallelism(self, max_parallelism: int) -> DataStream:
        self._transformation.max_parallelism = max_parallelism
        return self

    def get_type(self) -> Any:
        return self._transformation.output_type

    def disable_chaining(self) -> DataStream:
        self._transformation.chaining = "never"
        return self

    def start_new_chain(self) -> DataStream:
        self._transformation.chaining = "head"
        return self

    def slot_sharing_group(self, slot_sharing_group: Any) -> DataStream:
        return self  # one slot runs a whole pipeline slice here; accepted for PyFlink compatibility

    def get_execution_environment(self) -> StreamExecutionEnvironment:
        return self._env

    # -- transformations ------------------------------------------------------------------------------

    def _one_input(self, name: str, operator: StreamOperator, output_type: Any = None,
                   key_selector: Callable[[Any], Any] | None = None) -> DataStream:
        operator.key_selector = key_selector
        operator.output_type = output_type
        t = OneInputTransformation(name, [self._transformation], output_type=output_type, operator=operator)
        return DataStream(self._env, t)

    def _partitioned(self, name: str, partitioner: Partitioner) -> Transformation:
        return PartitionTransformation(name, [self._transformation], output_type=self.get_type(),
                                       partitioner=partitioner)

    def map(self, func: Any, output_type: Any = None) -> DataStream:
        return self._one_input("Map", MapOperator(func, "Map"), output_type)

    def flat_map(self, func: Any, output_type: Any = None) -> DataStream:
        return self._one_input("Flat Map", FlatMapOperator(func, "Flat Map"), output_type)

    def filter(self, func: Any) -> DataStream:
        return self._one_input("Filter", FilterOperator(func, "Filter"), self.get_type())

    def process(self, func: ProcessFunction, output_type: Any = None) -> DataStream:
        return self._one_input("Process", ProcessOperator(func, "Process"), output_type)

    def assign_timestamps_and_watermarks(self, watermark_strategy: Any) -> DataStream:
        """Stamps records with event time (the strategy's timestamp assigner) and emits watermarks."""
        name = "Timestamps/Watermarks"
        stream = self._one_input(name, TimestampsAndWatermarksOperator(watermark_strategy, name), self.get_type())
        stream._transformation.parallelism_of_input = True  # chains with its input
        return stream

    def get_side_output(self, output_tag: Any) -> DataStream:
        """The records this stream's operator emitted to `output_tag` (yielded `(output_tag, value)`,
        `ctx.output`, or a window's late data)."""
        if not isinstance(output_tag, OutputTag):
            raise TypeError(f"get_side_output needs an OutputTag, got {output_tag!r}")
        t = SideOutputTransformation(f"Side output {output_tag.tag_id}", [self._transformation],
                                     output_type=output_tag.type_info, tag_id=output_tag.tag_id)
        return DataStream(self._env, t)

    def key_by(self, key_selector: Any, key_type: Any = None) -> KeyedStream:
        select = _key_function(key_selector)
        partitioned = self._partitioned("Key By", KeyGroupStreamPartitioner(select))
        return KeyedStream(self._env, partitioned, select)

    def window_all(self, window_assigner: Any) -> Any:
        """Windows over the whole stream, computed by one subtask (as Flink's non-parallel windowAll)."""
        from ha_flink.datastream.windowed_stream import AllWindowedStream

        return AllWindowedStream(self, window_assigner)

    def count_window_all(self, size: int, slide: int = 0) -> Any:
        from ha_flink.datastream.windowed_stream import AllWindowedStream

        return AllWindowedStream.count(self, size, slide)

    def union(self, *streams: DataStream) -> DataStream:
        inputs = [self._transformation, *(s._transformation for s in streams)]
        return DataStream(self._env, UnionTransformation("Union", inputs, output_type=self.get_type()))

    def forward(self) -> DataStream:
        return DataStream(self._env, self._partitioned("Forward", ForwardPartitioner()))

    def rebalance(self) -> DataStream:
        return DataStream(self._env, self._partitioned("Rebalance", RebalancePartitioner()))

    def shuffle(self) -> DataStream:
        return DataStream(self._env, self._partitioned("Shuffle", ShufflePartitioner()))

    def broadcast(self, *broadcast_state_descriptors: Any) -> Any:
        """Every record to every subtask of the next operator. Given MapStateDescriptors, a BroadcastStream
        for the broadcast state pattern (`other.connect(broadcast_stream).process(...)`)."""
        stream = DataStream(self._env, self._partitioned("Broadcast", BroadcastPartitioner()))
        if broadcast_state_descriptors:
            return BroadcastStream(stream, list(broadcast_state_descriptors))
        return stream

    def connect(self, ds: Any) -> Any:
        """Two streams into one operator with two inputs (co-map, co-flat-map, co-process), or with a
        BroadcastStream, the broadcast state pattern."""
        if isinstance(ds, BroadcastStream):
            return BroadcastConnectedStream(self, ds)
        if not isinstance(ds, DataStream):
            raise TypeError(f"connect needs a DataStream or a BroadcastStream, got {ds!r}")
        return ConnectedStreams(self, ds)

    # -- sinks ----------------------------------------------------------------------------------------

    def _sink(self, name: str, operator: StreamOperator) -> DataStreamSink:
        operator.key_selector = None
        operator.output_type = None
        t = OneInputTransformation(name, [self._transformation], operator=operator)
        self._env._add_sink(t)
        return DataStreamSink(t)

    def add_sink(self, sink_func: SinkFunction | Callable[[Any, Any], None]) -> DataStreamSink:
        return self._sink("Sink: Unnamed", SinkOperator(sink_func, "Sink: Unnamed"))

    def sink_to(self, sink: Sink) -> DataStreamSink:
        operator = sink.create_operator()
        return self._sink(f"Sink: {sink.name}", operator)

    def print(self, sink_identifier: str | None = None) -> DataStreamSink:
        return self._sink("Sink: Print to Std. Out", PrintSinkOperator())


class KeyedStream(DataStream):
    """A stream partitioned by key: its operators see keyed state and timers of the current key."""

    def __init__(self, env: StreamExecutionEnvironment, transformation: Transformation,
                 key_selector: Callable[[Any], Any]) -> None:
        super().__init__(env, transformation)
        self._key_selector = key_selector

    def _keyed(self, name: str, operator: StreamOperator, output_type: Any = None) -> DataStream:
        return self._one_input(name, operator, output_type, self._key_selector)

    def map(self, func: Any, output_type: Any = None) -> DataStream:
        return self._keyed("Map", MapOperator(func, "Map"), output_type)

    def flat_map(self, func: Any, output_type: Any = None) -> DataStream:
        return self._keyed("Flat Map", FlatMapOperator(func, "Flat Map"), output_type)

    def filter(self, func: Any) -> DataStream:
        return self._keyed("Filter", FilterOperator(func, "Filter"), self.get_type())

    def reduce(self, func: Any) -> DataStream:
        return self._keyed("Keyed Reduce", KeyedReduceOperator(func, "Keyed Reduce"), self.get_type())

    def sum(self, position_to_sum: int | str = 0) -> DataStream:
        return self._keyed("Keyed Sum", KeyedReduceOperator(field_aggregation("sum", position_to_sum), "Keyed Sum"),
                           self.get_type())

    def min(self, position_to_min: int | str = 0) -> DataStream:
        return self._keyed("Keyed Min", KeyedReduceOperator(field_aggregation("min", position_to_min), "Keyed Min"),
                           self.get_type())

    def max(self, position_to_max: int | str = 0) -> DataStream:
        return self._keyed("Keyed Max", KeyedReduceOperator(field_aggregation("max", position_to_max), "Keyed Max"),
                           self.get_type())

    def process(self, func: KeyedProcessFunction, output_type: Any = None) -> DataStream:  # type: ignore[override]
        return self._keyed("KeyedProcess", KeyedProcessOperator(func, "KeyedProcess"), output_type)

    def key_by(self, key_selector: Any, key_type: Any = None) -> KeyedStream:
        return DataStream(self._env, self._transformation).key_by(key_selector, key_type)

    def interval_join(self, keyed_stream: KeyedStream) -> IntervalJoin:
        """Joins each record of this stream with the other stream's records of the same key whose
        timestamps lie within `between(lower, upper)` of its own (event time)."""
        if not isinstance(keyed_stream, KeyedStream):
            raise TypeError(f"interval_join needs a KeyedStream (key_by the other stream first), got {keyed_stream!r}")
        return IntervalJoin(self, keyed_stream)

    def window(self, window_assigner: Any) -> Any:
        """Windows per key (`ha_flink.datastream.window`): then reduce, aggregate, process or apply."""
        from ha_flink.datastream.windowed_stream import WindowedStream

        return WindowedStream(self, window_assigner)

    def count_window(self, size: int, slide: int = 0) -> Any:
        """Windows of `size` records per key, every `slide` records (0: tumbling)."""
        from ha_flink.datastream.windowed_stream import WindowedStream

        return WindowedStream.count(self, size, slide)


class DataStreamSink:
    def __init__(self, transformation: OneInputTransformation) -> None:
        self._transformation = transformation

    def name(self, name: str) -> DataStreamSink:
        self._transformation.name = name
        self._transformation.operator.name = name
        return self

    def uid(self, uid: str) -> DataStreamSink:
        self._transformation.uid = uid
        return self

    def set_parallelism(self, parallelism: int) -> DataStreamSink:
        self._transformation.parallelism = parallelism
        return self

    def disable_chaining(self) -> DataStreamSink:
        self._transformation.chaining = "never"
        return self


def _two_input(env: Any, name: str, first: Transformation, second: Transformation, operator: StreamOperator,
               output_type: Any, parallelism: int | None = None) -> DataStream:
    operator.output_type = output_type
    t = TwoInputTransformation(name, [first, second], output_type=output_type, operator=operator)
    t.parallelism = parallelism
    return DataStream(env, t)


class ConnectedStreams:
    """Two streams feeding one operator (`DataStream.connect`). Keyed when both inputs are keyed streams,
    or after `key_by(key_selector1, key_selector2)`: then both sides share the keyed state and timers of
    the current key."""

    def __init__(self, stream1: DataStream, stream2: DataStream) -> None:
        self.stream1 = stream1
        self.stream2 = stream2

    def key_by(self, key_selector1: Any, key_selector2: Any, key_type: Any = None) -> ConnectedStreams:
        return ConnectedStreams(self.stream1.key_by(key_selector1, key_type),
                                self.stream2.key_by(key_selector2, key_type))

    def _keyed(self) -> bool:
        return isinstance(self.stream1, KeyedStream) and isinstance(self.stream2, KeyedStream)

    def _build(self, name: str, operator: CoMapOperator | CoFlatMapOperator | CoProcessOperator,
               output_type: Any) -> DataStream:
        stream1, stream2 = self.stream1, self.stream2
        if isinstance(stream1, KeyedStream) and isinstance(stream2, KeyedStream):  # (self._keyed())
            operator.key_selector = stream1._key_selector
            operator.key_selector2 = stream2._key_selector
        else:
            operator.key_selector = None
        return _two_input(self.stream1._env, name, self.stream1._transformation, self.stream2._transformation,
                          operator, output_type)

    def map(self, func: Any, output_type: Any = None) -> DataStream:
        return self._build("Co-Map", CoMapOperator(func, "Co-Map"), output_type)

    def flat_map(self, func: Any, output_type: Any = None) -> DataStream:
        return self._build("Co-Flat Map", CoFlatMapOperator(func, "Co-Flat Map"), output_type)

    def process(self, func: Any, output_type: Any = None) -> DataStream:
        if isinstance(func, KeyedCoProcessFunction) and not self._keyed():
            raise TypeError("a KeyedCoProcessFunction needs two keyed streams: key_by both streams before "
                            "connect, or call ConnectedStreams.key_by(key_selector1, key_selector2)")
        name = "KeyedCoProcess" if self._keyed() else "Co-Process"
        return self._build(name, CoProcessOperator(func, name), output_type)


class BroadcastStream:
    """A stream broadcast to every subtask of the operator it is connected to, with the broadcast state
    descriptors that operator may use (`DataStream.broadcast(descriptor, ...)`)."""

    def __init__(self, stream: DataStream, descriptors: list[Any]) -> None:
        self.stream = stream
        self.broadcast_state_descriptors = descriptors


class BroadcastConnectedStream:
    def __init__(self, non_broadcast_stream: DataStream, broadcast_stream: BroadcastStream) -> None:
        self.non_broadcast_stream = non_broadcast_stream
        self.broadcast_stream = broadcast_stream

    def process(self, func: Any, output_type: Any = None) -> DataStream:
        keyed = isinstance(self.non_broadcast_stream, KeyedStream)
        if keyed and isinstance(func, BroadcastProcessFunction):
            raise TypeError("a keyed stream connected to a broadcast stream needs a KeyedBroadcastProcessFunction")
        if not keyed and isinstance(func, KeyedBroadcastProcessFunction):
            raise TypeError("a KeyedBroadcastProcessFunction needs a keyed stream (key_by before connect)")
        name = "Co-Process-Broadcast-Keyed" if keyed else "Co-Process-Broadcast"
        operator = BroadcastProcessOperator(func, name, self.broadcast_stream.broadcast_state_descriptors)
        stream = self.non_broadcast_stream
        operator.key_selector = stream._key_selector if isinstance(stream, KeyedStream) else None  # (keyed)
        return _two_input(self.non_broadcast_stream._env, name, self.non_broadcast_stream._transformation,
                          self.broadcast_stream.stream._transformation, operator, output_type)


class IntervalJoin:
    def __init__(self, left: KeyedStream, right: KeyedStream) -> None:
        self.left = left
        self.right = right

    def between(self, lower_bound: Any, upper_bound: Any) -> IntervalJoined:
        return IntervalJoined(self.left, self.right, to_milliseconds(lower_bound, "lower_bound"),
                              to_milliseconds(upper_bound, "upper_bound"))


class IntervalJoined:
    def __init__(self, left: KeyedStream, right: KeyedStream, lower: int, upper: int) -> None:
        if lower > upper:
            raise ValueError(f"interval join: lower_bound ({lower} ms) must be <= upper_bound ({upper} ms)")
        self.left = left
        self.right = right
        self.lower = lower
        self.upper = upper
        self.lower_inclusive = True
        self.upper_inclusive = True
        self.left_late_tag: str | None = None
        self.right_late_tag: str | None = None

    def lower_bound_exclusive(self) -> IntervalJoined:
        self.lower_inclusive = False
        return self

    def upper_bound_exclusive(self) -> IntervalJoined:
        self.upper_inclusive = False
        return self

    def side_output_left_late_data(self, output_tag: Any) -> IntervalJoined:
        self.left_late_tag = output_tag.tag_id
        return self

    def side_output_right_late_data(self, output_tag: Any) -> IntervalJoined:
        self.right_late_tag = output_tag.tag_id
        return self

    def process(self, process_join_function: Any, output_type: Any = None) -> DataStream:
        name = "IntervalJoin"
        operator = IntervalJoinOperator(process_join_function, name, self.lower, self.upper, self.lower_inclusive,
                                        self.upper_inclusive, self.left_late_tag, self.right_late_tag)
        operator.key_selector = self.left._key_selector
        operator.key_selector2 = self.right._key_selector
        return _two_input(self.left._env, name, self.left._transformation, self.right._transformation, operator,
                          output_type)
