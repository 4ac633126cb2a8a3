"""Rates from counters, as Flink's MeterView: the counter is sampled, and the rate is the increase over
the samples of the last `window_s` seconds. I/O-free: the caller passes the time."""

from __future__ import annotations

import collections


class Meter:
    def __init__(self, window_s: float = 5.0) -> None:
        self.window_s = window_s
        self._samples: collections.deque[tuple[float, float]] = collections.deque()

    def update(self, now: float, count: float) -> None:
        self._samples.append((now, count))
        # keep one sample at or before the window's start, so the rate spans the whole window
        while len(self._samples) > 2 and self._samples[1][0] <= now - self.window_s:
            self._samples.popleft()

    @property
    def rate(self) -> float:
        """Increase per second over the window (0 until two samples exist)."""
        if len(self._samples) < 2:
            return 0.0
        (t0, c0), (t1, c1) = self._samples[0], self._samples[-1]
        return (c1 - c0) / (t1 - t0) if t1 > t0 else 0.0


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
