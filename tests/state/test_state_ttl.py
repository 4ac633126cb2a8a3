"""State TTL as PyFlink's `StateTtlConfig`, on both keyed state backends (heap and RocksDB): the builder and
its getters, expiry as a user function sees it for each visibility and update type, each cleanup strategy
doing its work (incremental on heap, the compaction filter on RocksDB, full snapshots on both), TTL stamps
kept across a checkpoint, and a local job whose keyed state expires between two records."""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from ha_flink.common import Types
from ha_flink.common.time import Duration, Time
from ha_flink.datastream import KeyedProcessFunction, RuntimeContext, StreamExecutionEnvironment
from ha_flink.datastream.functions import AggregateFunction, ReduceFunction
from ha_flink.datastream.state import (
    AggregatingStateDescriptor, ListStateDescriptor, MapStateDescriptor, ReducingStateDescriptor, StateTtlConfig,
    ValueStateDescriptor,
)
from ha_flink.runtime.state.backend import CanonicalKeyedState, KeyedStateBackend
from ha_flink.runtime.state.heap import HeapKeyedStateBackend
from ha_flink.runtime.state.rocksdb import RocksDBKeyedStateBackend, RocksDBStateHandle
from ha_flink.testing.sinks import CollectSink, read_collected

MAX_PARALLELISM = 128
TTL_MS = 100
Visibility = StateTtlConfig.StateVisibility
UpdateType = StateTtlConfig.UpdateType
Strategies = StateTtlConfig.CleanupStrategies.Strategies
BOTH = pytest.mark.parametrize("kind", ["heap", "rocksdb"])


class FakeClock:
    """Seconds, as time.time; the backends read whole milliseconds (the half keeps float rounding off)."""

    def __init__(self) -> None:
        self.ms = 5_000_000

    def __call__(self) -> float:
        return (self.ms + 0.5) / 1000

    def advance_ms(self, ms: int) -> None:
        self.ms += ms


class LocalSnapshotStorage:
    """A write-once shared folder on local disk (the TaskManager's view of the checkpoint storage)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)

    def upload_shared(self, local_path: Path, name: str) -> str:
        target = self.root / name
        if target.exists():
            raise FileExistsError(f"{target} exists already (write-once)")
        shutil.copyfile(local_path, target)
        return f"local://{target}"

    def download(self, url: str, local_path: Path) -> None:
        shutil.copyfile(url.removeprefix("local://"), local_path)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def make(tmp_path: Path, clock: FakeClock) -> Iterator[Callable[..., Any]]:
    """make(kind, owner=..., incremental=...) -> a backend on the test's clock, disposed after the test."""
    created: list[KeyedStateBackend] = []

    def factory(kind: str, owner: str = "op-0-0", incremental: bool = True) -> Any:
        backend: KeyedStateBackend
        if kind == "heap":
            backend = HeapKeyedStateBackend(range(MAX_PARALLELISM), MAX_PARALLELISM, clock)
        else:
            backend = RocksDBKeyedStateBackend(range(MAX_PARALLELISM), MAX_PARALLELISM, owner,
                                               str(tmp_path / "local"), incremental, clock)
        created.append(backend)
        return backend

    yield factory
    for backend in created:
        backend.dispose()


def builder(ttl_ms: int = TTL_MS) -> StateTtlConfig.Builder:
    return StateTtlConfig.new_builder(Duration.of_millis(ttl_ms))


def value_state(backend: KeyedStateBackend, config: StateTtlConfig, name: str = "v") -> Any:
    descriptor = ValueStateDescriptor(name, Types.INT())
    descriptor.enable_time_to_live(config)
    return backend.get_state(descriptor)


def fill(backend: KeyedStateBackend, state: Any, keys: range) -> None:
    for key in keys:
        backend.current_key = key
        state.update(key)


# -- the API -------------------------------------------------------------------------------------------------

