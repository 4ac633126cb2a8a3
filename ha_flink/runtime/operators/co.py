"""Two-input operators: `connect` (co-map, co-flat-map, co-process, keyed co-process), the broadcast
state pattern (broadcast process functions) and the interval join.

The task feeds the first input through `process_batch` and the second through `process_batch2`; the
watermark they see is the minimum over both inputs, as in Flink."""

from __future__ import annotations

from typing import Any, Callable, Iterable, NoReturn

from ha_flink.core.functions import (
    BaseBroadcastProcessFunction, KeyedCoProcessFunction, ProcessJoinFunction, TimeDomain, as_callable,
)
from ha_flink.core.state import BroadcastState, MapStateDescriptor
from ha_flink.runtime.operators.base import MAX_WATERMARK, MIN_WATERMARK, OperatorContext, Output, emit_all
from ha_flink.runtime.operators.basic import (
    EventTimeTimers, FlatMapOperator, _Context, _ProcessOperatorBase, _UserFunctionOperator,
)
from ha_flink.runtime.state.backend import KeyedStateBackend
from ha_flink.runtime.state.operator_state import OperatorStateBackend


class CoMapOperator(_UserFunctionOperator):
    method = "map1"
    sets_key = True

    key_selector2: Callable[[Any], Any] | None = None

    def open(self) -> None:
        super().open()
        self.call2 = self.keyed(as_callable(self.function, "map2"), self.key_selector2)

    def process_batch(self, batch: list[Any], timestamps: list[int] | None = None) -> None:
        call = self.call
        self.output.collect_batch([call(record) for record in batch], timestamps)

    def process_batch2(self, batch: list[Any], timestamps: list[int] | None = None) -> None:
        call = self.call2
        self.output.collect_batch([call(record) for record in batch], timestamps)


class CoFlatMapOperator(FlatMapOperator):
    method = "flat_map1"

    key_selector2: Callable[[Any], Any] | None = None

    def open(self) -> None:
        super().open()
        self.call1 = self.call
        self.call2 = self.keyed(as_callable(self.function, "flat_map2"), self.key_selector2)

    def process_batch2(self, batch: list[Any], timestamps: list[int] | None = None) -> None:
        self.call = self.call2  # FlatMapOperator.process_batch calls self.call
        try:
            super().process_batch(batch, timestamps)
        finally:
            self.call = self.call1


class CoProcessOperator(_ProcessOperatorBase):
    """`process` on connected streams: CoProcessFunction, or KeyedCoProcessFunction when both inputs are
    keyed (`key_selector` for the first input, `key_selector2` for the second)."""

    method = "process_element1"
    key_selector2: Callable[[Any], Any] | None = None

    def open(self) -> None:
        super().open()
        self.call2 = as_callable(self.function, "process_element2")

    def process_batch(self, batch: list[Any], timestamps: list[int] | None = None) -> None:
        self._call_all(self.call, batch, timestamps, self.key_selector)

    def process_batch2(self, batch: list[Any], timestamps: list[int] | None = None) -> None:
        self._call_all(self.call2, batch, timestamps, self.key_selector2)


# -- the broadcast state pattern -----------------------------------------------------------------------


class _ReadOnlyBroadcastState(BroadcastState):
    """What the non-broadcast side sees: changing it there would make subtasks' copies differ."""

    def __init__(self, state: BroadcastState, name: str) -> None:
        self._state = state
        self._name = name

    def _refuse(self) -> NoReturn:
        raise RuntimeError(f"broadcast state {self._name!r} is read-only in process_element; change it in "
                           "process_broadcast_element, which every subtask runs for every broadcast element")

    def put(self, key: Any, value: Any) -> None:
        self._refuse()

    def put_all(self, dict_value: dict[Any, Any]) -> None:
        self._refuse()

    def remove(self, key: Any) -> None:
        self._refuse()

    def clear(self) -> None:
        self._refuse()

    def get(self, key: Any) -> Any:
        return self._state.get(key)

    def contains(self, key: Any) -> bool:
        return self._state.contains(key)

    def items(self) -> Iterable[tuple[Any, Any]]:
        return list(self._state.items())

    def keys(self) -> Iterable[Any]:
        return list(self._state.keys())

    def values(self) -> Iterable[Any]:
        return list(self._state.values())

    def is_empty(self) -> bool:
        return self._state.is_empty()


