"""Two-input operators in local jobs: connect with co-map, co-flat-map, (keyed) co-process; the broadcast
state pattern; the interval join. Expected outputs follow Flink's documented semantics."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ha_flink.common import Configuration, Duration, WatermarkStrategy
from ha_flink.common.watermark_strategy import TimestampAssigner
from ha_flink.datastream import (
    BroadcastProcessFunction, CoFlatMapFunction, CoMapFunction, KeyedBroadcastProcessFunction,
    KeyedCoProcessFunction, KeyedProcessFunction, OutputTag, ProcessJoinFunction, StreamExecutionEnvironment,
)
from ha_flink.datastream.connectors.number_seq import RateLimitedNumberSequenceSource
from ha_flink.datastream.state import ListStateDescriptor, MapStateDescriptor, ValueStateDescriptor
from ha_flink.runtime.minicluster import JobExecutionError
from ha_flink.testing.functions import FailOnceAt
from ha_flink.testing.sinks import CollectSink, read_collected


def env_with(parallelism: int = 2, config: Configuration | None = None) -> StreamExecutionEnvironment:
    return StreamExecutionEnvironment.get_execution_environment(config).set_parallelism(parallelism)


class Tag(CoMapFunction):
    def map1(self, value: Any) -> Any:
        return ("number", value)

    def map2(self, value: Any) -> Any:
        return ("word", value)


class Split(CoFlatMapFunction):
    def flat_map1(self, value: Any) -> Any:
        yield from [value] * value

    def flat_map2(self, value: Any) -> Any:
        yield from value


def test_co_map_and_co_flat_map_see_each_input_with_its_own_method(tmp_path: Path) -> None:
    env = env_with(2)
    numbers = env.from_collection([1, 2, 3])
    words = env.from_collection(["ab", "c"])
    numbers.connect(words).map(Tag()).add_sink(CollectSink(tmp_path / "map"))
    numbers.connect(words).flat_map(Split()).add_sink(CollectSink(tmp_path / "flat"))
    env.execute()
    assert sorted(read_collected(tmp_path / "map")) == [("number", 1), ("number", 2), ("number", 3),
                                                         ("word", "ab"), ("word", "c")]
    assert sorted(read_collected(tmp_path / "flat"), key=str) == sorted([1, 2, 2, 3, 3, 3, "a", "b", "c"], key=str)


class MatchOrders(KeyedCoProcessFunction):
    """Orders (input 1) wait for their payment (input 2) and vice versa, per order id; an order without a
    payment by end of event time is reported by its timer."""

    def open(self, runtime_context: Any) -> None:
        self.order = runtime_context.get_state(ValueStateDescriptor("order", None))
        self.payment = runtime_context.get_state(ValueStateDescriptor("payment", None))

    def process_element1(self, value: Any, ctx: KeyedCoProcessFunction.Context) -> Any:
        payment = self.payment.value()
        if payment is None:
            self.order.update(value)
            ctx.timer_service().register_event_time_timer(10_000)
        else:
            yield ("matched", ctx.get_current_key(), value[1], payment[1])

    def process_element2(self, value: Any, ctx: KeyedCoProcessFunction.Context) -> Any:
        order = self.order.value()
        if order is None:
            self.payment.update(value)
        else:
            self.order.clear()
            yield ("matched", ctx.get_current_key(), order[1], value[1])

    def on_timer(self, timestamp: int, ctx: Any) -> Any:
        if self.order.value() is not None:
            yield ("unpaid", ctx.get_current_key(), self.order.value()[1], None)


def test_keyed_co_process_shares_state_and_timers_of_the_key(tmp_path: Path) -> None:
    env = env_with(2)
    orders = env.from_collection([(i, f"order{i}") for i in range(50)])
    payments = env.from_collection([(i, f"pay{i}") for i in range(0, 50, 2)])
    (orders.connect(payments).key_by(lambda o: o[0], lambda p: p[0]).process(MatchOrders())
        .add_sink(CollectSink(tmp_path / "out")))
    env.execute()
    expected = [("matched", i, f"order{i}", f"pay{i}") for i in range(0, 50, 2)] \
        + [("unpaid", i, f"order{i}", None) for i in range(1, 50, 2)]
    assert sorted(read_collected(tmp_path / "out")) == sorted(expected)


def test_keyed_co_process_function_needs_keyed_inputs() -> None:
    env = env_with(1)
    with pytest.raises(TypeError, match="two keyed streams"):
        env.from_collection([1]).connect(env.from_collection([2])).process(MatchOrders())


RULES = MapStateDescriptor("rules", None, None)


class ApplyRules(KeyedBroadcastProcessFunction):
    """Keeps each key's values until the end (a timer at the end of event time), then applies the
    broadcast multiplier: by then every broadcast element has reached every subtask."""

    def open(self, runtime_context: Any) -> None:
        self.values = runtime_context.get_list_state(ListStateDescriptor("values", None))

    def process_element(self, value: Any, ctx: Any) -> Any:
        self.values.add(value)
        ctx.timer_service().register_event_time_timer(0)

    def process_broadcast_element(self, value: Any, ctx: Any) -> Any:
        ctx.get_broadcast_state(RULES).put(value[0], value[1])

    def on_timer(self, timestamp: int, ctx: Any) -> Any:
        factor = ctx.get_broadcast_state(RULES).get("factor")
        for value in self.values.get():
            yield (ctx.get_current_key(), value * factor)


def test_broadcast_state_reaches_every_subtask_of_a_keyed_stream(tmp_path: Path) -> None:
    env = env_with(3)
    rules = env.from_collection([("factor", 2), ("factor", 10)]).broadcast(RULES)
    (env.from_collection(list(range(30))).key_by(lambda v: v % 5).connect(rules).process(ApplyRules())
        .add_sink(CollectSink(tmp_path / "out")))
    env.execute()
    assert sorted(read_collected(tmp_path / "out")) == sorted((v % 5, v * 10) for v in range(30))


class WritesOnTheWrongSide(BroadcastProcessFunction):
    def process_element(self, value: Any, ctx: Any) -> Any:
        ctx.get_broadcast_state(RULES).put("factor", value)

    def process_broadcast_element(self, value: Any, ctx: Any) -> Any:
        pass


def test_broadcast_state_is_read_only_on_the_non_broadcast_side(tmp_path: Path) -> None:
    env = env_with(1)
    rules = env.from_collection([("factor", 2)]).broadcast(RULES)
    env.from_collection([1]).connect(rules).process(WritesOnTheWrongSide()).add_sink(CollectSink(tmp_path))
    with pytest.raises(JobExecutionError, match="broadcast state 'rules' is read-only in process_element"):
        env.execute()


class CountWithRule(KeyedBroadcastProcessFunction):
    """Counts records per key; each output carries the broadcast state's 'mode' (set once at start)."""

    def open(self, runtime_context: Any) -> None:
        self.count = runtime_context.get_state(ValueStateDescriptor("count", None))

    def process_element(self, value: Any, ctx: Any) -> Any:
        mode = ctx.get_broadcast_state(RULES).get("mode")
        if mode is None:
            return
        count = (self.count.value() or 0) + 1
        self.count.update(count)
        yield (ctx.get_current_key(), count, mode, value)

    def process_broadcast_element(self, value: Any, ctx: Any) -> Any:
        ctx.get_broadcast_state(RULES).put("mode", value)


