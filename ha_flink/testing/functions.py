"""User functions for test and example jobs that exercise failure handling and restores."""

from __future__ import annotations

from typing import Any

from ha_flink.common import Types
from ha_flink.datastream.functions import KeyedProcessFunction, MapFunction, RuntimeContext
from ha_flink.datastream.state import ValueStateDescriptor
from ha_flink.testing.processes import wait_for


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


class CountPerKey(KeyedProcessFunction):
    """Emits (key, how many records of that key so far), counted in keyed ValueState: what a restore
    must carry on exactly."""

    def open(self, runtime_context: RuntimeContext) -> None:
        self.count = runtime_context.get_state(ValueStateDescriptor("count", Types.LONG()))

    def process_element(self, value: Any, ctx: KeyedProcessFunction.Context) -> Any:
        count = (self.count.value() or 0) + 1
        self.count.update(count)
        yield ctx.get_current_key(), count


def stop_with_savepoint_once_running(client: Any, directory: str, timeout: float = 30) -> str:
    """`client.stop_with_savepoint` as soon as every task runs (under load a subtask may still be
    deploying just after records flow: that refusal is retried); the savepoint's path."""
    def stopped() -> str | None:
        try:
            return str(client.stop_with_savepoint(False, directory).result(60))
        except Exception as error:
            if "not running every task" in str(error):
                return None
            raise

    return wait_for(stopped, timeout, 0.2, what="a stop-with-savepoint once every task runs")
