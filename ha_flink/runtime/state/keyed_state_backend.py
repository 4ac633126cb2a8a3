"""The hashmap keyed state backend: per state name, a dict from key to value, read and written for the
"current key" the operator sets before each record (as in Flink's HeapKeyedStateBackend).

TTL is processing time: each entry remembers when it was last written (or read, by its config), and an
expired entry reads as absent and is dropped on access."""

from __future__ import annotations

import time
from typing import Any, Callable, Iterable

from ha_flink.datastream.state import (
    AggregatingState, AggregatingStateDescriptor, ListState, ListStateDescriptor, MapState, MapStateDescriptor,
    ReducingState, ReducingStateDescriptor, StateDescriptor, StateTtlConfig, ValueState, ValueStateDescriptor,
)

_ABSENT = object()


class KeyedStateBackend:
    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.current_key: Any = None
        self.tables: dict[str, dict[Any, Any]] = {}
        self._states: dict[str, Any] = {}
        self._clock = clock

    def now_ms(self) -> int:
        return int(self._clock() * 1000)

    def _state(self, descriptor: StateDescriptor, kind: type, factory: Callable[[dict[Any, Any]], Any]) -> Any:
        existing = self._states.get(descriptor.name)
        if existing is not None:
            if not isinstance(existing, kind):
                raise ValueError(f"state {descriptor.name!r} is already registered as {type(existing).__name__}")
            return existing
        table = self.tables.setdefault(descriptor.name, {})
        state = factory(table)
        self._states[descriptor.name] = state
        return state

    def get_state(self, descriptor: ValueStateDescriptor) -> ValueState:
        return self._state(descriptor, HeapValueState, lambda t: HeapValueState(self, t, descriptor.ttl_config))

    def get_list_state(self, descriptor: ListStateDescriptor) -> ListState:
        return self._state(descriptor, HeapListState, lambda t: HeapListState(self, t, descriptor.ttl_config))

    def get_map_state(self, descriptor: MapStateDescriptor) -> MapState:
        return self._state(descriptor, HeapMapState, lambda t: HeapMapState(self, t, descriptor.ttl_config))

    def get_reducing_state(self, descriptor: ReducingStateDescriptor) -> ReducingState:
        return self._state(descriptor, HeapReducingState,
                           lambda t: HeapReducingState(self, t, descriptor.ttl_config, descriptor.reduce))

    def get_aggregating_state(self, descriptor: AggregatingStateDescriptor) -> AggregatingState:
        return self._state(descriptor, HeapAggregatingState,
                           lambda t: HeapAggregatingState(self, t, descriptor.ttl_config, descriptor.agg_function))

    def keys(self, state_name: str) -> Iterable[Any]:
        return list(self.tables.get(state_name, {}))

    def snapshot(self, max_parallelism: int) -> dict[int, dict[str, dict[Any, Any]]]:
        """Every entry, grouped by key group (the unit keyed state moves in when parallelism changes)."""
        from ha_flink.runtime.partitioner import assign_to_key_group

        groups: dict[int, dict[str, dict[Any, Any]]] = {}
        for name, table in self.tables.items():
            for key, value in table.items():
                group = assign_to_key_group(key, max_parallelism)
                groups.setdefault(group, {}).setdefault(name, {})[key] = value
        return groups

    def restore(self, snapshots: Iterable[dict[int, dict[str, dict[Any, Any]]]], key_groups: range) -> None:
        """Take the entries of `key_groups` from any number of snapshots (several after rescaling)."""
        for snapshot in snapshots:
            for group, tables in snapshot.items():
                if group in key_groups:
                    for name, entries in tables.items():
                        self.tables.setdefault(name, {}).update(entries)


class _HeapState:
    """Shared get/put of one key's entry, with TTL stamps when configured."""

    def __init__(self, backend: KeyedStateBackend, table: dict[Any, Any], ttl: StateTtlConfig | None) -> None:
        self.backend = backend
        self.table = table
        self.ttl = ttl

    def _get(self) -> Any:
        if self.ttl is None:
            return self.table.get(self.backend.current_key, _ABSENT)
        entry = self.table.get(self.backend.current_key)
        if entry is None:
            return _ABSENT
        value, stamp = entry
        now = self.backend.now_ms()
        if now - stamp >= self.ttl.ttl_ms:
            if self.ttl.state_visibility == StateTtlConfig.StateVisibility.NeverReturnExpired:
                del self.table[self.backend.current_key]
                return _ABSENT
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


class HeapValueState(_HeapState, ValueState):
    def value(self) -> Any:
        value = self._get()
        return None if value is _ABSENT else value

    def update(self, value: Any) -> None:
        if value is None:
            self.clear()
        else:
            self._put(value)


class HeapListState(_HeapState, ListState):
    def get(self) -> list[Any]:
        value = self._get()
        return [] if value is _ABSENT else value

    def add(self, value: Any) -> None:
        self.add_all([value])

    def add_all(self, values: list[Any]) -> None:
        current = self._get()
        self._put(([] if current is _ABSENT else current) + list(values))

    def update(self, values: list[Any]) -> None:
        if values:
            self._put(list(values))
        else:
            self.clear()


class HeapMapState(_HeapState, MapState):
    def _map(self, create: bool = False) -> dict[Any, Any] | None:
        value = self._get()
        if value is _ABSENT:
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


class HeapReducingState(_HeapState, ReducingState):
    def __init__(self, backend: KeyedStateBackend, table: dict[Any, Any], ttl: StateTtlConfig | None,
                 reduce: Callable[[Any, Any], Any]) -> None:
        super().__init__(backend, table, ttl)
        self.reduce = reduce

    def get(self) -> Any:
        value = self._get()
        return None if value is _ABSENT else value

    def add(self, value: Any) -> None:
        current = self._get()
        self._put(value if current is _ABSENT else self.reduce(current, value))


class HeapAggregatingState(_HeapState, AggregatingState):
    def __init__(self, backend: KeyedStateBackend, table: dict[Any, Any], ttl: StateTtlConfig | None,
                 function: Any) -> None:
        super().__init__(backend, table, ttl)
        self.function = function

    def get(self) -> Any:
        accumulator = self._get()
        return None if accumulator is _ABSENT else self.function.get_result(accumulator)

    def add(self, value: Any) -> None:
        accumulator = self._get()
        if accumulator is _ABSENT:
            accumulator = self.function.create_accumulator()
        self._put(self.function.add(value, accumulator))
