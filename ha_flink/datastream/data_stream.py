"""`DataStream`, `KeyedStream` and `DataStreamSink`, shaped like `pyflink.datastream.data_stream`.

Each call adds a transformation to the environment's graph and returns a new stream; nothing runs until
`env.execute()`."""

from __future__ import annotations

import collections
import itertools
import logging
import operator as _operator
import queue
import threading
import uuid
from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING, Any, Callable, Iterator, Union

from ha_flink.common.execution_config import ExecutionConfig
from ha_flink.common.time import to_milliseconds
from ha_flink.common.typeinfo import TupleTypeInfo, Types
from ha_flink.common.types import Row
from ha_flink.datastream.connectors.base import Sink, SupportsPreprocessing
from ha_flink.datastream.connectors.file_system import StreamingFileSink
from ha_flink.datastream.slot_sharing_group import SlotSharingGroup
from ha_flink.core.functions import (
    BroadcastProcessFunction, KeyedBroadcastProcessFunction, KeyedCoProcessFunction, KeyedProcessFunction,
    KeySelector, Partitioner, ProcessFunction, SinkFunction,
)
from ha_flink.core.output_tag import OutputTag
from ha_flink.core.state import MapStateDescriptor
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
    ProcessOperator, SinkOperator,
)
from ha_flink.runtime.operators.watermarks import TimestampsAndWatermarksOperator
from ha_flink.runtime.partitioner import (
    BroadcastPartitioner, CustomPartitioner, ForwardPartitioner, KeyGroupStreamPartitioner, RebalancePartitioner,
    RescalePartitioner, ShufflePartitioner,
)
from ha_flink.runtime.partitioner import Partitioner as StreamPartitioner

if TYPE_CHECKING:
    from ha_flink.datastream.stream_execution_environment import JobClient, StreamExecutionEnvironment

logger = logging.getLogger(__name__)


