"""Turning records into bytes and back: `Encoder` (what a file sink writes per record), `BulkWriterFactory`
(what a bulk-format file sink writes per part file: bulk_writer.py) and `SimpleStringSchema` (strings to and
from bytes, for sources and sinks of text messages)."""

from __future__ import annotations

import codecs
from typing import Any

from ha_flink.common.bulk_writer import BulkWriterFactory

__all__ = ["BulkWriterFactory", "Encoder", "SimpleStringEncoder", "SerializationSchema", "DeserializationSchema",
           "SimpleStringSchema"]


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