def test_builder_defaults_and_getters_are_pyflinks() -> None:
    config = StateTtlConfig.new_builder(Time.seconds(3)).build()
    assert config.get_ttl() == Time.seconds(3) and config.is_enabled()
    assert config.get_update_type() is UpdateType.OnCreateAndWrite
    assert config.get_state_visibility() is Visibility.NeverReturnExpired
    assert config.get_ttl_time_characteristic() is StateTtlConfig.TtlTimeCharacteristic.ProcessingTime
    strategies = config.get_cleanup_strategies()
    assert strategies.is_cleanup_in_background() and not strategies.in_full_snapshot()
    incremental = strategies.get_incremental_cleanup_strategy()
    assert incremental is not None
    assert (incremental.get_cleanup_size(), incremental.run_cleanup_for_every_record()) == (5, False)
    compaction = strategies.get_rocksdb_compact_filter_cleanup_strategy()
    assert compaction is not None
    assert compaction.get_query_time_after_num_entries() == 1000
    assert compaction.get_periodic_compaction_time() == Duration.of_days(30)

    off = StateTtlConfig.new_builder(Duration.of_seconds(1)).disable_cleanup_in_background().build()
    assert off.get_cleanup_strategies().get_incremental_cleanup_strategy() is None
    assert off.get_cleanup_strategies().get_rocksdb_compact_filter_cleanup_strategy() is None

    custom = (StateTtlConfig.new_builder(Duration.of_seconds(1)).set_ttl(Duration.of_millis(1500))
              .update_ttl_on_read_and_write().return_expired_if_not_cleaned_up().use_processing_time()
              .disable_cleanup_in_background().cleanup_full_snapshot().cleanup_incrementally(10, True)
              .cleanup_in_rocksdb_compact_filter(50, Duration.of_minutes(1)).build())
    assert custom.get_ttl() == Duration.of_millis(1500) and custom.ttl_ms == 1500
    assert custom.get_update_type() is UpdateType.OnReadAndWrite
    assert custom.get_state_visibility() is Visibility.ReturnExpiredIfNotCleanedUp
    strategies = custom.get_cleanup_strategies()
    assert strategies.in_full_snapshot() and not strategies.is_cleanup_in_background()
    assert strategies.get_incremental_cleanup_strategy() == \
        StateTtlConfig.CleanupStrategies.IncrementalCleanupStrategy(10, True)
    compaction = strategies.get_rocksdb_compact_filter_cleanup_strategy()
    assert compaction is not None and compaction.get_periodic_compaction_time() == Duration.of_minutes(1)
    assert StateTtlConfig(UpdateType.Disabled, Visibility.NeverReturnExpired,
                          StateTtlConfig.TtlTimeCharacteristic.ProcessingTime, Duration.of_seconds(1),
                          StateTtlConfig.CleanupStrategies({}, True)).is_enabled() is False
    with pytest.raises(ValueError, match="must be positive"):
        StateTtlConfig.new_builder(Duration.of_millis(0)).build()


def test_descriptors_are_pyflinks() -> None:
    assert ValueStateDescriptor("v", value_type_info=Types.INT()).type_info == Types.INT()
    assert ListStateDescriptor("l", elem_type_info=Types.INT()).type_info == Types.LIST(Types.INT())
    reducing = ReducingStateDescriptor("r", lambda a, b: a + b, Types.INT())
    assert isinstance(reducing.get_reduce_function(), ReduceFunction)
    assert reducing.get_reduce_function().reduce(2, 3) == 5

    class Sum(AggregateFunction):
        def create_accumulator(self) -> int:
            return 0

        def add(self, value: int, accumulator: int) -> int:
            return value + accumulator

        def get_result(self, accumulator: int) -> int:
            return accumulator

    function = Sum()
    assert AggregatingStateDescriptor("a", function, Types.INT()).get_agg_function() is function
    with pytest.raises(TypeError, match="AggregateFunction"):
        AggregatingStateDescriptor("a", lambda a, b: a, Types.INT())  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="ReduceFunction or a callable"):
        ReducingStateDescriptor("r", 3, Types.INT())  # type: ignore[arg-type]


# -- expiry as a user function sees it -------------------------------------------------------------------------

@BOTH
@pytest.mark.parametrize("visibility", list(Visibility))
@pytest.mark.parametrize("update", [UpdateType.OnCreateAndWrite, UpdateType.OnReadAndWrite])
def test_expiry_by_visibility_and_update_type(make, clock: FakeClock, kind: str, visibility: Visibility,
                                              update: UpdateType) -> None:
    backend = make(kind)
    # Background cleanup off: what a read returns is decided by the visibility alone.
    config = builder().set_update_type(update).set_state_visibility(visibility).disable_cleanup_in_background()
    values = value_state(backend, config.build())
    lists = backend.get_list_state(with_ttl(ListStateDescriptor("l", Types.INT()), config.build()))
    maps = backend.get_map_state(with_ttl(MapStateDescriptor("m", Types.STRING(), Types.INT()), config.build()))
    backend.current_key = "k"
    values.update(1)
    lists.add(1)
    maps.put("a", 1)
    clock.advance_ms(TTL_MS - 1)
    assert (values.value(), lists.get(), maps.get("a")) == (1, [1], 1)  # a read: refreshes with OnReadAndWrite
    clock.advance_ms(TTL_MS - 1)
    if update is UpdateType.OnReadAndWrite:
        assert (values.value(), lists.get(), maps.get("a")) == (1, [1], 1)
        clock.advance_ms(TTL_MS)
    seen = (values.value(), lists.get(), maps.get("a"))
    if visibility is Visibility.NeverReturnExpired:
        assert seen == (None, [], None)
        assert backend.keys("v") == backend.keys("l") == backend.keys("m") == []  # dropped when read
    else:
        assert seen == (1, [1], 1)  # expired, but nothing cleaned it up yet
        assert backend.keys("v") == ["k"]


