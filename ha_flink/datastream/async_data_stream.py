"""PyFlink's `pyflink.datastream.async_data_stream`: `AsyncDataStream` applies an `AsyncFunction` to a stream
(ordered or unordered, with or without a retry strategy) as one "async wait operator"
(`ha_flink/runtime/operators/async_wait.py`), checking the arguments as PyFlink does, with errors that name
what was wrong."""

from __future__ import annotations

import inspect
from typing import Any

from ha_flink.common.time import to_milliseconds
from ha_flink.core.async_functions import (
    NO_RETRY_STRATEGY, AsyncFunction, AsyncFunctionDescriptor, AsyncRetryStrategy,
)
from ha_flink.datastream.data_stream import DataStream
from ha_flink.runtime.operators.async_wait import AsyncWaitOperator

OPERATOR_NAME = "async wait operator"  # PyFlink's name of the transformation


class AsyncDataStream:
    """A helper class to apply :class:`~AsyncFunction` to a data stream."""

    @staticmethod
    def unordered_wait(data_stream: DataStream, async_function: AsyncFunction[Any, Any], timeout: Any,
                       capacity: int = 100, output_type: Any = None) -> DataStream:
        """Adds an async function to the data stream; the order of output records may differ from the
        input's (never across a watermark).

        :param timeout: how long one input's async_invoke may take (a Time, Duration or milliseconds;
                        0: no timeout); past it, `timeout(value)` gives its results.
        :param capacity: the max number of inputs in flight; a full operator back-pressures its input."""
        return AsyncDataStream.unordered_wait_with_retry(data_stream, async_function, timeout, NO_RETRY_STRATEGY,
                                                         capacity, output_type)

    @staticmethod
    def unordered_wait_with_retry(data_stream: DataStream, async_function: AsyncFunction[Any, Any], timeout: Any,
                                  async_retry_strategy: AsyncRetryStrategy[Any], capacity: int = 100,
                                  output_type: Any = None) -> DataStream:
        """As `unordered_wait`, and an input whose result or exception the strategy's predicate accepts is
        invoked again after the strategy's back-off, while it allows (all attempts within `timeout`)."""
        return AsyncDataStream._apply(data_stream, async_function, timeout, async_retry_strategy, capacity,
                                      output_type, AsyncFunctionDescriptor.OutputMode.UNORDERED)

    @staticmethod
    def ordered_wait(data_stream: DataStream, async_function: AsyncFunction[Any, Any], timeout: Any,
                     capacity: int = 100, output_type: Any = None) -> DataStream:
        """Adds an async function to the data stream; results go out in the order of the inputs."""
        return AsyncDataStream.ordered_wait_with_retry(data_stream, async_function, timeout, NO_RETRY_STRATEGY,
                                                       capacity, output_type)

    @staticmethod
    def ordered_wait_with_retry(data_stream: DataStream, async_function: AsyncFunction[Any, Any], timeout: Any,
                                async_retry_strategy: AsyncRetryStrategy[Any], capacity: int = 100,
                                output_type: Any = None) -> DataStream:
        """As `ordered_wait`, with a retry strategy (see `unordered_wait_with_retry`)."""
        return AsyncDataStream._apply(data_stream, async_function, timeout, async_retry_strategy, capacity,
                                      output_type, AsyncFunctionDescriptor.OutputMode.ORDERED)

    @staticmethod
    def _apply(data_stream: DataStream, async_function: AsyncFunction[Any, Any], timeout: Any,
               async_retry_strategy: AsyncRetryStrategy[Any], capacity: int, output_type: Any,
               output_mode: AsyncFunctionDescriptor.OutputMode) -> DataStream:
        AsyncDataStream._validate(data_stream, async_function, timeout, async_retry_strategy, capacity)
        descriptor = AsyncFunctionDescriptor(async_function, timeout, capacity, async_retry_strategy, output_mode)
        # Not keyed (PyFlink runs it as a PROCESS function): after key_by it gets each key's records, no state.
        return data_stream._one_input(OPERATOR_NAME, AsyncWaitOperator(descriptor, OPERATOR_NAME), output_type)

    @staticmethod
    def _validate(data_stream: DataStream, async_function: AsyncFunction[Any, Any], timeout: Any,
                  async_retry_strategy: AsyncRetryStrategy[Any], capacity: int) -> None:
        if not isinstance(data_stream, DataStream):
            raise TypeError(f"AsyncDataStream needs a DataStream, got {data_stream!r}")
        invoke = getattr(async_function, "async_invoke", None)
        if invoke is None:
            raise TypeError(f"{async_function!r} is not an AsyncFunction: it has no method 'async_invoke'")
        if not inspect.iscoroutinefunction(invoke):
            raise TypeError(f"Method 'async_invoke' of class '{type(async_function).__name__}' should be "
                            "declared as 'async def'.")
        timeout_ms = to_milliseconds(timeout, "timeout")
        if isinstance(capacity, bool) or not isinstance(capacity, int) or capacity <= 0:
            raise ValueError(f"capacity (the number of concurrent async operations) should be greater than 0, "
                             f"got {capacity!r}")
        if async_retry_strategy is None:
            raise ValueError("Async retry strategy should not be None.")
        if not isinstance(async_retry_strategy, AsyncRetryStrategy):
            raise TypeError(f"async_retry_strategy must be an AsyncRetryStrategy, got {async_retry_strategy!r}")
        if async_retry_strategy is not NO_RETRY_STRATEGY and timeout_ms <= 0:
            raise ValueError(f"Timeout should be configured when do async with retry (got {timeout_ms} ms): "
                             "the timeout bounds all attempts of one input.")
        if async_retry_strategy.get_retry_predicate() is None:
            raise ValueError(f"Retry predicate of the async retry strategy "
                             f"'{type(async_retry_strategy).__name__}' is None.")
