"""Event time in local jobs: timestamps, watermarks (minimum over inputs, idle inputs left out), event-time
timers, side outputs of process functions, and BATCH runtime mode.

Expected results follow Flink's documented semantics: a bounded-out-of-orderness watermark is
max timestamp - bound - 1; an event-time timer fires once the watermark reaches its time; what on_timer
emits carries the timer's time; the end of a bounded input is the end of event time."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest

from ha_flink.common import Duration, WatermarkStrategy
from ha_flink.common.watermark_strategy import TimestampAssigner
from ha_flink.datastream import (
    KeyedProcessFunction, OutputTag, ProcessFunction, RuntimeExecutionMode, SourceFunction,
    StreamExecutionEnvironment,
)
from ha_flink.datastream.connectors.number_seq import RateLimitedNumberSequenceSource
from ha_flink.datastream.state import ValueStateDescriptor
from ha_flink.runtime.streamrecord import MAX_WATERMARK, MIN_WATERMARK
from ha_flink.runtime.task.task import _InputWatermarks
from ha_flink.testing.processes import wait_for
from ha_flink.testing.sinks import CollectSink, read_collected


class SecondField(TimestampAssigner):
    def extract_timestamp(self, value: Any, record_timestamp: int) -> int:
        return value[1]


def bounded(ms: int) -> WatermarkStrategy:
    return WatermarkStrategy.for_bounded_out_of_orderness(Duration.of_millis(ms)).with_timestamp_assigner(SecondField())


class PerSecondCount(KeyedProcessFunction):
    """Counts each key's records per second of event time with an event-time timer at the end of each
    second; records at or behind the watermark go to the side output `late`."""

    late = OutputTag("late")

    def open(self, runtime_context: Any) -> None:
        self.counts = runtime_context.get_state(ValueStateDescriptor("counts", None))

    def process_element(self, value: Any, ctx: KeyedProcessFunction.Context) -> Any:
        if ctx.timestamp() <= ctx.timer_service().current_watermark():
            yield self.late, value
            return
        end = value[1] // 1000 * 1000 + 999
        counts = dict(self.counts.value() or {})
        counts[end] = counts.get(end, 0) + 1
        self.counts.update(counts)
        ctx.timer_service().register_event_time_timer(end)

    def on_timer(self, timestamp: int, ctx: KeyedProcessFunction.OnTimerContext) -> Any:
        counts = dict(self.counts.value())
        yield ctx.get_current_key(), timestamp, counts.pop(timestamp), ctx.timestamp()
        self.counts.update(counts)


def shuffle_within(records: list[tuple[str, int]], bound_ms: int, seed: int) -> list[tuple[str, int]]:
    """A random arrival order in which no record comes after one more than `bound_ms` newer than it."""
    rng = random.Random(seed)
    return sorted(records, key=lambda r: r[1] + rng.uniform(0, bound_ms))


def run_per_second_count(tmp_path: Path, records: list[tuple[str, int]], bound_ms: int,
                         parallelism: int = 2) -> tuple[list[Any], list[Any]]:
    env = StreamExecutionEnvironment.get_execution_environment().set_parallelism(parallelism)
    stream = env.from_collection(records).assign_timestamps_and_watermarks(bounded(bound_ms))
    counted = stream.key_by(lambda r: r[0]).process(PerSecondCount())
    counted.add_sink(CollectSink(tmp_path / "out"))
    counted.get_side_output(PerSecondCount.late).add_sink(CollectSink(tmp_path / "late"))
    env.execute()
    return sorted(read_collected(tmp_path / "out")), read_collected(tmp_path / "late")


def test_event_time_results_do_not_depend_on_arrival_order_within_the_bound(tmp_path: Path) -> None:
    records = [(f"k{i % 3}", i * 7) for i in range(2000)]  # 0 .. 13,993 ms
    expected = sorted((f"k{k}", s * 1000 + 999, sum(1 for i in range(2000) if i % 3 == k and i * 7 // 1000 == s),
                       s * 1000 + 999) for k in range(3) for s in range(14))
    for seed in (1, 2):
        out, late = run_per_second_count(tmp_path / str(seed), shuffle_within(records, 150, seed), 150)
        assert late == []
        assert out == expected  # (key, window end, count, the timer's timestamp on the output)


def test_records_behind_the_watermark_go_to_the_side_output(tmp_path: Path) -> None:
    """Records at 0, 10, ... 3990 ms arrive at 1000 records/s; after the 400th come two from 500 and
    900 ms: by then the watermark (every batch, a few ms apart) passed 3000 ms, far beyond them."""
    timestamps = list(range(0, 4000, 10)) + [500, 900, 4000]
    env = StreamExecutionEnvironment.get_execution_environment().set_parallelism(1)
    stream = (env.from_source(RateLimitedNumberSequenceSource(0, len(timestamps) - 1, 1000),
                              WatermarkStrategy.no_watermarks(), "paced")
              .map(lambda i, ts=timestamps: ("a", ts[i]))
              .assign_timestamps_and_watermarks(bounded(100)))
    counted = stream.key_by(lambda r: r[0]).process(PerSecondCount())
    counted.add_sink(CollectSink(tmp_path / "out"))
    counted.get_side_output(PerSecondCount.late).add_sink(CollectSink(tmp_path / "late"))
    env.execute()
    assert sorted(read_collected(tmp_path / "late")) == [("a", 500), ("a", 900)]
    assert sorted(read_collected(tmp_path / "out")) == [
        ("a", 999, 100, 999), ("a", 1999, 100, 1999), ("a", 2999, 100, 2999), ("a", 3999, 100, 3999),
        ("a", 4999, 1, 4999)]


class _Silent(SourceFunction):
    def __init__(self) -> None:
        self.running = True

    def run(self, ctx: Any) -> None:
        import time

        while self.running:
            time.sleep(0.02)

    def cancel(self) -> None:
        self.running = False


class FirstTimer(KeyedProcessFunction):
    """Sets one event-time timer 100 ms after the key's first record; emits when it fires."""

    def open(self, runtime_context: Any) -> None:
        self.armed = runtime_context.get_state(ValueStateDescriptor("armed", None))

    def process_element(self, value: Any, ctx: KeyedProcessFunction.Context) -> Any:
        if not self.armed.value():
            self.armed.update(True)
            ctx.timer_service().register_event_time_timer(ctx.timestamp() + 100)

    def on_timer(self, timestamp: int, ctx: KeyedProcessFunction.OnTimerContext) -> Any:
        yield ("fired", timestamp, ctx.timer_service().current_watermark() >= timestamp)


