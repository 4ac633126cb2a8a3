"""PyFlink's `pyflink.datastream.async_retry_strategies`: the retry strategies of Async I/O, defined in
`ha_flink/core/async_functions.py` (the async wait operator is written against them)."""

from __future__ import annotations

from typing import TypeVar

from ha_flink.core.async_functions import (  # noqa: F401 - PyFlink's module names
    NO_RETRY_STRATEGY, ExponentialBackoffDelayRetryStrategy, FixedDelayRetryStrategy, NoRetryStrategy,
    RetryPredicate,
)

OUT = TypeVar("OUT")

__all__ = [
    "RetryPredicate",
    "NoRetryStrategy",
    "FixedDelayRetryStrategy",
    "ExponentialBackoffDelayRetryStrategy",
]