@BOTH
def test_update_type_disabled_never_expires(make, clock: FakeClock, kind: str) -> None:
    backend = make(kind)
    state = value_state(backend, builder().set_update_type(UpdateType.Disabled).build())
    backend.current_key = "k"
    state.update(7)
    clock.advance_ms(1000 * TTL_MS)
    assert state.value() == 7


def with_ttl(descriptor: Any, config: StateTtlConfig) -> Any:
    descriptor.enable_time_to_live(config)
    return descriptor


# -- incremental cleanup (heap) ------------------------------------------------------------------------------

def test_incremental_cleanup_checks_cleanup_size_entries_per_access(make, clock: FakeClock) -> None:
    backend = make("heap")
    config = builder().return_expired_if_not_cleaned_up().disable_cleanup_in_background() \
        .cleanup_incrementally(10, False).build()
    state = value_state(backend, config)
    fill(backend, state, range(100))
    clock.advance_ms(TTL_MS)
    backend.current_key = "fresh"
    state.update(-1)  # one access: 10 of the 100 expired entries checked and dropped
    assert len(backend.keys("v")) == 91
    for _ in range(9):
        state.value()
    assert backend.keys("v") == ["fresh"]
    backend.current_key = 5
    assert state.value() is None  # cleaned up: no longer returned, even with ReturnExpiredIfNotCleanedUp


def test_incremental_cleanup_is_on_by_default_on_heap(make, clock: FakeClock) -> None:
    backend = make("heap")
    state = value_state(backend, builder().return_expired_if_not_cleaned_up().build())
    fill(backend, state, range(20))
    clock.advance_ms(TTL_MS)
    backend.current_key = "fresh"
    for _ in range(4):  # Flink's default: 5 entries per access
        state.value()
    assert len(backend.keys("v")) == 0


def test_incremental_cleanup_for_every_record(make, clock: FakeClock) -> None:
    backend = make("heap")
    config = builder().disable_cleanup_in_background().cleanup_incrementally(10, True).build()
    state = value_state(backend, config)
    other = backend.get_state(ValueStateDescriptor("other", Types.INT()))
    fill(backend, state, range(50))
    clock.advance_ms(TTL_MS)
    for record in range(5):  # records that touch another state only: setting their key cleans up
        backend.current_key = f"record {record}"
        other.update(record)
    assert backend.keys("v") == []
    backend.current_key = "record 1"
    assert other.value() == 1


@pytest.mark.parametrize("run_for_every_record", [False, True])
def test_incremental_cleanup_has_no_effect_on_rocksdb(make, clock: FakeClock, run_for_every_record: bool) -> None:
    backend = make("rocksdb")
    config = builder().return_expired_if_not_cleaned_up().disable_cleanup_in_background() \
        .cleanup_incrementally(10, run_for_every_record).build()
    state = value_state(backend, config)
    fill(backend, state, range(50))
    clock.advance_ms(TTL_MS)
    for key in range(50):
        backend.current_key = key
        assert state.value() == key
    backend.snapshot(1).discard()
    assert len(backend.keys("v")) == 50


# -- the compaction filter (RocksDB) -------------------------------------------------------------------------

