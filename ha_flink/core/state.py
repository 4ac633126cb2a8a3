"""Keyed state as the user sees it, named as in `pyflink.datastream.state`: descriptors, the state
interfaces, and `StateTtlConfig`. The state itself lives in the runtime's keyed state backend."""

from __future__ import annotations

import enum
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, Callable, Generic, Iterable, Iterator, TypeVar, cast

from ha_flink.common.time import Duration, Time, to_milliseconds
from ha_flink.common.typeinfo import TypeInformation, Types
from ha_flink.core.functions import AggregateFunction, ReduceFunction

# PyFlink's type parameters (its state interfaces are Generic: `ValueState[int]` in an annotation works)
T = TypeVar("T")
IN = TypeVar("IN")
OUT = TypeVar("OUT")
K = TypeVar("K")
V = TypeVar("V")


class State(ABC):
    @abstractmethod
    def clear(self) -> None: ...


class ValueState(State, Generic[T]):
    @abstractmethod
    def value(self) -> Any: ...

    @abstractmethod
    def update(self, value: Any) -> None: ...


class AppendingState(State, Generic[IN, OUT]):
    @abstractmethod
    def get(self) -> Any: ...

    @abstractmethod
    def add(self, value: Any) -> None: ...


class MergingState(AppendingState[IN, OUT]):
    """An appending state whose values of several namespaces (windows) can be merged into one."""


class ListState(MergingState[T, Iterable[T]]):
    @abstractmethod
    def update(self, values: list[Any]) -> None: ...

    @abstractmethod
    def add_all(self, values: list[Any]) -> None: ...

    def __iter__(self) -> Iterator[Any]:
        return iter(self.get())


class ReducingState(MergingState[T, T]):
    pass


class AggregatingState(MergingState[IN, OUT]):
    pass


class MapState(State, Generic[K, V]):
    @abstractmethod
    def get(self, key: Any) -> Any: ...

    @abstractmethod
    def put(self, key: Any, value: Any) -> None: ...

    @abstractmethod
    def put_all(self, dict_value: dict[Any, Any]) -> None: ...

    @abstractmethod
    def remove(self, key: Any) -> None: ...

    @abstractmethod
    def contains(self, key: Any) -> bool: ...

    @abstractmethod
    def items(self) -> Iterable[tuple[Any, Any]]: ...

    @abstractmethod
    def keys(self) -> Iterable[Any]: ...

    @abstractmethod
    def values(self) -> Iterable[Any]: ...

    @abstractmethod
    def is_empty(self) -> bool: ...

    def __getitem__(self, key: Any) -> Any:
        return self.get(key)

    def __setitem__(self, key: Any, value: Any) -> None:
        self.put(key, value)

    def __delitem__(self, key: Any) -> None:
        self.remove(key)

    def __contains__(self, key: Any) -> bool:
        return self.contains(key)

    def __iter__(self) -> Iterator[Any]:
        return iter(self.keys())


class ReadOnlyBroadcastState(State, Generic[K, V]):
    """What `process_element` sees of a broadcast state: reads only (every subtask must hold the same)."""

    @abstractmethod
    def get(self, key: Any) -> Any: ...

    @abstractmethod
    def contains(self, key: Any) -> bool: ...

    @abstractmethod
    def items(self) -> Iterable[tuple[Any, Any]]: ...

    @abstractmethod
    def keys(self) -> Iterable[Any]: ...

    @abstractmethod
    def values(self) -> Iterable[Any]: ...

    @abstractmethod
    def is_empty(self) -> bool: ...

    def __getitem__(self, key: Any) -> Any:
        return self.get(key)

    def __contains__(self, key: Any) -> bool:
        return self.contains(key)

    def __iter__(self) -> Iterator[Any]:
        return iter(self.keys())


class BroadcastState(MapState[K, V], ReadOnlyBroadcastState[K, V]):
    """Operator state that is the same map on every subtask (the broadcast state pattern)."""


class OperatorStateStore(ABC):
    """Operator state of one subtask (Flink's OperatorStateStore), from a CheckpointedFunction's
    initialization context."""

    @abstractmethod
    def get_list_state(self, state_descriptor: ListStateDescriptor) -> ListState:
        """Even-split redistribution: after rescaling, the elements of all subtasks are dealt out."""

    @abstractmethod
    def get_union_list_state(self, state_descriptor: ListStateDescriptor) -> ListState:
        """Union redistribution: after any restore, every subtask gets the elements of all subtasks."""

    @abstractmethod
    def get_broadcast_state(self, state_descriptor: MapStateDescriptor) -> BroadcastState:
        """The same map on every subtask; after a restore, every subtask gets subtask 0's copy."""


