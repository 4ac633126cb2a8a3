"""The Avro row schemas against fastavro, an Avro implementation we did not write: what ours writes
fastavro reads as the same record, and what fastavro writes ours reads, for every Avro type and the
logical types Flink converts; and bad input named."""

from __future__ import annotations

import datetime
import decimal
import io
import json

import fastavro
import pytest

from ha_flink.common import AvroRowDeserializationSchema, AvroRowSerializationSchema, Row

SCHEMA = {
    "type": "record", "name": "Order", "namespace": "shop",
    "fields": [
        {"name": "id", "type": "long"},
        {"name": "small", "type": "int"},
        {"name": "ok", "type": "boolean"},
        {"name": "price", "type": "double"},
        {"name": "ratio", "type": "float"},
        {"name": "customer", "type": "string"},
        {"name": "note", "type": ["null", "string"], "default": None},
        {"name": "blob", "type": "bytes"},
        {"name": "code", "type": {"type": "fixed", "name": "Code", "size": 4}},
        {"name": "state", "type": {"type": "enum", "name": "State", "symbols": ["NEW", "PAID", "SENT"]}},
        {"name": "items", "type": {"type": "array", "items": {
            "type": "record", "name": "Item", "fields": [{"name": "sku", "type": "string"},
                                                         {"name": "count", "type": "int"}]}}},
        {"name": "labels", "type": {"type": "map", "values": "long"}},
        {"name": "first", "type": ["null", "Item"]},
        {"name": "day", "type": {"type": "int", "logicalType": "date"}},
        {"name": "at", "type": {"type": "long", "logicalType": "timestamp-millis"}},
        {"name": "at_us", "type": {"type": "long", "logicalType": "timestamp-micros"}},
        {"name": "clock", "type": {"type": "int", "logicalType": "time-millis"}},
        {"name": "amount", "type": {"type": "bytes", "logicalType": "decimal", "precision": 10, "scale": 2}},
    ],
}
UTC = datetime.timezone.utc
RECORD = {
    "id": -(2 ** 40), "small": -7, "ok": True, "price": 12.5, "ratio": 0.25, "customer": "Ada Lovelace ✓",
    "note": None, "blob": b"\x00\xff", "code": b"ABCD", "state": "PAID",
    "items": [{"sku": "x-1", "count": 2}, {"sku": "y-2", "count": 1}], "labels": {"a": 1, "b": -2},
    "first": {"sku": "x-1", "count": 2}, "day": datetime.date(2024, 2, 29),
    "at": datetime.datetime(2024, 2, 29, 12, 30, 1, 250000, tzinfo=UTC),
    "at_us": datetime.datetime(2024, 2, 29, 12, 30, 1, 250001, tzinfo=UTC),
    "clock": datetime.time(12, 30, 1, 250000), "amount": decimal.Decimal("-1234.56"),
}


def fastavro_bytes(record: dict) -> bytes:
    out = io.BytesIO()
    fastavro.schemaless_writer(out, fastavro.parse_schema(json.loads(json.dumps(SCHEMA))), record)
    return out.getvalue()


def fastavro_record(data: bytes) -> dict:
    return fastavro.schemaless_reader(io.BytesIO(data), fastavro.parse_schema(json.loads(json.dumps(SCHEMA))))


def test_ours_writes_what_fastavro_writes_and_reads() -> None:
    ours = AvroRowSerializationSchema(avro_schema_string=json.dumps(SCHEMA)).serialize(RECORD)
    assert ours == fastavro_bytes(RECORD)
    assert fastavro_record(ours) == RECORD


def test_ours_reads_fastavros_datum_as_named_rows() -> None:
    row = AvroRowDeserializationSchema(avro_schema_string=json.dumps(SCHEMA)).deserialize(fastavro_bytes(RECORD))
    assert row.as_dict(recursive=True) == RECORD
    assert row.items[0].sku == "x-1" and row.first.count == 2


def test_a_row_round_trips_and_serializes_by_field_name() -> None:
    schema = json.dumps({"type": "record", "name": "P", "fields": [
        {"name": "name", "type": "string"}, {"name": "age", "type": ["null", "int"]}]})
    out, back = AvroRowSerializationSchema(avro_schema_string=schema), AvroRowDeserializationSchema(
        avro_schema_string=schema)
    assert out.serialize(Row(age=36, name="Ada")) == out.serialize(("Ada", 36))  # by name, not sorted position
    assert back.deserialize(out.serialize(Row("Bo", None))).as_dict() == {"name": "Bo", "age": None}


def test_bad_input_is_named() -> None:
    schema = json.dumps(SCHEMA)
    with pytest.raises(TypeError, match="record_class or avro_schema_string"):
        AvroRowSerializationSchema()
    with pytest.raises(ValueError, match="Java SpecificRecord class"):
        AvroRowDeserializationSchema(record_class="com.example.Order")
    with pytest.raises(ValueError, match="record schema"):
        AvroRowSerializationSchema(avro_schema_string='"string"')
    with pytest.raises(ValueError, match=r"Order.state: 'LOST' is not a symbol of enum State"):
        AvroRowSerializationSchema(avro_schema_string=schema).serialize(dict(RECORD, state="LOST"))
    with pytest.raises(ValueError, match=r"Order.small: .* is not of type int"):
        AvroRowSerializationSchema(avro_schema_string=schema).serialize(dict(RECORD, small=2 ** 40))
    with pytest.raises(ValueError, match="Failed to deserialize Avro record Order"):
        AvroRowDeserializationSchema(avro_schema_string=schema).deserialize(fastavro_bytes(RECORD)[:-3])