def test_compaction_filter_removes_expired_entries_in_bounded_steps(make, clock: FakeClock) -> None:
    backend = make("rocksdb")
    config = builder().return_expired_if_not_cleaned_up().disable_cleanup_in_background() \
        .cleanup_in_rocksdb_compact_filter(100).build()
    state = value_state(backend, config)
    maps = backend.get_map_state(with_ttl(MapStateDescriptor("m", Types.INT(), Types.INT()), config))
    fill(backend, state, range(2500))
    backend.current_key = 0
    maps.put_all({1: 1, 2: 2})
    clock.advance_ms(TTL_MS)
    backend.current_key = 7
    assert state.value() == 7  # expired, not cleaned up yet
    filter_ = backend.compaction_filter
    # The filter's cursor is wherever the fill's own steps (one per 1000 writes) left it: each step
    # examines at most 1000 of the 2503 entries, so the first leaves expired entries behind.
    backend.snapshot(1).discard()  # a compaction point: one step
    assert 0 < filter_.removed <= 1000
    assert len(backend.keys("m")) + len(backend.keys("v")) == 2501 - filter_.removed
    before = filter_.removed
    backend.current_key = "fresh"
    for value in range(1000):  # a step every 1000 writes
        state.update(value)
    assert 0 < filter_.removed - before <= 1000
    steps = 2
    while backend.keys("m") or backend.keys("v") != ["fresh"]:
        before = filter_.removed
        backend.snapshot(steps + 1).discard()
        steps += 1
        assert filter_.removed - before <= 1000
        assert steps <= 6, "the rest of a pass and one whole pass take at most six steps of 1000"
    backend.current_key = 7
    assert state.value() is None  # cleaned up
    assert backend.compaction_filter.removed == 2501


def test_compaction_filter_is_on_by_default_on_rocksdb(make, clock: FakeClock) -> None:
    backend = make("rocksdb")
    state = value_state(backend, builder().return_expired_if_not_cleaned_up().build())
    kept = value_state(backend, builder().return_expired_if_not_cleaned_up().disable_cleanup_in_background()
                       .build(), "kept")
    fill(backend, state, range(300))
    fill(backend, kept, range(300))
    clock.advance_ms(TTL_MS)
    backend.snapshot(1).discard()
    assert backend.keys("v") == [] and len(backend.keys("kept")) == 300


def test_periodic_compaction_finishes_a_pass_and_compacts_the_files(make, clock: FakeClock) -> None:
    backend = make("rocksdb")
    config = builder().disable_cleanup_in_background() \
        .cleanup_in_rocksdb_compact_filter(1000, Duration.of_millis(10 * TTL_MS)).build()
    state = value_state(backend, config)
    fill(backend, state, range(5000))
    clock.advance_ms(TTL_MS)
    backend.snapshot(1).discard()  # starts a pass: one bounded step
    assert len(backend.keys("v")) == 4000
    clock.advance_ms(10 * TTL_MS)  # the pass is now older than the periodic compaction time
    backend.snapshot(2).discard()
    assert backend.keys("v") == []
    # compacted: the files no longer hold the entries (nor their tombstones)
    assert backend.db.property_int_value("rocksdb.estimate-num-keys") == 0


def test_compaction_filter_has_no_effect_on_heap(make, clock: FakeClock) -> None:
    backend = make("heap")
    config = builder().return_expired_if_not_cleaned_up().disable_cleanup_in_background() \
        .cleanup_in_rocksdb_compact_filter(1).build()
    state = value_state(backend, config)
    fill(backend, state, range(50))
    clock.advance_ms(TTL_MS)
    fill(backend, state, range(50, 1100))
    assert len(backend.keys("v")) == 1100


# -- full snapshots --------------------------------------------------------------------------------------------

def snapshot_and_restore(make, kind: str, backend: KeyedStateBackend, storage: LocalSnapshotStorage | None,
                         canonical: bool) -> tuple[Any, KeyedStateBackend]:
    handle = backend.snapshot(1, canonical=canonical).materialize(storage)
    restored = make(kind, owner="restored")
    restored.restore([handle], storage)
    return handle, restored


FULL_SNAPSHOT_CASES = [("heap", True, True), ("rocksdb", True, True), ("rocksdb", False, True),
                       ("rocksdb", False, False)]


