"""Flink's vertex flame graphs (`GET /jobs/<id>/vertices/<v>/flamegraph`), as Flink's VertexFlameGraphCache
serves them: with `rest.flamegraph.enabled` false (Flink's default) the `disabled` answer (endTimestamp -2);
else the first request starts a sampling of the vertex's task threads on their TaskManagers
(`rest.flamegraph.num-samples` samples, `.delay-between-samples` apart, `.stack-depth` frames) and is answered
`waiting` (-3); later requests get the graph, which is sampled again in the background once it is older
than `rest.flamegraph.refresh-interval`. Python cannot tell whether a thread is on a CPU, so only Flink's
FULL type (every sample) is offered: ON_CPU and OFF_CPU are refused, naming why."""

from __future__ import annotations

import asyncio
import collections
import time
from dataclasses import dataclass
from typing import Any, Awaitable, Callable

from ha_flink.aio.tasks import TaskGroup
from ha_flink.config import Configuration, RestOptions
from ha_flink.runtime.diagnostics import flame_graph

DISABLED, WAITING = -2, -3  # Flink's VertexFlameGraph.disabled() / waiting() end timestamps

Stacks = collections.Counter[tuple[str, ...]]
# (job id, vertex id, subtask or None: all) -> the sampled stacks of those task threads
Sampler = Callable[[str, str, "int | None"], Awaitable[Stacks]]


@dataclass
class _Graph:
    end_ms: int
    data: dict[str, Any]


class FlameGraphs:
    def __init__(self, config: Configuration, sample: Sampler) -> None:
        self.enabled = config.get(RestOptions.FLAMEGRAPH_ENABLED)
        self.refresh_s = config.get(RestOptions.FLAMEGRAPH_REFRESH_INTERVAL).total_seconds()
        self.samples = config.get(RestOptions.FLAMEGRAPH_NUM_SAMPLES)
        self.delay_ms = int(config.get(RestOptions.FLAMEGRAPH_DELAY).total_seconds() * 1000)
        self.depth = config.get(RestOptions.FLAMEGRAPH_STACK_DEPTH)
        self._sample = sample
        self._graphs: dict[tuple[str, str, int | None], _Graph] = {}
        self._sampling: set[tuple[str, str, int | None]] = set()
        self._tasks = TaskGroup("flame graph samplings")

    def answer(self, job_id: str, vertex_id: str, subtask: int | None) -> dict[str, Any]:
        if not self.enabled:
            return {"endTimestamp": DISABLED, "data": None}
        key = (job_id, vertex_id, subtask)
        graph = self._graphs.get(key)
        stale = graph is None or time.time() - graph.end_ms / 1000 > self.refresh_s
        if stale and key not in self._sampling:
            self._sampling.add(key)
            self._tasks.spawn(self._take(key), f"flame graph of vertex {vertex_id}")
        if graph is None:
            return {"endTimestamp": WAITING, "data": None}
        return {"endTimestamp": graph.end_ms, "data": graph.data}

    async def _take(self, key: tuple[str, str, int | None]) -> None:
        try:
            stacks = await self._sample(*key)
            self._graphs[key] = _Graph(int(time.time() * 1000), flame_graph(stacks))
        finally:
            self._sampling.discard(key)


async def gather_stacks(calls: list[Awaitable[Stacks]]) -> Stacks:
    """The samples of several TaskManagers added up (one that cannot answer is left out)."""
    total: Stacks = collections.Counter()
    for result in await asyncio.gather(*calls, return_exceptions=True):
        if isinstance(result, collections.Counter):
            total.update(result)
    return total
