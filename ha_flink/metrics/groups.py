"""ha-flink's metric groups and metrics behind PyFlink's interfaces (Flink's GenericMetricGroup,
SimpleCounter, MeterView, and PyFlink's distribution): what a user function registers in `open()` and
updates per record, and what a reporter reads (`TaskMetricGroup.reported()`).

Pure Python, no I/O. A group's tree changes on the task's thread (registration in `open()`), while reporters
read it from the daemon's event loop: registration and reading take the task's lock; updates of a metric do
not (one writer, the task's thread; a reader sees one value or the next).

Names follow Flink: `add_group(name)` is a plain subgroup, `add_group(key, value)` a key group holding a
value group, whose variable `<key>` = value becomes a label; the metric identifier is the scope components
joined by '.'. Registering a name twice in one group keeps the first metric, as Flink (with a warning), and
hands that first metric back when it is of the same kind, so both handles update what is reported; a name
already taken by a metric of another kind, or by a group of another kind, is an error."""

from __future__ import annotations

import logging
import math
import numbers
import threading
import time
from dataclasses import dataclass
from enum import Enum
from typing import Callable, Iterator, TypeVar, Union

from ha_flink.metrics.metricbase import Counter, Distribution, Meter, Metric, MetricGroup
from ha_flink.metrics.sampling import SampleWindow

logger = logging.getLogger(__name__)

# Flink's MeterView: views are updated every 5 s and a meter's time span is a multiple of that
UPDATE_INTERVAL_SECONDS = 5


class GroupKind(Enum):
    GENERIC = "generic"
    KEY = "key"
    VALUE = "value"


class SimpleCounter(Counter):
    def __init__(self) -> None:
        self._count = 0

    def inc(self, n: int = 1) -> None:
        self._count += n

    def dec(self, n: int = 1) -> None:
        self._count -= n

    def get_count(self) -> int:
        return self._count


class MeterView(Meter):
    """Flink's MeterView: counts events, and its rate is the events of the last time span per second. The
    span is rounded down to a multiple of 5 s (at least 5 s), as Flink's. The reporter samples the count
    (`update(now)`); until a whole span has passed the rate is the events so far over the whole span, as
    Flink's (its window starts filled with zeros)."""

    def __init__(self, time_span_in_seconds: int = 60, clock: Callable[[], float] = time.monotonic) -> None:
        if isinstance(time_span_in_seconds, bool) or not isinstance(time_span_in_seconds, int) \
                or time_span_in_seconds <= 0:
            raise ValueError(f"time_span_in_seconds must be a positive whole number of seconds, "
                             f"not {time_span_in_seconds!r}")
        self.time_span_s = max(time_span_in_seconds - time_span_in_seconds % UPDATE_INTERVAL_SECONDS,
                               UPDATE_INTERVAL_SECONDS)
        self._count = 0
        self._window = SampleWindow(self.time_span_s)
        self._window.update(clock(), 0)

    def mark_event(self, value: int = 1) -> None:
        self._count += value

    def get_count(self) -> int:
        return self._count

    def update(self, now: float) -> None:
        """Sample the count at `now` (seconds, the clock this meter was made with)."""
        self._window.update(now, self._count)

    def get_rate(self) -> float:
        """Events per second over the last time span, as of the latest `update`."""
        increase, seconds = self._window.increase()
        return increase / max(seconds, float(self.time_span_s))


class SimpleDistribution(Distribution):
    """Count, sum, min and max of the values (mean = sum / count), as PyFlink's (Beam's) distribution."""

    def __init__(self) -> None:
        self.count = 0
        self.sum = 0
        self.min: int | float = math.inf
        self.max: int | float = -math.inf

    def update(self, value: int) -> None:
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise TypeError(f"a distribution takes numbers, not {type(value).__name__} {value!r}")
        self.count += 1
        self.sum += value
        if value < self.min:
            self.min = value
        if value > self.max:
            self.max = value

    @property
    def mean(self) -> float:
        return self.sum / self.count if self.count else 0.0