class StateTtlConfig:
    """Time-to-live of keyed state entries, as PyFlink's `StateTtlConfig` (Flink's StateTtlConfig): built
    with `StateTtlConfig.new_builder(ttl)`, given to a descriptor's `enable_time_to_live`.

    Expiry is processing time (`TtlTimeCharacteristic.ProcessingTime`, the only one, as Flink): an entry
    whose last access (write, or read too with `OnReadAndWrite`) is `ttl` ago or more is expired. Both keyed
    state backends honour every cleanup strategy (runtime/state/heap.py, rocksdb.py say how): an expired
    entry is dropped when read; `cleanup_full_snapshot` keeps expired entries out of full snapshots;
    `cleanup_incrementally` (heap) and `cleanup_in_rocksdb_compact_filter` (rocksdb) remove them in the
    background. Background cleanup is on by default, as in Flink 2.x: incremental (5 entries, not per
    record) for the heap backend, the compaction filter (every 1000 entries) for RocksDB."""

    class UpdateType(enum.Enum):
        """When the last access timestamp, which prolongs the TTL, is updated."""

        Disabled = 0  # TTL is disabled: the state does not expire
        OnCreateAndWrite = 1
        OnReadAndWrite = 2

    class StateVisibility(enum.Enum):
        """Whether an expired value that is not cleaned up yet may be returned."""

        ReturnExpiredIfNotCleanedUp = 0
        NeverReturnExpired = 1

    class TtlTimeCharacteristic(enum.Enum):
        ProcessingTime = 0

    def __init__(self, update_type: StateTtlConfig.UpdateType, state_visibility: StateTtlConfig.StateVisibility,
                 ttl_time_characteristic: StateTtlConfig.TtlTimeCharacteristic, ttl: Duration | Time,
                 cleanup_strategies: StateTtlConfig.CleanupStrategies) -> None:
        self._update_type = StateTtlConfig.UpdateType(update_type)
        self._state_visibility = StateTtlConfig.StateVisibility(state_visibility)
        self._ttl_time_characteristic = StateTtlConfig.TtlTimeCharacteristic(ttl_time_characteristic)
        self._ttl = ttl
        # Read by the backends on every access of a TTL state: kept as a plain int.
        self.ttl_ms = to_milliseconds(ttl, "the state TTL")
        if self.ttl_ms <= 0:
            raise ValueError(f"the state TTL must be positive (at least 1 ms), got {ttl!r}")
        self._cleanup_strategies = cleanup_strategies

    @staticmethod
    def new_builder(ttl: Duration | Time) -> StateTtlConfig.Builder:
        return StateTtlConfig.Builder(ttl)

    def get_update_type(self) -> StateTtlConfig.UpdateType:
        return self._update_type

    def get_state_visibility(self) -> StateTtlConfig.StateVisibility:
        return self._state_visibility

    def get_ttl(self) -> Duration | Time:
        return self._ttl

    def get_ttl_time_characteristic(self) -> StateTtlConfig.TtlTimeCharacteristic:
        return self._ttl_time_characteristic

    def is_enabled(self) -> bool:
        return self._update_type is not StateTtlConfig.UpdateType.Disabled

    def get_cleanup_strategies(self) -> StateTtlConfig.CleanupStrategies:
        return self._cleanup_strategies

    # The backends' names (attributes, not calls, on the per-access path).
    @property
    def update_type(self) -> StateTtlConfig.UpdateType:
        return self._update_type

    @property
    def state_visibility(self) -> StateTtlConfig.StateVisibility:
        return self._state_visibility

    def __eq__(self, other: object) -> bool:
        return isinstance(other, StateTtlConfig) and (
            self._update_type, self._state_visibility, self._ttl_time_characteristic, self.ttl_ms,
            self._cleanup_strategies) == (other._update_type, other._state_visibility,
                                          other._ttl_time_characteristic, other.ttl_ms, other._cleanup_strategies)

    def __hash__(self) -> int:
        return hash((self._update_type, self._state_visibility, self.ttl_ms))

    def __repr__(self) -> str:
        return (f"StateTtlConfig<update_type={self._update_type}, state_visibility={self._state_visibility}, "
                f"ttl_time_characteristic={self._ttl_time_characteristic}, ttl={self._ttl}>")

    class Builder:
        """Builder of a StateTtlConfig; by default OnCreateAndWrite, NeverReturnExpired, processing time and
        background cleanup on."""

        def __init__(self, ttl: Duration | Time) -> None:
            self._ttl = ttl
            self._update_type = StateTtlConfig.UpdateType.OnCreateAndWrite
            self._state_visibility = StateTtlConfig.StateVisibility.NeverReturnExpired
            self._ttl_time_characteristic = StateTtlConfig.TtlTimeCharacteristic.ProcessingTime
            self._is_cleanup_in_background = True
            self._strategies: dict[StateTtlConfig.CleanupStrategies.Strategies,
                                   StateTtlConfig.CleanupStrategies.CleanupStrategy] = {}

        def set_update_type(self, update_type: StateTtlConfig.UpdateType) -> StateTtlConfig.Builder:
            self._update_type = update_type
            return self

        def update_ttl_on_create_and_write(self) -> StateTtlConfig.Builder:
            return self.set_update_type(StateTtlConfig.UpdateType.OnCreateAndWrite)

        def update_ttl_on_read_and_write(self) -> StateTtlConfig.Builder:
            return self.set_update_type(StateTtlConfig.UpdateType.OnReadAndWrite)

        def set_state_visibility(self, state_visibility: StateTtlConfig.StateVisibility) -> StateTtlConfig.Builder:
            self._state_visibility = state_visibility
            return self

        def return_expired_if_not_cleaned_up(self) -> StateTtlConfig.Builder:
            return self.set_state_visibility(StateTtlConfig.StateVisibility.ReturnExpiredIfNotCleanedUp)

        def never_return_expired(self) -> StateTtlConfig.Builder:
            return self.set_state_visibility(StateTtlConfig.StateVisibility.NeverReturnExpired)

        def set_ttl_time_characteristic(
                self, ttl_time_characteristic: StateTtlConfig.TtlTimeCharacteristic) -> StateTtlConfig.Builder:
            self._ttl_time_characteristic = ttl_time_characteristic
            return self

        def use_processing_time(self) -> StateTtlConfig.Builder:
            return self.set_ttl_time_characteristic(StateTtlConfig.TtlTimeCharacteristic.ProcessingTime)

        def cleanup_full_snapshot(self) -> StateTtlConfig.Builder:
            """Leave expired entries out of full snapshots (checkpoints and savepoints), so that a job
            restored from one does not see them."""
            self._strategies[StateTtlConfig.CleanupStrategies.Strategies.FULL_STATE_SCAN_SNAPSHOT] = \
                StateTtlConfig.CleanupStrategies.EMPTY_STRATEGY
            return self

        def cleanup_incrementally(self, cleanup_size: int,
                                  run_cleanup_for_every_record: bool) -> StateTtlConfig.Builder:
            """Every access of the state checks `cleanup_size` entries of a lazy iterator over all of its
            entries and drops the expired ones; with `run_cleanup_for_every_record`, every processed record
            does too. Heap backend only (no effect on RocksDB, as in Flink)."""
            if cleanup_size < 0:
                raise ValueError(f"cleanup_size must not be negative, got {cleanup_size}")
            self._strategies[StateTtlConfig.CleanupStrategies.Strategies.INCREMENTAL_CLEANUP] = \
                StateTtlConfig.CleanupStrategies.IncrementalCleanupStrategy(cleanup_size, run_cleanup_for_every_record)
            return self

        def cleanup_in_rocksdb_compact_filter(self, query_time_after_num_entries: int,
                                              periodic_compaction_time: Duration | None = None,
                                              ) -> StateTtlConfig.Builder:
            """Expired entries are removed by the RocksDB backend's compaction filter, which reads the
            current time again after every `query_time_after_num_entries` entries; files are compacted at
            least every `periodic_compaction_time` (default 30 days; a zero duration turns that off). RocksDB
            backend only (no effect on the heap backend, as in Flink)."""
            if query_time_after_num_entries <= 0:
                raise ValueError(
                    f"query_time_after_num_entries must be positive, got {query_time_after_num_entries}")
            self._strategies[StateTtlConfig.CleanupStrategies.Strategies.ROCKSDB_COMPACTION_FILTER] = \
                StateTtlConfig.CleanupStrategies.RocksdbCompactFilterCleanupStrategy(
                    query_time_after_num_entries, periodic_compaction_time)
            return self

        def disable_cleanup_in_background(self) -> StateTtlConfig.Builder:
            """Turns off the default background cleanup; a strategy configured explicitly stays on."""
            self._is_cleanup_in_background = False
            return self

        def set_ttl(self, ttl: Duration | Time) -> StateTtlConfig.Builder:
            self._ttl = ttl
            return self

        def build(self) -> StateTtlConfig:
            return StateTtlConfig(self._update_type, self._state_visibility, self._ttl_time_characteristic,
                                  self._ttl, StateTtlConfig.CleanupStrategies(dict(self._strategies),
                                                                               self._is_cleanup_in_background))

    class CleanupStrategies:
        """When expired entries are cleaned up besides on read: the strategies configured, and whether the
        backend's default background cleanup is on."""

        class Strategies(enum.Enum):
            FULL_STATE_SCAN_SNAPSHOT = 0
            INCREMENTAL_CLEANUP = 1
            ROCKSDB_COMPACTION_FILTER = 2

        class CleanupStrategy(ABC):  # noqa: B024 - a marker base, as PyFlink's
            """Base of the strategies' configurations."""

        class EmptyCleanupStrategy(CleanupStrategy):
            def __eq__(self, other: object) -> bool:
                return isinstance(other, StateTtlConfig.CleanupStrategies.EmptyCleanupStrategy)

            def __hash__(self) -> int:
                return 0

        @dataclass(frozen=True, eq=True)
        class IncrementalCleanupStrategy(CleanupStrategy):
            _cleanup_size: int
            _run_cleanup_for_every_record: bool

            def __init__(self, cleanup_size: int, run_cleanup_for_every_record: bool) -> None:
                object.__setattr__(self, "_cleanup_size", int(cleanup_size))
                object.__setattr__(self, "_run_cleanup_for_every_record", bool(run_cleanup_for_every_record))

            def get_cleanup_size(self) -> int:
                return self._cleanup_size

            def run_cleanup_for_every_record(self) -> bool:
                return self._run_cleanup_for_every_record

        @dataclass(frozen=True, eq=True)
        class RocksdbCompactFilterCleanupStrategy(CleanupStrategy):
            _query_time_after_num_entries: int
            _periodic_compaction_time: Duration

            def __init__(self, query_time_after_num_entries: int,
                         periodic_compaction_time: Duration | None = None) -> None:
                object.__setattr__(self, "_query_time_after_num_entries", int(query_time_after_num_entries))
                # None (or 0) is PyFlink's default, 30 days, as Flink's
                object.__setattr__(self, "_periodic_compaction_time",
                                   periodic_compaction_time if periodic_compaction_time else Duration.of_days(30))

            def get_query_time_after_num_entries(self) -> int:
                return self._query_time_after_num_entries

            def get_periodic_compaction_time(self) -> Duration:
                return self._periodic_compaction_time

        EMPTY_STRATEGY = EmptyCleanupStrategy()

        def __init__(self, strategies: dict[StateTtlConfig.CleanupStrategies.Strategies,
                                            StateTtlConfig.CleanupStrategies.CleanupStrategy],
                     is_cleanup_in_background: bool) -> None:
            self._strategies = dict(strategies)
            self._is_cleanup_in_background = is_cleanup_in_background

        def is_cleanup_in_background(self) -> bool:
            return self._is_cleanup_in_background

        def in_full_snapshot(self) -> bool:
            return StateTtlConfig.CleanupStrategies.Strategies.FULL_STATE_SCAN_SNAPSHOT in self._strategies

        def get_incremental_cleanup_strategy(self) -> StateTtlConfig.CleanupStrategies.IncrementalCleanupStrategy | None:
            """The configured one; else, with background cleanup, Flink's default (5 entries per access, not
            per record); else None."""
            strategy = self._strategies.get(StateTtlConfig.CleanupStrategies.Strategies.INCREMENTAL_CLEANUP)
            if strategy is None and self._is_cleanup_in_background:
                return StateTtlConfig.CleanupStrategies.IncrementalCleanupStrategy(5, False)
            return cast("StateTtlConfig.CleanupStrategies.IncrementalCleanupStrategy | None", strategy)

        def get_rocksdb_compact_filter_cleanup_strategy(
                self) -> StateTtlConfig.CleanupStrategies.RocksdbCompactFilterCleanupStrategy | None:
            """The configured one; else, with background cleanup, Flink's default (the time read again
            every 1000 entries, periodic compaction every 30 days); else None."""
            strategy = self._strategies.get(StateTtlConfig.CleanupStrategies.Strategies.ROCKSDB_COMPACTION_FILTER)
            if strategy is None and self._is_cleanup_in_background:
                return StateTtlConfig.CleanupStrategies.RocksdbCompactFilterCleanupStrategy(1000)
            return cast("StateTtlConfig.CleanupStrategies.RocksdbCompactFilterCleanupStrategy | None", strategy)

        def __eq__(self, other: object) -> bool:
            return isinstance(other, StateTtlConfig.CleanupStrategies) and (
                self._strategies, self._is_cleanup_in_background) == (
                    other._strategies, other._is_cleanup_in_background)

        def __hash__(self) -> int:
            return hash(self._is_cleanup_in_background)


