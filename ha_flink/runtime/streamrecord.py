"""What travels between operators besides plain record batches: batches with event-time timestamps,
watermarks, and watermark status (idle/active).

A batch is a plain `list` of records when the stream carries no timestamps (the fast path every
operator takes), or a `StampedBatch` when it does: the records and their timestamps side by side, so a
map keeps the timestamps list as it is instead of wrapping every record. Inside a chain the two lists go
as the two arguments of `process_batch(batch, timestamps)`; between tasks as one `StampedBatch` item."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

MIN_WATERMARK = -(2**63)  # Java's Long.MIN_VALUE: no event-time progress yet
MAX_WATERMARK = 2**63 - 1  # the end of event time: every event-time timer fires


class StampedBatch:
    """Records and their event-time timestamps (epoch milliseconds), index by index."""

    __slots__ = ("values", "timestamps")

    def __init__(self, values: list[Any], timestamps: list[int]) -> None:
        self.values = values
        self.timestamps = timestamps

    def __len__(self) -> int:
        return len(self.values)

    def __reduce__(self) -> tuple[Any, ...]:
        return (StampedBatch, (self.values, self.timestamps))

    def __repr__(self) -> str:
        return f"StampedBatch({len(self.values)} records)"


@dataclass(frozen=True)
class Watermark:
    """No record with a timestamp <= `timestamp` follows on this channel (late ones aside)."""

    timestamp: int


@dataclass(frozen=True)
class WatermarkStatus:
    """An input that went idle (no records for `with_idleness`'s timeout) is left out of the minimum
    over inputs until it becomes active again."""

    idle: bool


IDLE = WatermarkStatus(True)
ACTIVE = WatermarkStatus(False)


def split_stamped(values: list[Any], timestamps: list[int], keep: list[Any]) -> tuple[list[Any], list[int]]:
    """The records (and their timestamps) whose `keep` entry is true."""
    return ([v for v, k in zip(values, keep) if k], [t for t, k in zip(timestamps, keep) if k])