class GaugeMetric(Metric):
    """A registered gauge: the user's callable, called when the metrics are reported. A callable that raises
    or answers something other than a number is logged once and left out of the reports."""

    def __init__(self, owner: str, func: Callable[[], int]) -> None:
        self.owner = owner  # its identifier, for the log line
        self.func = func
        self._complained = False

    def value(self) -> int | float | None:
        try:
            value = self.func()
        except Exception:
            if not self._complained:
                self._complained = True
                logger.warning("Gauge %s raised; it is left out of the reports until it answers", self.owner,
                               exc_info=True)
            return None
        if isinstance(value, bool):
            return int(value)
        if not isinstance(value, numbers.Real):
            if not self._complained:
                self._complained = True
                logger.warning("Gauge %s answered %s %r, not a number; it is left out of the reports",
                               self.owner, type(value).__name__, value)
            return None
        return value


AnyMetric = Union[SimpleCounter, MeterView, SimpleDistribution, GaugeMetric]
M = TypeVar("M", SimpleCounter, MeterView, SimpleDistribution, GaugeMetric)
_KIND_NAMES = {SimpleCounter: "counter", MeterView: "meter", SimpleDistribution: "distribution",
               GaugeMetric: "gauge"}


@dataclass(frozen=True)
class ReportedValue:
    """One reported number of a user metric."""

    scope: tuple[str, ...]  # every group's name below the operator (key and value groups both), Flink's query scope
    logical_scope: tuple[str, ...]  # the generic and key groups' names (no values), Flink's logical scope
    variables: tuple[tuple[str, str], ...]  # the key/value groups' (key, value), outermost first
    name: str  # the metric's name, with _count/_sum/_min/_max/_mean for a meter's count and a distribution
    value: int | float


def _check_name(name: object, what: str) -> str:
    if not isinstance(name, str):
        raise TypeError(f"a {what} name must be a string, not {type(name).__name__} {name!r}")
    if not name.strip():
        raise ValueError(f"a {what} name must not be empty or blank (got {name!r})")
    return name


class GenericMetricGroup(MetricGroup):
    """A group of a task's metric tree (the root is an OperatorMetricGroup)."""

    def __init__(self, parent: GenericMetricGroup | None, name: str, kind: GroupKind, lock: threading.Lock,
                 scope_prefix: tuple[str, ...] = ()) -> None:
        self.parent = parent
        self.name = name
        self.kind = kind
        self._lock = lock
        self._scope_prefix: tuple[str, ...] = scope_prefix if parent is None else parent._scope_prefix
        self._groups: dict[str, GenericMetricGroup] = {}
        self._metrics: dict[str, AnyMetric] = {}

    # -- PyFlink's MetricGroup ----------------------------------------------------------------------

    def add_group(self, name: str, extra: str | None = None) -> MetricGroup:
        _check_name(name, "metric group")
        if extra is None:
            return self._add_group(name, GroupKind.GENERIC)
        _check_name(extra, "metric group value")
        return self._add_group(name, GroupKind.KEY)._add_group(extra, GroupKind.VALUE)

    def counter(self, name: str) -> Counter:
        return self._register(name, SimpleCounter())

    def gauge(self, name: str, obj: Callable[[], int]) -> None:
        if not callable(obj):
            raise TypeError(f"gauge {self.get_metric_identifier(_check_name(name, 'metric'))!r} needs a callable "
                            f"answering its value, not {type(obj).__name__} {obj!r}")
        self._register(name, GaugeMetric(self.get_metric_identifier(_check_name(name, "metric")), obj))

    def meter(self, name: str, time_span_in_seconds: int = 60) -> Meter:
        return self._register(name, MeterView(time_span_in_seconds))

    def distribution(self, name: str) -> Distribution:
        return self._register(name, SimpleDistribution())

    # -- Flink's scope and variables ----------------------------------------------------------------

    def get_scope_components(self) -> tuple[str, ...]:
        """The names from the root's scope down to this group (key and value groups both)."""
        return self._scope_prefix + self._scope()

    def get_all_variables(self) -> dict[str, str]:
        """The user variables of the key/value groups on the way here, as Flink's: `{"<key>": value}`."""
        return {f"<{key}>": value for key, value in self._variables()}

    def get_metric_identifier(self, metric_name: str) -> str:
        """The scope components and the metric's name, joined by '.' (Flink's getMetricIdentifier)."""
        return ".".join((*self.get_scope_components(), metric_name))

    # -- the tree -----------------------------------------------------------------------------------

    def _scope(self) -> tuple[str, ...]:
        if self.parent is None:
            return ()
        return (*self.parent._scope(), self.name)

    def _logical_scope(self) -> tuple[str, ...]:
        if self.parent is None:
            return ()
        parent = self.parent._logical_scope()
        return parent if self.kind is GroupKind.VALUE else (*parent, self.name)

    def _variables(self) -> tuple[tuple[str, str], ...]:
        if self.parent is None:
            return ()
        parent = self.parent._variables()
        return (*parent, (self.parent.name, self.name)) if self.kind is GroupKind.VALUE else parent

    def _add_group(self, name: str, kind: GroupKind) -> GenericMetricGroup:
        with self._lock:
            group = self._groups.get(name)
            if group is None:
                group = self._groups[name] = GenericMetricGroup(self, name, kind, self._lock)
            elif group.kind is not kind:
                raise ValueError(f"metric group {'.'.join(group.get_scope_components())!r} is a {group.kind.value} "
                                 f"group; it cannot be added again as a {kind.value} group "
                                 "(add_group(name) makes a plain group, add_group(key, value) a key/value pair)")
            return group

    def _register(self, name: str, metric: M) -> M:
        _check_name(name, "metric")
        with self._lock:
            existing = self._metrics.get(name)
            if existing is None:
                self._metrics[name] = metric
                return metric
        identifier = self.get_metric_identifier(name)
        if type(existing) is not type(metric):
            raise ValueError(f"metric {identifier!r} is already registered as a {_KIND_NAMES[type(existing)]}; "
                             f"a {_KIND_NAMES[type(metric)]} needs a name of its own")
        logger.warning("Name collision: metric %r is already registered; the first %s is kept and returned",
                       identifier, _KIND_NAMES[type(metric)])
        return existing

    def _walk(self) -> Iterator[tuple[GenericMetricGroup, str, AnyMetric]]:
        """Every metric of this group and its subgroups (the caller holds the lock)."""
        for name, metric in self._metrics.items():
            yield self, name, metric
        for group in self._groups.values():
            yield from group._walk()