class UnsupportedOperationError(Exception):
    """A call PyFlink refuses on this kind of stream (it raises a plain `Exception` with the same message,
    so `except Exception` in a PyFlink program catches this too)."""


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
        if self._transformation.non_parallel and parallelism != 1:
            raise ValueError("The parallelism of non parallel operator must be 1.")
        self._transformation.parallelism = parallelism
        return self

    def set_max_parallelism(self, max_parallelism: int) -> DataStream:
        if max_parallelism < 1:
            raise ValueError("The maximum parallelism must be greater than 0.")
        if self._transformation.non_parallel and max_parallelism != 1:
            raise ValueError("The maximum parallelism of non parallel operator must be 1.")
        self._transformation.max_parallelism = max_parallelism
        return self

    def get_type(self) -> Any:
        return self._transformation.output_type

    def get_execution_config(self) -> ExecutionConfig:
        """The environment's ExecutionConfig (as Flink's: a stream has none of its own)."""
        return self._env.get_config()

    def force_non_parallel(self) -> DataStream:
        """Parallelism and max parallelism 1, for good: a later `set_parallelism` or `set_max_parallelism`
        other than 1 is refused (Flink's forceNonParallel)."""
        self._transformation.parallelism = 1
        self._transformation.max_parallelism = 1
        self._transformation.non_parallel = True
        return self

    def set_buffer_timeout(self, timeout_millis: int) -> DataStream:
        """Records the buffer timeout of this operator's output (-1: the environment's). As for the
        environment's `set_buffer_timeout`, a producer here sends each batch of output as soon as the
        batch of input that made it is done, so no record waits longer than one batch with any value."""
        if timeout_millis < -1:
            raise ValueError("timeout must be >= -1")
        self._transformation.buffer_timeout = timeout_millis
        return self

    def disable_chaining(self) -> DataStream:
        self._transformation.chaining = "never"
        return self

    def start_new_chain(self) -> DataStream:
        self._transformation.chaining = "head"
        return self

    def slot_sharing_group(self, slot_sharing_group: Union[str, SlotSharingGroup]) -> DataStream:
        """Records the slot sharing group (a name or a SlotSharingGroup). Accepted and recorded, not
        enforced: ha-flink schedules every job in one slot sharing group (one slot holds one subtask of
        each vertex, the job needs as many slots as its highest parallelism), so a separate group does not
        isolate this operator in slots of its own. Results are the same; only the placement differs from
        Flink's, which honours the group ("co-located ... if possible"). A SlotSharingGroup that asks for
        resources is named in a warning at submission (they cannot be granted)."""
        self._transformation.slot_sharing_group = _slot_sharing_group_name(slot_sharing_group, self._env)
        return self

    def set_description(self, description: str) -> DataStream:
        """A longer text about the operator than its name (Flink shows it in the plan and the web UI)."""
        self._transformation.description = description
        return self

    def get_execution_environment(self) -> StreamExecutionEnvironment:
        return self._env

    # -- transformations ------------------------------------------------------------------------------

    def _one_input(self, name: str, operator: StreamOperator, output_type: Any = None,
                   key_selector: Callable[[Any], Any] | None = None, key_type: Any = None) -> DataStream:
        operator.key_selector = key_selector
        operator.key_type = key_type
        operator.output_type = output_type
        t = OneInputTransformation(name, [self._transformation], output_type=output_type, operator=operator)
        return DataStream(self._env, t)

    def _partitioned(self, name: str, partitioner: StreamPartitioner) -> Transformation:
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
        partitioned = self._partitioned("Key By", KeyGroupStreamPartitioner(select, key_type=key_type))
        return KeyedStream(self._env, partitioned, select, key_type)

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

    def rescale(self) -> DataStream:
        """Round robin, record by record, over a subset of the next operator's subtasks that depends on
        both parallelisms (Flink's RescalePartitioner): upstream 2 and downstream 4, subtask 0 feeds 0 and 1,
        subtask 1 feeds 2 and 3; upstream 4 and downstream 2, subtasks 0 and 1 feed 0, 2 and 3 feed 1."""
        return DataStream(self._env, self._partitioned("Rescale", RescalePartitioner()))

    def shuffle(self) -> DataStream:
        return DataStream(self._env, self._partitioned("Shuffle", ShufflePartitioner()))

    def partition_custom(self, partitioner: Union[Callable, Partitioner],
                         key_selector: Union[Callable, KeySelector]) -> DataStream:
        """Each record goes to the subtask `partitioner.partition(key_selector(record), num_partitions)`
        of the next operator (num_partitions: its parallelism). `partitioner` is a Partitioner or a
        callable `(key, num_partitions) -> int`; a partition outside 0..num_partitions-1 fails the job."""
        if not isinstance(partitioner, Partitioner) and not callable(partitioner):
            raise TypeError("Parameter partitioner should be type of Partitioner or a callable function.")
        if not isinstance(key_selector, KeySelector) and not callable(key_selector):
            raise TypeError("Parameter key_selector should be type of KeySelector or a callable function.")
        return DataStream(self._env, self._partitioned("Partition Custom",
                                                       CustomPartitioner(partitioner, key_selector)))

    def project(self, *field_indexes: int) -> DataStream:
        """The given fields of each tuple, in the given order, as a tuple (Flink's project). As PyFlink,
        only a stream of declared Tuple type (`Types.TUPLE([...])`) can be projected."""
        input_type = self.get_type()
        if not isinstance(input_type, TupleTypeInfo):
            raise TypeError("Only Tuple DataStreams can be projected.")
        if not field_indexes:
            raise ValueError("project() needs to select at least one (1) field.")
        if len(field_indexes) > _MAX_PROJECTED_FIELDS:
            raise ValueError(f"project() may select only up to ({_MAX_PROJECTED_FIELDS}) fields.")
        arity = input_type.get_arity()
        for index in field_indexes:
            if not isinstance(index, int) or not 0 <= index < arity:
                raise IndexError(f"Index: {index}, Size: {arity}")
        field_types = input_type.get_field_types()
        output_type = Types.TUPLE([field_types[i] for i in field_indexes])
        operator = MapOperator(_Projection(field_indexes), "Projection")
        # Every projected record is a tuple of the declared arity already: the operator need not conform
        # its output (operator.output_type stays None); the stream's type is the projected tuple type.
        operator.key_selector = None
        t = OneInputTransformation("Projection", [self._transformation], output_type=output_type, operator=operator)
        return DataStream(self._env, t)

    def broadcast(self, broadcast_state_descriptor: MapStateDescriptor | None = None,
                  *other_broadcast_state_descriptors: MapStateDescriptor) -> Any:
        """Every record to every subtask of the next operator. Given MapStateDescriptors, a BroadcastStream
        for the broadcast state pattern (`other.connect(broadcast_stream).process(...)`)."""
        stream = DataStream(self._env, self._partitioned("Broadcast", BroadcastPartitioner()))
        if broadcast_state_descriptor is None:
            return stream
        descriptors = [broadcast_state_descriptor, *other_broadcast_state_descriptors]
        for descriptor in descriptors:
            if not isinstance(descriptor, MapStateDescriptor):
                raise TypeError("broadcast_state_descriptor must be MapStateDescriptor")
        return BroadcastStream(stream, descriptors)

    def connect(self, ds: Any) -> Any:
        """Two streams into one operator with two inputs (co-map, co-flat-map, co-process), or with a
        BroadcastStream, the broadcast state pattern."""
        if isinstance(ds, BroadcastStream):
            return BroadcastConnectedStream(self, ds, ds.broadcast_state_descriptors)
        if not isinstance(ds, DataStream):
            raise TypeError(f"connect needs a DataStream or a BroadcastStream, got {ds!r}")
        return ConnectedStreams(self, ds)

    # -- sinks ----------------------------------------------------------------------------------------

    def _sink(self, name: str, operator: StreamOperator) -> DataStreamSink:
        operator.key_selector = None
        operator.output_type = None
        t = OneInputTransformation(name, [self._transformation], operator=operator)
        self._env._add_sink(t)
        return DataStreamSink(t, self._env)

    def add_sink(self, sink_func: SinkFunction | Callable[[Any, Any], None]) -> DataStreamSink:
        if isinstance(sink_func, StreamingFileSink):  # a sink with checkpointed commits, not per record
            return self._sink("Sink: Unnamed", sink_func.create_operator())
        return self._sink("Sink: Unnamed", SinkOperator(sink_func, "Sink: Unnamed"))

    def sink_to(self, sink: Sink) -> DataStreamSink:
        stream: DataStream = self
        if isinstance(sink, SupportsPreprocessing):
            transformer = sink.get_transformer()
            if transformer is not None:
                stream = transformer.apply(self)
        operator = sink.create_operator()
        return stream._sink(f"Sink: {sink.name}", operator)

    def print(self, sink_identifier: str | None = None) -> DataStreamSink:
        return self._sink("Sink: Print to Std. Out", PrintSinkOperator(type_info=self.get_type(),
                                                                        identifier=sink_identifier))

    def execute_and_collect(self, job_execution_name: str | None = None,
                            limit: int | None = None) -> Union[CloseableIterator, list]:
        """Runs the job (every sink declared so far, and this stream into a collect sink) and returns a
        CloseableIterator over this stream's records; with `limit`, a list of at most `limit` records,
        after which the job is cancelled if it still runs.

        The job runs in a local mini cluster in this process, under `flink run` too (with a warning): the collect sink
        hands records to the iterator through a bounded in-process queue, so a consumer that reads slowly
        back-pressures the job (a collect sink deployed in another process fails at its start, saying so). Closing the iterator (or leaving its `with` block)
        cancels a job that still runs and waits for it to end. A failed job raises its
        JobExecutionError from `next()`. Without checkpointing a restarted job replays its records, so
        after a failover the iterator may see a record twice (Flink's collect sink uses checkpoints to
        avoid that)."""
        if limit is not None and limit <= 0:
            raise ValueError("Limit must be greater than 0")
        iterator = self._collect(job_execution_name or "DataStream Collect")
        if limit is None:
            return iterator
        try:
            return list(itertools.islice(iterator, limit))
        finally:
            iterator.close()

    def _collect(self, job_name: str) -> CloseableIterator:
        channel_id = uuid.uuid4().hex
        channel = _CollectChannel(queue.Queue(maxsize=_COLLECT_CAPACITY))
        with _channels_lock:
            _channels[channel_id] = channel
        try:
            name = "Sink: Data stream collect sink"
            sink = OneInputTransformation(name, [self._transformation], parallelism=1, max_parallelism=1,
                                          operator=_CollectSinkOperator(channel_id, name),
                                          uid="data-stream-collect-sink")  # (stable: savepoints match it)
            sink.non_parallel = True  # (as Flink's collect sink: one subtask gathers every record)
            self._env._add_sink(sink)
            from ha_flink.client import submission

            if submission.current() is not None:
                logger.warning("execute_and_collect() runs job %r in this client's local mini cluster, not on the "
                               "cluster (`flink run`): its collect sink hands records to this process", job_name)
            client = self._env._execute_async_locally(job_name)
        except BaseException:
            _release_channel(channel_id)
            raise
        return CloseableIterator(client, channel_id, channel)

    def cache(self) -> Any:
        """Not supported: PyFlink caches a bounded stream's result (BATCH mode) for later jobs of the same
        environment, and here every job runs on a mini cluster of its own that keeps nothing after it
        ends. Refused rather than recomputed silently."""
        raise NotImplementedError("DataStream.cache() is not supported by ha-flink: intermediate results do not "
                                  "outlive the job that computed them (each job runs on its own mini cluster); "
                                  "recompute the stream in the later job, or write it with a FileSink and read "
                                  "it back with a FileSource")


