"""Jobs run in this process (PyFlink's local execution): results, print format, state, timers, types,
failures, cancellation and back-pressure."""

from __future__ import annotations

import collections
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from ha_flink.common import Encoder, JobStatus, Row, Types, WatermarkStrategy
from ha_flink.datastream import (
    FlatMapFunction, KeyedProcessFunction, MapFunction, RuntimeContext, RuntimeExecutionMode, SourceFunction,
    StreamExecutionEnvironment,
)
from ha_flink.datastream.connectors.file_system import BucketAssigner, FileSink, FileSource, StreamFormat
from ha_flink.datastream.connectors.number_seq import NumberSequenceSource, RateLimitedNumberSequenceSource
from ha_flink.datastream.state import (
    ListStateDescriptor, MapStateDescriptor, ReducingStateDescriptor, StateTtlConfig, ValueStateDescriptor,
)
from ha_flink.runtime.minicluster import JobCancelledError, JobExecutionError
from ha_flink.testing.processes import wait_for
from ha_flink.testing.sinks import CollectSink, read_collected

REPO = Path(__file__).resolve().parents[2]


def env_with(parallelism: int = 2) -> StreamExecutionEnvironment:
    return StreamExecutionEnvironment.get_execution_environment().set_parallelism(parallelism)


def test_keyed_word_count_at_parallelism_two_is_exact(tmp_path: Path) -> None:
    words = [f"w{i % 37}" for i in range(10_000)]
    env = env_with(2)
    (env.from_collection(words).map(lambda w: (w, 1))
        .key_by(lambda t: t[0]).reduce(lambda a, b: (a[0], a[1] + b[1]))
        .add_sink(CollectSink(tmp_path)))
    result = env.execute("word count")
    final: dict[str, int] = {}
    for word, count in read_collected(tmp_path):
        final[word] = max(final.get(word, 0), count)
    assert final == dict(collections.Counter(words))
    assert len(read_collected(tmp_path)) == 10_000  # streaming reduce emits every update
    assert result.get_job_id() and result.get_net_runtime() >= 0


def test_batch_mode_reduce_emits_only_final_values(tmp_path: Path) -> None:
    env = env_with(2).set_runtime_mode(RuntimeExecutionMode.BATCH)
    (env.from_source(NumberSequenceSource(1, 1000), WatermarkStrategy.no_watermarks(), "numbers")
        .map(lambda i: (i % 3, i)).key_by(lambda t: t[0]).reduce(lambda a, b: (a[0], a[1] + b[1]))
        .add_sink(CollectSink(tmp_path)))
    env.execute()
    assert sorted(read_collected(tmp_path)) == sorted(
        (k, sum(i for i in range(1, 1001) if i % 3 == k)) for k in range(3))


def test_print_prefixes_the_subtask_only_in_parallel(capsys: pytest.CaptureFixture[str]) -> None:
    env = env_with(1)
    env.from_collection(["a", "b"]).print()
    env.execute()
    assert capsys.readouterr().out == "a\nb\n"
    env = env_with(2)
    env.from_collection(["x", "y", "z", "w"]).rebalance().map(str.upper).print()
    env.execute()
    lines = capsys.readouterr().out.splitlines()
    assert sorted(line.split("> ", 1)[1] for line in lines) == ["W", "X", "Y", "Z"]
    assert {line.split("> ", 1)[0] for line in lines} <= {"1", "2"} and len(lines) == 4


def test_generators_from_flat_map_and_process_are_emitted(tmp_path: Path) -> None:
    class Split(FlatMapFunction):
        def flat_map(self, value: str) -> Any:
            yield from value.split(",")

    class Twice(KeyedProcessFunction):
        def process_element(self, value: str, ctx: KeyedProcessFunction.Context) -> Any:
            yield value
            yield value + "!"

    env = env_with(1)
    env.from_collection(["a,b", "c"]).flat_map(Split()).key_by(lambda v: v).process(Twice()) \
        .add_sink(CollectSink(tmp_path))
    env.execute()
    assert sorted(read_collected(tmp_path)) == ["a", "a!", "b", "b!", "c", "c!"]


def test_a_non_iterable_flat_map_result_fails_clearly() -> None:
    env = env_with(1)
    env.from_collection([1]).flat_map(lambda x: x * 2).print()
    with pytest.raises(JobExecutionError, match=r"Flat Map \(flat_map\) returned 2 \(int\); it must return or "
                                                r"yield an iterable"):
        env.execute()


def test_row_named_types_give_rows_with_named_fields(tmp_path: Path) -> None:
    env = env_with(1)
    rows = env.from_collection([("alice", 3), ("bob", 5)],
                               type_info=Types.ROW_NAMED(["name", "score"], [Types.STRING(), Types.INT()]))
    rows.map(lambda r: (r.name.upper(), r["score"] * 2, r[1]),
             output_type=Types.ROW_NAMED(["who", "double", "single"], [Types.STRING(), Types.INT(), Types.INT()])) \
        .add_sink(CollectSink(tmp_path))
    env.execute()
    out = sorted(read_collected(tmp_path), key=lambda r: r.who)
    assert [(r.who, r.double, r.single) for r in out] == [("ALICE", 6, 3), ("BOB", 10, 5)]
    assert all(isinstance(r, Row) for r in out)


