"""Files, named as in `pyflink.datastream.connectors.file_system`: `FileSource` of text lines and the
row-format `FileSink`.

FileSink writes each subtask's records to an in-progress file per bucket
(`.part-<uuid>-<subtask>-<n>.inprogress.<uuid>`) and publishes it under its final name
(`part-<uuid>-<subtask>-<n>`) when it is committed: when the checkpoint that pre-committed it completes
(exactly-once), or at the end of a bounded input. As in Flink, without checkpointing an unbounded job's
files stay in progress."""

from __future__ import annotations

import datetime
import uuid
from typing import Any

from ha_flink.datastream.connectors.base import BATCH_SIZE, Boundedness, Sink, Source, SourceReader
from ha_flink.fs import filesystem_for
from ha_flink.runtime.operators.base import StreamOperator


class StreamFormat:
    def __init__(self, charset_name: str = "UTF-8") -> None:
        self.charset_name = charset_name

    @staticmethod
    def text_line_format(charset_name: str = "UTF-8") -> StreamFormat:
        return StreamFormat(charset_name)


class FileSource(Source):
    name = "FileSource"

    def __init__(self, stream_format: StreamFormat, paths: tuple[str, ...]) -> None:
        self.stream_format = stream_format
        self.paths = paths

    @staticmethod
    def for_record_stream_format(stream_format: StreamFormat, *paths: str) -> FileSourceBuilder:
        return FileSourceBuilder(stream_format, paths)

    def get_boundedness(self) -> str:
        return Boundedness.BOUNDED

    def create_splits(self, parallelism: int) -> list[Any]:
        """One split per file; a folder stands for every file below it (hidden files skipped)."""
        files: list[str] = []
        for path in self.paths:
            fs, inner = filesystem_for(path)
            if not fs.exists(inner):
                raise FileNotFoundError(f"FileSource: {path} does not exist")
            if fs.isdir(inner):
                found = sorted(f for f in fs.find(inner) if not f.rsplit("/", 1)[-1].startswith((".", "_")))
                prefix = path[: len(path) - len(inner)] if path.endswith(inner) else ""
                files += [prefix + f for f in found]
            else:
                files.append(path)
        return files

    def create_reader(self, splits: list[Any]) -> SourceReader:
        return _LineReader(list(splits), self.stream_format.charset_name)


class FileSourceBuilder:
    def __init__(self, stream_format: StreamFormat, paths: tuple[str, ...]) -> None:
        self.stream_format = stream_format
        self.paths = paths

    def monitor_continuously(self, discovery_interval: Any) -> FileSourceBuilder:
        raise NotImplementedError("FileSource.monitor_continuously is not provided yet; sources read once")

    def build(self) -> FileSource:
        return FileSource(self.stream_format, self.paths)


class _LineReader(SourceReader):
    """Splits are file URLs, or (URL, lines already read) when restored from a checkpoint."""

    def __init__(self, files: list[Any], charset: str) -> None:
        self.files = [f if isinstance(f, tuple) else (f, 0) for f in files]
        self.charset = charset
        self.handle: Any = None
        self.current: tuple[str, int] | None = None

    def poll_batch(self) -> list[Any] | None:
        while True:
            if self.handle is None:
                if not self.files:
                    return None
                url, skip = self.files.pop(0)
                fs, path = filesystem_for(url)
                self.handle = fs.open(path, "r", encoding=self.charset)
                for _ in range(skip):
                    self.handle.readline()
                self.current = (url, skip)
            lines = self.handle.readlines(BATCH_SIZE * 64)
            if lines:
                url, read = self.current
                self.current = (url, read + len(lines))
                return [line.rstrip("\r\n") for line in lines]
            self.handle.close()
            self.handle = None
            self.current = None

    def snapshot(self) -> list[Any] | None:
        return ([self.current] if self.current else []) + list(self.files)

    def close(self) -> None:
        if self.handle is not None:
            self.handle.close()


