"""Windows, window assigners, triggers and evictors, named as in `pyflink.datastream.window` (evictors,
which PyFlink lacks, as in Flink's Java API with Python spelling).

Everything here is I/O-free: an assigner maps an element to windows, a trigger decides through a
`Trigger.TriggerContext` when a window fires, an evictor trims a window's elements. The window operator
(`ha_flink/runtime/operators/window.py`) owns the state and the timers these ask for.

`TimeWindow` is a tuple `(start, end)` underneath: windows are the keys of every window's state, and a
tuple's C-level hash and equality keep the per-record path of the window operator cheap."""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from enum import Enum
from typing import Any, Callable, Collection, Generic, Iterable, TypeVar

from ha_flink.common.time import to_milliseconds
from ha_flink.core.state import ReducingStateDescriptor, ValueStateDescriptor

__all__ = [
    "Window", "TimeWindow", "CountWindow", "GlobalWindow",
    "TimeWindowSerializer", "CountWindowSerializer", "GlobalWindowSerializer",
    "WindowAssigner", "MergingWindowAssigner", "SessionWindowTimeGapExtractor",
    "TumblingEventTimeWindows", "TumblingProcessingTimeWindows", "SlidingEventTimeWindows",
    "SlidingProcessingTimeWindows", "EventTimeSessionWindows", "ProcessingTimeSessionWindows",
    "DynamicEventTimeSessionWindows", "DynamicProcessingTimeSessionWindows", "GlobalWindows",
    "CountTumblingWindowAssigner", "CountSlidingWindowAssigner",
    "TriggerResult", "Trigger", "EventTimeTrigger", "ProcessingTimeTrigger", "ContinuousEventTimeTrigger",
    "ContinuousProcessingTimeTrigger", "NeverTrigger", "PurgingTrigger", "CountTrigger",
    "TimestampedValue", "Evictor", "CountEvictor", "TimeEvictor", "DeltaEvictor",
]

MAX_LONG_VALUE = 2**63 - 1
MIN_LONG_VALUE = -(2**63)

T = TypeVar("T")
W = TypeVar("W")
M = TypeVar("M")  # what a merge callback merges (windows)


# -- windows ------------------------------------------------------------------------------------------

class Window(ABC):
    """A finite bucket of elements. `max_timestamp()` is the last time an element of it can carry."""

    __slots__ = ()

    @abstractmethod
    def max_timestamp(self) -> int: ...


class TimeWindow(tuple, Window):
    """The time interval [start, end): start inclusive, end exclusive."""

    __slots__ = ()

    def __new__(cls, start: int, end: int) -> TimeWindow:
        return tuple.__new__(cls, (start, end))

    def __getnewargs__(self) -> tuple[int, int]:
        return (self[0], self[1])

    @property
    def start(self) -> int:
        return self[0]

    @property
    def end(self) -> int:
        return self[1]

    def max_timestamp(self) -> int:
        return self[1] - 1

    def intersects(self, other: TimeWindow) -> bool:
        """Whether the two windows overlap or touch (touching session windows merge, as in Flink)."""
        return self[0] <= other[1] and self[1] >= other[0]

    def cover(self, other: TimeWindow) -> TimeWindow:
        """The smallest window covering both."""
        return TimeWindow(min(self[0], other[0]), max(self[1], other[1]))

    @staticmethod
    def get_window_start_with_offset(timestamp: int, offset: int, window_size: int) -> int:
        """The start of the window of `window_size` (shifted by `offset`) that holds `timestamp`. Python's
        `%` floors, so negative timestamps land in the right window too (Flink's newer formula)."""
        return timestamp - (timestamp - offset) % window_size

    @staticmethod
    def merge_windows(windows: Iterable[TimeWindow], callback: MergingWindowAssigner.MergeCallback) -> None:
        """Calls `callback.merge(windows, result)` for every group of overlapping windows (of two or more)."""
        merged: list[tuple[TimeWindow, list[TimeWindow]]] = []
        current: TimeWindow | None = None
        group: list[TimeWindow] = []
        for candidate in sorted(windows):
            if current is None:
                current, group = candidate, [candidate]
            elif current.intersects(candidate):
                current = current.cover(candidate)
                group.append(candidate)
            else:
                merged.append((current, group))
                current, group = candidate, [candidate]
        if current is not None:
            merged.append((current, group))
        for result, members in merged:
            if len(members) > 1:
                callback.merge(members, result)

    def __repr__(self) -> str:
        return f"TimeWindow(start={self[0]}, end={self[1]})"


class CountWindow(Window):
    """A window of a count assigner, identified by a number."""

    __slots__ = ("id",)

    def __init__(self, id: int) -> None:  # noqa: A002 - PyFlink's parameter name
        self.id = id

    def max_timestamp(self) -> int:
        return MAX_LONG_VALUE

    def __eq__(self, other: object) -> bool:
        return type(other) is CountWindow and other.id == self.id

    def __hash__(self) -> int:
        return hash(("CountWindow", self.id))

    def __lt__(self, other: CountWindow) -> bool:
        return self.id < other.id

    def __reduce__(self) -> tuple[Any, ...]:
        return (CountWindow, (self.id,))

    def __repr__(self) -> str:
        return f"CountWindow(id={self.id})"


