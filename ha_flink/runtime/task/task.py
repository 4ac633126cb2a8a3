"""One subtask: instantiate the vertex's chain, restore its state, open it, feed it (from a source reader or
the input gate), fire processing-time timers between batches, end it, and tell downstream that this
partition ended.

Checkpoints: a source subtask takes a checkpoint between two batches when triggered, then sends the
barrier downstream. A subtask with inputs aligns barriers (exactly-once): once a channel delivered the
barrier of checkpoint n, its further items wait in a buffer until every open channel delivered it; then
the subtask snapshots its operators, forwards the barrier and drains the buffer in order.

Snapshots are asynchronous, as in Flink: on the task thread only the synchronous part runs (operators fix
what their snapshot holds: a copy of the heap tables, a RocksDB checkpoint); the task's snapshot thread
then materializes it (pickles, uploads state files) and hands it on, while records keep flowing. A
snapshot that cannot be materialized or written declines the checkpoint rather than failing the task; an
operator whose synchronous part raises fails the task (its state may be half-changed)."""

from __future__ import annotations

import collections
import concurrent.futures
import logging
import pickle
import threading
import time
from typing import Any, Callable

from ha_flink.runtime.checkpoint.barrier import CheckpointBarrier, TaskSnapshot
from ha_flink.runtime.graph.job_graph import JobVertex
from ha_flink.runtime.key_groups import KeyHash
from ha_flink.runtime.operators.base import (
    MAX_WATERMARK, MIN_WATERMARK, OperatorContext, Output, ProcessingTimeService, StreamOperator, TaskInfo,
)
from ha_flink.runtime.state.backend import KeyedStateSnapshot, SnapshotStorage, StateBackendSettings
from ha_flink.runtime.state.operator_state import OperatorStateBackend
from ha_flink.runtime.streamrecord import ACTIVE, IDLE, StampedBatch, Watermark, WatermarkStatus
from ha_flink.runtime.task.channels import (
    END_OF_DATA, EndOfData, EndOfPartition, InputGate, RecordWriter, TaskCancelled,
)

logger = logging.getLogger(__name__)


def assign_splits(splits: list[Any], parallelism: int, subtask_index: int) -> list[Any]:
    """Static round-robin assignment of a source's splits to its subtasks."""
    return splits[subtask_index::parallelism]


def _take_unblocked(held: collections.deque[tuple[int, Any]], blocked: set[int]) -> tuple[int, Any] | None:
    """The oldest held item of a channel that is not blocked (removed from `held`), or None."""
    for index, item in enumerate(held):
        if item[0] not in blocked:
            del held[index]
            return item
    return None


class _SideOutputs:
    """The side outputs of one operator of the chain: the writers of the side-output edges that start at
    it, by OutputTag id. A side output belongs to its operator (two operators of a chain may use the same
    tag id); one nobody consumes is dropped, as in Flink."""

    def __init__(self, writers: list[RecordWriter], edges: list[Any], chain_position: int) -> None:
        self.by_tag: dict[str, list[RecordWriter]] = {}
        for writer, edge in zip(writers, edges):
            if edge.output_tag is not None and edge.output_operator == chain_position:
                self.by_tag.setdefault(edge.output_tag, []).append(writer)

    def collect_side(self, tag_id: str, batch: list[Any], timestamps: list[int] | None = None) -> None:
        for writer in self.by_tag.get(tag_id, ()):
            writer.emit(batch, timestamps)


class _ChainOutput:
    def __init__(self, operator: StreamOperator, sides: _SideOutputs) -> None:
        self.collect_batch = operator.process_batch
        self.emit_watermark = operator.process_watermark
        self.emit_watermark_status = operator.process_watermark_status
        self.collect_side = sides.collect_side


class _WritersOutput:
    """The end of the chain: main-output records go to the writers of main-output edges; watermarks and
    watermark status to every writer (side-output consumers need event time too)."""

    def __init__(self, writers: list[RecordWriter], tags: list[str | None], sides: _SideOutputs) -> None:
        self.all_writers = writers
        self.writers = [writer for writer, tag in zip(writers, tags) if tag is None]
        self.collect_side = sides.collect_side
        if len(self.writers) == 1:
            # the common case without a loop (an instance attribute shadowing the method, which mypy refuses)
            self.collect_batch = self.writers[0].emit  # type: ignore[method-assign]

    def collect_batch(self, batch: list[Any], timestamps: list[int] | None = None) -> None:
        if batch:
            for writer in self.writers:
                writer.emit(batch, timestamps)

    def emit_watermark(self, watermark: int) -> None:
        event = Watermark(watermark)
        for writer in self.all_writers:
            writer.broadcast(event)

    def emit_watermark_status(self, idle: bool) -> None:
        event = IDLE if idle else ACTIVE
        for writer in self.all_writers:
            writer.broadcast(event)


