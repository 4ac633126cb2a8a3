"""PyFlink's `pyflink.datastream.functions`: the user-function interfaces and RuntimeContext, under PyFlink's module name.

Defined in `ha_flink/core/functions.py`, below both the runtime and this API, because the runtime's operators
and state backends are written against them (ARCHITECTURE.md, "Layers")."""

from __future__ import annotations

from ha_flink.core.async_functions import (  # noqa: F401
    AsyncFunction, AsyncFunctionDescriptor, AsyncRetryPredicate, AsyncRetryStrategy,
)
from ha_flink.core.functions import *  # noqa: F403
from ha_flink.core.functions import __all__ as _core_all

__all__ = [*_core_all, "AsyncFunction", "AsyncFunctionDescriptor", "AsyncRetryPredicate", "AsyncRetryStrategy"]
