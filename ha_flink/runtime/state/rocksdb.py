"""The `rocksdb` keyed state backend (as Flink's EmbeddedRocksDBStateBackend): every keyed state entry of one
operator of one subtask lives in an embedded RocksDB database on local disk (through rocksdict, in raw
mode), so state far larger than memory does not sit in Python objects; checkpoints are RocksDB checkpoints
(hard links of the immutable SST files) uploaded to the checkpoint storage, incrementally if configured.

This module owns the database, its on-disk layout, its snapshots and its native handle format
(`RocksDBStateHandle`); it also writes and reads the canonical format of backend.py.

Local files, under `state.backend.rocksdb.localdir` (else the system temp folder):

    <owner>-<token>/db/                    the live database
    <owner>-<token>/chk-<id>-<n>/          a snapshot fixed by `snapshot()` (hard links), until materialized
    <owner>-<token>/restore-<n>/           an old database being copied from, while rescaling

Database keys (bytes, sorted bytewise, so a key group range is one contiguous range of the database, and
one key's map is one contiguous range too):

    key group (2 bytes, big-endian) | state id (2 bytes) | len(K) (1 byte, or 0xFF + 4 bytes) | K [| U]

where K is the serialized key and U the serialized user key of a map state entry. Values are pickled: for
value, list, reducing and aggregating states exactly the entry the hashmap backend keeps (the value, or
(value, last-access-ms) with TTL); for a map state one database entry per user key (a put does not rewrite
the whole map) holding the pickled user value, plus a *header* entry at the bare key prefix (U empty)
holding the map's TTL stamp (8 bytes, big-endian), or b"" marking an empty map, as put_all({}) leaves one.

Key serialization is pickle protocol 5 (memo-free for tuples, so equal tuples always give equal bytes).
It is deterministic for None, bool, int, float, str, bytes and tuples of them, which is what keys and map
user keys should be. Limits: values that compare equal but differ in type or sign (1, 1.0 and True; 0.0
and -0.0) are distinct keys here while one key for the hashmap backend; sets, frozensets and objects whose
pickle depends on iteration order or identity do not give stable bytes and must not be used as keys.

State files in the checkpoint storage: `<checkpoints dir>/<jobid>/shared/<owner>-<token>-chk<id>-<file>`,
one upload per file, never overwritten (storage is write-once). With incremental checkpoints an SST file
that the last *confirmed* checkpoint uploaded or referenced is referenced again by its URL instead (SST
files are immutable and their numbers never reused in one database's lineage); as in Flink, only
confirmed uploads are reused, so the files of a failed checkpoint may be deleted at any time.

TTL (processing time; entries stamped as above). No cleanup strategy needs a JVM, and each is honoured:
- on read, an expired entry is dropped (NeverReturnExpired) or returned until cleaned up;
- `cleanup_in_rocksdb_compact_filter(query_time_after_num_entries, periodic_compaction_time)`, on by
  default (1000, 30 days) with background cleanup. rocksdict offers no compaction filter (a filter is a
  C++ callback RocksDB runs inside its compactions), so `TtlCompactionFilter` does the filter's work itself
  at *compaction points*, on the task thread, in bounded steps: a cursor walks the entries of the states
  that have the filter (key group by key group, from where the last step stopped), each step examining at
  most `_STEP_ENTRIES` entries, reading the clock again after every `query_time_after_num_entries`
  entries (as Flink's filter), and deleting the expired ones (a whole map by its header's stamp). The
  compaction points are every `_WRITES_PER_STEP` writes to such states (RocksDB compacts as writes
  accumulate) and every `snapshot()` (a checkpoint flushes the memtables); so at most one entry is
  examined per write on average. The deletes are tombstones that RocksDB's own compactions then drop from
  the files. `periodic_compaction_time` (0: off) bounds a pass: at a compaction point where the running
  pass started that long ago, the rest of it runs at once and the whole database is compacted
  (`compact_range`), which removes the expired entries from the files;
- `cleanup_full_snapshot()`: a canonical snapshot (savepoints, the local mini cluster) leaves out the
  entries expired at the time of `snapshot()`; a native one deletes them from its own checkpoint folder
  (the hard-linked copy, never the live database) before the upload, and without incremental checkpoints
  also compacts that copy so that the uploaded files do not hold them. With incremental checkpoints the
  deletes are tombstones in one new file (Flink does not apply this strategy to incremental checkpoints;
  we do, and keep the reuse of unchanged files): a job restored from it does not see the entries. Files
  the filtering writes are never registered for reuse (their numbers are the copy's, not the live
  database's);
- `cleanup_incrementally` is the heap backend's: it has no effect here, as in Flink.

Threads: the states, `snapshot()`, `restore()` and `notify_checkpoint_complete()` run on the task thread;
`materialize()` on the task's snapshot thread reads only its own checkpoint folder (never the live
database), and shares with the task thread only the upload registry, under a lock. No write-ahead log is
written (as Flink): the live database is scratch space between checkpoints, so `dispose()` only flushes
the memtable (RocksDB does on close) and deletes the folder."""

from __future__ import annotations

import io
import os
import pickle
import re
import shutil
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, cast

from rocksdict import (
    AccessType, BlockBasedOptions, Checkpoint, DbClosedError, Options, Rdict, WriteBatch, WriteOptions,
)