class Task:
    def __init__(self, vertex: JobVertex, subtask_index: int, gate: InputGate | None, writers: list[RecordWriter],
                 cancelled: threading.Event, runtime_mode: str = "STREAMING", attempt: int = 0,
                 job_parameters: dict[str, str] | None = None, restored: dict[str, Any] | None = None,
                 on_snapshot: Callable[[TaskSnapshot], None] | None = None, checkpointing: bool = False,
                 aligned: bool = True, on_data_ended: Callable[[], object] | None = None,
                 on_decline: Callable[[int, str], object] | None = None,
                 state_backend: StateBackendSettings | None = None,
                 snapshot_storage: SnapshotStorage | None = None, key_hash: str = KeyHash.FLINK.value) -> None:
        self.vertex = vertex
        self.subtask_index = subtask_index
        self.gate = gate
        self.writers = writers
        self.cancelled = cancelled
        self.info = TaskInfo(vertex.name, subtask_index, vertex.parallelism, vertex.max_parallelism, attempt,
                             dict(job_parameters or {}), KeyHash(key_hash))
        self.runtime_mode = runtime_mode
        self.timers = ProcessingTimeService()
        self.records_in = 0
        self.input_watermarks: _InputWatermarks | None = None  # (a task with inputs: its event time)
        self.restored = restored  # {"source": splits or None, "operators": [[state, ...] per operator]}
        self.on_snapshot = on_snapshot
        self._triggers: collections.deque[CheckpointBarrier] = collections.deque()
        self._completed: collections.deque[int] = collections.deque()
        self._operators: list[StreamOperator] = []
        self._reader: Any = None
        self.checkpointing = checkpointing
        self.aligned = aligned  # EXACTLY_ONCE aligns barriers; AT_LEAST_ONCE lets every channel flow on
        self.on_data_ended = on_data_ended  # tells the coordinator: a final checkpoint can come now
        self._data_ended = False
        self._final_checkpoint: int | None = None  # the first checkpoint taken after the end of input
        self._notified = 0  # the highest checkpoint known complete
        self.on_decline = on_decline
        self.state_backend = state_backend or StateBackendSettings()
        self.snapshot_storage = snapshot_storage
        self._snapshot_thread: concurrent.futures.ThreadPoolExecutor | None = None
        self.finished = False

    # -- called from other threads (the coordinator) ---------------------------------------------------

    def trigger_checkpoint(self, checkpoint_id: int, timestamp_ms: int, savepoint: bool = False,
                           drain: bool = False, stop: bool = False) -> None:
        """For source subtasks: take checkpoint `checkpoint_id` between the next two batches (with `drain`,
        end the input first: the job finishes with this savepoint as its final checkpoint; with `stop`,
        emit nothing after it until the job ends, or resume when a later checkpoint shows it failed)."""
        self._triggers.append(CheckpointBarrier(checkpoint_id, timestamp_ms, savepoint, drain, stop))

    def notify_checkpoint_complete(self, checkpoint_id: int) -> None:
        self._completed.append(checkpoint_id)

    @property
    def display_name(self) -> str:
        return f"{self.vertex.name} ({self.subtask_index + 1}/{self.vertex.parallelism})"

    @property
    def records_out(self) -> int:
        """numRecordsOut: records sent downstream (over every output edge; a sink sends none)."""
        return sum(writer.records_out for writer in self.writers)

    @property
    def back_pressured_s(self) -> float:
        """Seconds spent waiting for space in a full output channel."""
        return sum(writer.clock.seconds() for writer in self.writers)

    def run(self) -> None:
        source, operators = self.vertex.instantiate()
        for writer in self.writers:
            writer.open()
        edges = self.vertex.outputs
        tags = [edge.output_tag for edge in edges]
        output: Output = _WritersOutput(self.writers, tags, _SideOutputs(self.writers, edges, len(operators) - 1))
        context = self.context = OperatorContext(
            self.info, self.timers, self.runtime_mode, self.checkpointing, self.state_backend,
            self.snapshot_storage, f"{self.vertex.id}-{self.subtask_index}-{self.info.attempt_number}")
        opened: list[StreamOperator] = []
        set_up: list[StreamOperator] = []
        try:
            self._operators = operators
            restored_states = (self.restored or {}).get("operators") or [[] for _ in operators]
            for index in range(len(operators) - 1, -1, -1):  # tail first, so each operator's output is ready
                operator = operators[index]
                operator.chain_index = index
                operator.setup(context, output)
                set_up.append(operator)
                if self.restored is not None:
                    operator.initialize_state(restored_states[index])
                operator.open()
                opened.append(operator)
                output = _ChainOutput(operator, _SideOutputs(self.writers, edges, index - 1))
            head = output
            if source is not None:
                self._run_source(source, head)
                self._end_of_data()
            else:
                self._run_inputs(head)
            self._await_final_checkpoint()
            self.finished = True
            for writer in self.writers:
                writer.end()
        except TaskCancelled:
            # A notification that came before the cancel still commits: its checkpoint is in the store,
            # so committing is what any restore would do (and a stop-with-savepoint's output depends on it).
            if self._completed and len(opened) == len(operators):
                try:
                    self._notify_completed()
                except Exception:
                    logger.exception("%s: committing a completed checkpoint while cancelling failed",
                                     self.display_name)
            raise
        finally:
            if self._snapshot_thread is not None:  # snapshots still in flight belong to a task that is gone
                self._snapshot_thread.shutdown(wait=False, cancel_futures=True)
            for operator in reversed(opened):  # only what was opened, head first
                try:
                    operator.close()
                except Exception:
                    logger.exception("%s: closing %s failed", self.display_name, operator.name)
            for operator in set_up:
                try:
                    operator.dispose()
                except Exception:
                    logger.exception("%s: disposing the state of %s failed", self.display_name, operator.name)

    def _run_source(self, source: Any, head: Any) -> None:
        restored = (self.restored or {}).get("source")
        if restored is not None:
            splits = restored  # what was left to read at the restored checkpoint
        else:
            splits = assign_splits(source.create_splits(self.vertex.parallelism), self.vertex.parallelism,
                                   self.subtask_index)
        reader = self._reader = source.create_reader(splits)
        stopped_at: int | None = None  # a stop-with-savepoint's barrier went out: emit nothing after it
        try:
            while not self.cancelled.is_set():
                while self._triggers:
                    if self._triggers[0].drain:
                        # stop --drain: the input ends here; run() ends the data (END_OF_DATA, timers and
                        # windows fire), and _await_final_checkpoint takes this savepoint after it
                        return
                    barrier = self._triggers.popleft()
                    if stopped_at is not None and self._notified < stopped_at:
                        stopped_at = None  # a later checkpoint: the stop's savepoint failed, so read on
                    self._checkpoint(barrier)
                    if barrier.stop:
                        stopped_at = barrier.checkpoint_id
                self._notify_completed()
                if stopped_at is not None:  # (until the job master ends the job, or a later checkpoint)
                    self.timers.fire_due()
                    time.sleep(0.005)
                    continue
                batch = reader.poll_batch()
                if batch is None:
                    return
                if batch:
                    self.records_in += len(batch)
                    if type(batch) is StampedBatch:  # a source that knows its records' timestamps
                        head.collect_batch(batch.values, batch.timestamps)
                    else:
                        head.collect_batch(batch)
                self.timers.fire_due()
            raise TaskCancelled()
        finally:
            reader.close()

    @property
    def data_ended(self) -> bool:
        return self._data_ended

    def _end_of_data(self) -> None:
        """All input is in: operators finish (batch results, last event-time timers, sink parts)."""
        self._data_ended = True
        for operator in self._operators:
            operator.end_input()
            self.timers.fire_due()
        if self.checkpointing:
            for writer in self.writers:
                writer.broadcast(END_OF_DATA)
            if self.on_data_ended is not None:
                self.on_data_ended()

    def _await_final_checkpoint(self) -> None:
        """With checkpointing on, stay until a checkpoint taken after the end of input completed (its
        notification commits the last output), as Flink's final checkpoint."""
        if not self.checkpointing:
            return
        while not self.cancelled.is_set():
            while self._triggers:  # sources keep taking checkpoints (with nothing left to read)
                self._checkpoint(self._triggers.popleft())
            self._notify_completed()
            if self._final_checkpoint is not None and self._notified >= self._final_checkpoint:
                return
            time.sleep(0.005)  # waiting for the coordinator's next trigger or notification
        raise TaskCancelled()

    def _checkpoint(self, barrier: CheckpointBarrier) -> None:
        """The synchronous part of a checkpoint: barrier downstream, each operator's state fixed as it is
        now; the rest goes to the snapshot thread."""
        if self._data_ended and self._final_checkpoint is None:
            self._final_checkpoint = barrier.checkpoint_id
        for writer in self.writers:
            writer.broadcast(barrier)
        self.context.taking_savepoint = barrier.savepoint
        self.context.checkpoint_timestamp_ms = barrier.timestamp_ms
        try:
            operator_states = [operator.snapshot_state(barrier.checkpoint_id) for operator in self._operators]
        finally:
            self.context.taking_savepoint = False
        source_state = self._reader.snapshot() if self._reader is not None else None
        if self._snapshot_thread is None:
            self._snapshot_thread = concurrent.futures.ThreadPoolExecutor(
                1, thread_name_prefix=f"snapshot {self.display_name}")
        self._snapshot_thread.submit(self._materialize, barrier.checkpoint_id, source_state, operator_states)

    def _materialize(self, checkpoint_id: int, source_state: Any, operator_states: list[dict[str, Any]]) -> None:
        """On the snapshot thread: upload what the operators' snapshots need, pickle, hand on."""
        shared_urls: list[str] = []
        shared_bytes = uploaded_bytes = 0
        try:
            for state in operator_states:
                for name, value in state.items():
                    if isinstance(value, KeyedStateSnapshot):
                        state[name] = value.materialize(self.snapshot_storage)
                        shared_urls.extend(value.shared_urls)
                        shared_bytes += value.shared_bytes
                        uploaded_bytes += value.uploaded_bytes
            data = pickle.dumps({"source": source_state, "operators": operator_states}, protocol=5)
            restore_from_all = any(OperatorStateBackend.needs_all_on_restore(state["operator"])
                                   for state in operator_states if "operator" in state)
            if self.on_snapshot is not None:
                self.on_snapshot(TaskSnapshot(checkpoint_id, self.vertex.id, self.subtask_index, data,
                                              shared_urls, shared_bytes, uploaded_bytes, restore_from_all))
        except Exception as error:
            for state in operator_states:
                for value in state.values():
                    if isinstance(value, KeyedStateSnapshot):
                        value.discard()
            reason = f"{self.display_name} could not snapshot checkpoint {checkpoint_id}: " \
                     f"{type(error).__name__}: {error}"
            logger.warning("%s", reason)
            if self.on_decline is not None:
                self.on_decline(checkpoint_id, reason)

    def _notify_completed(self) -> None:
        while self._completed:
            checkpoint_id = self._completed.popleft()
            self._notified = max(self._notified, checkpoint_id)
            for operator in self._operators:
                operator.notify_checkpoint_complete(checkpoint_id)

    def _run_inputs(self, head: Any) -> None:
        gate = self.gate
        assert gate is not None  # (a task without a source has inputs, so a gate)
        open_channels = gate.channels
        timers = self.timers
        # Which input of the head operator each channel feeds (two-input operators: connect, joins).
        second = [False] * gate.channels
        offset = 0
        for edge in self.vertex.inputs:
            width = 1 if edge.is_pointwise else edge.source_parallelism
            for channel in range(offset, offset + width):
                second[channel] = edge.type_number == 1
            offset += width
        head2 = self._operators[0].process_batch2 if any(second) else None
        watermarks = self.input_watermarks = _InputWatermarks(gate.channels, head)
        aligning: CheckpointBarrier | None = None
        data_ended: set[int] = set()  # channels that delivered EndOfData (or ended outright)
        blocked: set[int] = set()  # channels that delivered the barrier being aligned
        held: collections.deque[tuple[int, Any]] = collections.deque()  # their later items, in order
        while open_channels:
            if self.cancelled.is_set():
                raise TaskCancelled()
            if self._completed:
                self._notify_completed()
            deadline = timers.next_deadline()
            item: tuple[int, Any] | None = _take_unblocked(held, blocked) if held else None
            if item is None:  # (a held item of an open channel always goes before that channel's newer ones)
                wait = 0.1 if deadline is None else max(0.0, min(0.1, deadline / 1000 - time.time()))
                item = gate.get(wait)
            if item is not None:
                channel, data = item
                if channel in blocked and self.aligned:
                    held.append(item)
                elif type(data) is list:
                    self.records_in += len(data)
                    if head2 is not None and second[channel]:
                        head2(data)
                    else:
                        head.collect_batch(data)
                elif type(data) is StampedBatch:
                    self.records_in += len(data.values)
                    if watermarks.idle[channel]:  # records make an idle channel active again
                        watermarks.on_status(channel, False)
                    if head2 is not None and second[channel]:
                        head2(data.values, data.timestamps)
                    else:
                        head.collect_batch(data.values, data.timestamps)
                elif type(data) is Watermark:
                    watermarks.on_watermark(channel, data.timestamp)
                elif type(data) is WatermarkStatus:
                    watermarks.on_status(channel, data.idle)
                elif isinstance(data, CheckpointBarrier):
                    if aligning is None or data.checkpoint_id > aligning.checkpoint_id:
                        aligning, blocked = data, {channel}
                    elif data.checkpoint_id == aligning.checkpoint_id:
                        blocked.add(channel)
                    # (an older checkpoint's barrier: that checkpoint was given up; ignore it)
                elif isinstance(data, (EndOfData, EndOfPartition)):
                    if isinstance(data, EndOfPartition):
                        open_channels -= 1
                    data_ended.add(channel)
                    watermarks.on_end(channel)
                    if len(data_ended) == gate.channels and not self._data_ended:
                        self._end_of_data()
                if aligning is not None and len(blocked) >= open_channels:
                    self._checkpoint(aligning)
                    aligning, blocked = None, set()
            if deadline is not None:
                timers.fire_due()

    @property
    def current_input_watermark(self) -> int:
        """Flink's currentInputWatermark: MIN_WATERMARK (Long.MIN_VALUE) for a source or before any."""
        watermarks = self.input_watermarks
        return watermarks.current if watermarks is not None else MIN_WATERMARK


