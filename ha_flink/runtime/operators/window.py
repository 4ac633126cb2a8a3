"""The window operator (Flink's WindowOperator and EvictingWindowOperator in one): puts each element into
the windows its assigner gives, asks the trigger what to do, evaluates fired windows with the window
function, and keeps windows, trigger state and timers as keyed state that checkpoints and restores.

State, per key, in the operator's keyed backend (all map states keyed by window, so that they go through
snapshots, restores and rescaling as any keyed state):
- `window-contents`: {window: contents}: the reduced value (reduce), the accumulator (aggregate), the list
  of elements (process/apply), or the list of (element, timestamp) pairs (with an evictor);
- `window-merging-set`: {window: state window} of a merging (session) assigner, as Flink's MergingWindowSet;
- `trigger/<name>`, `window/<name>`: what triggers (`ctx.get_partitioned_state`) and process window
  functions (`ctx.window_state()`) keep per key and window.
Timers, (timestamp, key, window) in both time domains, go into the operator's own snapshot entry.

Time semantics are Flink's: results carry `window.max_timestamp()`; an element is late when its timestamp +
allowed lateness <= the watermark (event-time assigners): it goes to the late-data side output or is
dropped; a window's state lives until max_timestamp + allowed lateness. The end of a bounded input is the
end of event time: every event-time timer fires. Pending processing-time timers do not fire at the end of
input in STREAMING mode (Flink quiesces the processing-time service when an operator finishes); in BATCH
mode event time stays still until the end and then every event-time and processing-time timer fires (Flink's
BatchExecutionInternalTimeService).

The common case (tumbling or sliding event-time windows, the default trigger, no evictor, heap state)
takes a fast path: plain loops over the heap backend's {key: {window: contents}} dict, one timer per new
window. Everything else goes through the trigger and the state API."""

from __future__ import annotations

import copy
import heapq
from typing import Any, Callable, Iterable, cast

from ha_flink.core.functions import Function, ProcessAllWindowFunction, ProcessWindowFunction, as_callable
from ha_flink.core.state import (
    AggregatingState, AggregatingStateDescriptor, ListState, ListStateDescriptor, MapState, MapStateDescriptor,
    ReducingState, ReducingStateDescriptor, ValueState, ValueStateDescriptor,
)
from ha_flink.core.window import (
    MAX_LONG_VALUE, EventTimeTrigger, Evictor, MergingWindowAssigner, SlidingEventTimeWindows, TimestampedValue,
    TimeWindow, Trigger, TumblingEventTimeWindows, WindowAssigner,
)
from ha_flink.runtime.operators.base import (
    MAX_WATERMARK, MIN_WATERMARK, StreamOperator, emit_all, is_rich, route_outputs,
)
from ha_flink.runtime.state.backend import KeyedStateBackend
from ha_flink.runtime.state.heap import HeapKeyedStateBackend

CONTENTS = "window-contents"
MERGING_SET = "window-merging-set"
REDUCE, AGGREGATE, LIST = "reduce", "aggregate", "list"

_ABSENT = object()
# Values a reduce or aggregate function cannot change in place: accumulators of these types need no copy
# before they are updated after a checkpoint (see WindowOperator._owned).
_IMMUTABLE = frozenset({int, float, str, bytes, bool, type(None), tuple, frozenset, complex})


# -- I/O-free bookkeeping -----------------------------------------------------------------------------

class MergingWindowSet:
    """Which windows of one key exist and which window's state each uses, for merging assigners (Flink's
    MergingWindowSet). When windows merge, the result takes over the state window of one of them, so
    merging moves no state but that of the others. `mapping` is {window: state window}."""

    def __init__(self, assigner: MergingWindowAssigner, mapping: dict[Any, Any]) -> None:
        self.assigner = assigner
        self.mapping = mapping
        self.initial = dict(mapping)

    def get_state_window(self, window: Any) -> Any:
        return self.mapping.get(window)

    def retire_window(self, window: Any) -> None:
        if self.mapping.pop(window, None) is None:
            raise KeyError(f"window {window!r} is not in the merging window set")

    def changed(self) -> bool:
        return self.mapping != self.initial

    def add_window(self, new_window: Any,
                   merge_function: Callable[[Any, list[Any], Any, list[Any]], None]) -> Any:
        """Adds `new_window`, merging as the assigner says; returns the window the new one ended up in.
        `merge_function(merge_result, merged_windows, state_window_result, merged_state_windows)` is called
        for each merge, before the mapping forgets the merged windows' state windows."""
        results: list[tuple[Any, list[Any]]] = []

        class _Collect(MergingWindowAssigner.MergeCallback):
            def merge(self, to_be_merged: Iterable[Any], merge_result: Any) -> None:
                results.append((merge_result, list(to_be_merged)))

        self.assigner.merge_windows([*self.mapping.keys(), new_window], _Collect())
        result_window = new_window
        merged_new_window = False
        for merge_result, merged_windows in results:
            if new_window in merged_windows:
                merged_windows.remove(new_window)
                merged_new_window = True
                result_window = merge_result
            if not merged_windows:
                continue  # (cannot happen with two or more windows merged)
            # the result takes over the state window of one of the merged windows
            merged_state_window = self.mapping[merged_windows[0]]
            merged_state_windows = []
            for window in merged_windows:
                state_window = self.mapping.pop(window, None)
                if state_window is not None:
                    merged_state_windows.append(state_window)
            self.mapping[merge_result] = merged_state_window
            merged_state_windows.remove(merged_state_window)
            # merging one existing window into itself (the new one fell inside it) changes nothing
            if not (len(merged_windows) == 1 and merged_windows[0] == merge_result):
                merge_function(merge_result, merged_windows, merged_state_window, merged_state_windows)
        if not results or (result_window == new_window and not merged_new_window):
            self.mapping[result_window] = result_window
        return result_window


