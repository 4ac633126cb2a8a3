"""`CompletableFuture`, as in `pyflink.common.completable_future`: the answer of a JobClient call that
completes later (`result()` blocks until it does), over a `concurrent.futures.Future`."""

from __future__ import annotations

import concurrent.futures
from typing import Any, Callable, Generic, Optional, TypeVar

T = TypeVar("T")


class CompletableFuture(Generic[T]):
    def __init__(self, future: concurrent.futures.Future[T], py_class: Optional[Callable[[Any], T]] = None) -> None:
        self._future = future
        self._py_class = py_class  # applied to the result (PyFlink converts the Java value with it)

    def cancel(self) -> bool:
        return self._future.cancel()

    def cancelled(self) -> bool:
        return self._future.cancelled()

    def done(self) -> bool:
        return self._future.done()

    def result(self, timeout: Optional[float] = None) -> T:
        """Blocks until the call completed (or `timeout` seconds passed: TimeoutError); raises what it raised."""
        value = self._future.result(timeout)
        return self._py_class(value) if self._py_class is not None else value

    def exception(self, timeout: Optional[float] = None) -> Optional[BaseException]:
        return self._future.exception(timeout)

    def __str__(self) -> str:
        state = "cancelled" if self.cancelled() else "done" if self.done() else "pending"
        return f"CompletableFuture({state})"


def run_async(function: Callable[[], T], name: str) -> CompletableFuture[T]:
    """`function()` on a thread of its own (a daemon: a program that never asks for the result still ends)."""
    import threading

    future: concurrent.futures.Future[T] = concurrent.futures.Future()

    def run() -> None:
        if not future.set_running_or_notify_cancel():
            return
        try:
            future.set_result(function())
        except BaseException as error:  # handed to whoever calls result()
            future.set_exception(error)

    threading.Thread(target=run, name=name, daemon=True).start()
    return CompletableFuture(future)
