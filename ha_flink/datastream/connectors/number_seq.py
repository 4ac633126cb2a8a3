"""`NumberSequenceSource(start, end)`: the numbers start..end (inclusive), cut into one contiguous split per
source subtask as PyFlink's (`split_range`, which DataGeneratorSource shares).
`RateLimitedNumberSequenceSource`: numbers from `start` at a bounded rate, without end unless one is given:
the unbounded source for streaming jobs and tests."""

from __future__ import annotations

import time
from typing import Any

from ha_flink.datastream.connectors.base import BATCH_SIZE, Boundedness, Source, SourceReader


class NumberSequenceSource(Source):
    """The numbers start..end, both inclusive, in `parallelism` sub-sequences each produced in order
    (bounded). Each subtask's position is in the checkpoint."""

    name = "Sequence Source"

    def __init__(self, start: int, end: int) -> None:
        if end < start:
            raise ValueError(f"NumberSequenceSource: end {end} is below start {start} ('from' must be <= 'to')")
        self.start = start
        self.end = end

    def get_boundedness(self) -> str:
        return Boundedness.BOUNDED

    def create_splits(self, parallelism: int) -> list[Any]:
        return split_range(self.start, self.end, parallelism)

    def create_reader(self, splits: list[Any]) -> SourceReader:
        return _RangeReader(list(splits))


def split_range(first: int, last: int, parallelism: int) -> list[tuple[int, int]]:
    """first..last (inclusive) as `parallelism` contiguous sub-ranges, the first ones one longer when it does
    not divide evenly (Flink's NumberSequenceIterator.split); empty sub-ranges are left out."""
    total = last - first + 1
    size, extra = divmod(total, parallelism)
    splits = []
    position = first
    for index in range(parallelism):
        length = size + (1 if index < extra else 0)
        if length > 0:
            splits.append((position, position + length - 1))
        position += length
    return splits


class _RangeReader(SourceReader):
    def __init__(self, splits: list[tuple[int, int]]) -> None:
        self.splits = splits
        self.position = splits[0][0] if splits else 0

    def poll_batch(self) -> list[Any] | None:
        while self.splits:
            first, last = self.splits[0]
            if self.position <= last:
                stop = min(self.position + BATCH_SIZE, last + 1)
                batch = list(range(self.position, stop))
                self.position = stop
                return batch
            self.splits.pop(0)
            if self.splits:
                self.position = self.splits[0][0]
        return None

    def snapshot(self) -> list[Any] | None:
        if not self.splits:
            return []
        return [(self.position, self.splits[0][1]), *self.splits[1:]]


class RateLimitedNumberSequenceSource(Source):
    """Numbers from `start` (to `end`, inclusive, if given) at `records_per_second` in all (None: as fast
    as the job takes them). Subtask i of p emits start+i, start+i+p, ..."""

    name = "Rate-Limited Sequence Source"

    def __init__(self, start: int = 0, end: int | None = None, records_per_second: float | None = None) -> None:
        self.start = start
        self.end = end
        self.records_per_second = records_per_second

    def get_boundedness(self) -> str:
        return Boundedness.BOUNDED if self.end is not None else Boundedness.CONTINUOUS_UNBOUNDED

    def create_splits(self, parallelism: int) -> list[Any]:
        rate = None if self.records_per_second is None else self.records_per_second / parallelism
        return [(self.start + i, parallelism, self.end, rate) for i in range(parallelism)]

    def create_reader(self, splits: list[Any]) -> SourceReader:
        return _SteppedReader(splits)


class _SteppedReader(SourceReader):
    def __init__(self, splits: list[tuple[int, int, int | None, float | None]]) -> None:
        self.splits = splits
        self.started = time.monotonic()
        self.emitted = 0

    def poll_batch(self) -> list[Any] | None:
        if not self.splits:
            return None
        next_value, step, end, rate = self.splits[0]
        count = BATCH_SIZE
        if rate is not None:
            elapsed = time.monotonic() - self.started
            due = int(elapsed * rate) - self.emitted
            if due <= 0:
                # Nothing due yet: wait until the next record is, at most 50 ms so that the task sees checkpoint
                # triggers and cancellation soon. (A fixed 10 ms woke a slow subtask 100 times a second: at p=64
                # and 1,000 records/s in all, 6,400 empty polls a second.)
                time.sleep(min(max((self.emitted + 1) / rate - elapsed, 0.001), 0.05))
                return []
            count = min(count, due)
        if end is not None:
            count = min(count, (end - next_value) // step + 1)
            if count <= 0:
                self.splits.pop(0)
                return self.poll_batch()
        batch = list(range(next_value, next_value + count * step, step))
        self.splits[0] = (next_value + count * step, step, end, rate)
        self.emitted += count
        return batch

    def snapshot(self) -> list[Any] | None:
        return list(self.splits)
