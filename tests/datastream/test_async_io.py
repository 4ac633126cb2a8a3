"""Async I/O (PyFlink's AsyncDataStream with an AsyncFunction), run in the local mini cluster: ordered and
unordered output, watermarks never overtaken, the capacity bound, timeouts, retry strategies and their
predicates, failures that name the input, and exactly-once output across a failure with checkpointing
(the inputs in flight at a checkpoint are invoked again after the restore); the operator's snapshot and
restore on its own; PyFlink's example `asyncio/remote_model_inference.py` (its DataStream part)."""

from __future__ import annotations

import asyncio
import collections
import functools
import json
import random
from pathlib import Path
from typing import Any, List

import pytest

from ha_flink.common import Configuration, Duration, Encoder, Row, Time, Types, WatermarkStrategy
from ha_flink.datastream import (
    AsyncDataStream, AsyncFunction, AsyncRetryStrategy, CheckpointingMode, ProcessFunction, RuntimeContext,
    StreamExecutionEnvironment, async_retry_predicates,
)
from ha_flink.datastream.async_retry_strategies import (
    ExponentialBackoffDelayRetryStrategy, FixedDelayRetryStrategy, NoRetryStrategy,
)
from ha_flink.datastream.connectors import (
    BucketAssigner, DataGeneratorSource, FileSink, RateLimiterStrategy,
)
from ha_flink.datastream.connectors.base import CollectionSource
from ha_flink.datastream.functions import AsyncFunctionDescriptor
from ha_flink.runtime.minicluster import JobExecutionError
from ha_flink.runtime.operators.async_wait import AsyncWaitOperator
from ha_flink.runtime.operators.base import OperatorContext, ProcessingTimeService, TaskInfo
from ha_flink.testing.functions import FailOnceAt
from ha_flink.testing.processes import wait_for


def env_with(parallelism: int, config: Configuration | None = None) -> StreamExecutionEnvironment:
    return StreamExecutionEnvironment.get_execution_environment(config).set_parallelism(parallelism)


def restarting_env(parallelism: int, checkpoint_ms: int) -> StreamExecutionEnvironment:
    config = Configuration()
    config.set_string("restart-strategy.type", "fixed-delay")
    config.set_string("restart-strategy.fixed-delay.delay", "10 ms")
    env = env_with(parallelism, config)
    env.enable_checkpointing(checkpoint_ms)
    return env


class Doubling(AsyncFunction):
    """Doubles each value after a random short wait; emits (value * 2, the most invocations it saw in
    flight at once), so a test sees the concurrency without sharing memory with the task."""

    def __init__(self, max_wait_s: float = 0.005, seed: int = 7) -> None:
        self.max_wait_s = max_wait_s
        self.seed = seed

    def open(self, runtime_context: RuntimeContext) -> None:
        self.random = random.Random(self.seed + runtime_context.get_index_of_this_subtask())
        self.active = self.peak = 0

    async def async_invoke(self, value: int) -> List[Any]:
        self.active += 1
        self.peak = max(self.peak, self.active)
        try:
            await asyncio.sleep(self.random.random() * self.max_wait_s)
        finally:
            self.active -= 1
        return [(value * 2, self.peak)]


# ---- order and capacity --------------------------------------------------------------------------------

def test_ordered_wait_emits_in_input_order_while_invocations_overlap() -> None:
    env = env_with(1)
    ds = env.from_collection(list(range(300)))
    out = list(AsyncDataStream.ordered_wait(ds, Doubling(), Time.seconds(10), capacity=20).execute_and_collect())
    assert [value for value, _ in out] == [v * 2 for v in range(300)]
    assert 1 < max(peak for _, peak in out) <= 20  # they did run concurrently, never more than the capacity


def test_unordered_wait_completes_every_input_and_emits_as_they_finish() -> None:
    class SlowFirst(AsyncFunction):
        async def async_invoke(self, value: int) -> List[int]:
            await asyncio.sleep(0.2 if value == 0 else 0.001)
            return [value, -value] if value else [value]

    env = env_with(1)
    out = list(AsyncDataStream.unordered_wait(env.from_collection(list(range(50))), SlowFirst(), 5000)
               .execute_and_collect())
    assert sorted(out) == sorted([0] + [v for i in range(1, 50) for v in (i, -i)])
    assert out.index(0) > 0  # the slow first input did not hold the others back


def test_capacity_bounds_the_invocations_in_flight_at_parallelism_two() -> None:
    env = env_with(2)
    ds = env.from_collection(list(range(200)))
    out = list(AsyncDataStream.unordered_wait(ds, Doubling(0.003), Time.seconds(10), capacity=3)
               .execute_and_collect())
    assert sorted(value for value, _ in out) == [v * 2 for v in range(200)]
    assert max(peak for _, peak in out) == 3


