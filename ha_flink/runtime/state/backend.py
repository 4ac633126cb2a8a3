"""The keyed state backend contract, shared by `hashmap` (heap.py) and `rocksdb` (rocksdb.py), and the
factory that picks one by `state.backend.type`.

A checkpoint of keyed state has two parts, as in Flink:
1. `snapshot()`, on the task thread between two batches, while the barrier is being forwarded: it must be
   quick and must fix what the snapshot will contain (a copy of the tables, a RocksDB checkpoint of hard
   links), so that the task can go on changing its state at once.
2. `KeyedStateSnapshot.materialize()`, on the task's snapshot thread: the slow part (pickling, uploading
   files). It returns a *handle*: a picklable value that goes into the subtask's snapshot file, and from
   which `restore()` rebuilds the state, in this process or another, at this parallelism or another.

Two handle formats exist:
- the **canonical** one, `CanonicalKeyedState`: every entry, by key group, with each state's kind. Every
  backend writes it for savepoints (self-contained, portable across backends) and reads it;
- a backend's **native** one (rocksdb: SST files in `<checkpoints dir>/<jobid>/shared/`, uploaded once and
  referenced by later incremental checkpoints). Only that backend reads it.

State entries are (value) or, with TTL, (value, last-access-ms), the same in every backend; a map state's
value is the whole {user key: user value} dict in the canonical format. A state has TTL when its descriptor
has an enabled `StateTtlConfig` (`ttl_of`); the cleanup strategies are each backend's to honour."""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, MutableMapping, Protocol

from ha_flink.core.state import (
    AggregatingState, AggregatingStateDescriptor, ListState, ListStateDescriptor, MapState, MapStateDescriptor,
    ReducingState, ReducingStateDescriptor, StateDescriptor, StateTtlConfig, ValueState, ValueStateDescriptor,
)
from ha_flink.runtime.key_groups import KeyGroupAssigner, KeyHash, key_group_assigner

# State kinds, as recorded in canonical snapshots (a restore needs them before the state is registered).
VALUE, LIST, MAP, REDUCING, AGGREGATING = "value", "list", "map", "reducing", "aggregating"


def ttl_of(descriptor: StateDescriptor) -> StateTtlConfig | None:
    """The descriptor's TTL, or None where it has none or its update type is Disabled (never expires)."""
    config = descriptor.ttl_config
    return config if config is not None and config.is_enabled() else None


def is_expired(stamp: int, ttl_ms: int, now_ms: int) -> bool:
    """Flink's rule: expired once last access + TTL <= now."""
    return now_ms - stamp >= ttl_ms


@dataclass
class CanonicalKeyedState:
    """Every entry of a keyed state backend by key group: {key group: {state name: {key: entry}}}."""

    kinds: dict[str, str]
    groups: dict[int, dict[str, dict[Any, Any]]] = field(default_factory=dict)


class SnapshotStorage(Protocol):
    """Where a backend's snapshot may put files (the TaskManager's view of the checkpoint storage)."""

    def upload_shared(self, local_path: Path, name: str) -> str:
        """Copy a local file to `<checkpoints dir>/<jobid>/shared/<name>` (write-once); returns its URL."""
        ...

    def download(self, url: str, local_path: Path) -> None:
        """Copy a file of the checkpoint storage to local disk."""
        ...


class KeyedStateSnapshot(ABC):
    """What `KeyedStateBackend.snapshot()` fixed; materialized off the task thread."""

    shared_urls: list[str]  # files of the shared folder the handle references (for the coordinator's registry)
    # bytes of those shared files, and of the ones uploaded for this checkpoint (the rest are reused): a
    # checkpoint's full and checkpointed (incremental) size, as Flink reports them
    shared_bytes: int = 0
    uploaded_bytes: int = 0

    @abstractmethod
    def materialize(self, storage: SnapshotStorage | None) -> Any:
        """The picklable handle (canonical or native). `storage` is None where snapshots stay in memory
        (the local mini cluster): a backend then writes the canonical format."""

    def discard(self) -> None:
        """The checkpoint was given up before materializing: release what `snapshot()` took."""


