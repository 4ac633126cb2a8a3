"""User functions for test and example jobs that exercise failure handling."""

from __future__ import annotations

from typing import Any

from ha_flink.datastream.functions import MapFunction, RuntimeContext


class FailOnceAt(MapFunction):
    """Passes every value, but raises on its first attempt when it meets `value` (-1: never): a task
    failure from user code that a restart gets past."""

    def __init__(self, value: int) -> None:
        self.value = value

    def open(self, runtime_context: RuntimeContext) -> None:
        self.attempt = runtime_context.get_attempt_number()

    def map(self, value: Any) -> Any:
        if self.attempt == 0 and value == self.value:
            raise RuntimeError(f"failing once at {value}")
        return value
