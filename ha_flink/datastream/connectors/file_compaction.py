"""File compaction for the FileSink (`FileSink.for_row_format(...).enable_compact(strategy, compactor)`):
Flink's `FileCompactStrategy`, `FileCompactor` and what its CompactCoordinator and CompactorOperator do,
here inside each sink subtask (`SubtaskCompaction`, driven by `file_system.FileSinkWriter`).

As in Flink: with compaction on, a part file that rolls is not published. It waits, hidden, in its bucket's
packing list. A bucket's request fires when its packed files reach the size threshold, or at the N-th
checkpoint barrier after its first file came (`enable_compaction_on_checkpoint(N)`). A request fired at
checkpoint c is compacted once c completes, on one of `num_compact_threads` threads, into a hidden
in-progress file; the next barrier pre-commits the result (`compacted-<name of its first input>`) and
when that checkpoint completes the result is published and its inputs deleted. So a reader sees only
compacted files, each once; a restore from a checkpoint commits what it had pre-committed, deletes inputs
already compacted, and compacts again whatever it had packed, fired or in compaction (the failed attempt's
half-written results are deleted with its other in-progress files). At the end of a bounded input every
bucket is compacted at once.

Flink's coordinator runs with parallelism 1 and merges the files of all sink subtasks of a bucket; here
each subtask compacts its own files, so a bucket holds one compacted file per subtask and request."""

from __future__ import annotations

import concurrent.futures
import os
import uuid
from dataclasses import dataclass, field
from typing import Any, BinaryIO

__all__ = ["FileCompactStrategy", "FileCompactor"]

COMPACTED_PREFIX = "compacted-"  # Flink's CompactService names a result after its first input
_COPY_CHUNK = 1 << 20


@dataclass(frozen=True)
class FileCompactStrategy:
    """When a bucket's files are compacted: once their total size reaches `size_threshold` bytes, or every
    `num_checkpoints_before_compaction` checkpoints (-1: not by that condition; one must be set), on
    `num_compact_threads` threads of the sink subtask (-1: one)."""

    size_threshold: int = -1
    num_checkpoints_before_compaction: int = -1
    num_compact_threads: int = -1

    @staticmethod
    def builder() -> FileCompactStrategy.Builder:
        return FileCompactStrategy.Builder()

    def threads(self) -> int:
        # as Flink's CompactService: at least one, at most the machine's cores
        return max(1, min(self.num_compact_threads, os.cpu_count() or 1))

    class Builder:
        def __init__(self) -> None:
            self._size_threshold = -1
            self._num_checkpoints = -1
            self._num_threads = -1

        def enable_compaction_on_checkpoint(self, num_checkpoints_before_compaction: int) \
                -> FileCompactStrategy.Builder:
            """Compact when N checkpoints have passed since a bucket's last compaction."""
            if num_checkpoints_before_compaction <= 0:
                raise ValueError("Number of checkpoints before compaction should be more than 0, got "
                                 f"{num_checkpoints_before_compaction}")
            self._num_checkpoints = num_checkpoints_before_compaction
            return self

        def set_size_threshold(self, size_threshold: int) -> FileCompactStrategy.Builder:
            """Compact when a bucket's waiting files reach this many bytes (-1: no size condition)."""
            self._size_threshold = size_threshold
            return self

        def set_num_compact_threads(self, num_compact_threads: int) -> FileCompactStrategy.Builder:
            """How many threads of a sink subtask compact (1 by default)."""
            if num_compact_threads <= 0:
                raise ValueError(f"Compact threads should be more than 0, got {num_compact_threads}")
            self._num_threads = num_compact_threads
            return self

        def build(self) -> FileCompactStrategy:
            if self._size_threshold < 0 and self._num_checkpoints <= 0:
                raise ValueError("FileCompactStrategy: at least one trigger condition must be configured "
                                 "(enable_compaction_on_checkpoint or set_size_threshold)")
            return FileCompactStrategy(self._size_threshold, self._num_checkpoints, self._num_threads)