def test_an_idle_input_does_not_hold_back_event_time(tmp_path: Path) -> None:
    """A union with a source that never emits: with `with_idleness`, the silent input is left out of the
    minimum and the timer fires while the job runs (without it, event time would stand still)."""
    env = StreamExecutionEnvironment.get_execution_environment().set_parallelism(1)

    class Stamp(TimestampAssigner):
        def extract_timestamp(self, value: Any, record_timestamp: int) -> int:
            return value * 10

    busy = env.from_source(RateLimitedNumberSequenceSource(0, None, 2000),
                           WatermarkStrategy.for_monotonous_timestamps().with_timestamp_assigner(Stamp()), "busy")
    silent = env.add_source(_Silent(), "silent").assign_timestamps_and_watermarks(
        WatermarkStrategy.for_monotonous_timestamps().with_timestamp_assigner(Stamp())
        .with_idleness(Duration.of_millis(200)))
    busy.union(silent).key_by(lambda v: 0).process(FirstTimer()).add_sink(CollectSink(tmp_path / "out"))
    client = env.execute_async("idle input")
    try:
        fired = wait_for(lambda: read_collected(tmp_path / "out"), timeout=20, what="the event-time timer")
        assert fired == [("fired", 100, True)]
    finally:
        client.cancel().result(10)


