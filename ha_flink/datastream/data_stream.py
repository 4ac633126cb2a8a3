"""`DataStream`, `KeyedStream` and `DataStreamSink`, shaped like `pyflink.datastream.data_stream`.

Each call adds a transformation to the environment's graph and returns a new stream; nothing runs until
`env.execute()`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

from ha_flink.datastream.connectors.base import Sink
from ha_flink.datastream.functions import KeySelector, KeyedProcessFunction, ProcessFunction, SinkFunction
from ha_flink.runtime.graph.transformations import (
    OneInputTransformation, PartitionTransformation, Transformation, UnionTransformation,
)
from ha_flink.runtime.operators.base import StreamOperator
from ha_flink.runtime.operators.basic import (
    FilterOperator, FlatMapOperator, KeyedProcessOperator, KeyedReduceOperator, MapOperator, PrintSinkOperator,
    ProcessOperator, SinkOperator, field_aggregation,
)
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

    def key_by(self, key_selector: Any, key_type: Any = None) -> KeyedStream:
        select = _key_function(key_selector)
        partitioned = self._partitioned("Key By", KeyGroupStreamPartitioner(select))
        return KeyedStream(self._env, partitioned, select)

    def union(self, *streams: DataStream) -> DataStream:
        inputs = [self._transformation, *(s._transformation for s in streams)]
        return DataStream(self._env, UnionTransformation("Union", inputs, output_type=self.get_type()))

    def forward(self) -> DataStream:
        return DataStream(self._env, self._partitioned("Forward", ForwardPartitioner()))

    def rebalance(self) -> DataStream:
        return DataStream(self._env, self._partitioned("Rebalance", RebalancePartitioner()))

    def shuffle(self) -> DataStream:
        return DataStream(self._env, self._partitioned("Shuffle", ShufflePartitioner()))

    def broadcast(self) -> DataStream:
        return DataStream(self._env, self._partitioned("Broadcast", BroadcastPartitioner()))

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


class DataStreamSink:
    def __init__(self, transformation: Transformation) -> None:
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
