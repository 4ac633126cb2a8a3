"""PyFlink's `pyflink.datastream.formats.json` (defined in ha_flink/common/row_schemas.py)."""

from __future__ import annotations

from ha_flink.common.row_schemas import JsonRowDeserializationSchema, JsonRowSerializationSchema

__all__ = ["JsonRowDeserializationSchema", "JsonRowSerializationSchema"]