class KeyedStream(DataStream):
    """A stream partitioned by key: its operators see keyed state and timers of the current key."""

    def __init__(self, env: StreamExecutionEnvironment, transformation: Transformation,
                 key_selector: Callable[[Any], Any], key_type: Any = None) -> None:
        super().__init__(env, transformation)
        self._key_selector = key_selector
        self._key_type = key_type  # key_by's: the keys' Java hash (runtime/key_groups.py)

    def _keyed(self, name: str, operator: StreamOperator, output_type: Any = None) -> DataStream:
        return self._one_input(name, operator, output_type, self._key_selector, self._key_type)

    def map(self, func: Any, output_type: Any = None) -> DataStream:
        return self._keyed("Map", MapOperator(func, "Map"), output_type)

    def flat_map(self, func: Any, output_type: Any = None) -> DataStream:
        return self._keyed("Flat Map", FlatMapOperator(func, "Flat Map"), output_type)

    def filter(self, func: Any) -> DataStream:
        return self._keyed("Filter", FilterOperator(func, "Filter"), self.get_type())

    def reduce(self, func: Any) -> DataStream:
        return self._keyed("Keyed Reduce", KeyedReduceOperator(func, "Keyed Reduce"), self.get_type())

    class AccumulateType(Enum):
        MIN = 1
        MAX = 2
        MIN_BY = 3
        MAX_BY = 4
        SUM = 5

    def _accumulate(self, position: int | str, acc_type: KeyedStream.AccumulateType) -> DataStream:
        """min, max, min_by, max_by and sum as a keyed reduce (PyFlink's `_accumulate`)."""
        if not isinstance(position, (int, str)):
            raise TypeError("The field position must be of int or str type to locate the value to "
                            "calculate for min, max, min_by, max_by and sum."
                            "The given type is: %s" % type(position))
        name = _ACCUMULATE_NAMES[acc_type]
        return self._keyed(name, KeyedReduceOperator(_Accumulate(position, acc_type.name), name), self.get_type())

    def sum(self, position_to_sum: Union[int, str] = 0) -> DataStream:
        """A rolling sum per key of the field at `position_to_sum` (a position, or a field name of a named
        Row or namedtuple; plain values: 0, the value itself). The other fields are those of the key's
        first record."""
        return self._accumulate(position_to_sum, KeyedStream.AccumulateType.SUM)

    def min(self, position_to_min: Union[int, str] = 0) -> DataStream:
        """The minimum per key so far of the field at `position_to_min`; the other fields are those of the
        key's first record (use min_by for the whole record with the minimum)."""
        return self._accumulate(position_to_min, KeyedStream.AccumulateType.MIN)

    def max(self, position_to_max: Union[int, str] = 0) -> DataStream:
        """The maximum per key so far of the field at `position_to_max`; the other fields are those of the
        key's first record (use max_by for the whole record with the maximum)."""
        return self._accumulate(position_to_max, KeyedStream.AccumulateType.MAX)

    def min_by(self, position_to_min_by: Union[int, str] = 0) -> DataStream:
        """The record per key with the smallest field at `position_to_min_by` so far; of equal ones, the
        first."""
        return self._accumulate(position_to_min_by, KeyedStream.AccumulateType.MIN_BY)

    def max_by(self, position_to_max_by: Union[int, str] = 0) -> DataStream:
        """The record per key with the largest field at `position_to_max_by` so far; of equal ones, the
        first."""
        return self._accumulate(position_to_max_by, KeyedStream.AccumulateType.MAX_BY)

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

    # -- what PyFlink refuses on a keyed stream (its messages) ---------------------------------------

    def shuffle(self) -> DataStream:
        raise UnsupportedOperationError("Cannot override partitioning for KeyedStream.")

    def rescale(self) -> DataStream:
        raise UnsupportedOperationError("Cannot override partitioning for KeyedStream.")

    def rebalance(self) -> DataStream:
        raise UnsupportedOperationError("Cannot override partitioning for KeyedStream.")

    def forward(self) -> DataStream:
        raise UnsupportedOperationError("Cannot override partitioning for KeyedStream.")

    def broadcast(self, *args: Any) -> Any:
        """Not supported, partitioning for KeyedStream cannot be overridden."""
        raise UnsupportedOperationError("Cannot override partitioning for KeyedStream.")

    def partition_custom(self, partitioner: Union[Callable, Partitioner],
                         key_selector: Union[Callable, KeySelector]) -> DataStream:
        raise UnsupportedOperationError("Cannot override partitioning for KeyedStream.")

    def set_parallelism(self, parallelism: int) -> DataStream:
        raise UnsupportedOperationError("Set parallelism for KeyedStream is not supported.")

    def name(self, name: str) -> DataStream:
        raise UnsupportedOperationError("Set name for KeyedStream is not supported.")

    def get_name(self) -> str:
        raise UnsupportedOperationError("Get name of KeyedStream is not supported.")

    def uid(self, uid: str) -> DataStream:
        raise UnsupportedOperationError("Set uid for KeyedStream is not supported.")

    def set_uid_hash(self, uid_hash: str) -> DataStream:
        raise UnsupportedOperationError("Set uid hash for KeyedStream is not supported.")

    def set_max_parallelism(self, max_parallelism: int) -> DataStream:
        raise UnsupportedOperationError("Set max parallelism for KeyedStream is not supported.")

    def force_non_parallel(self) -> DataStream:
        raise UnsupportedOperationError("Set force non-parallel for KeyedStream is not supported.")

    def set_buffer_timeout(self, timeout_millis: int) -> DataStream:
        raise UnsupportedOperationError("Set buffer timeout for KeyedStream is not supported.")

    def start_new_chain(self) -> DataStream:
        raise UnsupportedOperationError("Start new chain for KeyedStream is not supported.")

    def disable_chaining(self) -> DataStream:
        raise UnsupportedOperationError("Disable chaining for KeyedStream is not supported.")

    def slot_sharing_group(self, slot_sharing_group: Union[str, SlotSharingGroup]) -> DataStream:
        raise UnsupportedOperationError("Setting slot sharing group for KeyedStream is not supported.")

    def cache(self) -> Any:
        raise UnsupportedOperationError("Cache for KeyedStream is not supported.")


