"""Turning records into bytes and back: `Encoder` (what a file sink writes per record), `BulkWriterFactory`
(what a bulk-format file sink writes per part file: bulk_writer.py) and `SimpleStringSchema` (strings to and
from bytes, for sources and sinks of text messages)."""

from __future__ import annotations

import codecs
from typing import Any

from ha_flink.common.bulk_writer import BulkWriterFactory

__all__ = ["BulkWriterFactory", "ByteArraySchema", "Encoder", "RowFieldExtractorSchema", "SimpleStringEncoder",
           "SerializationSchema", "DeserializationSchema", "SimpleStringSchema"]


class Encoder:
    """Writes one record of a row-format file sink as bytes."""

    def encode(self, value: Any) -> bytes:
        raise NotImplementedError

    @staticmethod
    def simple_string_encoder(charset_name: str = "UTF-8") -> "SimpleStringEncoder":
        """An encoder writing each record's string form followed by a newline."""
        return SimpleStringEncoder(charset_name)


class SimpleStringEncoder(Encoder):
    """Flink's SimpleStringEncoder: the element as a string, then ``\\n``."""

    def __init__(self, charset_name: str = "UTF-8") -> None:
        codecs.lookup(charset_name)  # an unknown charset fails here, not on the first record
        self.charset_name = charset_name

    def encode(self, value: Any) -> bytes:
        return (str(value) + "\n").encode(self.charset_name)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SimpleStringEncoder) and self.charset_name == other.charset_name

    def __hash__(self) -> int:
        return hash(self.charset_name)

    def __repr__(self) -> str:
        return "SimpleStringEncoder(%r)" % self.charset_name


class SerializationSchema:
    """Turns a record into the bytes a sink writes."""

    def serialize(self, value: Any) -> bytes:
        raise NotImplementedError


class DeserializationSchema:
    """Turns the bytes a source read into a record."""

    def deserialize(self, message: bytes) -> Any:
        raise NotImplementedError


class SimpleStringSchema(SerializationSchema, DeserializationSchema):
    """Strings to and from bytes in one charset (UTF-8 by default)."""

    def __init__(self, charset: str = "UTF-8") -> None:
        codecs.lookup(charset)
        self.charset = charset

    def serialize(self, value: str) -> bytes:
        return value.encode(self.charset)

    def deserialize(self, message: bytes) -> str:
        return bytes(message).decode(self.charset)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SimpleStringSchema) and self.charset == other.charset

    def __hash__(self) -> int:
        return hash(self.charset)

    def __repr__(self) -> str:
        return "SimpleStringSchema(%r)" % self.charset


class ByteArraySchema(SerializationSchema, DeserializationSchema):
    """Bytes as they are, both ways."""

    def serialize(self, value: bytes) -> bytes:
        if not isinstance(value, (bytes, bytearray, memoryview)):
            raise TypeError(f"ByteArraySchema serializes bytes, got {type(value).__name__}")
        return bytes(value)

    def deserialize(self, message: bytes) -> bytes:
        return bytes(message)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ByteArraySchema)

    def __hash__(self) -> int:
        return hash(ByteArraySchema)


class RowFieldExtractorSchema(SerializationSchema):
    """One field of a Row, which must already be bytes, as the message (e.g. a Kafka key): an absent row or
    field gives empty bytes, as Flink's."""

    def __init__(self, field_index: int) -> None:
        if field_index < 0:
            raise ValueError(f"Field index must be non-negative, got: {field_index}")
        self.field_index = field_index

    def serialize(self, value: Any) -> bytes:
        if value is None:
            return b""
        if self.field_index >= len(value):
            raise ValueError(f"Cannot access field {self.field_index} of a row with {len(value)} fields")
        field = value[self.field_index]
        if field is None:
            return b""
        if not isinstance(field, (bytes, bytearray)):
            raise ValueError(f"Field at index {self.field_index} must be of type bytes, but was "
                             f"{type(field).__name__}")
        return bytes(field)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, RowFieldExtractorSchema) and self.field_index == other.field_index

    def __hash__(self) -> int:
        return hash(("RowFieldExtractorSchema", self.field_index))
