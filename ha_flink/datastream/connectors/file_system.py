"""Files, named as in `pyflink.datastream.connectors.file_system`: the `FileSource` of text lines (or of a
Python `BulkFormat`'s batches) and the `FileSink` (row or bulk format, optionally compacting).

FileSource reads every file below its paths (folders recursively; names starting with `.` or `_` are
hidden and skipped, as Flink's default file filter does), each file once and whole, line by line. It reads
a static file set by default (bounded); `monitor_continuously(interval)` makes it unbounded: each reader
re-lists the paths every interval and reads the files it has not seen. A file is read once: one that grows
or changes after it was read is not read again, as in Flink. With parallelism p, subtask i discovers the
files whose path hashes to i modulo p (`stable_hash`: the same in every process), so the subtasks share the
files without a coordinator. A checkpoint holds what a reader still has to do: the files it has seen (to
discover), the file it is reading with the number of lines already emitted (Flink's text line format
restores by skipping that many lines too), and the files discovered but not opened yet.

FileSink writes each subtask's records to one in-progress part file per bucket
(`.<prefix>-<uuid>-<subtask>-<n><suffix>.inprogress.<uuid>`), rolls it under its rolling policy and publishes
it under its final name (`<prefix>-<uuid>-<subtask>-<n><suffix>`) when it is committed: when the checkpoint
that pre-committed it completes (exactly-once), or at the end of a bounded input. As in Flink, without
checkpointing an unbounded job's files stay in progress. Flink's names are `<prefix>-<uuid>-<n><suffix>`
(a random UUID per bucket and writer); the subtask index is added so that a restored subtask can find and
delete the in-progress files of its own failed attempts (Flink leaves them behind), and nothing else's."""

from __future__ import annotations

import collections
import datetime
import logging
import os
import re
import time
import uuid
import warnings
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, BinaryIO, Iterator, Self

from ha_flink.common.bulk_writer import BulkWriter, BulkWriterFactory
from ha_flink.common.serialization import Encoder
from ha_flink.core.functions import SinkFunction
from ha_flink.datastream.connectors.base import (
    Boundedness, Sink, Source, SourceReader, StreamTransformer, SupportsPreprocessing,
)
from ha_flink.datastream.connectors.file_compaction import (
    COMPACTED_PREFIX, Compacted, FileCompactor, FileCompactStrategy, PendingFile, SubtaskCompaction, files_in,
)
from ha_flink.fs import filesystem_for
from ha_flink.runtime.operators.base import StreamOperator
from ha_flink.runtime.key_groups import stable_hash

logger = logging.getLogger(__name__)

__all__ = [
    "BucketAssigner", "BulkFormat", "DefaultRollingPolicy", "FileEnumeratorProvider", "FileSink", "FileSource",
    "FileSourceBuilder", "FileSourceSplit", "FileSplitAssignerProvider", "OnCheckpointRollingPolicy",
    "OutputFileConfig", "RollingPolicy", "StreamFormat", "StreamingFileSink", "FileCompactStrategy", "FileCompactor",
]

_READ_HINT = 64 * 1024  # bytes of lines per batch: big enough to amortise the task loop, small enough to poll often
_IDLE_WAIT = 0.01  # longest nap of an idle continuous reader, so the task loop neither spins nor lags
# Flink's stream formats decompress by file extension.
_COMPRESSION = {".gz": "gzip", ".gzip": "gzip", ".bz2": "bz2", ".xz": "xz"}


# ---- FileSource -------------------------------------------------------------------------------------------

class StreamFormat:
    """How a file becomes records: `text_line_format` (one record per line, without its line break)."""

    def __init__(self, charset_name: str = "UTF-8") -> None:
        self.charset_name = charset_name

    @staticmethod
    def text_line_format(charset_name: str = "UTF-8") -> StreamFormat:
        return StreamFormat(charset_name)


class BulkFormat(ABC):
    """How a whole file becomes batches of records, for formats that are not read line by line (columnar
    files, files with headers, binary records): `FileSource.for_bulk_file_format(format, *paths)`.

    PyFlink's BulkFormat wraps a Java one (Parquet, ORC, ...); here a format is Python: `read_batches`
    gets the file's binary stream (decompressed by extension, as text files are) and yields lists of
    records. A checkpoint records how many records of the file were emitted; a restored reader reads the
    file again and skips that many, so a format must yield the same records in the same order each time."""

    @abstractmethod
    def read_batches(self, stream: BinaryIO) -> Iterator[list[Any]]:
        """The file's records, in batches (a batch is what the reader emits at once: keep them modest)."""


class FileEnumeratorProvider:
    """PyFlink's choice of file enumerator. Text lines are never split, so both defaults list the same
    files: every file below the paths, hidden ones skipped."""

    def __init__(self, name: str) -> None:
        self.name = name

    @staticmethod
    def default_splittable_file_enumerator() -> FileEnumeratorProvider:
        return FileEnumeratorProvider("splittable")

    @staticmethod
    def default_non_splittable_file_enumerator() -> FileEnumeratorProvider:
        return FileEnumeratorProvider("non-splittable")


class FileSplitAssignerProvider:
    """PyFlink's choice of split assigner; there is no locality to prefer here, so it changes nothing."""

    def __init__(self, name: str) -> None:
        self.name = name

    @staticmethod
    def locality_aware_split_assigner() -> FileSplitAssignerProvider:
        return FileSplitAssignerProvider("locality-aware")