class OutputFileConfig:
    def __init__(self, part_prefix: str = "part", part_suffix: str = "") -> None:
        self.part_prefix = part_prefix
        self.part_suffix = part_suffix

    @staticmethod
    def builder() -> OutputFileConfig.OutputFileConfigBuilder:
        return OutputFileConfig.OutputFileConfigBuilder()

    class OutputFileConfigBuilder:
        def __init__(self) -> None:
            self.prefix, self.suffix = "part", ""

        def with_part_prefix(self, prefix: str) -> OutputFileConfig.OutputFileConfigBuilder:
            self.prefix = prefix
            return self

        def with_part_suffix(self, suffix: str) -> OutputFileConfig.OutputFileConfigBuilder:
            self.suffix = suffix
            return self

        def build(self) -> OutputFileConfig:
            return OutputFileConfig(self.prefix, self.suffix)


class BucketAssigner:
    """Which subfolder of the base path a record goes to: `yyyy-MM-dd--HH` of processing time by default,
    or the base path itself."""

    def __init__(self, date_format: str | None) -> None:
        self.date_format = date_format

    @staticmethod
    def base_path_bucket_assigner() -> BucketAssigner:
        return BucketAssigner(None)

    @staticmethod
    def date_time_bucket_assigner(format_str: str = "yyyy-MM-dd--HH", timezone_id: str | None = None) -> BucketAssigner:
        return BucketAssigner(format_str)

    def bucket_id(self, now: datetime.datetime) -> str:
        if self.date_format is None:
            return ""
        java_to_python = (("yyyy", "%Y"), ("MM", "%m"), ("dd", "%d"), ("HH", "%H"), ("mm", "%M"), ("ss", "%S"))
        pattern = self.date_format
        for java, python in java_to_python:
            pattern = pattern.replace(java, python)
        return now.strftime(pattern)


class RollingPolicy:
    def __init__(self, part_size: int = 128 * 1024 * 1024) -> None:
        self.part_size = part_size

    @staticmethod
    def default_rolling_policy(part_size: int = 128 * 1024 * 1024, rollover_interval: int = 60_000,
                               inactivity_interval: int = 60_000) -> RollingPolicy:
        return RollingPolicy(part_size)

    @staticmethod
    def on_checkpoint_rolling_policy() -> RollingPolicy:
        return RollingPolicy()


class FileSink(Sink):
    name = "FileSink"

    def __init__(self, base_path: str, encoder: Any, bucket_assigner: BucketAssigner, rolling_policy: RollingPolicy,
                 output_file_config: OutputFileConfig) -> None:
        self.base_path = base_path.rstrip("/")
        self.encoder = encoder
        self.bucket_assigner = bucket_assigner
        self.rolling_policy = rolling_policy
        self.output_file_config = output_file_config

    @staticmethod
    def for_row_format(base_path: str, encoder: Any) -> FileSink.RowFormatBuilder:
        return FileSink.RowFormatBuilder(base_path, encoder)

    def create_operator(self) -> StreamOperator:
        return FileSinkWriter(self)

    class RowFormatBuilder:
        def __init__(self, base_path: str, encoder: Any) -> None:
            self.base_path = base_path
            self.encoder = encoder
            self.bucket_assigner = BucketAssigner.date_time_bucket_assigner()
            self.rolling_policy = RollingPolicy.default_rolling_policy()
            self.output_file_config = OutputFileConfig()

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
            return self

        def build(self) -> FileSink:
            return FileSink(self.base_path, self.encoder, self.bucket_assigner, self.rolling_policy,
                            self.output_file_config)


