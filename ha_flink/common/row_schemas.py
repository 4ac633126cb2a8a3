"""Rows to and from JSON and CSV text, as PyFlink's `JsonRowSerializationSchema`,
`JsonRowDeserializationSchema`, `CsvRowSerializationSchema` and `CsvRowDeserializationSchema`
(`pyflink.datastream.formats.json` / `.csv`, re-exported by `pyflink.common`).

PyFlink's are Java objects handed to Java connectors; these are Python: `serialize(row) -> bytes` and
`deserialize(bytes) -> Row`, for any source or sink that takes a SerializationSchema. A row's fields are
read by the schema's `Types.ROW_NAMED(...)` type information, as Flink's: JSON objects by field name, CSV
columns by position. Dates, times and timestamps are written in Flink's text forms (`2024-01-31`,
`12:30:00`, `2024-01-31T12:30:00.000Z` for JSON as Flink's RFC 3339 format, `2024-01-31 12:30:00.0` for
CSV as `java.sql.Timestamp`), bytes as base64 in JSON."""

from __future__ import annotations

import base64
import csv
import datetime
import decimal
import io
import json
from typing import Any, Callable, Literal

from ha_flink.common.serialization import DeserializationSchema, SerializationSchema
from ha_flink.common.typeinfo import (
    BasicArrayTypeInfo, BasicType, BasicTypeInfo, DateTypeInfo, ListTypeInfo, MapTypeInfo, ObjectArrayTypeInfo,
    PrimitiveArrayTypeInfo, RowTypeInfo, TimestampTypeInfo, TimeTypeInfo, TypeInformation, Types,
)
from ha_flink.common.types import Row

__all__ = ["CsvRowDeserializationSchema", "CsvRowSerializationSchema", "JsonRowDeserializationSchema",
           "JsonRowSerializationSchema"]


def _row_type(type_info: TypeInformation, schema: str) -> RowTypeInfo:
    if not isinstance(type_info, RowTypeInfo):
        raise TypeError(f"{schema}: the type info must be a RowTypeInfo (Types.ROW_NAMED(...)), got {type_info!r}")
    return type_info


def _element_type(type_info: TypeInformation) -> TypeInformation | None:
    if isinstance(type_info, (ListTypeInfo, BasicArrayTypeInfo, ObjectArrayTypeInfo, PrimitiveArrayTypeInfo)):
        return type_info._element_type
    return None


def _basic(type_info: TypeInformation) -> BasicType | None:
    return type_info._basic_type if isinstance(type_info, BasicTypeInfo) else None


# ---- JSON ---------------------------------------------------------------------------------------------------

def _to_json(value: Any, type_info: TypeInformation) -> Any:
    if value is None:
        return None
    if isinstance(type_info, RowTypeInfo):
        names = type_info.get_field_names()
        values = [value[n] for n in names] if isinstance(value, Row) and hasattr(value, "_fields") else list(value)
        return {n: _to_json(v, t) for n, v, t in zip(names, values, type_info.get_field_types())}
    if isinstance(type_info, MapTypeInfo):
        return {str(k): _to_json(v, type_info._value_type_info) for k, v in value.items()}
    element = _element_type(type_info)
    if element is not None and not isinstance(value, (bytes, bytearray)):
        return [_to_json(v, element) for v in value]
    if isinstance(value, (bytes, bytearray)):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(type_info, TimestampTypeInfo) and isinstance(value, datetime.datetime):
        return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"
    if isinstance(value, (datetime.date, datetime.time)):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return float(value) if value != value.to_integral_value() else int(value)
    return value