@dataclass(frozen=True)
class FileSourceSplit:
    """One file to read, and how many of its lines were emitted already (restored readers skip them)."""

    path: str
    records_to_skip: int = 0


@dataclass(frozen=True)
class _DiscoveryShare:
    """The files of subtask `index` of `parallelism` (by path hash) and those of them already discovered.
    A share moves with the checkpoint: after rescaling, a subtask may hold several shares or none, so
    every file still has exactly one discoverer."""

    index: int
    parallelism: int
    processed: frozenset[str] = frozenset()


class FileSource(Source):
    name = "FileSource"

    def __init__(self, stream_format: StreamFormat | BulkFormat, paths: tuple[str, ...],
                 discovery_interval_ms: int | None = None) -> None:
        self.stream_format = stream_format
        self.paths = tuple(paths)
        self.discovery_interval_ms = discovery_interval_ms  # None: a static file set (bounded)

    @staticmethod
    def for_record_stream_format(stream_format: StreamFormat, *paths: str) -> FileSourceBuilder:
        return FileSourceBuilder(stream_format, paths)

    @staticmethod
    def for_bulk_file_format(bulk_format: BulkFormat, *paths: str) -> FileSourceBuilder:
        if not isinstance(bulk_format, BulkFormat):
            raise TypeError(f"FileSource.for_bulk_file_format takes a BulkFormat, got {type(bulk_format).__name__}")
        return FileSourceBuilder(bulk_format, paths)

    def get_boundedness(self) -> str:
        return Boundedness.BOUNDED if self.discovery_interval_ms is None else Boundedness.CONTINUOUS_UNBOUNDED

    def create_splits(self, parallelism: int) -> list[Any]:
        """Static: one split per file, listed now (a missing path fails the job). Continuous: one discovery
        share per subtask; the readers list the files themselves."""
        if self.discovery_interval_ms is not None:
            return [_DiscoveryShare(index, parallelism) for index in range(parallelism)]
        return [FileSourceSplit(path) for path in _list_files(self.paths)]

    def create_reader(self, splits: list[Any]) -> SourceReader:
        return _FileReader(self, list(splits))


class FileSourceBuilder:
    def __init__(self, stream_format: StreamFormat | BulkFormat, paths: tuple[str, ...]) -> None:
        if not paths:
            raise ValueError("FileSource: paths must not be empty")
        self.stream_format = stream_format
        self.paths = tuple(str(path) for path in paths)
        self.discovery_interval_ms: int | None = None

    def monitor_continuously(self, discovery_interval: Any) -> FileSourceBuilder:
        """Continuous (unbounded) mode: the paths are listed again every `discovery_interval` (a Duration,
        or milliseconds) and new files are read."""
        if hasattr(discovery_interval, "to_milliseconds"):
            millis = discovery_interval.to_milliseconds()
        elif isinstance(discovery_interval, datetime.timedelta):
            millis = int(discovery_interval.total_seconds() * 1000)
        else:
            millis = int(discovery_interval)
        if millis <= 0:
            raise ValueError(f"FileSource.monitor_continuously: discovery_interval must be positive, got {millis} ms")
        self.discovery_interval_ms = millis
        return self

    def process_static_file_set(self) -> FileSourceBuilder:
        """Bounded mode (the default): the files under the paths when the job starts, then the end."""
        self.discovery_interval_ms = None
        return self

    def set_file_enumerator(self, file_enumerator: FileEnumeratorProvider) -> FileSourceBuilder:
        return self

    def set_split_assigner(self, split_assigner: FileSplitAssignerProvider) -> FileSourceBuilder:
        return self

    def build(self) -> FileSource:
        return FileSource(self.stream_format, self.paths, self.discovery_interval_ms)


def _list_files(paths: tuple[str, ...], missing: set[str] | None = None) -> list[str]:
    """Every file below `paths` as a URL of the path's own form, in name order, hidden ones skipped. A path
    that does not exist fails, or (continuous mode) goes into `missing` and is looked at again next time."""
    files: list[str] = []
    for path in paths:
        fs, inner = filesystem_for(path)
        if not fs.exists(inner):
            if missing is None:
                raise FileNotFoundError(f"FileSource: {path} does not exist")
            missing.add(path)
            continue
        if not fs.isdir(inner):
            files.append(path)
            continue
        root = inner.rstrip("/")
        base = path.rstrip("/")
        # the listing names files without the URL's scheme (and host): put them back
        prefix = base[: len(base) - len(root)] if root and base.endswith(root) else ""
        for found in sorted(fs.find(inner)):
            relative = found[len(root):] if found.startswith(root) else found
            if any(part.startswith((".", "_")) for part in relative.split("/") if part):
                continue  # hidden: in-progress files of writers, markers like _SUCCESS
            files.append(prefix + found)
    return list(dict.fromkeys(files))


def _skipping(batches: Iterator[list[Any]], count: int, path: str) -> Iterator[list[Any]]:
    """The batches without their first `count` records (emitted before the restored checkpoint)."""
    for batch in batches:
        if not isinstance(batch, list):
            raise TypeError(f"FileSource: the BulkFormat of {path} yielded a {type(batch).__name__}, not a list "
                            "of records")
        if count >= len(batch):
            count -= len(batch)
            continue
        if count:
            batch, count = batch[count:], 0
        if batch:
            yield batch
    if count:
        logger.warning("FileSource: %s holds %d records fewer than the restored checkpoint had read", path, count)