from ha_flink.core.state import (
    AggregatingState, AggregatingStateDescriptor, ListState, ListStateDescriptor, MapState, MapStateDescriptor,
    ReducingState, ReducingStateDescriptor, StateDescriptor, StateTtlConfig, ValueState, ValueStateDescriptor,
)
from ha_flink.runtime.key_groups import KeyGroupAssigner
from ha_flink.runtime.state.backend import (
    ABSENT, AGGREGATING, LIST, MAP, NO_KEY, REDUCING, VALUE, CanonicalKeyedState, EntryAggregatingState,
    EntryListState, EntryReducingState, EntryValueState, KeyedStateBackend, KeyedStateSnapshot, NoCurrentKeyError,
    SnapshotStorage, ttl_of,
)

_NO_KEY = object()  # no key cached yet (None is a valid key)
_dumps = pickle.dumps
_loads = pickle.loads
_NEVER_RETURN_EXPIRED = StateTtlConfig.StateVisibility.NeverReturnExpired
_ON_READ_AND_WRITE = StateTtlConfig.UpdateType.OnReadAndWrite
_BATCH = 10_000  # entries per write batch when bulk loading (restore)
_WRITES_PER_STEP = 1000  # writes to states with the TTL compaction filter between two of its steps
_STEP_ENTRIES = 1000  # entries a step of the TTL compaction filter examines at most


def _raw_items(db: Rdict, from_key: bytes | None = None) -> Iterator[tuple[bytes, bytes]]:
    """`db.items()` of a raw-mode database: its keys and values are bytes (rocksdict's stub types the keys
    of every mode, str | int | float | bytes | bool)."""
    items = db.items() if from_key is None else db.items(from_key=from_key)
    return cast("Iterator[tuple[bytes, bytes]]", items)


def _serialize(key: Any) -> bytes:
    """Deterministic bytes of a key or map user key (see the module docstring for the limits)."""
    kind = type(key)
    if kind is int or kind is str or kind is bytes:
        return _dumps(key, 5)  # one object: the memo cannot make equal values differ
    # A memo-free pickler: plain pickle.dumps memoizes by identity, so a tuple holding the same string
    # object twice would pickle differently from one holding two equal strings.
    buffer = io.BytesIO()
    pickler = pickle.Pickler(buffer, 5)
    pickler.fast = True
    pickler.dump(key)
    return buffer.getvalue()


_SIZES = [bytes((size,)) for size in range(0xFF)]  # one-byte length prefixes, prebuilt (hot path)


def _length_prefixed(data: bytes) -> bytes:
    size = len(data)
    return (_SIZES[size] if size < 0xFF else b"\xff" + size.to_bytes(4, "big")) + data


def _split(db_key: bytes) -> tuple[int, int]:
    """(start, end) of K in a database key; the key's prefix is db_key[:end], a user key db_key[end:]."""
    size = db_key[4]
    if size < 0xFF:
        return 5, 5 + size
    size = int.from_bytes(db_key[5:9], "big")
    return 9, 9 + size


def _successor(prefix: bytes) -> bytes:
    """The smallest byte string greater than every string starting with `prefix` (an exclusive end)."""
    stripped = prefix.rstrip(b"\xff")
    if not stripped:
        raise ValueError("no successor of an all-0xFF prefix")
    return stripped[:-1] + bytes((stripped[-1] + 1,))


def _stamp_bytes(stamp: int) -> bytes:
    return stamp.to_bytes(8, "big", signed=True)


def _safe_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", text) or "state"


@dataclass
class RocksDBStateHandle:
    """The native handle: a RocksDB checkpoint's files in the checkpoint storage."""

    key_groups: range  # the key groups the database holds
    max_parallelism: int
    kinds: dict[str, str]  # state name -> kind
    state_ids: dict[str, int]  # state name -> id in database keys
    files: dict[str, str]  # local file name (000012.sst, MANIFEST-000005, ...) -> URL
    checkpoint_id: int = 0


