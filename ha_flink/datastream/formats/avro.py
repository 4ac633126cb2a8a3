"""PyFlink's `pyflink.datastream.formats.avro`: its row schemas (defined in ha_flink/common/avro_rows.py).
`AvroSchema`, `AvroInputFormat` and `AvroBulkWriters` are not here yet."""

from __future__ import annotations

from ha_flink.common.avro_rows import AvroRowDeserializationSchema, AvroRowSerializationSchema

__all__ = ["AvroRowDeserializationSchema", "AvroRowSerializationSchema"]
