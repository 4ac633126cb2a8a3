"""`WindowedStream` (`keyed_stream.window(assigner)`, `count_window`) and `AllWindowedStream`
(`data_stream.window_all(assigner)`, `count_window_all`), shaped like PyFlink's: set the trigger, evictor,
allowed lateness and late-data side output, then reduce, aggregate, apply or process. Each of those adds a
window operator (`ha_flink/runtime/operators/window.py`) on the keyed stream and returns its output stream.

An AllWindowedStream keys every record by one constant key and runs its window operator at parallelism 1:
one subtask computes the windows of the whole stream, as Flink's windowAll."""

from __future__ import annotations

import types
from typing import TYPE_CHECKING, Any, Callable

from ha_flink.common.time import to_milliseconds
from ha_flink.datastream.data_stream import DataStream
from ha_flink.core.functions import (
    AggregateFunction, AllWindowFunction, ProcessAllWindowFunction, ProcessWindowFunction, ReduceFunction,
    WindowFunction,
)
from ha_flink.core.output_tag import OutputTag
from ha_flink.core.window import (
    CountEvictor, CountTrigger, Evictor, GlobalWindows, MergingWindowAssigner, PurgingTrigger, Trigger,
    WindowAssigner,
)
from ha_flink.runtime.operators.window import AGGREGATE, LIST, REDUCE, WindowOperator

if TYPE_CHECKING:
    from ha_flink.datastream.data_stream import KeyedStream


def _constant_key(value: Any) -> int:
    """The key of every record of an AllWindowedStream (PyFlink's NullByteKeySelector)."""
    return 0


def _describe(function: Any) -> str:
    if isinstance(function, (types.FunctionType, types.BuiltinFunctionType)):
        return function.__name__
    return type(function).__name__


