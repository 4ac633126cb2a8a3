"""Watermark strategies: timestamp extraction and the watermarks each generator reports."""

from __future__ import annotations

from typing import Any

from ha_flink.common import Duration, WatermarkStrategy
from ha_flink.common.watermark_strategy import LONG_MIN, TimestampAssigner


class FirstField(TimestampAssigner):
    def extract_timestamp(self, value: Any, record_timestamp: int) -> int:
        return value[0]


def test_monotonous_watermark_trails_max_timestamp_by_one() -> None:
    gen = WatermarkStrategy.for_monotonous_timestamps().create_watermark_generator()
    assert gen.current_watermark() == LONG_MIN == -(2 ** 63)
    gen.on_event(1000)
    assert gen.current_watermark() == 999
    gen.on_event(500)  # late events never move the watermark back
    assert gen.current_watermark() == 999
    gen.on_event(2000)
    assert gen.current_watermark() == 1999


def test_bounded_out_of_orderness_subtracts_bound() -> None:
    strategy = WatermarkStrategy.for_bounded_out_of_orderness(Duration.of_seconds(5))
    gen = strategy.create_watermark_generator()
    assert gen.current_watermark() == LONG_MIN
    gen.on_event(10_000)
    gen.on_event(7_000)
    assert gen.current_watermark() == 4_999
    # each call gives an independent generator
    assert strategy.create_watermark_generator().current_watermark() == LONG_MIN


def test_no_watermarks_stays_at_long_min() -> None:
    gen = WatermarkStrategy.no_watermarks().create_watermark_generator()
    gen.on_event(10**12)
    assert gen.current_watermark() == LONG_MIN


def test_timestamp_assigner_is_used_and_kept_through_builders() -> None:
    strategy = WatermarkStrategy.for_monotonous_timestamps()
    assert strategy.extract_timestamp(("x",), 77) == 77
    returned = strategy.with_timestamp_assigner(FirstField())
    assert returned is strategy  # PyFlink sets the assigner in place
    assert strategy.extract_timestamp((123, "x"), 77) == 123
    idle = strategy.with_idleness(Duration.of_minutes(1)).with_watermark_alignment(
        "g", Duration.of_seconds(20))
    assert idle.idle_timeout == Duration.of_minutes(1)
    assert idle.watermark_alignment == ("g", Duration.of_seconds(20), Duration.of_seconds(1))
    assert idle.extract_timestamp((5,), 0) == 5
    assert strategy.idle_timeout is None
