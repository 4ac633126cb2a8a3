"""Keyed state is scoped to the current key in every operator of a keyed stream: each user function that keeps
a per-key ValueState (a count, and the key it first saw) must see only its own key's state, at parallelism 1
and 2, in STREAMING and BATCH mode; outside a keyed context (open(), process_broadcast_element) using keyed
state fails clearly. Programs are written as a PyFlink user would; the expected outputs follow from the
semantics (each key sees only its own records), not from a run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ha_flink.common import Configuration, Duration, Time, Types, WatermarkStrategy
from ha_flink.common.watermark_strategy import TimestampAssigner
from ha_flink.datastream import (
    AggregateFunction, CoFlatMapFunction, CoMapFunction, FilterFunction, FlatMapFunction,
    KeyedBroadcastProcessFunction, KeyedCoProcessFunction, KeyedProcessFunction, MapFunction, ProcessJoinFunction,
    ProcessWindowFunction, ReduceFunction, RuntimeContext, RuntimeExecutionMode, StreamExecutionEnvironment,
    WindowFunction,
)
from ha_flink.datastream.state import MapStateDescriptor, ValueStateDescriptor
from ha_flink.datastream.window import EventTimeTrigger, SlidingEventTimeWindows, TumblingEventTimeWindows
from ha_flink.runtime.minicluster import JobExecutionError
from ha_flink.testing.sinks import CollectSink, read_collected

KEYS = range(5)
# key k has k + 1 records, interleaved with the other keys' (so that one subtask sees several keys)
DATA = [(k, i) for i in range(len(KEYS)) for k in KEYS if i <= k]
COUNTS = {k: k + 1 for k in KEYS}

PARALLELISM = pytest.mark.parametrize("parallelism", [1, 2])
MODES = pytest.mark.parametrize("mode", ["STREAMING", "BATCH"])


def env_with(parallelism: int, mode: str = "STREAMING", backend: str = "hashmap") -> StreamExecutionEnvironment:
    config = Configuration()
    config.set_string("state.backend.type", backend)
    env = StreamExecutionEnvironment.get_execution_environment(config).set_parallelism(parallelism)
    if mode == "BATCH":
        env.set_runtime_mode(RuntimeExecutionMode.BATCH)
    return env


def counted(counts: dict[int, int]) -> list[tuple[int, int, bool]]:
    """What a per-key counter emits, one record per record of its key: (key, 1 .. count, owner seen)."""
    return sorted((k, n, True) for k, c in counts.items() for n in range(1, c + 1))


class PerKey:
    """Two ValueStates of the current key: how many records it has seen, and the key it saw first (which
    must always be the current key)."""

    def open_state(self, runtime_context: RuntimeContext) -> None:
        self.count = runtime_context.get_state(ValueStateDescriptor("count", Types.INT()))
        self.owner = runtime_context.get_state(ValueStateDescriptor("owner", Types.PICKLED_BYTE_ARRAY()))

    def see(self, key: Any) -> tuple[int, bool]:
        """Counts one record of `key`; returns the count and whether the state was `key`'s own."""
        n = (self.count.value() or 0) + 1
        self.count.update(n)
        owner = self.owner.value()
        if owner is None:
            self.owner.update(key)
        return n, owner is None or owner == key


# -- KeyedStream.reduce / sum / min / max ---------------------------------------------------------------

class CountingReduce(ReduceFunction):
    """The bug report's program: a ReduceFunction with a ValueState from the runtime context in open()."""

    def open(self, runtime_context: RuntimeContext) -> None:
        self.reduces = runtime_context.get_state(ValueStateDescriptor("reduces", Types.INT()))

    def reduce(self, value1: Any, value2: Any) -> Any:
        n = (self.reduces.value() or 1) + 1  # the first record of a key is not reduced: it counts as 1
        self.reduces.update(n)
        return (value2[0], n)


