"""Rows to and from Avro's binary encoding, as PyFlink's `AvroRowSerializationSchema` and
`AvroRowDeserializationSchema` (`pyflink.datastream.formats.avro`, re-exported by `pyflink.common`).

A message is one datum in Avro's binary encoding (no container file, no schema header), as Flink's
AvroRowSerializationSchema writes it, for the record schema given as `avro_schema_string`. Flink can also
take `record_class`, the name of a generated Java SpecificRecord class; with no JVM here that is refused,
naming the schema string as the way. Types: null, boolean, int, long, float, double, bytes, string,
records (as Rows, by field name), enums (as their symbol), arrays (lists), maps (dicts), unions (the first
branch the value fits) and fixed; the logical types date (`datetime.date`), time-millis/-micros
(`datetime.time`), timestamp-millis/-micros (`datetime.datetime`, UTC) and decimal (`decimal.Decimal`),
as Flink converts them."""

from __future__ import annotations

import datetime
import decimal
import io
import json
import struct
from typing import Any, BinaryIO

from ha_flink.common.serialization import DeserializationSchema, SerializationSchema
from ha_flink.common.types import Row

__all__ = ["AvroRowDeserializationSchema", "AvroRowSerializationSchema"]

Schema = Any  # a parsed Avro schema: a type name, or a dict / list as in the JSON form

_PRIMITIVES = {"null", "boolean", "int", "long", "float", "double", "bytes", "string"}
_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)
_EPOCH_DATE = datetime.date(1970, 1, 1)


def _parse_schema(text: str) -> Schema:
    """The schema, with named types resolved so that a reference to one is its definition."""
    try:
        schema = json.loads(text)
    except ValueError:
        schema = text.strip()  # a bare primitive name, e.g. "string"
    named: dict[str, Any] = {}

    def resolve(node: Any, namespace: str | None) -> Any:
        if isinstance(node, str):
            if node in _PRIMITIVES:
                return node
            full = node if "." in node or namespace is None else f"{namespace}.{node}"
            found = named.get(full, named.get(node))
            if found is None:
                raise ValueError(f"Avro schema: unknown type {node!r}")
            return found
        if isinstance(node, list):
            return [resolve(branch, namespace) for branch in node]
        if not isinstance(node, dict) or "type" not in node:
            raise ValueError(f"Avro schema: not a schema: {node!r}")
        kind = node["type"]
        if kind in ("record", "error", "enum", "fixed"):
            if "name" not in node:
                raise ValueError(f"Avro schema: a {kind} needs a name: {node!r}")
            space = node.get("namespace", namespace)
            full = node["name"] if "." in node["name"] or not space else f"{space}.{node['name']}"
            named[full] = named[node["name"]] = node
            if kind in ("record", "error"):
                node["fields"] = [dict(f, type=resolve(f["type"], space)) for f in node.get("fields", [])]
            return node
        if kind == "array":
            return dict(node, items=resolve(node["items"], namespace))
        if kind == "map":
            return dict(node, values=resolve(node["values"], namespace))
        return dict(node, type=resolve(kind, namespace)) if isinstance(kind, (dict, list)) else node

    resolved = resolve(schema, None)
    if not (isinstance(resolved, dict) and resolved.get("type") in ("record", "error")):
        raise ValueError("Avro row schemas need a record schema (a row's fields are its fields)")
    return resolved


def _type_name(schema: Schema) -> str:
    if isinstance(schema, str):
        return schema
    if isinstance(schema, list):
        return "union"
    kind = schema["type"]
    return kind if isinstance(kind, str) else _type_name(kind)


# ---- encoding ------------------------------------------------------------------------------------------------

def _write_long(out: BinaryIO, value: int) -> None:
    n = (value << 1) ^ (value >> 63)  # zig-zag
    while n & ~0x7F:
        out.write(bytes(((n & 0x7F) | 0x80,)))
        n >>= 7
    out.write(bytes((n,)))


def _write_bytes(out: BinaryIO, data: bytes) -> None:
    _write_long(out, len(data))
    out.write(data)