class DataStreamSink:
    def __init__(self, transformation: OneInputTransformation, env: StreamExecutionEnvironment) -> None:
        self._transformation = transformation
        self._env = env

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

    def set_uid_hash(self, uid_hash: str) -> DataStreamSink:
        """As DataStream.set_uid_hash: the hash stands for the uid that matches this sink's state."""
        return self.uid(uid_hash)

    def set_description(self, description: str) -> DataStreamSink:
        self._transformation.description = description
        return self

    def disable_chaining(self) -> DataStreamSink:
        self._transformation.chaining = "never"
        return self

    def slot_sharing_group(self, slot_sharing_group: Union[str, SlotSharingGroup]) -> DataStreamSink:
        """Recorded, not enforced: see DataStream.slot_sharing_group."""
        self._transformation.slot_sharing_group = _slot_sharing_group_name(slot_sharing_group, self._env)
        return self


def _two_input(env: Any, name: str, first: Transformation, second: Transformation, operator: StreamOperator,
               output_type: Any, parallelism: int | None = None) -> DataStream:
    operator.output_type = output_type
    if operator.key_selector2 is not None and operator.key_type2 != operator.key_type:
        # (one hash for both: the two sides' keys meet in one keyed state)
        raise TypeError(f"Key types if input KeyedStreams don't match: {operator.key_type} and {operator.key_type2}.")
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
            operator.key_selector, operator.key_type = stream1._key_selector, stream1._key_type
            operator.key_selector2, operator.key_type2 = stream2._key_selector, stream2._key_type
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

    def __init__(self, input_stream: DataStream, broadcast_state_descriptors: list[MapStateDescriptor]) -> None:
        self.input_stream = input_stream
        self.broadcast_state_descriptors = broadcast_state_descriptors

    @property
    def stream(self) -> DataStream:
        """The broadcast stream (`input_stream`'s earlier name here)."""
        return self.input_stream


