"""`TypeSerializer`, as PyFlink's: how a value of one type is written to and read from a byte stream.

Records travel between ha-flink's tasks pickled (or in a declared type's own encoding), so the runtime
calls no user TypeSerializer; it is the base a user's own serializer extends, with PyFlink's methods."""

from __future__ import annotations

from abc import ABC, abstractmethod
from io import BytesIO
from typing import Generic, TypeVar

T = TypeVar("T")

__all__ = ["TypeSerializer"]


class TypeSerializer(ABC, Generic[T]):
    """Serializes and deserializes the elements of one type."""

    def __eq__(self, other: object) -> bool:
        return isinstance(other, self.__class__) and self.__dict__ == other.__dict__

    def __ne__(self, other: object) -> bool:
        return not self.__eq__(other)

    def __repr__(self) -> str:
        return "%s()" % self.__class__.__name__

    def __hash__(self) -> int:
        return hash(str(self))

    @abstractmethod
    def serialize(self, element: T, stream: BytesIO) -> None:
        """Writes an element to the stream."""

    @abstractmethod
    def deserialize(self, stream: BytesIO) -> T:
        """Reads an element from the stream."""

    def to_bytes(self, element: T) -> bytes:
        """The element's bytes, as one `serialize` writes them."""
        stream = BytesIO()
        self.serialize(element, stream)
        return stream.getvalue()

    def from_bytes(self, data: bytes) -> T:
        return self.deserialize(BytesIO(data))
