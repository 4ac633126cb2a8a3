"""Windows in the local mini cluster and at the operator: every window kind with inputs and expected
outputs worked out from Flink's documented semantics (windows [start, end), results stamped end - 1, late
data, allowed lateness, triggers, evictors, merging sessions), independence from arrival order within the
out-of-orderness bound, processing time, BATCH mode, and restore from snapshots (also rescaled)."""

from __future__ import annotations

import collections
import copy
import pickle
import random
from pathlib import Path
from typing import Any

import pytest

from ha_flink.common import Configuration, Duration, Time, WatermarkStrategy
from ha_flink.datastream import (
    AggregateFunction, AllWindowFunction, ProcessAllWindowFunction, ProcessFunction,
    ProcessWindowFunction, RuntimeExecutionMode, StreamExecutionEnvironment, WindowFunction,
)
from ha_flink.datastream.connectors.base import CollectionSource
from ha_flink.datastream.connectors.number_seq import RateLimitedNumberSequenceSource
from ha_flink.datastream.output_tag import OutputTag
from ha_flink.datastream.state import ReducingStateDescriptor, ValueStateDescriptor
from ha_flink.datastream.window import (
    ContinuousEventTimeTrigger, CountEvictor, CountTrigger, DynamicEventTimeSessionWindows, EventTimeSessionWindows,
    EventTimeTrigger, GlobalWindows, PurgingTrigger, SessionWindowTimeGapExtractor, SlidingEventTimeWindows,
    TimeEvictor, TimeWindow, Trigger, TriggerResult, TumblingEventTimeWindows, TumblingProcessingTimeWindows,
)
from ha_flink.runtime.operators.base import MAX_WATERMARK, OperatorContext, ProcessingTimeService, TaskInfo
from ha_flink.runtime.key_groups import assign_to_key_group, key_group_range
from ha_flink.runtime.state.backend import KeyedStateSnapshot, StateBackendSettings
from ha_flink.testing.functions import FailOnceAt
from ha_flink.testing.processes import wait_for
from ha_flink.testing.sinks import CollectSink, read_collected


# -- helpers ------------------------------------------------------------------------------------------

def OneByOne(elements: list[Any]) -> CollectionSource:
    """A non-parallel source that hands over one record per batch, so that the watermark (emitted after
    each batch) advances between records exactly as the test's data says."""
    return CollectionSource(elements, batch_size=1)


class SecondField:
    def extract_timestamp(self, value: Any, record_timestamp: int) -> int:
        return value[1]


def strategy(bound_ms: int = 0) -> WatermarkStrategy:
    return WatermarkStrategy.for_bounded_out_of_orderness(Duration.of_millis(bound_ms)) \
        .with_timestamp_assigner(SecondField())


def env_with(parallelism: int = 2, backend: str = "hashmap", batch: bool = False) -> StreamExecutionEnvironment:
    config = Configuration()
    config.set_string("state.backend.type", backend)
    env = StreamExecutionEnvironment.get_execution_environment(config).set_parallelism(parallelism)
    if batch:
        env.set_runtime_mode(RuntimeExecutionMode.BATCH)
    return env


def timed(env: StreamExecutionEnvironment, data: list[Any], bound_ms: int = 0, one_by_one: bool = True) -> Any:
    source = env.from_source(OneByOne(data), None, "data") if one_by_one else env.from_collection(data)
    return source.assign_timestamps_and_watermarks(strategy(bound_ms))


class Stamp(ProcessFunction):
    """(value, timestamp): the results of a window with the timestamp Flink gives them."""

    def process_element(self, value: Any, ctx: ProcessFunction.Context) -> Any:
        yield (value, ctx.timestamp())


def collect(stream: Any, folder: Path) -> None:
    stream.process(Stamp()).add_sink(CollectSink(folder))


def add(a: tuple[str, int], b: tuple[str, int]) -> tuple[str, int]:
    return (a[0], a[1] + b[1])


class Count(AggregateFunction):
    def create_accumulator(self) -> int:
        return 0

    def add(self, value: Any, accumulator: int) -> int:
        return accumulator + 1

    def get_result(self, accumulator: int) -> int:
        return accumulator

    def merge(self, a: int, b: int) -> int:
        return a + b


class GenericEventTimeTrigger(EventTimeTrigger):
    """EventTimeTrigger's behaviour through the general path (the fast path takes only the class itself)."""


# Each event-time test runs through the fast path (heap), the general path (trigger calls, state API) and
# the rocksdb backend, which must all give the same results.
PATHS = pytest.mark.parametrize("path", ["fast", "general", "rocksdb"])


def windowed(keyed: Any, assigner: Any, path: str) -> Any:
    windows = keyed.window(assigner)
    return windows.trigger(GenericEventTimeTrigger()) if path == "general" else windows


def backend_of(path: str) -> str:
    return "rocksdb" if path == "rocksdb" else "hashmap"