class _Share:
    def __init__(self, share: _DiscoveryShare) -> None:
        self.index = share.index
        self.parallelism = share.parallelism
        self.processed = set(share.processed)


class _FileReader(SourceReader):
    """Reads its file splits in order; in continuous mode also discovers new files of its shares."""

    def __init__(self, source: FileSource, splits: list[Any]) -> None:
        self.paths = source.paths
        self.format = source.stream_format
        self.charset = self.format.charset_name if isinstance(self.format, StreamFormat) else ""
        self.batches: Iterator[list[Any]] | None = None  # of the open file, with a bulk format
        interval = source.discovery_interval_ms
        self.interval_s = None if interval is None else interval / 1000
        self.pending: collections.deque[FileSourceSplit] = collections.deque()
        self.shares: list[_Share] = []
        for split in splits:
            if isinstance(split, _DiscoveryShare):
                self.shares.append(_Share(split))
            elif isinstance(split, FileSourceSplit):
                self.pending.append(split)
            elif isinstance(split, tuple):  # (path, lines read): checkpoints of earlier versions
                self.pending.append(FileSourceSplit(split[0], split[1]))
            else:
                self.pending.append(FileSourceSplit(str(split)))
        self.handle: Any = None
        self.current: FileSourceSplit | None = None  # the open file, with the lines emitted from it so far
        self.next_discovery = 0.0  # the first listing is at once: files already there are read too
        self.reported_missing: set[str] = set()

    def poll_batch(self) -> list[Any] | None:
        while True:
            if self.handle is None:
                if not self.pending:
                    if self.interval_s is None:
                        return None
                    now = time.monotonic()
                    if now >= self.next_discovery:
                        self._discover()
                        self.next_discovery = now + self.interval_s
                        if self.pending:
                            continue
                    # Nothing to read before the next listing: a short nap, so the task loop does not spin,
                    # short enough that checkpoints and cancellation are not held up.
                    time.sleep(max(0.0, min(_IDLE_WAIT, self.next_discovery - time.monotonic())))
                    return []
                self._open(self.pending.popleft())
            if self.batches is not None:
                batch = next(self.batches, None)
                if batch is not None:
                    assert self.current is not None
                    self.current = FileSourceSplit(self.current.path, self.current.records_to_skip + len(batch))
                    return batch
            else:
                lines = self.handle.readlines(_READ_HINT)
                if lines:
                    assert self.current is not None
                    self.current = FileSourceSplit(self.current.path, self.current.records_to_skip + len(lines))
                    return [line.rstrip("\r\n") for line in lines]
            self.handle.close()
            self.handle = None
            self.batches = None
            self.current = None

    def _open(self, split: FileSourceSplit) -> None:
        fs, path = filesystem_for(split.path)
        compression = _COMPRESSION.get(os.path.splitext(path)[1].lower())
        if isinstance(self.format, BulkFormat):
            handle = fs.open(path, "rb", compression=compression)
            try:
                self.batches = _skipping(self.format.read_batches(handle), split.records_to_skip, split.path)
            except BaseException:
                handle.close()
                raise
            self.handle = handle
            self.current = split
            return
        # text mode decodes with the charset and splits at \n, \r\n and \r, as Java's readLine does
        handle = fs.open(path, "r", encoding=self.charset, compression=compression)
        try:
            for _ in range(split.records_to_skip):
                handle.readline()
        except BaseException:
            handle.close()
            raise
        self.handle = handle
        self.current = split

    def _discover(self) -> None:
        """As Flink's continuous enumerator: a listing that fails is logged and tried again next interval
        (a folder may appear later)."""
        if not self.shares:
            return
        missing: set[str] = set()
        try:
            found = _list_files(self.paths, missing)
        except OSError as error:
            logger.warning("FileSource: listing %s failed, trying again in %.3f s: %s", ", ".join(self.paths),
                           self.interval_s, error)
            return
        for path in sorted(missing - self.reported_missing):
            logger.warning("FileSource: %s does not exist (yet); watching for it", path)
        self.reported_missing = missing
        for path in found:
            share = self._share_of(path)
            if share is not None and path not in share.processed:
                share.processed.add(path)
                self.pending.append(FileSourceSplit(path))

    def _share_of(self, path: str) -> _Share | None:
        digest = stable_hash(path)
        for share in self.shares:
            if digest % share.parallelism == share.index:
                return share
        return None

    def snapshot(self) -> list[Any] | None:
        # copies: the checkpoint is pickled on another thread while this reader goes on
        splits: list[Any] = [self.current] if self.current is not None else []
        splits += list(self.pending)
        splits += [_DiscoveryShare(s.index, s.parallelism, frozenset(s.processed)) for s in self.shares]
        return splits

    def close(self) -> None:
        if self.handle is not None:
            self.handle.close()
            self.handle = None


# ---- FileSink ---------------------------------------------------------------------------------------------

