"""Rates from counters, as Flink's MeterView: the counter is sampled (ha_flink/metrics/sampling.py), and the
rate is the increase over the samples of the last `window_s` seconds."""

from __future__ import annotations

from ha_flink.metrics.sampling import SampleWindow


class Meter:
    def __init__(self, window_s: float = 5.0) -> None:
        self.window_s = window_s
        self._window = SampleWindow(window_s)

    def update(self, now: float, count: float) -> None:
        self._window.update(now, count)

    @property
    def rate(self) -> float:
        """Increase per second over the window (0 until two samples exist)."""
        if len(self._window.samples) < 2:
            return 0.0
        increase, seconds = self._window.increase()
        return increase / seconds if seconds > 0 else 0.0


class TaskIOMeters:
    """numRecordsInPerSecond, numRecordsOutPerSecond and backPressuredTimeMsPerSecond of one subtask."""

    def __init__(self, window_s: float = 5.0) -> None:
        self.records_in = Meter(window_s)
        self.records_out = Meter(window_s)
        self.back_pressured_ms = Meter(window_s)

    def update(self, now: float, records_in: int, records_out: int, back_pressured_s: float) -> None:
        self.records_in.update(now, records_in)
        self.records_out.update(now, records_out)
        self.back_pressured_ms.update(now, back_pressured_s * 1000)
