"""A sink for tests that works in any process: each sink subtask appends its records (pickled, length
prefixed) to a file of its own in a folder; `read_collected` reads them all back. Local and distributed
runs can be checked the same way."""

from __future__ import annotations

import os
import pickle
import struct
import uuid
from pathlib import Path
from typing import Any

from ha_flink.datastream.functions import RuntimeContext, SinkFunction


class CollectSink(SinkFunction):
    def __init__(self, folder: str | os.PathLike[str]) -> None:
        self.folder = str(folder)
        self.handle: Any = None

    def open(self, runtime_context: RuntimeContext) -> None:
        Path(self.folder).mkdir(parents=True, exist_ok=True)
        name = f"{runtime_context.get_index_of_this_subtask()}-{uuid.uuid4().hex}.records"
        self.handle = open(os.path.join(self.folder, name), "ab")

    def invoke(self, value: Any, context: Any) -> None:
        data = pickle.dumps(value, protocol=5)
        self.handle.write(struct.pack("<I", len(data)) + data)
        self.handle.flush()

    def close(self) -> None:
        if self.handle is not None:
            self.handle.close()


def read_collected(folder: str | os.PathLike[str]) -> list[Any]:
    records: list[Any] = []
    directory = Path(folder)
    if not directory.exists():
        return records
    for path in sorted(directory.glob("*.records")):
        data = path.read_bytes()
        position = 0
        while position + 4 <= len(data):
            (length,) = struct.unpack_from("<I", data, position)
            if position + 4 + length > len(data):
                break  # a record still being written
            records.append(pickle.loads(data[position + 4:position + 4 + length]))
            position += 4 + length
    return records