class _Recorder:
    def __init__(self) -> None:
        self.seen: list[Any] = []

    def emit_watermark(self, watermark: int) -> None:
        self.seen.append(watermark)

    def emit_watermark_status(self, idle: bool) -> None:
        self.seen.append("idle" if idle else "active")


def test_watermark_is_the_minimum_over_aligned_inputs() -> None:
    """Flink's StatusWatermarkValve: an idle channel is left out; back from idle it counts again only once
    its watermark caught up with the output; the output never goes back."""
    head = _Recorder()
    inputs = _InputWatermarks(3, head)
    inputs.on_watermark(0, 100)
    inputs.on_watermark(1, 50)
    assert head.seen == [] and inputs.current == MIN_WATERMARK  # channel 2 has said nothing yet
    inputs.on_watermark(2, 70)
    assert head.seen == [50]
    inputs.on_watermark(1, 200)
    assert head.seen == [50, 70]
    inputs.on_status(2, True)  # idle: left out, the minimum is now channel 0's
    assert head.seen == [50, 70, 100]
    inputs.on_watermark(2, 150)  # ignored while idle
    inputs.on_status(2, False)  # active again, but at 70 < 100: not aligned yet
    inputs.on_watermark(0, 300)
    assert head.seen == [50, 70, 100, 200]
    inputs.on_watermark(2, 180)  # still behind the output (200)
    inputs.on_watermark(2, 250)  # caught up: aligned, counts again
    inputs.on_watermark(1, 400)
    assert head.seen == [50, 70, 100, 200, 250]
    inputs.on_watermark(2, 240)  # watermarks never go back
    assert head.seen[-1] == 250


def test_when_every_input_goes_idle_the_largest_watermark_is_flushed() -> None:
    head = _Recorder()
    inputs = _InputWatermarks(2, head)
    inputs.on_watermark(0, 100)
    inputs.on_watermark(1, 5000)
    inputs.on_status(1, True)
    inputs.on_status(0, True)
    assert head.seen == [100, 5000, "idle"]
    inputs.on_status(0, False)
    assert head.seen[-1] == "active"


def test_an_ended_input_is_at_the_end_of_event_time() -> None:
    """A finished input no longer holds event time back: with the other input idle, event time ends."""
    head = _Recorder()
    inputs = _InputWatermarks(2, head)
    inputs.on_status(1, True)
    inputs.on_watermark(0, 100)
    inputs.on_end(0)
    assert head.seen == [100, MAX_WATERMARK]


class Classify(ProcessFunction):
    odd = OutputTag("odd")
    big = OutputTag("big")

    def process_element(self, value: Any, ctx: ProcessFunction.Context) -> Any:
        if value % 2:
            yield self.odd, value
        else:
            yield value
        if value >= 90:
            ctx.output(self.big, (value, ctx.timestamp()))


def test_process_function_side_outputs_by_yield_and_ctx_output(tmp_path: Path) -> None:
    env = StreamExecutionEnvironment.get_execution_environment().set_parallelism(2)

    class Times(TimestampAssigner):
        def extract_timestamp(self, value: Any, record_timestamp: int) -> int:
            return value * 1000

    main = (env.from_collection(list(range(100)))
            .assign_timestamps_and_watermarks(WatermarkStrategy.for_monotonous_timestamps()
                                              .with_timestamp_assigner(Times()))
            .process(Classify()))
    main.add_sink(CollectSink(tmp_path / "even"))
    main.get_side_output(Classify.odd).map(lambda v: -v).add_sink(CollectSink(tmp_path / "odd"))
    main.get_side_output(Classify.big).add_sink(CollectSink(tmp_path / "big"))
    env.execute()
    assert sorted(read_collected(tmp_path / "even")) == list(range(0, 100, 2))
    assert sorted(read_collected(tmp_path / "odd")) == sorted(-v for v in range(1, 100, 2))
    assert sorted(read_collected(tmp_path / "big")) == [(v, v * 1000) for v in range(90, 100)]


class Tagged(ProcessFunction):
    def __init__(self, name: str) -> None:
        self.name = name

    def process_element(self, value: Any, ctx: ProcessFunction.Context) -> Any:
        yield value
        yield OutputTag("side"), (self.name, value)