class NoCurrentKeyError(RuntimeError):
    """Keyed state was read or written while no key was current (Flink: "No key set")."""

    def __init__(self) -> None:
        super().__init__(
            "No key set: keyed state was used outside of a keyed context. Keyed state belongs to the key of the "
            "record being processed or of the timer firing: use it in map/reduce/process_element/on_timer/a "
            "window function, not in open(), close() or process_broadcast_element (get the state objects in "
            "open(), read and write them per record)")


class _NoKey:
    """`current_key` outside a keyed context: before the first record, in open() and close(), in a broadcast
    process function's process_broadcast_element. Its hash raises, so every keyed state access fails clearly
    (a dict lookup hashes the key) at no cost to the per-record path; None stays a key like any other."""

    _instance: _NoKey | None = None

    def __new__(cls) -> _NoKey:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __hash__(self) -> int:
        raise NoCurrentKeyError()

    def __reduce__(self) -> str:
        return "NO_KEY"  # (copies and pickles stay the one instance)

    def __repr__(self) -> str:
        return "NO_KEY"


NO_KEY: Any = _NoKey()


class KeyedStateBackend(ABC):
    """Keyed state of one operator of one subtask: the states registered through the runtime context, read
    and written for `current_key`, which the operator sets before each record (NO_KEY outside a keyed
    context: any state access then raises NoCurrentKeyError)."""

    def __init__(self, key_groups: range, max_parallelism: int, clock: Callable[[], float] = time.time,
                 key_group_of: KeyGroupAssigner | None = None) -> None:
        """`key_group_of`: the keyed stream's key -> key group (runtime/key_groups.py; by default Flink's
        hash of pickled keys), the one its partitioner routes by."""
        self.key_groups = key_groups  # the key groups this subtask owns
        self.max_parallelism = max_parallelism
        self.key_group_of = key_group_of or key_group_assigner(KeyHash.FLINK, None, max_parallelism)
        self.current_key: Any = NO_KEY
        self._clock = clock

    def now_ms(self) -> int:
        return int(self._clock() * 1000)

    @abstractmethod
    def get_state(self, descriptor: ValueStateDescriptor) -> ValueState: ...

    @abstractmethod
    def get_list_state(self, descriptor: ListStateDescriptor) -> ListState: ...

    @abstractmethod
    def get_map_state(self, descriptor: MapStateDescriptor) -> MapState: ...

    @abstractmethod
    def get_reducing_state(self, descriptor: ReducingStateDescriptor) -> ReducingState: ...

    @abstractmethod
    def get_aggregating_state(self, descriptor: AggregatingStateDescriptor) -> AggregatingState: ...

    def owns(self, key: Any) -> bool:
        """Whether `key` falls in this subtask's key groups (what a restore keeps of timers and other
        per-key entries every old subtask's snapshot holds after rescaling)."""
        return self.key_group_of(key) in self.key_groups

    def raw_table(self, name: str) -> MutableMapping[Any, Any] | None:
        """A plain {key: value} dict of a value-kind state, for operators whose per-record path must not
        go through state objects (keyed reduce), or None where state is not a dict (rocksdb)."""
        return None

    def raw_map_table(self, name: str) -> MutableMapping[Any, dict[Any, Any]] | None:
        """The {key: {user key: value}} dict behind map state `name`, where the backend keeps one (heap,
        without TTL), for operators whose per-record path must not go through the state API (windows);
        None elsewhere: use `get_map_state`. Callers may change the inner dicts in place (snapshots copy
        them) but must not keep an empty inner dict (remove the key instead)."""
        return None

    @abstractmethod
    def keys(self, state_name: str) -> list[Any]:
        """Every key with an entry in that state."""

    @abstractmethod
    def snapshot(self, checkpoint_id: int, canonical: bool = False) -> KeyedStateSnapshot:
        """The synchronous part of a checkpoint (`canonical`: a savepoint, in the canonical format)."""

    @abstractmethod
    def restore(self, handles: list[Any], storage: SnapshotStorage | None) -> None:
        """Before any state is used: load the entries of this subtask's key groups from `handles` (the
        operator's part of every old subtask's snapshot that may hold some; several after rescaling)."""

    def notify_checkpoint_complete(self, checkpoint_id: int) -> None:
        """Checkpoint `checkpoint_id` is committed: what it uploaded may be referenced by later ones."""

    def dispose(self) -> None:
        """The task ends: free memory, close and delete local files."""


