"""The local mini cluster: runs a JobGraph inside this process, one thread per subtask, joined by bounded
in-memory channels. This is what `python job.py` uses when no cluster is involved (PyFlink's local
execution), and the reference the distributed runtime must agree with.

A failing task fails the job: every other task is cancelled and `execute()` raises `JobExecutionError`
naming the task and carrying the user's traceback."""

from __future__ import annotations

import logging
import threading
import time
import traceback
from dataclasses import dataclass, field
from typing import Callable

from ha_flink.runtime.graph.job_graph import JobGraph
from ha_flink.runtime.task.channels import InputGate, LocalChannel, RecordWriter, TaskCancelled
from ha_flink.runtime.task.task import Task

logger = logging.getLogger(__name__)

GATE_CAPACITY = 32  # batches buffered per receiving subtask before its producers block


class JobExecutionError(RuntimeError):
    """The job failed: names the failing task; the user's traceback is in `task_traceback`."""

    def __init__(self, job_id: str, task: str, task_traceback: str) -> None:
        self.job_id = job_id
        self.task = task
        self.task_traceback = task_traceback
        last = task_traceback.strip().splitlines()[-1] if task_traceback.strip() else "unknown error"
        super().__init__(f"Job {job_id} failed: task {task} raised {last}\n{task_traceback}")


class JobCancelledError(RuntimeError):
    """The job was cancelled before it finished."""


@dataclass
class JobExecutionResult:
    job_id: str
    job_name: str
    net_runtime_ms: int
    accumulators: dict[str, object] = field(default_factory=dict)

    def get_job_id(self) -> str:
        return self.job_id

    def get_net_runtime(self) -> int:
        return self.net_runtime_ms

    def get_all_accumulator_results(self) -> dict[str, object]:
        return dict(self.accumulators)


class LocalJob:
    """One job running in this process."""

    def __init__(self, graph: JobGraph, on_done: Callable[[LocalJob], None] | None = None) -> None:
        self.graph = graph
        self.cancelled = threading.Event()
        self.status = "CREATED"
        self.failure: JobExecutionError | None = None
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._on_done = on_done
        self.tasks = self._build_tasks()

    def _build_tasks(self) -> list[Task]:
        graph = self.graph
        gates: dict[tuple[str, int], InputGate] = {}
        for vertex in graph.vertices.values():
            channels = sum(1 if edge.partitioner.is_pointwise else graph.vertices[edge.source].parallelism
                           for edge in vertex.inputs)
            for index in range(vertex.parallelism):
                if channels:
                    gates[(vertex.id, index)] = InputGate(channels, GATE_CAPACITY, self.cancelled)
        tasks = []
        for vertex in graph.vertices.values():
            for index in range(vertex.parallelism):
                writers = []
                for edge in vertex.outputs:
                    target = graph.vertices[edge.target]
                    offset = self._channel_offset(target, edge)
                    if edge.partitioner.is_pointwise:
                        channels = [LocalChannel(gates[(target.id, index)], offset)]
                    else:
                        channels = [LocalChannel(gates[(target.id, t)], offset + index) for t in range(target.parallelism)]
                    writers.append(RecordWriter(_copy(edge.partitioner), channels, index))
                tasks.append(Task(vertex, index, gates.get((vertex.id, index)), writers, self.cancelled,
                                  graph.runtime_mode, job_parameters=graph.config))
        return tasks

    def _channel_offset(self, target: object, edge: object) -> int:
        """Channel numbers of a gate: each input edge's channels follow the previous edge's."""
        offset = 0
        for other in target.inputs:  # type: ignore[attr-defined]
            if other is edge:
                return offset
            offset += 1 if other.partitioner.is_pointwise else self.graph.vertices[other.source].parallelism
        raise AssertionError("edge is not an input of its target")

    def start(self) -> None:
        self.status = "RUNNING"
        self.started = time.monotonic()
        self._remaining = len(self.tasks)
        for task in self.tasks:
            threading.Thread(target=self._run_task, args=(task,), name=task.display_name, daemon=True).start()

    def _run_task(self, task: Task) -> None:
        try:
            task.run()
        except TaskCancelled:
            pass
        except BaseException:
            with self._lock:
                if self.failure is None:
                    self.failure = JobExecutionError(self.graph.job_id, task.display_name, traceback.format_exc())
            self.cancelled.set()
        finally:
            with self._lock:
                self._remaining -= 1
                finished = self._remaining == 0
            if finished:
                self.status = "FAILED" if self.failure else "CANCELED" if self.cancelled.is_set() else "FINISHED"
                self.net_runtime_ms = int((time.monotonic() - self.started) * 1000)
                self._done.set()
                if self._on_done is not None:
                    self._on_done(self)

    def cancel(self) -> None:
        if not self._done.is_set():
            self.status = "CANCELLING"
            self.cancelled.set()

    def wait(self, timeout: float | None = None) -> JobExecutionResult:
        if not self._done.wait(timeout):
            raise TimeoutError(f"job {self.graph.job_id} did not end within {timeout} s")
        if self.failure is not None:
            raise self.failure
        if self.status == "CANCELED":
            raise JobCancelledError(f"Job {self.graph.job_id} ({self.graph.name}) was cancelled")
        return JobExecutionResult(self.graph.job_id, self.graph.name, self.net_runtime_ms)

    def done(self) -> bool:
        return self._done.is_set()


def _copy(partitioner: object) -> object:
    import cloudpickle

    return cloudpickle.loads(cloudpickle.dumps(partitioner))


def execute_locally(graph: JobGraph) -> JobExecutionResult:
    job = LocalJob(graph)
    job.start()
    try:
        return job.wait()
    except KeyboardInterrupt:
        job.cancel()
        try:
            job.wait(30)
        except JobCancelledError:
            pass
        raise
