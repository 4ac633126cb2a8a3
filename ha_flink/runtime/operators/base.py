"""The operator contract and the context a running operator gets.

Operators take whole batches (`process_batch(list)`) and hand whole batches to their `output`, which is
either the next operator of the chain or the task's record writers. Per-record work is therefore a loop
body, not a chain of calls: that is most of the difference between 20k and 300k records/s in Python."""

from __future__ import annotations

import heapq
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol

from ha_flink.core.functions import RuntimeContext
from ha_flink.core.output_tag import OutputTag
from ha_flink.metrics.groups import OperatorMetricGroup, TaskMetricGroup
from ha_flink.runtime.key_groups import KeyHash, key_group_assigner, key_group_range
from ha_flink.runtime.state.backend import NO_KEY, KeyedStateBackend, SnapshotStorage, StateBackendSettings
from ha_flink.runtime.state.factory import create_keyed_state_backend
from ha_flink.runtime.streamrecord import MAX_WATERMARK, MIN_WATERMARK  # noqa: F401 - re-exported


class Output(Protocol):
    """Where an operator's results go: the next operator of the chain, or the task's record writers.
    `timestamps` (one per record) is None on streams without event time."""

    def collect_batch(self, batch: list[Any], timestamps: list[int] | None = None) -> None: ...

    def collect_side(self, tag_id: str, batch: list[Any], timestamps: list[int] | None = None) -> None:
        """Records for the side output `tag_id` (an OutputTag's id); dropped when nothing consumes it."""

    def emit_watermark(self, watermark: int) -> None: ...

    def emit_watermark_status(self, idle: bool) -> None: ...


@dataclass
class TaskInfo:
    task_name: str
    subtask_index: int
    parallelism: int
    max_parallelism: int
    attempt_number: int = 0
    job_parameters: dict[str, str] = field(default_factory=dict)
    key_hash: KeyHash = KeyHash.FLINK  # the job's: how keyed state maps keys to key groups
    # the user metrics of this subtask's operators (one group each), which the TaskExecutor reports
    metric_group: TaskMetricGroup = field(default_factory=TaskMetricGroup, repr=False, compare=False)


