"""PyFlink's `pyflink.datastream.output_tag`: OutputTag, under PyFlink's module name.

Defined in `ha_flink/core/output_tag.py`, below both the runtime and this API, because the runtime's operators
and state backends are written against them (ARCHITECTURE.md, "Layers")."""

from __future__ import annotations

from ha_flink.core.output_tag import *  # noqa: F403
from ha_flink.core.output_tag import __all__  # noqa: F401
