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

from ha_flink.runtime.checkpoint.barrier import TaskSnapshot
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
    """One job running in this process, with checkpoints when the job enables them, and restarts from
    the latest completed checkpoint under its restart strategy (as PyFlink's local mini cluster)."""

    def __init__(self, graph: JobGraph, on_done: Callable[[LocalJob], None] | None = None) -> None:
        from ha_flink.config import Configuration
        from ha_flink.runtime.scheduler.restart_strategies import restart_strategy_from_config

        self.graph = graph
        self.status = "CREATED"
        self.failure: JobExecutionError | None = None
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._on_done = on_done
        self._cancel_requested = False
        self.attempt = 0
        self.interval_ms = graph.checkpoint_interval_ms
        from ha_flink.config import StateBackendOptions
        from ha_flink.runtime.state.backend import StateBackendSettings

        config = Configuration(graph.settings)
        self.restarts = restart_strategy_from_config(config, self.interval_ms is not None)
        # Snapshots stay in this process's memory (canonical format): no checkpoint storage is involved.
        self.state_backend = StateBackendSettings(config.get(StateBackendOptions.STATE_BACKEND), False,
                                                  config.get(StateBackendOptions.ROCKSDB_LOCAL_DIR))
        # (id, snapshot per subtask, parallelism per vertex, vertices whose subtasks restore from all)
        self.latest_checkpoint: tuple[int, dict[tuple[str, int], bytes], dict[str, int], set[str]] | None = None
        self.restored_checkpoint_id: int | None = None
        self._next_checkpoint_id = 1
        self._pending: dict[int, dict[tuple[str, int], bytes]] = {}
        self._restore_from_all: dict[int, set[str]] = {}  # per pending checkpoint: vertices with union state
        self._expected: dict[int, set[tuple[str, int]]] = {}
        self._soon = threading.Event()
        self.cancelled = threading.Event()
        self.tasks: list[Task] = []

    def _build_tasks(self, restored: dict[tuple[str, int], dict] | None) -> list[Task]:
        graph = self.graph
        gates: dict[tuple[str, int], InputGate] = {}
        for vertex in graph.vertices.values():
            channels = sum(1 if edge.partitioner.is_pointwise else graph.vertices[edge.source].parallelism
                           for edge in vertex.inputs)
            for index in range(vertex.parallelism):
                if channels:
                    gates[(vertex.id, index)] = InputGate(channels, GATE_CAPACITY, self.cancelled)
        tasks = []
        attempt = self.attempt
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
                                  graph.runtime_mode, attempt, graph.config,
                                  restored=None if restored is None else restored[(vertex.id, index)],
                                  on_snapshot=lambda snapshot, a=attempt: self._acknowledge(a, snapshot),
                                  checkpointing=self.interval_ms is not None,
                                  aligned=graph.settings.get("execution.checkpointing.mode", "EXACTLY_ONCE").upper()
                                  != "AT_LEAST_ONCE", on_data_ended=self._data_ended,
                                  state_backend=self.state_backend))
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
        self._launch(None)
        if self.interval_ms:
            threading.Thread(target=self._coordinate, name=f"checkpoint-coordinator-{self.graph.job_id[:8]}",
                             daemon=True).start()

    def _launch(self, restored: dict[tuple[str, int], dict] | None) -> None:
        self.cancelled = threading.Event()
        self.tasks = self._build_tasks(restored)
        self._remaining = len(self.tasks)
        self._attempt_failure: JobExecutionError | None = None
        for task in self.tasks:
            threading.Thread(target=self._run_task, args=(task,), name=task.display_name, daemon=True).start()

    # -- checkpoints --------------------------------------------------------------------------------

    def _data_ended(self) -> None:
        if all(t.data_ended for t in self.tasks if t.vertex.is_source):
            self._soon.set()  # every source ended: the final checkpoint need not wait for the interval

    def _coordinate(self) -> None:
        while not self._done.is_set():
            self._soon.wait(self.interval_ms / 1000)
            self._soon.clear()
            if self._done.is_set():
                return
            with self._lock:
                if self.status != "RUNNING" or self.cancelled.is_set():
                    continue
                running = [t for t in self.tasks if not t.finished]
                if not running:
                    continue
                checkpoint_id = self._next_checkpoint_id
                self._next_checkpoint_id += 1
                self._pending[checkpoint_id] = {}
                self._expected[checkpoint_id] = {(t.vertex.id, t.subtask_index) for t in running}
                sources = [t for t in running if t.vertex.is_source]
            now = int(time.time() * 1000)
            for task in sources:
                task.trigger_checkpoint(checkpoint_id, now)

    def _acknowledge(self, attempt: int, snapshot: TaskSnapshot) -> None:
        with self._lock:
            acks = self._pending.get(snapshot.checkpoint_id)
            if acks is None or attempt != self.attempt:
                return  # given up, or from an attempt that was restarted since
            acks[(snapshot.vertex_id, snapshot.subtask_index)] = snapshot.data
            if snapshot.restore_from_all:
                self._restore_from_all.setdefault(snapshot.checkpoint_id, set()).add(snapshot.vertex_id)
            if not self._expected.get(snapshot.checkpoint_id, set()) <= acks.keys():
                return
            del self._pending[snapshot.checkpoint_id]
            self._expected.pop(snapshot.checkpoint_id, None)
            for older in [c for c in self._pending if c < snapshot.checkpoint_id]:
                del self._pending[older]  # subsumed
            self.latest_checkpoint = (snapshot.checkpoint_id, acks,
                                      {v.id: v.parallelism for v in self.graph.vertices.values()},
                                      self._restore_from_all.pop(snapshot.checkpoint_id, set()))
            tasks = list(self.tasks)
        logger.info("Completed checkpoint %d of job %s", snapshot.checkpoint_id, self.graph.job_id)
        for task in tasks:
            task.notify_checkpoint_complete(snapshot.checkpoint_id)

    # -- task ends, failures, restarts ----------------------------------------------------------------

    def _run_task(self, task: Task) -> None:
        try:
            task.run()
        except TaskCancelled:
            pass
        except BaseException:
            with self._lock:
                if self._attempt_failure is None:
                    self._attempt_failure = JobExecutionError(self.graph.job_id, task.display_name,
                                                              traceback.format_exc())
            self.cancelled.set()
        finally:
            with self._lock:
                self._remaining -= 1
                finished = self._remaining == 0
            if finished:
                self._attempt_ended()

    def _attempt_ended(self) -> None:
        failure = self._attempt_failure
        if failure is not None and not self._cancel_requested:
            self.restarts.notify_failure(int(time.time() * 1000))
            if self.restarts.can_restart():
                delay = self.restarts.backoff_ms() / 1000
                logger.info("Job %s failed (%s); restarting in %.3f s under the %s restart strategy",
                            self.graph.job_id, failure.task, delay, self.restarts.name)
                threading.Timer(delay, self._restart).start()
                return
            self.failure = failure
        self._finish("FAILED" if self.failure else "CANCELED" if self._cancel_requested else "FINISHED")

    def _restart(self) -> None:
        with self._lock:
            if self._cancel_requested:
                self._finish("CANCELED")
                return
            self.attempt += 1
            self._pending.clear()
            self._restore_from_all.clear()
            latest = self.latest_checkpoint
        restored = None
        if latest is not None:
            from ha_flink.runtime.checkpoint.restore import restored_states

            self.restored_checkpoint_id = latest[0]
            restored = restored_states(self.graph, latest[1], latest[2], latest[3])
            logger.info("Restoring job %s from checkpoint %d", self.graph.job_id, latest[0])
        self._launch(restored)

    def _finish(self, status: str) -> None:
        self.status = status
        self.net_runtime_ms = int((time.monotonic() - self.started) * 1000)
        self._done.set()
        if self._on_done is not None:
            self._on_done(self)

    def cancel(self) -> None:
        if not self._done.is_set():
            self._cancel_requested = True
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