class _BroadcastContext(_Context, BaseBroadcastProcessFunction.Context, BaseBroadcastProcessFunction.ReadOnlyContext):
    read_only = True

    def get_broadcast_state(self, state_descriptor: MapStateDescriptor) -> BroadcastState:
        operator: BroadcastProcessOperator = self.operator  # type: ignore[assignment]
        names = operator.descriptor_names
        if state_descriptor.name not in names:
            raise KeyError(f"{operator.name}: no broadcast state {state_descriptor.name!r}; this broadcast stream "
                           f"declares {sorted(names)}")
        state = operator.operator_state.get_broadcast_state(state_descriptor)
        return _ReadOnlyBroadcastState(state, state_descriptor.name) if self.read_only else state

    def current_processing_time(self) -> int:
        return self.operator.context.processing_time.now_ms()

    def current_watermark(self) -> int:
        return self.operator.timers.watermark


class BroadcastProcessOperator(_ProcessOperatorBase):
    """`connect(broadcast_stream).process(...)`: the first input is the (keyed or not) stream, the second
    the broadcast stream. Broadcast state is operator state every subtask holds whole; on restore each
    subtask takes subtask 0's copy (they are equal)."""

    method = "process_element"
    operator_state: OperatorStateBackend  # setup() always makes one

    def __init__(self, function: Any, name: str, descriptors: list[MapStateDescriptor]) -> None:
        super().__init__(function, name)
        self.descriptor_names = {d.name for d in descriptors}

    def setup(self, context: OperatorContext, output: Output) -> None:
        super().setup(context, output)
        if self.operator_state is None:
            self.operator_state = OperatorStateBackend(context.info.subtask_index, context.info.parallelism)

    def open(self) -> None:
        super().open()
        self.ctx = _BroadcastContext(self)
        self.broadcast_ctx = _BroadcastContext(self)
        self.broadcast_ctx.read_only = False
        self.call2 = as_callable(self.function, "process_broadcast_element")

    def snapshot_state(self, checkpoint_id: int) -> dict[str, Any]:
        state = super().snapshot_state(checkpoint_id)
        state.setdefault("operator", self.operator_state.snapshot())
        return state

    def process_batch(self, batch: list[Any], timestamps: list[int] | None = None) -> None:
        self._call_all(self.call, batch, timestamps, self.key_selector)

    def process_batch2(self, batch: list[Any], timestamps: list[int] | None = None) -> None:
        ctx, self.ctx = self.ctx, self.broadcast_ctx
        # Broadcast elements have no key: using keyed state (or timers) in process_broadcast_element raises
        # NoCurrentKeyError rather than reading the state of whichever key came last (Flink's Java API reaches
        # keyed state there only through applyToKeyedState, over every key).
        self.leave_keyed_context()
        try:
            self._call_all(self.call2, batch, timestamps, None)
        finally:
            self.ctx = ctx


# -- interval join -------------------------------------------------------------------------------------


class _JoinContext(ProcessJoinFunction.Context):
    def __init__(self) -> None:
        self.left_timestamp = 0
        self.right_timestamp = 0

    def get_left_timestamp(self) -> int:
        return self.left_timestamp

    def get_right_timestamp(self) -> int:
        return self.right_timestamp

    def get_timestamp(self) -> int:
        return max(self.left_timestamp, self.right_timestamp)


