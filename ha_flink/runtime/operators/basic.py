"""The one-input operators of the DataStream API: map, flat_map, filter, process, keyed reduce and
keyed process (with keyed state and timers), and the sinks."""

from __future__ import annotations

import heapq
import itertools
import sys
from typing import Any, Callable, MutableMapping, cast

from ha_flink.core.functions import (
    CheckpointedFunction, FunctionInitializationContext, FunctionSnapshotContext, KeyedProcessFunction,
    ProcessFunction, SinkFunction, TimeDomain, TimerService, as_callable,
)
from ha_flink.runtime.operators.base import (
    MAX_WATERMARK, MIN_WATERMARK, OperatorContext, Output, StreamOperator, emit_all, is_rich, route_outputs,
)
from ha_flink.runtime.state.backend import NO_KEY, KeyedStateBackend, ValueStateTable
from ha_flink.runtime.state.operator_state import OperatorStateBackend
from ha_flink.runtime.streamrecord import split_stamped


class _UserFunctionOperator(StreamOperator):
    """An operator around one user function: opens and closes it with the runtime context, and keeps its
    operator state when it is a CheckpointedFunction."""

    method = ""
    sets_key = False  # one-record calls (map, filter): on a keyed stream, make the record's key current first

    def __init__(self, function: Any, name: str) -> None:
        self.function = function
        self.name = name

    def setup(self, context: OperatorContext, output: Output) -> None:
        super().setup(context, output)
        self.operator_state: OperatorStateBackend | None = None
        self._restored = False
        if isinstance(self.function, CheckpointedFunction):
            self.operator_state = OperatorStateBackend(context.info.subtask_index, context.info.parallelism)

    def initialize_state(self, states: list[dict[str, Any]]) -> None:
        super().initialize_state(states)
        self._restored = True
        if self.operator_state is not None:
            self.operator_state.restore([s["operator"] for s in states if "operator" in s])

    def snapshot_state(self, checkpoint_id: int) -> dict[str, Any]:
        state = super().snapshot_state(checkpoint_id)
        if self.operator_state is not None and isinstance(self.function, CheckpointedFunction):
            self.leave_keyed_context()
            self.function.snapshot_state(FunctionSnapshotContext(checkpoint_id,
                                                                 self.context.checkpoint_timestamp_ms))
            state["operator"] = self.operator_state.snapshot()
        return state

    def open(self) -> None:
        self.leave_keyed_context()  # (as it is: no record yet)
        if self.operator_state is not None and isinstance(self.function, CheckpointedFunction):
            # as Flink: initializeState before open
            self.function.initialize_state(FunctionInitializationContext(self.operator_state, self._restored))
        if hasattr(self.function, "open") and not isinstance(self.function, type):
            self.function.open(self.runtime_context)
        self.call = self.keyed(as_callable(self.function, self.method), self.key_selector)

    def keyed(self, call: Callable[..., Any], select: Callable[[Any], Any] | None) -> Callable[..., Any]:
        """`call` with the record's key made current first, so a keyed stream's map or filter sees the
        keyed state of the record's key."""
        backend = self.backend
        if backend is None or select is None or not self.sets_key:
            return call

        def with_key(record: Any) -> Any:
            backend.current_key = select(record)
            return call(record)

        return with_key

    def close(self) -> None:
        if hasattr(self.function, "close") and not isinstance(self.function, type):
            self.leave_keyed_context()
            self.function.close()


class MapOperator(_UserFunctionOperator):
    method = "map"
    sets_key = True

    def process_batch(self, batch: list[Any], timestamps: list[int] | None = None) -> None:
        call = self.call
        self.output.collect_batch([call(record) for record in batch], timestamps)


class FlatMapOperator(_UserFunctionOperator):
    method = "flat_map"
    sets_key = True

    def process_batch(self, batch: list[Any], timestamps: list[int] | None = None) -> None:
        out: list[Any] = []
        call = self.call
        what = f"{self.name} (flat_map)"
        if timestamps is None:
            for record in batch:
                emit_all(call(record), out, what)
            self.output.collect_batch(out)
            return
        stamps: list[int] = []
        for record, timestamp in zip(batch, timestamps):
            before = len(out)
            emit_all(call(record), out, what)
            stamps.extend([timestamp] * (len(out) - before))
        self.output.collect_batch(out, stamps)