# -- event-time windows -------------------------------------------------------------------------------

@PATHS
def test_tumbling_event_time_windows_reduce_per_key_and_stamp_end_minus_one(tmp_path: Path, path: str) -> None:
    data = [("a", 1000), ("b", 1500), ("a", 4999), ("a", 5000), ("b", 9999), ("a", 10001), ("b", 10002)]
    env = env_with(2, backend_of(path))
    values = timed(env, data).map(lambda t: (t[0], 1))
    # (map drops the timestamp field; the records keep their timestamps)
    keyed = values.key_by(lambda t: t[0])
    collect(windowed(keyed, TumblingEventTimeWindows.of(Time.seconds(5)), path).reduce(add), tmp_path)
    env.execute()
    assert sorted(read_collected(tmp_path)) == sorted([
        (("a", 2), 4999), (("b", 1), 4999),   # [0, 5000): a at 1000 and 4999, b at 1500
        (("a", 1), 9999), (("b", 1), 9999),   # [5000, 10000): a at 5000, b at 9999
        (("a", 1), 14999), (("b", 1), 14999),  # [10000, 15000), fired by the end of input
    ])


@PATHS
def test_tumbling_windows_with_offset_and_duration(tmp_path: Path, path: str) -> None:
    data = [("k", 900), ("k", 1000), ("k", 2999), ("k", 3000)]
    env = env_with(1, backend_of(path))
    keyed = timed(env, data).key_by(lambda t: t[0])
    # windows of 2 s starting at ..., -1000, 1000, 3000 (offset 1 s)
    collect(windowed(keyed, TumblingEventTimeWindows.of(Duration.of_seconds(2), Time.seconds(1)), path)
            .aggregate(Count()), tmp_path)
    env.execute()
    assert sorted(read_collected(tmp_path)) == [(1, 999), (1, 4999), (2, 2999)]


@PATHS
def test_sliding_event_time_windows(tmp_path: Path, path: str) -> None:
    data = [("a", 1000), ("a", 6000), ("a", 12000)]
    env = env_with(2, backend_of(path))
    keyed = timed(env, data).key_by(lambda t: t[0])
    collect(windowed(keyed, SlidingEventTimeWindows.of(Time.seconds(10), Time.seconds(5)), path)
            .apply(SortedTimestamps()), tmp_path)
    env.execute()
    # windows of 10 s every 5 s: each element is in two of them
    assert sorted(read_collected(tmp_path)) == [
        (("a", -5000, 5000, [1000]), 4999),
        (("a", 0, 10000, [1000, 6000]), 9999),
        (("a", 5000, 15000, [6000, 12000]), 14999),
        (("a", 10000, 20000, [12000]), 19999),
    ]


class SortedTimestamps(WindowFunction):
    def apply(self, key: Any, window: TimeWindow, inputs: Any) -> Any:
        return [(key, window.start, window.end, sorted(t for _, t in inputs))]


class SessionSummary(ProcessWindowFunction):
    def process(self, key: Any, context: ProcessWindowFunction.Context, elements: Any) -> Any:
        window = context.window()
        yield (key, window.start, window.end, sorted(t for _, t in elements))


@pytest.mark.parametrize("backend", ["hashmap", "rocksdb"])
def test_event_time_sessions_with_static_gap_merge_touching_windows(tmp_path: Path, backend: str) -> None:
    # gap 3 s: an element opens [t, t + 3000); windows that overlap or touch merge
    data = [("a", 1000), ("b", 1000), ("a", 3000), ("a", 6000), ("b", 5000), ("a", 10000), ("a", 8000)]
    env = env_with(2, backend)
    keyed = timed(env, data, bound_ms=3000).key_by(lambda t: t[0])
    collect(keyed.window(EventTimeSessionWindows.with_gap(Time.seconds(3))).process(SessionSummary()), tmp_path)
    env.execute()
    assert sorted(read_collected(tmp_path)) == [
        # a: 1000 and 3000 overlap ([1000, 6000)), 6000 touches it, 8000 and 10000 chain on: one session
        (("a", 1000, 13000, [1000, 3000, 6000, 8000, 10000]), 12999),
        (("b", 1000, 4000, [1000]), 3999),  # b: 1000 and 5000 are 4 s apart: two sessions
        (("b", 5000, 8000, [5000]), 7999),
    ]


class GapOfThirdField(SessionWindowTimeGapExtractor):
    def extract(self, element: Any) -> int:
        return element[2]


