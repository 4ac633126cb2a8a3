"""The `hashmap` keyed state backend: per state name, a dict from key to entry, read and written for the
"current key" the operator sets before each record (as Flink's HeapKeyedStateBackend).

A snapshot copies the tables on the task thread (a dict copy per state, and per map-state entry, since map
states change their dicts in place: far quicker than pickling), then groups the copy by key group into the
canonical format off the task thread.

TTL is processing time: each entry is (value, last access ms), stamped on write (and read, by its config).
Expired entries go, as in Flink's heap backend:
- on read: an expired entry reads as absent and is dropped (with NeverReturnExpired; with
  ReturnExpiredIfNotCleanedUp it is returned until some cleanup drops it);
- `cleanup_incrementally(cleanup_size, run_cleanup_for_every_record)`, on by default (5, False) with
  background cleanup: each state keeps a lazy iterator over its keys (a copy of the key list taken when a
  pass starts, as Flink's iterator with synchronous snapshots), and every access of the state (read or
  write) first checks the next `cleanup_size` keys and drops the expired entries; with
  `run_cleanup_for_every_record` every processed record (each time the operator sets the current key)
  does the same for every such state;
- `cleanup_full_snapshot()`: every snapshot (heap snapshots are always full) leaves out the entries
  expired at the time of the snapshot, so a job restored from it never sees them.
`cleanup_in_rocksdb_compact_filter` is RocksDB's: it has no effect here, as in Flink."""

from __future__ import annotations

import time
from typing import Any, Callable, Iterable, Iterator, Literal, MutableMapping, overload

from ha_flink.core.state import (
    AggregatingState, AggregatingStateDescriptor, ListState, ListStateDescriptor, MapState, MapStateDescriptor,
    ReducingState, ReducingStateDescriptor, StateDescriptor, StateTtlConfig, ValueState, ValueStateDescriptor,
)
from ha_flink.runtime.key_groups import KeyGroupAssigner
from ha_flink.runtime.state.backend import (
    ABSENT, AGGREGATING, LIST, MAP, NO_KEY, REDUCING, VALUE, CanonicalKeyedState, EntryAggregatingState,
    EntryListState, EntryReducingState, EntryValueState, KeyedStateBackend, KeyedStateSnapshot, SnapshotStorage,
    ttl_of,
)

class HeapKeyedStateBackend(KeyedStateBackend):
    def __init__(self, key_groups: range | None = None, max_parallelism: int = 128,
                 clock: Callable[[], float] = time.time, key_group_of: KeyGroupAssigner | None = None) -> None:
        super().__init__(range(max_parallelism) if key_groups is None else key_groups, max_parallelism, clock,
                         key_group_of)
        self.tables: dict[str, dict[Any, Any]] = {}
        self.kinds: dict[str, str] = {}
        self._states: dict[str, Any] = {}
        self._full_snapshot_ttl: dict[str, int] = {}  # state name -> TTL ms, for cleanup_full_snapshot
        self._per_record: list[IncrementalCleanup] = []  # of states that clean up on every record

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
        ttl = ttl_of(descriptor)
        if ttl is not None:
            strategies = ttl.get_cleanup_strategies()
            if strategies.in_full_snapshot():
                self._full_snapshot_ttl[descriptor.name] = ttl.ttl_ms
            incremental = strategies.get_incremental_cleanup_strategy()
            if incremental is not None and incremental.get_cleanup_size() > 0:
                state._incremental = IncrementalCleanup(self, table, ttl.ttl_ms, incremental.get_cleanup_size())
                if incremental.run_cleanup_for_every_record():
                    self._clean_up_on_every_record(state._incremental)
        return state

    def _clean_up_on_every_record(self, cleanup: IncrementalCleanup) -> None:
        """Flink runs this cleanup when the current key changes (a record or a timer). Only a backend that
        has such a state becomes the subclass whose `current_key` is a property: every other keeps the
        plain attribute the operators' per-record path sets."""
        self._per_record.append(cleanup)
        if not isinstance(self, _PerRecordCleanupBackend):
            key = self.__dict__.pop("current_key", NO_KEY)
            self.__class__ = _PerRecordCleanupBackend
            self._key = key

    def get_state(self, descriptor: ValueStateDescriptor) -> ValueState:
        return self._state(descriptor, HeapValueState, VALUE, lambda t: HeapValueState(self, t, ttl_of(descriptor)))

    def get_list_state(self, descriptor: ListStateDescriptor) -> ListState:
        return self._state(descriptor, HeapListState, LIST, lambda t: HeapListState(self, t, ttl_of(descriptor)))

    def get_map_state(self, descriptor: MapStateDescriptor) -> MapState:
        return self._state(descriptor, HeapMapState, MAP, lambda t: HeapMapState(self, t, ttl_of(descriptor)))

    def get_reducing_state(self, descriptor: ReducingStateDescriptor) -> ReducingState:
        return self._state(descriptor, HeapReducingState, REDUCING,
                           lambda t: HeapReducingState(self, t, ttl_of(descriptor), descriptor.reduce))

    def get_aggregating_state(self, descriptor: AggregatingStateDescriptor) -> AggregatingState:
        return self._state(descriptor, HeapAggregatingState, AGGREGATING,
                           lambda t: HeapAggregatingState(self, t, ttl_of(descriptor), descriptor.agg_function))

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
        expiring = {name: ttl_ms for name, ttl_ms in self._full_snapshot_ttl.items() if name in copies}
        return _HeapSnapshot(dict(self.kinds), copies, self.key_group_of, expiring, self.now_ms())

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