class FileSinkWriter(StreamOperator):
    """Two-phase commit per checkpoint: records go to in-progress part files; at a checkpoint's barrier the
    open parts are closed and become that checkpoint's pending files (pre-commit, recorded in its state);
    when the checkpoint completes they are renamed to their final names (commit). A restore commits what
    the restored checkpoint had pending (again, harmlessly, if that happened already) and drops the
    in-progress files written after it. At the end of a bounded input everything is committed."""

    def __init__(self, sink: FileSink) -> None:
        self.sink = sink
        self.name = f"Sink: {sink.name}"
        self.pending: dict[int, list[tuple[str, str]]] = {}  # checkpoint id -> (temp, final) files

    def _ensure_fs(self) -> None:
        if not hasattr(self, "fs"):
            self.fs, self.base = filesystem_for(self.sink.base_path)

    def open(self) -> None:
        self._ensure_fs()
        self.writer_id = uuid.uuid4().hex[:8] + "-" + uuid.uuid4().hex[8:16]
        self.counter = 0
        self.open_parts: dict[str, tuple[Any, str, str, int]] = {}  # bucket -> (handle, temp, final, bytes)
        self.rolled: list[tuple[str, str]] = []  # closed since the last checkpoint, not yet committed

    def _part(self, bucket: str) -> tuple[Any, str, str, int]:
        part = self.open_parts.get(bucket)
        if part is None:
            config = self.sink.output_file_config
            folder = f"{self.base}/{bucket}" if bucket else self.base
            self.fs.makedirs(folder, exist_ok=True)
            name = f"{config.part_prefix}-{self.writer_id}-{self.context.info.subtask_index}-{self.counter}" \
                   f"{config.part_suffix}"
            self.counter += 1
            temp = f"{folder}/.{name}.inprogress.{uuid.uuid4().hex}"
            part = (self.fs.open(temp, "wb"), temp, f"{folder}/{name}", 0)
            self.open_parts[bucket] = part
        return part

    def process_batch(self, batch: list[Any]) -> None:
        if not batch:
            return
        bucket = self.sink.bucket_assigner.bucket_id(datetime.datetime.now())
        handle, temp, final, size = self._part(bucket)
        data = b"".join(self.sink.encoder.encode(record) for record in batch)
        handle.write(data)
        size += len(data)
        self.open_parts[bucket] = (handle, temp, final, size)
        if size >= self.sink.rolling_policy.part_size:
            self._roll(bucket)

    def _roll(self, bucket: str) -> None:
        handle, temp, final, _ = self.open_parts.pop(bucket)
        handle.close()
        self.rolled.append((temp, final))

    def _publish(self, files: list[tuple[str, str]]) -> None:
        for temp, final in files:
            if self.fs.exists(temp):  # gone: committed already (before a failure)
                self.fs.mv(temp, final)

    # -- checkpoints: pre-commit at the barrier, commit on completion ------------------------------------

    def snapshot_state(self, checkpoint_id: int) -> dict[str, Any]:
        for bucket in list(self.open_parts):
            self._roll(bucket)
        self.pending[checkpoint_id] = self.rolled
        self.rolled = []
        info = self.context.info
        return {"pending": {c: list(files) for c, files in self.pending.items()},
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
            if state.get("parallelism") == info.parallelism:
                self._discard_uncommitted(old_index)  # (rescaled: left alone, the names could clash)

    def _discard_uncommitted(self, subtask_index: int) -> None:
        """In-progress files of that subtask's earlier attempts: written after the restored checkpoint, so
        not part of the result (their records are replayed)."""
        prefix = f".{self.sink.output_file_config.part_prefix}-"
        marker = f"-{subtask_index}-"
        if not self.fs.exists(self.base):
            return
        for path in self.fs.find(self.base):
            name = path.rsplit("/", 1)[-1]
            if name.startswith(prefix) and ".inprogress." in name and marker in name:
                self.fs.rm_file(path)

    def end_input(self) -> None:
        for bucket in list(self.open_parts):
            self._roll(bucket)
        if self.context.checkpointing:
            return  # the final checkpoint pre-commits the rolled parts; its completion commits them
        # Without checkpoints the end of a bounded input makes every record final.
        for checkpoint_id in sorted(self.pending):
            self._publish(self.pending.pop(checkpoint_id))
        self._publish(self.rolled)
        self.rolled = []

    def close(self) -> None:
        for handle, _, _, _ in getattr(self, "open_parts", {}).values():
            handle.close()
