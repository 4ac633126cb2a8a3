"""FileSink beyond row formats, run in the local mini cluster: bulk formats (a Python BulkWriter per part
file, rolled at checkpoints), compaction (only compacted files become visible, each record once, also
across a failure and restore), the deprecated StreamingFileSink through `add_sink`, and the builders'
argument checks."""

from __future__ import annotations

import collections
import re
from pathlib import Path
from typing import Any, BinaryIO

import pytest

from ha_flink.common import Configuration, Encoder, Types, WatermarkStrategy
from ha_flink.common.serialization import BulkWriterFactory
from ha_flink.common.bulk_writer import BulkWriter
from ha_flink.datastream import StreamExecutionEnvironment
from ha_flink.datastream.connectors import (
    BucketAssigner, DataGeneratorSource, DeliveryGuarantee, FileSink, RateLimiterStrategy, RollingPolicy,
    StreamingFileSink,
)
from ha_flink.datastream.connectors.file_system import FileCompactor, FileCompactStrategy
from ha_flink.testing.functions import FailOnceAt

RECORDS = 600


class CountedLinesWriter(BulkWriter):
    """A format with a header and a footer: a bulk writer's file is whole only once it is finished."""

    def __init__(self, stream: BinaryIO) -> None:
        self.stream = stream
        self.buffer: list[str] = []
        self.count = 0
        stream.write(b"# begin\n")

    def add_element(self, element: Any) -> None:
        self.buffer.append(f"{element}\n")
        self.count += 1

    def flush(self) -> None:
        self.stream.write("".join(self.buffer).encode())
        self.buffer = []

    def finish(self) -> None:
        self.flush()
        self.stream.write(f"# end {self.count}\n".encode())


class CountedLinesFactory(BulkWriterFactory):
    def create(self, stream: BinaryIO) -> BulkWriter:
        return CountedLinesWriter(stream)


def visible_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith("."))


def hidden_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.name.startswith("."))


def generated(env: StreamExecutionEnvironment, per_second: int = 3000) -> Any:
    source = DataGeneratorSource(lambda i: i, RECORDS, RateLimiterStrategy.per_second(per_second), Types.LONG())
    return env.from_source(source, WatermarkStrategy.no_watermarks(), "generated")


def execute_restoring_once(env: StreamExecutionEnvironment) -> None:
    """Runs the bounded job to its end and checks that its failure was answered by a restore from a
    checkpoint (not by a start from scratch)."""
    client = env.execute_async()
    client.get_job_execution_result().result(60)
    assert client.mini_cluster.restored_checkpoint(client.get_job_id()) is not None


FAIL_AT = RECORDS * 3 // 4  # halfway through the second subtask's share of the sequence
SLOW = 1000  # records per second: the failure comes after a few checkpoints of 50 ms


def restarting_env(parallelism: int, checkpoint_ms: int) -> StreamExecutionEnvironment:
    config = Configuration()
    config.set_string("restart-strategy.type", "fixed-delay")
    config.set_string("restart-strategy.fixed-delay.delay", "10 ms")
    env = StreamExecutionEnvironment.get_execution_environment(config).set_parallelism(parallelism)
    env.enable_checkpointing(checkpoint_ms)
    return env


# ---- bulk formats ---------------------------------------------------------------------------------------------

def test_bulk_format_writes_whole_files_that_roll_at_checkpoints(tmp_path: Path) -> None:
    out = tmp_path / "out"
    env = restarting_env(2, 50)
    sink = FileSink.for_bulk_format(str(out), CountedLinesFactory()) \
        .with_bucket_assigner(BucketAssigner.base_path_bucket_assigner()).build()
    generated(env, SLOW).map(FailOnceAt(FAIL_AT)).sink_to(sink)
    execute_restoring_once(env)

    parts = visible_files(out)
    assert len(parts) > 2  # rolled at checkpoints, not only at the end
    assert hidden_files(out) == []
    numbers: list[int] = []
    for part in parts:
        lines = part.read_text().splitlines()
        assert lines[0] == "# begin" and lines[-1] == f"# end {len(lines) - 2}", part.name  # finished
        numbers += [int(line) for line in lines[1:-1]]
    assert sorted(numbers) == list(range(RECORDS))  # each once, across the failure


def test_bulk_format_takes_only_the_on_checkpoint_rolling_policy() -> None:
    builder = FileSink.for_bulk_format("/tmp/unused", CountedLinesFactory())
    with pytest.raises(ValueError, match="OnCheckpointRollingPolicy"):
        builder.with_rolling_policy(RollingPolicy.default_rolling_policy())
    with pytest.raises(TypeError, match="BulkWriterFactory"):
        FileSink.for_bulk_format("/tmp/unused", Encoder.simple_string_encoder())  # type: ignore[arg-type]


