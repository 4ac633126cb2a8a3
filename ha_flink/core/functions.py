"""User function classes of the DataStream API, named as in `pyflink.datastream.functions`.

A plain callable works wherever a function class does (`ds.map(lambda x: x + 1)`); the classes add
`open(runtime_context)` / `close()` and, for process functions, a context with the current key and a timer
service. A function may return a generator where PyFlink allows one (flat_map, process, on_timer): every
value it yields is emitted."""

from __future__ import annotations

import enum
from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any, Callable, Generic, Iterable, TypeVar

from ha_flink.metrics.metricbase import MetricGroup

if TYPE_CHECKING:
    from ha_flink.core.state import (
        AggregatingState, AggregatingStateDescriptor, ListState, ListStateDescriptor, MapState,
        MapStateDescriptor, OperatorStateStore, ReducingState, ReducingStateDescriptor, ValueState,
        ValueStateDescriptor,
    )

# PyFlink's type parameters: its classes are Generic, and programs subscript them in class headers and
# annotations (`class F(ProcessWindowFunction[tuple, tuple, str, TimeWindow])`), which Python evaluates.
IN = TypeVar("IN")
IN1 = TypeVar("IN1")
IN2 = TypeVar("IN2")
OUT = TypeVar("OUT")
KEY = TypeVar("KEY")
W = TypeVar("W")
W2 = TypeVar("W2")


class RuntimeContext(ABC):
    """What a running function can ask about its subtask, and its keyed state."""

    @abstractmethod
    def get_task_name(self) -> str: ...

    @abstractmethod
    def get_number_of_parallel_subtasks(self) -> int: ...

    @abstractmethod
    def get_max_number_of_parallel_subtasks(self) -> int: ...

    @abstractmethod
    def get_index_of_this_subtask(self) -> int: ...

    @abstractmethod
    def get_attempt_number(self) -> int: ...

    @abstractmethod
    def get_job_parameter(self, key: str, default_value: str) -> str: ...

    def get_task_name_with_subtasks(self) -> str:
        """The task's name with its subtask and attempt, in Flink's format: "MyTask (3/6)#0", where 3 is
        get_index_of_this_subtask() + 1, 6 get_number_of_parallel_subtasks() and 0 get_attempt_number()."""
        return (f"{self.get_task_name()} ({self.get_index_of_this_subtask() + 1}/"
                f"{self.get_number_of_parallel_subtasks()})#{self.get_attempt_number()}")

    def get_metrics_group(self) -> MetricGroup:
        """The metric group of this function's operator in this subtask, to register user metrics on (in
        open()); they are reported with the task's metrics (Prometheus, REST). Contexts outside an operator
        have none."""
        raise NotImplementedError(f"{type(self).__name__} has no metric group: user metrics are registered by the "
                                  "functions of an operator (map, process, sink, ...) in open()")

    @abstractmethod
    def get_state(self, state_descriptor: ValueStateDescriptor) -> ValueState: ...

    @abstractmethod
    def get_list_state(self, state_descriptor: ListStateDescriptor) -> ListState: ...

    @abstractmethod
    def get_map_state(self, state_descriptor: MapStateDescriptor) -> MapState: ...

    @abstractmethod
    def get_reducing_state(self, state_descriptor: ReducingStateDescriptor) -> ReducingState: ...

    @abstractmethod
    def get_aggregating_state(self, state_descriptor: AggregatingStateDescriptor) -> AggregatingState: ...


class Function(ABC):  # noqa: B024 - lifecycle hooks only, as in PyFlink
    def open(self, runtime_context: RuntimeContext) -> None:
        pass

    def close(self) -> None:
        pass


class MapFunction(Function):
    @abstractmethod
    def map(self, value: Any) -> Any: ...


class FlatMapFunction(Function):
    @abstractmethod
    def flat_map(self, value: Any) -> Iterable[Any] | None: ...


class FilterFunction(Function):
    @abstractmethod
    def filter(self, value: Any) -> bool: ...


class ReduceFunction(Function):
    @abstractmethod
    def reduce(self, value1: Any, value2: Any) -> Any: ...


class AggregateFunction(Function):
    @abstractmethod
    def create_accumulator(self) -> Any: ...

    @abstractmethod
    def add(self, value: Any, accumulator: Any) -> Any: ...

    @abstractmethod
    def get_result(self, accumulator: Any) -> Any: ...

    def merge(self, acc_a: Any, acc_b: Any) -> Any:
        raise NotImplementedError("merge is needed only by merging windows")


