"""The sample window behind Flink's MeterView, shared by the user's meters (groups.py) and the task's I/O
meters (runtime/metrics/meter.py): a counter sampled over time, keeping one sample at or before the
window's start so that a rate spans the whole window. I/O-free: the caller passes the time."""

from __future__ import annotations

import collections


class SampleWindow:
    def __init__(self, window_s: float) -> None:
        self.window_s = window_s
        self.samples: collections.deque[tuple[float, float]] = collections.deque()

    def update(self, now: float, count: float) -> None:
        self.samples.append((now, count))
        while len(self.samples) > 2 and self.samples[1][0] <= now - self.window_s:
            self.samples.popleft()

    def increase(self) -> tuple[float, float]:
        """(the count's increase, the seconds it took) from the window's first sample to its last."""
        (t0, c0), (t1, c1) = self.samples[0], self.samples[-1]
        return c1 - c0, t1 - t0