@PARALLELISM
@MODES
@pytest.mark.parametrize("backend", ["hashmap", "rocksdb"])
def test_reduce_function_state_from_the_runtime_context_is_the_keys(tmp_path: Path, parallelism: int, mode: str,
                                                                    backend: str) -> None:
    env = env_with(parallelism, mode, backend)
    env.from_collection([(k, 1) for k, _ in DATA]).key_by(lambda t: t[0]).reduce(CountingReduce()) \
        .add_sink(CollectSink(tmp_path))
    env.execute()
    if mode == "STREAMING":  # every update: the key's count so far
        expected = sorted((k, n) for k, c in COUNTS.items() for n in range(1, c + 1))
    else:  # BATCH: each key's final value only
        expected = sorted(COUNTS.items())
    assert sorted(read_collected(tmp_path)) == expected


@PARALLELISM
@MODES
def test_sum_min_max_are_per_key(tmp_path: Path, parallelism: int, mode: str) -> None:
    env = env_with(parallelism, mode)
    source = env.from_collection(DATA)
    source.key_by(lambda t: t[0]).sum(1).add_sink(CollectSink(tmp_path / "sum"))
    source.key_by(lambda t: t[0]).min(1).add_sink(CollectSink(tmp_path / "min"))
    source.key_by(lambda t: t[0]).max(1).add_sink(CollectSink(tmp_path / "max"))
    env.execute()
    emitted = len(DATA) if mode == "STREAMING" else len(KEYS)  # STREAMING: every update; BATCH: the final ones

    def final(folder: str) -> dict[int, int]:  # (sums and maxima of non-negative values only grow)
        out = read_collected(tmp_path / folder)
        assert len(out) == emitted
        return {k: max(v for key, v in out if key == k) for k in KEYS}

    assert final("sum") == {k: sum(range(k + 1)) for k in KEYS}
    assert final("max") == {k: k for k in KEYS}
    assert sorted(set(read_collected(tmp_path / "min"))) == [(k, 0) for k in KEYS]


# -- map / flat_map / filter after key_by --------------------------------------------------------------

class CountingMap(MapFunction, PerKey):
    def open(self, runtime_context: RuntimeContext) -> None:
        self.open_state(runtime_context)

    def map(self, value: Any) -> Any:
        return (value[0], *self.see(value[0]))


class CountingFlatMap(FlatMapFunction, PerKey):
    def open(self, runtime_context: RuntimeContext) -> None:
        self.open_state(runtime_context)

    def flat_map(self, value: Any) -> Any:
        yield (value[0], *self.see(value[0]))


class EveryOtherOfItsKey(FilterFunction, PerKey):
    """Keeps a key's 1st, 3rd, 5th ... record."""

    def open(self, runtime_context: RuntimeContext) -> None:
        self.open_state(runtime_context)

    def filter(self, value: Any) -> bool:
        n, own = self.see(value[0])
        assert own, f"key {value[0]} saw the state of key {self.owner.value()}"
        return n % 2 == 1


@PARALLELISM
@MODES
def test_rich_map_flat_map_filter_on_a_keyed_stream_see_their_keys_state(tmp_path: Path, parallelism: int,
                                                                         mode: str) -> None:
    env = env_with(parallelism, mode)
    keyed = env.from_collection(DATA).key_by(lambda t: t[0])
    keyed.map(CountingMap()).add_sink(CollectSink(tmp_path / "map"))
    keyed.flat_map(CountingFlatMap()).add_sink(CollectSink(tmp_path / "flat_map"))
    keyed.filter(EveryOtherOfItsKey()).add_sink(CollectSink(tmp_path / "filter"))
    env.execute()
    assert sorted(read_collected(tmp_path / "map")) == counted(COUNTS)
    assert sorted(read_collected(tmp_path / "flat_map")) == counted(COUNTS)
    # records of one key arrive in order: (k, 0), (k, 1) ... are its 1st, 2nd ...
    assert sorted(read_collected(tmp_path / "filter")) == sorted((k, i) for k, i in DATA if i % 2 == 0)


# -- KeyedProcessFunction: process_element and on_timer -------------------------------------------------

EVENT_TIMER = 100
PROCESSING_TIMER = 4_000_000_000_000  # (in 2096): fires only at the end of a BATCH job