class Stamps(ProcessFunction):
    def process_element(self, value: Any, ctx: ProcessFunction.Context) -> Any:
        yield value, ctx.timestamp(), ctx.timer_service().current_watermark()


class SecondIsTimestamp:
    def extract_timestamp(self, value: Any, record_timestamp: int) -> int:
        return value * 10


def test_unordered_output_never_crosses_a_watermark() -> None:
    """Watermarks follow every batch of 5 records; a slow record of each batch may be overtaken by its
    batch's others, never by the watermark after it (it would be late downstream)."""

    class SlowEveryFifth(AsyncFunction):
        async def async_invoke(self, value: int) -> List[int]:
            await asyncio.sleep(0.03 if value % 5 == 0 else 0)
            return [value]

    env = env_with(1)
    strategy = WatermarkStrategy.for_bounded_out_of_orderness(Duration.of_millis(0)) \
        .with_timestamp_assigner(SecondIsTimestamp())
    ds = env.from_source(CollectionSource(list(range(40)), batch_size=5), strategy, "five by five")
    out = list(AsyncDataStream.unordered_wait(ds, SlowEveryFifth(), 5000, capacity=100)
               .process(Stamps()).execute_and_collect())
    assert sorted(value for value, _, _ in out) == list(range(40))
    assert all(timestamp == value * 10 for value, timestamp, _ in out)  # results keep their input's timestamp
    late = [(value, watermark) for value, timestamp, watermark in out if timestamp <= watermark]
    assert late == []
    assert [value for value, _, _ in out] != list(range(40))  # and inside a batch, the order did change


# ---- timeout -------------------------------------------------------------------------------------------------

class HangsOnThree(AsyncFunction):
    async def async_invoke(self, value: int) -> List[Any]:
        if value == 3:
            await asyncio.sleep(60)
        return [value]


def test_a_timed_out_input_emits_what_timeout_returns() -> None:
    class WithFallback(HangsOnThree):
        def timeout(self, value: int) -> List[Any]:
            return [("timed out", value)]

    env = env_with(1)
    out = list(AsyncDataStream.ordered_wait(env.from_collection(list(range(6))), WithFallback(),
                                            Time.milliseconds(100)).execute_and_collect())
    assert out == [0, 1, 2, ("timed out", 3), 4, 5]


def test_the_default_timeout_fails_the_job_naming_the_input() -> None:
    env = env_with(1)
    with pytest.raises(JobExecutionError, match="timed out for input: 3"):
        list(AsyncDataStream.unordered_wait(env.from_collection(list(range(6))), HangsOnThree(), 100)
             .execute_and_collect())


# ---- retry ---------------------------------------------------------------------------------------------------

class FlakyTwice(AsyncFunction):
    """Raises ValueError on the first two attempts of each value, then answers (value, attempts)."""

    def open(self, runtime_context: RuntimeContext) -> None:
        self.attempts: collections.Counter[int] = collections.Counter()

    async def async_invoke(self, value: int) -> List[Any]:
        self.attempts[value] += 1
        await asyncio.sleep(0)
        if self.attempts[value] <= 2:
            raise ValueError(f"flaky {value}")
        return [(value, self.attempts[value])]


def test_fixed_delay_retry_on_a_matching_exception() -> None:
    strategy = AsyncRetryStrategy.fixed_delay(
        max_attempts=2, backoff_time_millis=5, result_predicate=None,
        exception_predicate=functools.partial(async_retry_predicates.exception_type_predicate,
                                              expected_error_type=ValueError))
    env = env_with(2)
    out = list(AsyncDataStream.unordered_wait_with_retry(env.from_collection(list(range(20))), FlakyTwice(),
                                                         Time.seconds(10), strategy).execute_and_collect())
    assert sorted(out) == [(v, 3) for v in range(20)]  # two retries after the first attempt


def test_retries_exhausted_or_an_unmatched_exception_fail_the_job() -> None:
    env = env_with(1)
    too_few = FixedDelayRetryStrategy(1, 5, None, async_retry_predicates.has_exception_predicate)
    with pytest.raises(JobExecutionError, match=r"FlakyTwice' during handling input 0: async_invoke raised "
                                                r"ValueError: flaky 0"):
        list(AsyncDataStream.ordered_wait_with_retry(env.from_collection([0]), FlakyTwice(), 10_000, too_few)
             .execute_and_collect())
    only_type_errors = FixedDelayRetryStrategy(
        5, 5, None, functools.partial(async_retry_predicates.exception_type_predicate, expected_error_type=TypeError))
    with pytest.raises(JobExecutionError, match="ValueError: flaky 0"):
        list(AsyncDataStream.ordered_wait_with_retry(env.from_collection([0]), FlakyTwice(), 10_000,
                                                     only_type_errors).execute_and_collect())


