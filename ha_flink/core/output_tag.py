"""`OutputTag`, as `pyflink.datastream.output_tag`: names a side output of an operator.

A process function emits to a side output by yielding `(output_tag, value)` (PyFlink's idiom) or with
`ctx.output(output_tag, value)`; `stream.get_side_output(output_tag)` is the stream of those records.
Two tags with the same id are the same side output."""

from __future__ import annotations

from typing import Any


class OutputTag:
    def __init__(self, tag_id: str, type_info: Any = None) -> None:
        if not isinstance(tag_id, str) or not tag_id:
            raise ValueError(f"OutputTag needs a non-empty string id, got {tag_id!r}")
        self.tag_id = tag_id
        self.type_info = type_info

    def __eq__(self, other: object) -> bool:
        return isinstance(other, OutputTag) and other.tag_id == self.tag_id

    def __hash__(self) -> int:
        return hash(self.tag_id)

    def __repr__(self) -> str:
        return f"OutputTag({self.tag_id!r})"


__all__ = [
    "OutputTag",
]