class CountingProcess(KeyedProcessFunction, PerKey):
    def open(self, runtime_context: RuntimeContext) -> None:
        self.open_state(runtime_context)

    def process_element(self, value: Any, ctx: KeyedProcessFunction.Context) -> Any:
        yield ("element", value[0], *self.see(value[0]))
        ctx.timer_service().register_event_time_timer(EVENT_TIMER)
        ctx.timer_service().register_processing_time_timer(PROCESSING_TIMER)

    def on_timer(self, timestamp: int, ctx: KeyedProcessFunction.OnTimerContext) -> Any:
        key = ctx.get_current_key()
        yield ("event timer" if timestamp == EVENT_TIMER else "processing timer", key, self.count.value(),
               self.owner.value() == key)


@PARALLELISM
@MODES
def test_keyed_process_function_and_its_timers_see_their_keys_state(tmp_path: Path, parallelism: int,
                                                                    mode: str) -> None:
    env = env_with(parallelism, mode)
    env.from_collection(DATA).key_by(lambda t: t[0]).process(CountingProcess()).add_sink(CollectSink(tmp_path))
    env.execute()
    expected = [("element", *record) for record in counted(COUNTS)]
    expected += [("event timer", k, c, True) for k, c in COUNTS.items()]  # at the end of input: end of event time
    if mode == "BATCH":  # processing-time timers fire at the end of a BATCH job, not of a STREAMING one
        expected += [("processing timer", k, c, True) for k, c in COUNTS.items()]
    assert sorted(read_collected(tmp_path)) == sorted(expected)


# -- connected keyed streams: KeyedCoProcessFunction, keyed co-map and co-flat-map ------------------------

OTHER = [(k, 100 + i) for i in range(2) for k in KEYS]  # the second input: two records per key
BOTH = {k: c + 2 for k, c in COUNTS.items()}


class CountingCoProcess(KeyedCoProcessFunction, PerKey):
    def open(self, runtime_context: RuntimeContext) -> None:
        self.open_state(runtime_context)

    def process_element1(self, value: Any, ctx: KeyedCoProcessFunction.Context) -> Any:
        ctx.timer_service().register_event_time_timer(EVENT_TIMER)
        yield (value[0], *self.see(value[0]))

    def process_element2(self, value: Any, ctx: KeyedCoProcessFunction.Context) -> Any:
        ctx.timer_service().register_event_time_timer(EVENT_TIMER)
        yield (value[0], *self.see(value[0]))

    def on_timer(self, timestamp: int, ctx: KeyedCoProcessFunction.OnTimerContext) -> Any:
        key = ctx.get_current_key()
        yield ("timer", key, self.count.value(), self.owner.value() == key)


class CountingCoMap(CoMapFunction, PerKey):
    def open(self, runtime_context: RuntimeContext) -> None:
        self.open_state(runtime_context)

    def map1(self, value: Any) -> Any:
        return (value[0], *self.see(value[0]))

    def map2(self, value: Any) -> Any:
        return (value[0], *self.see(value[0]))


class CountingCoFlatMap(CoFlatMapFunction, PerKey):
    def open(self, runtime_context: RuntimeContext) -> None:
        self.open_state(runtime_context)

    def flat_map1(self, value: Any) -> Any:
        yield (value[0], *self.see(value[0]))

    def flat_map2(self, value: Any) -> Any:
        yield (value[0], *self.see(value[0]))


@PARALLELISM
@MODES
def test_keyed_co_functions_share_only_their_keys_state(tmp_path: Path, parallelism: int, mode: str) -> None:
    env = env_with(parallelism, mode)
    first, second = env.from_collection(DATA), env.from_collection(OTHER)
    connected = first.key_by(lambda t: t[0]).connect(second.key_by(lambda t: t[0]))
    connected.process(CountingCoProcess()).add_sink(CollectSink(tmp_path / "process"))
    connected.map(CountingCoMap()).add_sink(CollectSink(tmp_path / "map"))
    connected.flat_map(CountingCoFlatMap()).add_sink(CollectSink(tmp_path / "flat_map"))
    env.execute()
    # how the two inputs interleave is not fixed, but each key counts its records of both, 1 .. total
    processed = read_collected(tmp_path / "process")
    assert sorted(r for r in processed if r[0] != "timer") == counted(BOTH)
    assert sorted(r for r in processed if r[0] == "timer") == sorted(("timer", k, c, True) for k, c in BOTH.items())
    assert sorted(read_collected(tmp_path / "map")) == counted(BOTH)
    assert sorted(read_collected(tmp_path / "flat_map")) == counted(BOTH)


