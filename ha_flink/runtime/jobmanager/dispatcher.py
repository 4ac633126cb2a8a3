"""The Dispatcher: accepts jobs, persists each job graph in the JobGraphStore before acknowledging, starts
a JobMaster per job, and on leadership recovers every stored job that has no result yet. A job that
reaches a globally terminal state gets its result written (dirty), its HA data cleaned up, then its
result marked clean; a new leader finishes any cleanup left dirty and never re-runs such a job. Its
checkpoint folder goes with it, or stays as `execution.checkpointing.externalized-checkpoint-retention`
says (a FAILED job keeps it by default, to be resumed from), and the log says where.

No job is lost without a word: a job whose graph cannot be read now (storage unreachable, the file gone)
stays `pending` (listed as INITIALIZING, its reason on REST) and is tried again with backoff while this
leader leads; a job whose graph node was deleted behind the cluster's back is re-adopted from the copy in
its record; one with no copy left gets a FAILED result naming why (`lost`), its checkpoints kept.

A job's shipped Python dependencies (`runtime/python_artifacts.py`: python.files, python.requirements,
python.archives) travel inside its job graph, so the JobGraphStore keeps them in the HA storage with it and a
new leader has them; its JobMaster puts them into every deployment, and each TaskManager makes them usable
once per job (`runtime/python_env.py`). A graph whose settings name such files but that carries none (one
submitted in this process by a local run, or by a client that did not read them) has them read here."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
import uuid
from typing import Any

import cloudpickle

from ha_flink.aio.tasks import TaskGroup
from ha_flink.common.job_status import JobStatus
from ha_flink.config import CheckpointingOptions, Configuration
from ha_flink.fs import Storage, join_url
from ha_flink.ha.fencing import Fence
from ha_flink.ha.job_graph_store import JobGraphLostError
from ha_flink.ha.job_result_store import JobResult
from ha_flink.ha.services import HaServices
from ha_flink.runtime.graph.payload import JobGraphPayloadError, check_job_graph_payload
from ha_flink.runtime.graph.job_graph import JobGraph
from ha_flink.runtime.jobmanager.job_master import JobMaster, checkpoints_dir
from ha_flink.runtime.jobmanager.resource_manager import ResourceManager
from ha_flink.runtime import python_artifacts

logger = logging.getLogger(__name__)

SETTLE_TIMEOUT_SECONDS = 60
RECOVERY_RETRY_SECONDS = (0.5, 10.0)  # first and longest wait between recovery attempts of a pending job
# the names listings show for jobs without a readable graph (the graph holds the job's name)
UNRECOVERED_JOB_NAME = "(stored job, not recovered yet)"
LOST_JOB_NAME = "(lost job)"


def keeps_checkpoints(status: str, retention: str) -> bool:
    """Whether a job that ended `status` keeps its checkpoint folder under `retention` (Flink's rules)."""
    if status == "FAILED":
        return retention != "NO_EXTERNALIZED_CHECKPOINTS"
    return status == "CANCELED" and retention == "RETAIN_ON_CANCELLATION"


class JobSubmissionError(ValueError):
    pass


class JobAlreadyTerminatedError(RuntimeError):
    """A cancel of a job that ended otherwise (Flink's FlinkJobTerminatedWithoutCancellationException, which
    its REST handler answers with a 409 and this message)."""

    def __init__(self, job_id: str, status: str) -> None:
        super().__init__("Job cancellation failed because the job has already reached another terminal state "
                         f"({status}).")
        self.job_id = job_id


def _read_python_dependencies(graph: JobGraph) -> None:
    """Blocking: read the files the graph's python.* settings name into it, if it carries none."""
    if graph.python_dependencies is None:
        graph.python_dependencies = python_artifacts.collect(graph.settings)


class Dispatcher:
    def __init__(self, ha: HaServices, fence: Fence | None, resource_manager: ResourceManager,
                 session_id: uuid.UUID | None,
                 config: Configuration) -> None:
        self.ha = ha
        self.fence = fence
        self.rm = resource_manager
        self.session_id = session_id
        self.config = config
        self.job_graphs = ha.job_graph_store(fence)
        self.results = ha.job_result_store()
        self.jobs: dict[str, JobMaster] = {}
        self.recovered = False  # every stored job was looked at (until then a job not here may come)
        self.pending: dict[str, str] = {}  # job id -> why it cannot be recovered yet (tried again)
        self.lost: dict[str, JobResult] = {}  # jobs this leader found lost: their FAILED results
        self._submitting: set[str] = set()
        # the recovery retries and the JobMasters' cancel RPCs: cancelled when leadership goes
        self._background = TaskGroup("Dispatcher")
        # recording results and cleaning up: fenced writes, left to finish (a next leader redoes a dirty one)
        self._recording = TaskGroup("Dispatcher results")
        self._cancelled: set[str] = set()  # pending jobs cancelled: a recovery under way must not start them
        self._results: dict[str, asyncio.Future[JobResult]] = {}  # per job: its result, once recorded
        resource_manager.on_task_state.append(self._route_task_state)
        resource_manager.on_lost.append(self._route_lost)

    async def _blocking(self, function: Any, *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(None, function, *args)

    def _leading(self) -> bool:
        return self.fence is None or self.fence.is_valid()

    async def recover_jobs(self) -> None:
        graphs = await self._blocking(self.job_graphs.job_ids)
        without_graph = await self._blocking(self.job_graphs.records_without_graph)
        recovered = 0
        for job_id in [*without_graph, *graphs]:  # one unreadable job must not keep the others from recovering
            recovered += await self._recover(job_id, has_graph=job_id in graphs)
        for result in await self._blocking(self.results.get_dirty_results):
            if result.job_id in self.jobs or result.job_id in self.pending:
                continue
            try:
                await self._cleanup(result)
            except Exception:
                logger.exception("Cleanup of job %s failed; a later leader retries it", result.job_id)
        self.recovered = True
        logger.info("Job recovery done: %d job(s) recovered%s", recovered,
                    f"; {len(self.pending)} not yet, tried again: {', '.join(sorted(self.pending))}"
                    if self.pending else "")
        if self.pending:
            self._background.spawn(self._retry_recovery(), "recovery retries")
        await self._collect_orphans()

    async def _recover(self, job_id: str, has_graph: bool) -> bool:
        """Recover one stored job: start it, finish its cleanup, re-adopt it, or report it lost. False (and
        the job `pending`) while it cannot be read."""
        try:
            result = await self._blocking(self.results.get, job_id)
            if result is not None:  # ended: never run again; finish what its cleanup left
                if not has_graph and await self._blocking(self.results.has_clean_job_result_entry, job_id):
                    await self._blocking(self.ha.cleanup_job_data, job_id, self.fence)  # a record left over
                self.pending.pop(job_id, None)
                return False
            if not has_graph:
                try:
                    url = await self._blocking(self.job_graphs.readopt, job_id)
                except JobGraphLostError as error:
                    self.pending.pop(job_id, None)
                    await self._report_lost(job_id, str(error))
                    return False
                logger.warning("Job %s: its job graph node was gone from ZooKeeper (deleted behind the cluster's "
                               "back); re-adopted the job graph file %s named in its record", job_id, url)
            graph: JobGraph = await self._blocking(self.job_graphs.recover_job_graph, job_id)
        except Exception as error:  # storage or ZooKeeper unreachable, the file gone or damaged: try again
            reason = f"{type(error).__name__}: {error}"
            if self.pending.get(job_id) != reason:
                logger.error("Job %s cannot be recovered now (tried again while this JobManager leads): %s", job_id,
                             reason)
            self.pending[job_id] = reason
            return False
        if job_id in self._cancelled:  # cancelled while its graph was being read
            return False
        self.pending.pop(job_id, None)
        logger.info("Recovered job %s (%s)", graph.name, job_id)
        self._start(graph)
        return True

    async def _retry_recovery(self) -> None:
        delay, longest = RECOVERY_RETRY_SECONDS
        while self.pending and self._leading():
            await asyncio.sleep(delay)
            delay = min(delay * 2, longest)
            graphs = set(await self._blocking(self.job_graphs.job_ids))
            for job_id in list(self.pending):
                if self._leading() and job_id in self.pending:
                    await self._recover(job_id, has_graph=job_id in graphs)

    async def _report_lost(self, job_id: str, reason: str) -> None:
        """A job that cannot run again because its graph is gone: FAILED, with why, checkpoints kept."""
        retention = self.config.get(CheckpointingOptions.EXTERNALIZED_CHECKPOINT_RETENTION)
        folder = join_url(checkpoints_dir(self.config), job_id)
        result = JobResult.of(job_id, "FAILED", f"Job {job_id} was lost: {reason}. It cannot run again; resubmit "
                              f"it (flink run -s <a checkpoint of {folder}> resumes its state)",
                              checkpoints=folder, checkpoints_kept=keeps_checkpoints("FAILED", retention))
        logger.error("%s", result.error)
        self.lost[job_id] = result
        await self._complete(result, None)

    async def _collect_orphans(self) -> None:
        """HA files a former leader wrote but never committed (it died, or lost ZooKeeper, in between)."""
        try:
            await self._blocking(self.ha.collect_orphaned_files)
        except Exception as error:  # garbage only: the next leader or job end tries again
            logger.info("Orphaned HA files not collected: %s", error)

    async def submit(self, job_graph_bytes: bytes) -> str:
        try:
            check_job_graph_payload(job_graph_bytes)  # before unpickling, which runs code
        except JobGraphPayloadError as error:
            raise JobSubmissionError(f"the request body is not a job graph: {error}") from None
        try:
            graph: JobGraph = cloudpickle.loads(job_graph_bytes)
        except Exception as exc:
            raise JobSubmissionError(f"the job graph cannot be read: {exc}") from exc
        if not isinstance(graph, JobGraph):
            raise JobSubmissionError(f"the request body is a {type(graph).__name__}, not a job graph")
        graph.submission_time = int(time.time() * 1000)  # kept with the graph: a new leader shows the same
        try:
            await self._blocking(_read_python_dependencies, graph)
        except (OSError, ValueError) as error:  # a path that is not there, a file that cannot be shipped
            raise JobSubmissionError(f"the Python dependencies of job {graph.job_id} cannot be read on the "
                                     f"JobManager: {error}") from None
        if graph.job_id in self.jobs or graph.job_id in self._submitting:
            raise JobSubmissionError(f"job {graph.job_id} was submitted already")
        self._submitting.add(graph.job_id)  # reserved before the first await: a concurrent twin is refused
        try:
            if await self._blocking(self.results.has_job_result_entry, graph.job_id):
                raise JobSubmissionError(f"job {graph.job_id} was submitted already")
            await self._blocking(self.job_graphs.put_job_graph, graph.job_id, graph)  # before acknowledging
        finally:
            self._submitting.discard(graph.job_id)
        logger.info("Submitted job %s (%s)", graph.name, graph.job_id)
        self._start(graph)
        return graph.job_id

    def _start(self, graph: JobGraph) -> None:
        master = JobMaster(graph, self.rm, self.session_id, self.config, self._on_terminal, self.ha, self.fence,
                           tasks=self._background)
        self.jobs[graph.job_id] = master
        master.start()

    def _on_terminal(self, master: JobMaster) -> None:
        if not self._leading():
            # A deposed leader must not record results: the job lives on under the new leader.
            logger.info("Job %s ended as %s after leadership was lost; no result recorded", master.job_id,
                        master.status)
            return
        retention = master.config.get(CheckpointingOptions.EXTERNALIZED_CHECKPOINT_RETENTION)
        kept = master.coordinator is not None and keeps_checkpoints(master.status, retention)
        latest = master.coordinator.store.latest() if master.coordinator is not None else None
        result = JobResult.of(master.job_id, master.status, master.failure or None,
                              checkpoints=join_url(master.checkpoints_dir, master.job_id), checkpoints_kept=kept,
                              latest_checkpoint=latest.external_pointer if kept and latest is not None else None)
        self._recording.spawn(self._complete(result, master), f"result of {master.job_id}")

    def job_result(self, job_id: str) -> asyncio.Future[JobResult]:
        """The result of a job this Dispatcher runs, once it is recorded and the job's data cleaned up (or
        kept, as its retention says)."""
        return self._results.setdefault(job_id, asyncio.get_running_loop().create_future())

    async def _complete(self, result: JobResult, master: JobMaster | None) -> None:
        future = self.job_result(result.job_id)
        try:
            result = await self._record(result, master)
        finally:
            if not future.done():
                future.set_result(result)

    async def _record(self, result: JobResult, master: JobMaster | None) -> JobResult:
        """Record `result` and clean up the job's data (with up to 5 tries); returns the result recorded."""
        if master is not None and master.coordinator is not None:
            try:  # a checkpoint completing as the job ended: its _metadata and handle land before the cleanup
                await asyncio.wait_for(master.coordinator.settled(), SETTLE_TIMEOUT_SECONDS)
            except asyncio.TimeoutError:
                logger.warning("A checkpoint of job %s was still completing %d s after the job ended; cleaning "
                               "up anyway", result.job_id, SETTLE_TIMEOUT_SECONDS)
            latest = master.coordinator.store.latest()  # (one may have completed meanwhile)
            if result.checkpoints_kept and latest is not None:
                result = dataclasses.replace(result, latest_checkpoint=latest.external_pointer)
        for attempt in range(1, 6):
            if not self._leading():
                return result
            try:
                try:
                    await self._blocking(self.results.create_dirty_result, result)
                except FileExistsError:
                    pass
                await self._cleanup(result)
                return result
            except Exception:
                logger.exception("Recording the result of job %s failed (attempt %d of 5)", result.job_id, attempt)
                await asyncio.sleep(0.5 * attempt)
        logger.error("The result of job %s is not recorded; the next leader will run it again", result.job_id)
        return result

    async def _cleanup(self, result: JobResult) -> None:
        job_id = result.job_id
        folder = result.checkpoints or join_url(checkpoints_dir(self.config), job_id)
        if result.keeps_checkpoints:  # (savepoints live elsewhere and are never deleted)
            resume = f"; resume from the latest with: flink run -s {result.latest_checkpoint} ..." \
                if result.latest_checkpoint else ""
            logger.info("Job %s ended %s; its checkpoints are kept in %s (execution.checkpointing.externalized-"
                        "checkpoint-retention)%s", job_id, result.status, folder, resume)
        else:
            await self._blocking(Storage(self.config).delete, folder)
        if await self._blocking(self.ha.cleanup_job_data, job_id, self.fence):
            await self._blocking(self.results.mark_result_clean, job_id)
            await self._collect_orphans()
        else:
            logger.info("HA data of job %s is still held; cleanup retried by a later leader", job_id)

    def cancel(self, job_id: str) -> None:
        master = self.jobs.get(job_id)
        if master is None and job_id in self.pending:  # never recovered: it ends here, its HA data cleaned
            reason = self.pending.pop(job_id)
            self._cancelled.add(job_id)
            logger.info("Job %s cancelled while it could not be recovered (%s)", job_id, reason)
            retention = self.config.get(CheckpointingOptions.EXTERNALIZED_CHECKPOINT_RETENTION)
            self._recording.spawn(self._complete(JobResult.of(
                job_id, "CANCELED", f"cancelled before it could be recovered ({reason})",
                checkpoints=join_url(checkpoints_dir(self.config), job_id),
                checkpoints_kept=keeps_checkpoints("CANCELED", retention)), None), f"result of {job_id}")
            return
        if master is None:
            raise KeyError(f"no job {job_id} is known to this JobManager")
        if master.status.is_globally_terminal_state():
            if master.status != JobStatus.CANCELED:  # (a cancelled job acknowledges again, as in Flink)
                raise JobAlreadyTerminatedError(job_id, master.status.name)
            return
        master.cancel()

    def suspend(self) -> list[str]:
        """Stop every running JobMaster (in memory, at once); returns the job ids whose graphs to release."""
        self._background.cancel()
        suspended = []
        for master in self.jobs.values():
            if not master.status.is_globally_terminal_state():
                master.suspend()
                suspended.append(master.job_id)
        return suspended

    def release_suspended_jobs(self, job_ids: list[str]) -> None:
        """Blocking (ZooKeeper): drop our locks on suspended jobs' graphs and checkpoints, one failure not
        stopping the rest. A JobManager that stops leading but lives on (its latch node deleted behind its
        back, say) would otherwise hold them for as long as its session lasts, and the next leader could
        neither subsume those checkpoints nor clean up the job when it ends."""
        for job_id in job_ids:
            try:
                self.job_graphs.release_job_graph(job_id)
            except Exception as error:  # an expired session dropped the lock already
                logger.info("Lock on the job graph of %s not released: %s", job_id, error)
            master = self.jobs.get(job_id)
            if master is not None and master.coordinator is not None:
                try:
                    master.coordinator.store.release()
                except Exception as error:
                    logger.info("Locks on the checkpoints of %s not released: %s", job_id, error)

    def _route_task_state(self, state: Any, resource_id: str) -> None:
        master = self.jobs.get(state.job_id)
        if master is not None:
            master.on_task_state(state)

    def _route_lost(self, resource_id: str, reason: str) -> None:
        for master in list(self.jobs.values()):
            master.on_task_manager_lost(resource_id, reason)