class _InputWatermarks:
    """The task's event time, as Flink's StatusWatermarkValve: the minimum of the watermarks of its
    *aligned* channels. An idle channel is unaligned (left out) until it is active again and its watermark
    caught up with the output; a channel whose data ended counts as at the end of event time. When the last
    active channel goes idle, the valve flushes the maximum over all channels and goes idle itself."""

    def __init__(self, channels: int, head: Any) -> None:
        self.channel_watermarks = [MIN_WATERMARK] * channels
        self.idle = [False] * channels
        self.aligned = [True] * channels
        self.head = head
        self.current = MIN_WATERMARK
        self.valve_idle = False

    def on_watermark(self, channel: int, watermark: int) -> None:
        if self.valve_idle or self.idle[channel] or watermark <= self.channel_watermarks[channel]:
            return  # an idle channel's watermark is ignored, as in Flink
        self.channel_watermarks[channel] = watermark
        if not self.aligned[channel] and watermark >= self.current:
            self.aligned[channel] = True
        self._output_new_minimum()

    def on_status(self, channel: int, idle: bool) -> None:
        if idle and not self.idle[channel]:
            self.idle[channel] = True
            self.aligned[channel] = False
            if all(self.idle):
                if self.channel_watermarks[channel] == self.current:
                    # Nothing will advance any more: flush the largest watermark any channel reached.
                    self._output(max(self.channel_watermarks))
                self.valve_idle = True
                self.head.emit_watermark_status(True)
            elif self.channel_watermarks[channel] == self.current:
                self._output_new_minimum()
        elif not idle and self.idle[channel]:
            self.idle[channel] = False
            if self.channel_watermarks[channel] >= self.current:
                self.aligned[channel] = True
            if self.valve_idle:
                self.valve_idle = False
                self.head.emit_watermark_status(False)

    def on_end(self, channel: int) -> None:
        """No more data on `channel`: as Flink's MAX_WATERMARK at the end of a bounded input."""
        self.on_status(channel, False)
        self.on_watermark(channel, MAX_WATERMARK)

    def _output_new_minimum(self) -> None:
        aligned = [w for w, a in zip(self.channel_watermarks, self.aligned) if a]
        if aligned:
            self._output(min(aligned))

    def _output(self, watermark: int) -> None:
        if watermark > self.current:
            self.current = watermark
            self.head.emit_watermark(watermark)
