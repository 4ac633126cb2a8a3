"""PyFlink's `pyflink.datastream.formats.csv`: its row schemas (defined in ha_flink/common/row_schemas.py).
`CsvSchema`, `CsvReaderFormat` and `CsvBulkWriters` are not here yet."""

from __future__ import annotations

from ha_flink.common.row_schemas import CsvRowDeserializationSchema, CsvRowSerializationSchema

__all__ = ["CsvRowDeserializationSchema", "CsvRowSerializationSchema"]
