"""PyFlink's `pyflink.datastream.async_retry_predicates`: predicates for Async I/O retry strategies
(`functools.partial(exception_type_predicate, expected_error_type=TimeoutError)`), defined in
`ha_flink/core/async_functions.py`."""

from __future__ import annotations

from ha_flink.core.async_functions import (  # noqa: F401 - PyFlink's module names
    empty_result_predicate, exception_type_predicate, has_exception_predicate,
)

__all__ = ["empty_result_predicate", "has_exception_predicate", "exception_type_predicate"]