class OutputFileConfig:
    """Part file names: `<prefix>-<uuid>-<subtask>-<counter><suffix>`."""

    def __init__(self, part_prefix: str = "part", part_suffix: str = "") -> None:
        self.part_prefix = part_prefix
        self.part_suffix = part_suffix

    def get_part_prefix(self) -> str:
        return self.part_prefix

    def get_part_suffix(self) -> str:
        return self.part_suffix

    @staticmethod
    def builder() -> OutputFileConfig.OutputFileConfigBuilder:
        return OutputFileConfig.OutputFileConfigBuilder()

    class OutputFileConfigBuilder:
        def __init__(self) -> None:
            self.part_prefix = "part"
            self.part_suffix = ""

        def with_part_prefix(self, prefix: str) -> OutputFileConfig.OutputFileConfigBuilder:
            self.part_prefix = prefix
            return self

        def with_part_suffix(self, suffix: str) -> OutputFileConfig.OutputFileConfigBuilder:
            self.part_suffix = suffix
            return self

        def build(self) -> OutputFileConfig:
            return OutputFileConfig(self.part_prefix, self.part_suffix)


class BucketAssigner:
    """Which subfolder of the base path a record goes to: `yyyy-MM-dd--HH` of processing time by default,
    or the base path itself."""

    def __init__(self, date_format: str | None, timezone_id: str | None = None) -> None:
        self.date_format = date_format
        self.timezone_id = timezone_id
        self.timezone = _timezone(timezone_id)

    @staticmethod
    def base_path_bucket_assigner() -> BucketAssigner:
        return BucketAssigner(None)

    @staticmethod
    def date_time_bucket_assigner(format_str: str = "yyyy-MM-dd--HH", timezone_id: str | None = None) -> BucketAssigner:
        return BucketAssigner(format_str, timezone_id)

    def bucket_id(self, now: datetime.datetime) -> str:
        if self.date_format is None:
            return ""
        java_to_python = (("yyyy", "%Y"), ("MM", "%m"), ("dd", "%d"), ("HH", "%H"), ("mm", "%M"), ("ss", "%S"))
        pattern = self.date_format
        for java, python in java_to_python:
            pattern = pattern.replace(java, python)
        return now.strftime(pattern)

    def bucket_id_at(self, timestamp_ms: int) -> str:
        if self.date_format is None:
            return ""
        # no timezone: the system's, as Java's ZoneId.systemDefault()
        return self.bucket_id(datetime.datetime.fromtimestamp(timestamp_ms / 1000, self.timezone))


def _timezone(timezone_id: str | None) -> datetime.tzinfo | None:
    """A Java ZoneId: a region ("Europe/Berlin"), "UTC", or an offset ("GMT-08:00", "+02:00")."""
    if timezone_id is None:
        return None
    offset = re.fullmatch(r"(?:GMT|UTC|UT)?([+-])(\d{1,2})(?::?(\d{2}))?", timezone_id)
    if offset:
        sign = -1 if offset.group(1) == "-" else 1
        delta = datetime.timedelta(hours=int(offset.group(2)), minutes=int(offset.group(3) or 0))
        return datetime.timezone(sign * delta)
    if timezone_id in ("Z", "UTC", "GMT", "UT"):
        return datetime.timezone.utc
    import zoneinfo

    try:
        return zoneinfo.ZoneInfo(timezone_id)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"BucketAssigner.date_time_bucket_assigner: unknown timezone_id {timezone_id!r}") from None


class RollingPolicy:
    """When a part file is closed (and becomes pending, then committed) and a new one opened. Flink's two:
    `default_rolling_policy` rolls a file that has grown past `part_size` bytes (at the next record or
    checkpoint), has been open `rollover_interval` ms or written to none for `inactivity_interval` ms (both
    checked every bucket check interval); `on_checkpoint_rolling_policy` rolls at every checkpoint only."""

    def __init__(self, part_size: int = 128 * 1024 * 1024, rollover_interval: int = 60_000,
                 inactivity_interval: int = 60_000, on_checkpoint: bool = False) -> None:
        for name, value in (("part_size", part_size), ("rollover_interval", rollover_interval),
                            ("inactivity_interval", inactivity_interval)):
            if value <= 0:
                raise ValueError(f"RollingPolicy: {name} must be positive, got {value}")
        self.part_size = part_size
        self.rollover_interval = rollover_interval
        self.inactivity_interval = inactivity_interval
        self.on_checkpoint = on_checkpoint

    @staticmethod
    def default_rolling_policy(part_size: int = 128 * 1024 * 1024, rollover_interval: int = 60_000,
                               inactivity_interval: int = 60_000) -> DefaultRollingPolicy:
        return DefaultRollingPolicy(part_size, rollover_interval, inactivity_interval)

    @staticmethod
    def on_checkpoint_rolling_policy() -> OnCheckpointRollingPolicy:
        return OnCheckpointRollingPolicy()

    def should_roll_on_event(self, size: int) -> bool:
        return not self.on_checkpoint and size > self.part_size

    def should_roll_on_checkpoint(self, size: int) -> bool:
        return self.on_checkpoint or size > self.part_size

    def should_roll_on_processing_time(self, created_ms: int, last_write_ms: int, now_ms: int) -> bool:
        return not self.on_checkpoint and (now_ms - created_ms >= self.rollover_interval
                                           or now_ms - last_write_ms >= self.inactivity_interval)


class DefaultRollingPolicy(RollingPolicy):
    pass


class OnCheckpointRollingPolicy(RollingPolicy):
    def __init__(self) -> None:
        super().__init__(on_checkpoint=True)