class WindowTimers:
    """Timers of one time domain by (timestamp, (key, window)), as Flink's timer service: registering a
    timer twice keeps one. Timers of one timestamp share an insertion-ordered dict and one heap entry, since
    windows end together (every key's window of a tumbling assigner): a heap push and pop per timestamp, not
    per window. Timers fire in timestamp order, those of one timestamp in registration order."""

    def __init__(self) -> None:
        self.buckets: dict[int, dict[tuple[Any, Any], None]] = {}
        self.heap: list[int] = []
        self._firing: dict[tuple[Any, Any], None] | None = None  # the bucket being fired (out of `buckets`)
        self._firing_time: int | None = None

    def add(self, time: int, key_window: tuple[Any, Any]) -> bool:
        """True when `time` is a timestamp without timers so far (the caller may need to schedule it)."""
        bucket = self.buckets.get(time)
        if bucket is None:
            self.buckets[time] = {key_window: None}
            heapq.heappush(self.heap, time)
            return True
        bucket[key_window] = None
        return False

    def discard(self, time: int, key_window: tuple[Any, Any]) -> None:
        bucket = self.buckets.get(time)
        if bucket is not None:
            bucket.pop(key_window, None)  # (an emptied bucket stays until its time comes)
        if time == self._firing_time:
            self._firing.pop(key_window, None)  # type: ignore[union-attr]

    def next_due(self, up_to: int) -> tuple[int, dict[tuple[Any, Any], None]] | None:
        """The timers of the earliest timestamp <= `up_to`, taken out (None: none due). While the caller
        fires them, `discard` still reaches them: check `key_window in bucket` before firing each; timers
        added meanwhile for the same timestamp come in a later bucket."""
        heap, buckets = self.heap, self.buckets
        while heap and heap[0] <= up_to:
            time = heapq.heappop(heap)
            bucket = buckets.pop(time, None)
            if bucket:
                self._firing, self._firing_time = bucket, time
                return time, bucket
        self._firing, self._firing_time = None, None
        return None

    def entries(self) -> list[tuple[int, Any, Any]]:
        return [(time, key, window) for time, bucket in self.buckets.items() for key, window in bucket]

    def __len__(self) -> int:
        return sum(len(bucket) for bucket in self.buckets.values())


# -- window-scoped state: views over a map state {window: value} of the current key ------------------

class _Scoped:
    """A state of the current key and window: `window()` says which window (the trigger's or the
    process function's, read at each access as Flink's state namespace)."""

    def __init__(self, table: MapState, window: Callable[[], Any]) -> None:
        self.table = table
        self.window = window

    def clear(self) -> None:
        self.table.remove(self.window())

    def _current(self) -> Any:
        return self.table.get(self.window())


class _ScopedValueState(_Scoped, ValueState):
    def value(self) -> Any:
        return self._current()

    def update(self, value: Any) -> None:
        if value is None:
            self.clear()
        else:
            self.table.put(self.window(), value)


class _ScopedListState(_Scoped, ListState):
    def get(self) -> list[Any]:
        return list(self._current() or ())

    def add(self, value: Any) -> None:
        self.add_all([value])

    def add_all(self, values: list[Any]) -> None:
        self.table.put(self.window(), [*(self._current() or ()), *values])  # a new list: snapshots share the old

    def update(self, values: list[Any]) -> None:
        if values:
            self.table.put(self.window(), list(values))
        else:
            self.clear()


class _ScopedReducingState(_Scoped, ReducingState):
    def __init__(self, table: MapState, window: Callable[[], Any], descriptor: ReducingStateDescriptor) -> None:
        super().__init__(table, window)
        self.descriptor = descriptor

    def get(self) -> Any:
        return self._current()

    def add(self, value: Any) -> None:
        current = self._current()
        self.table.put(self.window(), value if current is None else self.descriptor.reduce(current, value))


class _ScopedAggregatingState(_Scoped, AggregatingState):
    def __init__(self, table: MapState, window: Callable[[], Any], function: Any) -> None:
        super().__init__(table, window)
        self.function = function

    def get(self) -> Any:
        accumulator = self._current()
        return None if accumulator is None else self.function.get_result(accumulator)

    def add(self, value: Any) -> None:
        accumulator = self._current()
        if accumulator is None:
            accumulator = self.function.create_accumulator()
        else:
            accumulator = copy.deepcopy(accumulator)  # add() may change it in place; a snapshot may share it
        self.table.put(self.window(), self.function.add(value, accumulator))


class _ScopedMapState(_Scoped, MapState):
    def _map(self) -> dict[Any, Any]:
        return self._current() or {}

    def get(self, key: Any) -> Any:
        return self._map().get(key)

    def put(self, key: Any, value: Any) -> None:
        self.table.put(self.window(), {**self._map(), key: value})

    def put_all(self, dict_value: dict[Any, Any]) -> None:
        self.table.put(self.window(), {**self._map(), **dict_value})

    def remove(self, key: Any) -> None:
        mapping = {k: v for k, v in self._map().items() if k != key}
        if mapping:
            self.table.put(self.window(), mapping)
        else:
            self.clear()

    def contains(self, key: Any) -> bool:
        return key in self._map()

    def items(self) -> Iterable[tuple[Any, Any]]:
        return list(self._map().items())

    def keys(self) -> Iterable[Any]:
        return list(self._map().keys())

    def values(self) -> Iterable[Any]:
        return list(self._map().values())

    def is_empty(self) -> bool:
        return not self._map()