class _PerRecordCleanupBackend(HeapKeyedStateBackend):
    """A heap backend with a state configured with `run_cleanup_for_every_record`: setting the current key
    (once per record or timer) runs those states' incremental cleanup."""

    _key: Any

    @property
    def current_key(self) -> Any:
        return self._key

    @current_key.setter
    def current_key(self, key: Any) -> None:
        self._key = key
        if key is not NO_KEY:
            for cleanup in self._per_record:
                cleanup.run()


class IncrementalCleanup:
    """Flink's TtlIncrementalCleanup for one state's table: a lazy iterator over its keys, `size` of them
    checked per call. The iterator walks a copy of the key list taken when a pass starts (a dict cannot be
    iterated while it changes); keys added meanwhile wait for the next pass, as in Flink."""

    def __init__(self, backend: HeapKeyedStateBackend, table: dict[Any, Any], ttl_ms: int, size: int) -> None:
        self.backend = backend
        self.table = table
        self.ttl_ms = ttl_ms
        self.size = size
        self._keys: Iterator[Any] | None = None

    def run(self) -> None:
        table = self.table
        deadline = self.backend.now_ms() - self.ttl_ms  # an entry stamped at or before it is expired
        left = self.size
        # A pass that ends within a call goes on into a new one (once): Flink's visitor walks the live
        # table and so also meets the keys added since its pass began, which a copied key list misses.
        for _ in range(2):
            if self._keys is None:
                if not table:
                    return
                self._keys = iter(list(table))
            for key in self._keys:
                entry = table.get(key)
                if entry is not None and entry[1] <= deadline:
                    del table[key]
                left -= 1
                if not left:
                    return
            self._keys = None  # the pass is over


def _copy_map_entry(entry: Any) -> Any:
    if type(entry) is tuple:  # with TTL: (dict, last access)
        return (dict(entry[0]), entry[1])
    return dict(entry)


class _HeapSnapshot(KeyedStateSnapshot):
    def __init__(self, kinds: dict[str, str], tables: dict[str, dict[Any, Any]], key_group_of: KeyGroupAssigner,
                 expiring: dict[str, int], now_ms: int) -> None:
        self.kinds = kinds
        self.tables = tables
        self.key_group_of = key_group_of
        self.expiring = expiring  # states with cleanup_full_snapshot -> TTL ms
        self.now_ms = now_ms  # when the snapshot was taken: what is expired then stays out
        self.shared_urls = []

    def materialize(self, storage: SnapshotStorage | None) -> CanonicalKeyedState:
        groups: dict[int, dict[str, dict[Any, Any]]] = {}
        for name, table in self.tables.items():
            ttl_ms = self.expiring.get(name)
            if ttl_ms is not None:
                deadline = self.now_ms - ttl_ms
                table = {key: entry for key, entry in table.items() if entry[1] > deadline}
            for key, value in table.items():
                group = self.key_group_of(key)
                groups.setdefault(group, {}).setdefault(name, {})[key] = value
        return CanonicalKeyedState(self.kinds, groups)


class _HeapState:
    """Shared get/put of one key's entry, with TTL stamps when configured."""

    _incremental: IncrementalCleanup | None = None  # set by the backend when the state has one

    def __init__(self, backend: HeapKeyedStateBackend, table: dict[Any, Any],
                 ttl: StateTtlConfig | None) -> None:
        self.backend = backend
        self.table = table
        self.ttl = ttl

    def _get(self) -> Any:
        if self.ttl is None:
            return self.table.get(self.backend.current_key, ABSENT)
        if self._incremental is not None:
            self._incremental.run()
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
            if self._incremental is not None:
                self._incremental.run()
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