def test_retry_on_an_empty_result_with_exponential_backoff() -> None:
    class EmptyFirst(AsyncFunction):
        def open(self, runtime_context: RuntimeContext) -> None:
            self.seen: set[int] = set()

        async def async_invoke(self, value: int) -> List[int]:
            if value not in self.seen:
                self.seen.add(value)
                return []
            return [value]

    strategy = AsyncRetryStrategy.exponential_backoff(3, 2, 20, 2.0, async_retry_predicates.empty_result_predicate,
                                                      None)
    env = env_with(1)
    out = list(AsyncDataStream.ordered_wait_with_retry(env.from_collection(list(range(10))), EmptyFirst(),
                                                       Time.seconds(10), strategy).execute_and_collect())
    assert out == list(range(10))


def test_retry_strategies_follow_pyflink() -> None:
    exponential = ExponentialBackoffDelayRetryStrategy(3, 10, 50, 2.0, None, None)
    assert [exponential.get_backoff_time_millis(n) for n in (1, 2, 3, 4)] == [10, 20, 40, 50]
    assert [exponential.can_retry(n) for n in (1, 3, 4)] == [True, True, False]
    assert NoRetryStrategy().can_retry(1) is False
    assert AsyncRetryStrategy.no_restart().get_retry_predicate().result_predicate() is None
    assert async_retry_predicates.empty_result_predicate(None) and async_retry_predicates.empty_result_predicate([])
    assert not async_retry_predicates.has_exception_predicate(None)
    with pytest.raises(ValueError, match="max_attempts"):
        FixedDelayRetryStrategy(0, 10, None, None)
    with pytest.raises(ValueError, match="multiplier"):
        ExponentialBackoffDelayRetryStrategy(1, 10, 50, 0, None, None)


# ---- failures and bad arguments ---------------------------------------------------------------------------

def test_a_failing_async_invoke_fails_the_job_naming_the_class_and_input() -> None:
    class Boom(AsyncFunction):
        async def async_invoke(self, value: int) -> List[int]:
            if value == 7:
                raise KeyError("no such user")
            return [value]

    env = env_with(1)
    with pytest.raises(JobExecutionError, match=r"class 'Boom' during handling input 7: async_invoke raised "
                                                r"KeyError: 'no such user'") as failure:
        list(AsyncDataStream.unordered_wait(env.from_collection(list(range(20))), Boom(), 1000)
             .execute_and_collect())
    assert "async wait operator" in failure.value.task


def test_a_result_that_is_no_list_fails_the_job() -> None:
    class ReturnsNone(AsyncFunction):
        async def async_invoke(self, value: int) -> Any:
            return None if value == 2 else "text"

    env = env_with(1)
    with pytest.raises(JobExecutionError, match="The result of AsyncFunction (cannot be None|should be a list, "
                                                "got str 'text')"):
        list(AsyncDataStream.ordered_wait(env.from_collection([1, 2]), ReturnsNone(), 1000).execute_and_collect())


def test_an_invocation_cancelled_from_inside_fails_the_job_instead_of_hanging_it() -> None:
    class CancelledInside(AsyncFunction):
        async def async_invoke(self, value: int) -> List[int]:
            raise asyncio.CancelledError()  # (what awaiting a task that someone else cancelled raises)

    env = env_with(1)
    with pytest.raises(JobExecutionError, match="'CancelledInside' ended without a result for input 1"):
        list(AsyncDataStream.ordered_wait(env.from_collection([1]), CancelledInside(), 0).execute_and_collect())


def test_arguments_are_checked() -> None:
    env = env_with(1)
    ds = env.from_collection([1])

    class NotAsync(AsyncFunction):
        def async_invoke(self, value: int) -> List[int]:  # type: ignore[override]
            return [value]

    with pytest.raises(TypeError, match="'async_invoke' of class 'NotAsync' should be declared as 'async def'"):
        AsyncDataStream.ordered_wait(ds, NotAsync(), 1000)
    with pytest.raises(ValueError, match="capacity"):
        AsyncDataStream.unordered_wait(ds, Doubling(), 1000, capacity=0)
    with pytest.raises(TypeError, match="timeout must be"):
        AsyncDataStream.unordered_wait(ds, Doubling(), "1 s")
    retry = AsyncRetryStrategy.fixed_delay(3, 10, None, async_retry_predicates.has_exception_predicate)
    with pytest.raises(ValueError, match="Timeout should be configured"):
        AsyncDataStream.unordered_wait_with_retry(ds, Doubling(), Time.milliseconds(0), retry)
    with pytest.raises(ValueError, match="should not be None"):
        AsyncDataStream.ordered_wait_with_retry(ds, Doubling(), 1000, None)  # type: ignore[arg-type]


