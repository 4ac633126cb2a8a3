"""The Dispatcher: accepts jobs, persists each job graph in the JobGraphStore before acknowledging, starts
a JobMaster per job, and on leadership recovers every stored job that has no result yet. A job that
reaches a globally terminal state gets its result written (dirty), its HA data cleaned up, then its
result marked clean; a new leader finishes any cleanup left dirty and never re-runs such a job."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import cloudpickle

from ha_flink.config import Configuration
from ha_flink.ha.job_result_store import JobResult
from ha_flink.runtime.graph.job_graph import JobGraph
from ha_flink.runtime.jobmanager.job_master import JobMaster
from ha_flink.runtime.jobmanager.resource_manager import ResourceManager

logger = logging.getLogger(__name__)


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
        resource_manager.on_task_state.append(self._route_task_state)
        resource_manager.on_lost.append(self._route_lost)

    async def _blocking(self, function: Any, *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(None, function, *args)

    async def recover_jobs(self) -> None:
        recovered = 0
        for job_id in await self._blocking(self.job_graphs.job_ids):
            if await self._blocking(self.results.has_job_result_entry, job_id):
                if await self._blocking(self.results.has_dirty_job_result_entry, job_id):
                    await self._cleanup(job_id)
                continue
            graph: JobGraph = await self._blocking(self.job_graphs.recover_job_graph, job_id)
            logger.info("Recovered job %s (%s)", graph.name, job_id)
            self._start(graph)
            recovered += 1
        for result in await self._blocking(self.results.get_dirty_results):
            await self._cleanup(result.job_id)
        logger.info("Job recovery done: %d job(s) recovered", recovered)

    async def submit(self, job_graph_bytes: bytes) -> str:
        try:
            graph: JobGraph = cloudpickle.loads(job_graph_bytes)
        except Exception as exc:
            raise JobSubmissionError(f"the job graph cannot be read: {exc}") from exc
        if graph.job_id in self.jobs or await self._blocking(self.results.has_job_result_entry, graph.job_id):
            raise JobSubmissionError(f"job {graph.job_id} was submitted already")
        await self._blocking(self.job_graphs.put_job_graph, graph.job_id, graph)  # before acknowledging
        logger.info("Submitted job %s (%s)", graph.name, graph.job_id)
        self._start(graph)
        return graph.job_id

    def _start(self, graph: JobGraph) -> None:
        master = JobMaster(graph, self.rm, self.session_id, self.config, self._on_terminal)
        self.jobs[graph.job_id] = master
        master.start()

    def _on_terminal(self, master: JobMaster) -> None:
        result = JobResult.of(master.job_id, master.status, master.failure or None)
        asyncio.ensure_future(self._complete(result))

    async def _complete(self, result: JobResult) -> None:
        try:
            await self._blocking(self.results.create_dirty_result, result)
        except FileExistsError:
            pass
        await self._cleanup(result.job_id)

    async def _cleanup(self, job_id: str) -> None:
        if await self._blocking(self.ha.cleanup_job_data, job_id, self.fence):
            await self._blocking(self.results.mark_result_clean, job_id)
        else:
            logger.info("HA data of job %s is still held; cleanup retried by a later leader", job_id)

    def cancel(self, job_id: str) -> None:
        master = self.jobs.get(job_id)
        if master is None:
            raise KeyError(f"no job {job_id} is known to this JobManager")
        master.cancel()

    def suspend(self) -> None:
        for master in self.jobs.values():
            if master.status not in ("FINISHED", "CANCELED", "FAILED"):
                master.suspend()
                self.job_graphs.release_job_graph(master.job_id)

    def _route_task_state(self, state: Any, resource_id: str) -> None:
        master = self.jobs.get(state.job_id)
        if master is not None:
            master.on_task_state(state)

    def _route_lost(self, resource_id: str, reason: str) -> None:
        for master in list(self.jobs.values()):
            master.on_task_manager_lost(resource_id, reason)