def test_event_time_sessions_with_dynamic_gap(tmp_path: Path) -> None:
    data = [("a", 1000, 500), ("a", 1400, 500), ("a", 2000, 2000), ("a", 4500, 100), ("a", 5000, 100)]
    env = env_with(1)
    keyed = timed(env, data).key_by(lambda t: t[0])
    collect(keyed.window(DynamicEventTimeSessionWindows.with_dynamic_gap(GapOfThirdField()))
            .apply(lambda key, window, inputs: [(window.start, window.end, len(inputs))]), tmp_path)
    env.execute()
    # [1000,1500) + [1400,1900) -> [1000,1900); [2000,4000); [4500,4600); [5000,5100)
    assert sorted(read_collected(tmp_path)) == [((1000, 1900, 2), 1899), ((2000, 4000, 1), 3999),
                                                ((4500, 4600, 1), 4599), ((5000, 5100, 1), 5099)]


def test_late_data_goes_to_the_side_output_with_its_timestamp(tmp_path: Path) -> None:
    late = OutputTag("late")
    # watermark = highest timestamp - 1 (no out-of-orderness allowed)
    data = [("a", 1000), ("a", 6000), ("a", 2000), ("a", 5500), ("a", 4999)]
    for path in ("fast", "general"):
        env = env_with(2)
        keyed = timed(env, data).key_by(lambda t: t[0])
        result = windowed(keyed, TumblingEventTimeWindows.of(Time.seconds(5)), path) \
            .side_output_late_data(late).aggregate(Count())
        collect(result, tmp_path / path / "main")
        collect(result.get_side_output(late), tmp_path / path / "late")
        env.execute()
        # after 6000 the watermark is 5999 >= 4999: [0, 5000) fired with 1000 only; 2000 and 4999 are late
        assert sorted(read_collected(tmp_path / path / "main")) == [(1, 4999), (2, 9999)]
        assert sorted(read_collected(tmp_path / path / "late")) == [(("a", 2000), 2000), (("a", 4999), 4999)]


class KeyAndResult(WindowFunction):
    def apply(self, key: Any, window: TimeWindow, inputs: Any) -> Any:
        return [(key, *inputs)]


@PATHS
def test_allowed_lateness_refires_the_window_for_each_late_element(tmp_path: Path, path: str) -> None:
    late = OutputTag("late")
    data = [("a", 1000), ("a", 6000), ("b", 3500), ("a", 2000), ("a", 9000), ("a", 3000), ("a", 10500), ("a", 4000)]
    env = env_with(1, backend_of(path))
    keyed = timed(env, data).key_by(lambda t: t[0])
    result = windowed(keyed, TumblingEventTimeWindows.of(Time.seconds(5)), path).allowed_lateness(5000) \
        .side_output_late_data(late).aggregate(Count(), KeyAndResult())
    collect(result, tmp_path / "main")
    collect(result.get_side_output(late), tmp_path / "late")
    env.execute()
    assert read_collected(tmp_path / "main") == [
        (("a", 1), 4999),   # watermark 5999 passed [0, 5000)
        (("b", 1), 4999),   # b's first element comes after the window's end, within the lateness: fires at once
        (("a", 2), 4999),   # 2000: late, within the lateness: fires again
        (("a", 3), 4999),   # 3000 (watermark 8999 < 4999 + 5000): again
        (("a", 2), 9999),   # watermark 10499: [5000, 10000) fires, [0, 5000) of a and b expire (at 9999)
        (("a", 1), 14999),  # the end of input
    ]
    assert read_collected(tmp_path / "late") == [(("a", 4000), 4000)]  # 4000 + 5000 <= 10499


