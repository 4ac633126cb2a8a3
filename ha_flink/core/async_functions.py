"""The contracts of Async I/O between user code and the runtime, named as in PyFlink: `AsyncFunction` (an
`async def async_invoke(value)` returning the list of results for one input, `timeout(value)` when it took
too long), `AsyncFunctionDescriptor` (what `AsyncDataStream` hands the operator), `AsyncRetryStrategy` /
`AsyncRetryPredicate` and the strategies and predicates of `pyflink.datastream.async_retry_strategies` and
`async_retry_predicates`.

Pure Python, no runtime: the operator that runs them is `ha_flink/runtime/operators/async_wait.py`. The
strategies' arithmetic is PyFlink's, quirks included (a strategy allows `max_attempts` retries after the
first attempt; the exponential strategy remembers its last delay across elements), so a PyFlink job retries
the same way here."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from enum import Enum
from typing import Any, Callable, Generic, List, Optional, TypeVar

from ha_flink.core.functions import Function

IN = TypeVar("IN")
OUT = TypeVar("OUT")


# ---- the user function ----------------------------------------------------------------------------------

class AsyncFunction(Function, Generic[IN, OUT]):
    """A function to trigger Async I/O operation.

    For each input the operator awaits `async_invoke(value)` on its event loop, with up to `capacity`
    invocations in flight; the list it returns is emitted for that input. `open` and `close` run on the
    task's thread, around the event loop's life."""

    @abstractmethod
    async def async_invoke(self, value: IN) -> List[OUT]:
        """Trigger async operation for each stream input and return its results (a list, possibly empty).
        An exception it raises (and no retry strategy retries) fails the task."""

    def timeout(self, value: IN) -> List[OUT]:
        """`async_invoke` (with its retries) did not complete within the timeout: the results to emit
        instead. By default, it raises a TimeoutError, which fails the task."""
        raise TimeoutError("Async function call has timed out for input: " + str(value))


# ---- retry ------------------------------------------------------------------------------------------------

class AsyncRetryPredicate(ABC, Generic[OUT]):
    """Interface encapsulates an asynchronous retry predicate."""

    @abstractmethod
    def result_predicate(self) -> Optional[Callable[[List[OUT]], bool]]:
        """An optional predicate on async_invoke's result: true means try again (later)."""

    @abstractmethod
    def exception_predicate(self) -> Optional[Callable[[Exception], bool]]:
        """An optional predicate on async_invoke's exception: true means try again (later)."""


class AsyncRetryStrategy(ABC, Generic[OUT]):
    """Interface encapsulates an asynchronous retry strategy."""

    @abstractmethod
    def can_retry(self, current_attempts: int) -> bool:
        """Whether another attempt may follow attempt number `current_attempts` (the first is 1)."""

    @abstractmethod
    def get_backoff_time_millis(self, current_attempts: int) -> int:
        """How long to wait after attempt number `current_attempts` before the next one."""

    @abstractmethod
    def get_retry_predicate(self) -> AsyncRetryPredicate[OUT]:
        """Returns the defined retry predicate."""

    @staticmethod
    def no_restart() -> AsyncRetryStrategy[Any]:
        return NO_RETRY_STRATEGY

    @staticmethod
    def fixed_delay(max_attempts: int, backoff_time_millis: int,
                    result_predicate: Optional[Callable[[List[OUT]], bool]],
                    exception_predicate: Optional[Callable[[Exception], bool]]) -> FixedDelayRetryStrategy[OUT]:
        return FixedDelayRetryStrategy(max_attempts, backoff_time_millis, result_predicate, exception_predicate)

    @staticmethod
    def exponential_backoff(max_attempts: int, initial_delay: int, max_retry_delay: int, multiplier: float,
                            result_predicate: Optional[Callable[[List[OUT]], bool]],
                            exception_predicate: Optional[Callable[[Exception], bool]]
                            ) -> ExponentialBackoffDelayRetryStrategy[OUT]:
        return ExponentialBackoffDelayRetryStrategy(max_attempts, initial_delay, max_retry_delay, multiplier,
                                                    result_predicate, exception_predicate)


def _positive(name: str, value: float) -> None:
    # PyFlink asserts these; a ValueError names the argument (and is not stripped by `python -O`)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise ValueError(f"{name} should be greater than zero, got {value!r}")


def _predicate(name: str, value: Any) -> None:
    if value is not None and not callable(value):
        raise TypeError(f"{name} must be a callable or None, got {value!r}")


class RetryPredicate(AsyncRetryPredicate[OUT], Generic[OUT]):
    def __init__(self, result_predicate: Optional[Callable[[List[OUT]], bool]],
                 exception_predicate: Optional[Callable[[Exception], bool]]) -> None:
        _predicate("result_predicate", result_predicate)
        _predicate("exception_predicate", exception_predicate)
        self._result_predicate = result_predicate
        self._exception_predicate = exception_predicate

    def result_predicate(self) -> Optional[Callable[[List[OUT]], bool]]:
        return self._result_predicate

    def exception_predicate(self) -> Optional[Callable[[Exception], bool]]:
        return self._exception_predicate


