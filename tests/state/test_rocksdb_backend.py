"""The `rocksdb` keyed state backend on a real embedded RocksDB (rocksdict) in tmp_path: every state kind
and TTL (agreeing with the `hashmap` backend), snapshot isolation, native and canonical round trips,
canonical interchange with the hashmap backend, rescaling by key group, incremental checkpoints against a
write-once local storage, missing files and disposal."""

from __future__ import annotations

import pickle
import random
import shutil
from pathlib import Path
from typing import Any, Callable

import pytest

from ha_flink.common.time import Duration
from ha_flink.datastream.functions import AggregateFunction
from ha_flink.datastream.state import (
    AggregatingStateDescriptor, ListStateDescriptor, MapStateDescriptor, ReducingStateDescriptor, StateTtlConfig,
    ValueStateDescriptor,
)
from ha_flink.runtime.key_groups import assign_to_key_group, key_group_range
from ha_flink.runtime.state.backend import CanonicalKeyedState, KeyedStateBackend
from ha_flink.runtime.state.heap import HeapKeyedStateBackend
from ha_flink.runtime.state.rocksdb import RocksDBKeyedStateBackend, RocksDBStateHandle

MAX_PARALLELISM = 128


class LocalSnapshotStorage:
    """A write-once shared folder on local disk that counts what was uploaded."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self.uploaded_bytes = 0
        self.uploaded_names: list[str] = []

    def upload_shared(self, local_path: Path, name: str) -> str:
        target = self.root / name
        if target.exists():
            raise FileExistsError(f"{target} exists already (write-once)")
        shutil.copyfile(local_path, target)
        self.uploaded_bytes += target.stat().st_size
        self.uploaded_names.append(name)
        return f"local://{target}"

    def download(self, url: str, local_path: Path) -> None:
        shutil.copyfile(url.removeprefix("local://"), local_path)

    def reset_counts(self) -> None:
        self.uploaded_bytes = 0
        self.uploaded_names = []


class FakeClock:
    """Seconds, as time.time; backends read whole milliseconds (the half keeps float rounding off them)."""

    def __init__(self) -> None:
        self.ms = 1_000_000

    def __call__(self) -> float:
        return (self.ms + 0.5) / 1000

    def advance_ms(self, ms: int) -> None:
        self.ms += ms


class Average(AggregateFunction):
    def create_accumulator(self) -> Any:
        return (0, 0)

    def add(self, value: Any, accumulator: Any) -> Any:
        return (accumulator[0] + value, accumulator[1] + 1)

    def get_result(self, accumulator: Any) -> Any:
        return accumulator[0] / accumulator[1]


@pytest.fixture
def make(tmp_path: Path):
    """make(kind, key_groups=..., clock=..., incremental=...) -> a backend, disposed after the test."""
    created: list[KeyedStateBackend] = []

    def factory(kind: str = "rocksdb", key_groups: range = range(MAX_PARALLELISM),
                clock: Callable[[], float] | None = None, incremental: bool = True,
                owner: str = "op-0-0") -> Any:
        extra = {} if clock is None else {"clock": clock}
        if kind == "heap":
            backend: KeyedStateBackend = HeapKeyedStateBackend(key_groups, MAX_PARALLELISM, **extra)
        else:
            backend = RocksDBKeyedStateBackend(key_groups, MAX_PARALLELISM, owner, str(tmp_path / "local"),
                                               incremental, **extra)
        created.append(backend)
        return backend

    yield factory
    for backend in created:
        backend.dispose()


@pytest.fixture
def storage(tmp_path: Path) -> LocalSnapshotStorage:
    return LocalSnapshotStorage(tmp_path / "shared")


def ttl(ms: int, update: StateTtlConfig.UpdateType = StateTtlConfig.UpdateType.OnCreateAndWrite,
        visibility: StateTtlConfig.StateVisibility = StateTtlConfig.StateVisibility.NeverReturnExpired,
        ) -> StateTtlConfig:
    """Without background cleanup: these tests compare what reads see (tests/state/test_state_ttl.py
    covers the cleanup strategies, which the two backends differ in, as Flink's)."""
    return (StateTtlConfig.new_builder(Duration.of_millis(ms)).set_update_type(update)
            .set_state_visibility(visibility).disable_cleanup_in_background().build())


def with_ttl(descriptor: Any, config: StateTtlConfig | None) -> Any:
    if config is not None:
        descriptor.enable_time_to_live(config)
    return descriptor


def fill(backend: KeyedStateBackend, keys: range, clock: FakeClock | None = None) -> None:
    """Entries in every state kind (and a TTL value and map state) for `keys`."""
    value = backend.get_state(ValueStateDescriptor("value"))
    items = backend.get_list_state(ListStateDescriptor("list"))
    mapping = backend.get_map_state(MapStateDescriptor("map"))
    total = backend.get_reducing_state(ReducingStateDescriptor("sum", lambda a, b: a + b))
    average = backend.get_aggregating_state(AggregatingStateDescriptor("avg", Average()))
    timed = backend.get_state(with_ttl(ValueStateDescriptor("timed"), ttl(60_000)))
    timed_map = backend.get_map_state(with_ttl(MapStateDescriptor("timed_map"), ttl(60_000)))
    for key in keys:
        backend.current_key = key
        value.update(f"v{key}")
        items.add_all([key, key + 1])
        mapping.put_all({"a": key, ("t", key): [key]})
        total.add(key)
        total.add(1)
        average.add(key)
        if key % 3 == 0:
            timed.update(key * 2)
            timed_map.put("x", key)
        if clock is not None:
            clock.advance_ms(1)


def check_filled(backend: KeyedStateBackend, keys: range) -> None:
    value = backend.get_state(ValueStateDescriptor("value"))
    items = backend.get_list_state(ListStateDescriptor("list"))
    mapping = backend.get_map_state(MapStateDescriptor("map"))
    total = backend.get_reducing_state(ReducingStateDescriptor("sum", lambda a, b: a + b))
    average = backend.get_aggregating_state(AggregatingStateDescriptor("avg", Average()))
    for key in keys:
        backend.current_key = key
        assert value.value() == f"v{key}"
        assert items.get() == [key, key + 1]
        assert dict(mapping.items()) == {"a": key, ("t", key): [key]}
        assert total.get() == key + 1
        assert average.get() == key


def all_keys(backend: KeyedStateBackend, name: str = "value") -> set[Any]:
    return set(backend.keys(name))


# -- the state kinds, the same on both backends -----------------------------------------------------------

BOTH = pytest.mark.parametrize("kind", ["heap", "rocksdb"])


@BOTH
def test_every_state_kind(make, kind: str) -> None:
    backend = make(kind)
    value = backend.get_state(ValueStateDescriptor("value"))
    items = backend.get_list_state(ListStateDescriptor("list"))
    mapping = backend.get_map_state(MapStateDescriptor("map"))
    total = backend.get_reducing_state(ReducingStateDescriptor("sum", lambda a, b: a + b))
    average = backend.get_aggregating_state(AggregatingStateDescriptor("avg", Average()))
    backend.current_key = "k"
    assert (value.value(), items.get(), total.get(), average.get()) == (None, [], None, None)
    assert mapping.is_empty() and mapping.get("x") is None and list(mapping.items()) == []
    value.update(3)
    items.add(1)
    items.add_all([2, 3])
    mapping["x"] = 1
    mapping.put_all({"y": 2, ("z", 1): None})
    total.add(5)
    total.add(6)
    average.add(2)
    average.add(4)
    assert value.value() == 3 and items.get() == [1, 2, 3] and list(items) == [1, 2, 3]
    assert dict(mapping.items()) == {"x": 1, "y": 2, ("z", 1): None}
    assert mapping.contains(("z", 1)) and ("z", 1) in mapping and mapping.get(("z", 1)) is None
    assert sorted(mapping.keys(), key=repr) == sorted(["x", "y", ("z", 1)], key=repr)
    assert total.get() == 11 and average.get() == 3
    backend.current_key = ("other", 2)
    assert value.value() is None and items.get() == [] and mapping.is_empty() and total.get() is None
    value.update("o")
    backend.current_key = "k"
    assert value.value() == 3  # keys do not see each other's entries
    assert all_keys(backend) == {"k", ("other", 2)}
    del mapping["x"]
    assert not mapping.contains("x") and mapping.get("x") is None
    items.update([])
    value.update(None)
    assert items.get() == [] and value.value() is None
    for state in (mapping, total, average):
        state.clear()
    assert mapping.is_empty() and total.get() is None and average.get() is None
    assert all_keys(backend) == {("other", 2)}
    assert backend.keys("map") == [] and backend.keys("list") == [] and backend.keys("never") == []


@BOTH
def test_a_name_registered_as_another_kind(make, kind: str) -> None:
    backend = make(kind)
    first = backend.get_state(ValueStateDescriptor("s"))
    assert backend.get_state(ValueStateDescriptor("s")) is first
    with pytest.raises(ValueError, match="already registered as"):
        backend.get_list_state(ListStateDescriptor("s"))


@BOTH
def test_map_emptied_and_empty_map_entries(make, kind: str) -> None:
    backend = make(kind)
    mapping = backend.get_map_state(MapStateDescriptor("m"))
    backend.current_key = 1
    mapping.put_all({})  # an empty map entry exists (both backends keep it)
    assert backend.keys("m") == [1] and mapping.is_empty()
    mapping.put("a", 1)
    mapping.remove("a")  # the last entry goes, and the map with it
    assert backend.keys("m") == [] and mapping.is_empty()
    mapping.remove("absent")
    assert backend.keys("m") == []


@BOTH
@pytest.mark.parametrize("visibility", list(StateTtlConfig.StateVisibility))
def test_value_ttl(make, kind: str, visibility: StateTtlConfig.StateVisibility) -> None:
    clock = FakeClock()
    backend = make(kind, clock=clock)
    state = backend.get_state(with_ttl(ValueStateDescriptor("v"), ttl(100, visibility=visibility)))
    backend.current_key = "k"
    state.update(1)
    clock.advance_ms(99)
    assert state.value() == 1  # OnCreateAndWrite: the read does not refresh the stamp
    clock.advance_ms(1)
    if visibility == StateTtlConfig.StateVisibility.NeverReturnExpired:
        assert state.value() is None and backend.keys("v") == []  # dropped on access
    else:
        assert state.value() == 1 and backend.keys("v") == ["k"]
    state.update(2)
    clock.advance_ms(50)
    assert state.value() == 2


@BOTH
def test_ttl_refreshed_on_read(make, kind: str) -> None:
    clock = FakeClock()
    backend = make(kind, clock=clock)
    config = ttl(100, update=StateTtlConfig.UpdateType.OnReadAndWrite)
    value = backend.get_state(with_ttl(ValueStateDescriptor("v"), config))
    items = backend.get_list_state(with_ttl(ListStateDescriptor("l"), config))
    mapping = backend.get_map_state(with_ttl(MapStateDescriptor("m"), config))
    backend.current_key = 7
    value.update("x")
    items.add(1)
    mapping.put("a", 1)
    for _ in range(5):
        clock.advance_ms(80)
        assert value.value() == "x" and items.get() == [1] and mapping.get("a") == 1
    clock.advance_ms(100)
    assert value.value() is None and items.get() == [] and mapping.get("a") is None
    assert backend.keys("v") == backend.keys("l") == backend.keys("m") == []


@BOTH
def test_map_ttl_stamps_the_whole_map(make, kind: str) -> None:
    clock = FakeClock()
    backend = make(kind, clock=clock)
    mapping = backend.get_map_state(with_ttl(MapStateDescriptor("m"), ttl(100)))
    backend.current_key = "k"
    mapping.put("a", 1)
    clock.advance_ms(60)
    mapping.put("b", 2)  # a write to any user key refreshes the map's stamp
    clock.advance_ms(60)
    assert dict(mapping.items()) == {"a": 1, "b": 2}
    clock.advance_ms(40)
    assert mapping.is_empty() and backend.keys("m") == []
    mapping.put("c", 3)  # the expired entries do not come back
    assert dict(mapping.items()) == {"c": 3}


@BOTH
def test_map_ttl_expired_but_returned_until_cleaned(make, kind: str) -> None:
    clock = FakeClock()
    backend = make(kind, clock=clock)
    visible = StateTtlConfig.StateVisibility.ReturnExpiredIfNotCleanedUp
    mapping = backend.get_map_state(with_ttl(MapStateDescriptor("m"), ttl(100, visibility=visible)))
    backend.current_key = "k"
    mapping.put("a", 1)
    clock.advance_ms(500)
    assert mapping.get("a") == 1
    mapping.put("b", 2)
    assert dict(mapping.items()) == {"a": 1, "b": 2}


def run_random_operations(backend: KeyedStateBackend, clock: FakeClock, seed: int) -> list[Any]:
    """A seeded random mix of operations on every kind, with and without TTL; returns every result."""
    rng = random.Random(seed)
    configs = [None, ttl(30), ttl(30, StateTtlConfig.UpdateType.OnReadAndWrite),
               ttl(30, visibility=StateTtlConfig.StateVisibility.ReturnExpiredIfNotCleanedUp)]
    states = []
    for index, config in enumerate(configs):
        states.append(("value", backend.get_state(with_ttl(ValueStateDescriptor(f"v{index}"), config))))
        states.append(("list", backend.get_list_state(with_ttl(ListStateDescriptor(f"l{index}"), config))))
        states.append(("map", backend.get_map_state(with_ttl(MapStateDescriptor(f"m{index}"), config))))
        states.append(("sum", backend.get_reducing_state(
            with_ttl(ReducingStateDescriptor(f"r{index}", lambda a, b: a + b), config))))
    results: list[Any] = []
    for _ in range(3000):
        backend.current_key = rng.choice([1, 2, "three", (4, "four"), b"5"])
        clock.advance_ms(rng.randrange(12))
        kind, state = rng.choice(states)
        op = rng.randrange(6)
        if kind == "value":
            results.append(state.value() if op < 3 else state.update(rng.choice([None, op, "x"])))
        elif kind == "list":
            results.append([state.get, lambda: state.add(op), lambda: state.update([]),
                            lambda: state.add_all([op, op]), state.clear, state.get][op]())
        elif kind == "sum":
            results.append(state.get() if op < 3 else state.clear() if op == 5 else state.add(op))
        else:
            user_key = rng.choice(["a", "b", ("c", 1)])
            results.append([lambda: state.get(user_key), lambda: state.put(user_key, op),
                            lambda: state.remove(user_key), lambda: sorted(state.items(), key=repr),
                            lambda: state.put_all(rng.choice([{}, {"a": op, "b": op}])),
                            lambda: (state.is_empty(), state.contains(user_key), state.clear())][op]())
    return results


def test_random_operations_agree_with_the_hashmap_backend(make) -> None:
    heap_clock, rocks_clock = FakeClock(), FakeClock()
    heap, rocks = make("heap", clock=heap_clock), make("rocksdb", clock=rocks_clock)
    assert run_random_operations(heap, heap_clock, 7) == run_random_operations(rocks, rocks_clock, 7)
    assert rocks.snapshot(1).materialize(None) == heap.snapshot(1).materialize(None)
    for name in heap.kinds:
        assert sorted(heap.keys(name), key=repr) == sorted(rocks.keys(name), key=repr)


def test_equal_tuple_keys_are_one_key(make) -> None:
    backend = make()
    state = backend.get_state(ValueStateDescriptor("v"))
    text = "ab" * 3
    backend.current_key = (text, text)  # the same string object twice: plain pickle would memoize it
    state.update(1)
    backend.current_key = ("".join(["ab"] * 3), "".join(["ab"] * 3))
    assert state.value() == 1
    assert backend.keys("v") == [("ababab", "ababab")]


@BOTH
def test_long_and_unusual_keys(make, kind: str) -> None:
    backend = make(kind)
    value = backend.get_state(ValueStateDescriptor("v"))
    mapping = backend.get_map_state(MapStateDescriptor("m"))
    keys = ["k" * 300, b"\xff" * 600, None, (1, ("nested", 2.5)), -(2 ** 70), ""]
    for index, key in enumerate(keys):  # a key over 254 bytes takes the 5-byte length prefix
        backend.current_key = key
        value.update(index)
        mapping.put("u" * 400, index)
        mapping.put(None, -index)
    for index, key in enumerate(keys):
        backend.current_key = key
        assert value.value() == index
        assert dict(mapping.items()) == {"u" * 400: index, None: -index}
    assert sorted(map(repr, backend.keys("m"))) == sorted(map(repr, keys))
    state = backend.snapshot(1).materialize(None)
    other = make("rocksdb" if kind == "heap" else "heap", owner="other")
    other.restore([state], None)
    assert other.snapshot(2).materialize(None) == state


# -- snapshots ------------------------------------------------------------------------------------------

def test_snapshot_isolation(make, storage: LocalSnapshotStorage) -> None:
    backend = make()
    fill(backend, range(200))
    native, canonical = backend.snapshot(1), backend.snapshot(2, canonical=True)
    value = backend.get_state(ValueStateDescriptor("value"))
    mapping = backend.get_map_state(MapStateDescriptor("map"))
    for key in range(200):
        backend.current_key = key
        value.update("changed")
        mapping.put("a", -1)
    backend.current_key = 10_000
    value.update("new")
    backend.current_key = 0
    value.clear()
    mapping.clear()

    handle = native.materialize(storage)
    restored = make(owner="restored")
    restored.restore([handle], storage)
    check_filled(restored, range(200))
    assert all_keys(restored) == set(range(200))
    state = canonical.materialize(storage)
    assert isinstance(state, CanonicalKeyedState)
    from_canonical = make(owner="from-canonical")
    from_canonical.restore([state], None)
    check_filled(from_canonical, range(200))
    assert not list(backend.root.glob("chk-*"))  # materialize deleted the snapshots' folders


def test_empty_backend_round_trip(make, storage: LocalSnapshotStorage) -> None:
    backend = make()
    backend.get_state(ValueStateDescriptor("v"))
    handle = backend.snapshot(1).materialize(storage)
    assert backend.snapshot(2).materialize(None) == CanonicalKeyedState({"v": "value"}, {})
    restored = make(owner="restored")
    restored.restore([handle], storage)
    assert restored.keys("v") == [] and restored.kinds == {"v": "value"}


def test_discard_deletes_the_snapshot_folder(make) -> None:
    backend = make()
    fill(backend, range(10))
    snapshot = backend.snapshot(1)
    assert snapshot.folder.is_dir()
    snapshot.discard()
    assert not snapshot.folder.exists()


@pytest.mark.parametrize("native", [True, False])
def test_round_trip(make, storage: LocalSnapshotStorage, native: bool) -> None:
    clock = FakeClock()
    backend = make(clock=clock)
    fill(backend, range(500), clock)
    snapshot = backend.snapshot(1, canonical=not native)
    handle = snapshot.materialize(storage)
    assert isinstance(handle, RocksDBStateHandle if native else CanonicalKeyedState)
    assert bool(snapshot.shared_urls) == native
    handle = pickle.loads(pickle.dumps(handle, protocol=5))  # it goes into the subtask's snapshot file
    restored = make(owner="restored", clock=clock)
    restored.restore([handle], storage)
    check_filled(restored, range(500))
    assert restored.snapshot(2).materialize(None) == backend.snapshot(3).materialize(None)
    # TTL entries keep their stamps: 60 s after the last write they are gone.
    timed = restored.get_state(with_ttl(ValueStateDescriptor("timed"), ttl(60_000)))
    restored.current_key = 498
    assert timed.value() == 996
    clock.advance_ms(60_000)
    assert timed.value() is None


def test_local_mini_cluster_snapshots_are_canonical(make) -> None:
    backend = make(clock=FakeClock())
    fill(backend, range(20))
    state = backend.snapshot(1).materialize(None)
    assert isinstance(state, CanonicalKeyedState)
    assert state.kinds["map"] == "map" and state.kinds["timed_map"] == "map"
    group = assign_to_key_group(3, MAX_PARALLELISM)
    assert state.groups[group]["map"][3] == {"a": 3, ("t", 3): [3]}
    assert state.groups[group]["timed_map"][3] == ({"x": 3}, 1_000_000)  # (map, last access ms) as heap
    assert state.groups[group]["timed"][3] == (6, 1_000_000)


@pytest.mark.parametrize("source_kind, target_kind", [("heap", "rocksdb"), ("rocksdb", "heap")])
def test_canonical_interchange_with_the_hashmap_backend(make, source_kind: str, target_kind: str) -> None:
    clock = FakeClock()
    source = make(source_kind, clock=clock)
    fill(source, range(300), clock)
    source.current_key = 5
    source.get_map_state(MapStateDescriptor("map")).put_all({("deep", (1, 2)): {"nested": 1}})
    state = source.snapshot(1, canonical=True).materialize(None)
    target = make(target_kind, clock=clock, owner="target")
    target.restore([state], None)
    check_filled(target, [key for key in range(300) if key != 5])
    assert target.snapshot(2, canonical=True).materialize(None) == state
    timed_map = target.get_map_state(with_ttl(MapStateDescriptor("timed_map"), ttl(60_000)))
    target.current_key = 297
    assert dict(timed_map.items()) == {"x": 297}
    clock.advance_ms(60_000)
    assert timed_map.is_empty()


@pytest.mark.parametrize("native", [True, False])
def test_rescaling_two_to_three_subtasks(make, storage: LocalSnapshotStorage, native: bool) -> None:
    keys = range(3000)
    handles = []
    for index in range(2):
        groups = key_group_range(MAX_PARALLELISM, 2, index)
        old = make(key_groups=groups, owner=f"old-{index}")
        fill(old, [key for key in keys if assign_to_key_group(key, MAX_PARALLELISM) in groups])
        handles.append(old.snapshot(1, canonical=not native).materialize(storage))
    seen: dict[Any, int] = {}
    for index in range(3):
        groups = key_group_range(MAX_PARALLELISM, 3, index)
        new = make(key_groups=groups, owner=f"new-{index}")
        new.restore(handles, storage)
        mine = all_keys(new)
        assert all(assign_to_key_group(key, MAX_PARALLELISM) in groups for key in mine)
        assert all_keys(new, "map") == mine
        check_filled(new, sorted(mine))
        for key in mine:
            seen[key] = seen.get(key, 0) + 1
    assert seen == {key: 1 for key in keys}


def test_unknown_handle_type(make) -> None:
    with pytest.raises(TypeError, match="dict"):
        make().restore([{"not": "a handle"}], None)


def test_missing_shared_file_names_the_url(make, storage: LocalSnapshotStorage) -> None:
    backend = make()
    fill(backend, range(50))
    handle = backend.snapshot(1).materialize(storage)
    missing = next(url for name, url in handle.files.items() if name.endswith(".sst"))
    Path(missing.removeprefix("local://")).unlink()
    with pytest.raises(FileNotFoundError, match=missing):
        make(owner="restored").restore([handle], storage)
    with pytest.raises(FileNotFoundError, match=missing):  # the rescaling path too
        make(key_groups=range(0, 64), owner="half").restore([handle], storage)


def test_dispose_deletes_the_folder(make) -> None:
    backend = make()
    fill(backend, range(10))
    backend.snapshot(1)  # a snapshot not materialized goes too
    assert backend.root.is_dir() and backend.root.name.startswith("op-0-0-")
    backend.dispose()
    assert not backend.root.exists()
    backend.dispose()  # twice is fine


# -- incremental checkpoints ---------------------------------------------------------------------------------

def write_values(backend: KeyedStateBackend, keys: Any, tag: str) -> None:
    state = backend.get_state(ValueStateDescriptor("value"))
    for key in keys:
        backend.current_key = key
        state.update(f"{tag}-{key}-" + "x" * 40)


def test_incremental_checkpoint_uploads_only_new_files(make, storage: LocalSnapshotStorage) -> None:
    backend = make(incremental=True)
    write_values(backend, range(100_000), "a")
    first = backend.snapshot(1)
    first.materialize(storage)
    full = storage.uploaded_bytes
    assert first.shared_bytes == first.uploaded_bytes == full  # the first checkpoint writes everything
    backend.notify_checkpoint_complete(1)
    storage.reset_counts()

    changed = range(0, 100_000, 100)  # 1% of the keys
    write_values(backend, changed, "b")
    second = backend.snapshot(2)
    handle = second.materialize(storage)
    assert storage.uploaded_bytes < 0.1 * full
    # what the checkpoint statistics show: the checkpointed (incremental) size and the full size
    assert second.uploaded_bytes == storage.uploaded_bytes
    assert second.shared_bytes == sum(Path(url.removeprefix("local://")).stat().st_size
                                      for url in handle.files.values()) > full
    assert set(first.shared_urls) & set(second.shared_urls)  # the first SST file is referenced again
    assert set(second.shared_urls) == set(handle.files.values())

    restored = make(owner="restored")
    restored.restore([handle], storage)
    state = restored.get_state(ValueStateDescriptor("value"))
    for key in range(100_000):
        restored.current_key = key
        assert state.value() == f"{'b' if key % 100 == 0 else 'a'}-{key}-" + "x" * 40


def test_unconfirmed_checkpoint_files_are_not_reused(make, storage: LocalSnapshotStorage) -> None:
    backend = make(incremental=True)
    write_values(backend, range(2000), "a")
    first = backend.snapshot(1)
    first.materialize(storage)  # never confirmed
    write_values(backend, range(10), "b")
    second = backend.snapshot(2)
    second.materialize(storage)
    assert not set(first.shared_urls) & set(second.shared_urls)
    backend.notify_checkpoint_complete(2)
    third = backend.snapshot(3)
    third.materialize(storage)
    reused = set(second.shared_urls) & set(third.shared_urls)
    assert reused and all(url.endswith(".sst") for url in reused)


def test_restored_files_count_as_confirmed(make, storage: LocalSnapshotStorage) -> None:
    backend = make(incremental=True)
    write_values(backend, range(2000), "a")
    snapshot = backend.snapshot(1)
    handle = snapshot.materialize(storage)
    restored = make(incremental=True, owner="restored")
    restored.restore([handle], storage)
    write_values(restored, range(5), "b")
    again = restored.snapshot(2)
    again.materialize(storage)
    sst_urls = {url for name, url in handle.files.items() if name.endswith(".sst")}
    assert sst_urls and sst_urls <= set(again.shared_urls)


def test_full_checkpoints_upload_everything(make, storage: LocalSnapshotStorage) -> None:
    backend = make(incremental=False)
    write_values(backend, range(2000), "a")
    urls = []
    for checkpoint_id in (1, 2):
        snapshot = backend.snapshot(checkpoint_id)
        handle = snapshot.materialize(storage)
        backend.notify_checkpoint_complete(checkpoint_id)
        urls.append(set(snapshot.shared_urls))
        assert set(handle.files.values()) == urls[-1]
    assert not urls[0] & urls[1]
    assert len(storage.uploaded_names) == len(set(storage.uploaded_names)) == len(urls[0]) + len(urls[1])