class Fires(ProcessWindowFunction):
    """Counts firings per window (window state) and per key (global state); remembers clear() calls."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def open(self, runtime_context: Any) -> None:
        self.window_fires = ValueStateDescriptor("window-fires")
        self.key_fires = ValueStateDescriptor("key-fires")

    def process(self, key: Any, context: ProcessWindowFunction.Context, elements: Any) -> Any:
        window_fires = context.window_state().get_state(self.window_fires)
        window_fires.update((window_fires.value() or 0) + 1)
        key_fires = context.global_state().get_state(self.key_fires)
        key_fires.update((key_fires.value() or 0) + 1)
        window = context.window()
        yield (key, window.start, window.end, len(list(elements)), window_fires.value(), key_fires.value(),
               context.current_watermark())

    def clear(self, context: ProcessWindowFunction.Context) -> None:
        fires = context.window_state().get_state(self.window_fires)
        with open(self.folder / "cleared", "a") as out:
            out.write(f"{context.window().start} {fires.value()}\n")
        fires.clear()


def test_process_window_function_context_window_state_global_state_and_clear(tmp_path: Path) -> None:
    data = [("a", 1000), ("a", 2000), ("a", 6000), ("a", 3000), ("a", 11000), ("a", 4000)]
    env = env_with(2)
    keyed = timed(env, data).key_by(lambda t: t[0])
    collect(keyed.window(TumblingEventTimeWindows.of(Time.seconds(5))).allowed_lateness(5000)
            .process(Fires(tmp_path)), tmp_path / "out")
    env.execute()
    assert read_collected(tmp_path / "out") == [
        (("a", 0, 5000, 2, 1, 1, 5999), 4999),        # the watermark passed 4999
        (("a", 0, 5000, 3, 2, 2, 5999), 4999),        # 3000 is late but within the lateness: fires again
        (("a", 5000, 10000, 1, 1, 3, 10999), 9999),   # watermark 10999; 4000 after it is dropped
        (("a", 10000, 15000, 1, 1, 4, MAX_WATERMARK), 14999),  # at the end of input
    ]
    # clear() ran when each window's state expired (end - 1 + 5000), with that window's state
    assert sorted((tmp_path / "cleared").read_text().split("\n")[:-1]) == ["0 2", "10000 1", "5000 1"]


class KeyWindowSum(ProcessWindowFunction):
    def process(self, key: Any, context: ProcessWindowFunction.Context, elements: Any) -> Any:
        (value,) = list(elements)  # after reduce/aggregate: the one pre-aggregated value
        yield (key, context.window().start, value)


class EndAndResult(WindowFunction):
    def apply(self, key: Any, window: TimeWindow, inputs: Any) -> Any:
        return [(key, window.end, *inputs)]


@PATHS
def test_reduce_and_aggregate_with_window_functions(tmp_path: Path, path: str) -> None:
    data = [("a", 1000), ("a", 2000), ("b", 3000), ("a", 7000)]
    env = env_with(2, backend_of(path))
    keyed = timed(env, data).map(lambda t: (t[0], t[1] // 1000)).key_by(lambda t: t[0])
    assigner = TumblingEventTimeWindows.of(Time.seconds(5))
    collect(windowed(keyed, assigner, path).reduce(add, KeyWindowSum()), tmp_path / "reduce")
    collect(windowed(keyed, assigner, path).aggregate(Count(), EndAndResult()), tmp_path / "aggregate")
    env.execute()
    assert sorted(read_collected(tmp_path / "reduce")) == [
        (("a", 0, ("a", 3)), 4999), (("a", 5000, ("a", 7)), 9999), (("b", 0, ("b", 3)), 4999)]
    assert sorted(read_collected(tmp_path / "aggregate")) == [
        (("a", 5000, 2), 4999), (("a", 10000, 1), 9999), (("b", 5000, 1), 4999)]


# -- count windows, global windows, triggers, evictors -----------------------------------------------

def test_count_windows_tumbling_and_sliding_as_flink_count_window(tmp_path: Path) -> None:
    env = env_with(2)
    numbers = env.from_collection([("a", i) for i in range(1, 8)] + [("b", 10), ("b", 20)])
    keyed = numbers.key_by(lambda t: t[0])
    keyed.count_window(3).apply(lambda k, w, xs: [(k, [x for _, x in xs])]).add_sink(CollectSink(tmp_path / "t"))
    keyed.count_window(3, 2).apply(lambda k, w, xs: [(k, [x for _, x in xs])]).add_sink(CollectSink(tmp_path / "s"))
    env.execute()
    # tumbling: every 3 elements, purged; the incomplete rest never fires
    assert sorted(read_collected(tmp_path / "t")) == [("a", [1, 2, 3]), ("a", [4, 5, 6])]
    # sliding (Flink: CountTrigger(2) + CountEvictor(3)): every 2 elements, over the last 3 at most
    assert sorted(read_collected(tmp_path / "s")) == [("a", [1, 2]), ("a", [2, 3, 4]), ("a", [4, 5, 6]),
                                                      ("b", [10, 20])]


def test_global_windows_with_count_trigger_and_purging_trigger(tmp_path: Path) -> None:
    env = env_with(2)
    keyed = env.from_collection([("a", i) for i in range(1, 6)]).key_by(lambda t: t[0])
    keyed.window(GlobalWindows.create()).trigger(CountTrigger.of(2)).reduce(add) \
        .add_sink(CollectSink(tmp_path / "keep"))
    keyed.window(GlobalWindows.create()).trigger(PurgingTrigger.of(CountTrigger.of(2))).reduce(add) \
        .add_sink(CollectSink(tmp_path / "purge"))
    keyed.window(GlobalWindows.create()).reduce(add).add_sink(CollectSink(tmp_path / "never"))
    env.execute()
    assert read_collected(tmp_path / "keep") == [("a", 3), ("a", 10)]  # FIRE keeps the contents
    assert read_collected(tmp_path / "purge") == [("a", 3), ("a", 7)]  # FIRE_AND_PURGE empties the window
    assert read_collected(tmp_path / "never") == []  # GlobalWindows' default trigger never fires


def test_evictors_before_and_after_the_window_function(tmp_path: Path) -> None:
    env = env_with(2)
    keyed = timed(env, [("a", 1000), ("a", 2000), ("a", 6000), ("a", 8000)], one_by_one=False) \
        .key_by(lambda t: t[0])
    # TimeEvictor(3 s) before: keeps elements newer than the newest (8000) - 3000
    keyed.window(TumblingEventTimeWindows.of(Time.seconds(10))).evictor(TimeEvictor.of(Time.seconds(3))) \
        .apply(lambda k, w, xs: [[t for _, t in xs]]).add_sink(CollectSink(tmp_path / "time"))
    # CountEvictor(1) after: each firing sees everything, then only the last element stays
    keyed.window(GlobalWindows.create()).trigger(CountTrigger.of(2)).evictor(CountEvictor.of(1, True)) \
        .apply(lambda k, w, xs: [[t for _, t in xs]]).add_sink(CollectSink(tmp_path / "count"))
    # an evictor with reduce: the reduce runs over what is left at firing time
    keyed.window(GlobalWindows.create()).trigger(CountTrigger.of(2)).evictor(CountEvictor.of(3)) \
        .reduce(add).add_sink(CollectSink(tmp_path / "reduce"))
    env.execute()
    assert read_collected(tmp_path / "time") == [[6000, 8000]]
    assert read_collected(tmp_path / "count") == [[1000, 2000], [2000, 6000, 8000]]
    assert read_collected(tmp_path / "reduce") == [("a", 3000), ("a", 16000)]


class FireOnSecondElement(Trigger):
    """A user trigger: fires early when a window gets its second element, and at its end; its count is
    partitioned state (per key and window) and its timer is deleted on clear."""

    def __init__(self) -> None:
        self.count = ReducingStateDescriptor("count", lambda a, b: a + b)

    def on_element(self, element: Any, timestamp: int, window: Any, ctx: Trigger.TriggerContext) -> TriggerResult:
        ctx.register_event_time_timer(window.max_timestamp())
        count = ctx.get_partitioned_state(self.count)
        count.add(1)
        return TriggerResult.FIRE if count.get() == 2 else TriggerResult.CONTINUE

    def on_event_time(self, time: int, window: Any, ctx: Trigger.TriggerContext) -> TriggerResult:
        return TriggerResult.FIRE if time == window.max_timestamp() else TriggerResult.CONTINUE

    def on_processing_time(self, time: int, window: Any, ctx: Trigger.TriggerContext) -> TriggerResult:
        return TriggerResult.CONTINUE

    def clear(self, window: Any, ctx: Trigger.TriggerContext) -> None:
        ctx.get_partitioned_state(self.count).clear()
        ctx.delete_event_time_timer(window.max_timestamp())


def test_custom_trigger_and_continuous_event_time_trigger(tmp_path: Path) -> None:
    env = env_with(2)
    data = [("a", 1000), ("a", 2000), ("a", 3000), ("b", 4000), ("a", 4500), ("a", 9000)]
    keyed = timed(env, data).key_by(lambda t: t[0])
    keyed.window(TumblingEventTimeWindows.of(Time.seconds(5))).trigger(FireOnSecondElement()) \
        .aggregate(Count()).add_sink(CollectSink(tmp_path / "custom"))
    every_2s = ContinuousEventTimeTrigger.of(Time.seconds(2))
    keyed.window(TumblingEventTimeWindows.of(Time.seconds(10))).trigger(every_2s) \
        .aggregate(Count()).add_sink(CollectSink(tmp_path / "continuous"))
    env.execute()
    # a in [0,5000): early firing at its 2nd element (2), then at the end (4 elements); b: at the end (1)
    assert sorted(read_collected(tmp_path / "custom")) == [1, 1, 2, 4]
    # a in [0,10000): its first element sets a timer at 2000, which fires once the watermark passes it (after
    # 3000: 3 elements), then every 2 s of event time: 4000 (after 4500: 4), 6000 and 8000 (after 9000: 5),
    # and at the window's end (5). b: 6000, 8000 and the end (1 each).
    continuous = collections.Counter(read_collected(tmp_path / "continuous"))
    assert continuous == collections.Counter([3, 4, 5, 5, 5, 1, 1, 1])


# -- all-windows --------------------------------------------------------------------------------------

class WindowTotal(ProcessAllWindowFunction):
    def process(self, context: ProcessAllWindowFunction.Context, elements: Any) -> Any:
        yield (context.window().start, sum(v for _, v in elements))


class CountAll(AllWindowFunction):
    def apply(self, window: Any, inputs: Any) -> Any:
        yield len(inputs)


def test_window_all_and_count_window_all_run_in_one_subtask(tmp_path: Path) -> None:
    env = env_with(2)
    data = [(f"k{i % 5}", i * 400) for i in range(20)]  # 0 .. 7600 ms
    stream = timed(env, data, one_by_one=False).map(lambda t: (t[0], 1))
    totals = stream.window_all(TumblingEventTimeWindows.of(Time.seconds(2))).process(WindowTotal())
    assert totals._transformation.parallelism == 1
    with pytest.raises(ValueError, match="non-parallel"):
        totals.set_parallelism(2)
    totals.add_sink(CollectSink(tmp_path / "all"))
    stream.count_window_all(6).apply(CountAll()).add_sink(CollectSink(tmp_path / "count"))
    stream.window_all(TumblingEventTimeWindows.of(Time.seconds(4))).reduce(add, output_type=None) \
        .map(lambda t: t[1]).add_sink(CollectSink(tmp_path / "reduce"))
    env.execute()
    assert sorted(read_collected(tmp_path / "all")) == [(0, 5), (2000, 5), (4000, 5), (6000, 5)]
    assert read_collected(tmp_path / "count") == [6, 6, 6]
    assert sorted(read_collected(tmp_path / "reduce")) == [10, 10]


# -- arrival order ------------------------------------------------------------------------------------

BOUND_MS = 400


def generated() -> list[tuple[str, int]]:
    """Three keys, a record every 7 ms, with 700 ms holes (session breaks) every 100 records."""
    return [("abc"[i % 3], i * 7) for i in range(2400) if (i // 100) % 4 != 3]


def shuffled_within_bound(data: list[tuple[str, int]], seed: int) -> list[tuple[str, int]]:
    """Each record moved later by less than BOUND_MS of event time: none falls behind the watermark."""
    rng = random.Random(seed)
    return [record for _, record in sorted((record[1] + rng.uniform(0, BOUND_MS - 1), record) for record in data)]


def expected_windows(data: list[tuple[str, int]]) -> dict[str, Any]:
    tumbling = collections.Counter((key, ts // 1000 * 1000) for key, ts in data)
    sliding = collections.Counter()
    for key, ts in data:
        for start in range(ts // 500 * 500, ts - 1000, -500):
            sliding[(key, start)] += 1
    sessions = []
    for key in "abc":
        times = sorted(ts for k, ts in data if k == key)
        first = previous = times[0]
        count = 1
        for ts in times[1:]:
            if ts - previous > 300:  # windows [t, t + 300) merge when they overlap or touch
                sessions.append((key, first, previous + 300, count))
                first, count = ts, 0
            previous = ts
            count += 1
        sessions.append((key, first, previous + 300, count))
    return {"tumbling": sorted(tumbling.items()), "sliding": sorted(sliding.items()), "sessions": sorted(sessions)}


class KeyStartCount(ProcessWindowFunction):
    def process(self, key: Any, context: ProcessWindowFunction.Context, elements: Any) -> Any:
        yield ((key, context.window().start), len(list(elements)))


class KeyStartResult(ProcessWindowFunction):
    def process(self, key: Any, context: ProcessWindowFunction.Context, elements: Any) -> Any:
        (result,) = elements  # the aggregate's one result
        yield ((key, context.window().start), result)


class Session(WindowFunction):
    def apply(self, key: Any, window: TimeWindow, inputs: Any) -> Any:
        yield (key, window.start, window.end, len(list(inputs)))


@pytest.mark.parametrize("seed", [None, 1, 2])
def test_event_time_results_do_not_depend_on_arrival_order_within_the_bound(tmp_path: Path, seed: int | None
                                                                            ) -> None:
    data = generated()
    arriving = data if seed is None else shuffled_within_bound(data, seed)
    env = env_with(2)
    keyed = timed(env, arriving, BOUND_MS, one_by_one=False).key_by(lambda t: t[0])
    keyed.window(TumblingEventTimeWindows.of(Time.seconds(1))).aggregate(Count(), KeyStartResult()) \
        .add_sink(CollectSink(tmp_path / "tumbling"))
    keyed.window(SlidingEventTimeWindows.of(Time.seconds(1), Time.milliseconds(500))) \
        .trigger(GenericEventTimeTrigger()).process(KeyStartCount()).add_sink(CollectSink(tmp_path / "sliding"))
    keyed.window(EventTimeSessionWindows.with_gap(Time.milliseconds(300))).apply(Session()) \
        .add_sink(CollectSink(tmp_path / "sessions"))
    env.execute()
    expected = expected_windows(data)
    for kind in ("tumbling", "sliding", "sessions"):
        assert sorted(read_collected(tmp_path / kind)) == expected[kind], kind


# -- processing time and BATCH mode -------------------------------------------------------------------

class Members(WindowFunction):
    def apply(self, key: Any, window: TimeWindow, inputs: Any) -> Any:
        yield (window.start, window.end, sorted(inputs))


def test_processing_time_windows_count_every_record_once(tmp_path: Path) -> None:
    n = 600
    env = env_with(2)
    (env.from_source(RateLimitedNumberSequenceSource(0, None, records_per_second=1500), None, "numbers")
        .filter(lambda x: x < n).key_by(lambda x: x % 2)
        .window(TumblingProcessingTimeWindows.of(Time.milliseconds(100))).apply(Members())
        .add_sink(CollectSink(tmp_path)))
    client = env.execute_async()
    try:
        wait_for(lambda: sum(len(m) for _, _, m in read_collected(tmp_path)) >= n, 30,
                 what="every record in a fired processing-time window")
    finally:
        client.cancel().result(10)
    windows = read_collected(tmp_path)
    members = [x for _, _, m in windows for x in m]
    assert sorted(members) == list(range(n))  # each record in exactly one window
    assert all(end - start == 100 and start % 100 == 0 for start, end, _ in windows)
    assert len(windows) > 2  # the records spread over time (~0.4 s): several windows per key


def test_pending_processing_time_windows_at_the_end_of_input_streaming_drops_batch_fires(tmp_path: Path) -> None:
    for mode in ("streaming", "batch"):
        env = env_with(2, batch=mode == "batch")
        (env.from_collection(list(range(100))).key_by(lambda x: x % 3)
            .window(TumblingProcessingTimeWindows.of(Time.hours(1))).aggregate(Count())
            .add_sink(CollectSink(tmp_path / mode)))
        env.execute()
    # STREAMING: Flink quiesces the processing-time service of a finished operator: the hour never ends
    assert read_collected(tmp_path / "streaming") == []
    # BATCH: every timer fires at the end of the input
    assert sorted(read_collected(tmp_path / "batch")) == [33, 33, 34]


def test_batch_mode_has_no_late_data_and_fires_event_time_windows_at_the_end(tmp_path: Path) -> None:
    data = [("a", 1000), ("a", 6000), ("a", 2000), ("a", 5500)]
    for mode in ("streaming", "batch"):
        env = env_with(2, batch=mode == "batch")
        keyed = timed(env, data).key_by(lambda t: t[0])
        collect(keyed.window(TumblingEventTimeWindows.of(Time.seconds(5))).aggregate(Count()), tmp_path / mode)
        env.execute()
    assert sorted(read_collected(tmp_path / "streaming")) == [(1, 4999), (2, 9999)]  # 2000 came late
    assert sorted(read_collected(tmp_path / "batch")) == [(2, 4999), (2, 9999)]


# -- failures and restore -----------------------------------------------------------------------------

def test_a_checkpointed_window_job_restarts_with_exact_window_results(tmp_path: Path) -> None:
    n = 6000
    config = Configuration()
    for key, value in {"restart-strategy.type": "fixed-delay", "restart-strategy.fixed-delay.delay": "10 ms"}.items():
        config.set_string(key, value)
    env = StreamExecutionEnvironment.get_execution_environment(config).set_parallelism(2)
    env.enable_checkpointing(50)
    numbers = env.from_source(RateLimitedNumberSequenceSource(0, n - 1, records_per_second=6000), None, "numbers")
    (numbers.map(FailOnceAt(n * 2 // 3)).map(lambda x: (x % 5, x))
        .assign_timestamps_and_watermarks(strategy(50))
        .key_by(lambda t: t[0]).window(TumblingEventTimeWindows.of(Time.milliseconds(500)))
        .aggregate(Count(), KeyStartResult()).add_sink(CollectSink(tmp_path)))
    client = env.execute_async()
    client.get_job_execution_result().result(60)
    assert client.mini_cluster.restored_checkpoint(client.get_job_id()) is not None
    results = read_collected(tmp_path)
    expected = {((key, start), 100) for key in range(5) for start in range(0, n, 500)}
    # windows fired again after the restart may repeat, but every result is the exact count
    assert set(results) == expected


class Harness:
    """One window operator subtask driven by hand: batches, watermarks, snapshots, restores."""

    def __init__(self, operator: Any, index: int = 0, parallelism: int = 1, restored: list[dict] | None = None,
                 backend: str = "hashmap", local_dir: str | None = None) -> None:
        self.records: list[tuple[Any, int | None]] = []
        self.operator = copy.deepcopy(operator)
        context = OperatorContext(TaskInfo("window", index, parallelism, 128), ProcessingTimeService(),
                                  state_backend=StateBackendSettings(backend, False, local_dir),
                                  owner=f"w-{index}-{id(self)}")
        self.operator.setup(context, self)
        if restored is not None:
            self.operator.initialize_state(restored)
        self.operator.open()
        self.keys = key_group_range(128, parallelism, index)

    def owns(self, key: Any) -> bool:
        return assign_to_key_group(key, 128) in self.keys

    # the Output protocol
    def collect_batch(self, batch: list[Any], timestamps: list[int] | None = None) -> None:
        self.records.extend(zip(batch, timestamps or [None] * len(batch)))

    def collect_side(self, tag_id: str, batch: list[Any], timestamps: list[int] | None = None) -> None:
        pass

    def emit_watermark(self, watermark: int) -> None:
        pass

    def emit_watermark_status(self, idle: bool) -> None:
        pass

    def feed(self, records: list[tuple[Any, int]], key: Any) -> None:
        mine = [r for r in records if self.owns(key(r[0]))]
        if mine:
            self.operator.process_batch([v for v, _ in mine], [t for _, t in mine])

    def snapshot(self) -> dict[str, Any]:
        state = self.operator.snapshot_state(1)
        state = {k: v.materialize(None) if isinstance(v, KeyedStateSnapshot) else v for k, v in state.items()}
        return pickle.loads(pickle.dumps(state))  # as it travels: pickled


def operator_of(stream: Any) -> Any:
    return stream._transformation.operator


class ListAccumulator(AggregateFunction):
    """Changes its accumulator in place: a snapshot must not see changes made after it."""

    def create_accumulator(self) -> list[int]:
        return []

    def add(self, value: Any, accumulator: list[int]) -> list[int]:
        accumulator.append(value[1])
        return accumulator

    def get_result(self, accumulator: list[int]) -> list[int]:
        return sorted(accumulator)

    def merge(self, a: list[int], b: list[int]) -> list[int]:
        return a + b


def window_operators() -> dict[str, Any]:
    env = env_with(1)
    keyed = env.from_collection([("x", 0)]).key_by(lambda t: t[0])
    return {
        "tumbling-fast": operator_of(keyed.window(TumblingEventTimeWindows.of(Time.seconds(1)))
                                     .allowed_lateness(500).aggregate(ListAccumulator())),
        "sliding-general": operator_of(keyed.window(SlidingEventTimeWindows.of(Time.seconds(2), Time.seconds(1)))
                                       .trigger(GenericEventTimeTrigger()).process(KeyStartCount())),
        "sessions": operator_of(keyed.window(EventTimeSessionWindows.with_gap(Time.milliseconds(700)))
                                .trigger(PurgingTrigger.of(EventTimeTrigger.create())).aggregate(ListAccumulator())),
        "count-evicting": operator_of(keyed.count_window(4, 3).apply(lambda k, w, xs: [(k, [x for _, x in xs])])),
    }


@pytest.mark.parametrize("backend", ["hashmap", "rocksdb"])
@pytest.mark.parametrize("kind", ["tumbling-fast", "sliding-general", "sessions", "count-evicting"])
def test_a_snapshot_mid_window_restores_at_another_parallelism_with_the_same_results(
        tmp_path: Path, kind: str, backend: str) -> None:
    operator = window_operators()[kind]
    rng = random.Random(7)
    # out of order by up to 600 ms, with watermarks 300 ms behind: some records come late
    records = [((f"k{rng.randrange(12)}", i), i * 50 + rng.randrange(600)) for i in range(400)]
    batches = [records[i:i + 25] for i in range(0, len(records), 25)]
    key = lambda value: value[0]  # noqa: E731
    local = str(tmp_path / "rocksdb")

    def run(harnesses: list[Harness], parts: list[list[tuple[Any, int]]]) -> None:
        for batch in parts:
            for harness in harnesses:
                harness.feed(batch, key)
                # watermarks behind the records (so that some windows fire mid-way, and some records are late)
                harness.operator.process_watermark(batch[-1][1] - 300)

    reference = Harness(operator, backend=backend, local_dir=local)
    run([reference], batches[:8])
    taken = reference.operator.snapshot_state(1)
    before = len(reference.records)
    # the snapshot is materialized later (as on the task's snapshot thread): changes made meanwhile, to
    # accumulators changed in place too, must not leak into it
    run([reference], batches[8:])
    reference.operator.end_input()
    after = reference.records[before:]
    snapshot = pickle.loads(pickle.dumps(
        {k: v.materialize(None) if isinstance(v, KeyedStateSnapshot) else v for k, v in taken.items()}))
    restored = [Harness(operator, i, 2, [snapshot], backend, local) for i in range(2)]
    run(restored, batches[8:])
    for harness in restored:
        harness.operator.end_input()
    assert sorted(map(repr, (r for h in restored for r in h.records))) == sorted(map(repr, after))
    assert after  # something fired after the snapshot
    for harness in [reference, *restored]:
        harness.operator.dispose()


def test_restored_timers_fire_and_expired_state_is_gone() -> None:
    operator = window_operators()["tumbling-fast"]  # 1 s windows, 500 ms allowed lateness
    first = Harness(operator)
    first.operator.process_batch([("a", 1), ("b", 2)], [100, 1200])
    first.operator.process_batch([("a", 3), ("b", 4)], [300, 1300])
    second = Harness(operator, restored=[first.snapshot()])
    second.operator.process_watermark(999)
    assert second.records == [([1, 3], 999)]
    second.operator.process_batch([("a", 5)], [400])  # within the lateness: [0, 1000) fires again
    assert second.records[-1] == ([1, 3, 5], 999)
    second.operator.process_watermark(1499)  # [0, 1000) expires
    second.operator.process_batch([("a", 6)], [450])  # late now: dropped
    second.operator.end_input()
    assert second.records[1:] == [([1, 3, 5], 999), ([2, 4], 1999)]
    assert second.operator.num_late_records_dropped == 1
    assert not second.operator.raw and len(second.operator.event_timers) == 0  # nothing left behind
