from __future__ import annotations

import pytest

from ha_flink.runtime.metrics.meter import Meter, TaskIOMeters


def test_a_meter_is_the_increase_per_second_over_its_window() -> None:
    meter = Meter(window_s=5.0)
    assert meter.rate == 0.0
    meter.update(0.0, 0)
    assert meter.rate == 0.0  # one sample: no rate yet
    for second in range(1, 11):
        meter.update(float(second), second * 100)
    assert meter.rate == pytest.approx(100.0)
    # the rate changes: only the last window counts, not the history
    for second in range(11, 21):
        meter.update(float(second), 1000 + (second - 10) * 10)
    assert meter.rate == pytest.approx(10.0)


def test_task_meters_turn_counters_and_blocked_seconds_into_per_second_figures() -> None:
    meters = TaskIOMeters(window_s=2.0)
    meters.update(0.0, 0, 0, 0.0)
    meters.update(1.0, 500, 250, 0.4)
    assert (meters.records_in.rate, meters.records_out.rate) == (500.0, 250.0)
    assert meters.back_pressured_ms.rate == pytest.approx(400.0)
