"""One subtask: instantiate the vertex's chain, open it, feed it (from a source reader or the input gate),
fire processing-time timers between batches, end it, and tell downstream that this partition ended."""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from ha_flink.runtime.graph.job_graph import JobVertex
from ha_flink.runtime.operators.base import OperatorContext, ProcessingTimeService, StreamOperator, TaskInfo
from ha_flink.runtime.task.channels import EndOfPartition, InputGate, RecordWriter, TaskCancelled

logger = logging.getLogger(__name__)


def assign_splits(splits: list[Any], parallelism: int, subtask_index: int) -> list[Any]:
    """Static round-robin assignment of a source's splits to its subtasks."""
    return splits[subtask_index::parallelism]


class _ChainOutput:
    def __init__(self, operator: StreamOperator) -> None:
        self.collect_batch = operator.process_batch


class _WritersOutput:
    def __init__(self, writers: list[RecordWriter]) -> None:
        self.writers = writers
        if len(writers) == 1:
            self.collect_batch = writers[0].emit  # the common case without a loop

    def collect_batch(self, batch: list[Any]) -> None:
        if batch:
            for writer in self.writers:
                writer.emit(batch)


class Task:
    def __init__(self, vertex: JobVertex, subtask_index: int, gate: InputGate | None, writers: list[RecordWriter],
                 cancelled: threading.Event, runtime_mode: str = "STREAMING", attempt: int = 0,
                 job_parameters: dict[str, str] | None = None) -> None:
        self.vertex = vertex
        self.subtask_index = subtask_index
        self.gate = gate
        self.writers = writers
        self.cancelled = cancelled
        self.info = TaskInfo(vertex.name, subtask_index, vertex.parallelism, vertex.max_parallelism, attempt,
                             dict(job_parameters or {}))
        self.runtime_mode = runtime_mode
        self.timers = ProcessingTimeService()
        self.records_in = 0

    @property
    def display_name(self) -> str:
        return f"{self.vertex.name} ({self.subtask_index + 1}/{self.vertex.parallelism})"

    def run(self) -> None:
        source, operators = self.vertex.instantiate()
        output = _WritersOutput(self.writers)
        context = OperatorContext(self.info, self.timers, self.runtime_mode)
        opened: list[StreamOperator] = []
        try:
            for index in range(len(operators) - 1, -1, -1):  # tail first, so each operator's output is ready
                operator = operators[index]
                operator.setup(context, output)
                operator.open()
                opened.append(operator)
                output = _ChainOutput(operator)
            head = output
            if source is not None:
                self._run_source(source, head)
            else:
                self._run_inputs(head)
            for operator in operators:
                operator.end_input()
                self.timers.fire_due()
            for writer in self.writers:
                writer.end()
        finally:
            for operator in reversed(opened):  # only what was opened, head first
                try:
                    operator.close()
                except Exception:
                    logger.exception("%s: closing %s failed", self.display_name, operator.name)

    def _run_source(self, source: Any, head: Any) -> None:
        splits = assign_splits(source.create_splits(self.vertex.parallelism), self.vertex.parallelism,
                               self.subtask_index)
        reader = source.create_reader(splits)
        try:
            while not self.cancelled.is_set():
                batch = reader.poll_batch()
                if batch is None:
                    return
                if batch:
                    self.records_in += len(batch)
                    head.collect_batch(batch)
                self.timers.fire_due()
            raise TaskCancelled()
        finally:
            reader.close()

    def _run_inputs(self, head: Any) -> None:
        gate = self.gate
        open_channels = gate.channels
        timers = self.timers
        while open_channels:
            if self.cancelled.is_set():
                raise TaskCancelled()
            deadline = timers.next_deadline()
            wait = 0.1 if deadline is None else max(0.0, min(0.1, deadline / 1000 - time.time()))
            item = gate.get(wait)
            if item is not None:
                data = item[1]
                if type(data) is list:
                    self.records_in += len(data)
                    head.collect_batch(data)
                elif isinstance(data, EndOfPartition):
                    open_channels -= 1
            if deadline is not None:
                timers.fire_due()