def test_a_side_output_belongs_to_its_operator_even_when_a_chained_one_uses_the_same_tag(tmp_path: Path) -> None:
    env = StreamExecutionEnvironment.get_execution_environment().set_parallelism(1)
    b = env.from_collection([1, 2]).process(Tagged("A")).process(Tagged("B"))
    b.get_side_output(OutputTag("side")).add_sink(CollectSink(tmp_path / "side"))
    b.add_sink(CollectSink(tmp_path / "main"))
    env.execute()
    assert sorted(read_collected(tmp_path / "side")) == [("B", 1), ("B", 2)]
    assert sorted(read_collected(tmp_path / "main")) == [1, 2]


def test_batch_mode_turns_checkpointing_off() -> None:
    env = StreamExecutionEnvironment.get_execution_environment()
    env.set_runtime_mode(RuntimeExecutionMode.BATCH)
    env.enable_checkpointing(100)
    env.from_collection([1]).print()
    assert env.get_job_graph().checkpoint_interval_ms is None


def test_get_side_output_needs_an_output_tag() -> None:
    env = StreamExecutionEnvironment.get_execution_environment()
    with pytest.raises(TypeError, match="OutputTag"):
        env.from_collection([1]).get_side_output("late")
    with pytest.raises(ValueError, match="non-empty string"):
        OutputTag("")


class ProcessingTimer(KeyedProcessFunction):
    def process_element(self, value: Any, ctx: KeyedProcessFunction.Context) -> Any:
        # An hour ahead: in STREAMING it would never fire in this test; BATCH fires it at the end of input.
        ctx.timer_service().register_processing_time_timer(ctx.timer_service().current_processing_time() + 3_600_000)
        yield ("element", value)

    def on_timer(self, timestamp: int, ctx: KeyedProcessFunction.OnTimerContext) -> Any:
        yield ("timer", ctx.get_current_key())


def test_batch_mode_gives_final_results_and_fires_timers_at_the_end(tmp_path: Path) -> None:
    env = StreamExecutionEnvironment.get_execution_environment().set_parallelism(2)
    env.set_runtime_mode(RuntimeExecutionMode.BATCH)
    data = env.from_collection([("a", 1), ("b", 2), ("a", 3)])
    data.key_by(lambda r: r[0]).reduce(lambda x, y: (x[0], x[1] + y[1])).add_sink(CollectSink(tmp_path / "sum"))
    data.key_by(lambda r: r[0]).process(ProcessingTimer()).add_sink(CollectSink(tmp_path / "timers"))
    env.execute()
    assert sorted(read_collected(tmp_path / "sum")) == [("a", 4), ("b", 2)]  # no intermediate ("a", 1)
    assert sorted(read_collected(tmp_path / "timers")) == sorted(
        [("element", ("a", 1)), ("element", ("b", 2)), ("element", ("a", 3)), ("timer", "a"), ("timer", "b")])


def test_batch_mode_refuses_an_unbounded_source() -> None:
    env = StreamExecutionEnvironment.get_execution_environment()
    env.set_runtime_mode(RuntimeExecutionMode.BATCH)
    env.from_source(RateLimitedNumberSequenceSource(0, None, 10), WatermarkStrategy.no_watermarks(),
                    "endless").print()
    with pytest.raises(ValueError, match=r"UNBOUNDED source \(Source: endless\).*'BATCH'"):
        env.execute()


def test_automatic_mode_runs_bounded_programs_as_batch(tmp_path: Path) -> None:
    env = StreamExecutionEnvironment.get_execution_environment().set_parallelism(1)
    env.set_runtime_mode(RuntimeExecutionMode.AUTOMATIC)
    env.from_collection([1, 2, 3]).key_by(lambda v: 0).reduce(lambda a, b: a + b).add_sink(
        CollectSink(tmp_path / "out"))
    assert env.get_job_graph().runtime_mode == "BATCH"
    env.execute()
    assert read_collected(tmp_path / "out") == [6]