# -- the broadcast state pattern --------------------------------------------------------------------------

RULES = MapStateDescriptor("rules", Types.STRING(), Types.INT())


class CountingBroadcast(KeyedBroadcastProcessFunction, PerKey):
    def open(self, runtime_context: RuntimeContext) -> None:
        self.open_state(runtime_context)

    def process_element(self, value: Any, ctx: Any) -> Any:
        ctx.timer_service().register_event_time_timer(EVENT_TIMER)
        yield (value[0], *self.see(value[0]))

    def process_broadcast_element(self, value: Any, ctx: Any) -> Any:
        ctx.get_broadcast_state(RULES).put(value[0], value[1])

    def on_timer(self, timestamp: int, ctx: Any) -> Any:
        key = ctx.get_current_key()
        yield ("timer", key, self.count.value(), self.owner.value() == key)


@PARALLELISM
@MODES
def test_keyed_broadcast_process_function_sees_the_elements_key(tmp_path: Path, parallelism: int,
                                                                mode: str) -> None:
    env = env_with(parallelism, mode)
    rules = env.from_collection([("factor", 2), ("factor", 3)]).broadcast(RULES)
    env.from_collection(DATA).key_by(lambda t: t[0]).connect(rules).process(CountingBroadcast()) \
        .add_sink(CollectSink(tmp_path))
    env.execute()
    out = read_collected(tmp_path)
    assert sorted(r for r in out if r[0] != "timer") == counted(COUNTS)
    assert sorted(r for r in out if r[0] == "timer") == sorted(("timer", k, c, True) for k, c in COUNTS.items())


class ReadsKeyedStateOnTheBroadcastSide(CountingBroadcast):
    def process_broadcast_element(self, value: Any, ctx: Any) -> Any:
        yield ("broadcast", self.count.value())  # no key is current: which key's count would this be?


@PARALLELISM
def test_keyed_state_in_process_broadcast_element_fails_clearly(parallelism: int) -> None:
    env = env_with(parallelism)
    rules = env.from_collection([("factor", 2)]).broadcast(RULES)
    env.from_collection(DATA).key_by(lambda t: t[0]).connect(rules) \
        .process(ReadsKeyedStateOnTheBroadcastSide()).print()
    with pytest.raises(JobExecutionError, match=r"No key set: keyed state was used outside of a keyed context"):
        env.execute()


# -- outside a record: open() -----------------------------------------------------------------------------

class ReadsStateInOpen(KeyedProcessFunction):
    def open(self, runtime_context: RuntimeContext) -> None:
        self.count = runtime_context.get_state(ValueStateDescriptor("count", Types.INT()))
        self.count.value()  # no record yet: there is no current key

    def process_element(self, value: Any, ctx: KeyedProcessFunction.Context) -> Any:
        yield value


class ReduceReadsStateInOpen(CountingReduce):
    def open(self, runtime_context: RuntimeContext) -> None:
        super().open(runtime_context)
        self.reduces.update(0)


@pytest.mark.parametrize("function", [ReadsStateInOpen, ReduceReadsStateInOpen])
def test_keyed_state_in_open_fails_clearly(function: type) -> None:
    env = env_with(1)
    keyed = env.from_collection(DATA).key_by(lambda t: t[0])
    (keyed.process(function()) if function is ReadsStateInOpen else keyed.reduce(function())).print()
    with pytest.raises(JobExecutionError, match=r"No key set: keyed state was used outside of a keyed context"):
        env.execute()


# -- windows ----------------------------------------------------------------------------------------------

WINDOW_MS = 10
WINDOWS = range(3)


def window_size(key: int, window: int) -> int:
    """How many records key `key` has in the `window`-th window: 1 to 3, differing between keys."""
    return (key + window) % 3 + 1


# every key has records in each of the three 10 ms windows, in timestamp order
TIMED = sorted(((k, w * WINDOW_MS + j) for k in KEYS for w in WINDOWS for j in range(window_size(k, w))),
               key=lambda r: (r[1], r[0]))


class SecondField(TimestampAssigner):
    def extract_timestamp(self, value: Any, record_timestamp: int) -> int:
        return value[1]