class BroadcastConnectedStream:
    """A stream connected with a BroadcastStream (`stream.connect(broadcast_stream)`): `process` with a
    (Keyed)BroadcastProcessFunction that reads and writes the broadcast state."""

    def __init__(self, non_broadcast_stream: DataStream, broadcast_stream: BroadcastStream,
                 broadcast_state_descriptors: list[MapStateDescriptor]) -> None:
        self.non_broadcast_stream = non_broadcast_stream
        self.broadcast_stream = broadcast_stream
        self.broadcast_state_descriptors = broadcast_state_descriptors

    def process(self, func: Any, output_type: Any = None) -> DataStream:
        keyed = isinstance(self.non_broadcast_stream, KeyedStream)
        if keyed and isinstance(func, BroadcastProcessFunction):
            raise TypeError("a keyed stream connected to a broadcast stream needs a KeyedBroadcastProcessFunction")
        if not keyed and isinstance(func, KeyedBroadcastProcessFunction):
            raise TypeError("a KeyedBroadcastProcessFunction needs a keyed stream (key_by before connect)")
        name = "Co-Process-Broadcast-Keyed" if keyed else "Co-Process-Broadcast"
        operator = BroadcastProcessOperator(func, name, self.broadcast_state_descriptors)
        stream = self.non_broadcast_stream
        if isinstance(stream, KeyedStream):
            operator.key_selector, operator.key_type = stream._key_selector, stream._key_type
        else:
            operator.key_selector = None
        return _two_input(self.non_broadcast_stream._env, name, self.non_broadcast_stream._transformation,
                          self.broadcast_stream.input_stream._transformation, operator, output_type)


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
        operator.key_selector, operator.key_type = self.left._key_selector, self.left._key_type
        operator.key_selector2, operator.key_type2 = self.right._key_selector, self.right._key_type
        return _two_input(self.left._env, name, self.left._transformation, self.right._transformation, operator,
                          output_type)