def _from_json(value: Any, type_info: TypeInformation, where: str) -> Any:
    if value is None:
        return None
    if isinstance(type_info, RowTypeInfo):
        if not isinstance(value, dict):
            raise ValueError(f"{where}: expected a JSON object for {type_info!r}, got {value!r}")
        names = type_info.get_field_names()
        row = Row(*[_from_json(value.get(n), t, f"{where}.{n}") for n, t in zip(names, type_info.get_field_types())])
        row.set_field_names(names)
        return row
    if isinstance(type_info, MapTypeInfo):
        return {k: _from_json(v, type_info._value_type_info, f"{where}.{k}") for k, v in value.items()}
    element = _element_type(type_info)
    if element is not None and isinstance(value, list):
        return [_from_json(v, element, f"{where}[{i}]") for i, v in enumerate(value)]
    basic = _basic(type_info)
    if basic in (BasicType.BYTE, BasicType.SHORT, BasicType.INT, BasicType.LONG, BasicType.BIG_INT):
        return int(value)
    if basic in (BasicType.FLOAT, BasicType.DOUBLE):
        return float(value)
    if basic is BasicType.BIG_DEC:
        return decimal.Decimal(str(value))
    if basic is BasicType.BOOLEAN:
        if not isinstance(value, bool):
            raise ValueError(f"{where}: expected a JSON boolean, got {value!r}")
        return value
    if basic is BasicType.STRING:
        return value if isinstance(value, str) else json.dumps(value)
    if isinstance(type_info, DateTypeInfo):
        return datetime.date.fromisoformat(value)
    if isinstance(type_info, TimeTypeInfo):
        return datetime.time.fromisoformat(value)
    if isinstance(type_info, TimestampTypeInfo):
        return datetime.datetime.fromisoformat(value.rstrip("Z"))
    if type_info == Types.PRIMITIVE_ARRAY(Types.BYTE()) and isinstance(value, str):
        return base64.b64decode(value)
    return value


_JSON_SCHEMA_TYPES: dict[str, Callable[[], TypeInformation]] = {
    "string": Types.STRING, "integer": Types.LONG, "number": Types.DOUBLE, "boolean": Types.BOOLEAN,
}


def _type_of_json_schema(schema: dict[str, Any], where: str) -> TypeInformation:
    kind = schema.get("type")
    if isinstance(kind, list):  # ["string", "null"]: nullable
        kinds = [k for k in kind if k != "null"]
        kind = kinds[0] if len(kinds) == 1 else None
    if kind == "object":
        properties = schema.get("properties", {})
        return Types.ROW_NAMED(list(properties),
                               [_type_of_json_schema(p, f"{where}.{n}") for n, p in properties.items()])
    if kind == "array":
        return Types.OBJECT_ARRAY(_type_of_json_schema(schema.get("items", {"type": "string"}), f"{where}[]"))
    if kind == "string" and schema.get("format") in ("date", "time", "date-time"):
        return {"date": Types.SQL_DATE, "time": Types.SQL_TIME, "date-time": Types.SQL_TIMESTAMP}[schema["format"]]()
    if isinstance(kind, str) and kind in _JSON_SCHEMA_TYPES:
        return _JSON_SCHEMA_TYPES[kind]()
    raise ValueError(f"JSON schema at {where}: unsupported type {schema.get('type')!r}")


class JsonRowSerializationSchema(SerializationSchema):
    """A row as one JSON object (UTF-8), its keys the type's field names."""

    def __init__(self, type_info: RowTypeInfo) -> None:
        self.type_info = _row_type(type_info, "JsonRowSerializationSchema")

    @staticmethod
    def builder() -> JsonRowSerializationSchema.Builder:
        return JsonRowSerializationSchema.Builder()

    def serialize(self, value: Any) -> bytes:
        return json.dumps(_to_json(value, self.type_info), separators=(",", ":"), ensure_ascii=False).encode()

    class Builder:
        def __init__(self) -> None:
            self._type_info: RowTypeInfo | None = None

        def with_type_info(self, type_info: TypeInformation) -> JsonRowSerializationSchema.Builder:
            self._type_info = _row_type(type_info, "JsonRowSerializationSchema")
            return self

        def build(self) -> JsonRowSerializationSchema:
            if self._type_info is None:
                raise ValueError("JsonRowSerializationSchema: set the row type with with_type_info(...) first")
            return JsonRowSerializationSchema(self._type_info)