class GlobalWindow(Window):
    """The one window of `GlobalWindows`: every element of a key falls into it; it never ends."""

    __slots__ = ()

    @staticmethod
    def get() -> GlobalWindow:
        return _GLOBAL_WINDOW

    def max_timestamp(self) -> int:
        return MAX_LONG_VALUE

    def __eq__(self, other: object) -> bool:
        return type(other) is GlobalWindow

    def __hash__(self) -> int:
        return 0

    def __reduce__(self) -> tuple[Any, ...]:
        return (GlobalWindow, ())

    def __repr__(self) -> str:
        return "GlobalWindow"


_GLOBAL_WINDOW = GlobalWindow()


class _PickledWindowSerializer:
    """PyFlink's window serializers exist so that custom assigners can return one; windows here travel
    and sit in state pickled, so these only name the type."""

    def serialize(self, element: Any, stream: Any) -> None:
        import pickle

        stream.write(pickle.dumps(element, protocol=5))

    def deserialize(self, stream: Any) -> Any:
        import pickle

        return pickle.load(stream)


class TimeWindowSerializer(_PickledWindowSerializer):
    pass


class CountWindowSerializer(_PickledWindowSerializer):
    pass


class GlobalWindowSerializer(_PickledWindowSerializer):
    pass


# -- triggers -----------------------------------------------------------------------------------------

class TriggerResult(Enum):
    """What a trigger decides for a window: (fire, purge). FIRE evaluates the window and keeps its
    contents; PURGE drops the contents; a fire on an empty window emits nothing."""

    CONTINUE = (False, False)
    FIRE_AND_PURGE = (True, True)
    FIRE = (True, False)
    PURGE = (False, True)

    def is_fire(self) -> bool:
        return self.value[0]

    def is_purge(self) -> bool:
        return self.value[1]


class Trigger(ABC, Generic[T, W]):
    """Decides when a pane (the elements of one key and one window) is evaluated. A trigger keeps no
    state of its own: it uses `ctx.get_partitioned_state(descriptor)` (scoped to key and window) and the
    context's timers. With a merging assigner it must return True from `can_merge` and implement
    `on_merge`."""

    class TriggerContext(ABC):
        @abstractmethod
        def get_current_processing_time(self) -> int: ...

        def get_metric_group(self) -> Any:
            return None  # metrics are not exposed to triggers here

        @abstractmethod
        def get_current_watermark(self) -> int: ...

        @abstractmethod
        def register_processing_time_timer(self, time: int) -> None: ...

        @abstractmethod
        def register_event_time_timer(self, time: int) -> None: ...

        @abstractmethod
        def delete_processing_time_timer(self, time: int) -> None: ...

        @abstractmethod
        def delete_event_time_timer(self, time: int) -> None: ...

        @abstractmethod
        def get_partitioned_state(self, state_descriptor: Any) -> Any:
            """State scoped to the current key and window (value, list, map, reducing or aggregating)."""

    class OnMergeContext(TriggerContext):
        @abstractmethod
        def merge_partitioned_state(self, state_descriptor: Any) -> None:
            """Folds the merged windows' state of `state_descriptor` into the resulting window's."""

    @abstractmethod
    def on_element(self, element: T, timestamp: int, window: W, ctx: Trigger.TriggerContext) -> TriggerResult:
        ...

    @abstractmethod
    def on_processing_time(self, time: int, window: W, ctx: Trigger.TriggerContext) -> TriggerResult: ...

    @abstractmethod
    def on_event_time(self, time: int, window: W, ctx: Trigger.TriggerContext) -> TriggerResult: ...

    def can_merge(self) -> bool:
        return False

    def on_merge(self, window: W, ctx: Trigger.OnMergeContext) -> None:
        raise NotImplementedError(f"{type(self).__name__} does not support merging windows")

    @abstractmethod
    def clear(self, window: W, ctx: Trigger.TriggerContext) -> None:
        """The window is gone: delete its timers and partitioned state."""


class EventTimeTrigger(Trigger[T, TimeWindow]):
    """Fires once the watermark passes the window's end (at once for an element of a window the watermark
    already passed: a late firing within the allowed lateness)."""

    def on_element(self, element: Any, timestamp: int, window: TimeWindow,
                   ctx: Trigger.TriggerContext) -> TriggerResult:
        if window.max_timestamp() <= ctx.get_current_watermark():
            return TriggerResult.FIRE
        ctx.register_event_time_timer(window.max_timestamp())
        return TriggerResult.CONTINUE

    def on_processing_time(self, time: int, window: TimeWindow, ctx: Trigger.TriggerContext) -> TriggerResult:
        return TriggerResult.CONTINUE

    def on_event_time(self, time: int, window: TimeWindow, ctx: Trigger.TriggerContext) -> TriggerResult:
        return TriggerResult.FIRE if time == window.max_timestamp() else TriggerResult.CONTINUE

    def can_merge(self) -> bool:
        return True

    def on_merge(self, window: TimeWindow, ctx: Trigger.OnMergeContext) -> None:
        if window.max_timestamp() > ctx.get_current_watermark():
            ctx.register_event_time_timer(window.max_timestamp())

    def clear(self, window: TimeWindow, ctx: Trigger.TriggerContext) -> None:
        ctx.delete_event_time_timer(window.max_timestamp())

    @staticmethod
    def create() -> EventTimeTrigger:
        return EventTimeTrigger()

    def __repr__(self) -> str:
        return "EventTimeTrigger()"