class FilterOperator(_UserFunctionOperator):
    method = "filter"
    sets_key = True

    def process_batch(self, batch: list[Any], timestamps: list[int] | None = None) -> None:
        call = self.call
        if timestamps is None:
            self.output.collect_batch([record for record in batch if call(record)])
        else:
            self.output.collect_batch(*split_stamped(batch, timestamps, [call(record) for record in batch]))


class _Context(KeyedProcessFunction.OnTimerContext, ProcessFunction.Context):
    """The context handed to process functions: current key, record timestamp, timer service, and
    `output(tag, value)` for side outputs (besides yielding `(tag, value)`)."""

    def __init__(self, operator: _ProcessOperatorBase) -> None:
        self.operator = operator
        self.current_timestamp: int | None = None
        self.domain: TimeDomain | None = None
        self.pending: list[Any] = []  # the output list of the call in progress

    def get_current_key(self) -> Any:
        backend = self.operator.backend
        if backend is None or backend.current_key is NO_KEY:
            return None
        return backend.current_key

    def timer_service(self) -> TimerService:
        return self.operator.timers

    def timestamp(self) -> int | None:
        return self.current_timestamp

    def time_domain(self) -> TimeDomain | None:
        return self.domain

    def output(self, output_tag: Any, value: Any) -> None:
        self.pending.append((output_tag, value))


class EventTimeTimers:
    """Event-time timers of one operator, per (timestamp, key): a heap in timestamp order beside the set of
    live timers (a deleted timer stays in the heap and is skipped when it comes up)."""

    def __init__(self) -> None:
        self.live: set[tuple[int, Any]] = set()
        self._heap: list[tuple[int, int, Any]] = []
        self._sequence = itertools.count()  # keys need not be comparable: ties go by registration order

    def add(self, timestamp: int, key: Any) -> None:
        entry = (timestamp, key)
        if entry not in self.live:
            self.live.add(entry)
            heapq.heappush(self._heap, (timestamp, next(self._sequence), key))

    def discard(self, timestamp: int, key: Any) -> None:
        self.live.discard((timestamp, key))

    def pop_due(self, watermark: int) -> tuple[int, Any] | None:
        """The earliest live timer at or before `watermark` (removed), or None."""
        heap = self._heap
        while heap and heap[0][0] <= watermark:
            timestamp, _, key = heapq.heappop(heap)
            entry = (timestamp, key)
            if entry in self.live:
                self.live.discard(entry)
                return entry
        return None

    def next_timestamp(self) -> int | None:
        while self._heap and (self._heap[0][0], self._heap[0][2]) not in self.live:
            heapq.heappop(self._heap)
        return self._heap[0][0] if self._heap else None


class _Timers(TimerService):
    """Per-key timers of a process operator. Processing-time timers go to the task's clock; event-time
    timers fire when the watermark passes them (at the latest at the end of input)."""

    def __init__(self, operator: _ProcessOperatorBase) -> None:
        self.operator = operator
        self.processing: set[tuple[int, Any]] = set()
        self.event = EventTimeTimers()
        self.watermark = MIN_WATERMARK

    def _key(self) -> Any:
        backend = self.operator.backend
        if backend is None:
            raise RuntimeError(f"{self.operator.name}: timers need a keyed stream (use key_by before process)")
        key = backend.current_key
        if key is NO_KEY:
            raise RuntimeError(f"{self.operator.name}: a timer belongs to a key, and no key is current here (open(), "
                               "close(), process_broadcast_element): register timers while processing a keyed "
                               "record or in on_timer")
        return key

    def current_processing_time(self) -> int:
        return self.operator.context.processing_time.now_ms()

    def current_watermark(self) -> int:
        return self.watermark

    def register_processing_time_timer(self, timestamp: int) -> None:
        entry = (timestamp, self._key())
        if entry not in self.processing:
            self.processing.add(entry)
            if self.operator.context.runtime_mode != "BATCH":  # BATCH: they fire at the end of input
                self.operator.context.processing_time.register(timestamp, _ignoring_time(self._fire_processing, entry))

    def delete_processing_time_timer(self, timestamp: int) -> None:
        self.processing.discard((timestamp, self._key()))

    def register_event_time_timer(self, timestamp: int) -> None:
        self.event.add(timestamp, self._key())

    def delete_event_time_timer(self, timestamp: int) -> None:
        self.event.discard(timestamp, self._key())

    def _fire_processing(self, entry: tuple[int, Any]) -> None:
        if entry in self.processing:  # not deleted meanwhile
            self.processing.discard(entry)
            self.operator.fire_timer(entry[0], entry[1], TimeDomain.PROCESSING_TIME)

    def advance_watermark(self, watermark: int) -> None:
        self.watermark = watermark
        while (entry := self.event.pop_due(watermark)) is not None:
            self.operator.fire_timer(entry[0], entry[1], TimeDomain.EVENT_TIME)


