"""`DataGeneratorSource`, shaped like Flink's (`org.apache.flink.connector.datagen.source`): records made by
a `GeneratorFunction` (or any callable) from the indexes 0..count-1, with an optional `RateLimiterStrategy`
(`per_second`, `per_checkpoint`, `no_op`) for the whole source.

The index range is cut into one contiguous sub-range per source subtask, each produced in order, as Flink
cuts it (with parallelism 1 the indexes come in order). A checkpoint holds each subtask's next index, so a
restored job goes on where the checkpoint was (replayable: a deterministic generator function gives
exactly-once results). Flink's source is always bounded (a huge count stands for "endless"); `count=None`
here is an endless one, subtask i of p producing i, i+p, i+2p, ...

Rate limits are non-blocking: a reader whose next records are not due yet returns an empty batch after at
most a short nap, so the task can still take checkpoints and notice cancellation."""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass
from typing import Any, Callable

from ha_flink.datastream.connectors.base import BATCH_SIZE, Boundedness, Source, SourceReader
from ha_flink.datastream.connectors.number_seq import split_range

__all__ = ["DataGeneratorSource", "GeneratorFunction", "RateLimiter", "RateLimiterStrategy", "SourceReaderContext"]

_IDLE_WAIT = 0.01  # longest nap of a reader whose next record is not due


class SourceReaderContext:
    """What a generator function's `open` learns about its subtask."""

    def __init__(self, index: int, parallelism: int) -> None:
        self._index = index
        self._parallelism = parallelism

    def get_index_of_subtask(self) -> int:
        return self._index

    def current_parallelism(self) -> int:
        return self._parallelism


class GeneratorFunction:
    """Maps an index (0, 1, ...) to a record. `open` runs once per subtask before the first `map`."""

    def open(self, reader_context: SourceReaderContext) -> None:
        pass

    def close(self) -> None:
        pass

    def map(self, value: int) -> Any:
        raise NotImplementedError


# ---- rate limiting -------------------------------------------------------------------------------------

class RateLimiter:
    """How many records one subtask may emit now. Never blocks: the reader asks, emits what is allowed,
    and waits `delay()` (at most a short nap) when nothing is."""

    def available(self, now: float) -> float:
        return math.inf

    def consume(self, count: int) -> None:
        pass

    def delay(self, now: float) -> float:
        """Seconds until one more record is allowed (a guess for gated limiters)."""
        return 0.0

    def notify_checkpoint(self) -> None:
        pass


class _PerSecondRateLimiter(RateLimiter):
    """A token bucket as Guava's SmoothBursty limiter that Flink uses: `rate` tokens a second, at most one
    second's worth stored, the first record at once."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self.capacity = max(1.0, rate)
        self.tokens = 1.0
        self.last: float | None = None

    def _refill(self, now: float) -> None:
        if self.last is not None:
            self.tokens = min(self.capacity, self.tokens + (now - self.last) * self.rate)
        self.last = now

    def available(self, now: float) -> float:
        self._refill(now)
        return self.tokens

    def consume(self, count: int) -> None:
        self.tokens -= count

    def delay(self, now: float) -> float:
        self._refill(now)
        return max(0.0, (1.0 - self.tokens) / self.rate)


class _GatedRateLimiter(RateLimiter):
    """`capacity` records per checkpoint: the gate opens again when the reader's state is checkpointed
    (Flink opens it when that checkpoint completes; readers here see the checkpoint, not its completion)."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.left = capacity

    def available(self, now: float) -> float:
        return self.left

    def consume(self, count: int) -> None:
        self.left -= count

    def delay(self, now: float) -> float:
        return _IDLE_WAIT

    def notify_checkpoint(self) -> None:
        self.left = self.capacity


class RateLimiterStrategy:
    """Makes each source subtask's RateLimiter; the limit is the source's overall one, divided among its
    subtasks."""

    def create_rate_limiter(self, parallelism: float) -> RateLimiter:
        return RateLimiter()

    @staticmethod
    def per_second(records_per_second: float) -> RateLimiterStrategy:
        """At most `records_per_second` records a second, over all subtasks of the source."""
        return _PerSecond(records_per_second)

    @staticmethod
    def per_checkpoint(records_per_checkpoint: int) -> RateLimiterStrategy:
        """At most `records_per_checkpoint` records between two checkpoints, over all subtasks."""
        return _PerCheckpoint(records_per_checkpoint)

    @staticmethod
    def no_op() -> RateLimiterStrategy:
        """No limit."""
        return RateLimiterStrategy()


class _PerSecond(RateLimiterStrategy):
    def __init__(self, records_per_second: float) -> None:
        if not records_per_second > 0 or math.isinf(records_per_second):
            raise ValueError(f"RateLimiterStrategy.per_second: records_per_second must be a positive number, "
                             f"got {records_per_second}")
        self.records_per_second = float(records_per_second)

    def create_rate_limiter(self, parallelism: float) -> RateLimiter:
        return _PerSecondRateLimiter(self.records_per_second / parallelism)