def _merge_values(descriptor: Any, target: Any, source: Any) -> Any:
    """Two windows' values of one merging state, as Flink's mergeNamespaces: target first."""
    if isinstance(descriptor, ReducingStateDescriptor):
        return descriptor.reduce(target, source)
    if isinstance(descriptor, AggregatingStateDescriptor):
        return descriptor.agg_function.merge(target, source)
    if isinstance(descriptor, ListStateDescriptor):
        return [*target, *source]
    if isinstance(descriptor, MapStateDescriptor):
        return {**target, **source}
    raise TypeError(f"state {descriptor.name!r} ({type(descriptor).__name__}) cannot be merged: only list, "
                    "reducing, aggregating and map state merge when windows merge")


class _ScopedStore:
    """States of one kind of window scope (trigger or process function), over map states named
    `<prefix><descriptor name>` in the keyed backend."""

    def __init__(self, operator: WindowOperator, prefix: str, window: Callable[[], Any]) -> None:
        self.operator = operator
        self.prefix = prefix
        self.window = window
        self.states: dict[str, tuple[Any, _Scoped]] = {}
        self.tables: dict[str, MapState] = {}

    def _table(self, name: str) -> MapState:
        table = self.tables.get(name)
        if table is None:
            table = self.tables[name] = self.operator.backend.get_map_state(MapStateDescriptor(self.prefix + name))
        return table

    def state(self, descriptor: Any) -> Any:
        known = self.states.get(descriptor.name)
        if known is not None:
            return known[1]
        table = self._table(descriptor.name)
        if isinstance(descriptor, ReducingStateDescriptor):
            state: _Scoped = _ScopedReducingState(table, self.window, descriptor)
        elif isinstance(descriptor, AggregatingStateDescriptor):
            state = _ScopedAggregatingState(table, self.window, descriptor.agg_function)
        elif isinstance(descriptor, ListStateDescriptor):
            state = _ScopedListState(table, self.window)
        elif isinstance(descriptor, MapStateDescriptor):
            state = _ScopedMapState(table, self.window)
        elif isinstance(descriptor, ValueStateDescriptor):
            state = _ScopedValueState(table, self.window)
        else:
            raise TypeError(f"unknown state descriptor {descriptor!r}")
        self.states[descriptor.name] = (descriptor, state)
        return state

    def merge(self, descriptor: Any, target: Any, sources: list[Any]) -> None:
        table = self._table(descriptor.name)
        merged = _ABSENT
        for source in sources:
            value = table.get(source)
            if value is None:
                continue
            table.remove(source)
            merged = value if merged is _ABSENT else _merge_values(descriptor, merged, value)
        if merged is not _ABSENT:
            current = table.get(target)
            table.put(target, merged if current is None else _merge_values(descriptor, current, merged))

    # what ProcessWindowFunction.Context.window_state() hands out: a keyed state store scoped to the window
    def get_state(self, state_descriptor: ValueStateDescriptor) -> ValueState:
        return self.state(state_descriptor)

    def get_list_state(self, state_descriptor: ListStateDescriptor) -> ListState:
        return self.state(state_descriptor)

    def get_map_state(self, state_descriptor: MapStateDescriptor) -> MapState:
        return self.state(state_descriptor)

    def get_reducing_state(self, state_descriptor: ReducingStateDescriptor) -> ReducingState:
        return self.state(state_descriptor)

    def get_aggregating_state(self, state_descriptor: AggregatingStateDescriptor) -> AggregatingState:
        return self.state(state_descriptor)


# -- contexts handed to user code ---------------------------------------------------------------------

class _TriggerContext(Trigger.OnMergeContext):
    def __init__(self, operator: WindowOperator) -> None:
        self.op = operator
        self.key: Any = None
        self.window: Any = None
        self.merged_windows: list[Any] = []
        self.store = _ScopedStore(operator, "trigger/", lambda: self.window)

    def get_current_processing_time(self) -> int:
        return self.op.context.processing_time.now_ms()

    def get_current_watermark(self) -> int:
        return self.op.watermark

    def register_processing_time_timer(self, time: int) -> None:
        self.op._register_processing(time, self.key, self.window)

    def register_event_time_timer(self, time: int) -> None:
        self.op._register_event(time, self.key, self.window)

    def delete_processing_time_timer(self, time: int) -> None:
        self.op.processing_timers.discard(time, (self.key, self.window))

    def delete_event_time_timer(self, time: int) -> None:
        self.op.event_timers.discard(time, (self.key, self.window))

    def get_partitioned_state(self, state_descriptor: Any) -> Any:
        return self.store.state(state_descriptor)

    def merge_partitioned_state(self, state_descriptor: Any) -> None:
        if self.merged_windows:
            self.store.merge(state_descriptor, self.window, self.merged_windows)


class _ProcessContext(ProcessWindowFunction.Context, ProcessAllWindowFunction.Context):
    """The context of ProcessWindowFunction and ProcessAllWindowFunction (it has what both declare)."""

    def __init__(self, operator: WindowOperator) -> None:
        self.op = operator
        self.current_window: Any = None
        self.store = _ScopedStore(operator, "window/", lambda: self.current_window)

    def window(self) -> Any:
        return self.current_window

    def current_processing_time(self) -> int:
        return self.op.context.processing_time.now_ms()

    def current_watermark(self) -> int:
        return self.op.watermark

    def window_state(self) -> _ScopedStore:
        """State of the current key and window (clean it up in the function's clear())."""
        return self.store

    def global_state(self) -> Any:
        """State of the current key, across windows."""
        return self.op.runtime_context

    def output(self, output_tag: Any, value: Any) -> None:
        self.op._out.append((output_tag, value))