class RocksDBKeyedStateBackend(KeyedStateBackend):
    def __init__(self, key_groups: range, max_parallelism: int, owner: str, local_dir: str | None,
                 incremental: bool, clock: Callable[[], float] = time.time,
                 key_group_of: KeyGroupAssigner | None = None) -> None:
        super().__init__(key_groups, max_parallelism, clock, key_group_of)
        self.owner = _safe_name(owner)
        self.incremental = incremental
        token = uuid.uuid4().hex[:12]
        self._file_prefix = f"{self.owner}-{token}"  # of every uploaded file name
        base = Path(local_dir) if local_dir else Path(tempfile.gettempdir())
        base.mkdir(parents=True, exist_ok=True)
        self.root = base / self._file_prefix
        self.root.mkdir()
        self.db_path = self.root / "db"
        self._options = Options(raw_mode=True)
        self._options.create_if_missing(True)
        table = BlockBasedOptions()
        table.set_bloom_filter(10, False)  # point reads of absent keys (new keys) skip most SST files
        self._options.set_block_based_table_factory(table)
        self._options.set_keep_log_file_num(2)
        # No write-ahead log (as Flink): state is durable through checkpoints only, and a RocksDB checkpoint
        # flushes the memtables first.
        self._write_options = WriteOptions()
        # rocksdict's stub declares disable_wal a method; it is a settable property.
        self._write_options.disable_wal = True  # type: ignore[method-assign, assignment]
        self.db = self._open(self.db_path)
        self._ids: dict[str, int] = {}  # state name -> id
        self.kinds: dict[str, str] = {}
        self._states: dict[str, _RocksState] = {}
        self._key_groups_bytes = [group.to_bytes(2, "big") for group in range(max_parallelism)]
        self._cached_key: Any = _NO_KEY
        self._cached_parts: tuple[bytes, bytes] = (b"", b"")
        self._snapshots = 0
        self._lock = threading.Lock()  # guards the upload registry below (materialize runs on another thread)
        self._pending_uploads: dict[int, dict[str, str]] = {}  # checkpoint id -> {sst file: URL} it references
        self._confirmed_uploads: dict[str, str] = {}  # of the last confirmed checkpoint: reusable
        self._disposed = False
        self._full_snapshot_ttl: dict[str, int] = {}  # state name -> TTL ms, for cleanup_full_snapshot
        self.compaction_filter = TtlCompactionFilter(self)

    # -- database ---------------------------------------------------------------------------------------

    def _open(self, path: Path) -> Rdict:
        db = Rdict(str(path), self._options)
        db.set_write_options(self._write_options)
        return db

    def _close(self) -> None:
        try:
            self.db.close()
        except DbClosedError:
            pass

    def _reopen(self) -> None:
        """Opens the restored database; states registered before (the contract allows it) take its ids."""
        self.db = self._open(self.db_path)
        for name, state in self._states.items():
            state.db = self.db
            state.sid = self._state_id(name, self.kinds.get(name, VALUE)).to_bytes(2, "big")
            state._key = _NO_KEY

    def _key_parts(self, key: Any) -> tuple[bytes, bytes]:
        """(key group bytes, length-prefixed K) of a key, cached for the last key: an operator sets the
        current key once per record and then reads and writes several states for it."""
        if key is self._cached_key:
            return self._cached_parts
        if key is NO_KEY:
            raise NoCurrentKeyError()
        kind = type(key)
        if kind is int or kind is str:  # the common keys, inlined: pickle.dumps is memo-safe for them
            data = _dumps(key, 5)
            size = len(data)
            body = (_SIZES[size] if size < 0xFF else b"\xff" + size.to_bytes(4, "big")) + data
        else:
            body = _length_prefixed(_serialize(key))
        parts = (self._key_groups_bytes[self.key_group_of(key)], body)
        self._cached_key = key
        self._cached_parts = parts
        return parts

    def _state_id(self, name: str, kind: str) -> int:
        sid = self._ids.get(name)
        if sid is None:
            sid = max(self._ids.values(), default=0) + 1
            if sid > 0xFFFF:
                raise ValueError("too many keyed states in one operator (at most 65535)")
            self._ids[name] = sid
        self.kinds.setdefault(name, kind)
        return sid

    # -- states -----------------------------------------------------------------------------------------

    def _state(self, descriptor: StateDescriptor, kind: type, label: str,
               factory: Callable[[bytes], _RocksState]) -> Any:
        existing = self._states.get(descriptor.name)
        if existing is not None:
            if not isinstance(existing, kind):
                raise ValueError(f"state {descriptor.name!r} is already registered as {type(existing).__name__}")
            return existing
        state = factory(self._state_id(descriptor.name, label).to_bytes(2, "big"))
        self._states[descriptor.name] = state
        ttl = ttl_of(descriptor)
        if ttl is not None:
            strategies = ttl.get_cleanup_strategies()
            if strategies.in_full_snapshot():
                self._full_snapshot_ttl[descriptor.name] = ttl.ttl_ms
            compaction = strategies.get_rocksdb_compact_filter_cleanup_strategy()
            if compaction is not None:
                self.compaction_filter.add(descriptor.name, label == MAP, ttl.ttl_ms,
                                           compaction.get_query_time_after_num_entries(),
                                           compaction.get_periodic_compaction_time().to_milliseconds())
                state._filter = self.compaction_filter
        return state

    def get_state(self, descriptor: ValueStateDescriptor) -> ValueState:
        return self._state(descriptor, RocksDBValueState, VALUE,
                           lambda sid: RocksDBValueState(self, sid, ttl_of(descriptor)))

    def get_list_state(self, descriptor: ListStateDescriptor) -> ListState:
        return self._state(descriptor, RocksDBListState, LIST,
                           lambda sid: RocksDBListState(self, sid, ttl_of(descriptor)))

    def get_map_state(self, descriptor: MapStateDescriptor) -> MapState:
        return self._state(descriptor, RocksDBMapState, MAP,
                           lambda sid: RocksDBMapState(self, sid, ttl_of(descriptor)))

    def get_reducing_state(self, descriptor: ReducingStateDescriptor) -> ReducingState:
        return self._state(descriptor, RocksDBReducingState, REDUCING,
                           lambda sid: RocksDBReducingState(self, sid, ttl_of(descriptor), descriptor.reduce))

    def get_aggregating_state(self, descriptor: AggregatingStateDescriptor) -> AggregatingState:
        return self._state(descriptor, RocksDBAggregatingState, AGGREGATING,
                           lambda sid: RocksDBAggregatingState(self, sid, ttl_of(descriptor),
                                                               descriptor.agg_function))

    def keys(self, state_name: str) -> list[Any]:
        sid = self._ids.get(state_name)
        if sid is None:
            return []
        result = []
        last_prefix = b""
        for db_key, _ in _scan_state(self.db, sid.to_bytes(2, "big")):
            start, end = _split(db_key)
            if db_key[:end] != last_prefix:  # map entries of one key are adjacent
                last_prefix = db_key[:end]
                result.append(_loads(db_key[start:end]))
        return result

    # -- checkpoints ------------------------------------------------------------------------------------

    def snapshot(self, checkpoint_id: int, canonical: bool = False) -> KeyedStateSnapshot:
        self.compaction_filter.compaction_point()
        self._snapshots += 1
        folder = self.root / f"chk-{checkpoint_id}-{self._snapshots}"
        # Flushes the memtables, then hard-links the (immutable) SST files and copies the small ones: the
        # live database may change at once without touching the snapshot.
        Checkpoint(self.db).create_checkpoint(str(folder))
        expiring = {self._ids[name]: ttl_ms for name, ttl_ms in self._full_snapshot_ttl.items()}
        return RocksDBSnapshot(self, checkpoint_id, folder, canonical, dict(self._ids), dict(self.kinds),
                               expiring, self.now_ms())

    def notify_checkpoint_complete(self, checkpoint_id: int) -> None:
        with self._lock:
            uploads = self._pending_uploads.pop(checkpoint_id, None)
            if uploads is not None:
                # Later checkpoints reference this one's files; older ones may be deleted once subsumed.
                self._confirmed_uploads = uploads
            for older in [cid for cid in self._pending_uploads if cid < checkpoint_id]:
                del self._pending_uploads[older]

    def _materialized(self, checkpoint_id: int, sst_files: dict[str, str]) -> None:
        with self._lock:
            self._pending_uploads[checkpoint_id] = sst_files

    def _reusable_uploads(self) -> dict[str, str]:
        if not self.incremental:
            return {}
        with self._lock:
            return dict(self._confirmed_uploads)

    def restore(self, handles: list[Any], storage: SnapshotStorage | None = None) -> None:
        for handle in handles:
            if not isinstance(handle, (CanonicalKeyedState, RocksDBStateHandle)):
                raise TypeError(f"the rocksdb state backend cannot restore {type(handle).__name__} state")
            if isinstance(handle, RocksDBStateHandle) and handle.max_parallelism != self.max_parallelism:
                # Key groups are the first bytes of every database key: they cannot be renumbered.
                raise ValueError(f"rocksdb state of max parallelism {handle.max_parallelism} cannot be restored "
                                 f"at max parallelism {self.max_parallelism}")
        if (len(handles) == 1 and isinstance(handles[0], RocksDBStateHandle)
                and handles[0].key_groups == self.key_groups):
            self._restore_whole(handles[0], storage)
            return
        for index, handle in enumerate(handles):
            if isinstance(handle, CanonicalKeyedState):
                self._restore_canonical(handle)
            else:
                self._restore_copy(handle, storage, index)

    def _restore_whole(self, handle: RocksDBStateHandle, storage: SnapshotStorage | None) -> None:
        """Same key groups: the old database becomes ours as it is (no entry is read)."""
        storage = _require_storage(storage)
        self._close()
        try:
            shutil.rmtree(self.db_path)
            self.db_path.mkdir()
            for name, url in handle.files.items():
                _download(storage, url, self.db_path / name)
        except BaseException:
            # Leave an empty, open database behind (dispose() and a retry expect one).
            shutil.rmtree(self.db_path, ignore_errors=True)
            self.db_path.mkdir()
            self._reopen()
            raise
        self._ids = dict(handle.state_ids)
        self.kinds = {**handle.kinds, **self.kinds}  # a state registered already keeps its kind (as heap)
        self._reopen()
        with self._lock:
            # Its SST files are in the storage and referenced by a completed checkpoint: reusable as if
            # confirmed (the file numbers of this database's lineage are never reused).
            self._confirmed_uploads = {name: url for name, url in handle.files.items() if name.endswith(".sst")}

    def _restore_copy(self, handle: RocksDBStateHandle, storage: SnapshotStorage | None, index: int) -> None:
        """Rescaling: copy the entries of our key groups out of an old database."""
        groups = range(max(handle.key_groups.start, self.key_groups.start),
                       min(handle.key_groups.stop, self.key_groups.stop))
        if not groups:
            return
        storage = _require_storage(storage)
        folder = self.root / f"restore-{index}"
        folder.mkdir()
        try:
            for name, url in handle.files.items():
                _download(storage, url, folder / name)
            # Old state ids -> ours (another subtask may have numbered its states differently).
            ids = {old.to_bytes(2, "big"): self._state_id(name, handle.kinds[name]).to_bytes(2, "big")
                   for name, old in handle.state_ids.items()}
            source = Rdict(str(folder), Options(raw_mode=True), access_type=AccessType.read_only())
            try:
                end = self._key_groups_bytes[groups.stop] if groups.stop < self.max_parallelism else None
                entries = _raw_items(source, self._key_groups_bytes[groups.start])  # one range scan
                with _BulkWriter(self.db) as writer:
                    for db_key, value in entries:
                        if end is not None and db_key >= end:
                            break
                        writer.put(db_key[:2] + ids[db_key[2:4]] + db_key[4:], value)
                del entries  # an open iterator keeps the database open
            finally:
                source.close()
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    def _restore_canonical(self, handle: CanonicalKeyedState) -> None:
        sids = {name: self._state_id(name, kind).to_bytes(2, "big") for name, kind in handle.kinds.items()}
        with _BulkWriter(self.db) as writer:
            for group, tables in handle.groups.items():
                if group not in self.key_groups:
                    continue
                group_bytes = self._key_groups_bytes[group]
                for name, entries in tables.items():
                    if name not in sids:  # an entry of a state the handle has no kind for: a value state
                        sids[name] = self._state_id(name, VALUE).to_bytes(2, "big")
                    head = group_bytes + sids[name]
                    if self.kinds[name] != MAP:
                        for key, entry in entries.items():
                            writer.put(head + _length_prefixed(_serialize(key)), _dumps(entry, 5))
                        continue
                    for key, entry in entries.items():
                        prefix = head + _length_prefixed(_serialize(key))
                        if type(entry) is tuple:  # with TTL: (dict, last access)
                            mapping, stamp = entry
                            writer.put(prefix, _stamp_bytes(stamp))
                        else:
                            mapping = entry
                            if not mapping:
                                writer.put(prefix, b"")
                        for user_key, user_value in mapping.items():
                            writer.put(prefix + _serialize(user_key), _dumps(user_value, 5))

    def dispose(self) -> None:
        """Closes the database and deletes its folder (with any snapshot not yet materialized)."""
        if self._disposed:
            return
        self._disposed = True
        self._states.clear()
        try:
            self._close()
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


