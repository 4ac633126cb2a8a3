"""The local mini cluster: the real JobManager (Dispatcher, ResourceManager, one JobMaster per job) and a
real TaskExecutor in this process, as Flink's `MiniCluster`. This is what `python job.py` runs on when no
cluster is involved (PyFlink's local execution), so a local run and `flink run` are one engine: the same
scheduling, region failover, checkpoint coordination, timeouts and tolerable failures.

The components talk gRPC over loopback (127.0.0.1, ports picked by the OS), on one event loop thread
that this module owns; the tasks run on threads of their own, and subtasks exchange records in-process
(`runtime/network/local.py`). High availability is `NONE` (`ha/standalone.py`): nothing outlives the
process. Checkpoints go to `state.checkpoints.dir` when the job sets it, else to a temporary folder that
goes with the mini cluster (Flink's local default keeps them in the JobManager's memory). REST and the
dashboard are served only when the job's configuration sets `rest.port` (Flink's
`create_local_environment_with_web_ui`).

A failing job raises `JobExecutionError` naming the failing task and carrying the user's traceback."""

from __future__ import annotations

import asyncio
import logging
import shutil
import tempfile
import threading
from typing import Any, Callable, Coroutine, TypeVar

import cloudpickle

from ha_flink.common.job_execution_result import JobExecutionResult
from ha_flink.config import CheckpointingOptions, Configuration, ConfigurationError, JobManagerOptions, RestOptions
from ha_flink.ha.job_result_store import JobResult
from ha_flink.ha.standalone import StandaloneHaServices
from ha_flink.runtime.graph.job_graph import JobGraph
from ha_flink.runtime.jobmanager.dispatcher import Dispatcher
from ha_flink.runtime.jobmanager.job_master import JobMaster
from ha_flink.runtime.jobmanager.jobmanager import JobManager, RestEndpointFactory
from ha_flink.runtime.task.task import Task
from ha_flink.runtime.taskmanager.task_executor import TaskExecutor

logger = logging.getLogger(__name__)

LOOPBACK = "127.0.0.1"
START_SECONDS = 30.0  # for the JobManager to lead and the TaskExecutor to register
T = TypeVar("T")


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


class MiniCluster:
    """A JobManager and `task_managers` TaskExecutors of `slots` slots each, in this process."""

    def __init__(self, config: Configuration, task_managers: int = 1, slots: int = 1,
                 rest: RestEndpointFactory | None = None) -> None:
        """`rest`: how to serve REST and the dashboard when the configuration sets `rest.port` (the REST
        layer sits above the runtime, so the caller hands it in: `ha_flink.rest.server.start_rest_endpoint`)."""
        if config.contains(RestOptions.PORT) and rest is None:
            raise ConfigurationError(f"rest.port is set ({config.get(RestOptions.PORT)}) but this mini cluster "
                                     "was given no REST endpoint to serve it with")
        self._rest = rest if config.contains(RestOptions.PORT) else None
        self.config = config.copy()
        self.config.set(JobManagerOptions.RPC_ADDRESS, LOOPBACK, source="mini cluster")
        self._temp_dir: str | None = None
        if not self.config.get(CheckpointingOptions.CHECKPOINTS_DIRECTORY):
            self._temp_dir = tempfile.mkdtemp(prefix="ha-flink-local-")
            self.config.set(CheckpointingOptions.CHECKPOINTS_DIRECTORY, f"file://{self._temp_dir}/checkpoints",
                            source="mini cluster")
        self.num_task_managers = task_managers
        self.slots = slots
        self.ha = StandaloneHaServices(self.config)
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="mini-cluster", daemon=True)
        self.job_manager: JobManager | None = None
        self.task_executors: list[TaskExecutor] = []
        self._dispatcher: Dispatcher | None = None

    # -- lifecycle ------------------------------------------------------------------------------------

    def start(self) -> MiniCluster:
        self._thread.start()
        try:
            self._run(self._start(), START_SECONDS + 5)
        except BaseException:
            self.close()
            raise
        return self

    async def _start(self) -> None:
        self.job_manager = JobManager(self.config, self.ha, LOOPBACK, 0, bind_host=LOOPBACK, rest=self._rest)
        await self.job_manager.start()
        self.ha.job_manager_address = self.job_manager.address  # (known once bound) what TaskExecutors follow
        for _ in range(self.num_task_managers):
            executor = TaskExecutor(self.config, self.ha, LOOPBACK, 0, bind_host=LOOPBACK, slots=self.slots)
            await executor.start()
            self.task_executors.append(executor)
        jm = self.job_manager
        await self._until(lambda: jm.resource_manager is not None and len(
            jm.resource_manager.task_managers) == self.num_task_managers, "the TaskExecutors to register")
        await self._until(lambda: jm.dispatcher is not None and jm.dispatcher.recovered, "the Dispatcher to start")
        self._dispatcher = jm.dispatcher  # (kept: its jobs are read after the cluster stopped)

    async def _until(self, condition: Callable[[], bool], what: str) -> None:
        deadline = self.loop.time() + START_SECONDS
        while not condition():
            if self.loop.time() > deadline:
                raise TimeoutError(f"the mini cluster did not start: waited {START_SECONDS:.0f} s for {what}")
            await asyncio.sleep(0.005)

    def close(self) -> None:
        """Stop every component (a running job is cancelled with its tasks) and the event loop."""
        if self._thread.is_alive():
            try:
                self._run(self._stop(), 30)
            finally:
                self.loop.call_soon_threadsafe(self.loop.stop)
                self._thread.join(10)
        if not self.loop.is_running():
            self.loop.close()
        if self._temp_dir is not None:
            shutil.rmtree(self._temp_dir, ignore_errors=True)

    async def _stop(self) -> None:
        for executor in self.task_executors:
            await executor.stop()
        if self.job_manager is not None and getattr(self.job_manager, "server", None) is not None:
            await self.job_manager.stop()
        await self.loop.shutdown_default_executor()

    def __enter__(self) -> MiniCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _run(self, coroutine: Coroutine[Any, Any, T], timeout: float | None) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    # -- jobs -----------------------------------------------------------------------------------------

    @property
    def dispatcher(self) -> Dispatcher:
        assert self._dispatcher is not None, "the mini cluster was started"
        return self._dispatcher

    def submit(self, graph: JobGraph) -> str:
        async def submit() -> str:
            return await self.dispatcher.submit(cloudpickle.dumps(graph))

        return self._run(submit(), 30)

    def job_master(self, job_id: str) -> JobMaster:
        return self.dispatcher.jobs[job_id]

    def job_status(self, job_id: str) -> str:
        return self.job_master(job_id).status

    def cancel(self, job_id: str) -> None:
        async def cancel() -> None:
            self.dispatcher.cancel(job_id)

        self._run(cancel(), 30)

    def savepoint(self, job_id: str, directory: str | None, then: str = "") -> str:
        """A savepoint of the job into `directory` (else state.savepoints.dir); `then` "", "cancel", "stop" or
        "drain", as `JobMaster.trigger_savepoint`. Returns the savepoint's path once it is complete."""
        async def savepoint() -> str:
            return await self.job_master(job_id).trigger_savepoint(directory, then)

        return self._run(savepoint(), None)

    def restored_checkpoint(self, job_id: str) -> int | None:
        """The id of the checkpoint (or savepoint) the job last restored, as REST's `latest.restored`."""
        coordinator = self.job_master(job_id).coordinator
        restored = coordinator.stats.latest_restored if coordinator is not None else None
        return restored.checkpoint_id if restored is not None else None

    def tasks(self, job_id: str) -> list[Task]:
        """The subtasks of `job_id` running in this mini cluster's TaskExecutors now."""
        return [running.task for executor in self.task_executors for running in list(executor.tasks.values())
                if running.descriptor.job_id == job_id]

    def wait(self, job_id: str, timeout: float | None = None) -> JobExecutionResult:
        """The job's result once it ended (raises JobExecutionError if it failed, JobCancelledError if it
        was cancelled, TimeoutError if it did not end within `timeout` seconds)."""
        async def result() -> JobResult:
            return await asyncio.shield(self.dispatcher.job_result(job_id))

        try:
            outcome = self._run(result(), timeout)
        except TimeoutError:
            raise TimeoutError(f"job {job_id} did not end within {timeout} s") from None
        master = self.job_master(job_id)
        if outcome.status == "FAILED":
            cause = master.failed_task()
            if cause is not None:
                raise JobExecutionError(job_id, *cause)
            raise JobExecutionError(job_id, "(the JobMaster)", master.failure or outcome.error or "")
        if outcome.status == "CANCELED":
            raise JobCancelledError(f"Job {job_id} ({master.graph.name}) was cancelled")
        return JobExecutionResult(job_id, master.graph.name, max(0, master.end_time - master.start_time))