class IntervalJoinOperator(_UserFunctionOperator):
    """Flink's IntervalJoinOperator: a left record at time t joins right records in
    [t + lower, t + upper]. Both sides are buffered per key as {timestamp: [records]} in keyed map state
    until the watermark passes the last time they can still match; records later than the watermark are
    dropped (or go to the side output of their side)."""

    method = "process_element"
    # Both inputs are keyed streams (KeyedStream.interval_join sets both selectors), so setup() makes the
    # keyed backend.
    backend: KeyedStateBackend
    key_selector: Callable[[Any], Any]
    key_selector2: Callable[[Any], Any] | None = None

    def __init__(self, function: Any, name: str, lower: int, upper: int, lower_inclusive: bool = True,
                 upper_inclusive: bool = True, left_late_tag: str | None = None,
                 right_late_tag: str | None = None) -> None:
        super().__init__(function, name)
        if lower > upper:
            raise ValueError(f"interval join: the lower bound ({lower} ms) is after the upper bound ({upper} ms)")
        self.lower = lower if lower_inclusive else lower + 1
        self.upper = upper if upper_inclusive else upper - 1
        self.left_late_tag = left_late_tag
        self.right_late_tag = right_late_tag

    def open(self) -> None:
        super().open()
        self.left = self.backend.get_map_state(MapStateDescriptor("_interval_join_left"))
        self.right = self.backend.get_map_state(MapStateDescriptor("_interval_join_right"))
        self.join_ctx = _JoinContext()
        self.watermark = MIN_WATERMARK
        self.cleanup = {"left": EventTimeTimers(), "right": EventTimeTimers()}
        for timers in getattr(self, "_restored_timers", []):
            self._restore(timers)

    def process_batch(self, batch: list[Any], timestamps: list[int] | None = None) -> None:
        self._process(batch, timestamps, True)

    def process_batch2(self, batch: list[Any], timestamps: list[int] | None = None) -> None:
        self._process(batch, timestamps, False)

    def _process(self, batch: list[Any], timestamps: list[int] | None, is_left: bool) -> None:
        if timestamps is None:
            raise ValueError(f"{self.name}: an interval join needs records with event-time timestamps on both "
                             "inputs (assign_timestamps_and_watermarks before key_by)")
        if is_left:
            ours, others, low, high, select = self.left, self.right, self.lower, self.upper, self.key_selector
        else:
            assert self.key_selector2 is not None  # (set with key_selector by interval_join)
            ours, others, low, high, select = self.right, self.left, -self.upper, -self.lower, self.key_selector2
        timers = self.cleanup["left" if is_left else "right"]
        late_tag = self.left_late_tag if is_left else self.right_late_tag
        backend, watermark, ctx, call = self.backend, self.watermark, self.join_ctx, self.call
        out: list[Any] = []
        stamps: list[int] = []
        late: list[Any] = []
        late_stamps: list[int] = []
        for record, timestamp in zip(batch, timestamps):
            if watermark != MIN_WATERMARK and timestamp < watermark:
                late.append(record)
                late_stamps.append(timestamp)
                continue
            key = select(record)
            backend.current_key = key
            bucket = ours.get(timestamp)
            ours.put(timestamp, [record] if bucket is None else [*bucket, record])
            for other_timestamp, records in others.items():
                if other_timestamp < timestamp + low or other_timestamp > timestamp + high:
                    continue
                for other in records:
                    left, right = (record, other) if is_left else (other, record)
                    ctx.left_timestamp, ctx.right_timestamp = (timestamp, other_timestamp) if is_left \
                        else (other_timestamp, timestamp)
                    before = len(out)
                    emit_all(call(left, right, ctx), out, f"{self.name} (process_element)")
                    stamps.extend([ctx.get_timestamp()] * (len(out) - before))
            timers.add(timestamp + high if high > 0 else timestamp, key)
        if out:
            self.output.collect_batch(out, stamps)
        if late and late_tag is not None:
            self.output.collect_side(late_tag, late, late_stamps)

    def process_watermark(self, watermark: int) -> None:
        self.watermark = watermark
        self._clean_up(watermark)
        super().process_watermark(watermark)

    def end_input(self) -> None:
        self._clean_up(MAX_WATERMARK)

    def _clean_up(self, watermark: int) -> None:
        backend = self.backend
        for side, timers in self.cleanup.items():
            while (entry := timers.pop_due(watermark)) is not None:
                timer, key = entry
                backend.current_key = key
                if side == "left":
                    self.left.remove(timer if self.upper <= 0 else timer - self.upper)
                else:
                    self.right.remove(timer + self.lower if self.lower <= 0 else timer)

    def snapshot_state(self, checkpoint_id: int) -> dict[str, Any]:
        state = super().snapshot_state(checkpoint_id)
        state["join_timers"] = {side: list(timers.live) for side, timers in self.cleanup.items()}
        state["join_watermark"] = self.watermark
        return state

    def initialize_state(self, states: list[dict[str, Any]]) -> None:
        super().initialize_state(states)
        self._restored_timers = [s["join_timers"] for s in states if "join_timers" in s]

    def _restore(self, timers: dict[str, list[tuple[int, Any]]]) -> None:
        for side, entries in timers.items():
            for timestamp, key in entries:
                if self.backend.owns(key):
                    self.cleanup[side].add(timestamp, key)


__all__ = [
    "BroadcastProcessOperator", "CoFlatMapOperator", "CoMapOperator", "CoProcessOperator", "IntervalJoinOperator",
    "KeyedCoProcessFunction", "TimeDomain",
]