# -- helpers of the stream methods above ----------------------------------------------------------------

def _slot_sharing_group_name(slot_sharing_group: str | SlotSharingGroup, env: StreamExecutionEnvironment) -> str:
    """The group's name; a SlotSharingGroup is registered with the environment too (its resources)."""
    if isinstance(slot_sharing_group, str):
        return slot_sharing_group
    if isinstance(slot_sharing_group, SlotSharingGroup):
        env.register_slot_sharing_group(slot_sharing_group)
        return slot_sharing_group.get_name()
    raise TypeError(f"slot_sharing_group needs a name or a SlotSharingGroup, got {slot_sharing_group!r}")


_MAX_PROJECTED_FIELDS = 24  # Flink: Tuple.MAX_ARITY - 1


class _Projection:
    """`project(*field_indexes)`'s map: a plain callable (no runtime context, nothing to open)."""

    def __init__(self, field_indexes: tuple[int, ...]) -> None:
        self.field_indexes = tuple(field_indexes)

    def __call__(self, value: Any) -> tuple:
        return tuple([value[i] for i in self.field_indexes])


_ACCUMULATE_NAMES = {
    KeyedStream.AccumulateType.SUM: "Keyed Sum", KeyedStream.AccumulateType.MIN: "Keyed Min",
    KeyedStream.AccumulateType.MAX: "Keyed Max", KeyedStream.AccumulateType.MIN_BY: "Keyed Min By",
    KeyedStream.AccumulateType.MAX_BY: "Keyed Max By",
}