class _AssignerContext(WindowAssigner.WindowAssignerContext):
    def __init__(self, operator: WindowOperator) -> None:
        self.op = operator

    def get_current_processing_time(self) -> int:
        return self.op.context.processing_time.now_ms()

    def get_runtime_context(self) -> Any:
        return self.op.runtime_context


class _EvictorContext(Evictor.EvictorContext):
    def __init__(self, operator: WindowOperator) -> None:
        self.op = operator

    def get_current_processing_time(self) -> int:
        return self.op.context.processing_time.now_ms()

    def get_current_watermark(self) -> int:
        return self.op.watermark


# -- the operator -------------------------------------------------------------------------------------

class WindowOperator(StreamOperator):
    """`kind`: REDUCE (`function` is a reduce function), AGGREGATE (an AggregateFunction) or LIST (the
    window function gets every element). `window_function`: a WindowFunction, ProcessWindowFunction (keyed)
    or AllWindowFunction, ProcessAllWindowFunction (`all_windows`), or None after reduce/aggregate."""

    # open() refuses to run without a keyed backend, which setup() creates exactly when there is a key
    # selector: every other method runs after open().
    backend: KeyedStateBackend
    key_selector: Callable[[Any], Any]

    def __init__(self, name: str, assigner: WindowAssigner, trigger: Trigger, evictor: Evictor | None,
                 allowed_lateness: int, late_data_tag: Any, kind: str, function: Any, window_function: Any,
                 all_windows: bool = False) -> None:
        self.name = name
        self.assigner = assigner
        self.trigger = trigger
        self.evictor = evictor
        self.allowed_lateness = allowed_lateness
        self.late_data_tag = late_data_tag
        self.kind = kind
        self.function = function
        self.window_function = window_function
        self.all_windows = all_windows
        self._restored_timers: list[dict[str, Any]] = []

    # -- lifecycle ------------------------------------------------------------------------------------

    def open(self) -> None:
        if self.backend is None:
            raise RuntimeError(f"{self.name}: windows need a keyed stream (key_by, or window_all)")
        self.leave_keyed_context()  # (as it is: no record yet)
        for function in (self.function, self.window_function):
            if isinstance(function, Function) or is_rich(function):
                function.open(self.runtime_context)
        # A rich reduce or aggregate function may use keyed state (from its runtime context): the fast path
        # then makes each record's key current before calling it (the general path always does).
        self._sets_key = is_rich(self.function)
        self.is_event_time = self.assigner.is_event_time()
        self.merging = isinstance(self.assigner, MergingWindowAssigner)
        self.batch_mode = self.context.runtime_mode == "BATCH"
        self.watermark = MIN_WATERMARK
        self.num_late_records_dropped = 0
        self._quiesced = False  # BATCH: timers registered while the end of input fires them are ignored
        self.event_timers = WindowTimers()
        self.processing_timers = WindowTimers()
        self._out: list[Any] = []
        self._out_stamps: list[int] = []
        self._owned: set[int] = set()  # ids of contents created since the last snapshot: safe to change in place
        self.contents = self.backend.get_map_state(MapStateDescriptor(CONTENTS))
        self.raw = self.backend.raw_map_table(CONTENTS)
        # Heap snapshots copy the {window: contents} dicts but share the contents: copy before changing in place.
        self._copy_on_write = isinstance(self.backend, HeapKeyedStateBackend)
        self.merging_state = self.backend.get_map_state(MapStateDescriptor(MERGING_SET)) if self.merging else None
        self.trigger_ctx = _TriggerContext(self)
        self.process_ctx = _ProcessContext(self)
        self.assigner_ctx = _AssignerContext(self)
        self.evictor_ctx = _EvictorContext(self)
        self._reduce = as_callable(self.function, "reduce") if self.kind == REDUCE else None
        self._wf_kind, self._wf_call = self._window_function_call()
        self._wf_clear = getattr(self.window_function, "clear", None) if self._wf_kind == "process" else None
        aligned = type(self.assigner) in (TumblingEventTimeWindows, SlidingEventTimeWindows)
        self.fast = (aligned and type(self.trigger) is EventTimeTrigger and self.evictor is None
                     and self.raw is not None)
        self._restore_timers()

    def _window_function_call(self) -> tuple[str, Any]:
        function = self.window_function
        if function is None:
            return "none", None
        if hasattr(function, "process"):
            return "process", function.process
        if hasattr(function, "apply"):
            return "apply", function.apply
        if callable(function):
            return "apply", function
        raise TypeError(f"{self.name}: {function!r} is not a window function (no apply() or process())")

    def close(self) -> None:
        self.leave_keyed_context()
        for function in (self.function, self.window_function):
            if isinstance(function, Function) or (hasattr(function, "close") and not isinstance(function, type)):
                function.close()

    # -- time helpers ---------------------------------------------------------------------------------

    def _cleanup_time(self, window: Any) -> int:
        """When a window's state goes: its end + allowed lateness (event time), its end (processing time)."""
        max_timestamp = window.max_timestamp()
        if not self.is_event_time:
            return max_timestamp
        return min(max_timestamp + self.allowed_lateness, MAX_LONG_VALUE)

    def _is_window_late(self, window: Any) -> bool:
        return self.is_event_time and self._cleanup_time(window) <= self.watermark

    def _register_event(self, time: int, key: Any, window: Any) -> None:
        if not self._quiesced:
            self.event_timers.add(time, (key, window))

    def _register_processing(self, time: int, key: Any, window: Any) -> None:
        if self._quiesced:
            return
        # BATCH: processing-time timers wait for the end of input. STREAMING: the clock calls back once it
        # passed the timer (Flink fires at t + 1 ms: an element at t still belongs to a window ending at t + 1).
        if self.processing_timers.add(time, (key, window)) and not self.batch_mode:
            self.context.processing_time.register(time + 1, self._on_processing_service)

    def _register_cleanup(self, key: Any, window: Any) -> None:
        cleanup = self._cleanup_time(window)
        if cleanup == MAX_LONG_VALUE:
            return  # a window that never ends (GlobalWindow) is never cleaned up
        if self.is_event_time:
            self._register_event(cleanup, key, window)
        else:
            self._register_processing(cleanup, key, window)

    def _delete_cleanup(self, key: Any, window: Any) -> None:
        cleanup = self._cleanup_time(window)
        if cleanup == MAX_LONG_VALUE:
            return
        if self.is_event_time:
            self.event_timers.discard(cleanup, (key, window))
        else:
            self.processing_timers.discard(cleanup, (key, window))

    # -- window contents ------------------------------------------------------------------------------

    def _writable(self, value: Any) -> Any:
        """`value` (contents read from state) safe to change in place: a copy when a snapshot may share it."""
        if not self._copy_on_write or type(value) in _IMMUTABLE or id(value) in self._owned:
            return value
        value = list(value) if self.kind == LIST or self.evictor is not None else copy.deepcopy(value)
        self._owned.add(id(value))
        return value

    def _own(self, value: Any) -> Any:
        if self._copy_on_write and type(value) not in _IMMUTABLE:
            self._owned.add(id(value))
        return value

    def _add(self, state_window: Any, value: Any, timestamp: int) -> None:
        contents = self.contents.get(state_window)
        if self.evictor is not None:
            item = (value, timestamp)
            if contents is None:
                contents = self._own([item])
            else:
                contents = self._writable(contents)
                contents.append(item)
        elif self.kind == LIST:
            if contents is None:
                contents = self._own([value])
            else:
                contents = self._writable(contents)
                contents.append(value)
        elif self.kind == REDUCE:
            reduce = self._reduce
            assert reduce is not None  # (set by open() for REDUCE)
            contents = value if contents is None else self._own(reduce(self._writable(contents), value))
        else:
            if contents is None:
                contents = self.function.create_accumulator()
            else:
                contents = self._writable(contents)
            contents = self._own(self.function.add(value, contents))
        self.contents.put(state_window, contents)

    def _merge_contents(self, target: Any, sources: list[Any]) -> None:
        """The merged windows' contents into the resulting state window's (Flink's mergeNamespaces)."""
        merged = _ABSENT
        for source in sources:
            value = self.contents.get(source)
            if value is None:
                continue
            self.contents.remove(source)
            merged = value if merged is _ABSENT else self._merge_two(merged, value)
        if merged is not _ABSENT:
            current = self.contents.get(target)
            self.contents.put(target, merged if current is None else self._merge_two(current, merged))

    def _merge_two(self, a: Any, b: Any) -> Any:
        if self.evictor is not None or self.kind == LIST:
            return self._own([*a, *b])
        if self.kind == REDUCE:
            reduce = self._reduce
            assert reduce is not None  # (set by open() for REDUCE)
            return self._own(reduce(self._writable(a), b))
        return self._own(self.function.merge(self._writable(a), b))

    # -- evaluation -----------------------------------------------------------------------------------

    def _emit(self, key: Any, window: Any, contents: Any, state_window: Any = None) -> None:
        """Evaluates a fired window; results carry window.max_timestamp(), as in Flink. `state_window`: where
        the contents live (the window itself unless sessions merged)."""
        if self.evictor is not None:
            self._emit_evicting(key, window, contents, window if state_window is None else state_window)
            return
        if self.kind == LIST:
            values = list(contents)  # the function may change its list; the state's (and a snapshot's) stays
        else:
            value = contents if self.kind == REDUCE else self.function.get_result(contents)
            if self._wf_call is None:
                self._out.append(value)
                self._out_stamps.append(window.max_timestamp())
                return
            values = [value]
        self._call_window_function(key, window, values)

    def _call_window_function(self, key: Any, window: Any, values: list[Any]) -> None:
        out = self._out
        before = len(out)
        if self._wf_kind == "process":
            self.backend.current_key = key
            self.process_ctx.current_window = window
            result = self._wf_call(self.process_ctx, values) if self.all_windows else \
                self._wf_call(key, self.process_ctx, values)
        elif self._wf_kind == "apply":
            self.backend.current_key = key
            result = self._wf_call(window, values) if self.all_windows else self._wf_call(key, window, values)
        else:  # reduce/aggregate without a window function: the value itself
            result = values
        emit_all(result, out, f"{self.name} (window function)")
        self._out_stamps.extend([window.max_timestamp()] * (len(out) - before))

    def _emit_evicting(self, key: Any, window: Any, contents: list[tuple[Any, int]], state_window: Any) -> None:
        evictor = self.evictor
        assert evictor is not None  # (called only with an evictor)
        elements = [TimestampedValue(v, None if t == MIN_WATERMARK else t) for v, t in contents]
        evictor.evict_before(elements, len(elements), window, self.evictor_ctx)
        values = [element.value for element in elements]
        if self.kind == REDUCE:
            if values:  # (Java would hand the window function a null; nothing is left to reduce)
                reduce = self._reduce
                assert reduce is not None  # (set by open() for REDUCE)
                reduced = values[0] if type(values[0]) in _IMMUTABLE else copy.deepcopy(values[0])  # (in state)
                for value in values[1:]:
                    reduced = reduce(reduced, value)
                self._call_window_function(key, window, [reduced])
        elif self.kind == AGGREGATE:
            accumulator = self.function.create_accumulator()
            for value in values:
                accumulator = self.function.add(value, accumulator)
            self._call_window_function(key, window, [self.function.get_result(accumulator)])
        else:
            self._call_window_function(key, window, values)
        evictor.evict_after(elements, len(elements), window, self.evictor_ctx)
        # what the evictor left is the window's contents from now on
        if elements:
            self.contents.put(state_window, self._own(
                [(e.value, MIN_WATERMARK if e.timestamp is None else e.timestamp) for e in elements]))
        else:
            self.contents.remove(state_window)

    def _flush(self) -> None:
        if self._out:
            out, stamps = self._out, self._out_stamps
            self._out, self._out_stamps = [], []
            if self._wf_call is None:  # reduce/aggregate results as they are: no side-output pairs to look for
                self.output.collect_batch(out, stamps)
            else:
                route_outputs(self.output, out, stamps)

    def _side_output_late(self, late: list[Any], late_stamps: list[int]) -> None:
        if self.late_data_tag is not None:
            self.output.collect_side(self.late_data_tag.tag_id, late, late_stamps)
        else:
            self.num_late_records_dropped += len(late)

    # -- elements -------------------------------------------------------------------------------------

    def process_batch(self, batch: list[Any], timestamps: list[int] | None = None) -> None:
        if not batch:
            return
        if self.fast:
            if timestamps is None:
                raise ValueError(f"{self.name}: {_no_timestamps()}")
            if type(self.assigner) is TumblingEventTimeWindows:
                self._process_tumbling(batch, timestamps)
            else:
                self._process_sliding(batch, timestamps)
            self._flush()
            return
        if timestamps is None:
            timestamps = [MIN_WATERMARK] * len(batch)
        backend, select, assign = self.backend, self.key_selector, self.assigner.assign_windows
        late: list[Any] = []
        late_stamps: list[int] = []
        watermark_late = self.watermark - self.allowed_lateness
        for value, timestamp in zip(batch, timestamps):
            key = select(value)
            backend.current_key = key
            windows = assign(value, timestamp, self.assigner_ctx)
            if self.merging:
                skipped = self._element_into_merging(key, value, timestamp, windows)
            else:
                skipped = True
                for window in windows:
                    if self._is_window_late(window):
                        continue
                    skipped = False
                    self._add(window, value, timestamp)
                    self._on_element_trigger(key, window, window, value, timestamp)
                    self._register_cleanup(key, window)
            if skipped and self.is_event_time and timestamp <= watermark_late:
                late.append(value)
                late_stamps.append(timestamp)
        self._flush()
        if late:
            self._side_output_late(late, late_stamps)

    def _on_element_trigger(self, key: Any, window: Any, state_window: Any, value: Any, timestamp: int) -> None:
        ctx = self.trigger_ctx
        ctx.key, ctx.window = key, window
        result = self.trigger.on_element(value, timestamp, window, ctx)
        if result.is_fire():
            contents = self.contents.get(state_window)
            if contents is not None:
                self._emit(key, window, contents, state_window)
        if result.is_purge():
            self.contents.remove(state_window)

    def _element_into_merging(self, key: Any, value: Any, timestamp: int, windows: Iterable[Any]) -> bool:
        window_set = self._merging_set()

        def merge(result: Any, merged: list[Any], state_result: Any, merged_state: list[Any]) -> None:
            if self.is_event_time and result.max_timestamp() + self.allowed_lateness <= self.watermark:
                raise RuntimeError(f"{self.name}: the end of an event-time window cannot become earlier than the "
                                   f"watermark by merging ({result!r}, watermark {self.watermark}); is the "
                                   "merging assigner or trigger wrong?")
            if not self.is_event_time and result.max_timestamp() <= self.context.processing_time.now_ms():
                raise RuntimeError(f"{self.name}: the end of a processing-time window cannot become earlier than "
                                   f"the current processing time by merging ({result!r})")
            ctx = self.trigger_ctx
            ctx.key, ctx.window, ctx.merged_windows = key, result, merged
            self.trigger.on_merge(result, ctx)
            for window in merged:
                ctx.window = window
                self.trigger.clear(window, ctx)
                self._delete_cleanup(key, window)
            ctx.merged_windows = []
            self._merge_contents(state_result, merged_state)

        skipped = True
        for window in windows:
            actual = window_set.add_window(window, merge)
            if self._is_window_late(actual):
                window_set.retire_window(actual)
                continue
            skipped = False
            state_window = window_set.get_state_window(actual)
            self._add(state_window, value, timestamp)
            self._on_element_trigger(key, actual, state_window, value, timestamp)
            self._register_cleanup(key, actual)
        self._persist(window_set)
        return skipped

    def _merging_set(self) -> MergingWindowSet:
        # (called only when self.merging: a merging assigner, and open() made the merging state)
        assigner, merging_state = self.assigner, self.merging_state
        assert isinstance(assigner, MergingWindowAssigner) and merging_state is not None
        return MergingWindowSet(assigner, dict(merging_state.items()))

    def _persist(self, window_set: MergingWindowSet) -> None:
        if window_set.changed():
            merging_state = self.merging_state
            assert merging_state is not None  # (called only when self.merging)
            merging_state.clear()
            if window_set.mapping:
                merging_state.put_all(window_set.mapping)

    # -- the fast path: aligned event-time windows, default trigger, heap state ------------------------

    def _new_contents(self, value: Any) -> Any:
        if self.kind == REDUCE:
            return value  # the record itself: other windows may hold it too, so a reduce copies it first
        if self.kind == LIST:
            return self._own([value])
        return self._own(self.function.add(value, self.function.create_accumulator()))

    def _update_contents(self, contents: Any, value: Any) -> Any:
        if self.kind == REDUCE:
            reduce = self._reduce
            assert reduce is not None  # (set by open() for REDUCE)
            return self._own(reduce(self._writable(contents), value))
        contents = self._writable(contents)
        if self.kind == LIST:
            contents.append(value)
            return contents
        return self._own(self.function.add(value, contents))

    def _process_tumbling(self, batch: list[Any], timestamps: list[int]) -> None:
        # The hot loop of the common case: locals only, the state's dicts directly, no call per record but
        # the key selector and the user's function.
        table, select, assigner = self.raw, self.key_selector, self.assigner
        # (the fast path runs only with the raw table and this exact assigner type: see open())
        assert table is not None and isinstance(assigner, TumblingEventTimeWindows)
        size, offset = assigner._size, assigner._offset
        watermark, lateness = self.watermark, self.allowed_lateness
        window_late = watermark - lateness  # a window whose end - 1 is at or before this is late
        buckets, add_timer = self.event_timers.buckets, self.event_timers.add
        kind = self.kind
        reduce = cast("Callable[[Any, Any], Any]", self._reduce)  # called only for REDUCE, where open() set it
        if kind == AGGREGATE:
            add, create = self.function.add, self.function.create_accumulator
        immutable, owned, cow = _IMMUTABLE, self._owned, self._copy_on_write
        new_window, time_window = tuple.__new__, TimeWindow
        backend = self.backend if self._sets_key else None  # (None: the function cannot use keyed state)
        late: list[Any] = []
        late_stamps: list[int] = []
        for value, timestamp in zip(batch, timestamps):
            start = timestamp - (timestamp - offset) % size
            last = start + size - 1
            if last <= window_late:
                late.append(value)  # an element's only window is late: the element is late
                late_stamps.append(timestamp)
                continue
            key = select(value)
            if backend is not None:
                backend.current_key = key
            windows = table.get(key)
            if windows is None:
                windows = table[key] = {}
            span = (start, last + 1)  # equal to (and hashed as) the TimeWindow it finds
            contents = windows.get(span, _ABSENT)
            if contents is _ABSENT:
                window = new_window(time_window, span)
                if kind == REDUCE:
                    contents = value  # (not owned: the record may be shared, a reduce copies it first)
                else:
                    contents = add(value, create()) if kind == AGGREGATE else [value]
                    if cow and type(contents) not in immutable:
                        owned.add(id(contents))
                windows[window] = contents
                # the trigger's timer at the window's end (unless it is past: then it fires below), the
                # cleanup timer at end - 1 + lateness (the same one without lateness)
                if last > watermark:
                    bucket = buckets.get(last)
                    if bucket is None:
                        add_timer(last, (key, window))
                    else:
                        bucket[(key, window)] = None
                if lateness and last + lateness < MAX_LONG_VALUE:
                    add_timer(last + lateness, (key, window))
            else:
                if kind == REDUCE and (not cow or type(contents) in immutable):
                    contents = reduce(contents, value)
                elif kind == AGGREGATE and (not cow or type(contents) in immutable):
                    contents = add(value, contents)
                else:
                    contents = self._update_contents(contents, value)
                windows[span] = contents
            if last <= watermark:  # within the allowed lateness: EventTimeTrigger fires at once
                self._emit(key, new_window(time_window, span), contents)
        if late:
            self._side_output_late(late, late_stamps)

    def _process_sliding(self, batch: list[Any], timestamps: list[int]) -> None:
        table, select, assigner = self.raw, self.key_selector, self.assigner
        # (the fast path runs only with the raw table and this exact assigner type: see open())
        assert table is not None and isinstance(assigner, SlidingEventTimeWindows)
        size, slide, offset = assigner._size, assigner._slide, assigner._offset
        watermark, lateness = self.watermark, self.allowed_lateness
        window_late = watermark - lateness
        add_timer = self.event_timers.add
        backend = self.backend if self._sets_key else None  # (None: the function cannot use keyed state)
        late: list[Any] = []
        late_stamps: list[int] = []
        for value, timestamp in zip(batch, timestamps):
            last_start = timestamp - (timestamp - offset) % slide
            key = _ABSENT
            windows: Any = None
            for start in range(last_start, timestamp - size, -slide):
                last = start + size - 1
                if last <= window_late:
                    continue
                if key is _ABSENT:
                    key = select(value)
                    if backend is not None:
                        backend.current_key = key
                    windows = table.get(key)
                    if windows is None:
                        windows = table[key] = {}
                span = (start, last + 1)
                contents = windows.get(span, _ABSENT)
                if contents is _ABSENT:
                    window = TimeWindow(start, last + 1)
                    windows[window] = contents = self._new_contents(value)
                    if last > watermark:
                        add_timer(last, (key, window))
                    if lateness and last + lateness < MAX_LONG_VALUE:
                        add_timer(last + lateness, (key, window))
                else:
                    windows[span] = contents = self._update_contents(contents, value)
                if last <= watermark:
                    self._emit(key, TimeWindow(start, last + 1), contents)
            if key is _ABSENT and timestamp <= window_late:  # in no window that is still open
                late.append(value)
                late_stamps.append(timestamp)
        if late:
            self._side_output_late(late, late_stamps)

    def _fire_fast(self, watermark: int) -> None:
        """The timers the watermark passed, for the fast path: the trigger's (fire) at a window's end - 1, the
        cleanup one (drop the window) at end - 1 + lateness; without lateness they are one and the same."""
        table, lateness = self.raw, self.allowed_lateness
        assert table is not None  # (the fast path runs only with the raw table)
        next_due = self.event_timers.next_due
        out, stamps = self._out, self._out_stamps
        plain = self._wf_call is None and self.kind != LIST  # the value itself is the result
        get_result = self.function.get_result if self.kind == AGGREGATE else None
        backend = self.backend if self._sets_key else None  # (None: the function cannot use keyed state)
        while (due := next_due(watermark)) is not None:
            time, bucket = due
            # (nothing the fast path runs per timer can delete a timer: the bucket is iterated as it is)
            for key, window in bucket:
                windows = table.get(key)
                contents = _ABSENT if windows is None else windows.get(window, _ABSENT)
                last = window[1] - 1
                if time == last and contents is not _ABSENT:
                    if backend is not None:
                        backend.current_key = key
                    if plain:
                        out.append(contents if get_result is None else get_result(contents))
                        stamps.append(last)
                    else:
                        self._emit(key, window, contents)
                if time == last + lateness:  # the cleanup time
                    if contents is not _ABSENT:
                        assert windows is not None  # (contents came from it)
                        del windows[window]
                        if not windows:
                            del table[key]  # the raw table must not keep empty dicts
                    if self._wf_clear is not None:
                        self._clear_process_function(key, window)

    def _clear_process_function(self, key: Any, window: Any) -> None:
        clear = self._wf_clear
        assert clear is not None  # (called only when the process function has clear())
        self.backend.current_key = key
        self.process_ctx.current_window = window
        clear(self.process_ctx)

    # -- timers ---------------------------------------------------------------------------------------

    def process_watermark(self, watermark: int) -> None:
        if self.batch_mode:
            return  # BATCH: event time stands still until the end of input (end_input), as in Flink
        self._advance_watermark(watermark)
        super().process_watermark(watermark)

    def _advance_watermark(self, watermark: int) -> None:
        self.watermark = watermark
        if self.fast:
            self._fire_fast(watermark)
        else:
            self._fire_timers(self.event_timers, watermark, event_time=True)
        self._flush()

    def _on_processing_service(self, service_time: int) -> None:
        self._fire_timers(self.processing_timers, self.context.processing_time.now_ms() - 1, event_time=False)
        self._flush()

    def _fire_timers(self, timers: WindowTimers, up_to: int, event_time: bool) -> None:
        while (due := timers.next_due(up_to)) is not None:
            time, bucket = due
            for key_window in list(bucket):
                if key_window in bucket:  # not deleted by an earlier timer of this bucket
                    self._on_timer(time, key_window[0], key_window[1], event_time)

    def _on_timer(self, time: int, key: Any, window: Any, event_time: bool) -> None:
        self.backend.current_key = key
        ctx = self.trigger_ctx
        ctx.key, ctx.window = key, window
        window_set = None
        if self.merging:
            window_set = self._merging_set()
            state_window = window_set.get_state_window(window)
            if state_window is None:
                return  # a timer of a window merged away whose trigger did not delete it
        else:
            state_window = window
        if event_time:
            result = self.trigger.on_event_time(time, window, ctx)
        else:
            result = self.trigger.on_processing_time(time, window, ctx)
        if result.is_fire():
            contents = self.contents.get(state_window)
            if contents is not None:
                self._emit(key, window, contents, state_window)
        if result.is_purge():
            self.contents.remove(state_window)
        if self.is_event_time == event_time and time == self._cleanup_time(window):
            self.contents.remove(state_window)
            ctx.window = window
            self.trigger.clear(window, ctx)
            if self._wf_clear is not None:
                self._clear_process_function(key, window)
            if window_set is not None:
                window_set.retire_window(window)
        if window_set is not None:
            self._persist(window_set)

    def end_input(self) -> None:
        """The end of a bounded input is the end of event time: every event-time window fires (Flink's
        MAX_WATERMARK). Processing-time timers: BATCH fires them all now (after the event-time ones, with
        new registrations ignored, as Flink's batch time service); STREAMING leaves them unfired (Flink
        quiesces the processing-time service of a finished operator)."""
        if self.batch_mode:
            self._quiesced = True
        self._advance_watermark(MAX_WATERMARK)
        if self.batch_mode:
            self._fire_timers(self.processing_timers, MAX_LONG_VALUE, event_time=False)
            self._flush()

    # -- checkpoints ----------------------------------------------------------------------------------

    def snapshot_state(self, checkpoint_id: int) -> dict[str, Any]:
        state = super().snapshot_state(checkpoint_id)
        state["window_timers"] = {
            "event": self.event_timers.entries(),
            "processing": self.processing_timers.entries(),
        }
        self._owned.clear()  # the snapshot shares every contents object from now on
        return state

    def initialize_state(self, states: list[dict[str, Any]]) -> None:
        super().initialize_state(states)
        self._restored_timers = [s["window_timers"] for s in states if "window_timers" in s]

    def _restore_timers(self) -> None:
        """Timers of the keys in this subtask's key groups (after rescaling, every old subtask's share)."""
        owns = self.backend.owns
        for timers in self._restored_timers:
            for time, key, window in timers["event"]:
                if owns(key):
                    self.event_timers.add(time, (key, window))
            for time, key, window in timers["processing"]:
                if owns(key):
                    self._register_processing(time, key, window)
        self._restored_timers = []


def _no_timestamps() -> str:
    return ("records have no timestamps (event-time windows need them): did you forget to call "
            "'data_stream.assign_timestamps_and_watermarks(...)'?")