def _require_storage(storage: SnapshotStorage | None) -> SnapshotStorage:
    if storage is None:
        raise ValueError("restoring rocksdb state files needs the checkpoint storage")
    return storage


def _download(storage: SnapshotStorage, url: str, path: Path) -> None:
    try:
        storage.download(url, path)
    except FileNotFoundError as error:
        raise FileNotFoundError(f"rocksdb state file {url} is missing: {error}") from error
    except Exception as error:
        raise OSError(f"cannot download rocksdb state file {url}: {type(error).__name__}: {error}") from error


def _scan_state(db: Rdict, sid: bytes, from_key: bytes | None = None) -> Iterator[tuple[bytes, bytes]]:
    """Every (database key, value) of one state (from `from_key` on, one of its keys or between two), key
    group by key group, seeking past absent groups."""
    group = 0 if from_key is None else int.from_bytes(from_key[:2], "big")
    while group <= 0xFFFF:
        head = group.to_bytes(2, "big") + sid
        start = head
        if from_key is not None:
            start, from_key = max(head, from_key), None
        for db_key, value in _raw_items(db, start):
            if not db_key.startswith(head):
                # The first key past this group's part of the state: continue from its group.
                next_group = int.from_bytes(db_key[:2], "big")
                group = next_group if db_key[2:4] <= sid else next_group + 1
                break
            yield db_key, value
        else:
            return