class ProcessingTimeTrigger(Trigger[T, TimeWindow]):
    """Fires once the wall clock passes the window's end."""

    def on_element(self, element: Any, timestamp: int, window: TimeWindow,
                   ctx: Trigger.TriggerContext) -> TriggerResult:
        ctx.register_processing_time_timer(window.max_timestamp())
        return TriggerResult.CONTINUE

    def on_processing_time(self, time: int, window: TimeWindow, ctx: Trigger.TriggerContext) -> TriggerResult:
        return TriggerResult.FIRE

    def on_event_time(self, time: int, window: TimeWindow, ctx: Trigger.TriggerContext) -> TriggerResult:
        return TriggerResult.CONTINUE

    def can_merge(self) -> bool:
        return True

    def on_merge(self, window: TimeWindow, ctx: Trigger.OnMergeContext) -> None:
        if window.max_timestamp() > ctx.get_current_processing_time():
            ctx.register_processing_time_timer(window.max_timestamp())

    def clear(self, window: TimeWindow, ctx: Trigger.TriggerContext) -> None:
        ctx.delete_processing_time_timer(window.max_timestamp())

    @staticmethod
    def create() -> ProcessingTimeTrigger:
        return ProcessingTimeTrigger()

    def __repr__(self) -> str:
        return "ProcessingTimeTrigger()"


class _Continuous(Trigger[T, TimeWindow]):
    """Shared by the continuous triggers: fire every `interval` (and at the window's end), keeping the next
    firing time in partitioned state."""

    def __init__(self, interval: int) -> None:
        if interval <= 0:
            raise ValueError(f"{type(self).__name__} needs a positive interval, got {interval} ms")
        self.interval = interval
        self.state_desc = ReducingStateDescriptor("fire-time", min)

    def register_next_fire_timestamp(self, time: int, window: TimeWindow, ctx: Trigger.TriggerContext,
                                     fire_timestamp_state: Any) -> None:
        next_fire = min(time + self.interval, window.max_timestamp())
        fire_timestamp_state.add(next_fire)
        self._register(ctx, next_fire)

    def _register(self, ctx: Trigger.TriggerContext, time: int) -> None:
        raise NotImplementedError

    def can_merge(self) -> bool:
        return True

    def on_merge(self, window: TimeWindow, ctx: Trigger.OnMergeContext) -> None:
        ctx.merge_partitioned_state(self.state_desc)
        next_fire = ctx.get_partitioned_state(self.state_desc).get()
        if next_fire is not None:
            self._register(ctx, next_fire)

    def __repr__(self) -> str:
        return f"{type(self).__name__}.of({self.interval} ms)"


class ContinuousEventTimeTrigger(_Continuous[T]):
    """Fires every `interval` of event time, and when the watermark passes the window's end."""

    @staticmethod
    def of(interval: Any) -> ContinuousEventTimeTrigger:
        return ContinuousEventTimeTrigger(to_milliseconds(interval, "interval"))

    def _register(self, ctx: Trigger.TriggerContext, time: int) -> None:
        ctx.register_event_time_timer(time)

    def on_element(self, element: Any, timestamp: int, window: TimeWindow,
                   ctx: Trigger.TriggerContext) -> TriggerResult:
        if window.max_timestamp() <= ctx.get_current_watermark():
            return TriggerResult.FIRE
        ctx.register_event_time_timer(window.max_timestamp())
        state = ctx.get_partitioned_state(self.state_desc)
        if state.get() is None:
            self.register_next_fire_timestamp(timestamp - timestamp % self.interval, window, ctx, state)
        return TriggerResult.CONTINUE

    def on_processing_time(self, time: int, window: TimeWindow, ctx: Trigger.TriggerContext) -> TriggerResult:
        return TriggerResult.CONTINUE

    def on_event_time(self, time: int, window: TimeWindow, ctx: Trigger.TriggerContext) -> TriggerResult:
        if time == window.max_timestamp():
            return TriggerResult.FIRE
        state = ctx.get_partitioned_state(self.state_desc)
        fire_time = state.get()
        if fire_time is not None and fire_time == time:
            state.clear()
            self.register_next_fire_timestamp(time, window, ctx, state)
            return TriggerResult.FIRE
        return TriggerResult.CONTINUE

    def clear(self, window: TimeWindow, ctx: Trigger.TriggerContext) -> None:
        state = ctx.get_partitioned_state(self.state_desc)
        fire_time = state.get()
        if fire_time is not None:
            ctx.delete_event_time_timer(fire_time)
            state.clear()