class _PerCheckpoint(RateLimiterStrategy):
    def __init__(self, records_per_checkpoint: int) -> None:
        if records_per_checkpoint <= 0:
            raise ValueError(f"RateLimiterStrategy.per_checkpoint: records_per_checkpoint must be positive, "
                             f"got {records_per_checkpoint}")
        self.records_per_checkpoint = int(records_per_checkpoint)

    def create_rate_limiter(self, parallelism: float) -> RateLimiter:
        per_subtask = int(self.records_per_checkpoint / parallelism)
        if per_subtask <= 0:
            raise ValueError("RateLimiterStrategy.per_checkpoint: records_per_checkpoint has to be greater or "
                             "equal to parallelism. Either decrease the parallelism or increase the number of "
                             "records_per_checkpoint.")
        return _GatedRateLimiter(per_subtask)


# ---- the source ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class _GeneratorSplit:
    """Indexes `next`, next+step, ... up to `last` (None: no end), of subtask `index` of `parallelism` (as
    created; it carries its share of the rate limit through rescaling)."""

    index: int
    parallelism: int
    next: int
    last: int | None
    step: int = 1

    @property
    def remaining(self) -> float:
        return math.inf if self.last is None else max(0, (self.last - self.next) // self.step + 1)


class DataGeneratorSource(Source):
    """`DataGeneratorSource(generator_function, count, rate_limiter_strategy, type_info)`, or Flink's
    `(generator_function, count, type_info)`: records `generator_function(i)` for i in 0..count-1."""

    name = "DataGeneratorSource"

    def __init__(self, generator_function: GeneratorFunction | Callable[[int], Any], count: int | None,
                 rate_limiter_strategy: Any = None, type_info: Any = None) -> None:
        from ha_flink.common.typeinfo import TypeInformation

        if isinstance(rate_limiter_strategy, TypeInformation) and type_info is None:
            rate_limiter_strategy, type_info = None, rate_limiter_strategy  # Flink's three-argument form
        if rate_limiter_strategy is None:
            rate_limiter_strategy = RateLimiterStrategy.no_op()
        if not isinstance(rate_limiter_strategy, RateLimiterStrategy):
            raise TypeError(f"DataGeneratorSource: rate_limiter_strategy must be a RateLimiterStrategy, got "
                            f"{type(rate_limiter_strategy).__name__}")
        if not isinstance(generator_function, GeneratorFunction) and not callable(generator_function):
            raise TypeError(f"DataGeneratorSource: generator_function must be a GeneratorFunction or a callable, "
                            f"got {type(generator_function).__name__}")
        if count is not None and math.isinf(count) and count > 0:
            count = None
        if count is not None:
            if isinstance(count, bool) or int(count) != count:
                raise ValueError(f"DataGeneratorSource: count must be a whole number, got {count!r}")
            if count < 0:
                raise ValueError(f"DataGeneratorSource: count must not be negative, got {count}")
            count = int(count)
        self.generator_function = generator_function
        self.count = count
        self.rate_limiter_strategy = rate_limiter_strategy
        self.type_info = type_info

    def get_produced_type(self) -> Any:
        return self.type_info

    def get_boundedness(self) -> str:
        return Boundedness.CONTINUOUS_UNBOUNDED if self.count is None else Boundedness.BOUNDED

    def create_splits(self, parallelism: int) -> list[Any]:
        if self.count is None:
            return [_GeneratorSplit(i, parallelism, i, None, parallelism) for i in range(parallelism)]
        if self.count == 0:
            return []
        ranges = split_range(0, self.count - 1, parallelism)
        return [_GeneratorSplit(i, parallelism, first, last) for i, (first, last) in enumerate(ranges)]

    def create_reader(self, splits: list[Any]) -> SourceReader:
        return _GeneratorReader(self, list(splits))


class _GeneratorReader(SourceReader):
    def __init__(self, source: DataGeneratorSource, splits: list[_GeneratorSplit]) -> None:
        # Exhausted splits stay (and go into snapshots): each carries its share of the rate limit, which a
        # subtask holding several splits after rescaling adds up.
        self.splits = splits
        function = source.generator_function
        self.function = function if isinstance(function, GeneratorFunction) else None
        self.map: Callable[[int], Any] = function.map if isinstance(function, GeneratorFunction) else function
        type_info = source.type_info
        self.conform = type_info.conform if getattr(type_info, "needs_conversion", False) else None
        first = splits[0] if splits else _GeneratorSplit(0, 1, 0, -1)
        self.limiter = source.rate_limiter_strategy.create_rate_limiter(first.parallelism / max(1, len(splits)))
        self.opened = False
        if self.function is not None and splits:  # (a subtask without indexes to generate has none to map)
            self.function.open(SourceReaderContext(first.index, first.parallelism))
            self.opened = True

    def poll_batch(self) -> list[Any] | None:
        position = next((i for i, split in enumerate(self.splits) if split.remaining > 0), None)
        if position is None:
            return None
        split = self.splits[position]
        now = time.monotonic()
        allowed = self.limiter.available(now)
        if allowed < 1:
            time.sleep(min(_IDLE_WAIT, self.limiter.delay(now)))
            return []
        count = int(min(BATCH_SIZE, allowed, split.remaining))
        stop = split.next + count * split.step
        generate = self.map
        batch = [generate(index) for index in range(split.next, stop, split.step)]
        if self.conform is not None:
            conform = self.conform
            batch = [conform(record) for record in batch]
        self.splits[position] = dataclasses.replace(split, next=stop)
        self.limiter.consume(count)
        return batch

    def snapshot(self) -> list[Any] | None:
        self.limiter.notify_checkpoint()
        return list(self.splits)

    def close(self) -> None:
        if self.opened:
            self.opened = False
            assert self.function is not None  # (opened only with a GeneratorFunction)
            self.function.close()