class ProcessingTimeService:
    """Timers in wall-clock milliseconds; the task loop calls `fire_due()` between batches and sleeps at
    most until `next_deadline()`."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._timers: list[tuple[int, int, Callable[[int], None]]] = []
        self._sequence = 0

    def now_ms(self) -> int:
        return int(self._clock() * 1000)

    def register(self, timestamp_ms: int, callback: Callable[[int], None]) -> None:
        self._sequence += 1
        heapq.heappush(self._timers, (timestamp_ms, self._sequence, callback))

    def next_deadline(self) -> int | None:
        return self._timers[0][0] if self._timers else None

    def fire_due(self) -> None:
        now = self.now_ms()
        while self._timers and self._timers[0][0] <= now:
            timestamp, _, callback = heapq.heappop(self._timers)
            callback(timestamp)


class StreamRuntimeContext(RuntimeContext):
    def __init__(self, info: TaskInfo, backend: KeyedStateBackend | None, operator_name: str | None = None,
                 chain_index: int = 0) -> None:
        """`operator_name`, `chain_index`: the operator this context is for, which names its metric group
        (default: the task's name)."""
        self.info = info
        self.backend = backend
        self._operator = (operator_name or info.task_name, chain_index)
        self._metric_group: OperatorMetricGroup | None = None

    def get_metrics_group(self) -> OperatorMetricGroup:
        """This operator's group in this subtask. Made on first use: an operator without user metrics adds
        nothing to the reports."""
        if self._metric_group is None:
            self._metric_group = self.info.metric_group.add_operator(*self._operator)
        return self._metric_group

    def get_task_name(self) -> str:
        return self.info.task_name

    def get_number_of_parallel_subtasks(self) -> int:
        return self.info.parallelism

    def get_max_number_of_parallel_subtasks(self) -> int:
        return self.info.max_parallelism

    def get_index_of_this_subtask(self) -> int:
        return self.info.subtask_index

    def get_attempt_number(self) -> int:
        return self.info.attempt_number

    def get_job_parameter(self, key: str, default_value: str) -> str:
        return self.info.job_parameters.get(key, default_value)

    def _keyed(self) -> KeyedStateBackend:
        if self.backend is None:
            raise RuntimeError(f"{self.info.task_name}: keyed state is only available on a keyed stream "
                               "(after key_by)")
        return self.backend

    def get_state(self, state_descriptor: Any) -> Any:
        return self._keyed().get_state(state_descriptor)

    def get_list_state(self, state_descriptor: Any) -> Any:
        return self._keyed().get_list_state(state_descriptor)

    def get_map_state(self, state_descriptor: Any) -> Any:
        return self._keyed().get_map_state(state_descriptor)

    def get_reducing_state(self, state_descriptor: Any) -> Any:
        return self._keyed().get_reducing_state(state_descriptor)

    def get_aggregating_state(self, state_descriptor: Any) -> Any:
        return self._keyed().get_aggregating_state(state_descriptor)


@dataclass
class OperatorContext:
    info: TaskInfo
    processing_time: ProcessingTimeService
    runtime_mode: str = "STREAMING"
    checkpointing: bool = False  # on: output is committed by checkpoints, the last one after end of input
    state_backend: StateBackendSettings = field(default_factory=StateBackendSettings)
    snapshot_storage: SnapshotStorage | None = None  # where state files go (None: snapshots stay in memory)
    owner: str = "task"  # names this subtask in state file names: <vertex>-<subtask>-<attempt>
    taking_savepoint: bool = False  # set while operators snapshot for a savepoint (canonical format)
    checkpoint_timestamp_ms: int = 0  # of the checkpoint being taken, while operators snapshot


class StreamOperator:
    """Base of every operator. Subclasses override `process_batch` and, where needed, the lifecycle.

    Keyed state is read and written for the backend's `current_key`: an operator of a keyed stream sets it
    to the record's key (or the timer's, or the fired window's) before every call into user code that may
    use keyed state, and leaves the keyed context (`leave_keyed_context`) before calling user code outside
    of one (open, close, snapshot_state), where using keyed state raises NoCurrentKeyError."""

    name = "Operator"
    key_selector: Callable[[Any], Any] | None = None  # set on operators of a keyed stream
    key_type: Any = None  # that stream's key_by(key_type=): a TypeInformation, or None (pickled keys)
    key_selector2: Callable[[Any], Any] | None = None  # a keyed two-input operator's second input's
    key_type2: Any = None  # a keyed two-input operator's second input's (must equal key_type)
    output_type: Any = None  # a TypeInformation from output_type=/type_info=, or None
    chain_index = 0  # position in the task's chain (set by the task), for unique state file names

    def setup(self, context: OperatorContext, output: Output) -> None:
        self.context = context
        if getattr(self.output_type, "needs_conversion", False):
            output = _ConformingOutput(output, self.output_type.conform)
        self.output = output
        self.backend: KeyedStateBackend | None = None
        if self.key_selector is not None:
            info = context.info
            self.backend = create_keyed_state_backend(
                context.state_backend, key_group_range(info.max_parallelism, info.parallelism, info.subtask_index),
                info.max_parallelism, f"{context.owner}-{self.chain_index}",
                key_group_of=key_group_assigner(info.key_hash, self.key_type, info.max_parallelism))
        self.runtime_context = StreamRuntimeContext(context.info, self.backend, self.name, self.chain_index)

    def open(self) -> None:
        pass

    def leave_keyed_context(self) -> None:
        """No key is current until the next record or timer (keyed state access raises meanwhile)."""
        if self.backend is not None:
            self.backend.current_key = NO_KEY

    def process_batch(self, batch: list[Any], timestamps: list[int] | None = None) -> None:
        raise NotImplementedError

    def process_batch2(self, batch: list[Any], timestamps: list[int] | None = None) -> None:
        """The second input of a two-input operator (connect, interval join)."""
        raise TypeError(f"{self.name} has one input")

    def process_watermark(self, watermark: int) -> None:
        """Event time advanced to `watermark` (the minimum over this task's inputs): fire what is due,
        then pass it on. Operators with event-time timers override this and call super() last."""
        self.output.emit_watermark(watermark)

    def process_watermark_status(self, idle: bool) -> None:
        self.output.emit_watermark_status(idle)

    # -- checkpoints: state goes out as plain picklable values, comes back before open() --------------

    def snapshot_state(self, checkpoint_id: int) -> dict[str, Any]:
        """The synchronous part of a checkpoint. Values are picklable, or a KeyedStateSnapshot, which the
        task materializes off its thread."""
        state: dict[str, Any] = {}
        if self.backend is not None:
            state["keyed"] = self.backend.snapshot(checkpoint_id, canonical=self.context.taking_savepoint)
        return state

    def initialize_state(self, states: list[dict[str, Any]]) -> None:
        """`states`: this operator's snapshots from the restored checkpoint. For keyed state, every
        subtask's (after rescaling several hold our key groups); the backend keeps its own key groups."""
        if self.backend is not None:
            self.backend.restore([s["keyed"] for s in states if "keyed" in s], self.context.snapshot_storage)

    def notify_checkpoint_complete(self, checkpoint_id: int) -> None:
        if self.backend is not None:
            self.backend.notify_checkpoint_complete(checkpoint_id)

    def dispose(self) -> None:
        """After close(), also when the task failed: free the state backend (local files)."""
        if self.backend is not None:
            self.backend.dispose()

    def end_input(self) -> None:
        """All input has arrived (bounded input): emit what waits for the end."""

    def close(self) -> None:
        pass


class _ConformingOutput:
    """Makes every record of the declared type (a tuple under Types.ROW_NAMED becomes a named Row)."""

    def __init__(self, output: Output, conform: Callable[[Any], Any]) -> None:
        self.output = output
        self.conform = conform

        self.collect_side = output.collect_side
        self.emit_watermark = output.emit_watermark
        self.emit_watermark_status = output.emit_watermark_status

    def collect_batch(self, batch: list[Any], timestamps: list[int] | None = None) -> None:
        conform = self.conform
        self.output.collect_batch([conform(record) for record in batch], timestamps)


def is_rich(function: Any) -> bool:
    """Whether the operator hands `function` a runtime context (a Function object, or any object with an
    open() method): only then may it use keyed state, so only then must the current key be set before each
    call. A plain callable (a lambda, KeyedStream.sum/min/max) gets no runtime context."""
    return hasattr(function, "open") and not isinstance(function, type)


def emit_all(result: Any, out: list[Any], what: str) -> None:
    """Append every value a flat_map / process function returned or yielded (None: nothing), as PyFlink
    iterates them; a non-iterable result is a clear error rather than a silently lost record."""
    if result is None:
        return
    try:
        out.extend(result)
    except TypeError:
        raise TypeError(f"{what} returned {result!r} ({type(result).__name__}); it must return or yield an "
                        "iterable of output records") from None


def route_outputs(output: Output, out: list[Any], stamps: list[int] | None) -> None:
    """Hand `out` to `output`: `(OutputTag, value)` pairs (PyFlink's way of emitting to a side output)
    go to that side output, the rest to the main output, each with its timestamp."""
    if not out:
        return
    if not any(type(r) is tuple and len(r) == 2 and isinstance(r[0], OutputTag) for r in out):
        output.collect_batch(out, stamps)
        return
    main: list[Any] = []
    main_stamps: list[int] | None = None if stamps is None else []
    sides: dict[str, tuple[list[Any], list[int] | None]] = {}
    for index, record in enumerate(out):
        if type(record) is tuple and len(record) == 2 and isinstance(record[0], OutputTag):
            values, side_stamps = sides.setdefault(record[0].tag_id, ([], None if stamps is None else []))
            values.append(record[1])
            if side_stamps is not None and stamps is not None:  # (either both or neither)
                side_stamps.append(stamps[index])
        else:
            main.append(record)
            if main_stamps is not None and stamps is not None:  # (either both or neither)
                main_stamps.append(stamps[index])
    if main:
        output.collect_batch(main, main_stamps)
    for tag_id, (values, side_stamps) in sides.items():
        output.collect_side(tag_id, values, side_stamps)