def test_sum_min_max_by_position_and_name(tmp_path: Path) -> None:
    data = [("a", 1), ("a", 5), ("b", 2), ("a", 3)]
    env = env_with(2)
    source = env.from_collection(data)
    source.key_by(lambda t: t[0]).sum(1).add_sink(CollectSink(tmp_path / "sum"))
    source.key_by(lambda t: t[0]).min(1).add_sink(CollectSink(tmp_path / "min"))
    named = env.from_collection(data, type_info=Types.ROW_NAMED(["k", "v"], [Types.STRING(), Types.INT()]))
    named.key_by(lambda r: r.k).max("v").add_sink(CollectSink(tmp_path / "max"))
    env.from_collection([4, 1, 7]).key_by(lambda x: 0).sum().add_sink(CollectSink(tmp_path / "plain"))
    env.execute()
    last = lambda rows: {r[0]: r[1] for r in rows}  # noqa: E731 - records of one key arrive in order
    assert last(read_collected(tmp_path / "sum")) == {"a": 9, "b": 2}
    assert last(read_collected(tmp_path / "min")) == {"a": 1, "b": 2}
    assert last(read_collected(tmp_path / "max")) == {"a": 5, "b": 2}
    assert sorted(read_collected(tmp_path / "plain")) == [4, 5, 12]


class StatefulCounter(KeyedProcessFunction):
    """Uses every kind of keyed state and both kinds of timers."""

    def open(self, runtime_context: RuntimeContext) -> None:
        self.count = runtime_context.get_state(ValueStateDescriptor("count", Types.INT()))
        self.seen = runtime_context.get_list_state(ListStateDescriptor("seen", Types.INT()))
        self.by_parity = runtime_context.get_map_state(MapStateDescriptor("parity", Types.STRING(), Types.INT()))
        self.total = runtime_context.get_reducing_state(ReducingStateDescriptor("total", lambda a, b: a + b))

    def process_element(self, value: tuple[str, int], ctx: KeyedProcessFunction.Context) -> Any:
        self.count.update((self.count.value() or 0) + 1)
        self.seen.add(value[1])
        parity = "even" if value[1] % 2 == 0 else "odd"
        self.by_parity.put(parity, (self.by_parity.get(parity) or 0) + 1)
        self.total.add(value[1])
        ctx.timer_service().register_event_time_timer(1000)  # fires at the end of the bounded input
        return []

    def on_timer(self, timestamp: int, ctx: KeyedProcessFunction.OnTimerContext) -> Any:
        yield (ctx.get_current_key(), self.count.value(), sorted(self.seen.get()),
               dict(self.by_parity.items()), self.total.get())


def test_keyed_state_of_every_kind_is_per_key(tmp_path: Path) -> None:
    env = env_with(2)
    data = [("a", 1), ("b", 2), ("a", 4), ("a", 7), ("b", 9)]
    env.from_collection(data).key_by(lambda t: t[0]).process(StatefulCounter()).add_sink(CollectSink(tmp_path))
    env.execute()
    assert sorted(read_collected(tmp_path)) == [
        ("a", 3, [1, 4, 7], {"odd": 2, "even": 1}, 12),
        ("b", 2, [2, 9], {"even": 1, "odd": 1}, 11),
    ]


def test_processing_time_timers_fire(tmp_path: Path) -> None:
    class Delayed(KeyedProcessFunction):
        def process_element(self, value: str, ctx: KeyedProcessFunction.Context) -> Any:
            now = ctx.timer_service().current_processing_time()
            ctx.timer_service().register_processing_time_timer(now + 50)
            return []

        def on_timer(self, timestamp: int, ctx: KeyedProcessFunction.OnTimerContext) -> Any:
            return [f"timer {ctx.get_current_key()}"]

    env = env_with(1)
    # An unbounded source keeps the job alive while the timers come due.
    env.from_source(RateLimitedNumberSequenceSource(0, None, 100), WatermarkStrategy.no_watermarks(), "ticks") \
        .map(lambda i: "k").key_by(lambda k: k).process(Delayed()).add_sink(CollectSink(tmp_path))
    client = env.execute_async()
    try:
        wait_for(lambda: read_collected(tmp_path), 10, what="a processing-time timer to fire")
    finally:
        client.cancel().result(10)
    with pytest.raises(JobCancelledError, match="was cancelled"):
        client.get_job_execution_result().result(10)
    assert client.get_job_status().result() == JobStatus.CANCELED
    assert read_collected(tmp_path)[0] == "timer k"


def test_state_ttl_expires_entries() -> None:
    from ha_flink.runtime.state.heap import HeapKeyedStateBackend

    now = [1000.0]
    backend = HeapKeyedStateBackend(clock=lambda: now[0])
    descriptor = ValueStateDescriptor("v", Types.INT())
    descriptor.enable_time_to_live(StateTtlConfig.new_builder(2000).build())  # 2 s
    state = backend.get_state(descriptor)
    backend.current_key = "k"
    state.update(1)
    now[0] += 1.5
    assert state.value() == 1
    now[0] += 1.0
    assert state.value() is None