class _ProcessOperatorBase(_UserFunctionOperator):
    method = "process_element"
    _restored_timers: list[dict[str, Any]] = []  # set by initialize_state on a restore

    def open(self) -> None:
        super().open()
        self.ctx = _Context(self)
        self.timers = _Timers(self)
        self._restore_timers()

    def _call_all(self, call: Callable[..., Any], batch: list[Any], timestamps: list[int] | None,
                  select: Callable[[Any], Any] | None, *extra: Any) -> None:
        """`call(record, *extra, ctx)` per record, with the record's key and timestamp set; whatever
        the calls emit goes on with the timestamp of the record that made it."""
        # (backend is used only with a key selector, i.e. on a keyed stream, where setup() made one)
        ctx, backend = self.ctx, cast(KeyedStateBackend, self.backend)
        out = ctx.pending = []
        stamps: list[int] | None = None
        what = f"{self.name} (process_element)"
        if timestamps is None:
            ctx.current_timestamp = None
            for record in batch:
                if select is not None:
                    backend.current_key = select(record)
                emit_all(call(record, *extra, ctx), out, what)
        else:
            stamps = []
            for record, timestamp in zip(batch, timestamps):
                if select is not None:
                    backend.current_key = select(record)
                ctx.current_timestamp = timestamp
                before = len(out)
                emit_all(call(record, *extra, ctx), out, what)
                stamps.extend([timestamp] * (len(out) - before))
        ctx.pending = []
        route_outputs(self.output, out, stamps)

    def fire_timer(self, timestamp: int, key: Any, domain: TimeDomain) -> None:
        if self.backend is not None:
            self.backend.current_key = key
        ctx = self.ctx
        ctx.domain = domain
        ctx.current_timestamp = timestamp
        out = ctx.pending = []
        emit_all(self.function.on_timer(timestamp, ctx), out, f"{self.name} (on_timer)")
        ctx.domain = None
        ctx.pending = []
        # As Flink: what an event-time timer emits carries the timer's time; a processing-time one, none.
        route_outputs(self.output, out, [timestamp] * len(out) if domain == TimeDomain.EVENT_TIME else None)

    def process_watermark(self, watermark: int) -> None:
        self.timers.advance_watermark(watermark)
        super().process_watermark(watermark)

    def end_input(self) -> None:
        # End of a bounded input is the end of event time: every event-time timer fires, as in Flink.
        self.timers.advance_watermark(MAX_WATERMARK)
        if self.context.runtime_mode == "BATCH":
            # BATCH: processing time does not advance during the job; its timers fire at the end of input.
            for entry in sorted(self.timers.processing, key=lambda e: e[0]):
                self.timers._fire_processing(entry)

    def snapshot_state(self, checkpoint_id: int) -> dict[str, Any]:
        state = super().snapshot_state(checkpoint_id)
        state["timers"] = {"processing": list(self.timers.processing), "event": list(self.timers.event.live),
                           "watermark": self.timers.watermark}
        return state

    def initialize_state(self, states: list[dict[str, Any]]) -> None:
        super().initialize_state(states)
        self._restored_timers = [s["timers"] for s in states if "timers" in s]

    def _restore_timers(self) -> None:
        owns = self.backend.owns if self.backend is not None else (lambda key: True)
        for timers in self._restored_timers:
            for timestamp, key in timers["processing"]:
                if owns(key):
                    entry = (timestamp, key)
                    self.timers.processing.add(entry)
                    if self.context.runtime_mode != "BATCH":
                        self.context.processing_time.register(
                            timestamp, _ignoring_time(self.timers._fire_processing, entry))
            for timestamp, key in timers["event"]:
                if owns(key):
                    self.timers.event.add(timestamp, key)


class ProcessOperator(_ProcessOperatorBase):
    def process_batch(self, batch: list[Any], timestamps: list[int] | None = None) -> None:
        self._call_all(self.call, batch, timestamps, None)