def _expired_entry(db_key: bytes, value: bytes, is_map: bool, deadline: int) -> bytes | None:
    """With TTL: the key (a map's prefix, at its header) to delete when this entry is expired (stamped at
    or before `deadline`); None otherwise (a map's user entries are judged by their header)."""
    if not is_map:
        return db_key if _loads(value)[1] <= deadline else None
    end = _split(db_key)[1]
    if len(db_key) == end and len(value) == 8 and int.from_bytes(value, "big", signed=True) <= deadline:
        return db_key
    return None


def _delete_expired(db: Rdict, entries: Iterable[tuple[bytes, bytes]], is_map: bool, deadline: int) -> int:
    """Deletes the expired entries among `entries` (of one state); returns how many (a map counts once)."""
    removed = 0
    for db_key, value in entries:
        prefix = _expired_entry(db_key, value, is_map, deadline)
        if prefix is not None:
            if is_map:
                db.delete_range(prefix, _successor(prefix))
            else:
                db.delete(prefix)
            removed += 1
    return removed


@dataclass
class _FilteredState:
    is_map: bool
    ttl_ms: int
    query_time_after_num_entries: int


class TtlCompactionFilter:
    """What Flink's FlinkCompactionFilter does inside RocksDB's compactions, done at compaction points in
    bounded steps (the module docstring says when and why): a cursor over the entries of the states with
    the filter, deleting the expired ones."""

    def __init__(self, backend: RocksDBKeyedStateBackend) -> None:
        self.backend = backend
        self.states: dict[str, _FilteredState] = {}
        self.periodic_ms = 0  # the shortest periodic compaction time of those states; 0: none
        self.removed = 0  # expired entries deleted so far (a map counts once)
        self._writes_left = _WRITES_PER_STEP
        self._order: list[str] = []  # the states of the running pass, and where it is
        self._position = 0
        self._cursor: bytes | None = None
        self._pass_started_ms = backend.now_ms()

    def add(self, name: str, is_map: bool, ttl_ms: int, query_time_after_num_entries: int,
            periodic_ms: int) -> None:
        self.states[name] = _FilteredState(is_map, ttl_ms, query_time_after_num_entries)
        if periodic_ms > 0:
            self.periodic_ms = periodic_ms if not self.periodic_ms else min(self.periodic_ms, periodic_ms)

    def written(self) -> None:
        """A state with the filter was written."""
        self._writes_left -= 1
        if self._writes_left <= 0:
            self.compaction_point()

    def compaction_point(self) -> None:
        """One step; or, when the running pass is older than the periodic compaction time, the rest of it
        and a compaction of the whole database."""
        if not self.states:
            return
        self._writes_left = _WRITES_PER_STEP
        if self.periodic_ms and self.backend.now_ms() - self._pass_started_ms >= self.periodic_ms:
            # RocksDB's periodic compaction rewrites every file older than that: one whole pass from the
            # start, as the running one (begun earlier) has not seen what was written behind its cursor.
            self._order = []
            while not self.step(_STEP_ENTRIES):
                pass
            self.backend.db.compact_range(None, None)
            self._pass_started_ms = self.backend.now_ms()
            return
        self.step(_STEP_ENTRIES)

    def step(self, budget: int) -> bool:
        """Examines up to `budget` entries from the cursor on; True when that ended a pass."""
        backend = self.backend
        if not self._order:
            self._order = sorted(self.states)
            self._position, self._cursor = 0, None
            self._pass_started_ms = backend.now_ms()
        while budget > 0:
            if self._position >= len(self._order):
                self._order = []
                return True
            name = self._order[self._position]
            state = self.states[name]
            sid = backend._ids[name].to_bytes(2, "big")
            examined: list[tuple[bytes, bytes]] = []
            for entry in _scan_state(backend.db, sid, self._cursor):
                examined.append(entry)
                if len(examined) >= budget:
                    break
            if len(examined) < budget:  # the state's entries are done
                self._position, self._cursor = self._position + 1, None
            else:
                self._cursor = examined[-1][0] + b"\x00"  # the smallest key after the last one examined
            budget -= len(examined)
            # Deleting after the scan: its iterator must not stay open (it pins files and keeps the
            # database open). The clock is read again every `query_time_after_num_entries` entries.
            every = state.query_time_after_num_entries
            for start in range(0, len(examined), every):
                deadline = backend.now_ms() - state.ttl_ms
                self.removed += _delete_expired(backend.db, examined[start:start + every], state.is_map, deadline)
        if self._position >= len(self._order):
            self._order = []
            return True
        return False