class GenericEventTimeTrigger(EventTimeTrigger):
    """EventTimeTrigger through the window operator's general path (the fast path takes only the class itself)."""


# the fast path (heap, default trigger), the general path (trigger calls, state API) and rocksdb
PATHS = pytest.mark.parametrize("path", ["fast", "general", "rocksdb"])


def windowed(parallelism: int, mode: str, path: str, assigner: Any = None) -> tuple[StreamExecutionEnvironment, Any]:
    env = env_with(parallelism, mode, "rocksdb" if path == "rocksdb" else "hashmap")
    strategy = WatermarkStrategy.for_monotonous_timestamps().with_timestamp_assigner(SecondField())
    keyed = env.from_collection(TIMED).assign_timestamps_and_watermarks(strategy).key_by(lambda r: r[0])
    windows = keyed.window(assigner or TumblingEventTimeWindows.of(Time.milliseconds(WINDOW_MS)))
    return env, windows.trigger(GenericEventTimeTrigger()) if path == "general" else windows


class WindowStates(ProcessWindowFunction, PerKey):
    """Per window: how often it fired (window state); per key: how many windows fired so far, in the global
    state and in the runtime context's state; and the key that state was first written for."""

    def open(self, runtime_context: RuntimeContext) -> None:
        self.open_state(runtime_context)
        self.fires = ValueStateDescriptor("fires", Types.INT())
        self.windows = ValueStateDescriptor("windows", Types.INT())

    def process(self, key: Any, context: ProcessWindowFunction.Context, elements: Any) -> Any:
        fires = context.window_state().get_state(self.fires)
        fires.update((fires.value() or 0) + 1)
        windows = context.global_state().get_state(self.windows)
        windows.update((windows.value() or 0) + 1)
        n, own = self.see(key)
        yield (key, context.window().start, len(list(elements)), fires.value(), windows.value(), n, own)


@PARALLELISM
@MODES
@PATHS
def test_process_window_function_window_global_and_runtime_state_are_the_windows_key(
        tmp_path: Path, parallelism: int, mode: str, path: str) -> None:
    env, windows = windowed(parallelism, mode, path)
    windows.process(WindowStates()).add_sink(CollectSink(tmp_path))
    env.execute()
    # a key's windows fire in time order: the w-th is its (w + 1)-th, and fires once (no lateness)
    assert sorted(read_collected(tmp_path)) == sorted(
        (k, w * WINDOW_MS, window_size(k, w), 1, w + 1, w + 1, True) for k in KEYS for w in WINDOWS)


class CountingWindowReduce(ReduceFunction, PerKey):
    """Counts its reduce calls per key (runtime-context state): a window's result carries the key's count
    of reduce calls so far."""

    def open(self, runtime_context: RuntimeContext) -> None:
        self.open_state(runtime_context)

    def reduce(self, value1: Any, value2: Any) -> Any:
        n, own = self.see(value2[0])
        return (value2[0], n, own and (len(value1) == 2 or value1[2]))


@PARALLELISM
@MODES
@PATHS
def test_rich_reduce_function_of_a_window_sees_its_keys_state(tmp_path: Path, parallelism: int, mode: str,
                                                              path: str) -> None:
    env, windows = windowed(parallelism, mode, path)
    windows.reduce(CountingWindowReduce()).add_sink(CollectSink(tmp_path))
    env.execute()
    expected = []
    for k in KEYS:
        calls = 0  # a window of s records makes s - 1 reduce calls; the key's windows come in time order
        for w in WINDOWS:
            size = window_size(k, w)
            calls += size - 1
            expected.append((k, w * WINDOW_MS) if size == 1 else (k, calls, True))  # one record: itself
    assert sorted(read_collected(tmp_path)) == sorted(expected)