class KeyedProcessOperator(_ProcessOperatorBase):
    def process_batch(self, batch: list[Any], timestamps: list[int] | None = None) -> None:
        self._call_all(self.call, batch, timestamps, self.key_selector)


class KeyedReduceOperator(_UserFunctionOperator):
    """Streaming: emits every updated value per key. BATCH runtime mode: only each key's final value, at
    the end of input (as Flink's batch execution does)."""

    method = "reduce"
    # KeyedStream.reduce/sum/min/max set the key selector, so setup() makes the keyed backend.
    backend: KeyedStateBackend
    key_selector: Callable[[Any], Any]

    def open(self) -> None:
        super().open()
        name = f"_reduce_{self.name}"
        raw = self.backend.raw_table(name)
        self.values: MutableMapping[Any, Any] = raw if raw is not None else ValueStateTable(self.backend, name)
        self.emit_updates = self.context.runtime_mode != "BATCH"
        # A ReduceFunction may keep keyed state of its own (from the runtime context open() got): the reduce
        # of a key must see that key's. A plain callable (a lambda, sum/min/max) gets no runtime context.
        self.sets_current_key = is_rich(self.function)

    def process_batch(self, batch: list[Any], timestamps: list[int] | None = None) -> None:
        values, select, reduce = self.values, self.key_selector, self.call
        out: list[Any] = []
        emit = out.append if self.emit_updates else None
        missing = values.get  # local alias: this loop is the hot path of every keyed aggregation
        if self.sets_current_key:
            backend = self.backend
            for record in batch:
                key = select(record)
                current = missing(key, _NONE)
                if current is _NONE:
                    value = record
                else:
                    backend.current_key = key
                    value = reduce(current, record)
                values[key] = value
                if emit is not None:
                    emit(value)
        else:
            for record in batch:
                key = select(record)
                current = missing(key, _NONE)
                value = record if current is _NONE else reduce(current, record)
                values[key] = value
                if emit is not None:
                    emit(value)
        if out:
            self.output.collect_batch(out, timestamps)

    def end_input(self) -> None:
        if not self.emit_updates and self.values:
            self.output.collect_batch(list(self.values.values()))


_NONE = object()


def _ignoring_time(callback: Callable[[Any], None], argument: Any) -> Callable[[int], None]:
    """A processing-time callback that calls `callback(argument)` (bound now, not when the timer fires)."""
    return lambda _timestamp: callback(argument)


class SinkOperator(_UserFunctionOperator):
    method = "invoke"

    def process_batch(self, batch: list[Any], timestamps: list[int] | None = None) -> None:
        invoke = self.call
        for record in batch:
            invoke(record, None)


class PrintSinkOperator(StreamOperator):
    """`print(sink_identifier)`: one line per record on stdout, prefixed as Flink's PrintSinkOutputWriter
    does (`<identifier>:<subtask + 1>> `, either part only when there is one). A record of a declared type
    prints as PyFlink prints it, Java's toString of the converted record (`(hi,1)`, `+I[hi, 1]`); an
    undeclared (pickled) one as `str(value)`."""

    def __init__(self, name: str = "Print to Std. Out", stream: str = "stdout", type_info: Any = None,
                 identifier: str | None = None) -> None:
        self.name = name
        self.stream = stream
        self.type_info = type_info
        self.identifier = identifier

    def open(self) -> None:
        from ha_flink.common.java_strings import java_string
        from ha_flink.common.typeinfo import PickledBytesTypeInfo

        info = self.context.info
        prefix = self.identifier or ""
        if info.parallelism > 1:
            prefix += f"{':' if prefix else ''}{info.subtask_index + 1}"
        self.prefix = f"{prefix}> " if prefix else ""
        declared = self.type_info is not None and not isinstance(self.type_info, PickledBytesTypeInfo)
        type_info = self.type_info
        self.text: Callable[[Any], str] = (lambda value: java_string(value, type_info)) if declared else str

    def process_batch(self, batch: list[Any], timestamps: list[int] | None = None) -> None:
        if not batch:
            return
        prefix, text = self.prefix, self.text
        lines = "".join(f"{prefix}{text(record)}\n" for record in batch)
        stream = sys.stdout if self.stream == "stdout" else sys.stderr
        stream.write(lines)
        stream.flush()


__all__ = [
    "FilterOperator", "FlatMapOperator", "KeyedProcessOperator", "KeyedReduceOperator", "MapOperator",
    "PrintSinkOperator", "ProcessOperator", "SinkFunction", "SinkOperator",
]
