"""`TimerService`, as in `pyflink.datastream.timerservice`: the clocks and timers a process function has."""

from __future__ import annotations

from ha_flink.core.functions import TimerService

__all__ = ["TimerService"]