class JsonRowDeserializationSchema(DeserializationSchema):
    """One JSON object (UTF-8) as a Row of the type's fields. A field the object lacks is None, or an
    error with `fail_on_missing_field`; a message that cannot be parsed is an error naming it, or None
    (skipped, as Flink's null) with `ignore_parse_errors`."""

    def __init__(self, type_info: RowTypeInfo, fail_on_missing_field: bool = False,
                 ignore_parse_errors: bool = False) -> None:
        if fail_on_missing_field and ignore_parse_errors:
            raise ValueError("JSON format doesn't support failOnMissingField and ignoreParseErrors are both true.")
        self.type_info = _row_type(type_info, "JsonRowDeserializationSchema")
        self.fail_on_missing_field = fail_on_missing_field
        self.ignore_parse_errors = ignore_parse_errors

    @staticmethod
    def builder() -> JsonRowDeserializationSchema.Builder:
        return JsonRowDeserializationSchema.Builder()

    def deserialize(self, message: bytes) -> Row | None:
        try:
            value = json.loads(bytes(message).decode("utf-8"))
            if self.fail_on_missing_field:
                missing = [n for n in self.type_info.get_field_names() if not isinstance(value, dict) or n not in value]
                if missing:
                    raise ValueError(f"Could not find field {missing[0]!r} in the JSON object")
            return _from_json(value, self.type_info, "$")
        except (ValueError, TypeError, UnicodeDecodeError) as error:
            if self.ignore_parse_errors:
                return None
            raise ValueError(f"Failed to deserialize JSON {bytes(message)[:200]!r}: {error}") from error

    class Builder:
        def __init__(self) -> None:
            self._type_info: RowTypeInfo | None = None
            self._fail_on_missing_field = False
            self._ignore_parse_errors = False

        def type_info(self, type_info: TypeInformation) -> JsonRowDeserializationSchema.Builder:
            self._type_info = _row_type(type_info, "JsonRowDeserializationSchema")
            return self

        def json_schema(self, json_schema: str) -> JsonRowDeserializationSchema.Builder:
            """The row type from a JSON schema (objects, arrays, strings with date/time formats, numbers,
            integers, booleans)."""
            try:
                parsed = json.loads(json_schema)
            except ValueError as error:
                raise ValueError(f"JsonRowDeserializationSchema: the JSON schema is not JSON: {error}") from error
            row = _type_of_json_schema(parsed, "$")
            self._type_info = _row_type(row, "JsonRowDeserializationSchema (a JSON schema of an object)")
            return self

        def fail_on_missing_field(self) -> JsonRowDeserializationSchema.Builder:
            self._fail_on_missing_field = True
            return self

        def ignore_parse_errors(self) -> JsonRowDeserializationSchema.Builder:
            self._ignore_parse_errors = True
            return self

        def build(self) -> JsonRowDeserializationSchema:
            if self._type_info is None:
                raise ValueError("JsonRowDeserializationSchema: set type_info(...) or json_schema(...) first")
            return JsonRowDeserializationSchema(self._type_info, self._fail_on_missing_field,
                                                self._ignore_parse_errors)


# ---- CSV ----------------------------------------------------------------------------------------------------

def _to_csv_text(value: Any, type_info: TypeInformation, array_delimiter: str, null_literal: str) -> str:
    if value is None:
        return null_literal
    element = _element_type(type_info)
    if element is not None and not isinstance(value, (bytes, bytearray)):
        return array_delimiter.join(_to_csv_text(v, element, array_delimiter, null_literal) for v in value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (bytes, bytearray)):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, datetime.datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S.") + (f"{value.microsecond:06d}".rstrip("0") or "0")
    if isinstance(value, (datetime.date, datetime.time)):
        return value.isoformat()
    if isinstance(type_info, RowTypeInfo):
        raise TypeError("CsvRowSerializationSchema: nested rows cannot be written as CSV columns")
    return str(value)


