"""Bulk-encoded file output, as Flink's `BulkWriter` and `BulkWriter.Factory`: a format that encodes many
records together (columnar files, files with a header or footer) and so cannot be cut at any byte. A
file sink built with `FileSink.for_bulk_format(base_path, writer_factory)` asks the factory for one writer
per part file, hands it the part's records and finishes it when the part rolls, which for bulk formats is
at every checkpoint (and at the end of a bounded input): a finished part is never written to again.

PyFlink's `BulkWriterFactory` wraps a Java factory (Parquet, ORC, Avro from `pyflink.datastream.formats`);
here the factory and its writers are Python."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, BinaryIO

__all__ = ["BulkWriter", "BulkWriterFactory"]


class BulkWriter(ABC):
    """Encodes the records of one part file onto its stream."""

    @abstractmethod
    def add_element(self, element: Any) -> None:
        """Adds one record; the writer may buffer it."""

    @abstractmethod
    def flush(self) -> None:
        """Writes what the writer buffers to the stream (the sink calls it before `finish`)."""

    @abstractmethod
    def finish(self) -> None:
        """Completes the file: flushes what is buffered and writes any footer. No record follows. It must
        not close the stream: the sink closes it and then knows the file's length."""


class BulkWriterFactory(ABC):
    """Makes the writer of each new part file (it is pickled with the job: keep it picklable)."""

    @abstractmethod
    def create(self, stream: BinaryIO) -> BulkWriter:
        """A writer for a new part file, writing to `stream` (binary, opened by the sink)."""