def test_broadcast_and_keyed_state_come_back_after_a_failure(tmp_path: Path) -> None:
    """The rule is broadcast once, before the numbers start; after a failure past a checkpoint the job
    restarts from it: the rule must come back from the broadcast state (it is not sent again), and every
    key's count must go on exactly."""
    config = Configuration()
    config.set_string("restart-strategy.type", "fixed-delay")
    config.set_string("restart-strategy.fixed-delay.delay", "10 ms")
    env = env_with(2, config)
    env.enable_checkpointing(50)
    rule = env.from_collection(["strict"]).broadcast(RULES)
    n = 3000
    numbers = env.from_source(RateLimitedNumberSequenceSource(1, n, records_per_second=3000),
                              WatermarkStrategy.no_watermarks(), "numbers").map(FailOnceAt(n * 2 // 3))
    numbers.key_by(lambda v: v % 4).connect(rule).process(CountWithRule()).add_sink(CollectSink(tmp_path / "out"))
    client = env.execute_async()
    client.get_job_execution_result().result(60)
    assert client.mini_cluster.restored_checkpoint(client.get_job_id()) is not None
    out = read_collected(tmp_path / "out")
    assert {mode for _, _, mode, _ in out} == {"strict"}
    # Without the broadcast state after the restart, nothing past the failure would be counted.
    assert max(value for *_, value in out) == n
    for key in range(4):
        counts_of: dict[int, set[int]] = {}
        for k, count, _, value in out:
            if k == key:
                counts_of.setdefault(value, set()).add(count)
        # A value replayed after the restore gets the same count again (the keyed state came back with
        # the checkpoint); the counts are 1..m over the m distinct values counted (records that came
        # before the rule are not counted).
        assert all(len(counts) == 1 for counts in counts_of.values())
        assert sorted(c for counts in counts_of.values() for c in counts) == list(range(1, len(counts_of) + 1))


class Millis(TimestampAssigner):
    def extract_timestamp(self, value: Any, record_timestamp: int) -> int:
        return value[1]


class Pair(ProcessJoinFunction):
    def process_element(self, left: Any, right: Any, ctx: ProcessJoinFunction.Context) -> Any:
        yield (left[0], left[1], right[1], ctx.get_timestamp())


def interval_join(tmp_path: Path, left: list[Any], right: list[Any], lower: int, upper: int,
                  exclusive: bool = False) -> list[Any]:
    env = env_with(2)
    strategy = WatermarkStrategy.for_monotonous_timestamps().with_timestamp_assigner(Millis())
    a = env.from_collection(left).assign_timestamps_and_watermarks(strategy).key_by(lambda r: r[0])
    b = env.from_collection(right).assign_timestamps_and_watermarks(strategy).key_by(lambda r: r[0])
    joined = a.interval_join(b).between(Duration.of_millis(lower), Duration.of_millis(upper))
    if exclusive:
        joined = joined.lower_bound_exclusive().upper_bound_exclusive()
    joined.process(Pair()).add_sink(CollectSink(tmp_path / "out"))
    env.execute()
    return sorted(read_collected(tmp_path / "out"))


def test_interval_join_pairs_records_within_the_bounds(tmp_path: Path) -> None:
    # Flink's docs: orange a joins green b when a.ts + lower <= b.ts <= a.ts + upper, same key; the pair
    # carries the larger of the two timestamps.
    left = [("k", 0), ("k", 2), ("k", 3), ("k", 4), ("k", 5), ("k", 7), ("other", 3)]
    right = [("k", 0), ("k", 1), ("k", 6), ("k", 7)]
    expected = sorted(("k", a, b, max(a, b)) for _, a in left[:6] for _, b in right if a - 2 <= b <= a + 1)
    assert interval_join(tmp_path / "inclusive", left, right, -2, 1) == expected
    expected_exclusive = sorted(("k", a, b, max(a, b)) for _, a in left[:6] for _, b in right if a - 2 < b < a + 1)
    assert interval_join(tmp_path / "exclusive", left, right, -2, 1, exclusive=True) == expected_exclusive


def test_interval_join_bounds_are_checked() -> None:
    env = env_with(1)
    a = env.from_collection([("k", 1)]).key_by(lambda r: r[0])
    with pytest.raises(ValueError, match="lower_bound \\(5 ms\\) must be <= upper_bound \\(1 ms\\)"):
        a.interval_join(a).between(Duration.of_millis(5), Duration.of_millis(1))
    with pytest.raises(TypeError, match="needs a KeyedStream"):
        a.interval_join(env.from_collection([1]))


class Echo(KeyedProcessFunction):
    def process_element(self, value: Any, ctx: Any) -> Any:
        yield value


def test_interval_join_late_records_go_to_their_side_output(tmp_path: Path) -> None:
    """Right records behind the watermark (from both inputs' minimum) cannot join any more: they go to
    the right side's late output."""
    env = env_with(1)
    strategy = WatermarkStrategy.for_monotonous_timestamps().with_timestamp_assigner(Millis())
    stamps = list(range(0, 2000, 10))
    late_tag = OutputTag("late-right")
    left = (env.from_source(RateLimitedNumberSequenceSource(0, len(stamps) - 1, 1000),
                            WatermarkStrategy.no_watermarks(), "left")
            .map(lambda i, s=stamps: ("k", s[i])).assign_timestamps_and_watermarks(strategy).key_by(lambda r: r[0]))
    right_stamps = list(range(0, 2000, 10)) + [5]  # the last one comes long after the watermark passed 5
    right = (env.from_source(RateLimitedNumberSequenceSource(0, len(right_stamps) - 1, 1000),
                             WatermarkStrategy.no_watermarks(), "right")
             .map(lambda i, s=right_stamps: ("k", s[i])).assign_timestamps_and_watermarks(strategy)
             .key_by(lambda r: r[0]))
    joined = (left.interval_join(right).between(Duration.of_millis(0), Duration.of_millis(0))
              .side_output_right_late_data(late_tag).process(Pair()))
    joined.add_sink(CollectSink(tmp_path / "out"))
    joined.get_side_output(late_tag).add_sink(CollectSink(tmp_path / "late"))
    env.execute()
    assert sorted(read_collected(tmp_path / "out")) == [("k", t, t, t) for t in stamps]
    assert read_collected(tmp_path / "late") == [("k", 5)]


class CountPerKey(CoMapFunction):
    def open(self, runtime_context: Any) -> None:
        self.seen = runtime_context.get_state(ValueStateDescriptor("seen", None))

    def _count(self, value: Any) -> Any:
        seen = (self.seen.value() or 0) + 1
        self.seen.update(seen)
        return (value, seen)

    def map1(self, value: Any) -> Any:
        return self._count(value)

    def map2(self, value: Any) -> Any:
        return self._count(value)


def test_keyed_co_map_and_keyed_map_see_the_state_of_the_records_key(tmp_path: Path) -> None:
    env = env_with(1)
    a = env.from_collection(["x", "y"]).key_by(lambda v: v)
    b = env.from_collection(["x", "z"]).key_by(lambda v: v)
    a.connect(b).map(CountPerKey()).add_sink(CollectSink(tmp_path / "co"))

    class Count(CountPerKey):
        def map(self, value: Any) -> Any:
            return self._count(value)

    env.from_collection(["x", "y", "x"]).key_by(lambda v: v).map(Count()).add_sink(CollectSink(tmp_path / "map"))
    env.execute()
    assert sorted(read_collected(tmp_path / "co")) == [("x", 1), ("x", 2), ("y", 1), ("z", 1)]
    assert sorted(read_collected(tmp_path / "map")) == [("x", 1), ("x", 2), ("y", 1)]


def test_a_stream_unioned_with_itself_gets_each_record_twice_from_two_edges() -> None:
    env = env_with(2)
    rebalanced = env.from_collection([1, 2, 3]).rebalance()
    rebalanced.union(rebalanced).map(lambda v: v).print()
    graph = env.get_job_graph()
    consumer = next(v for v in graph.vertices.values() if v.name.startswith("Map"))
    producer = graph.vertices[consumer.inputs[0].source]
    # Two edges with equal fields are still two edges: the cluster reads a partition per edge by position.
    assert [producer.outputs.index(edge) for edge in consumer.inputs] == [0, 1]
