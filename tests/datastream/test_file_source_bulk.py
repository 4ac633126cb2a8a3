"""FileSource with a Python BulkFormat (`FileSource.for_bulk_file_format`): every record of every file
once, compressed files decompressed by extension, exactly once across a failure and restore (the reader
skips the records the checkpoint had emitted), and a format's mistakes named."""

from __future__ import annotations

import collections
import gzip
import struct
import time
from pathlib import Path
from typing import Any, BinaryIO, Iterator

import pytest

from ha_flink.common import Configuration, Encoder, Types, WatermarkStrategy
from ha_flink.datastream import MapFunction, StreamExecutionEnvironment
from ha_flink.datastream.connectors.file_system import BucketAssigner, BulkFormat, FileSink, FileSource
from ha_flink.runtime.minicluster import JobExecutionError
from ha_flink.testing.functions import FailOnceAt
from ha_flink.testing.sinks import CollectSink

RECORD = struct.Struct(">q")  # a file of big-endian 8-byte integers


class LongsFormat(BulkFormat):
    def __init__(self, batch_size: int = 50) -> None:
        self.batch_size = batch_size

    def read_batches(self, stream: BinaryIO) -> Iterator[list[Any]]:
        while data := stream.read(RECORD.size * self.batch_size):
            yield [value for (value,) in RECORD.iter_unpack(data)]


def write_longs(path: Path, values: range, compress: bool = False) -> None:
    data = b"".join(RECORD.pack(v) for v in values)
    path.write_bytes(gzip.compress(data) if compress else data)


class Slowly(MapFunction):
    """Passes values on, a batch of 50 taking about 2 ms: checkpoints complete before the failure."""

    def map(self, value: Any) -> Any:
        if value % 50 == 0:
            time.sleep(0.002)
        return value


def test_bulk_format_reads_every_record_once_across_a_restart(tmp_path: Path) -> None:
    data, out = tmp_path / "in", tmp_path / "out"
    data.mkdir()
    write_longs(data / "a.bin", range(0, 3000))
    write_longs(data / "b.bin.gz", range(3000, 6000), compress=True)
    config = Configuration()
    config.set_string("restart-strategy.type", "fixed-delay")
    config.set_string("restart-strategy.fixed-delay.delay", "10 ms")
    env = StreamExecutionEnvironment.get_execution_environment(config).set_parallelism(2)
    env.enable_checkpointing(20)
    source = FileSource.for_bulk_file_format(LongsFormat(), str(data)).build()
    sink = FileSink.for_row_format(str(out), Encoder.simple_string_encoder()) \
        .with_bucket_assigner(BucketAssigner.base_path_bucket_assigner()).build()
    env.from_source(source, WatermarkStrategy.no_watermarks(), "longs") \
        .map(Slowly()).map(FailOnceAt(4500)).map(str, Types.STRING()).sink_to(sink)
    client = env.execute_async()
    client.get_job_execution_result().result(60)
    assert client.mini_cluster.restored_checkpoint(client.get_job_id()) is not None
    lines = [line for p in out.iterdir() if not p.name.startswith(".") for line in p.read_text().splitlines()]
    assert collections.Counter(lines) == collections.Counter(str(v) for v in range(6000))


def test_bulk_format_restore_skips_what_the_checkpoint_emitted(tmp_path: Path) -> None:
    path = tmp_path / "longs.bin"
    write_longs(path, range(1000))
    source = FileSource.for_bulk_file_format(LongsFormat(batch_size=64), str(path)).build()
    reader = source.create_reader(source.create_splits(1))
    first = reader.poll_batch() + reader.poll_batch()
    state = reader.snapshot()
    reader.close()
    restored = source.create_reader(state)
    rest: list[int] = []
    while (batch := restored.poll_batch()) is not None:
        rest += batch
    restored.close()
    assert first + rest == list(range(1000))  # exactly once: nothing repeated, nothing lost


def test_bulk_format_mistakes_are_named(tmp_path: Path) -> None:
    class NotLists(BulkFormat):
        def read_batches(self, stream: BinaryIO) -> Iterator[list[Any]]:
            yield 42  # type: ignore[misc]

    path = tmp_path / "x.bin"
    write_longs(path, range(3))
    env = StreamExecutionEnvironment.get_execution_environment().set_parallelism(1)
    env.from_source(FileSource.for_bulk_file_format(NotLists(), str(path)).build(),
                    WatermarkStrategy.no_watermarks(), "bad").add_sink(CollectSink(tmp_path / "out"))
    with pytest.raises(JobExecutionError, match="x.bin yielded a int, not a list"):
        env.execute()
    with pytest.raises(TypeError, match="takes a BulkFormat"):
        FileSource.for_bulk_file_format("text", str(path))  # type: ignore[arg-type]
