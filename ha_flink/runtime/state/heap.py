"""The `hashmap` keyed state backend: per state name, a dict from key to entry, read and written for the
"current key" the operator sets before each record (as Flink's HeapKeyedStateBackend).

A snapshot copies the tables on the task thread (a dict copy per state, and per map-state entry, since map
states change their dicts in place: far quicker than pickling), then groups the copy by key group into the
canonical format off the task thread.

TTL is processing time: each entry remembers when it was last written (or read, by its config), and an
expired entry reads as absent and is dropped on access."""

from __future__ import annotations

import time
from typing import Any, Callable, Iterable, Literal, MutableMapping, overload

from ha_flink.core.state import (
    AggregatingState, AggregatingStateDescriptor, ListState, ListStateDescriptor, MapState, MapStateDescriptor,
    ReducingState, ReducingStateDescriptor, StateDescriptor, StateTtlConfig, ValueState, ValueStateDescriptor,
)
from ha_flink.runtime.partitioner import assign_to_key_group
from ha_flink.runtime.state.backend import (
    ABSENT, AGGREGATING, LIST, MAP, REDUCING, VALUE, CanonicalKeyedState, EntryAggregatingState, EntryListState,
    EntryReducingState, EntryValueState, KeyedStateBackend, KeyedStateSnapshot, SnapshotStorage,
)



class HeapKeyedStateBackend(KeyedStateBackend):
    def __init__(self, key_groups: range | None = None, max_parallelism: int = 128,
                 clock: Callable[[], float] = time.time) -> None:
        super().__init__(range(max_parallelism) if key_groups is None else key_groups, max_parallelism, clock)
        self.tables: dict[str, dict[Any, Any]] = {}
        self.kinds: dict[str, str] = {}
        self._states: dict[str, Any] = {}

    def _state(self, descriptor: StateDescriptor, kind: type, label: str,
               factory: Callable[[dict[Any, Any]], Any]) -> Any:
        existing = self._states.get(descriptor.name)
        if existing is not None:
            if not isinstance(existing, kind):
                raise ValueError(f"state {descriptor.name!r} is already registered as {type(existing).__name__}")
            return existing
        table = self.tables.setdefault(descriptor.name, {})
        self.kinds[descriptor.name] = label
        state = factory(table)
        self._states[descriptor.name] = state
        return state

    def get_state(self, descriptor: ValueStateDescriptor) -> ValueState:
        return self._state(descriptor, HeapValueState, VALUE,
                           lambda t: HeapValueState(self, t, descriptor.ttl_config))

    def get_list_state(self, descriptor: ListStateDescriptor) -> ListState:
        return self._state(descriptor, HeapListState, LIST, lambda t: HeapListState(self, t, descriptor.ttl_config))

    def get_map_state(self, descriptor: MapStateDescriptor) -> MapState:
        return self._state(descriptor, HeapMapState, MAP, lambda t: HeapMapState(self, t, descriptor.ttl_config))

    def get_reducing_state(self, descriptor: ReducingStateDescriptor) -> ReducingState:
        return self._state(descriptor, HeapReducingState, REDUCING,
                           lambda t: HeapReducingState(self, t, descriptor.ttl_config, descriptor.reduce))

    def get_aggregating_state(self, descriptor: AggregatingStateDescriptor) -> AggregatingState:
        return self._state(descriptor, HeapAggregatingState, AGGREGATING,
                           lambda t: HeapAggregatingState(self, t, descriptor.ttl_config, descriptor.agg_function))

    def raw_table(self, name: str) -> MutableMapping[Any, Any] | None:
        self.kinds.setdefault(name, VALUE)
        return self.tables.setdefault(name, {})

    def raw_map_table(self, name: str) -> MutableMapping[Any, dict[Any, Any]] | None:
        if self.kinds.setdefault(name, MAP) != MAP:
            raise ValueError(f"state {name!r} is already registered as {self.kinds[name]} state")
        return self.tables.setdefault(name, {})

    def keys(self, state_name: str) -> list[Any]:
        return list(self.tables.get(state_name, {}))

    def snapshot(self, checkpoint_id: int, canonical: bool = False) -> KeyedStateSnapshot:
        copies = {}
        for name, table in self.tables.items():
            if self.kinds.get(name) == MAP:  # map states change their dicts in place
                copies[name] = {key: _copy_map_entry(entry) for key, entry in table.items()}
            else:
                copies[name] = dict(table)
        return _HeapSnapshot(dict(self.kinds), copies, self.max_parallelism)

    def restore(self, handles: list[Any], storage: SnapshotStorage | None = None) -> None:
        for handle in handles:
            if not isinstance(handle, CanonicalKeyedState):
                raise TypeError(f"the hashmap state backend cannot restore {type(handle).__name__} state; it was "
                                "written by another backend (restore from a savepoint, which is canonical)")
            for name, kind in handle.kinds.items():
                self.kinds.setdefault(name, kind)
            for group, tables in handle.groups.items():
                if group in self.key_groups:
                    for name, entries in tables.items():
                        self.tables.setdefault(name, {}).update(entries)

    def dispose(self) -> None:
        self.tables.clear()