class FileSink(Sink, SupportsPreprocessing):
    """Writes records to part files below `base_path`, one folder per bucket, exactly-once with
    checkpointing. `for_row_format(base_path, encoder)` encodes each record on its own and rolls by its
    rolling policy; `for_bulk_format(base_path, writer_factory)` hands a part's records to a Python
    `BulkWriter` and rolls at every checkpoint. Either may compact (`enable_compact`)."""

    name = "FileSink"

    def __init__(self, base_path: str, encoder: Encoder | None, bucket_assigner: BucketAssigner,
                 rolling_policy: RollingPolicy, output_file_config: OutputFileConfig,
                 bucket_check_interval: int = 60_000, writer_factory: BulkWriterFactory | None = None,
                 compact_strategy: FileCompactStrategy | None = None,
                 file_compactor: FileCompactor | None = None) -> None:
        if (encoder is None) == (writer_factory is None):
            raise ValueError("FileSink: give either an encoder (row format) or a writer_factory (bulk format)")
        if (compact_strategy is None) != (file_compactor is None):
            raise ValueError("FileSink: compaction needs both a FileCompactStrategy and a FileCompactor")
        self.base_path = base_path.rstrip("/")
        self.encoder = encoder
        self.writer_factory = writer_factory
        self.bucket_assigner = bucket_assigner
        self.rolling_policy = rolling_policy
        self.output_file_config = output_file_config
        self.bucket_check_interval = bucket_check_interval
        self.compact_strategy = compact_strategy
        self.file_compactor = file_compactor

    def get_transformer(self) -> StreamTransformer | None:
        """None: PyFlink's transformer converts Rows to Java's RowData for Java bulk writers; a Python
        writer takes the records as they are."""
        return None

    @staticmethod
    def for_row_format(base_path: str, encoder: Encoder) -> FileSink.RowFormatBuilder:
        return FileSink.RowFormatBuilder(base_path, encoder)

    @staticmethod
    def for_bulk_format(base_path: str, writer_factory: BulkWriterFactory) -> FileSink.BulkFormatBuilder:
        return FileSink.BulkFormatBuilder(base_path, writer_factory)

    def create_operator(self) -> StreamOperator:
        return FileSinkWriter(self)

    class BaseBuilder:
        """What both formats' builders set: bucketing, part names, the bucket check interval, compaction."""

        def __init__(self, base_path: str, encoder: Encoder | None, writer_factory: BulkWriterFactory | None,
                     rolling_policy: RollingPolicy) -> None:
            self.base_path = str(base_path)
            self.encoder = encoder
            self.writer_factory = writer_factory
            self.bucket_assigner = BucketAssigner.date_time_bucket_assigner()
            self.rolling_policy = rolling_policy
            self.output_file_config = OutputFileConfig()
            self.bucket_check_interval = 60_000
            self.compact_strategy: FileCompactStrategy | None = None
            self.file_compactor: FileCompactor | None = None

        def with_bucket_check_interval(self, interval: int) -> Self:
            """How often (ms) open part files are checked against the time-based rolling conditions."""
            if interval <= 0:
                raise ValueError(f"FileSink: bucket check interval must be positive, got {interval}")
            self.bucket_check_interval = interval
            return self

        def with_bucket_assigner(self, bucket_assigner: BucketAssigner) -> Self:
            self.bucket_assigner = bucket_assigner
            return self

        def with_output_file_config(self, output_file_config: OutputFileConfig) -> Self:
            self.output_file_config = output_file_config
            return self

        def enable_compact(self, strategy: FileCompactStrategy, compactor: FileCompactor) -> Self:
            """Compacts the small files of each bucket (file_compaction.py): only compacted files become
            visible."""
            if not isinstance(strategy, FileCompactStrategy) or not isinstance(compactor, FileCompactor):
                raise TypeError("FileSink.enable_compact(strategy, compactor) takes a FileCompactStrategy and "
                                "a FileCompactor")
            self.compact_strategy = strategy
            self.file_compactor = compactor
            return self

        def disable_compact(self) -> Self:
            self.compact_strategy = None
            self.file_compactor = None
            return self

        @abstractmethod
        def with_rolling_policy(self, rolling_policy: Any) -> Self: ...

        def build(self) -> FileSink:
            return FileSink(self.base_path, self.encoder, self.bucket_assigner, self.rolling_policy,
                            self.output_file_config, self.bucket_check_interval, self.writer_factory,
                            self.compact_strategy, self.file_compactor)

    class RowFormatBuilder(BaseBuilder):
        def __init__(self, base_path: str, encoder: Encoder) -> None:
            super().__init__(base_path, encoder, None, RollingPolicy.default_rolling_policy())

        def with_rolling_policy(self, rolling_policy: RollingPolicy) -> FileSink.RowFormatBuilder:
            self.rolling_policy = rolling_policy
            return self

    class BulkFormatBuilder(BaseBuilder):
        """A bulk format's parts roll at every checkpoint (and at the end of a bounded input) only."""

        def __init__(self, base_path: str, writer_factory: BulkWriterFactory) -> None:
            if not isinstance(writer_factory, BulkWriterFactory):
                raise TypeError("FileSink.for_bulk_format: writer_factory must be a BulkWriterFactory, got "
                                f"{type(writer_factory).__name__}")
            super().__init__(base_path, None, writer_factory, RollingPolicy.on_checkpoint_rolling_policy())

        def with_rolling_policy(self, rolling_policy: OnCheckpointRollingPolicy) -> FileSink.BulkFormatBuilder:
            if not isinstance(rolling_policy, OnCheckpointRollingPolicy):
                raise ValueError("rolling_policy must be OnCheckpointRollingPolicy for bulk format")
            self.rolling_policy = rolling_policy
            return self