class FileCompactor:
    """How files become one: `concat_file_compactor(file_delimiter)` writes them one after another (the
    delimiter between neighbours); `identical_file_compactor()` copies the only input (a request of more
    files fails, as in Flink)."""

    def __init__(self, file_delimiter: bytes | None = None, identical: bool = False) -> None:
        if file_delimiter is not None and not isinstance(file_delimiter, (bytes, bytearray)):
            raise TypeError(f"FileCompactor: file_delimiter must be bytes, got {type(file_delimiter).__name__}")
        self.file_delimiter = bytes(file_delimiter) if file_delimiter else None
        self.identical = identical

    @staticmethod
    def concat_file_compactor(file_delimiter: bytes | None = None) -> FileCompactor:
        return FileCompactor(file_delimiter)

    @staticmethod
    def identical_file_compactor() -> FileCompactor:
        return FileCompactor(identical=True)

    def compact(self, inputs: list[BinaryIO], output: BinaryIO) -> None:
        if self.identical and len(inputs) != 1:
            raise RuntimeError(f"identical_file_compactor can only copy one input file, got {len(inputs)} "
                               "(use concat_file_compactor to merge files)")
        for index, source in enumerate(inputs):
            if index and self.file_delimiter:
                output.write(self.file_delimiter)
            while chunk := source.read(_COPY_CHUNK):
                output.write(chunk)


@dataclass(frozen=True)
class PendingFile:
    """A closed part file waiting for compaction: its in-progress path (hidden), the name it would have
    had, its size."""

    temp: str
    final: str
    size: int

    @property
    def bucket(self) -> str:
        return self.final.rsplit("/", 1)[0]


@dataclass(frozen=True)
class CompactRequest:
    """Files of one bucket to compact into one."""

    files: tuple[PendingFile, ...]


@dataclass(frozen=True)
class Compacted:
    """A request's result: its in-progress file and final name, and the inputs to delete once published."""

    temp: str
    final: str
    inputs: tuple[str, ...]


@dataclass
class _Trigger:
    """Flink's CompactCoordinator.CompactTrigger, one per bucket with files since its last request."""

    strategy: FileCompactStrategy
    size: int = 0
    first_checkpoint: int = -1

    def on_element(self, size: int) -> bool:
        if self.strategy.size_threshold < 0:
            return False
        self.size += size
        return self.size >= self.strategy.size_threshold

    def on_checkpoint(self, checkpoint_id: int) -> bool:
        every = self.strategy.num_checkpoints_before_compaction
        if every < 0:
            return False
        if self.first_checkpoint < 0:
            self.first_checkpoint = checkpoint_id - 1
        return checkpoint_id - self.first_checkpoint >= every


