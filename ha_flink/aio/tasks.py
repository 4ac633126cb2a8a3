"""A group that owns background tasks: nothing runs fire-and-forget.

Each component that starts work it does not await at once (a JobMaster's deployments and cancels, a
ResourceManager's connection watchers, a TaskExecutor's reports) spawns it in its `TaskGroup`; stopping the
component (leadership revoked, the daemon stopping, the job ended) cancels what is still running and can
await the end of it. A task that fails is logged with its name and traceback, never lost silently (an
un-awaited asyncio task's exception is otherwise only reported when it is garbage collected, if at all).
Unlike `asyncio.TaskGroup` the group lives as long as its component, not for one `async with` block, and
one failing task does not cancel the others."""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Coroutine, TypeVar

T = TypeVar("T")

logger = logging.getLogger(__name__)


class TaskGroup:
    def __init__(self, name: str) -> None:
        self.name = name
        self._tasks: set[asyncio.Task[Any]] = set()
        self._closed = False

    def spawn(self, coroutine: Coroutine[Any, Any, T], name: str | None = None) -> asyncio.Task[T]:
        """Run `coroutine` in the background on the running loop, owned by this group."""
        if self._closed:
            coroutine.close()
            raise RuntimeError(f"task group {self.name} is closed: {name or coroutine!r} was not started")
        task = asyncio.ensure_future(coroutine)
        if name:
            task.set_name(f"{self.name}: {name}")
        self._tasks.add(task)
        task.add_done_callback(self._done)
        return task

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            error = task.exception()
            logger.error("Background task %s failed: %s", task.get_name(), error, exc_info=error)

    def cancel(self) -> None:
        """Cancel every task still running (the group stays usable)."""
        for task in list(self._tasks):
            task.cancel()

    async def close(self, timeout: float = 5.0) -> None:
        """Cancel every task and wait (up to `timeout`) until they have ended; no task can be spawned after."""
        self._closed = True
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=timeout)
