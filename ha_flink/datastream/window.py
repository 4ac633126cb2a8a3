"""PyFlink's `pyflink.datastream.window`: windows, window assigners and triggers, under PyFlink's module name.

Defined in `ha_flink/core/window.py`, below both the runtime and this API, because the runtime's operators
and state backends are written against them (ARCHITECTURE.md, "Layers")."""

from __future__ import annotations

from ha_flink.core.window import *  # noqa: F403
from ha_flink.core.window import __all__  # noqa: F401