class OperatorMetricGroup(GenericMetricGroup):
    """What `RuntimeContext.get_metrics_group()` answers: the group of one operator of one subtask."""

    def __init__(self, operator_name: str, chain_index: int, lock: threading.Lock) -> None:
        super().__init__(None, operator_name, GroupKind.GENERIC, lock, scope_prefix=(operator_name,))
        self.operator_name = operator_name
        self.chain_index = chain_index

    def update_meters(self, now: float) -> None:
        with self._lock:
            meters = [metric for _, _, metric in self._walk() if isinstance(metric, MeterView)]
        for meter in meters:
            meter.update(now)

    def reported(self) -> list[ReportedValue]:
        """Every number the metrics of this group report now (gauges are called: on the reporter's thread)."""
        with self._lock:
            entries = list(self._walk())
        values: list[ReportedValue] = []
        for group, name, metric in entries:
            scope, logical, variables = group._scope(), group._logical_scope(), group._variables()

            def add(metric_name: str, value: int | float) -> None:
                values.append(ReportedValue(scope, logical, variables, metric_name, value))

            if isinstance(metric, SimpleCounter):
                add(name, metric.get_count())
            elif isinstance(metric, GaugeMetric):
                value = metric.value()
                if value is not None:
                    add(name, value)
            elif isinstance(metric, MeterView):
                add(name, metric.get_rate())
                add(f"{name}_count", metric.get_count())
            else:
                count = metric.count  # read first: a value updated meanwhile shows in the next report
                add(f"{name}_count", count)
                add(f"{name}_sum", metric.sum)
                if count:
                    add(f"{name}_min", metric.min)
                    add(f"{name}_max", metric.max)
                    add(f"{name}_mean", metric.sum / count)
        return values


class TaskMetricGroup:
    """The metric groups of one subtask: one per operator of its chain that asked for one."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._operators: list[OperatorMetricGroup] = []

    def add_operator(self, operator_name: str, chain_index: int) -> OperatorMetricGroup:
        group = OperatorMetricGroup(operator_name, chain_index, self._lock)
        with self._lock:
            self._operators.append(group)
        return group

    def operators(self) -> list[OperatorMetricGroup]:
        with self._lock:
            return list(self._operators)

    def update_meters(self, now: float) -> None:
        for group in self.operators():
            group.update_meters(now)
