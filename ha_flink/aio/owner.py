"""The debug assertion of ARCHITECTURE.md's thread map: state that belongs to an event loop is changed only
on that loop's thread.

A component whose state only its loop may change (a JobMaster, the ResourceManager, a TaskExecutor's task
table) holds a `LoopOwner` and calls `check()` where that state changes. The first check binds the owner
to the running loop; a later check from another thread, or from no loop at all, raises
`LoopOwnershipError` naming the component and the offending thread, instead of a corruption that would
show much later. The check costs one `get_running_loop()`; it is on unless `HA_FLINK_CHECK_LOOP=0`."""

from __future__ import annotations

import asyncio
import os
import threading

ENABLED = os.environ.get("HA_FLINK_CHECK_LOOP", "1") != "0"


class LoopOwnershipError(AssertionError):
    pass


class LoopOwner:
    def __init__(self, component: str) -> None:
        self.component = component
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread = ""

    def check(self) -> None:
        if not ENABLED:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            raise LoopOwnershipError(
                f"{self.component} was changed from thread {threading.current_thread().name!r}, outside any "
                f"event loop; only its loop's thread ({self._thread or 'not bound yet'}) may change it") from None
        if self._loop is None:
            self._loop, self._thread = loop, threading.current_thread().name
        elif loop is not self._loop:
            raise LoopOwnershipError(
                f"{self.component} belongs to the event loop of thread {self._thread!r} but was changed on "
                f"another loop, in thread {threading.current_thread().name!r}")