def _decimal_bytes(value: decimal.Decimal, scale: int) -> bytes:
    unscaled = int(value.scaleb(scale).to_integral_value())
    length = max(1, (unscaled.bit_length() + 8) // 8)
    return unscaled.to_bytes(length, "big", signed=True)


def _fits(schema: Schema, value: Any) -> bool:
    kind = _type_name(schema)
    logical = schema.get("logicalType") if isinstance(schema, dict) else None
    if logical == "date":
        return isinstance(value, datetime.date) and not isinstance(value, datetime.datetime)
    if logical in ("timestamp-millis", "timestamp-micros"):
        return isinstance(value, datetime.datetime)
    if logical in ("time-millis", "time-micros"):
        return isinstance(value, datetime.time)
    if logical == "decimal":
        return isinstance(value, decimal.Decimal)
    return {
        "null": value is None,
        "boolean": isinstance(value, bool),
        "int": isinstance(value, int) and not isinstance(value, bool) and -2 ** 31 <= value < 2 ** 31,
        "long": isinstance(value, int) and not isinstance(value, bool),
        "float": isinstance(value, (int, float)) and not isinstance(value, bool),
        "double": isinstance(value, (int, float)) and not isinstance(value, bool),
        "bytes": isinstance(value, (bytes, bytearray)),
        "fixed": isinstance(value, (bytes, bytearray)),
        "string": isinstance(value, str),
        "enum": isinstance(value, str),
        "array": isinstance(value, (list, tuple)),
        "map": isinstance(value, dict),
        "record": isinstance(value, (Row, dict, tuple, list)),
        "error": isinstance(value, (Row, dict, tuple, list)),
    }.get(kind, False)


def _encode(out: BinaryIO, schema: Schema, value: Any, where: str) -> None:
    if isinstance(schema, list):
        for index, branch in enumerate(schema):
            if _fits(branch, value):
                _write_long(out, index)
                _encode(out, branch, value, where)
                return
        raise ValueError(f"Avro: {where}: {value!r} fits no branch of the union {json.dumps(schema)[:200]}")
    if not _fits(schema, value):
        raise ValueError(f"Avro: {where}: {value!r} is not of type {_type_name(schema)}")
    kind = _type_name(schema)
    logical = schema.get("logicalType") if isinstance(schema, dict) else None
    if logical == "date":
        _write_long(out, (value - _EPOCH_DATE).days)
    elif logical in ("timestamp-millis", "timestamp-micros"):
        moment = value if value.tzinfo else value.replace(tzinfo=datetime.timezone.utc)
        micros = (moment - _EPOCH) // datetime.timedelta(microseconds=1)
        _write_long(out, micros // 1000 if logical == "timestamp-millis" else micros)
    elif logical in ("time-millis", "time-micros"):
        micros = ((value.hour * 60 + value.minute) * 60 + value.second) * 10 ** 6 + value.microsecond
        _write_long(out, micros // 1000 if logical == "time-millis" else micros)
    elif logical == "decimal":
        data = _decimal_bytes(value, schema.get("scale", 0))
        if kind == "fixed":
            out.write(data.rjust(schema["size"], b"\xff" if value < 0 else b"\x00"))
        else:
            _write_bytes(out, data)
    elif kind == "null":
        pass
    elif kind == "boolean":
        out.write(b"\x01" if value else b"\x00")
    elif kind in ("int", "long"):
        _write_long(out, value)
    elif kind == "float":
        out.write(struct.pack("<f", value))
    elif kind == "double":
        out.write(struct.pack("<d", value))
    elif kind == "bytes":
        _write_bytes(out, bytes(value))
    elif kind == "string":
        _write_bytes(out, value.encode("utf-8"))
    elif kind == "fixed":
        if len(value) != schema["size"]:
            raise ValueError(f"Avro: {where}: fixed {schema['name']} takes {schema['size']} bytes, got {len(value)}")
        out.write(bytes(value))
    elif kind == "enum":
        if value not in schema["symbols"]:
            raise ValueError(f"Avro: {where}: {value!r} is not a symbol of enum {schema['name']}")
        _write_long(out, schema["symbols"].index(value))
    elif kind == "array":
        if value:
            _write_long(out, len(value))
            for index, item in enumerate(value):
                _encode(out, schema["items"], item, f"{where}[{index}]")
        _write_long(out, 0)
    elif kind == "map":
        if value:
            _write_long(out, len(value))
            for key, item in value.items():
                _write_bytes(out, str(key).encode("utf-8"))
                _encode(out, schema["values"], item, f"{where}[{key!r}]")
        _write_long(out, 0)
    else:  # record
        fields = schema["fields"]
        if isinstance(value, dict):
            values = [value.get(f["name"]) for f in fields]
        elif isinstance(value, Row) and hasattr(value, "_fields"):
            values = [value[f["name"]] if f["name"] in value._fields else None for f in fields]
        else:
            values = list(value)
            if len(values) != len(fields):
                raise ValueError(f"Avro: {where}: {len(values)} values for the {len(fields)} fields of record "
                                 f"{schema['name']}")
        for f, item in zip(fields, values):
            _encode(out, f["type"], item, f"{where}.{f['name']}")


# ---- decoding ------------------------------------------------------------------------------------------------

def _read_long(data: BinaryIO) -> int:
    shift = result = 0
    while True:
        byte = data.read(1)
        if not byte:
            raise ValueError("Avro: the message ends inside a number")
        result |= (byte[0] & 0x7F) << shift
        if not byte[0] & 0x80:
            return (result >> 1) ^ -(result & 1)
        shift += 7


def _read_exact(data: BinaryIO, size: int) -> bytes:
    chunk = data.read(size)
    if len(chunk) != size:
        raise ValueError(f"Avro: the message ends {size - len(chunk)} bytes early")
    return chunk


def _decode(data: BinaryIO, schema: Schema) -> Any:
    if isinstance(schema, list):
        index = _read_long(data)
        if not 0 <= index < len(schema):
            raise ValueError(f"Avro: union branch {index} of {len(schema)}")
        return _decode(data, schema[index])
    kind = _type_name(schema)
    logical = schema.get("logicalType") if isinstance(schema, dict) else None
    if logical == "date":
        return _EPOCH_DATE + datetime.timedelta(days=_read_long(data))
    if logical in ("timestamp-millis", "timestamp-micros"):
        unit = 1000 if logical == "timestamp-millis" else 1
        return _EPOCH + datetime.timedelta(microseconds=_read_long(data) * unit)
    if logical in ("time-millis", "time-micros"):
        micros = _read_long(data) * (1000 if logical == "time-millis" else 1)
        seconds, micros = divmod(micros, 10 ** 6)
        return datetime.time(seconds // 3600, seconds // 60 % 60, seconds % 60, micros)
    if logical == "decimal":
        raw = _read_exact(data, schema["size"]) if kind == "fixed" else _read_exact(data, _read_long(data))
        return decimal.Decimal(int.from_bytes(raw, "big", signed=True)).scaleb(-schema.get("scale", 0))
    if kind == "null":
        return None
    if kind == "boolean":
        return _read_exact(data, 1) != b"\x00"
    if kind in ("int", "long"):
        return _read_long(data)
    if kind == "float":
        return struct.unpack("<f", _read_exact(data, 4))[0]
    if kind == "double":
        return struct.unpack("<d", _read_exact(data, 8))[0]
    if kind == "bytes":
        return _read_exact(data, _read_long(data))
    if kind == "string":
        return _read_exact(data, _read_long(data)).decode("utf-8")
    if kind == "fixed":
        return _read_exact(data, schema["size"])
    if kind == "enum":
        return schema["symbols"][_read_long(data)]
    if kind in ("array", "map"):
        items: list[Any] = []
        entries: dict[str, Any] = {}
        while count := _read_long(data):
            if count < 0:  # a block with its size in bytes
                count = -count
                _read_long(data)
            for _ in range(count):
                if kind == "array":
                    items.append(_decode(data, schema["items"]))
                else:
                    key = _read_exact(data, _read_long(data)).decode("utf-8")
                    entries[key] = _decode(data, schema["values"])
        return items if kind == "array" else entries
    row = Row(*[_decode(data, f["type"]) for f in schema["fields"]])
    row.set_field_names([f["name"] for f in schema["fields"]])
    return row


def _schema_of(record_class: str | None, avro_schema_string: str | None, what: str) -> Schema:
    if avro_schema_string is None and record_class is None:
        raise TypeError("record_class or avro_schema_string should be specified.")
    if avro_schema_string is None:
        raise ValueError(f"{what}: record_class {record_class!r} names a Java SpecificRecord class, which needs a "
                         "JVM; give the record's schema as avro_schema_string instead")
    return _parse_schema(avro_schema_string)


class AvroRowSerializationSchema(SerializationSchema):
    """A Row (or a dict or tuple of the record's fields) as one Avro datum of the record schema."""

    def __init__(self, record_class: str | None = None, avro_schema_string: str | None = None) -> None:
        self.schema = _schema_of(record_class, avro_schema_string, "AvroRowSerializationSchema")
        self.avro_schema_string = avro_schema_string

    def serialize(self, value: Any) -> bytes:
        out = io.BytesIO()
        _encode(out, self.schema, value, self.schema["name"])
        return out.getvalue()


class AvroRowDeserializationSchema(DeserializationSchema):
    """One Avro datum of the record schema as a Row named by its fields (nested records as Rows)."""

    def __init__(self, record_class: str | None = None, avro_schema_string: str | None = None) -> None:
        self.schema = _schema_of(record_class, avro_schema_string, "AvroRowDeserializationSchema")
        self.avro_schema_string = avro_schema_string

    def deserialize(self, message: bytes) -> Row:
        data = io.BytesIO(bytes(message))
        try:
            row = _decode(data, self.schema)
        except (ValueError, IndexError, UnicodeDecodeError, struct.error) as error:
            raise ValueError(f"Failed to deserialize Avro record {self.schema['name']}: {error}") from error
        left = len(data.getbuffer()) - data.tell()
        if left:
            raise ValueError(f"Failed to deserialize Avro record {self.schema['name']}: {left} bytes after the datum")
        return row