class _BulkWriter:
    """Write batches of `_BATCH` entries, for bulk loads."""

    def __init__(self, db: Rdict) -> None:
        self.db = db
        self.batch = WriteBatch(raw_mode=True)
        self.count = 0

    def put(self, key: bytes, value: bytes) -> None:
        self.batch.put(key, value)
        self.count += 1
        if self.count >= _BATCH:
            self.flush()

    def flush(self) -> None:
        if self.count:
            self.db.write(self.batch)
            self.batch = WriteBatch(raw_mode=True)
            self.count = 0

    def __enter__(self) -> _BulkWriter:
        return self

    def __exit__(self, *exc: Any) -> None:
        if exc[0] is None:
            self.flush()


class RocksDBSnapshot(KeyedStateSnapshot):
    """A RocksDB checkpoint folder, uploaded (native) or read into the canonical format by `materialize`."""

    def __init__(self, backend: RocksDBKeyedStateBackend, checkpoint_id: int, folder: Path, canonical: bool,
                 state_ids: dict[str, int], kinds: dict[str, str], expiring: dict[int, int] | None = None,
                 now_ms: int = 0) -> None:
        self.backend = backend
        self.checkpoint_id = checkpoint_id
        self.folder = folder
        self.canonical = canonical
        self.state_ids = state_ids
        self.kinds = kinds
        self.expiring = expiring or {}  # state id -> TTL ms, of the states with cleanup_full_snapshot
        self.now_ms = now_ms  # when snapshot() ran: what is expired then stays out
        self.shared_urls = []

    def materialize(self, storage: SnapshotStorage | None) -> Any:
        try:
            if storage is None or self.canonical:
                return self._canonical()
            return self._native(storage)
        finally:
            self.discard()

    def discard(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)

    def _drop_expired(self) -> set[str]:
        """cleanup_full_snapshot: deletes the expired entries from this checkpoint folder (a database of
        its own); returns the SST files that are still the live database's (hard links), the only ones
        that may be registered for reuse."""
        linked = {name for name in os.listdir(self.folder) if name.endswith(".sst")}
        if not self.expiring:
            return linked
        names = {sid: name for name, sid in self.state_ids.items()}
        options = Options(raw_mode=True)
        options.set_keep_log_file_num(1)
        db = Rdict(str(self.folder), options)
        try:
            removed = 0
            for sid, ttl_ms in self.expiring.items():
                is_map = self.kinds.get(names[sid]) == MAP
                entries = list(_scan_state(db, sid.to_bytes(2, "big")))
                removed += _delete_expired(db, entries, is_map, self.now_ms - ttl_ms)
                del entries
            if removed:
                if not self.backend.incremental:
                    db.compact_range(None, None)  # the uploaded files do not hold them either
                db.flush()
        finally:
            db.close()
        for name in os.listdir(self.folder):
            if name.startswith("LOG"):  # RocksDB's info log: nothing a restore needs
                (self.folder / name).unlink()
        return {name for name in os.listdir(self.folder) if name in linked}

    def _native(self, storage: SnapshotStorage) -> RocksDBStateHandle:
        backend = self.backend
        linked = self._drop_expired()
        reusable = backend._reusable_uploads()
        prefix = f"{backend._file_prefix}-chk{self.checkpoint_id}"
        files: dict[str, str] = {}
        sst_files: dict[str, str] = {}
        for name in sorted(os.listdir(self.folder)):
            path = self.folder / name
            if not path.is_file():
                continue
            size = path.stat().st_size
            self.shared_bytes += size
            if name.endswith(".sst"):
                url = reusable.get(name) if name in linked else None
                if url is None:
                    url = storage.upload_shared(path, f"{prefix}-{name}")
                    self.uploaded_bytes += size
                if name in linked:
                    sst_files[name] = url
            else:  # MANIFEST, CURRENT, OPTIONS, ...: rewritten in place by RocksDB, so uploaded every time
                url = storage.upload_shared(path, f"{prefix}-{name}")
                self.uploaded_bytes += size
            files[name] = url
        backend._materialized(self.checkpoint_id, sst_files)
        self.shared_urls = list(files.values())
        return RocksDBStateHandle(backend.key_groups, backend.max_parallelism, self.kinds, self.state_ids, files,
                                  self.checkpoint_id)

    def _canonical(self) -> CanonicalKeyedState:
        names = {sid.to_bytes(2, "big"): name for name, sid in self.state_ids.items()}
        groups: dict[int, dict[str, dict[Any, Any]]] = {}
        db = Rdict(str(self.folder), Options(raw_mode=True), access_type=AccessType.read_only())
        try:
            table: dict[Any, Any] = {}
            table_head = b""  # key group and state id of `table`
            last_prefix = b""
            mapping: dict[Any, Any] = {}
            is_map = False
            deadline: int | None = None  # entries stamped at or before it are left out (cleanup_full_snapshot)
            expired_prefix = b""  # of an expired map, whose entries are left out
            entries = _raw_items(db)
            for db_key, value in entries:
                head = db_key[:4]
                if head != table_head:
                    table_head = head
                    name = names[db_key[2:4]]
                    is_map = self.kinds.get(name) == MAP
                    group = (db_key[0] << 8) | db_key[1]
                    table = groups.setdefault(group, {}).setdefault(name, {})
                    ttl_ms = self.expiring.get(int.from_bytes(db_key[2:4], "big"))
                    deadline = None if ttl_ms is None else self.now_ms - ttl_ms
                start, end = _split(db_key)
                if not is_map:
                    entry = _loads(value)
                    if deadline is None or entry[1] > deadline:
                        table[_loads(db_key[start:end])] = entry
                    continue
                if expired_prefix and len(db_key) > end and db_key[:end] == expired_prefix:
                    continue  # an entry of an expired map
                if db_key[:end] != last_prefix:  # a new key's map
                    last_prefix = db_key[:end]
                    mapping = {}
                    if deadline is not None and _expired_entry(db_key, value, True, deadline) is not None:
                        expired_prefix = last_prefix
                        continue
                    # The header, if any, sorts first (a prefix sorts before its extensions).
                    has_stamp = len(db_key) == end and len(value) == 8
                    table[_loads(db_key[start:end])] = (
                        (mapping, int.from_bytes(value, "big", signed=True)) if has_stamp else mapping)
                if len(db_key) > end:
                    mapping[_loads(db_key[end:])] = _loads(value)
            del entries  # an open iterator keeps the database open
        finally:
            db.close()
        return CanonicalKeyedState(dict(self.kinds), groups)