class ContinuousProcessingTimeTrigger(_Continuous[T]):
    """Fires every `interval` of wall-clock time."""

    @staticmethod
    def of(interval: Any) -> ContinuousProcessingTimeTrigger:
        return ContinuousProcessingTimeTrigger(to_milliseconds(interval, "interval"))

    def _register(self, ctx: Trigger.TriggerContext, time: int) -> None:
        ctx.register_processing_time_timer(time)

    def on_element(self, element: Any, timestamp: int, window: TimeWindow,
                   ctx: Trigger.TriggerContext) -> TriggerResult:
        state = ctx.get_partitioned_state(self.state_desc)
        now = ctx.get_current_processing_time()
        if state.get() is None:
            self.register_next_fire_timestamp(now - now % self.interval, window, ctx, state)
        return TriggerResult.CONTINUE

    def on_processing_time(self, time: int, window: TimeWindow, ctx: Trigger.TriggerContext) -> TriggerResult:
        state = ctx.get_partitioned_state(self.state_desc)
        if state.get() == time:
            state.clear()
            self.register_next_fire_timestamp(time, window, ctx, state)
            return TriggerResult.FIRE
        return TriggerResult.CONTINUE

    def on_event_time(self, time: int, window: TimeWindow, ctx: Trigger.TriggerContext) -> TriggerResult:
        return TriggerResult.CONTINUE

    def clear(self, window: TimeWindow, ctx: Trigger.TriggerContext) -> None:
        state = ctx.get_partitioned_state(self.state_desc)
        fire_time = state.get()
        if fire_time is not None:
            ctx.delete_processing_time_timer(fire_time)
            state.clear()


class NeverTrigger(Trigger[T, GlobalWindow]):
    """Never fires: the default trigger of `GlobalWindows`."""

    def on_element(self, element: Any, timestamp: int, window: GlobalWindow,
                   ctx: Trigger.TriggerContext) -> TriggerResult:
        return TriggerResult.CONTINUE

    def on_processing_time(self, time: int, window: GlobalWindow, ctx: Trigger.TriggerContext) -> TriggerResult:
        return TriggerResult.CONTINUE

    def on_event_time(self, time: int, window: GlobalWindow, ctx: Trigger.TriggerContext) -> TriggerResult:
        return TriggerResult.CONTINUE

    def can_merge(self) -> bool:
        return True

    def on_merge(self, window: GlobalWindow, ctx: Trigger.OnMergeContext) -> None:
        pass

    def clear(self, window: GlobalWindow, ctx: Trigger.TriggerContext) -> None:
        pass

    def __repr__(self) -> str:
        return "NeverTrigger()"


class PurgingTrigger(Trigger[T, Window]):
    """Turns every FIRE of the nested trigger into FIRE_AND_PURGE."""

    def __init__(self, nested_trigger: Trigger) -> None:
        self.nested_trigger = nested_trigger

    @staticmethod
    def of(nested_trigger: Trigger) -> PurgingTrigger:
        return PurgingTrigger(nested_trigger)

    @staticmethod
    def _purging(result: TriggerResult) -> TriggerResult:
        return TriggerResult.FIRE_AND_PURGE if result.is_fire() else result

    def on_element(self, element: Any, timestamp: int, window: Window, ctx: Trigger.TriggerContext) -> TriggerResult:
        return self._purging(self.nested_trigger.on_element(element, timestamp, window, ctx))

    def on_event_time(self, time: int, window: Window, ctx: Trigger.TriggerContext) -> TriggerResult:
        return self._purging(self.nested_trigger.on_event_time(time, window, ctx))

    def on_processing_time(self, time: int, window: Window, ctx: Trigger.TriggerContext) -> TriggerResult:
        return self._purging(self.nested_trigger.on_processing_time(time, window, ctx))

    def clear(self, window: Window, ctx: Trigger.TriggerContext) -> None:
        self.nested_trigger.clear(window, ctx)

    def can_merge(self) -> bool:
        return self.nested_trigger.can_merge()

    def on_merge(self, window: Window, ctx: Trigger.OnMergeContext) -> None:
        self.nested_trigger.on_merge(window, ctx)

    def __repr__(self) -> str:
        return f"PurgingTrigger({self.nested_trigger!r})"


def _add(a: int, b: int) -> int:
    return a + b


class CountTrigger(Trigger[T, Window]):
    """Fires every time the pane has collected `window_size` more elements."""

    def __init__(self, window_size: int) -> None:
        if window_size <= 0:
            raise ValueError(f"CountTrigger needs a positive count, got {window_size}")
        self._window_size = window_size
        self._count_state_descriptor = ReducingStateDescriptor("count", _add)

    @staticmethod
    def of(window_size: int) -> CountTrigger:
        return CountTrigger(window_size)

    def on_element(self, element: Any, timestamp: int, window: Window, ctx: Trigger.TriggerContext) -> TriggerResult:
        count = ctx.get_partitioned_state(self._count_state_descriptor)
        count.add(1)
        if count.get() >= self._window_size:
            count.clear()
            return TriggerResult.FIRE
        return TriggerResult.CONTINUE

    def on_processing_time(self, time: int, window: Window, ctx: Trigger.TriggerContext) -> TriggerResult:
        return TriggerResult.CONTINUE

    def on_event_time(self, time: int, window: Window, ctx: Trigger.TriggerContext) -> TriggerResult:
        return TriggerResult.CONTINUE

    def can_merge(self) -> bool:
        return True

    def on_merge(self, window: Window, ctx: Trigger.OnMergeContext) -> None:
        ctx.merge_partitioned_state(self._count_state_descriptor)

    def clear(self, window: Window, ctx: Trigger.TriggerContext) -> None:
        ctx.get_partitioned_state(self._count_state_descriptor).clear()

    def __repr__(self) -> str:
        return f"CountTrigger({self._window_size})"