# ---- checkpoints: exactly once across a failure ------------------------------------------------------------

RECORDS = 600
FAIL_AT = RECORDS * 3 // 4
SLOW = 1000  # records per second: the failure comes after several checkpoints of 50 ms


def generated(env: StreamExecutionEnvironment) -> Any:
    source = DataGeneratorSource(lambda i: i, RECORDS, RateLimiterStrategy.per_second(SLOW), Types.LONG())
    return env.from_source(source, WatermarkStrategy.no_watermarks(), "generated")


def committed_numbers(folder: Path) -> list[int]:
    parts = [p for p in folder.rglob("*") if p.is_file() and not p.name.startswith(".")]
    return [int(line) for part in parts for line in part.read_text().splitlines()]


def number_sink(out: Path) -> FileSink:
    return FileSink.for_row_format(str(out), Encoder.simple_string_encoder()) \
        .with_bucket_assigner(BucketAssigner.base_path_bucket_assigner()).build()


def run_restoring_once(env: StreamExecutionEnvironment) -> None:
    client = env.execute_async()
    client.get_job_execution_result().result(60)
    assert client.mini_cluster.restored_checkpoint(client.get_job_id()) is not None  # failed, then restored


class SlowIdentity(AsyncFunction):
    """Answers each value after up to 30 ms, so that inputs are in flight at every checkpoint."""

    def open(self, runtime_context: RuntimeContext) -> None:
        self.random = random.Random(runtime_context.get_index_of_this_subtask())

    async def async_invoke(self, value: int) -> List[int]:
        await asyncio.sleep(self.random.random() * 0.03)
        return [value]


def test_ordered_output_is_exactly_once_across_a_failure_after_the_operator(tmp_path: Path) -> None:
    env = restarting_env(2, 50)
    out = tmp_path / "out"
    AsyncDataStream.ordered_wait(generated(env), SlowIdentity(), Time.seconds(10), capacity=50) \
        .map(FailOnceAt(FAIL_AT)).map(str, Types.STRING()).sink_to(number_sink(out))
    run_restoring_once(env)
    assert sorted(committed_numbers(out)) == list(range(RECORDS))  # each once


def test_unordered_output_is_exactly_once_when_the_async_function_fails_once(tmp_path: Path) -> None:
    class FailsOnceInFlight(SlowIdentity):
        def open(self, runtime_context: RuntimeContext) -> None:
            super().open(runtime_context)
            self.attempt = runtime_context.get_attempt_number()

        async def async_invoke(self, value: int) -> List[int]:
            results = await super().async_invoke(value)
            if self.attempt == 0 and value == FAIL_AT:
                raise ConnectionError("the service went away")
            return results

    env = restarting_env(2, 50)
    out = tmp_path / "out"
    AsyncDataStream.unordered_wait(generated(env), FailsOnceInFlight(), Time.seconds(10), capacity=50) \
        .map(str, Types.STRING()).sink_to(number_sink(out))
    run_restoring_once(env)
    assert collections.Counter(committed_numbers(out)) == collections.Counter(range(RECORDS))


class Collected:
    """An operator's output: records as (value, timestamp), watermarks as ("watermark", timestamp)."""

    def __init__(self) -> None:
        self.events: list[tuple[Any, int]] = []

    def collect_batch(self, batch: list[Any], timestamps: list[int] | None = None) -> None:
        assert timestamps is not None
        self.events.extend(zip(batch, timestamps))

    def collect_side(self, tag_id: str, batch: list[Any], timestamps: list[int] | None = None) -> None:
        raise AssertionError("no side outputs")

    def emit_watermark(self, watermark: int) -> None:
        self.events.append(("watermark", watermark))

    def emit_watermark_status(self, idle: bool) -> None:
        pass


class BlocksFromFive(AsyncFunction):
    """Values below 5 answer at once; the others wait (for a minute) unless `block` is off."""

    def __init__(self, block: bool) -> None:
        self.block = block

    async def async_invoke(self, value: int) -> List[int]:
        if self.block and value >= 5:
            await asyncio.sleep(60)
        return [value * 10]