class KeySelector(Function):
    @abstractmethod
    def get_key(self, value: Any) -> Any: ...


class Partitioner(Function):
    """Assigns keys to partitions for `DataStream.partition_custom(partitioner, key_selector)`: the
    record goes to the downstream subtask `partition(key, num_partitions)` (0 <= it < num_partitions)."""

    @abstractmethod
    def partition(self, key: Any, num_partitions: int) -> int: ...


class SinkFunction(Function):
    """A sink written in Python: `invoke(value, context)` per record."""

    @abstractmethod
    def invoke(self, value: Any, context: Any) -> None: ...


class SourceFunction(Function):
    """A (non-parallel) source written in Python: `run(ctx)` calls `ctx.collect(value)` until it returns
    or `cancel()` is called."""

    @abstractmethod
    def run(self, ctx: SourceContext) -> None: ...

    def cancel(self) -> None:
        pass


class SourceContext(ABC):
    @abstractmethod
    def collect(self, value: Any) -> None: ...

    def collect_with_timestamp(self, value: Any, timestamp: int) -> None:
        self.collect(value)


class TimerService(ABC):
    @abstractmethod
    def current_processing_time(self) -> int: ...

    @abstractmethod
    def current_watermark(self) -> int: ...

    @abstractmethod
    def register_processing_time_timer(self, timestamp: int) -> None: ...

    @abstractmethod
    def register_event_time_timer(self, timestamp: int) -> None: ...

    @abstractmethod
    def delete_processing_time_timer(self, timestamp: int) -> None: ...

    @abstractmethod
    def delete_event_time_timer(self, timestamp: int) -> None: ...


class ProcessFunction(Function):
    class Context(ABC):
        @abstractmethod
        def timer_service(self) -> TimerService: ...

        @abstractmethod
        def timestamp(self) -> int | None: ...

    @abstractmethod
    def process_element(self, value: Any, ctx: ProcessFunction.Context) -> Iterable[Any] | None: ...


class KeyedProcessFunction(Function):
    class Context(ABC):
        @abstractmethod
        def get_current_key(self) -> Any: ...

        @abstractmethod
        def timer_service(self) -> TimerService: ...

        @abstractmethod
        def timestamp(self) -> int | None: ...

    class OnTimerContext(Context):
        @abstractmethod
        def time_domain(self) -> Any: ...

    @abstractmethod
    def process_element(self, value: Any, ctx: KeyedProcessFunction.Context) -> Iterable[Any] | None: ...

    def on_timer(self, timestamp: int, ctx: KeyedProcessFunction.OnTimerContext) -> Iterable[Any] | None:
        pass


class CoMapFunction(Function):
    """For `connected_streams.map`: `map1` for the first stream's records, `map2` for the second's."""

    @abstractmethod
    def map1(self, value: Any) -> Any: ...

    @abstractmethod
    def map2(self, value: Any) -> Any: ...


class CoFlatMapFunction(Function):
    @abstractmethod
    def flat_map1(self, value: Any) -> Iterable[Any] | None: ...

    @abstractmethod
    def flat_map2(self, value: Any) -> Iterable[Any] | None: ...


class CoProcessFunction(Function):
    class Context(ABC):
        @abstractmethod
        def timer_service(self) -> TimerService: ...

        @abstractmethod
        def timestamp(self) -> int | None: ...

    @abstractmethod
    def process_element1(self, value: Any, ctx: CoProcessFunction.Context) -> Iterable[Any] | None: ...

    @abstractmethod
    def process_element2(self, value: Any, ctx: CoProcessFunction.Context) -> Iterable[Any] | None: ...


class KeyedCoProcessFunction(Function):
    """Two keyed streams connected: both sides see the keyed state and timers of the current key."""

    class Context(ABC):
        @abstractmethod
        def get_current_key(self) -> Any: ...

        @abstractmethod
        def timer_service(self) -> TimerService: ...

        @abstractmethod
        def timestamp(self) -> int | None: ...

    class OnTimerContext(Context):
        @abstractmethod
        def time_domain(self) -> Any: ...

    @abstractmethod
    def process_element1(self, value: Any, ctx: KeyedCoProcessFunction.Context) -> Iterable[Any] | None: ...

    @abstractmethod
    def process_element2(self, value: Any, ctx: KeyedCoProcessFunction.Context) -> Iterable[Any] | None: ...

    def on_timer(self, timestamp: int, ctx: KeyedCoProcessFunction.OnTimerContext) -> Iterable[Any] | None:
        pass