@pytest.mark.parametrize("kind, canonical, incremental", FULL_SNAPSHOT_CASES)
@pytest.mark.parametrize("full_snapshot", [True, False])
def test_cleanup_full_snapshot_leaves_expired_entries_out(make, clock: FakeClock, tmp_path: Path, kind: str,
                                                          canonical: bool, incremental: bool,
                                                          full_snapshot: bool) -> None:
    backend = make(kind, incremental=incremental)
    config = builder().return_expired_if_not_cleaned_up().disable_cleanup_in_background()
    if full_snapshot:
        config = config.cleanup_full_snapshot()
    state = value_state(backend, config.build())
    maps = backend.get_map_state(with_ttl(MapStateDescriptor("m", Types.INT(), Types.INT()), config.build()))
    fill(backend, state, range(0, 40))
    backend.current_key = 0
    maps.put(1, 1)
    clock.advance_ms(TTL_MS // 2)
    fill(backend, state, range(40, 60))
    backend.current_key = 1
    maps.put(2, 2)
    clock.advance_ms(TTL_MS // 2)  # keys 0..39 and the map of key 0 are expired, the rest not
    storage = None if canonical and kind == "heap" else LocalSnapshotStorage(tmp_path / "shared")
    handle, restored = snapshot_and_restore(make, kind, backend, storage, canonical)
    assert isinstance(handle, CanonicalKeyedState if canonical else RocksDBStateHandle)
    assert len(backend.keys("v")) == 60  # the live state is untouched
    restored_state = value_state(restored, config.build())
    restored_maps = restored.get_map_state(with_ttl(MapStateDescriptor("m", Types.INT(), Types.INT()),
                                                    config.build()))
    expected_keys = set(range(40, 60)) if full_snapshot else set(range(60))
    assert set(restored.keys("v")) == expected_keys
    assert set(restored.keys("m")) == ({1} if full_snapshot else {0, 1})
    restored.current_key = 3
    assert restored_state.value() == (None if full_snapshot else 3)  # even with ReturnExpiredIfNotCleanedUp
    restored.current_key = 1
    assert dict(restored_maps.items()) == {2: 2}
    if full_snapshot and not canonical:  # the next checkpoint of the live database is whole again
        backend.current_key = 59
        assert state.value() == 59


# -- checkpoints keep the stamps ---------------------------------------------------------------------------------

@pytest.mark.parametrize("kind, canonical", [("heap", True), ("rocksdb", True), ("rocksdb", False)])
def test_restored_state_keeps_its_ttl_stamps(make, clock: FakeClock, tmp_path: Path, kind: str,
                                             canonical: bool) -> None:
    backend = make(kind)
    config = builder().build()
    state = value_state(backend, config)
    backend.current_key = "k"
    state.update(1)
    clock.advance_ms(TTL_MS // 2)
    storage = None if kind == "heap" else LocalSnapshotStorage(tmp_path / "shared")
    _, restored = snapshot_and_restore(make, kind, backend, storage, canonical)
    restored_state = value_state(restored, config)
    restored.current_key = "k"
    clock.advance_ms(TTL_MS // 2 - 1)
    assert restored_state.value() == 1  # restored half-way: the entry is 99 ms old, not 49
    clock.advance_ms(1)
    assert restored_state.value() is None


# -- a job ---------------------------------------------------------------------------------------------------------

JOB_TTL_MS = 50


class Remember(KeyedProcessFunction):
    """For each (key, pause) record: waits `pause` (until this key's short-lived state has certainly
    expired), then emits what the key's two states hold and writes both."""

    def open(self, runtime_context: RuntimeContext) -> None:
        short = ValueStateDescriptor("short", Types.INT())
        short.enable_time_to_live(StateTtlConfig.new_builder(Duration.of_millis(JOB_TTL_MS)).build())
        self.short = runtime_context.get_state(short)
        long = ValueStateDescriptor("long", Types.LONG())
        long.enable_time_to_live(StateTtlConfig.new_builder(Duration.of_hours(1)).build())
        self.written_at = runtime_context.get_state(long)

    def process_element(self, value: tuple[str, bool], ctx: KeyedProcessFunction.Context) -> Any:
        key, pause = value
        written_at = self.written_at.value()
        if pause and written_at is not None:
            deadline = written_at + JOB_TTL_MS
            while ctx.timer_service().current_processing_time() < deadline:
                time.sleep(0.001)
        yield key, self.short.value(), written_at is not None
        self.short.update((self.short.value() or 0) + 1)
        self.written_at.update(ctx.timer_service().current_processing_time())


@pytest.mark.parametrize("backend", ["hashmap", "rocksdb"])
def test_a_jobs_keyed_state_expires_between_records(tmp_path: Path, backend: str) -> None:
    env = StreamExecutionEnvironment.get_execution_environment().set_parallelism(1)
    env.configure({"state.backend.type": backend, "state.backend.rocksdb.localdir": str(tmp_path / "rocksdb")})
    records = [("a", False), ("b", False), ("b", False), ("a", True), ("a", False)]
    (env.from_collection(records).key_by(lambda r: r[0]).process(Remember())
        .add_sink(CollectSink(tmp_path / "out")))
    env.execute("ttl job")
    assert read_collected(tmp_path / "out") == [
        ("a", None, False), ("b", None, False), ("b", 1, True),
        ("a", None, True),  # a's short-lived state expired while it waited; the hour-long one did not
        ("a", 1, True)]
    assert (tmp_path / "rocksdb").is_dir() == (backend == "rocksdb")  # the job ran on the backend asked for