class _RocksState:
    """Shared get/put of the current key's entry, with TTL stamps when configured."""

    _filter: TtlCompactionFilter | None = None  # set by the backend when the state has the compaction filter

    def __init__(self, backend: RocksDBKeyedStateBackend, sid: bytes, ttl: StateTtlConfig | None) -> None:
        self.backend = backend
        self.db = backend.db
        self.sid = sid
        self.ttl = ttl
        self._key: Any = _NO_KEY
        self._db_key = b""

    def _current(self) -> bytes:
        """The current key's database key (its map's prefix, for a map state), cached for the last key."""
        backend = self.backend
        key = backend.current_key
        if key is self._key:
            return self._db_key
        group, body = backend._key_parts(key)
        self._key = key
        self._db_key = group + self.sid + body
        return self._db_key

    def _get(self) -> Any:
        db_key = self._current()
        raw = self.db.get(db_key)
        if raw is None:
            return ABSENT
        if self.ttl is None:
            return _loads(raw)
        value, stamp = _loads(raw)
        now = self.backend.now_ms()
        if now - stamp >= self.ttl.ttl_ms:
            if self.ttl.state_visibility == _NEVER_RETURN_EXPIRED:
                self.db.delete(db_key)
                return ABSENT
        elif self.ttl.update_type == _ON_READ_AND_WRITE:
            self.db.put(db_key, _dumps((value, now), 5))
        return value

    def _put(self, value: Any) -> None:
        if self.ttl is None:
            self.db.put(self._current(), _dumps(value, 5))
        else:
            self.db.put(self._current(), _dumps((value, self.backend.now_ms()), 5))
            if self._filter is not None:
                self._filter.written()

    def clear(self) -> None:
        self.db.delete(self._current())