# -- assigners ----------------------------------------------------------------------------------------

class WindowAssigner(ABC, Generic[T, W]):
    """Assigns zero or more windows to an element."""

    class WindowAssignerContext(ABC):
        @abstractmethod
        def get_current_processing_time(self) -> int: ...

        @abstractmethod
        def get_runtime_context(self) -> Any: ...

    @abstractmethod
    def assign_windows(self, element: T, timestamp: int,
                       context: WindowAssigner.WindowAssignerContext) -> Collection[W]: ...

    @abstractmethod
    def get_default_trigger(self, env: Any) -> Trigger[T, W]: ...

    def get_window_serializer(self) -> Any:
        return None

    @abstractmethod
    def is_event_time(self) -> bool: ...


class MergingWindowAssigner(WindowAssigner[T, W]):
    """An assigner whose windows may merge (sessions)."""

    class MergeCallback(ABC, Generic[M]):
        @abstractmethod
        def merge(self, to_be_merged: Iterable[M], merge_result: M) -> None: ...

    @abstractmethod
    def merge_windows(self, windows: Iterable[W], callback: MergingWindowAssigner.MergeCallback) -> None: ...


class SessionWindowTimeGapExtractor(ABC):
    """Gives the session gap (ms) that follows an element, for dynamic session windows."""

    @abstractmethod
    def extract(self, element: Any) -> int: ...


_NO_TIMESTAMP = ("Record has Java Long.MIN_VALUE timestamp (= no timestamp marker). Is the time characteristic "
                 "set to 'ProcessingTime', or did you forget to call "
                 "'data_stream.assign_timestamps_and_watermarks(...)'?")


class TumblingEventTimeWindows(WindowAssigner[T, TimeWindow]):
    """Windows of `size` by the elements' timestamps, not overlapping (starts shifted by `offset`)."""

    def __init__(self, size: int, offset: int = 0) -> None:
        if size <= 0 or abs(offset) >= size:
            raise ValueError("TumblingEventTimeWindows parameters must satisfy abs(offset) < size and size > 0, "
                             f"got size {size} ms, offset {offset} ms")
        self._size = size
        self._offset = offset

    @staticmethod
    def of(size: Any, offset: Any = None) -> TumblingEventTimeWindows:
        return TumblingEventTimeWindows(to_milliseconds(size, "size"), 0 if offset is None else to_milliseconds(offset, "offset"))

    def assign_windows(self, element: Any, timestamp: int, context: Any) -> Collection[TimeWindow]:
        if timestamp is None or timestamp <= MIN_LONG_VALUE:
            raise ValueError(_NO_TIMESTAMP)
        start = TimeWindow.get_window_start_with_offset(timestamp, self._offset, self._size)
        return [TimeWindow(start, start + self._size)]

    def get_default_trigger(self, env: Any = None) -> Trigger:
        return EventTimeTrigger()

    def get_window_serializer(self) -> Any:
        return TimeWindowSerializer()

    def is_event_time(self) -> bool:
        return True

    def __repr__(self) -> str:
        return f"TumblingEventTimeWindows({self._size}, {self._offset})"


class TumblingProcessingTimeWindows(WindowAssigner[T, TimeWindow]):
    """Windows of `size` by the operator's wall clock, not overlapping."""

    def __init__(self, size: int, offset: int = 0) -> None:
        if size <= 0 or abs(offset) >= size:
            raise ValueError("TumblingProcessingTimeWindows parameters must satisfy abs(offset) < size and "
                             f"size > 0, got size {size} ms, offset {offset} ms")
        self._size = size
        self._offset = offset

    @staticmethod
    def of(size: Any, offset: Any = None) -> TumblingProcessingTimeWindows:
        return TumblingProcessingTimeWindows(to_milliseconds(size, "size"),
                                             0 if offset is None else to_milliseconds(offset, "offset"))

    def assign_windows(self, element: Any, timestamp: int, context: Any) -> Collection[TimeWindow]:
        now = context.get_current_processing_time()
        start = TimeWindow.get_window_start_with_offset(now, self._offset, self._size)
        return [TimeWindow(start, start + self._size)]

    def get_default_trigger(self, env: Any = None) -> Trigger:
        return ProcessingTimeTrigger()

    def get_window_serializer(self) -> Any:
        return TimeWindowSerializer()

    def is_event_time(self) -> bool:
        return False

    def __repr__(self) -> str:
        return f"TumblingProcessingTimeWindows({self._size}, {self._offset})"


def _sliding(timestamp: int, size: int, slide: int, offset: int) -> list[TimeWindow]:
    last_start = TimeWindow.get_window_start_with_offset(timestamp, offset, slide)
    return [TimeWindow(start, start + size) for start in range(last_start, timestamp - size, -slide)]