@PARALLELISM
@MODES
def test_rich_reduce_function_of_sliding_windows_sees_its_keys_state(tmp_path: Path, parallelism: int,
                                                                     mode: str) -> None:
    assigner = SlidingEventTimeWindows.of(Time.milliseconds(2 * WINDOW_MS), Time.milliseconds(WINDOW_MS))
    env, windows = windowed(parallelism, mode, "fast", assigner)
    windows.reduce(CountingWindowReduce()).add_sink(CollectSink(tmp_path))
    env.execute()
    out = read_collected(tmp_path)
    # windows start at -10, 0, 10 and 20 ms; each holds at least 2 records but the first and last (1 to 3)
    assert sorted({r[0] for r in out}) == list(KEYS) and len(out) == 4 * len(KEYS)
    assert all(r[2] for r in out if len(r) == 3), out  # every reduce call saw its own key's state


class CountingAggregate(AggregateFunction, PerKey):
    """add() counts the key's records (runtime-context state); get_result() checks it reads that key's."""

    def open(self, runtime_context: RuntimeContext) -> None:
        self.open_state(runtime_context)

    def create_accumulator(self) -> Any:
        return (None, 0, True)

    def add(self, value: Any, accumulator: Any) -> Any:
        n, own = self.see(value[0])
        return (value[0], n, accumulator[2] and own)

    def get_result(self, accumulator: Any) -> Any:
        key, n, own = accumulator
        return (key, n, own and self.owner.value() == key and self.count.value() >= n)

    def merge(self, acc_a: Any, acc_b: Any) -> Any:
        raise AssertionError("tumbling windows do not merge")


class CountWindows(WindowFunction):
    """A rich window function after the aggregate: counts the key's windows in runtime-context state."""

    def open(self, runtime_context: RuntimeContext) -> None:
        self.windows = runtime_context.get_state(ValueStateDescriptor("window-count", Types.INT()))

    def apply(self, key: Any, window: Any, inputs: Any) -> Any:
        (result,) = list(inputs)
        n = (self.windows.value() or 0) + 1
        self.windows.update(n)
        yield (*result, n)


@PARALLELISM
@MODES
@PATHS
def test_rich_aggregate_function_and_window_function_see_their_keys_state(tmp_path: Path, parallelism: int,
                                                                          mode: str, path: str) -> None:
    env, windows = windowed(parallelism, mode, path)
    windows.aggregate(CountingAggregate()).add_sink(CollectSink(tmp_path / "aggregate"))
    env.execute()
    env, windows = windowed(parallelism, mode, path)
    windows.aggregate(CountingAggregate(), window_function=CountWindows()).add_sink(CollectSink(tmp_path / "apply"))
    env.execute()
    # a window's accumulator ends with the key's record count through that window (records in time order)
    totals = {(k, w): sum(window_size(k, v) for v in WINDOWS if v <= w) for k in KEYS for w in WINDOWS}
    assert sorted(read_collected(tmp_path / "aggregate")) == sorted((k, n, True) for (k, _), n in totals.items())
    assert sorted(read_collected(tmp_path / "apply")) == sorted(
        (k, n, True, w + 1) for (k, w), n in totals.items())


# -- interval join ----------------------------------------------------------------------------------------

class CountingJoin(ProcessJoinFunction, PerKey):
    def open(self, runtime_context: RuntimeContext) -> None:
        self.open_state(runtime_context)

    def process_element(self, left: Any, right: Any, ctx: ProcessJoinFunction.Context) -> Any:
        yield (left[0], *self.see(left[0]))


@PARALLELISM
def test_process_join_function_sees_its_keys_state(tmp_path: Path, parallelism: int) -> None:
    env = env_with(parallelism)
    strategy = WatermarkStrategy.for_monotonous_timestamps().with_timestamp_assigner(SecondField())
    left_data = TIMED
    right_data = [(k, t) for k in KEYS for t in range(0, 3 * WINDOW_MS, 7)]
    left = env.from_collection(left_data).assign_timestamps_and_watermarks(strategy).key_by(lambda r: r[0])
    right = env.from_collection(right_data).assign_timestamps_and_watermarks(strategy).key_by(lambda r: r[0])
    left.interval_join(right).between(Duration.of_millis(-2), Duration.of_millis(2)).process(CountingJoin()) \
        .add_sink(CollectSink(tmp_path))
    env.execute()
    pairs = {k: sum(1 for a in left_data for b in right_data if a[0] == b[0] == k and -2 <= b[1] - a[1] <= 2)
             for k in KEYS}
    assert all(pairs.values())
    assert sorted(read_collected(tmp_path)) == counted(pairs)