def _copy_map_entry(entry: Any) -> Any:
    if type(entry) is tuple:  # with TTL: (dict, last access)
        return (dict(entry[0]), entry[1])
    return dict(entry)


class _HeapSnapshot(KeyedStateSnapshot):
    def __init__(self, kinds: dict[str, str], tables: dict[str, dict[Any, Any]], max_parallelism: int) -> None:
        self.kinds = kinds
        self.tables = tables
        self.max_parallelism = max_parallelism
        self.shared_urls = []

    def materialize(self, storage: SnapshotStorage | None) -> CanonicalKeyedState:
        groups: dict[int, dict[str, dict[Any, Any]]] = {}
        for name, table in self.tables.items():
            for key, value in table.items():
                group = assign_to_key_group(key, self.max_parallelism)
                groups.setdefault(group, {}).setdefault(name, {})[key] = value
        return CanonicalKeyedState(self.kinds, groups)


class _HeapState:
    """Shared get/put of one key's entry, with TTL stamps when configured."""

    def __init__(self, backend: HeapKeyedStateBackend, table: dict[Any, Any],
                 ttl: StateTtlConfig | None) -> None:
        self.backend = backend
        self.table = table
        self.ttl = ttl

    def _get(self) -> Any:
        if self.ttl is None:
            return self.table.get(self.backend.current_key, ABSENT)
        entry = self.table.get(self.backend.current_key)
        if entry is None:
            return ABSENT
        value, stamp = entry
        now = self.backend.now_ms()
        if now - stamp >= self.ttl.ttl_ms:
            if self.ttl.state_visibility == StateTtlConfig.StateVisibility.NeverReturnExpired:
                del self.table[self.backend.current_key]
                return ABSENT
        elif self.ttl.update_type == StateTtlConfig.UpdateType.OnReadAndWrite:
            self.table[self.backend.current_key] = (value, now)
        return value

    def _put(self, value: Any) -> None:
        if self.ttl is None:
            self.table[self.backend.current_key] = value
        else:
            self.table[self.backend.current_key] = (value, self.backend.now_ms())

    def clear(self) -> None:
        self.table.pop(self.backend.current_key, None)


class HeapValueState(_HeapState, EntryValueState):
    pass


class HeapListState(_HeapState, EntryListState):
    pass


class HeapMapState(_HeapState, MapState):
    @overload
    def _map(self, create: Literal[True]) -> dict[Any, Any]: ...

    @overload
    def _map(self, create: bool = False) -> dict[Any, Any] | None: ...

    def _map(self, create: bool = False) -> dict[Any, Any] | None:
        value = self._get()
        if value is ABSENT:
            if not create:
                return None
            value = {}
            self._put(value)
        return value

    def get(self, key: Any) -> Any:
        mapping = self._map()
        return None if mapping is None else mapping.get(key)

    def put(self, key: Any, value: Any) -> None:
        mapping = self._map(create=True)
        mapping[key] = value
        self._put(mapping)

    def put_all(self, dict_value: dict[Any, Any]) -> None:
        mapping = self._map(create=True)
        mapping.update(dict_value)
        self._put(mapping)

    def remove(self, key: Any) -> None:
        mapping = self._map()
        if mapping is not None:
            mapping.pop(key, None)
            if not mapping:
                self.clear()

    def contains(self, key: Any) -> bool:
        mapping = self._map()
        return mapping is not None and key in mapping

    def items(self) -> Iterable[tuple[Any, Any]]:
        return list((self._map() or {}).items())

    def keys(self) -> Iterable[Any]:
        return list((self._map() or {}).keys())

    def values(self) -> Iterable[Any]:
        return list((self._map() or {}).values())

    def is_empty(self) -> bool:
        return not self._map()


class HeapReducingState(_HeapState, EntryReducingState):
    def __init__(self, backend: HeapKeyedStateBackend, table: dict[Any, Any], ttl: StateTtlConfig | None,
                 reduce: Callable[[Any, Any], Any]) -> None:
        super().__init__(backend, table, ttl)
        self.reduce = reduce


class HeapAggregatingState(_HeapState, EntryAggregatingState):
    def __init__(self, backend: HeapKeyedStateBackend, table: dict[Any, Any], ttl: StateTtlConfig | None,
                 function: Any) -> None:
        super().__init__(backend, table, ttl)
        self.function = function