class BaseBroadcastProcessFunction(Function):
    class BaseContext(ABC):
        @abstractmethod
        def timestamp(self) -> int | None: ...

        @abstractmethod
        def current_processing_time(self) -> int: ...

        @abstractmethod
        def current_watermark(self) -> int: ...

    class Context(BaseContext):
        """For broadcast elements: the broadcast state is writable."""

        @abstractmethod
        def get_broadcast_state(self, state_descriptor: Any) -> Any: ...

    class ReadOnlyContext(BaseContext):
        """For the other stream's elements: the broadcast state is read-only (every subtask must keep the
        same broadcast state, and only broadcast elements reach every subtask)."""

        @abstractmethod
        def get_broadcast_state(self, state_descriptor: Any) -> Any: ...


class BroadcastProcessFunction(BaseBroadcastProcessFunction, Generic[IN1, IN2, OUT]):
    @abstractmethod
    def process_element(self, value: Any, ctx: BaseBroadcastProcessFunction.ReadOnlyContext) -> Iterable[Any] | None:
        ...

    @abstractmethod
    def process_broadcast_element(self, value: Any, ctx: BaseBroadcastProcessFunction.Context) -> Iterable[Any] | None:
        ...


class KeyedBroadcastProcessFunction(BaseBroadcastProcessFunction, Generic[KEY, IN1, IN2, OUT]):
    class Context(BaseBroadcastProcessFunction.Context, ABC):
        """For broadcast elements (no current key: keyed state and timers are not reachable here)."""

    class ReadOnlyContext(BaseBroadcastProcessFunction.ReadOnlyContext, ABC):
        """For the keyed stream's elements: read-only broadcast state, the element's key, timers."""

        @abstractmethod
        def timer_service(self) -> TimerService: ...

        @abstractmethod
        def get_current_key(self) -> Any: ...

    class OnTimerContext(ReadOnlyContext, ABC):
        """In `on_timer`: the firing timer's key and time domain."""

        @abstractmethod
        def time_domain(self) -> Any: ...

        @abstractmethod
        def get_current_key(self) -> Any: ...

    @abstractmethod
    def process_element(self, value: Any, ctx: KeyedBroadcastProcessFunction.ReadOnlyContext) -> Iterable[Any] | None:
        ...

    @abstractmethod
    def process_broadcast_element(self, value: Any, ctx: KeyedBroadcastProcessFunction.Context) -> Iterable[Any] | None:
        ...

    def on_timer(self, timestamp: int, ctx: KeyedBroadcastProcessFunction.OnTimerContext) -> Iterable[Any] | None:
        pass


class ProcessJoinFunction(Function):
    """For `interval_join(...).between(lower, upper).process`: called per matching (left, right) pair."""

    class Context(ABC):
        @abstractmethod
        def get_left_timestamp(self) -> int: ...

        @abstractmethod
        def get_right_timestamp(self) -> int: ...

        @abstractmethod
        def get_timestamp(self) -> int: ...

    @abstractmethod
    def process_element(self, left: Any, right: Any, ctx: ProcessJoinFunction.Context) -> Iterable[Any] | None: ...


class TimeDomain(enum.Enum):
    """Whether a firing timer is based on event time or on the processing time of the machine."""

    EVENT_TIME = 0
    PROCESSING_TIME = 1


def as_callable(function: Any, method: str) -> Callable[..., Any]:
    """The bound method of a function class, or the plain callable itself."""
    if isinstance(function, Function) or hasattr(function, method):
        return getattr(function, method)
    if callable(function):
        return function
    raise TypeError(f"{function!r} is neither callable nor has a {method}() method")


class FunctionSnapshotContext:
    """What `CheckpointedFunction.snapshot_state` learns about the checkpoint being taken."""

    def __init__(self, checkpoint_id: int, checkpoint_timestamp: int) -> None:
        self.checkpoint_id = checkpoint_id
        self.checkpoint_timestamp = checkpoint_timestamp

    def get_checkpoint_id(self) -> int:
        return self.checkpoint_id

    def get_checkpoint_timestamp(self) -> int:
        return self.checkpoint_timestamp


class FunctionInitializationContext:
    """What `CheckpointedFunction.initialize_state` gets: the operator state store, and whether state was
    restored from a checkpoint or savepoint."""

    def __init__(self, operator_state_store: OperatorStateStore, restored: bool) -> None:
        self._store = operator_state_store
        self._restored = restored

    def is_restored(self) -> bool:
        return self._restored

    def get_operator_state_store(self) -> OperatorStateStore:
        return self._store