class NoRetryStrategy(AsyncRetryStrategy[OUT], Generic[OUT]):
    def can_retry(self, current_attempts: int) -> bool:
        return False

    def get_backoff_time_millis(self, current_attempts: int) -> int:
        return -1

    def get_retry_predicate(self) -> AsyncRetryPredicate[OUT]:
        return RetryPredicate(None, None)


class FixedDelayRetryStrategy(AsyncRetryStrategy[OUT], Generic[OUT]):
    def __init__(self, max_attempts: int, backoff_time_millis: int,
                 result_predicate: Optional[Callable[[List[OUT]], bool]],
                 exception_predicate: Optional[Callable[[Exception], bool]]) -> None:
        _positive("max_attempts", max_attempts)
        _positive("backoff_time_millis", backoff_time_millis)
        _predicate("result_predicate", result_predicate)
        _predicate("exception_predicate", exception_predicate)
        self._max_attempts = max_attempts
        self._backoff_time_millis = backoff_time_millis
        self._result_predicate = result_predicate
        self._exception_predicate = exception_predicate

    def can_retry(self, current_attempts: int) -> bool:
        return current_attempts <= self._max_attempts

    def get_backoff_time_millis(self, current_attempts: int) -> int:
        return self._backoff_time_millis

    def get_retry_predicate(self) -> AsyncRetryPredicate[OUT]:
        return RetryPredicate(self._result_predicate, self._exception_predicate)


class ExponentialBackoffDelayRetryStrategy(AsyncRetryStrategy[OUT], Generic[OUT]):
    def __init__(self, max_attempts: int, initial_delay: int, max_retry_delay: int, multiplier: float,
                 result_predicate: Optional[Callable[[List[OUT]], bool]],
                 exception_predicate: Optional[Callable[[Exception], bool]]) -> None:
        _positive("max_attempts", max_attempts)
        _positive("initial_delay", initial_delay)
        _positive("max_retry_delay", max_retry_delay)
        _positive("multiplier", multiplier)
        _predicate("result_predicate", result_predicate)
        _predicate("exception_predicate", exception_predicate)
        self._max_attempts = max_attempts
        self._max_retry_delay = max_retry_delay
        self._multiplier = multiplier
        self._result_predicate = result_predicate
        self._exception_predicate = exception_predicate
        self._initial_delay = initial_delay
        self._last_retry_delay = initial_delay

    def can_retry(self, current_attempts: int) -> bool:
        return current_attempts <= self._max_attempts

    def get_backoff_time_millis(self, current_attempts: int) -> int:
        if current_attempts <= 1:
            self._last_retry_delay = self._initial_delay
            return self._last_retry_delay
        backoff = int(min(self._last_retry_delay * self._multiplier, self._max_retry_delay))
        self._last_retry_delay = backoff
        return backoff

    def get_retry_predicate(self) -> AsyncRetryPredicate[OUT]:
        return RetryPredicate(self._result_predicate, self._exception_predicate)


NO_RETRY_STRATEGY: AsyncRetryStrategy[Any] = NoRetryStrategy()


# ---- predicates (pyflink.datastream.async_retry_predicates) --------------------------------------------

def empty_result_predicate(result: Optional[List[Any]]) -> bool:
    return result is None or len(result) == 0


def has_exception_predicate(error: Optional[BaseException]) -> bool:
    return error is not None


def exception_type_predicate(error: Optional[BaseException],
                             expected_error_type: type[BaseException] | tuple[type[BaseException], ...]) -> bool:
    return isinstance(error, expected_error_type)


# ---- what AsyncDataStream hands the operator -------------------------------------------------------------

@dataclass
class AsyncFunctionDescriptor:
    """One async wait operator's settings; `timeout` is a Time, a Duration or milliseconds (<= 0: none)."""

    class OutputMode(Enum):
        ORDERED = 0
        UNORDERED = 1

    async_function: AsyncFunction[Any, Any]
    timeout: Any
    capacity: int
    async_retry_strategy: AsyncRetryStrategy[Any]
    output_mode: AsyncFunctionDescriptor.OutputMode


__all__ = [
    "AsyncFunction",
    "AsyncFunctionDescriptor",
    "AsyncRetryPredicate",
    "AsyncRetryStrategy",
    "ExponentialBackoffDelayRetryStrategy",
    "FixedDelayRetryStrategy",
    "NO_RETRY_STRATEGY",
    "NoRetryStrategy",
    "RetryPredicate",
    "empty_result_predicate",
    "exception_type_predicate",
    "has_exception_predicate",
]