class SlidingEventTimeWindows(WindowAssigner[T, TimeWindow]):
    """Windows of `size` every `slide` by the elements' timestamps (an element is in size/slide of them)."""

    def __init__(self, size: int, slide: int, offset: int = 0) -> None:
        if abs(offset) >= slide or size <= 0 or slide <= 0:
            raise ValueError("SlidingEventTimeWindows parameters must satisfy abs(offset) < slide and size > 0, "
                             f"got size {size} ms, slide {slide} ms, offset {offset} ms")
        self._size = size
        self._slide = slide
        self._offset = offset
        self._pane_size = math.gcd(size, slide)

    @staticmethod
    def of(size: Any, slide: Any, offset: Any = None) -> SlidingEventTimeWindows:
        return SlidingEventTimeWindows(to_milliseconds(size, "size"), to_milliseconds(slide, "slide"),
                                       0 if offset is None else to_milliseconds(offset, "offset"))

    def assign_windows(self, element: Any, timestamp: int, context: Any) -> Collection[TimeWindow]:
        if timestamp is None or timestamp <= MIN_LONG_VALUE:
            raise ValueError(_NO_TIMESTAMP)
        return _sliding(timestamp, self._size, self._slide, self._offset)

    def get_default_trigger(self, env: Any = None) -> Trigger:
        return EventTimeTrigger()

    def get_window_serializer(self) -> Any:
        return TimeWindowSerializer()

    def is_event_time(self) -> bool:
        return True

    def __repr__(self) -> str:
        return f"SlidingEventTimeWindows({self._size}, {self._slide}, {self._offset})"


class SlidingProcessingTimeWindows(WindowAssigner[T, TimeWindow]):
    """Windows of `size` every `slide` by the operator's wall clock."""

    def __init__(self, size: int, slide: int, offset: int = 0) -> None:
        if abs(offset) >= slide or size <= 0 or slide <= 0:
            raise ValueError("SlidingProcessingTimeWindows parameters must satisfy abs(offset) < slide and "
                             f"size > 0, got size {size} ms, slide {slide} ms, offset {offset} ms")
        self._size = size
        self._slide = slide
        self._offset = offset
        self._pane_size = math.gcd(size, slide)

    @staticmethod
    def of(size: Any, slide: Any, offset: Any = None) -> SlidingProcessingTimeWindows:
        return SlidingProcessingTimeWindows(to_milliseconds(size, "size"), to_milliseconds(slide, "slide"),
                                            0 if offset is None else to_milliseconds(offset, "offset"))

    def assign_windows(self, element: Any, timestamp: int, context: Any) -> Collection[TimeWindow]:
        return _sliding(context.get_current_processing_time(), self._size, self._slide, self._offset)

    def get_default_trigger(self, env: Any = None) -> Trigger:
        return ProcessingTimeTrigger()

    def get_window_serializer(self) -> Any:
        return TimeWindowSerializer()

    def is_event_time(self) -> bool:
        return False

    def __repr__(self) -> str:
        return f"SlidingProcessingTimeWindows({self._size}, {self._slide}, {self._offset})"


class _Sessions(MergingWindowAssigner[T, TimeWindow]):
    """Sessions: each element opens [t, t + gap); overlapping or touching windows merge."""

    event_time = True

    def __init__(self, session_gap: int = 0, extractor: Any = None) -> None:
        if extractor is None and session_gap <= 0:
            raise ValueError(f"{type(self).__name__} parameters must satisfy 0 < gap, got {session_gap} ms")
        self._session_gap = session_gap
        self._extractor = extractor

    def _gap(self, element: Any) -> int:
        if self._extractor is None:
            return self._session_gap
        extract = self._extractor.extract if hasattr(self._extractor, "extract") else self._extractor
        gap = to_milliseconds(extract(element), "the session gap")
        if gap <= 0:
            raise ValueError(f"Dynamic session time gap must satisfy 0 < gap, got {gap} ms for {element!r}")
        return gap

    def _time(self, timestamp: int, context: Any) -> int:
        if not self.event_time:
            return context.get_current_processing_time()
        if timestamp is None or timestamp <= MIN_LONG_VALUE:
            raise ValueError(_NO_TIMESTAMP)
        return timestamp

    def assign_windows(self, element: Any, timestamp: int, context: Any) -> Collection[TimeWindow]:
        start = self._time(timestamp, context)
        return [TimeWindow(start, start + self._gap(element))]

    def merge_windows(self, windows: Iterable[TimeWindow], callback: MergingWindowAssigner.MergeCallback) -> None:
        TimeWindow.merge_windows(windows, callback)

    def get_default_trigger(self, env: Any = None) -> Trigger:
        return EventTimeTrigger() if self.event_time else ProcessingTimeTrigger()

    def get_window_serializer(self) -> Any:
        return TimeWindowSerializer()

    def is_event_time(self) -> bool:
        return self.event_time

    def __repr__(self) -> str:
        gap = "dynamic" if self._extractor is not None else self._session_gap
        return f"{type(self).__name__}({gap})"


