"""PyFlink's metric interfaces (`pyflink.metrics.metricbase`), name for name: the MetricGroup a function gets
from `RuntimeContext.get_metrics_group()` and the Counter, Meter and Distribution it registers there.
Interfaces only; ha-flink's implementations are in `ha_flink.metrics.groups`."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Callable


class MetricGroup(ABC):
    """A named container for metrics and further metric subgroups. A group is identified by its place in
    the hierarchy and its name."""

    @abstractmethod
    def add_group(self, name: str, extra: str | None = None) -> MetricGroup:
        """A subgroup `name`; with `extra`, a key/value pair: the key group `name` under this group and the
        value group `extra` under it, which is returned and defines the user variable `name` = `extra`."""

    @abstractmethod
    def counter(self, name: str) -> Counter:
        """Registers a new Counter."""

    @abstractmethod
    def gauge(self, name: str, obj: Callable[[], int]) -> None:
        """Registers a new gauge: `obj()` is called for its value whenever the metrics are reported."""

    @abstractmethod
    def meter(self, name: str, time_span_in_seconds: int = 60) -> Meter:
        """Registers a new Meter: the rate of events per second over the last `time_span_in_seconds`."""

    @abstractmethod
    def distribution(self, name: str) -> Distribution:
        """Registers a new Distribution: count, sum, min, max and mean of the values it was updated with."""


class Metric(ABC):  # noqa: B024 - a marker base, as in PyFlink
    """Base interface of a metric object."""


class Counter(Metric, ABC):
    """A count that can be incremented and decremented."""

    @abstractmethod
    def inc(self, n: int = 1) -> None:
        """Increment the current count by `n`."""

    @abstractmethod
    def dec(self, n: int = 1) -> None:
        """Decrement the current count by `n`."""

    @abstractmethod
    def get_count(self) -> int:
        """The current count."""


class Meter(Metric, ABC):
    """Throughput: events marked, reported as their rate per second."""

    @abstractmethod
    def mark_event(self, value: int = 1) -> None:
        """Mark the occurrence of `value` events."""

    @abstractmethod
    def get_count(self) -> int:
        """The number of events marked on the meter."""


class Distribution(Metric, ABC):
    """Statistics (count, sum, min, max, mean) of the values a pipeline reported."""

    @abstractmethod
    def update(self, value: int) -> None:
        """Add `value` to the distribution."""