# ---- StreamingFileSink ------------------------------------------------------------------------------------

class StreamingFileSink(SinkFunction):
    """Flink's older file sink (deprecated since 1.15; `ds.add_sink(StreamingFileSink...build())`): the same
    part files, rolling and exactly-once commits as `FileSink`, which runs it."""

    def __init__(self, file_sink: FileSink) -> None:
        warnings.warn("Deprecated in 1.15. Use FileSink instead.", DeprecationWarning, stacklevel=2)
        self.file_sink = file_sink

    def create_operator(self) -> StreamOperator:
        """The operator `DataStream.add_sink` runs for it: the FileSink's writer."""
        return FileSinkWriter(self.file_sink)

    def invoke(self, value: Any, context: Any) -> None:
        raise TypeError("StreamingFileSink is run by DataStream.add_sink as a FileSink (its commits need the "
                        "checkpoints); it cannot be invoked per record")

    class BaseBuilder:
        def __init__(self, builder: FileSink.BaseBuilder) -> None:
            self._builder = builder

        def with_bucket_check_interval(self, interval: int) -> Self:
            self._builder.with_bucket_check_interval(interval)
            return self

        def with_bucket_assigner(self, bucket_assigner: BucketAssigner) -> Self:
            self._builder.with_bucket_assigner(bucket_assigner)
            return self

        @abstractmethod
        def with_rolling_policy(self, policy: Any) -> Self: ...

        def with_output_file_config(self, output_file_config: OutputFileConfig) -> Self:
            self._builder.with_output_file_config(output_file_config)
            return self

        def build(self) -> StreamingFileSink:
            return StreamingFileSink(self._builder.build())

    class DefaultRowFormatBuilder(BaseBuilder):
        def with_rolling_policy(self, policy: RollingPolicy) -> StreamingFileSink.DefaultRowFormatBuilder:
            self._builder.with_rolling_policy(policy)
            return self

    @staticmethod
    def for_row_format(base_path: str, encoder: Encoder) -> StreamingFileSink.DefaultRowFormatBuilder:
        return StreamingFileSink.DefaultRowFormatBuilder(FileSink.for_row_format(base_path, encoder))

    class DefaultBulkFormatBuilder(BaseBuilder):
        def with_rolling_policy(self, policy: OnCheckpointRollingPolicy) \
                -> StreamingFileSink.DefaultBulkFormatBuilder:
            self._builder.with_rolling_policy(policy)
            return self

    @staticmethod
    def for_bulk_format(base_path: str, writer_factory: BulkWriterFactory) \
            -> StreamingFileSink.DefaultBulkFormatBuilder:
        return StreamingFileSink.DefaultBulkFormatBuilder(FileSink.for_bulk_format(base_path, writer_factory))


# ---- the sink's operator ----------------------------------------------------------------------------------

_UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"


class _Part:
    """An open in-progress part file (with its bulk writer, for a bulk format)."""

    def __init__(self, handle: Any, temp: str, final: str, now_ms: int, writer: BulkWriter | None) -> None:
        self.handle = handle
        self.temp = temp
        self.final = final
        self.writer = writer
        self.size = 0
        self.created_ms = now_ms
        self.last_write_ms = now_ms


class _Bucket:
    def __init__(self, folder: str) -> None:
        self.folder = folder
        self.uid = str(uuid.uuid4())  # per bucket and writer instance, as Flink's FileWriterBucket
        self.counter = 0
        self.part: _Part | None = None


