"""The Dispatcher: accepts jobs, persists each job graph in the JobGraphStore before acknowledging, starts
a JobMaster per job, and on leadership recovers every stored job that has no result yet. A job that
reaches a globally terminal state gets its result written (dirty), its HA data cleaned up, then its
result marked clean; a new leader finishes any cleanup left dirty and never re-runs such a job."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import cloudpickle

from ha_flink.config import Configuration
from ha_flink.ha.job_result_store import JobResult
from ha_flink.runtime.graph.job_graph import JobGraph
from ha_flink.runtime.jobmanager.job_master import JobMaster
from ha_flink.runtime.jobmanager.resource_manager import ResourceManager

logger = logging.getLogger(__name__)

SETTLE_TIMEOUT_SECONDS = 60


class JobSubmissionError(ValueError):
    pass


class Dispatcher:
    def __init__(self, ha: Any, fence: Any, resource_manager: ResourceManager, session_id: Any,
                 config: Configuration) -> None:
        self.ha = ha
        self.fence = fence
        self.rm = resource_manager
        self.session_id = session_id
        self.config = config
        self.job_graphs = ha.job_graph_store(fence)
        self.results = ha.job_result_store()
        self.jobs: dict[str, JobMaster] = {}
        self.recovered = False  # every stored job is running again (until then a job not here may come)
        self._submitting: set[str] = set()
        resource_manager.on_task_state.append(self._route_task_state)
        resource_manager.on_lost.append(self._route_lost)

    async def _blocking(self, function: Any, *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(None, function, *args)

    def _leading(self) -> bool:
        return self.fence is None or self.fence.is_valid()

    async def recover_jobs(self) -> None:
        recovered = 0
        for job_id in await self._blocking(self.job_graphs.job_ids):
            try:  # one unreadable job must not keep the others from recovering
                if await self._blocking(self.results.has_job_result_entry, job_id):
                    if await self._blocking(self.results.has_dirty_job_result_entry, job_id):
                        await self._cleanup(job_id)
                    continue
                graph: JobGraph = await self._blocking(self.job_graphs.recover_job_graph, job_id)
            except Exception:
                logger.exception("Job %s cannot be recovered; the other jobs are", job_id)
                continue
            logger.info("Recovered job %s (%s)", graph.name, job_id)
            self._start(graph)
            recovered += 1
        for result in await self._blocking(self.results.get_dirty_results):
            try:
                await self._cleanup(result.job_id)
            except Exception:
                logger.exception("Cleanup of job %s failed; a later leader retries it", result.job_id)
        self.recovered = True
        logger.info("Job recovery done: %d job(s) recovered", recovered)
        await self._collect_orphans()

    async def _collect_orphans(self) -> None:
        """HA files a former leader wrote but never committed (it died, or lost ZooKeeper, in between)."""
        try:
            await self._blocking(self.ha.collect_orphaned_files)
        except Exception as error:  # garbage only: the next leader or job end tries again
            logger.info("Orphaned HA files not collected: %s", error)

    async def submit(self, job_graph_bytes: bytes) -> str:
        try:
            graph: JobGraph = cloudpickle.loads(job_graph_bytes)
        except Exception as exc:
            raise JobSubmissionError(f"the job graph cannot be read: {exc}") from exc
        if not isinstance(graph, JobGraph):
            raise JobSubmissionError(f"the request body is a {type(graph).__name__}, not a job graph")
        graph.submission_time = int(time.time() * 1000)  # kept with the graph: a new leader shows the same
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
        master = JobMaster(graph, self.rm, self.session_id, self.config, self._on_terminal, self.ha, self.fence)
        self.jobs[graph.job_id] = master
        master.start()

    def _on_terminal(self, master: JobMaster) -> None:
        if not self._leading():
            # A deposed leader must not record results: the job lives on under the new leader.
            logger.info("Job %s ended as %s after leadership was lost; no result recorded", master.job_id,
                        master.status)
            return
        result = JobResult.of(master.job_id, master.status, master.failure or None)
        asyncio.ensure_future(self._complete(result, master))

    async def _complete(self, result: JobResult, master: JobMaster) -> None:
        if master.coordinator is not None:
            try:  # a checkpoint completing as the job ended: its _metadata and handle land before the cleanup
                await asyncio.wait_for(master.coordinator.settled(), SETTLE_TIMEOUT_SECONDS)
            except asyncio.TimeoutError:
                logger.warning("A checkpoint of job %s was still completing %d s after the job ended; cleaning "
                               "up anyway", result.job_id, SETTLE_TIMEOUT_SECONDS)
        for attempt in range(1, 6):
            if not self._leading():
                return
            try:
                try:
                    await self._blocking(self.results.create_dirty_result, result)
                except FileExistsError:
                    pass
                await self._cleanup(result.job_id)
                return
            except Exception:
                logger.exception("Recording the result of job %s failed (attempt %d of 5)", result.job_id, attempt)
                await asyncio.sleep(0.5 * attempt)
        logger.error("The result of job %s is not recorded; the next leader will run it again", result.job_id)

    async def _cleanup(self, job_id: str) -> None:
        from ha_flink.fs import Storage, join_url
        from ha_flink.runtime.jobmanager.job_master import checkpoints_dir

        # The job's checkpoint folders go with it (savepoints live elsewhere and are never deleted).
        await self._blocking(Storage(self.config).delete, join_url(checkpoints_dir(self.config), job_id))
        if await self._blocking(self.ha.cleanup_job_data, job_id, self.fence):
            await self._blocking(self.results.mark_result_clean, job_id)
            await self._collect_orphans()
        else:
            logger.info("HA data of job %s is still held; cleanup retried by a later leader", job_id)

    def cancel(self, job_id: str) -> None:
        master = self.jobs.get(job_id)
        if master is None:
            raise KeyError(f"no job {job_id} is known to this JobManager")
        master.cancel()

    def suspend(self) -> list[str]:
        """Stop every running JobMaster (in memory, at once); returns the job ids whose graphs to release."""
        suspended = []
        for master in self.jobs.values():
            if master.status not in ("FINISHED", "CANCELED", "FAILED"):
                master.suspend()
                suspended.append(master.job_id)
        return suspended

    def release_job_graphs(self, job_ids: list[str]) -> None:
        """Blocking (ZooKeeper): drop our locks on suspended jobs' graphs, one failure not stopping the rest."""
        for job_id in job_ids:
            try:
                self.job_graphs.release_job_graph(job_id)
            except Exception as error:  # an expired session dropped the lock already
                logger.info("Lock on the job graph of %s not released: %s", job_id, error)

    def _route_task_state(self, state: Any, resource_id: str) -> None:
        master = self.jobs.get(state.job_id)
        if master is not None:
            master.on_task_state(state)

    def _route_lost(self, resource_id: str, reason: str) -> None:
        for master in list(self.jobs.values()):
            master.on_task_manager_lost(resource_id, reason)
