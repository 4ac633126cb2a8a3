"""The leader's view of its tasks' I/O metrics, for the REST API and dashboard (Flink's MetricFetcher):
asks every registered TaskManager for the metrics of its tasks (`RequestTaskMetrics`), at most once per
`metrics.fetcher.update-interval`, however many requests come in; a TaskManager that does not answer
in time is left out of that round."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid

from ha_flink.rpc import flink_pb2 as pb
from ha_flink.runtime.jobmanager.resource_manager import ResourceManager, TaskManagerInfo

logger = logging.getLogger(__name__)

FETCH_TIMEOUT_SECONDS = 2.0


class MetricFetcher:
    def __init__(self, resource_manager: ResourceManager, session_id: uuid.UUID | None, update_interval_s: float) -> None:
        self.rm = resource_manager
        self.session_id = session_id
        self.update_interval_s = update_interval_s
        self._tasks: dict[tuple[str, str, int], pb.TaskMetrics] = {}
        self._fetched_at = float("-inf")
        self._lock = asyncio.Lock()

    async def task_metrics(self) -> dict[tuple[str, str, int], pb.TaskMetrics]:
        """(job id, vertex id, subtask index) -> the metrics of its current attempt."""
        async with self._lock:
            if time.monotonic() - self._fetched_at >= self.update_interval_s:
                await self._fetch()
        return self._tasks

    async def _fetch(self) -> None:
        infos = list(self.rm.task_managers.values())
        reports = await asyncio.gather(*(self._ask(info) for info in infos))
        tasks: dict[tuple[str, str, int], pb.TaskMetrics] = {}
        for report in reports:
            for metrics in report.tasks if report is not None else ():
                key = (metrics.job_id, metrics.vertex_id, metrics.subtask_index)
                if key not in tasks or tasks[key].attempt < metrics.attempt:
                    tasks[key] = metrics
        self._tasks, self._fetched_at = tasks, time.monotonic()

    async def _ask(self, info: TaskManagerInfo) -> pb.TaskMetricsReport | None:
        try:
            return await info.gateway(self.session_id).request_task_metrics(FETCH_TIMEOUT_SECONDS)
        except Exception as error:  # lost or slow: its tasks show no figures this round
            logger.debug("Task metrics of %s not fetched: %s", info.address, error)
            return None