class FileSinkWriter(StreamOperator):
    """Two-phase commit per checkpoint: records go to in-progress part files; a part that rolls (by the
    rolling policy, or at a checkpoint's barrier) is closed and becomes pending; at a barrier the pending
    parts are pre-committed (recorded in that checkpoint's state), and when the checkpoint completes they
    are renamed to their final names (commit).

    On the local file system a part that need not roll at a checkpoint stays open across it, as in Flink:
    the checkpoint records its length (flushed and synced), and a restore cuts it back to that length and
    commits it. Other file systems (s3, hdfs) cannot reopen a file, so there every open part rolls at every
    checkpoint, as it does with a bulk format or compaction. A restore also commits what the restored
    checkpoint had pending (again, harmlessly, if that happened already) and drops the subtask's in-progress
    files written after it. At the end of a bounded input everything is committed.

    With compaction (file_compaction.py) the parts that roll are handed to the compaction instead, and what
    is pre-committed are the compacted files, with the inputs to delete when they are published."""

    def __init__(self, sink: FileSink) -> None:
        self.sink = sink
        self.name = f"Sink: {sink.name}"
        self.pending: dict[int, list[tuple[str, str]]] = {}  # checkpoint id -> (temp, final) files
        self.cleanup: dict[int, list[str]] = {}  # checkpoint id -> compacted inputs to delete on its commit
        self.compaction: SubtaskCompaction | None = None

    def _ensure_fs(self) -> None:
        if not hasattr(self, "fs"):
            self.fs, self.base = filesystem_for(self.sink.base_path)
            protocols = self.fs.protocol if isinstance(self.fs.protocol, (tuple, list)) else (self.fs.protocol,)
            self.local = "file" in protocols
            strategy, compactor = self.sink.compact_strategy, self.sink.file_compactor
            if strategy is not None and compactor is not None:
                self.compaction = SubtaskCompaction(self.fs, strategy, compactor)

    def open(self) -> None:
        self._ensure_fs()
        self.buckets: dict[str, _Bucket] = {}
        self.rolled: list[tuple[str, str, int]] = []  # (temp, final, size) closed since the last checkpoint
        self.compacted: list[Compacted] = []  # compacted at the end of input, for the final checkpoint
        policy = self.sink.rolling_policy
        self.keeps_parts_open = self.local and not policy.on_checkpoint and self.compaction is None
        if not policy.on_checkpoint:
            self._schedule_bucket_check(self.context.processing_time.now_ms())
        if self.compaction is not None:
            self.compaction.open()

    # -- writing ------------------------------------------------------------------------------------------

    def process_batch(self, batch: list[Any], timestamps: list[int] | None = None) -> None:
        if not batch:
            return
        now_ms = self.context.processing_time.now_ms()
        bucket = self._bucket(self.sink.bucket_assigner.bucket_id_at(now_ms))
        part = bucket.part or self._open_part(bucket, now_ms)
        part.last_write_ms = now_ms
        if part.writer is not None:
            add = part.writer.add_element
            for record in batch:
                add(record)
            return
        assert self.sink.encoder is not None
        encode = self.sink.encoder.encode
        records = [encode(record) for record in batch]
        policy = self.sink.rolling_policy
        if policy.on_checkpoint or part.size + sum(map(len, records)) - len(records[-1]) <= policy.part_size:
            data = b"".join(records)  # no record of the batch meets a full part: one write
            part.handle.write(data)
            part.size += len(data)
        else:
            # Flink checks before each record: a part that has grown past part_size rolls, the record
            # starts the next one
            chunk: list[bytes] = []
            for record in records:
                if policy.should_roll_on_event(part.size):
                    part.handle.write(b"".join(chunk))
                    chunk = []
                    self._roll(bucket)
                    part = self._open_part(bucket, now_ms)
                chunk.append(record)
                part.size += len(record)
            part.handle.write(b"".join(chunk))

    def _bucket(self, bucket_id: str) -> _Bucket:
        bucket = self.buckets.get(bucket_id)
        if bucket is None:
            folder = f"{self.base}/{bucket_id}" if bucket_id else self.base
            bucket = self.buckets[bucket_id] = _Bucket(folder)
        return bucket

    def _open_part(self, bucket: _Bucket, now_ms: int) -> _Part:
        config = self.sink.output_file_config
        self.fs.makedirs(bucket.folder, exist_ok=True)
        name = f"{config.part_prefix}-{bucket.uid}-{self.context.info.subtask_index}-{bucket.counter}" \
               f"{config.part_suffix}"
        bucket.counter += 1
        temp = f"{bucket.folder}/.{name}.inprogress.{uuid.uuid4()}"
        handle = self.fs.open(temp, "wb")
        factory = self.sink.writer_factory
        writer = None if factory is None else factory.create(handle)
        part = bucket.part = _Part(handle, temp, f"{bucket.folder}/{name}", now_ms, writer)
        return part

    def _roll(self, bucket: _Bucket) -> None:
        part = bucket.part
        if part is not None:
            if part.writer is not None:
                part.writer.flush()
                part.writer.finish()
                part.size = part.handle.tell()
            part.handle.close()
            self.rolled.append((part.temp, part.final, part.size))
            bucket.part = None

    def _schedule_bucket_check(self, now_ms: int) -> None:
        self.context.processing_time.register(now_ms + self.sink.bucket_check_interval, self._on_bucket_check)

    def _on_bucket_check(self, timestamp_ms: int) -> None:
        """The time-based rolling conditions, every bucket check interval (Flink's processing-time timer)."""
        now_ms = self.context.processing_time.now_ms()
        policy = self.sink.rolling_policy
        for bucket in self.buckets.values():
            part = bucket.part
            if part is not None and policy.should_roll_on_processing_time(part.created_ms, part.last_write_ms, now_ms):
                self._roll(bucket)
        self._schedule_bucket_check(now_ms)

    def _publish(self, files: list[tuple[str, str]]) -> None:
        for temp, final in files:
            if self.fs.exists(temp):  # gone: committed already (before a failure)
                self.fs.mv(temp, final)

    def _delete(self, paths: list[str]) -> None:
        for path in paths:
            if self.fs.exists(path):  # gone: deleted already (before a failure)
                self.fs.rm_file(path)

    def _commit(self, checkpoint_id: int) -> None:
        """Publishes what checkpoints up to `checkpoint_id` pre-committed: compacted files first, then their
        inputs go, so a reader never misses records."""
        for done in sorted(c for c in self.pending if c <= checkpoint_id):
            self._publish(self.pending.pop(done))
        for done in sorted(c for c in self.cleanup if c <= checkpoint_id):
            self._delete(self.cleanup.pop(done))

    # -- checkpoints: pre-commit at the barrier, commit on completion ------------------------------------

    def snapshot_state(self, checkpoint_id: int) -> dict[str, Any]:
        policy = self.sink.rolling_policy
        in_progress: list[tuple[str, str, int]] = []
        for bucket in self.buckets.values():
            part = bucket.part
            if part is None:
                continue
            if not self.keeps_parts_open or policy.should_roll_on_checkpoint(part.size):
                self._roll(bucket)
            else:
                # what a restore keeps of this part: durable before the checkpoint can complete
                part.handle.flush()
                os.fsync(part.handle.fileno())
                in_progress.append((part.temp, part.final, part.size))
        if self.compaction is None:
            self.pending[checkpoint_id] = [(temp, final) for temp, final, _ in self.rolled]
        else:
            for temp, final, size in self.rolled:
                self.compaction.add(PendingFile(temp, final, size))
            compacted = self.compacted + self.compaction.on_barrier(checkpoint_id)
            self.compacted = []
            if compacted:
                self.pending[checkpoint_id] = [(c.temp, c.final) for c in compacted]
                self.cleanup[checkpoint_id] = [path for c in compacted for path in c.inputs]
        self.rolled = []
        info = self.context.info
        state: dict[str, Any] = {
            "pending": {c: list(files) for c, files in self.pending.items()}, "in_progress": in_progress,
            "subtask": info.subtask_index, "parallelism": info.parallelism}
        if self.compaction is not None:
            state["cleanup"] = {c: list(paths) for c, paths in self.cleanup.items()}
            state["compaction"] = self.compaction.snapshot()
        return state

    def notify_checkpoint_complete(self, checkpoint_id: int) -> None:
        self._commit(checkpoint_id)
        if self.compaction is not None:
            self.compaction.notify_complete(checkpoint_id)

    def initialize_state(self, states: list[dict[str, Any]]) -> None:
        self._ensure_fs()
        info = self.context.info
        for state in states:
            old_index = state.get("subtask", 0)
            if old_index % info.parallelism != info.subtask_index:
                continue  # another subtask finishes that one's commits
            for files in state.get("pending", {}).values():
                self._publish(files)  # pre-committed in the restored checkpoint: commit
            for paths in state.get("cleanup", {}).values():
                self._delete(paths)  # inputs of compacted files committed just now
            for temp, final, length in state.get("in_progress", []):
                self._recover_in_progress(temp, final, length)
            waiting = state.get("compaction", {})
            if self.compaction is not None:
                self.compaction.restore(waiting)
            else:  # compaction was switched off since that checkpoint: its files are published as they are
                self._publish([(f.temp, f.final) for f in files_in(waiting)])
            if state.get("parallelism") == info.parallelism:
                # (rescaled: left alone, new subtasks reuse the indexes)
                self._discard_uncommitted(old_index, {f.temp for f in files_in(waiting)})

    def _recover_in_progress(self, temp: str, final: str, length: int) -> None:
        """A part open at the restored checkpoint: its first `length` bytes are that checkpoint's output."""
        if not self.fs.exists(temp):
            if not self.fs.exists(final):
                logger.warning("FileSink: in-progress file %s of the restored checkpoint is gone; its %d bytes "
                               "cannot be committed", temp, length)
            return
        # Copy the checkpoint's bytes to a new file rather than truncating this one in place: a task of the
        # failed attempt may still hold it open (until it is cancelled) and would append past `length`.
        folder, name = final.rsplit("/", 1)
        staging = f"{folder}/.{name}.recovering.{uuid.uuid4()}"
        with self.fs.open(temp, "rb") as source, self.fs.open(staging, "wb") as target:
            left = length
            while left > 0:
                chunk = source.read(min(left, 1 << 20))
                if not chunk:
                    break
                target.write(chunk)
                left -= len(chunk)
        if left:
            logger.warning("FileSink: in-progress file %s holds %d bytes less than the restored checkpoint "
                           "recorded (%d)", temp, left, length)
        self.fs.mv(staging, final)
        self.fs.rm_file(temp)

    def _discard_uncommitted(self, subtask_index: int, keep: set[str]) -> None:
        """In-progress files of that subtask's earlier attempts: written after the restored checkpoint, so
        not part of the result (their records are replayed), unless the checkpoint holds them for
        compaction (`keep`). Half-written compacted files go too: their requests are compacted again."""
        if not self.fs.exists(self.base):
            return
        pattern = re.compile(rf"\.(?:{COMPACTED_PREFIX})?{re.escape(self.sink.output_file_config.part_prefix)}"
                             rf"-{_UUID}-(\d+)-\d+.*\.inprogress\.{_UUID}")
        for path in self.fs.find(self.base):
            match = pattern.fullmatch(path.rsplit("/", 1)[-1])
            if match and int(match.group(1)) == subtask_index and path not in keep:
                self.fs.rm_file(path)

    def end_input(self) -> None:
        for bucket in self.buckets.values():
            self._roll(bucket)
        if self.compaction is not None:
            # as Flink's compactor at the end of input: everything is compacted now, for the final commit
            for temp, final, size in self.rolled:
                self.compaction.add(PendingFile(temp, final, size))
            self.rolled = []
            self.compacted += self.compaction.finish_all()
        if self.context.checkpointing:
            return  # the final checkpoint pre-commits the rolled (or compacted) parts; its completion commits them
        # Without checkpoints the end of a bounded input makes every record final.
        self._commit(max([*self.pending, *self.cleanup], default=0))
        self._publish([(temp, final) for temp, final, _ in self.rolled])
        self.rolled = []
        self._publish([(c.temp, c.final) for c in self.compacted])
        self._delete([path for c in self.compacted for path in c.inputs])
        self.compacted = []

    def close(self) -> None:
        for bucket in getattr(self, "buckets", {}).values():
            if bucket.part is not None:
                bucket.part.handle.close()
        if self.compaction is not None:
            self.compaction.close()