def _from_csv_text(text: str, type_info: TypeInformation, array_delimiter: str, null_literal: str) -> Any:
    if text == null_literal and (null_literal or _basic(type_info) is not BasicType.STRING):
        return None
    element = _element_type(type_info)
    if element is not None and type_info != Types.PRIMITIVE_ARRAY(Types.BYTE()):
        return [_from_csv_text(part, element, array_delimiter, null_literal)
                for part in (text.split(array_delimiter) if text else [])]
    basic = _basic(type_info)
    if basic in (BasicType.BYTE, BasicType.SHORT, BasicType.INT, BasicType.LONG, BasicType.BIG_INT):
        return int(text)
    if basic in (BasicType.FLOAT, BasicType.DOUBLE):
        return float(text)
    if basic is BasicType.BIG_DEC:
        return decimal.Decimal(text)
    if basic is BasicType.BOOLEAN:
        if text.lower() not in ("true", "false"):
            raise ValueError(f"not a boolean: {text!r}")
        return text.lower() == "true"
    if isinstance(type_info, DateTypeInfo):
        return datetime.date.fromisoformat(text)
    if isinstance(type_info, TimeTypeInfo):
        return datetime.time.fromisoformat(text)
    if isinstance(type_info, TimestampTypeInfo):
        return datetime.datetime.fromisoformat(text)
    if type_info == Types.PRIMITIVE_ARRAY(Types.BYTE()):
        return base64.b64decode(text)
    return text


def _one_char(name: str, c: str) -> str:
    if not isinstance(c, str) or len(c) != 1:
        raise ValueError(f"{name} must be a single character, got {c!r}")
    return c


class CsvRowSerializationSchema(SerializationSchema):
    """A row as one CSV line (UTF-8, ending with the line delimiter), its columns the row's fields in the
    type's order; array fields joined by the array element delimiter."""

    def __init__(self, type_info: RowTypeInfo, field_delimiter: str = ",", line_delimiter: str = "\n",
                 array_element_delimiter: str = ";", quote_character: str | None = '"',
                 escape_character: str | None = None, null_literal: str = "") -> None:
        self.type_info = _row_type(type_info, "CsvRowSerializationSchema")
        self.field_delimiter = field_delimiter
        self.line_delimiter = line_delimiter
        self.array_element_delimiter = array_element_delimiter
        self.quote_character = quote_character
        self.escape_character = escape_character
        self.null_literal = null_literal

    def serialize(self, value: Any) -> bytes:
        types = self.type_info.get_field_types()
        if isinstance(value, Row) and hasattr(value, "_fields"):
            value = [value[n] for n in self.type_info.get_field_names()]
        values = list(value)
        if len(values) != len(types):
            raise ValueError(f"CsvRowSerializationSchema: a row of {len(values)} fields for {self.type_info!r}")
        texts = [_to_csv_text(v, t, self.array_element_delimiter, self.null_literal) for v, t in zip(values, types)]
        out = io.StringIO()
        quoting: Literal[0, 3] = csv.QUOTE_MINIMAL if self.quote_character else csv.QUOTE_NONE
        writer = csv.writer(out, delimiter=self.field_delimiter, quotechar=self.quote_character or '"',
                            escapechar=self.escape_character, quoting=quoting, lineterminator=self.line_delimiter)
        writer.writerow(texts)
        return out.getvalue().encode()

    class Builder:
        def __init__(self, type_info: TypeInformation) -> None:
            self._type_info = _row_type(type_info, "CsvRowSerializationSchema")
            self._options: dict[str, Any] = {}

        def set_field_delimiter(self, c: str) -> CsvRowSerializationSchema.Builder:
            self._options["field_delimiter"] = _one_char("field delimiter", c)
            return self

        def set_line_delimiter(self, delimiter: str) -> CsvRowSerializationSchema.Builder:
            if delimiter not in ("\n", "\r", "\r\n", ""):
                raise ValueError("Unsupported new line delimiter. Only \\n, \\r, \\r\\n are supported.")
            self._options["line_delimiter"] = delimiter
            return self

        def set_array_element_delimiter(self, delimiter: str) -> CsvRowSerializationSchema.Builder:
            self._options["array_element_delimiter"] = delimiter
            return self

        def disable_quote_character(self) -> CsvRowSerializationSchema.Builder:
            self._options["quote_character"] = None
            return self

        def set_quote_character(self, c: str) -> CsvRowSerializationSchema.Builder:
            self._options["quote_character"] = _one_char("quote character", c)
            return self

        def set_escape_character(self, c: str) -> CsvRowSerializationSchema.Builder:
            self._options["escape_character"] = _one_char("escape character", c)
            return self

        def set_null_literal(self, s: str) -> CsvRowSerializationSchema.Builder:
            self._options["null_literal"] = s
            return self

        def build(self) -> CsvRowSerializationSchema:
            return CsvRowSerializationSchema(self._type_info, **self._options)