class CheckpointedFunction(ABC):
    """Mixed into a user function to keep *operator state* (per subtask, not per key), as Flink's
    CheckpointedFunction: `initialize_state` runs before `open` (register the states there and read them
    back after a restore); `snapshot_state` runs at every checkpoint's barrier (bring the states up to
    date there). Operator list state is redistributed when the parallelism changes; union list state
    gives every subtask all of it; broadcast state gives every subtask the same map."""

    @abstractmethod
    def snapshot_state(self, context: FunctionSnapshotContext) -> None: ...

    @abstractmethod
    def initialize_state(self, context: FunctionInitializationContext) -> None: ...


# -- window functions (WindowedStream / AllWindowedStream): appended by the windows work ----------------

class WindowFunction(Function, Generic[IN, OUT, KEY, W]):
    """Evaluated over one key's fired window (`windowed_stream.apply`, or after reduce/aggregate)."""

    @abstractmethod
    def apply(self, key: Any, window: Any, inputs: Iterable[Any]) -> Iterable[Any] | None:
        """Returns or yields the window's results."""


class AllWindowFunction(Function, Generic[IN, OUT, W]):
    """Evaluated over a fired window of a whole stream (`all_windowed_stream.apply`)."""

    @abstractmethod
    def apply(self, window: Any, inputs: Iterable[Any]) -> Iterable[Any] | None:
        """Returns or yields the window's results."""


class ProcessWindowFunction(Function, Generic[IN, OUT, KEY, W]):
    """Evaluated over one key's fired window with a context: the window, the time, and state per key and
    window (`window_state()`) or per key (`global_state()`). Yield `(output_tag, value)` for side outputs."""

    class Context(ABC, Generic[W2]):
        @abstractmethod
        def window(self) -> Any:
            """The window being evaluated."""

        @abstractmethod
        def current_processing_time(self) -> int: ...

        @abstractmethod
        def current_watermark(self) -> int: ...

        @abstractmethod
        def window_state(self) -> Any:
            """State of the current key and window: clean it up in `clear()`."""

        @abstractmethod
        def global_state(self) -> Any:
            """State of the current key, across its windows."""

    @abstractmethod
    def process(self, key: Any, context: ProcessWindowFunction.Context,
                elements: Iterable[Any]) -> Iterable[Any] | None:
        """Returns or yields the window's results."""

    def clear(self, context: ProcessWindowFunction.Context) -> None:
        """The window expired (the watermark passed its end + allowed lateness): delete its window state."""


class ProcessAllWindowFunction(Function, Generic[IN, OUT, W]):
    """ProcessWindowFunction for the windows of a whole stream (`window_all`)."""

    class Context(ABC, Generic[W2]):
        @abstractmethod
        def window(self) -> Any:
            """The window being evaluated."""

        @abstractmethod
        def window_state(self) -> Any:
            """State of the window: clean it up in `clear()`."""

        @abstractmethod
        def global_state(self) -> Any:
            """State across windows."""

    @abstractmethod
    def process(self, context: ProcessAllWindowFunction.Context, elements: Iterable[Any]) -> Iterable[Any] | None:
        """Returns or yields the window's results."""

    def clear(self, context: ProcessAllWindowFunction.Context) -> None:
        """The window expired: delete its window state."""


__all__ = [
    "AggregateFunction",
    "AllWindowFunction",
    "BaseBroadcastProcessFunction",
    "BroadcastProcessFunction",
    "CheckpointedFunction",
    "CoFlatMapFunction",
    "CoMapFunction",
    "CoProcessFunction",
    "FilterFunction",
    "FlatMapFunction",
    "Function",
    "FunctionInitializationContext",
    "FunctionSnapshotContext",
    "KeySelector",
    "KeyedBroadcastProcessFunction",
    "KeyedCoProcessFunction",
    "KeyedProcessFunction",
    "MapFunction",
    "Partitioner",
    "ProcessAllWindowFunction",
    "ProcessFunction",
    "ProcessJoinFunction",
    "ProcessWindowFunction",
    "ReduceFunction",
    "RuntimeContext",
    "SinkFunction",
    "SourceContext",
    "SourceFunction",
    "TimeDomain",
    "TimerService",
    "WindowFunction",
    "as_callable",
]