class EventTimeSessionWindows(_Sessions[T]):
    @staticmethod
    def with_gap(size: Any) -> EventTimeSessionWindows:
        return EventTimeSessionWindows(to_milliseconds(size, "the session gap"))

    @staticmethod
    def with_dynamic_gap(extractor: SessionWindowTimeGapExtractor | Callable[[Any], int]
                         ) -> DynamicEventTimeSessionWindows:
        return DynamicEventTimeSessionWindows(extractor)


class ProcessingTimeSessionWindows(_Sessions[T]):
    event_time = False

    @staticmethod
    def with_gap(size: Any) -> ProcessingTimeSessionWindows:
        return ProcessingTimeSessionWindows(to_milliseconds(size, "the session gap"))

    @staticmethod
    def with_dynamic_gap(extractor: SessionWindowTimeGapExtractor | Callable[[Any], int]
                         ) -> DynamicProcessingTimeSessionWindows:
        return DynamicProcessingTimeSessionWindows(extractor)


class DynamicEventTimeSessionWindows(_Sessions[T]):
    """Event-time sessions whose gap after each element is `extractor.extract(element)` ms."""

    def __init__(self, session_window_time_gap_extractor: Any) -> None:
        super().__init__(0, session_window_time_gap_extractor)

    @staticmethod
    def with_dynamic_gap(extractor: Any) -> DynamicEventTimeSessionWindows:
        return DynamicEventTimeSessionWindows(extractor)


class DynamicProcessingTimeSessionWindows(_Sessions[T]):
    event_time = False

    def __init__(self, session_window_time_gap_extractor: Any) -> None:
        super().__init__(0, session_window_time_gap_extractor)

    @staticmethod
    def with_dynamic_gap(extractor: Any) -> DynamicProcessingTimeSessionWindows:
        return DynamicProcessingTimeSessionWindows(extractor)


class GlobalWindows(WindowAssigner[T, GlobalWindow]):
    """Every element of a key in one window that never ends; it fires only by a custom trigger."""

    def assign_windows(self, element: Any, timestamp: int, context: Any) -> Collection[GlobalWindow]:
        return [_GLOBAL_WINDOW]

    @staticmethod
    def create() -> GlobalWindows:
        return GlobalWindows()

    def get_default_trigger(self, env: Any = None) -> Trigger:
        return NeverTrigger()

    def get_window_serializer(self) -> Any:
        return GlobalWindowSerializer()

    def is_event_time(self) -> bool:
        return False

    def __repr__(self) -> str:
        return "GlobalWindows()"


