"""Files, named as in `pyflink.datastream.connectors.file_system`: the `FileSource` of text lines and the
row-format `FileSink`.

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
from dataclasses import dataclass
from typing import Any

from ha_flink.datastream.connectors.base import Boundedness, Sink, Source, SourceReader
from ha_flink.fs import filesystem_for
from ha_flink.runtime.operators.base import StreamOperator
from ha_flink.runtime.partitioner import stable_hash

logger = logging.getLogger(__name__)

__all__ = [
    "BucketAssigner", "DefaultRollingPolicy", "FileEnumeratorProvider", "FileSink", "FileSource",
    "FileSourceBuilder", "FileSourceSplit", "FileSplitAssignerProvider", "OnCheckpointRollingPolicy",
    "OutputFileConfig", "RollingPolicy", "StreamFormat",
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

    def __init__(self, stream_format: StreamFormat, paths: tuple[str, ...],
                 discovery_interval_ms: int | None = None) -> None:
        self.stream_format = stream_format
        self.paths = tuple(paths)
        self.discovery_interval_ms = discovery_interval_ms  # None: a static file set (bounded)

    @staticmethod
    def for_record_stream_format(stream_format: StreamFormat, *paths: str) -> FileSourceBuilder:
        return FileSourceBuilder(stream_format, paths)

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
    def __init__(self, stream_format: StreamFormat, paths: tuple[str, ...]) -> None:
        if not paths:
            raise ValueError("FileSource.for_record_stream_format: paths must not be empty")
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


class _Share:
    def __init__(self, share: _DiscoveryShare) -> None:
        self.index = share.index
        self.parallelism = share.parallelism
        self.processed = set(share.processed)


class _FileReader(SourceReader):
    """Reads its file splits in order; in continuous mode also discovers new files of its shares."""

    def __init__(self, source: FileSource, splits: list[Any]) -> None:
        self.paths = source.paths
        self.charset = source.stream_format.charset_name
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
            lines = self.handle.readlines(_READ_HINT)
            if lines:
                assert self.current is not None
                self.current = FileSourceSplit(self.current.path, self.current.records_to_skip + len(lines))
                return [line.rstrip("\r\n") for line in lines]
            self.handle.close()
            self.handle = None
            self.current = None

    def _open(self, split: FileSourceSplit) -> None:
        fs, path = filesystem_for(split.path)
        compression = _COMPRESSION.get(os.path.splitext(path)[1].lower())
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


class FileSink(Sink):
    name = "FileSink"

    def __init__(self, base_path: str, encoder: Any, bucket_assigner: BucketAssigner, rolling_policy: RollingPolicy,
                 output_file_config: OutputFileConfig, bucket_check_interval: int = 60_000) -> None:
        self.base_path = base_path.rstrip("/")
        self.encoder = encoder
        self.bucket_assigner = bucket_assigner
        self.rolling_policy = rolling_policy
        self.output_file_config = output_file_config
        self.bucket_check_interval = bucket_check_interval

    @staticmethod
    def for_row_format(base_path: str, encoder: Any) -> FileSink.RowFormatBuilder:
        return FileSink.RowFormatBuilder(base_path, encoder)

    def create_operator(self) -> StreamOperator:
        return FileSinkWriter(self)

    class RowFormatBuilder:
        def __init__(self, base_path: str, encoder: Any) -> None:
            self.base_path = str(base_path)
            self.encoder = encoder
            self.bucket_assigner = BucketAssigner.date_time_bucket_assigner()
            self.rolling_policy: RollingPolicy = RollingPolicy.default_rolling_policy()
            self.output_file_config = OutputFileConfig()
            self.bucket_check_interval = 60_000

        def with_bucket_assigner(self, assigner: BucketAssigner) -> FileSink.RowFormatBuilder:
            self.bucket_assigner = assigner
            return self

        def with_rolling_policy(self, policy: RollingPolicy) -> FileSink.RowFormatBuilder:
            self.rolling_policy = policy
            return self

        def with_output_file_config(self, config: OutputFileConfig) -> FileSink.RowFormatBuilder:
            self.output_file_config = config
            return self

        def with_bucket_check_interval(self, interval: int) -> FileSink.RowFormatBuilder:
            """How often (ms) open part files are checked against the time-based rolling conditions."""
            if interval <= 0:
                raise ValueError(f"FileSink: bucket check interval must be positive, got {interval}")
            self.bucket_check_interval = interval
            return self

        def build(self) -> FileSink:
            return FileSink(self.base_path, self.encoder, self.bucket_assigner, self.rolling_policy,
                            self.output_file_config, self.bucket_check_interval)


_UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"


class _Part:
    """An open in-progress part file."""

    def __init__(self, handle: Any, temp: str, final: str, now_ms: int) -> None:
        self.handle = handle
        self.temp = temp
        self.final = final
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
    checkpoint. A restore also commits what the restored checkpoint had pending (again, harmlessly, if that
    happened already) and drops the subtask's in-progress files written after it. At the end of a bounded
    input everything is committed."""

    def __init__(self, sink: FileSink) -> None:
        self.sink = sink
        self.name = f"Sink: {sink.name}"
        self.pending: dict[int, list[tuple[str, str]]] = {}  # checkpoint id -> (temp, final) files

    def _ensure_fs(self) -> None:
        if not hasattr(self, "fs"):
            self.fs, self.base = filesystem_for(self.sink.base_path)
            protocols = self.fs.protocol if isinstance(self.fs.protocol, (tuple, list)) else (self.fs.protocol,)
            self.local = "file" in protocols

    def open(self) -> None:
        self._ensure_fs()
        self.buckets: dict[str, _Bucket] = {}
        self.rolled: list[tuple[str, str]] = []  # closed since the last checkpoint, not yet committed
        policy = self.sink.rolling_policy
        self.keeps_parts_open = self.local and not policy.on_checkpoint
        if not policy.on_checkpoint:
            self._schedule_bucket_check(self.context.processing_time.now_ms())

    # -- writing ------------------------------------------------------------------------------------------

    def process_batch(self, batch: list[Any], timestamps: list[int] | None = None) -> None:
        if not batch:
            return
        now_ms = self.context.processing_time.now_ms()
        bucket = self._bucket(self.sink.bucket_assigner.bucket_id_at(now_ms))
        encode = self.sink.encoder.encode
        records = [encode(record) for record in batch]
        part = bucket.part or self._open_part(bucket, now_ms)
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
        part.last_write_ms = now_ms

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
        part = bucket.part = _Part(self.fs.open(temp, "wb"), temp, f"{bucket.folder}/{name}", now_ms)
        return part

    def _roll(self, bucket: _Bucket) -> None:
        part = bucket.part
        if part is not None:
            part.handle.close()
            self.rolled.append((part.temp, part.final))
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
        self.pending[checkpoint_id] = self.rolled
        self.rolled = []
        info = self.context.info
        return {"pending": {c: list(files) for c, files in self.pending.items()}, "in_progress": in_progress,
                "subtask": info.subtask_index, "parallelism": info.parallelism}

    def notify_checkpoint_complete(self, checkpoint_id: int) -> None:
        for done in sorted(c for c in self.pending if c <= checkpoint_id):
            self._publish(self.pending.pop(done))

    def initialize_state(self, states: list[dict[str, Any]]) -> None:
        self._ensure_fs()
        info = self.context.info
        for state in states:
            old_index = state.get("subtask", 0)
            if old_index % info.parallelism != info.subtask_index:
                continue  # another subtask finishes that one's commits
            for files in state.get("pending", {}).values():
                self._publish(files)  # pre-committed in the restored checkpoint: commit
            for temp, final, length in state.get("in_progress", []):
                self._recover_in_progress(temp, final, length)
            if state.get("parallelism") == info.parallelism:
                self._discard_uncommitted(old_index)  # (rescaled: left alone, new subtasks reuse the indexes)

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

    def _discard_uncommitted(self, subtask_index: int) -> None:
        """In-progress files of that subtask's earlier attempts: written after the restored checkpoint, so
        not part of the result (their records are replayed)."""
        if not self.fs.exists(self.base):
            return
        pattern = re.compile(rf"\.{re.escape(self.sink.output_file_config.part_prefix)}-{_UUID}-(\d+)-\d+.*"
                             rf"\.inprogress\.{_UUID}")
        for path in self.fs.find(self.base):
            match = pattern.fullmatch(path.rsplit("/", 1)[-1])
            if match and int(match.group(1)) == subtask_index:
                self.fs.rm_file(path)

    def end_input(self) -> None:
        for bucket in self.buckets.values():
            self._roll(bucket)
        if self.context.checkpointing:
            return  # the final checkpoint pre-commits the rolled parts; its completion commits them
        # Without checkpoints the end of a bounded input makes every record final.
        for checkpoint_id in sorted(self.pending):
            self._publish(self.pending.pop(checkpoint_id))
        self._publish(self.rolled)
        self.rolled = []

    def close(self) -> None:
        for bucket in getattr(self, "buckets", {}).values():
            if bucket.part is not None:
                bucket.part.handle.close()