@pytest.mark.parametrize("mode", list(AsyncFunctionDescriptor.OutputMode))
def test_the_snapshot_holds_the_inputs_in_flight_and_a_restore_invokes_them_again(mode: Any) -> None:
    def operator(function: AsyncFunction, attempt: int) -> tuple[AsyncWaitOperator, Collected, Any]:
        op = AsyncWaitOperator(AsyncFunctionDescriptor(function, 0, 100, NoRetryStrategy(), mode))
        output, timers = Collected(), ProcessingTimeService()
        op.setup(OperatorContext(TaskInfo("async", 0, 1, 128, attempt), timers, checkpointing=True), output)
        return op, output, timers

    first, output, timers = operator(BlocksFromFive(block=True), 0)
    first.open()
    try:
        first.process_batch([0, 1, 2, 3, 4, 5, 6], [100, 101, 102, 103, 104, 105, 106])
        first.process_watermark(106)
        first.process_batch([7], [107])

        def the_first_five() -> bool:
            timers.fire_due()  # (as the task loop does between batches)
            return len(output.events) == 5

        wait_for(the_first_five, 10, interval=0.002, what="the inputs that answer at once")
        first_five = output.events[:]
        assert sorted(first_five) == [(v * 10, 100 + v) for v in range(5)]  # (the watermark waits for 5 and 6)
        state = first.snapshot_state(1)
    finally:
        first.close()  # the failure: 5, 6 and 7 never answered

    second, restored_output, _ = operator(BlocksFromFive(block=False), 1)
    second.initialize_state([state])
    second.open()
    second.end_input()
    second.close()
    events = restored_output.events
    if mode == AsyncFunctionDescriptor.OutputMode.ORDERED:
        assert first_five == [(v * 10, 100 + v) for v in range(5)]
        assert events == [(50, 105), (60, 106), ("watermark", 106), (70, 107)]
    else:  # in any order before the watermark that followed them, and 7 after it
        assert sorted(events[:2]) == [(50, 105), (60, 106)]
        assert events[2:] == [("watermark", 106), (70, 107)]


# ---- PyFlink's example -----------------------------------------------------------------------------------

class AsyncLLMRequest(AsyncFunction[Row, str]):
    """From PyFlink's examples/datastream/asyncio/remote_model_inference.py, its waits shortened from
    1-2 s to 10-20 ms."""

    def __init__(self) -> None:
        self.retried_keys: dict[int, bool] = {}

    def open(self, runtime_context: RuntimeContext) -> None:
        pass

    def close(self) -> None:
        pass

    async def async_invoke(self, value: Row) -> List[str]:
        await asyncio.sleep(random.randint(1, 2) / 100)
        if value.user_id not in self.retried_keys and random.randint(1, 10) % 3 == 0:
            self.retried_keys[value.user_id] = True
            raise TimeoutError
        else:
            if value.user_id in self.retried_keys:
                del self.retried_keys[value.user_id]
            result = {"user_id": value.user_id, "comments": value.comments, "analysis_result": "positive"}
            return [json.dumps(result)]

    def timeout(self, value: Row) -> List[str]:
        result = {"user_id": value.user_id, "comments": value.comments, "analysis_result": None}
        return [json.dumps(result)]


def test_pyflink_remote_model_inference_example() -> None:
    """The example's DataStream part as it is (retry on TimeoutError, capacity 1000); its source, a Table
    API datagen table, becomes a collection of the same rows (the Table API is not part of ha-flink)."""
    env = StreamExecutionEnvironment.get_execution_environment()
    env.enable_checkpointing(30000, CheckpointingMode.EXACTLY_ONCE)
    rows = [Row(user_id=i, comments=f"comment {i}") for i in range(60)]
    ds = env.from_collection(rows, Types.ROW_NAMED(["user_id", "comments"], [Types.INT(), Types.STRING()]))
    async_retry_strategy = AsyncRetryStrategy.fixed_delay(
        max_attempts=100,
        backoff_time_millis=10,
        result_predicate=None,
        exception_predicate=functools.partial(async_retry_predicates.exception_type_predicate,
                                              expected_error_type=TimeoutError))
    result_stream = AsyncDataStream.unordered_wait_with_retry(
        data_stream=ds,
        async_function=AsyncLLMRequest(),
        timeout=Time.seconds(10),
        async_retry_strategy=async_retry_strategy,
        capacity=1000,
        output_type=Types.STRING())
    results = [json.loads(line) for line in result_stream.execute_and_collect()]
    assert sorted(r["user_id"] for r in results) == list(range(60))
    assert all(r["analysis_result"] == "positive" for r in results)  # every TimeoutError was retried