def test_a_failing_function_fails_the_job_with_its_traceback() -> None:
    class Broken(MapFunction):
        def map(self, value: int) -> int:
            if value == 3:
                raise ValueError(f"cannot map {value}")
            return value

    env = env_with(2)
    env.from_collection(list(range(10))).map(Broken()).print()
    with pytest.raises(JobExecutionError) as error:
        env.execute()
    assert error.value.task.startswith("Map -> Sink: Print to Std. Out (")
    assert "ValueError: cannot map 3" in str(error.value)
    assert "in map" in error.value.task_traceback


def test_execute_twice_runs_only_what_was_declared_since(tmp_path: Path) -> None:
    env = env_with(1)
    env.from_collection([1, 2]).add_sink(CollectSink(tmp_path / "first"))
    env.execute()
    env.from_collection([3]).add_sink(CollectSink(tmp_path / "second"))
    env.execute()
    assert sorted(read_collected(tmp_path / "first")) == [1, 2]
    assert read_collected(tmp_path / "second") == [3]


def test_unbounded_job_runs_until_cancelled(tmp_path: Path) -> None:
    env = env_with(2)
    env.from_source(RateLimitedNumberSequenceSource(), WatermarkStrategy.no_watermarks(), "numbers") \
        .add_sink(CollectSink(tmp_path))
    client = env.execute_async()
    wait_for(lambda: len(read_collected(tmp_path)) > 5000, 10, what="records to flow")
    assert client.get_job_status().result() == JobStatus.RUNNING
    client.cancel().result(10)
    wait_for(lambda: client.get_job_status().result() == JobStatus.CANCELED, 10, what="cancellation")


def test_a_slow_sink_back_pressures_the_source(tmp_path: Path) -> None:
    consumed = tmp_path / "consumed"

    class Slow:
        def invoke(self, value: int, context: Any) -> None:
            time.sleep(0.001)

    env = env_with(1)
    env.from_source(RateLimitedNumberSequenceSource(), WatermarkStrategy.no_watermarks(), "fast") \
        .rebalance().map(lambda x: x).disable_chaining().add_sink(Slow())
    client = env.execute_async()
    try:
        tasks = wait_for(lambda: len(t := client.mini_cluster.tasks(client.get_job_id())) == 3 and t, 10,
                         what="the three tasks to be deployed")
        source_task = next(t for t in tasks if t.vertex.is_source)
        sink_task = next(t for t in tasks if not t.vertex.is_source and "Sink" in t.vertex.name)
        wait_for(lambda: sink_task.records_in > 1000, 10, what="the sink to receive records")
        samples = []
        deadline = time.monotonic() + 1.5
        while time.monotonic() < deadline:
            samples.append(source_task.records_in - sink_task.records_in)
            time.sleep(0.1)  # sampling interval of a measurement, not a wait for a condition
        # What the source is ahead by stays bounded by the buffers between the tasks (two gates of 32
        # batches of 1024), although it could produce millions of records in that time.
        assert max(samples) <= 2 * 32 * 1024 + 2 * 1024
    finally:
        client.cancel().result(10)
    del consumed


def test_source_function_and_file_source_and_file_sink(tmp_path: Path) -> None:
    class Countdown(SourceFunction):
        def run(self, ctx: Any) -> None:
            for i in range(3, 0, -1):
                ctx.collect(f"line {i}")

    env = env_with(2)
    sink = FileSink.for_row_format(str(tmp_path / "out"), Encoder.simple_string_encoder()) \
        .with_bucket_assigner(BucketAssigner.base_path_bucket_assigner()).build()
    env.add_source(Countdown()).sink_to(sink)
    env.execute()
    parts = sorted((tmp_path / "out").iterdir())
    assert parts and all(p.name.startswith("part-") for p in parts)  # committed, no in-progress files left
    env = env_with(2)
    lines = env.from_source(FileSource.for_record_stream_format(StreamFormat.text_line_format(),
                                                                str(tmp_path / "out")).build(),
                            WatermarkStrategy.no_watermarks(), "files")
    lines.add_sink(CollectSink(tmp_path / "read"))
    env.execute()
    assert sorted(read_collected(tmp_path / "read")) == ["line 1", "line 2", "line 3"]


def test_python_job_script_runs_locally() -> None:
    result = subprocess.run([sys.executable, str(REPO / "examples" / "word_count.py")], capture_output=True,
                            text=True, timeout=120, cwd=REPO)
    assert result.returncode == 0, result.stderr
    counts = {}
    for line in result.stdout.splitlines():
        word, count = line.split("> ", 1)[-1].strip("()").split(",")  # a declared Tuple prints as Java's: (be,2)
        counts[word] = max(counts.get(word, 0), int(count))
    import runpy

    text = runpy.run_path(str(REPO / "examples" / "word_count.py"))["TEXT"]  # not __main__: defines only
    expected = collections.Counter(w.strip(",:'").lower() for line in text for w in line.split())
    assert counts == dict(expected)