# ---- compaction -----------------------------------------------------------------------------------------------

COMPACTED = re.compile(r"compacted-part-[0-9a-f-]{36}-\d+-\d+")


def compacting_sink(out: Path, strategy: FileCompactStrategy, compactor: FileCompactor) -> FileSink:
    return FileSink.for_row_format(str(out), Encoder.simple_string_encoder()) \
        .with_bucket_assigner(BucketAssigner.base_path_bucket_assigner()) \
        .with_rolling_policy(RollingPolicy.default_rolling_policy(part_size=200)) \
        .enable_compact(strategy, compactor).build()


def test_compaction_publishes_only_compacted_files_each_record_once_across_a_restart(tmp_path: Path) -> None:
    out = tmp_path / "out"
    env = restarting_env(2, 50)
    strategy = FileCompactStrategy.builder().enable_compaction_on_checkpoint(3).set_size_threshold(600) \
        .set_num_compact_threads(2).build()
    generated(env, SLOW).map(FailOnceAt(FAIL_AT)).map(str, Types.STRING()) \
        .sink_to(compacting_sink(out, strategy, FileCompactor.concat_file_compactor()))
    execute_restoring_once(env)

    files = visible_files(out)
    assert files and all(COMPACTED.fullmatch(p.name) for p in files), [p.name for p in files]
    assert hidden_files(out) == []  # inputs deleted, no half-written results left
    lines = [line for p in files for line in p.read_text().splitlines()]
    assert collections.Counter(lines) == collections.Counter(str(i) for i in range(RECORDS))
    # parts roll at 200 bytes (and at checkpoints): a file of more than 300 holds several
    assert max(p.stat().st_size for p in files) > 300


def test_compaction_by_size_and_with_a_delimiter(tmp_path: Path) -> None:
    out = tmp_path / "out"
    env = StreamExecutionEnvironment.get_execution_environment().set_parallelism(1)
    strategy = FileCompactStrategy.builder().set_size_threshold(1000).build()
    generated(env, per_second=100_000).map(str, Types.STRING()) \
        .sink_to(compacting_sink(out, strategy, FileCompactor.concat_file_compactor(b"--\n")))
    env.execute()  # no checkpoints: everything is compacted at the end of the input

    files = visible_files(out)
    assert files and all(COMPACTED.fullmatch(p.name) for p in files)
    assert hidden_files(out) == []
    texts = [p.read_text() for p in files]
    assert any("--\n" in text for text in texts)  # inputs were joined with the delimiter
    numbers = [int(line) for text in texts for line in text.splitlines() if line != "--"]
    assert sorted(numbers) == list(range(RECORDS))


def test_compaction_arguments_are_checked() -> None:
    with pytest.raises(ValueError, match="at least one trigger"):
        FileCompactStrategy.builder().build()
    with pytest.raises(ValueError, match="more than 0"):
        FileCompactStrategy.builder().enable_compaction_on_checkpoint(0)
    with pytest.raises(TypeError, match="bytes"):
        FileCompactor.concat_file_compactor("--")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="FileCompactStrategy"):
        FileSink.for_row_format("/tmp/unused", Encoder.simple_string_encoder()) \
            .enable_compact(FileCompactor.concat_file_compactor(), FileCompactor.concat_file_compactor())  # type: ignore[arg-type]


# ---- StreamingFileSink and the base names ---------------------------------------------------------------------

def test_streaming_file_sink_runs_through_add_sink(tmp_path: Path) -> None:
    out = tmp_path / "out"
    env = restarting_env(1, 50)
    with pytest.warns(DeprecationWarning, match="FileSink"):
        sink = StreamingFileSink.for_row_format(str(out), Encoder.simple_string_encoder()) \
            .with_bucket_assigner(BucketAssigner.base_path_bucket_assigner()) \
            .with_rolling_policy(RollingPolicy.on_checkpoint_rolling_policy()).build()
    generated(env).map(str, Types.STRING()).add_sink(sink)
    env.execute()
    assert sorted(int(line) for p in visible_files(out) for line in p.read_text().splitlines()) \
        == list(range(RECORDS))
    assert hidden_files(out) == []


def test_delivery_guarantee_names() -> None:
    assert [g.name for g in DeliveryGuarantee] == ["EXACTLY_ONCE", "AT_LEAST_ONCE", "NONE"]