class _WindowedBase:
    _all = False

    def __init__(self, keyed_stream: KeyedStream, window_assigner: WindowAssigner) -> None:
        if not isinstance(window_assigner, WindowAssigner):
            raise TypeError(f"window() needs a WindowAssigner (ha_flink.core.window), got {window_assigner!r}")
        self._keyed_stream = keyed_stream
        self._window_assigner = window_assigner
        self._allowed_lateness = 0
        self._late_data_output_tag: OutputTag | None = None
        self._window_trigger: Trigger | None = None
        self._evictor: Evictor | None = None

    def get_execution_environment(self) -> Any:
        return self._keyed_stream.get_execution_environment()

    def get_input_type(self) -> Any:
        return self._keyed_stream.get_type()

    def _count(self, size: int, slide: int) -> Any:
        """The count window of WindowedStream.count and AllWindowedStream.count."""
        if size <= 0 or slide < 0:
            raise ValueError(f"count windows need size > 0 and slide >= 0, got size {size}, slide {slide}")
        if slide == 0:
            return self.trigger(PurgingTrigger.of(CountTrigger.of(size)))
        return self.evictor(CountEvictor.of(size)).trigger(CountTrigger.of(slide))

    def trigger(self, trigger: Trigger) -> Any:
        """The trigger that decides when windows fire (instead of the assigner's default)."""
        if not isinstance(trigger, Trigger):
            raise TypeError(f"trigger() needs a Trigger, got {trigger!r}")
        if isinstance(self._window_assigner, MergingWindowAssigner) and not trigger.can_merge():
            raise TypeError(f"A merging window assigner ({self._window_assigner!r}) cannot be used with a trigger "
                            f"that does not support merging ({trigger!r}): its can_merge() returns False")
        self._window_trigger = trigger
        return self

    def evictor(self, evictor: Evictor) -> Any:
        """Removes elements from fired windows before/after the window function; windows then keep every
        element (no incremental aggregation)."""
        if not isinstance(evictor, Evictor):
            raise TypeError(f"evictor() needs an Evictor, got {evictor!r}")
        self._evictor = evictor
        return self

    def allowed_lateness(self, time_ms: Any) -> Any:
        """How long (ms, or a Time/Duration) after a window's end elements may still arrive: each re-fires
        the window, whose state is kept until end - 1 + lateness. Event-time windows only."""
        lateness = to_milliseconds(time_ms, "allowed lateness")
        if lateness < 0:
            raise ValueError(f"the allowed lateness cannot be negative, got {lateness} ms")
        self._allowed_lateness = lateness
        return self

    def side_output_late_data(self, output_tag: OutputTag) -> Any:
        """Late elements go to this side output (`result.get_side_output(output_tag)`) instead of being
        dropped."""
        if not isinstance(output_tag, OutputTag):
            raise TypeError(f"side_output_late_data needs an OutputTag, got {output_tag!r}")
        self._late_data_output_tag = output_tag
        return self

    # -- the window functions -------------------------------------------------------------------------

    def _check_window_function(self, window_function: Any) -> None:
        if window_function is None:
            return
        allowed = (AllWindowFunction, ProcessAllWindowFunction) if self._all else (WindowFunction,
                                                                                    ProcessWindowFunction)
        wrong = (WindowFunction, ProcessWindowFunction) if self._all else (AllWindowFunction,
                                                                           ProcessAllWindowFunction)
        if isinstance(window_function, wrong) or not (isinstance(window_function, allowed)
                                                      or callable(window_function)):
            names = " or ".join(t.__name__ for t in allowed)
            raise TypeError(f"window_function should be a {names}, got {window_function!r}")

    def reduce(self, reduce_function: ReduceFunction | Callable[[Any, Any], Any], window_function: Any = None,
               output_type: Any = None) -> DataStream:
        """Reduces each window incrementally; `window_function` (if any) gets the one reduced value."""
        if not (isinstance(reduce_function, ReduceFunction) or callable(reduce_function)):
            raise TypeError(f"reduce needs a ReduceFunction or a callable, got {reduce_function!r}")
        self._check_window_function(window_function)
        if output_type is None and window_function is None:
            output_type = self.get_input_type()
        return self._build(REDUCE, reduce_function, window_function, output_type)

    def aggregate(self, aggregate_function: AggregateFunction, window_function: Any = None,
                  accumulator_type: Any = None, output_type: Any = None) -> DataStream:
        """Aggregates each window incrementally; `window_function` (if any) gets the one result."""
        if not isinstance(aggregate_function, AggregateFunction):
            for method in ("create_accumulator", "add", "get_result"):
                if not hasattr(aggregate_function, method):
                    raise TypeError(f"aggregate needs an AggregateFunction, got {aggregate_function!r}")
        self._check_window_function(window_function)
        return self._build(AGGREGATE, aggregate_function, window_function, output_type)

    def apply(self, window_function: Any, output_type: Any = None) -> DataStream:
        """`window_function.apply(...)` over every element of each fired window."""
        self._check_window_function(window_function)
        return self._build(LIST, None, window_function, output_type)

    def process(self, process_window_function: Any, output_type: Any = None) -> DataStream:
        """`process_window_function.process(...)` over every element of each fired window, with a context
        (window, time, per-window and per-key state)."""
        if not isinstance(process_window_function, ProcessAllWindowFunction if self._all else ProcessWindowFunction):
            expected = "ProcessAllWindowFunction" if self._all else "ProcessWindowFunction"
            raise TypeError(f"process() needs a {expected}, got {process_window_function!r}")
        return self._build(LIST, None, process_window_function, output_type)

    def _build(self, kind: str, function: Any, window_function: Any, output_type: Any) -> DataStream:
        trigger = self._window_trigger
        if trigger is None:
            trigger = self._window_assigner.get_default_trigger(self.get_execution_environment())
        described = [_describe(f) for f in (function, window_function) if f is not None]
        name = f"Window({self._window_assigner!r}, {type(trigger).__name__}, {', '.join(described)})"
        if self._evictor is not None:
            name = f"Evicting{name}"
        operator = WindowOperator(name, self._window_assigner, trigger, self._evictor, self._allowed_lateness,
                                  self._late_data_output_tag, kind, function, window_function, self._all)
        return self._keyed_stream._keyed(name, operator, output_type)


class WindowedStream(_WindowedBase):
    """A keyed stream cut into windows per key."""

    @staticmethod
    def count(keyed_stream: KeyedStream, size: int, slide: int = 0) -> WindowedStream:
        """Flink's countWindow: GlobalWindows fired by a count trigger; tumbling (slide 0) purges after each
        firing, sliding fires every `slide` elements over the last `size` (a CountEvictor)."""
        return WindowedStream(keyed_stream, GlobalWindows.create())._count(size, slide)


class AllWindowedStream(_WindowedBase):
    """The whole stream cut into windows, computed by one subtask."""

    _all = True

    def __init__(self, data_stream: DataStream, window_assigner: WindowAssigner) -> None:
        super().__init__(data_stream.key_by(_constant_key), window_assigner)

    @staticmethod
    def count(data_stream: DataStream, size: int, slide: int = 0) -> AllWindowedStream:
        return AllWindowedStream(data_stream, GlobalWindows.create())._count(size, slide)

    def _build(self, kind: str, function: Any, window_function: Any, output_type: Any) -> DataStream:
        stream = super()._build(kind, function, window_function, output_type)
        stream._transformation.parallelism = 1  # one subtask sees every window (Flink's non-parallel windowAll)
        return _NonParallelStream(stream._env, stream._transformation)


class _NonParallelStream(DataStream):
    """The output of window_all: its operator runs at parallelism 1 only."""

    def set_parallelism(self, parallelism: int) -> DataStream:
        if parallelism != 1:
            raise ValueError(f"The parallelism of a non-parallel operator ({self.get_name()}) must be 1, "
                             f"got {parallelism}")
        return super().set_parallelism(parallelism)