@dataclass
class SubtaskCompaction:
    """The compaction state of one sink subtask: packing files per bucket, fired requests by the
    checkpoint that fired them, requests in compaction. The writer calls it on its task thread only;
    compactions run on the pool and are collected at barriers."""

    fs: Any
    strategy: FileCompactStrategy
    compactor: FileCompactor
    packing: dict[str, list[PendingFile]] = field(default_factory=dict)
    triggers: dict[str, _Trigger] = field(default_factory=dict)
    collecting: list[CompactRequest] = field(default_factory=list)  # fired since the last barrier
    requests: dict[int, list[CompactRequest]] = field(default_factory=dict)  # fired at checkpoint c
    resubmit: list[CompactRequest] = field(default_factory=list)  # in compaction at the restored checkpoint
    compacting: list[tuple[CompactRequest, concurrent.futures.Future[Compacted]]] = field(default_factory=list)
    pool: concurrent.futures.ThreadPoolExecutor | None = None

    def open(self) -> None:
        self.pool = concurrent.futures.ThreadPoolExecutor(self.strategy.threads(), thread_name_prefix="compact-executor")
        requests, self.resubmit = self.resubmit, []
        self._submit(requests)

    def add(self, file: PendingFile) -> None:
        """A part file that rolled: packed into its bucket's next request (which may fire on its size)."""
        bucket = file.bucket
        self.packing.setdefault(bucket, []).append(file)
        if self.triggers.setdefault(bucket, _Trigger(self.strategy)).on_element(file.size):
            self._fire(bucket)

    def _fire(self, bucket: str) -> None:
        self.triggers.pop(bucket, None)
        files = self.packing.pop(bucket, [])
        if files:
            self.collecting.append(CompactRequest(tuple(files)))

    def on_barrier(self, checkpoint_id: int) -> list[Compacted]:
        """At checkpoint `checkpoint_id`'s barrier: the compactions finished since the last one (to
        pre-commit in this checkpoint), and the buckets whose checkpoint condition is met fire."""
        for bucket in [b for b, trigger in self.triggers.items() if trigger.on_checkpoint(checkpoint_id)]:
            self._fire(bucket)
        if self.collecting:
            self.requests.setdefault(checkpoint_id, []).extend(self.collecting)
            self.collecting = []
        done: list[Compacted] = []
        running: list[tuple[CompactRequest, concurrent.futures.Future[Compacted]]] = []
        for request, future in self.compacting:
            if future.done():
                done.append(future.result())  # a failed compaction fails the task (and is retried after restore)
            else:
                running.append((request, future))
        self.compacting = running
        return done

    def notify_complete(self, checkpoint_id: int) -> None:
        """Requests fired at or before a completed checkpoint are compacted now."""
        for fired in sorted(c for c in self.requests if c <= checkpoint_id):
            self._submit(self.requests.pop(fired))

    def _submit(self, requests: list[CompactRequest]) -> None:
        assert self.pool is not None
        for request in requests:
            self.compacting.append((request, self.pool.submit(compact, self.fs, self.compactor, request)))

    def finish_all(self) -> list[Compacted]:
        """End of input: every bucket's packed files, and every request, compacted now (waits)."""
        for bucket in list(self.packing):
            self._fire(bucket)
        self.requests.setdefault(-1, []).extend(self.collecting)
        self.collecting = []
        self._submit([r for c in sorted(self.requests) for r in self.requests[c]])
        self.requests = {}
        results = [future.result() for _, future in self.compacting]
        self.compacting = []
        return results

    def snapshot(self) -> dict[str, Any]:
        fired = {c: list(requests) for c, requests in self.requests.items()}
        return {"packing": [f for files in self.packing.values() for f in files], "requests": fired,
                "compacting": [request for request, _ in self.compacting]}

    def restore(self, state: dict[str, Any]) -> None:
        """A restored checkpoint's compaction state (several, after rescaling). Its fired requests belong to
        completed checkpoints, so they are compacted at open, like those in compaction then."""
        for file in state.get("packing", []):
            self.add(file)
        for requests in state.get("requests", {}).values():
            self.resubmit.extend(requests)
        self.resubmit.extend(state.get("compacting", []))

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=False, cancel_futures=True)
            self.pool = None


def files_in(state: dict[str, Any]) -> list[PendingFile]:
    """Every part file a compaction state holds that is not compacted yet."""
    files = list(state.get("packing", []))
    for requests in state.get("requests", {}).values():
        files += [f for r in requests for f in r.files]
    files += [f for r in state.get("compacting", []) for f in r.files]
    return files


def compact(fs: Any, compactor: FileCompactor, request: CompactRequest) -> Compacted:
    """Writes the request's files, with the compactor, into a new hidden in-progress file of its bucket."""
    first = request.files[0]
    folder, name = first.final.rsplit("/", 1)
    final = f"{folder}/{COMPACTED_PREFIX}{name}"
    temp = f"{folder}/.{COMPACTED_PREFIX}{name}.inprogress.{uuid.uuid4()}"
    inputs = [fs.open(f.temp, "rb") for f in request.files]
    try:
        with fs.open(temp, "wb") as output:
            compactor.compact(inputs, output)
    finally:
        for handle in inputs:
            handle.close()
    return Compacted(temp, final, tuple(f.temp for f in request.files))