ABSENT = object()  # what `_get` returns for a key without an entry (None is a value a list may hold)


class EntryValueState(ValueState):
    """Value state over one entry per key; a backend's class adds `_get`, `_put` and `clear`."""

    def value(self) -> Any:
        value = self._get()  # type: ignore[attr-defined]
        return None if value is ABSENT else value

    def update(self, value: Any) -> None:
        if value is None:
            self.clear()
        else:
            self._put(value)  # type: ignore[attr-defined]


class EntryListState(ListState):
    def get(self) -> list[Any]:
        value = self._get()  # type: ignore[attr-defined]
        return [] if value is ABSENT else value

    def add(self, value: Any) -> None:
        self.add_all([value])

    def add_all(self, values: list[Any]) -> None:
        current = self._get()  # type: ignore[attr-defined]
        self._put(([] if current is ABSENT else current) + list(values))  # type: ignore[attr-defined]

    def update(self, values: list[Any]) -> None:
        if values:
            self._put(list(values))  # type: ignore[attr-defined]
        else:
            self.clear()


class EntryReducingState(ReducingState):
    reduce: Callable[[Any, Any], Any]

    def get(self) -> Any:
        value = self._get()  # type: ignore[attr-defined]
        return None if value is ABSENT else value

    def add(self, value: Any) -> None:
        current = self._get()  # type: ignore[attr-defined]
        self._put(value if current is ABSENT else self.reduce(current, value))  # type: ignore[attr-defined]


class EntryAggregatingState(AggregatingState):
    function: Any  # an AggregateFunction

    def get(self) -> Any:
        accumulator = self._get()  # type: ignore[attr-defined]
        return None if accumulator is ABSENT else self.function.get_result(accumulator)

    def add(self, value: Any) -> None:
        accumulator = self._get()  # type: ignore[attr-defined]
        if accumulator is ABSENT:
            accumulator = self.function.create_accumulator()
        self._put(self.function.add(value, accumulator))  # type: ignore[attr-defined]


class ValueStateTable(MutableMapping[Any, Any]):
    """A value state seen as a {key: value} mapping (what `raw_table` gives where the backend has no dict):
    each access sets the backend's current key."""

    def __init__(self, backend: KeyedStateBackend, name: str) -> None:
        self.backend = backend
        self.name = name
        self.state = backend.get_state(ValueStateDescriptor(name))

    def __getitem__(self, key: Any) -> Any:
        self.backend.current_key = key
        value = self.state.value()
        if value is None:
            raise KeyError(key)
        return value

    def get(self, key: Any, default: Any = None) -> Any:
        self.backend.current_key = key
        value = self.state.value()
        return default if value is None else value

    def __setitem__(self, key: Any, value: Any) -> None:
        self.backend.current_key = key
        self.state.update(value)

    def __delitem__(self, key: Any) -> None:
        self.backend.current_key = key
        self.state.clear()

    def __iter__(self) -> Iterator[Any]:
        return iter(self.backend.keys(self.name))

    def __len__(self) -> int:
        return len(self.backend.keys(self.name))


@dataclass(frozen=True)
class StateBackendSettings:
    """What a task needs to build its operators' keyed state backends."""

    kind: str = "hashmap"  # state.backend.type
    incremental: bool = False  # state.backend.incremental (rocksdb only)
    local_dir: str | None = None  # state.backend.rocksdb.localdir, else a temp folder