@dataclass
class StateDescriptor:
    """Names a keyed (or operator) state and its type; `enable_time_to_live` gives it a TTL."""

    name: str
    type_info: Any = None
    ttl_config: StateTtlConfig | None = field(default=None, init=False)

    def get_name(self) -> str:
        return self.name

    def enable_time_to_live(self, ttl_config: StateTtlConfig) -> None:
        """The state's entries expire as `ttl_config` says (a TTL whose update type is Disabled: never)."""
        self.ttl_config = ttl_config


@dataclass
class ValueStateDescriptor(StateDescriptor):
    def __init__(self, name: str, value_type_info: TypeInformation | None = None) -> None:
        super().__init__(name, value_type_info)


@dataclass
class ListStateDescriptor(StateDescriptor):
    def __init__(self, name: str, elem_type_info: TypeInformation | None = None) -> None:
        # The state's type is the list's, as PyFlink's
        super().__init__(name, None if elem_type_info is None else Types.LIST(elem_type_info))


@dataclass
class MapStateDescriptor(StateDescriptor):
    def __init__(self, name: str, key_type_info: Any = None, value_type_info: Any = None) -> None:
        super().__init__(name, value_type_info)
        self.key_type_info = key_type_info


class _ReduceFunctionWrapper(ReduceFunction):
    """A plain callable as a ReduceFunction (PyFlink's ReduceFunctionWrapper)."""

    def __init__(self, func: Callable[[Any, Any], Any]) -> None:
        self._func = func

    def reduce(self, value1: Any, value2: Any) -> Any:
        return self._func(value1, value2)