class RocksDBValueState(_RocksState, EntryValueState):
    pass


class RocksDBListState(_RocksState, EntryListState):
    pass


class RocksDBMapState(_RocksState, MapState):
    """One database entry per user key; with TTL, one stamp for the whole map in its header entry (the
    hashmap backend stamps the whole map too)."""

    def _live(self, prefix: bytes) -> bool:
        """With TTL: whether the map exists and is visible (dropping it when expired and never returned,
        refreshing its stamp on read when so configured), as the hashmap backend's `_get`."""
        ttl = self.ttl
        assert ttl is not None  # called only with TTL
        header = self.db.get(prefix)
        if header is None:
            return False
        if len(header) == 8:
            now = self.backend.now_ms()
            if now - int.from_bytes(header, "big", signed=True) >= ttl.ttl_ms:
                if ttl.state_visibility == _NEVER_RETURN_EXPIRED:
                    self._delete_map(prefix)
                    return False
            elif ttl.update_type == _ON_READ_AND_WRITE:
                self.db.put(prefix, _stamp_bytes(now))
        return True

    def _delete_map(self, prefix: bytes) -> None:
        self.db.delete_range(prefix, _successor(prefix))

    def _entries(self, prefix: bytes) -> list[tuple[bytes, bytes]]:
        """(serialized user key, pickled value) of the map, in key order, without the header."""
        size = len(prefix)
        entries = []
        for db_key, value in _raw_items(self.db, prefix):
            if not db_key.startswith(prefix):
                break
            if len(db_key) > size:
                entries.append((db_key[size:], value))
        return entries

    def _visible(self) -> bytes | None:
        """The current key's prefix, or None when its map is expired (TTL only; without TTL a map is its
        entries)."""
        prefix = self._current()
        if self.ttl is not None and not self._live(prefix):
            return None
        return prefix

    def get(self, key: Any) -> Any:
        prefix = self._visible()
        if prefix is None:
            return None
        raw = self.db.get(prefix + _serialize(key))
        return None if raw is None else _loads(raw)

    def put(self, key: Any, value: Any) -> None:
        prefix = self._current()
        if self.ttl is not None:
            self._live(prefix)  # drops an expired map first, so that its entries do not come back
            self.db.put(prefix, _stamp_bytes(self.backend.now_ms()))
        self.db.put(prefix + _serialize(key), _dumps(value, 5))
        if self._filter is not None:
            self._filter.written()

    def put_all(self, dict_value: dict[Any, Any]) -> None:
        prefix = self._current()
        if self.ttl is not None:
            self._live(prefix)
            self.db.put(prefix, _stamp_bytes(self.backend.now_ms()))
        elif not dict_value:
            # An empty map exists after put_all({}) (as in the hashmap backend): mark it unless it has entries.
            if not self._entries(prefix):
                self.db.put(prefix, b"")
            return
        db = self.db
        for user_key, value in dict_value.items():
            db.put(prefix + _serialize(user_key), _dumps(value, 5))
        if self._filter is not None:
            self._filter.written()

    def remove(self, key: Any) -> None:
        prefix = self._visible()
        if prefix is None:
            return
        self.db.delete(prefix + _serialize(key))
        # An emptied map goes, with its header (the TTL stamp, or the empty-map marker).
        if self.db.get(prefix) is not None and not self._entries(prefix):
            self.db.delete(prefix)

    def contains(self, key: Any) -> bool:
        prefix = self._visible()
        return prefix is not None and self.db.get(prefix + _serialize(key)) is not None

    def items(self) -> Iterable[tuple[Any, Any]]:
        prefix = self._visible()
        if prefix is None:
            return []
        return [(_loads(user_key), _loads(value)) for user_key, value in self._entries(prefix)]

    def keys(self) -> Iterable[Any]:
        prefix = self._visible()
        if prefix is None:
            return []
        return [_loads(user_key) for user_key, _ in self._entries(prefix)]

    def values(self) -> Iterable[Any]:
        prefix = self._visible()
        if prefix is None:
            return []
        return [_loads(value) for _, value in self._entries(prefix)]

    def is_empty(self) -> bool:
        prefix = self._visible()
        return prefix is None or not self._entries(prefix)

    def clear(self) -> None:
        self._delete_map(self._current())


class RocksDBReducingState(_RocksState, EntryReducingState):
    def __init__(self, backend: RocksDBKeyedStateBackend, sid: bytes, ttl: StateTtlConfig | None,
                 reduce: Callable[[Any, Any], Any]) -> None:
        super().__init__(backend, sid, ttl)
        self.reduce = reduce


class RocksDBAggregatingState(_RocksState, EntryAggregatingState):
    def __init__(self, backend: RocksDBKeyedStateBackend, sid: bytes, ttl: StateTtlConfig | None,
                 function: Any) -> None:
        super().__init__(backend, sid, ttl)
        self.function = function
