"""`WatermarkStrategy` and `TimestampAssigner`: how a source stamps records with event time and
which watermarks follow. Besides PyFlink's builder API this module holds the I/O-free parts the
runtime calls per record: timestamp extraction and the watermark generators."""

from __future__ import annotations

import abc
import copy
from typing import Any, Optional

from ha_flink.common.time import Duration

__all__ = ["WatermarkStrategy", "TimestampAssigner", "WatermarkGenerator", "LONG_MIN"]

#: Java's Long.MIN_VALUE: the watermark meaning "no event time progress yet".
LONG_MIN = -(2 ** 63)


class TimestampAssigner(abc.ABC):
    """Assigns event-time timestamps (epoch milliseconds) to records."""

    @abc.abstractmethod
    def extract_timestamp(self, value: Any, record_timestamp: int) -> int:
        """The timestamp of ``value``; ``record_timestamp`` is the one it already carries, or a
        negative value when it has none."""


class WatermarkGenerator:
    """Tracks the largest timestamp seen and derives the current watermark from it.

    This is Flink's BoundedOutOfOrdernessWatermarks; monotonous timestamps are the bound-0 case."""

    __slots__ = ("_bound", "_max_ts")

    def __init__(self, out_of_orderness_ms: int) -> None:
        self._bound = out_of_orderness_ms
        # Chosen so that the watermark before any event is exactly LONG_MIN.
        self._max_ts = LONG_MIN + out_of_orderness_ms + 1

    def on_event(self, timestamp_ms: int) -> None:
        if timestamp_ms > self._max_ts:
            self._max_ts = timestamp_ms

    def current_watermark(self) -> int:
        return self._max_ts - self._bound - 1


class NoWatermarksGenerator(WatermarkGenerator):
    """Never advances: for pure processing-time pipelines."""

    def __init__(self) -> None:
        super().__init__(0)

    def on_event(self, timestamp_ms: int) -> None:
        pass

    def current_watermark(self) -> int:
        return LONG_MIN


class WatermarkStrategy:
    """Builder of a source's timestamp assigner and watermark generator."""

    def __init__(self, out_of_orderness_ms: Optional[int]) -> None:
        # None means no watermarks at all.
        self._out_of_orderness_ms = out_of_orderness_ms
        self._timestamp_assigner: Optional[TimestampAssigner] = None
        self.idle_timeout: Optional[Duration] = None
        self.watermark_alignment: Optional[tuple] = None

    @staticmethod
    def for_monotonous_timestamps() -> "WatermarkStrategy":
        return WatermarkStrategy(0)

    @staticmethod
    def for_bounded_out_of_orderness(max_out_of_orderness: Duration) -> "WatermarkStrategy":
        bound = max_out_of_orderness.to_milliseconds()
        if bound < 0:
            raise ValueError("max_out_of_orderness cannot be negative: %s" % max_out_of_orderness)
        return WatermarkStrategy(bound)

    @staticmethod
    def no_watermarks() -> "WatermarkStrategy":
        return WatermarkStrategy(None)

    def with_timestamp_assigner(self, timestamp_assigner: TimestampAssigner) -> "WatermarkStrategy":
        # PyFlink sets the assigner on this strategy and returns it; programs may rely on that.
        self._timestamp_assigner = timestamp_assigner
        return self

    def with_idleness(self, idle_timeout: Duration) -> "WatermarkStrategy":
        strategy = copy.copy(self)
        strategy.idle_timeout = idle_timeout
        return strategy

    def with_watermark_alignment(self, watermark_group: str, max_allowed_watermark_drift: Duration,
                                 update_interval: Optional[Duration] = None) -> "WatermarkStrategy":
        strategy = copy.copy(self)
        strategy.watermark_alignment = (watermark_group, max_allowed_watermark_drift,
                                        update_interval or Duration.of_seconds(1))
        return strategy

    def get_timestamp_assigner(self) -> Optional[TimestampAssigner]:
        return self._timestamp_assigner

    def create_watermark_generator(self) -> WatermarkGenerator:
        """A fresh generator, one per source split or subtask."""
        if self._out_of_orderness_ms is None:
            return NoWatermarksGenerator()
        return WatermarkGenerator(self._out_of_orderness_ms)

    def extract_timestamp(self, value: Any, record_timestamp: int) -> int:
        if self._timestamp_assigner is None:
            return record_timestamp
        return self._timestamp_assigner.extract_timestamp(value, record_timestamp)

    def __repr__(self) -> str:
        if self._out_of_orderness_ms is None:
            kind = "no_watermarks()"
        elif self._out_of_orderness_ms == 0:
            kind = "for_monotonous_timestamps()"
        else:
            kind = "for_bounded_out_of_orderness(%d ms)" % self._out_of_orderness_ms
        return "WatermarkStrategy.%s" % kind