class _Accumulate:
    """The reduce function of KeyedStream.min/max/min_by/max_by/sum, as PyFlink's AccumulateReduceFunction:
    chosen on the first reduce from the kind of record (tuple, list, Row or a plain value).

    min/max/sum replace one field of the accumulated record (so the other fields stay those of the key's
    first record); min_by/max_by keep the whole record whose field is smallest/largest, the earlier one on a
    tie. Unlike PyFlink it never changes a record in place: the accumulated value here is the very object
    already emitted downstream (records are not copied between chained operators). A plain callable, not a
    ReduceFunction: it needs no runtime context, so the reduce operator need not set the current key."""

    def __init__(self, position: int | str, kind: str) -> None:
        self.position = position
        self.kind = kind  # an AccumulateType's name (picklable without the enum's class)
        self._reduce: Callable[[Any, Any], Any] | None = None

    def __getstate__(self) -> dict[str, Any]:
        return {"position": self.position, "kind": self.kind, "_reduce": None}

    def __call__(self, value1: Any, value2: Any) -> Any:
        reduce = self._reduce
        if reduce is None:
            reduce = self._reduce = self._choose(value2)
        return reduce(value1, value2)

    def _index(self, record: Any) -> int | str:
        """The position as an index into `record`: a name is looked up in a namedtuple's fields (a Row
        takes names itself)."""
        position = self.position
        if isinstance(position, str) and not isinstance(record, Row):
            names = getattr(record, "_fields", None)
            if not names or position not in names:
                raise TypeError(f"{self.kind.lower()}({position!r}): the record {record!r} has no field named "
                                f"{position!r}; name fields with Types.ROW_NAMED or give a position")
            return list(names).index(position)
        return position

    def _choose(self, sample: Any) -> Callable[[Any, Any], Any]:
        kind = self.kind
        composite = isinstance(sample, (tuple, list, Row))
        if kind in ("MIN_BY", "MAX_BY"):
            take_new = _operator.lt if kind == "MIN_BY" else _operator.gt  # strict: a tie keeps the first
            if composite:
                i = self._index(sample)
                return lambda v1, v2: v2 if take_new(v2[i], v1[i]) else v1
            return lambda v1, v2: v2 if take_new(v2, v1) else v1
        combine: Callable[[Any, Any], Any] = {
            "SUM": _operator.add,
            "MIN": lambda old, new: new if new < old else old,
            "MAX": lambda old, new: new if new > old else old,
        }[kind]
        if not composite:
            if self.position != 0:
                raise TypeError("The %s field selected on a basic type. A field expression on a basic type can "
                                "only select the 0th field (which means selecting the entire basic type)."
                                % self.position)
            return combine
        i = self._index(sample)

        def replace_field(v1: Any, v2: Any) -> Any:
            if isinstance(v1, Row):
                row = Row(*v1._values)
                if hasattr(v1, "_fields"):
                    row._fields = v1._fields
                row.set_row_kind(v1.get_row_kind())
                row[i] = combine(v1[i], v2[i])
                return row
            values = list(v1)
            values[i] = combine(v1[i], v2[i])  # type: ignore[index]
            if isinstance(v1, list):
                return values
            make = getattr(type(v1), "_make", None)  # a namedtuple stays one
            return make(values) if make is not None else tuple(values)

        return replace_field


# -- execute_and_collect: a sink that hands records to an iterator in this process ----------------------

_COLLECT_CAPACITY = 64  # batches between the collect sink and the iterator; a full queue back-pressures the job
_POLL_SECONDS = 0.05  # how often a waiting iterator (or a sink facing a full queue) looks again
_END_SECONDS = 60.0  # for a cancelled job to end when the iterator is closed


@dataclass
class _CollectChannel:
    """What one collect sink and its iterator share. `closed`: the iterator is closed, the sink drops
    records instead of waiting for room (its job is being cancelled)."""

    records: queue.Queue[list[Any] | _End]  # batches, then the end marker
    closed: threading.Event = field(default_factory=threading.Event)


# Channels by id: the sink is pickled into the job graph and unpickled by its subtask, which finds its
# channel here (the mini cluster runs the tasks in this process).
_channels: dict[str, _CollectChannel] = {}
_channels_lock = threading.Lock()


def _release_channel(channel_id: str) -> None:
    with _channels_lock:
        _channels.pop(channel_id, None)