class CsvRowDeserializationSchema(DeserializationSchema):
    """One CSV line (UTF-8) as a Row of the type's fields, by position. A line that cannot be parsed is
    an error naming it, or None (skipped) with `set_ignore_parse_errors(True)`; with
    `set_allow_comments(True)` a line starting with `#` is skipped (None)."""

    def __init__(self, type_info: RowTypeInfo, field_delimiter: str = ",", allow_comments: bool = False,
                 array_element_delimiter: str = ";", quote_character: str | None = '"',
                 escape_character: str | None = None, null_literal: str = "",
                 ignore_parse_errors: bool = False) -> None:
        self.type_info = _row_type(type_info, "CsvRowDeserializationSchema")
        self.field_delimiter = field_delimiter
        self.allow_comments = allow_comments
        self.array_element_delimiter = array_element_delimiter
        self.quote_character = quote_character
        self.escape_character = escape_character
        self.null_literal = null_literal
        self.ignore_parse_errors = ignore_parse_errors

    def deserialize(self, message: bytes) -> Row | None:
        text = bytes(message).decode("utf-8").rstrip("\r\n")
        if self.allow_comments and text.startswith("#"):
            return None
        try:
            quoting: Literal[0, 3] = csv.QUOTE_MINIMAL if self.quote_character else csv.QUOTE_NONE
            reader = csv.reader([text], delimiter=self.field_delimiter, quotechar=self.quote_character or '"',
                                escapechar=self.escape_character, quoting=quoting)
            columns = next(reader, [])
            types = self.type_info.get_field_types()
            if len(columns) != len(types):
                raise ValueError(f"{len(columns)} columns for the {len(types)} fields of {self.type_info!r}")
            row = Row(*[_from_csv_text(c, t, self.array_element_delimiter, self.null_literal)
                        for c, t in zip(columns, types)])
        except (ValueError, TypeError, csv.Error) as error:
            if self.ignore_parse_errors:
                return None
            raise ValueError(f"Failed to deserialize CSV row {text[:200]!r}: {error}") from error
        row.set_field_names(self.type_info.get_field_names())
        return row

    class Builder:
        def __init__(self, type_info: TypeInformation) -> None:
            self._type_info = _row_type(type_info, "CsvRowDeserializationSchema")
            self._options: dict[str, Any] = {}

        def set_field_delimiter(self, delimiter: str) -> CsvRowDeserializationSchema.Builder:
            self._options["field_delimiter"] = _one_char("field delimiter", delimiter)
            return self

        def set_allow_comments(self, allow_comments: bool) -> CsvRowDeserializationSchema.Builder:
            self._options["allow_comments"] = bool(allow_comments)
            return self

        def set_array_element_delimiter(self, delimiter: str) -> CsvRowDeserializationSchema.Builder:
            self._options["array_element_delimiter"] = delimiter
            return self

        def set_quote_character(self, c: str) -> CsvRowDeserializationSchema.Builder:
            self._options["quote_character"] = _one_char("quote character", c)
            return self

        def set_escape_character(self, c: str) -> CsvRowDeserializationSchema.Builder:
            self._options["escape_character"] = _one_char("escape character", c)
            return self

        def set_null_literal(self, null_literal: str) -> CsvRowDeserializationSchema.Builder:
            self._options["null_literal"] = null_literal
            return self

        def set_ignore_parse_errors(self, ignore_parse_errors: bool) -> CsvRowDeserializationSchema.Builder:
            self._options["ignore_parse_errors"] = bool(ignore_parse_errors)
            return self

        def build(self) -> CsvRowDeserializationSchema:
            return CsvRowDeserializationSchema(self._type_info, **self._options)