@dataclass
class ReducingStateDescriptor(StateDescriptor):
    def __init__(self, name: str, reduce_function: ReduceFunction | Callable[[Any, Any], Any],
                 type_info: TypeInformation | None = None) -> None:
        super().__init__(name, type_info)
        # `reduce` is what the backends and window operators call per record: the plain callable itself
        # where one was given (no wrapper call on that path).
        self.reduce: Callable[[Any, Any], Any]
        if isinstance(reduce_function, ReduceFunction):
            self.reduce = reduce_function.reduce
        elif callable(reduce_function):
            self.reduce = reduce_function
            reduce_function = _ReduceFunctionWrapper(reduce_function)
        else:
            raise TypeError("The input must be a ReduceFunction or a callable function!")
        self.reduce_function: ReduceFunction = reduce_function

    def get_reduce_function(self) -> ReduceFunction:
        return self.reduce_function


@dataclass
class AggregatingStateDescriptor(StateDescriptor):
    def __init__(self, name: str, agg_function: AggregateFunction, state_type_info: Any = None) -> None:
        super().__init__(name, state_type_info)
        if not isinstance(agg_function, AggregateFunction):
            raise TypeError("The input must be a pyflink.datastream.functions.AggregateFunction!")
        self.agg_function = agg_function

    def get_agg_function(self) -> AggregateFunction:
        return self.agg_function


__all__ = [
    "AggregatingState",
    "AggregatingStateDescriptor",
    "AppendingState",
    "BroadcastState",
    "ListState",
    "ListStateDescriptor",
    "MapState",
    "MapStateDescriptor",
    "MergingState",
    "OperatorStateStore",
    "ReadOnlyBroadcastState",
    "ReducingState",
    "ReducingStateDescriptor",
    "State",
    "StateDescriptor",
    "StateTtlConfig",
    "ValueState",
    "ValueStateDescriptor",
]