class _CollectSinkOperator(StreamOperator):
    """execute_and_collect's sink: puts every batch it receives into its channel's bounded queue, waiting
    while the queue is full (so a slow reader back-pressures the job) unless the iterator was closed."""

    def __init__(self, channel_id: str, name: str) -> None:
        self.channel_id = channel_id
        self.name = name

    def open(self) -> None:
        with _channels_lock:
            channel = _channels.get(self.channel_id)
        if channel is None:
            raise RuntimeError("execute_and_collect's sink runs only in the process that collects (the local "
                               "mini cluster), and its iterator is gone")
        self.channel = channel

    def process_batch(self, batch: list[Any], timestamps: list[int] | None = None) -> None:
        if not batch:
            return
        records, closed = self.channel.records, self.channel.closed
        part = list(batch)  # (the batch list may be reused by its producer)
        while not closed.is_set():
            try:
                records.put(part, timeout=_POLL_SECONDS)
                return
            except queue.Full:
                continue


class _End:
    """The last item of a collect queue: the job ended (with `failure`, or None when it finished)."""

    def __init__(self, failure: BaseException | None) -> None:
        self.failure = failure


class CloseableIterator:
    """An iterator over the records of `DataStream.execute_and_collect` that must be closed (`close()`,
    or a `with` block) to free the job: closing cancels a job that still runs and waits for it to end.

    Iteration ends when the job finished and every record was read; a failed job raises its
    JobExecutionError from `next()` (after the records it sent before it failed), a job cancelled from
    elsewhere JobCancelledError. A thread of its own waits for the job's end and queues an end marker behind
    the last record (the sink put every record before its task ended), so reading needs no polling of the
    job's status."""

    def __init__(self, job_client: JobClient, channel_id: str, channel: _CollectChannel) -> None:
        self._client = job_client
        self._channel_id = channel_id
        self._channel = channel
        self._pending: collections.deque[Any] = collections.deque()
        self._ended = False  # the end marker was read: every record the job sent was taken
        self._closed = False
        self._waiter = threading.Thread(target=self._wait_for_end, name=f"collect-{channel_id[:8]}", daemon=True)
        self._waiter.start()

    @property
    def job_client(self) -> JobClient:
        """The collecting job's JobClient (its id and status)."""
        return self._client

    def __iter__(self) -> Iterator[Any]:
        return self

    def __next__(self) -> Any:
        return self.next()

    def __enter__(self) -> CloseableIterator:
        return self

    def __exit__(self, exc_type: Any, exc_val: Any, exc_tb: Any) -> None:
        self.close()

    def next(self) -> Any:
        pending, records = self._pending, self._channel.records
        while not pending:
            if self._ended or self._closed:
                raise StopIteration("No more data.")
            try:
                item = records.get(timeout=_POLL_SECONDS)  # (a timeout: Ctrl-C still reaches a waiting reader)
            except queue.Empty:
                continue
            if isinstance(item, _End):
                self._ended = True
                _release_channel(self._channel_id)
                if item.failure is not None:
                    raise item.failure
                continue
            pending.extend(item)
        return pending.popleft()

    def _wait_for_end(self) -> None:
        """On the waiter thread: the job's result (which also stops its mini cluster), then the end marker."""
        failure: BaseException | None = None
        try:
            self._client.get_job_execution_result().result()
        except BaseException as exc:  # (handed to the reader, who raises it)
            failure = exc
        records, closed, end = self._channel.records, self._channel.closed, _End(failure)
        while not closed.is_set():
            try:
                records.put(end, timeout=_POLL_SECONDS)
                return
            except queue.Full:
                continue

    def close(self) -> None:
        """Cancels the job if it still runs, waits for it to end and frees the mini cluster. The records
        not read yet are dropped."""
        if self._closed:
            return
        self._closed = True
        self._channel.closed.set()  # a sink (or the waiter) waiting for room in the queue lets go
        try:
            if self._waiter.is_alive():
                try:
                    self._client.cancel().result(_END_SECONDS)
                except Exception:  # (it may have ended meanwhile: then there is nothing to cancel)
                    logger.debug("cancelling the collecting job failed", exc_info=True)
                self._waiter.join(_END_SECONDS)
                if self._waiter.is_alive():
                    logger.warning("the collecting job %s did not end within %.0f s of its cancellation",
                                   self._client.get_job_id(), _END_SECONDS)
        finally:
            self._pending.clear()
            _release_channel(self._channel_id)


def __getattr__(name: str) -> Any:
    """`WindowedStream` and `AllWindowedStream` live in windowed_stream.py, which imports this module; PyFlink
    has them here too, so they are found here on first use."""
    if name in ("WindowedStream", "AllWindowedStream"):
        from ha_flink.datastream import windowed_stream

        return getattr(windowed_stream, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