def mini_cluster_for(graph: JobGraph, rest: RestEndpointFactory | None = None) -> MiniCluster:
    """A mini cluster sized for one job (Flink's per-job mini cluster): one TaskExecutor with as many
    slots as the job's highest parallelism, configured by the job's own settings."""
    slots = max(vertex.parallelism for vertex in graph.vertices.values())
    return MiniCluster(Configuration(graph.settings, source=f"job {graph.job_id}"), 1, slots, rest)


class LocalJobClient:
    """One job on its own mini cluster, which stops when the job has ended and its result was taken."""

    def __init__(self, graph: JobGraph, rest: RestEndpointFactory | None = None) -> None:
        self.graph = graph
        self.cluster = mini_cluster_for(graph, rest).start()
        try:
            self.job_id = self.cluster.submit(graph)
        except BaseException:
            self.cluster.close()
            raise
        self._closed = False
        self._closing = threading.Lock()
        self._outcome: JobExecutionResult | JobExecutionError | JobCancelledError | None = None

    def status(self) -> str:
        return self.cluster.job_status(self.job_id)  # (readable after the stop: the job ended before it)

    def cancel(self) -> None:
        if not self._closed:
            self.cluster.cancel(self.job_id)

    def savepoint(self, directory: str | None, then: str) -> str:
        return self.cluster.savepoint(self.job_id, directory, then)

    def wait(self, timeout: float | None = None) -> JobExecutionResult:
        """The job's result (see `MiniCluster.wait`); once the job ended, its mini cluster stops, and the
        same outcome answers every later call."""
        if self._outcome is None:
            try:
                self._outcome = self.cluster.wait(self.job_id, timeout)
            except (JobExecutionError, JobCancelledError) as error:
                self._outcome = error
            self._shut_down()
        if isinstance(self._outcome, BaseException):
            raise self._outcome
        return self._outcome

    def _shut_down(self) -> None:
        with self._closing:  # (the waiter of execute_and_collect and the program may both get here)
            if not self._closed:
                self._closed = True
                self.cluster.close()


def execute_locally(graph: JobGraph, rest: RestEndpointFactory | None = None) -> JobExecutionResult:
    job = LocalJobClient(graph, rest)
    try:
        return job.wait()
    except KeyboardInterrupt:
        job.cancel()
        try:
            job.wait(30)
        except (JobCancelledError, TimeoutError):
            pass
        raise
    finally:
        job._shut_down()
