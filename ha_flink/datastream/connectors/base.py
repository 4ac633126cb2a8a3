"""The source contract (after Flink's FLIP-27 Source, reduced): a source cuts its input into splits,
splits are assigned to the parallel source subtasks, and each subtask's reader turns its splits into
record batches. Readers are polled by the task, so a task can also fire timers and notice cancellation
between batches. Also PyFlink's connector base names: `Sink`, `DeliveryGuarantee`, and
`SupportsPreprocessing` (a sink that rewrites the stream before it, through a `StreamTransformer`)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from enum import Enum
from typing import Any

BATCH_SIZE = 1024


class Boundedness:
    BOUNDED = "BOUNDED"
    CONTINUOUS_UNBOUNDED = "CONTINUOUS_UNBOUNDED"


class SourceReader(ABC):
    @abstractmethod
    def poll_batch(self) -> list[Any] | None:
        """The next batch; [] when nothing is ready yet; None when this reader's splits are exhausted."""

    def close(self) -> None:
        pass

    def snapshot(self) -> list[Any] | None:
        """What is left to read, as splits `create_reader` takes again (the source's position in a
        checkpoint); None: not replayable (restarts from its beginning)."""
        return None


class Source(ABC):
    """A parallel source. `max_parallelism` 1 marks a non-parallel one (collections, Python functions)."""

    name = "Source"
    max_parallelism: int | None = None

    @abstractmethod
    def get_boundedness(self) -> str: ...

    @abstractmethod
    def create_splits(self, parallelism: int) -> list[Any]: ...

    @abstractmethod
    def create_reader(self, splits: list[Any]) -> SourceReader: ...


class Sink(ABC):
    """A sink for `DataStream.sink_to`: makes the operator each sink subtask runs."""

    name = "Sink"

    @abstractmethod
    def create_operator(self) -> Any: ...


class DeliveryGuarantee(Enum):
    """What a sink promises about its records under failover (PyFlink's connectors.base.DeliveryGuarantee):
    `EXACTLY_ONCE` (each record in the output once, also after a restart from a checkpoint),
    `AT_LEAST_ONCE` (never lost, possibly repeated) or `NONE` (best effort)."""

    EXACTLY_ONCE = 0
    AT_LEAST_ONCE = 1
    NONE = 2


class StreamTransformer(ABC):
    """Rewrites the stream a sink receives (`apply(ds)` returns the DataStream to sink instead)."""

    @abstractmethod
    def apply(self, ds: Any) -> Any: ...


class SupportsPreprocessing(ABC):
    """A sink whose input is first passed through its transformer (`DataStream.sink_to` applies it)."""

    @abstractmethod
    def get_transformer(self) -> StreamTransformer | None: ...


class CollectionSource(Source):
    """`env.from_collection`: a non-parallel source of a Python list, as in Flink."""

    name = "Collection Source"
    max_parallelism = 1

    def __init__(self, elements: list[Any], batch_size: int = BATCH_SIZE) -> None:
        self.elements = list(elements)
        self.batch_size = batch_size  # (tests use 1: a watermark after every record)

    def get_boundedness(self) -> str:
        return Boundedness.BOUNDED

    def create_splits(self, parallelism: int) -> list[Any]:
        return [self.elements]

    def create_reader(self, splits: list[Any]) -> SourceReader:
        return _ListReader([element for split in splits for element in split], self.batch_size)


class _ListReader(SourceReader):
    def __init__(self, elements: list[Any], batch_size: int = BATCH_SIZE) -> None:
        self.elements = elements
        self.batch_size = batch_size
        self.position = 0

    def poll_batch(self) -> list[Any] | None:
        if self.position >= len(self.elements):
            return None
        batch = self.elements[self.position:self.position + self.batch_size]
        self.position += len(batch)
        return batch

    def snapshot(self) -> list[Any] | None:
        return [self.elements[self.position:]]