class CountTumblingWindowAssigner(WindowAssigner[T, CountWindow]):
    """PyFlink's count assigner: element n of a key goes to CountWindow(n // size). (`count_window` uses
    GlobalWindows with a count trigger instead, as Flink's Java API does.)"""

    def __init__(self, window_size: int) -> None:
        if window_size <= 0:
            raise ValueError(f"count windows need a positive size, got {window_size}")
        self._window_size = window_size
        self._count_descriptor = ValueStateDescriptor("tumble-count-assigner")

    @staticmethod
    def of(window_size: int) -> CountTumblingWindowAssigner:
        return CountTumblingWindowAssigner(window_size)

    def assign_windows(self, element: Any, timestamp: int, context: Any) -> Collection[CountWindow]:
        count_state = context.get_runtime_context().get_state(self._count_descriptor)
        count = count_state.value() or 0
        count_state.update(count + 1)
        return [CountWindow(count // self._window_size)]

    def get_default_trigger(self, env: Any = None) -> Trigger:
        return PurgingTrigger(CountTrigger(self._window_size))

    def get_window_serializer(self) -> Any:
        return CountWindowSerializer()

    def is_event_time(self) -> bool:
        return False

    def __repr__(self) -> str:
        return f"CountTumblingWindowAssigner({self._window_size})"


class CountSlidingWindowAssigner(WindowAssigner[T, CountWindow]):
    """PyFlink's sliding count assigner: window k holds elements k*slide .. k*slide + size - 1 of a key and
    fires when full."""

    def __init__(self, window_size: int, window_slide: int) -> None:
        if window_size <= 0 or window_slide <= 0:
            raise ValueError(f"count windows need a positive size and slide, got {window_size}, {window_slide}")
        self._window_size = window_size
        self._window_slide = window_slide
        self._count_descriptor = ValueStateDescriptor("slide-count-assigner")

    @staticmethod
    def of(window_size: int, window_slide: int) -> CountSlidingWindowAssigner:
        return CountSlidingWindowAssigner(window_size, window_slide)

    def assign_windows(self, element: Any, timestamp: int, context: Any) -> Collection[CountWindow]:
        count_state = context.get_runtime_context().get_state(self._count_descriptor)
        count = count_state.value() or 0
        count_state.update(count + 1)
        last_id = count // self._window_slide
        windows = []
        while last_id >= 0 and last_id * self._window_slide <= count <= last_id * self._window_slide + \
                self._window_size - 1:
            windows.append(CountWindow(last_id))
            last_id -= 1
        return windows

    def get_default_trigger(self, env: Any = None) -> Trigger:
        return PurgingTrigger(CountTrigger(self._window_size))

    def get_window_serializer(self) -> Any:
        return CountWindowSerializer()

    def is_event_time(self) -> bool:
        return False

    def __repr__(self) -> str:
        return f"CountSlidingWindowAssigner({self._window_size}, {self._window_slide})"


# -- evictors -----------------------------------------------------------------------------------------

class TimestampedValue:
    """An element of a window with its timestamp, as evictors see it."""

    __slots__ = ("value", "timestamp")

    def __init__(self, value: Any, timestamp: int | None = None) -> None:
        self.value = value
        self.timestamp = timestamp

    def get_value(self) -> Any:
        return self.value

    def get_timestamp(self) -> int:
        if self.timestamp is None:
            raise ValueError(f"{self.value!r} has no timestamp")
        return self.timestamp

    def has_timestamp(self) -> bool:
        return self.timestamp is not None

    def __repr__(self) -> str:
        return f"TimestampedValue({self.value!r}, {self.timestamp})"


class Evictor(ABC, Generic[T, W]):
    """Removes elements from a fired window before and/or after the window function runs (Flink's
    Evictor). `elements` is a list of TimestampedValue, oldest first; remove from it in place (`del
    elements[:n]`, `elements.remove(x)`) as Java's evictors call `iterator.remove()`. What remains is the
    window's contents afterwards. A window with an evictor keeps every element: no pre-aggregation."""

    class EvictorContext(ABC):
        @abstractmethod
        def get_current_processing_time(self) -> int: ...

        def get_metric_group(self) -> Any:
            return None

        @abstractmethod
        def get_current_watermark(self) -> int: ...

    @abstractmethod
    def evict_before(self, elements: list[TimestampedValue], size: int, window: W,
                     evictor_context: Evictor.EvictorContext) -> None: ...

    @abstractmethod
    def evict_after(self, elements: list[TimestampedValue], size: int, window: W,
                    evictor_context: Evictor.EvictorContext) -> None: ...


class _BeforeOrAfter(Evictor[Any, Window]):
    def __init__(self, do_evict_after: bool) -> None:
        self.do_evict_after = do_evict_after

    def evict_before(self, elements: list[TimestampedValue], size: int, window: Window,
                     evictor_context: Evictor.EvictorContext) -> None:
        if not self.do_evict_after:
            self._evict(elements, size, evictor_context)

    def evict_after(self, elements: list[TimestampedValue], size: int, window: Window,
                    evictor_context: Evictor.EvictorContext) -> None:
        if self.do_evict_after:
            self._evict(elements, size, evictor_context)

    def _evict(self, elements: list[TimestampedValue], size: int, ctx: Evictor.EvictorContext) -> None:
        raise NotImplementedError


class CountEvictor(_BeforeOrAfter):
    """Keeps the last `max_count` elements of the window."""

    def __init__(self, max_count: int, do_evict_after: bool = False) -> None:
        super().__init__(do_evict_after)
        if max_count <= 0:
            raise ValueError(f"CountEvictor needs a positive count, got {max_count}")
        self.max_count = max_count

    @staticmethod
    def of(max_count: int, do_evict_after: bool = False) -> CountEvictor:
        return CountEvictor(max_count, do_evict_after)

    def _evict(self, elements: list[TimestampedValue], size: int, ctx: Evictor.EvictorContext) -> None:
        if size > self.max_count:
            del elements[:size - self.max_count]

    def __repr__(self) -> str:
        return f"CountEvictor({self.max_count})"


class TimeEvictor(_BeforeOrAfter):
    """Keeps the elements newer than (the newest element's timestamp - `window_size`)."""

    def __init__(self, window_size: int, do_evict_after: bool = False) -> None:
        super().__init__(do_evict_after)
        self.window_size = window_size

    @staticmethod
    def of(window_size: Any, do_evict_after: bool = False) -> TimeEvictor:
        return TimeEvictor(to_milliseconds(window_size, "window_size"), do_evict_after)

    def _evict(self, elements: list[TimestampedValue], size: int, ctx: Evictor.EvictorContext) -> None:
        if not elements or not elements[0].has_timestamp():
            return
        cutoff = max(e.timestamp for e in elements if e.timestamp is not None) - self.window_size
        elements[:] = [e for e in elements if e.timestamp is None or e.timestamp > cutoff]

    def __repr__(self) -> str:
        return f"TimeEvictor({self.window_size})"


class DeltaEvictor(_BeforeOrAfter):
    """Drops the elements whose `delta_function(element, last element)` is >= `threshold`."""

    def __init__(self, threshold: float, delta_function: Any, do_evict_after: bool = False) -> None:
        super().__init__(do_evict_after)
        self.threshold = threshold
        self.delta_function = delta_function

    @staticmethod
    def of(threshold: float, delta_function: Any, do_evict_after: bool = False) -> DeltaEvictor:
        return DeltaEvictor(threshold, delta_function, do_evict_after)

    def _evict(self, elements: list[TimestampedValue], size: int, ctx: Evictor.EvictorContext) -> None:
        if not elements:
            return
        delta = getattr(self.delta_function, "get_delta", self.delta_function)
        last = elements[-1].value
        elements[:] = [e for e in elements if delta(e.value, last) < self.threshold]

    def __repr__(self) -> str:
        return f"DeltaEvictor({self.threshold})"
