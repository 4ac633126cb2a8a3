"""The PyFlink-shaped connectors, run in the local mini cluster: FileSource (static and continuous), FileSink
(part names, size / time / checkpoint rolling, exactly-once across a restart), NumberSequenceSource and
DataGeneratorSource (parallel, replayable, rate-limited)."""

from __future__ import annotations

import collections
import gzip
import logging
import os
import re
import time
from pathlib import Path
from typing import Any

import pytest

from ha_flink.common import Configuration, Duration, Encoder, JobStatus, Types, WatermarkStrategy
from ha_flink.datastream import StreamExecutionEnvironment
from ha_flink.datastream.connectors import (
    BucketAssigner, DataGeneratorSource, FileSink, FileSource, GeneratorFunction, NumberSequenceSource,
    OutputFileConfig, RateLimiterStrategy, RollingPolicy, StreamFormat,
)
from ha_flink.runtime.minicluster import JobExecutionError
from ha_flink.testing.functions import FailOnceAt
from ha_flink.testing.processes import wait_for
from ha_flink.testing.sinks import CollectSink, read_collected

UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"


def env_with(parallelism: int, config: Configuration | None = None) -> StreamExecutionEnvironment:
    return StreamExecutionEnvironment.get_execution_environment(config).set_parallelism(parallelism)


def write_atomically(path: Path, lines: list[str]) -> None:
    """As a producer should: write a hidden file, then rename it into place."""
    temp = path.with_name(f".{path.name}.tmp")
    temp.write_text("".join(line + "\n" for line in lines))
    os.replace(temp, path)


def poll_until(reader: Any, condition: Any, timeout: float = 10.0) -> list[Any]:
    """Poll a source reader until `condition(records so far)` holds (or it ends)."""
    records: list[Any] = []
    deadline = time.monotonic() + timeout
    while not condition(records):
        if time.monotonic() > deadline:
            raise TimeoutError(f"reader produced {len(records)} records, condition still false")
        batch = reader.poll_batch()
        if batch is None:
            break
        records.extend(batch)
    return records


def finished_parts(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith("."))


def committed_lines(folder: Path) -> list[str]:
    return [line for part in finished_parts(folder) for line in part.read_text().splitlines()]


# ---- FileSource ---------------------------------------------------------------------------------------------

def test_file_source_reads_every_line_of_a_folder_once_at_parallelism_two(tmp_path: Path) -> None:
    data = tmp_path / "in"
    (data / "nested").mkdir(parents=True)
    expected: list[str] = []
    for i in range(6):
        lines = [f"file{i} line{j}" for j in range(300 + i)]
        (data / ("nested" if i % 2 else "") / f"f{i}.txt").write_text("\n".join(lines) + "\n")
        expected += lines
    with gzip.open(data / "packed.txt.gz", "wt") as packed:  # stream formats decompress by extension
        packed.write("zipped 1\nzipped 2\n")
    expected += ["zipped 1", "zipped 2"]
    (data / "crlf.txt").write_bytes(b"windows 1\r\nwindows 2")  # no final line break: still a line
    expected += ["windows 1", "windows 2"]
    (data / ".hidden").write_text("not me\n")  # hidden files are skipped, as Flink's default filter does
    (data / "_SUCCESS").write_text("nor me\n")

    env = env_with(2)
    source = FileSource.for_record_stream_format(StreamFormat.text_line_format(), str(data)).build()
    env.from_source(source, WatermarkStrategy.no_watermarks(), "files").add_sink(CollectSink(tmp_path / "out"))
    env.execute()
    assert collections.Counter(read_collected(tmp_path / "out")) == collections.Counter(expected)


def test_file_source_of_a_missing_path_fails_naming_it(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-folder"
    env = env_with(1)
    env.from_source(FileSource.for_record_stream_format(StreamFormat.text_line_format(), str(missing)).build(),
                    WatermarkStrategy.no_watermarks(), "files").add_sink(CollectSink(tmp_path / "out"))
    with pytest.raises(JobExecutionError, match=re.escape(str(missing))):
        env.execute()
    with pytest.raises(ValueError, match="paths"):
        FileSource.for_record_stream_format(StreamFormat.text_line_format())
    with pytest.raises(ValueError, match="discovery_interval"):
        FileSource.for_record_stream_format(StreamFormat.text_line_format(), str(tmp_path)) \
            .monitor_continuously(Duration.of_millis(0))


def test_continuous_monitoring_reads_files_added_while_the_job_runs(tmp_path: Path) -> None:
    data = tmp_path / "in"  # does not exist yet: a watched folder may appear later, as in Flink
    source = FileSource.for_record_stream_format(StreamFormat.text_line_format(), str(data)) \
        .monitor_continuously(Duration.of_millis(50)).build()
    env = env_with(2)
    env.from_source(source, WatermarkStrategy.no_watermarks(), "watched").add_sink(CollectSink(tmp_path / "out"))
    client = env.execute_async()
    try:
        data.mkdir()
        write_atomically(data / "a.txt", [f"a{i}" for i in range(100)])
        expected = [f"a{i}" for i in range(100)]
        wait_for(lambda: len(read_collected(tmp_path / "out")) >= len(expected), 10, what="the first file")
        for name in ("b", "c", "d"):
            lines = [f"{name}{i}" for i in range(100)]
            write_atomically(data / f"{name}.txt", lines)
            expected += lines
            wait_for(lambda: len(read_collected(tmp_path / "out")) >= len(expected), 10, what=f"file {name}")
        # by the time the last file was read, the earlier ones had been listed many times: none read twice
        assert collections.Counter(read_collected(tmp_path / "out")) == collections.Counter(expected)
        assert client.get_job_status().result() == JobStatus.RUNNING  # unbounded: it keeps watching
    finally:
        client.cancel().result(10)
    wait_for(lambda: client.get_job_status().result() == JobStatus.CANCELED, 10, what="cancellation")


def test_a_restored_continuous_reader_neither_rereads_nor_loses_lines(tmp_path: Path) -> None:
    data = tmp_path / "in"
    data.mkdir()
    big = [f"big line {i:06d} " + "x" * 40 for i in range(4000)]  # more than one batch
    write_atomically(data / "big.txt", big)
    write_atomically(data / "small.txt", ["small 1", "small 2"])
    source = FileSource.for_record_stream_format(StreamFormat.text_line_format(), str(data)) \
        .monitor_continuously(Duration.of_millis(20)).build()
    reader = source.create_reader(source.create_splits(1))
    first = poll_until(reader, lambda records: len(records) > 0)
    assert 0 < len(first) < len(big)  # stopped in the middle of a file
    state = reader.snapshot()
    reader.close()

    restored = source.create_reader(state)
    rest = poll_until(restored, lambda records: len(first) + len(records) >= len(big) + 2)
    assert collections.Counter(first + rest) == collections.Counter(big + ["small 1", "small 2"])

    # restored again from a later snapshot: a new file is read, the old ones are not
    again = source.create_reader(restored.snapshot())
    restored.close()
    write_atomically(data / "new.txt", ["new 1"])
    assert poll_until(again, lambda records: "new 1" in records) == ["new 1"]
    again.close()


def test_continuous_readers_share_the_files_and_keep_them_when_rescaled(tmp_path: Path) -> None:
    data = tmp_path / "in"
    data.mkdir()
    for i in range(20):
        write_atomically(data / f"f{i:02d}.txt", [f"f{i:02d}"])
    source = FileSource.for_record_stream_format(StreamFormat.text_line_format(), str(data)) \
        .monitor_continuously(Duration.of_millis(20)).build()
    readers = [source.create_reader([split]) for split in source.create_splits(2)]
    seen: list[set[str]] = [set(), set()]
    deadline = time.monotonic() + 10
    while sum(map(len, seen)) < 20 and time.monotonic() < deadline:
        for reader, lines in zip(readers, seen):
            lines.update(reader.poll_batch() or [])
    assert seen[0] and seen[1] and not seen[0] & seen[1]  # a disjoint share each
    assert seen[0] | seen[1] == {f"f{i:02d}" for i in range(20)}

    # down to one subtask: it takes both shares over and discovers for both
    merged = source.create_reader([split for reader in readers for split in reader.snapshot()])
    for reader in readers:
        reader.close()
    for i in range(20, 30):
        write_atomically(data / f"f{i:02d}.txt", [f"f{i:02d}"])
    late = poll_until(merged, lambda records: len(records) >= 10)
    assert sorted(late) == [f"f{i:02d}" for i in range(20, 30)]
    merged.close()


def test_continuous_file_source_into_file_sink_is_exactly_once_across_a_restart(tmp_path: Path) -> None:
    data, out = tmp_path / "in", tmp_path / "out"
    data.mkdir()
    config = Configuration()
    config.set_string("restart-strategy.type", "fixed-delay")
    config.set_string("restart-strategy.fixed-delay.delay", "10 ms")
    env = env_with(2, config)
    env.enable_checkpointing(50)
    source = FileSource.for_record_stream_format(StreamFormat.text_line_format(), str(data)) \
        .monitor_continuously(Duration.of_millis(20)).build()
    sink = FileSink.for_row_format(str(out), Encoder.simple_string_encoder()) \
        .with_bucket_assigner(BucketAssigner.base_path_bucket_assigner()) \
        .with_rolling_policy(RollingPolicy.default_rolling_policy(rollover_interval=150)) \
        .with_bucket_check_interval(20).build()
    env.from_source(source, WatermarkStrategy.no_watermarks(), "watched").map(FailOnceAt("w2-f1-250")).sink_to(sink)
    expected: list[str] = []
    client = env.execute_async()
    try:
        for wave in (1, 2):
            for f in range(3):
                lines = [f"w{wave}-f{f}-{i}" for i in range(500)]
                write_atomically(data / f"w{wave}-f{f}.txt", lines)
                expected += lines
            # committed output: checkpoints completed (the second wave fails once, then restores)
            wait_for(lambda: set(committed_lines(out)) == set(expected), 20, what=f"wave {wave} to be committed")
        assert client.mini_cluster.restored_checkpoint(client.get_job_id()) is not None  # it did fail and restore
        assert collections.Counter(committed_lines(out)) == collections.Counter(expected)
    finally:
        client.cancel().result(10)
    wait_for(lambda: client.get_job_status().result() == JobStatus.CANCELED, 10, what="cancellation")


# ---- FileSink -----------------------------------------------------------------------------------------------

def test_file_sink_names_parts_with_prefix_and_suffix_and_rolls_by_size(tmp_path: Path) -> None:
    out = tmp_path / "out"
    env = env_with(2)
    config = OutputFileConfig.builder().with_part_prefix("prefix").with_part_suffix(".ext").build()
    sink = FileSink.for_row_format(str(out), Encoder.simple_string_encoder()) \
        .with_bucket_assigner(BucketAssigner.base_path_bucket_assigner()) \
        .with_output_file_config(config) \
        .with_rolling_policy(RollingPolicy.default_rolling_policy(part_size=1000)).build()
    env.from_source(NumberSequenceSource(1, 3000), WatermarkStrategy.no_watermarks(), "numbers") \
        .map(str).sink_to(sink)
    env.execute()

    files = sorted(out.iterdir())
    assert files and all(not p.name.startswith(".") for p in files)  # all committed, nothing in progress
    by_writer: dict[tuple[str, str], dict[int, Path]] = collections.defaultdict(dict)
    for part in files:
        match = re.fullmatch(rf"prefix-({UUID})-(\d+)-(\d+)\.ext", part.name)
        assert match, part.name
        by_writer[(match.group(1), match.group(2))][int(match.group(3))] = part
    assert {subtask for _, subtask in by_writer} == {"0", "1"}
    for parts in by_writer.values():
        assert sorted(parts) == list(range(len(parts))) and len(parts) > 1  # counted from 0, rolled
        for counter in sorted(parts)[:-1]:
            data = parts[counter].read_bytes()
            last_line = data.rstrip(b"\n").rsplit(b"\n", 1)[-1] + b"\n"
            # rolled once it grew past part_size: before its last record it was within
            assert len(data) > 1000 and len(data) - len(last_line) <= 1000
    numbers = sorted(int(line) for part in files for line in part.read_text().split())
    assert numbers == list(range(1, 3001))


def test_file_sink_rolls_by_time(tmp_path: Path) -> None:
    out = tmp_path / "out"
    env = env_with(1)
    sink = FileSink.for_row_format(str(out), Encoder.simple_string_encoder()) \
        .with_bucket_assigner(BucketAssigner.base_path_bucket_assigner()) \
        .with_rolling_policy(RollingPolicy.default_rolling_policy(rollover_interval=100)) \
        .with_bucket_check_interval(20).build()
    source = DataGeneratorSource(lambda i: i, 300, RateLimiterStrategy.per_second(500), Types.LONG())
    env.from_source(source, WatermarkStrategy.no_watermarks(), "generated").sink_to(sink)
    env.execute()
    parts = finished_parts(out)
    assert len(parts) >= 3  # about 0.6 s of input, a new part every 0.1 s
    assert sorted(int(line) for line in committed_lines(out)) == list(range(300))


def test_on_checkpoint_rolling_rolls_at_checkpoints_only(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    def job(out: Path, policy: RollingPolicy, checkpoint_ms: int | None) -> StreamExecutionEnvironment:
        env = env_with(1)
        if checkpoint_ms is not None:
            env.enable_checkpointing(checkpoint_ms)
        sink = FileSink.for_row_format(str(out), Encoder.simple_string_encoder()) \
            .with_bucket_assigner(BucketAssigner.base_path_bucket_assigner()) \
            .with_rolling_policy(policy).with_bucket_check_interval(10).build()
        source = DataGeneratorSource(lambda i: "x" * 50, 400, RateLimiterStrategy.per_second(800), Types.STRING())
        env.from_source(source, WatermarkStrategy.no_watermarks(), "generated").sink_to(sink)
        return env

    # without checkpoints: one part, although it grew far and stayed open long
    job(tmp_path / "plain", RollingPolicy.on_checkpoint_rolling_policy(), None).execute()
    assert len(finished_parts(tmp_path / "plain")) == 1
    assert len(committed_lines(tmp_path / "plain")) == 400

    with caplog.at_level(logging.INFO, logger="ha_flink.runtime"):
        job(tmp_path / "checkpointed", RollingPolicy.on_checkpoint_rolling_policy(), 100).execute()
    completed = len([r for r in caplog.records if r.getMessage().startswith("Completed checkpoint")])
    parts = finished_parts(tmp_path / "checkpointed")
    assert 2 <= len(parts) <= completed + 1  # a part per checkpoint (and the last one at the end)
    assert len(committed_lines(tmp_path / "checkpointed")) == 400

    # the default policy keeps a part open across checkpoints (local files), as Flink: far fewer parts
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="ha_flink.runtime"):
        job(tmp_path / "default", RollingPolicy.default_rolling_policy(), 50).execute()
    assert len([r for r in caplog.records if r.getMessage().startswith("Completed checkpoint")]) >= 3
    assert len(finished_parts(tmp_path / "default")) == 1
    assert len(committed_lines(tmp_path / "default")) == 400


def test_a_part_open_at_the_restored_checkpoint_is_committed_as_it_was_then(tmp_path: Path) -> None:
    """The sink subtask of a failed attempt: a part stayed open across checkpoint 1 and got more records
    before the failure. The restored subtask commits the part as checkpoint 1 had it, drops the rest."""
    from ha_flink.runtime.operators.base import OperatorContext, ProcessingTimeService, TaskInfo

    out = tmp_path / "out"
    sink = FileSink.for_row_format(str(out), Encoder.simple_string_encoder()) \
        .with_bucket_assigner(BucketAssigner.base_path_bucket_assigner()).build()

    def subtask(attempt: int) -> Any:
        writer = sink.create_operator()
        writer.setup(OperatorContext(TaskInfo("sink", 0, 1, 128, attempt), ProcessingTimeService(),
                                     checkpointing=True), output=None)
        return writer

    first = subtask(0)
    first.open()
    first.process_batch(["a", "b"])
    state = first.snapshot_state(1)
    first.process_batch(["after the checkpoint"], [0])  # (timestamps are accepted and not needed)
    first.close()  # the failure: checkpoint 1 never learnt it completed
    assert finished_parts(out) == []

    second = subtask(1)
    second.initialize_state([state])
    second.open()
    assert committed_lines(out) == ["a", "b"]
    assert [p.name for p in out.iterdir() if p.name.startswith(".")] == []  # the failed attempt's rest is gone
    second.close()


def test_rolling_policy_and_sink_arguments_are_checked() -> None:
    with pytest.raises(ValueError, match="part_size"):
        RollingPolicy.default_rolling_policy(part_size=0)
    with pytest.raises(ValueError, match="rollover_interval"):
        RollingPolicy.default_rolling_policy(rollover_interval=-1)
    with pytest.raises(ValueError, match="timezone_id"):
        BucketAssigner.date_time_bucket_assigner(timezone_id="Nowhere/Atlantis")
    assert BucketAssigner.date_time_bucket_assigner("yyyy-MM-dd--HH", "UTC").bucket_id_at(0) == "1970-01-01--00"
    assert BucketAssigner.date_time_bucket_assigner("yyyyMMddHH", "GMT+02:00").bucket_id_at(0) == "1970010102"


# ---- NumberSequenceSource and DataGeneratorSource ---------------------------------------------------------

def test_number_sequence_source_includes_its_end(tmp_path: Path) -> None:
    env = env_with(3)
    env.from_source(NumberSequenceSource(1, 10), WatermarkStrategy.no_watermarks(), "numbers") \
        .add_sink(CollectSink(tmp_path / "par"))
    env.execute()
    assert sorted(read_collected(tmp_path / "par")) == list(range(1, 11))
    env = env_with(1)
    env.from_source(NumberSequenceSource(-2, 2), WatermarkStrategy.no_watermarks(), "numbers") \
        .add_sink(CollectSink(tmp_path / "one"))
    env.execute()
    assert read_collected(tmp_path / "one") == [-2, -1, 0, 1, 2]  # one subtask: in order
    with pytest.raises(ValueError, match="end"):
        NumberSequenceSource(5, 4)


class Numbered(GeneratorFunction):
    def open(self, reader_context: Any) -> None:
        self.prefix = "Number: "

    def map(self, value: int) -> str:
        return self.prefix + str(value)


def test_data_generator_source_gives_each_index_once(tmp_path: Path) -> None:
    env = env_with(2)
    source = DataGeneratorSource(Numbered(), 5000, RateLimiterStrategy.no_op(), Types.STRING())
    env.from_source(source, WatermarkStrategy.no_watermarks(), "generated").add_sink(CollectSink(tmp_path / "par"))
    env.execute()
    assert collections.Counter(read_collected(tmp_path / "par")) == \
        collections.Counter(f"Number: {i}" for i in range(5000))

    env = env_with(1)
    # Flink's three-argument form, a plain function: with one subtask the indexes come in order
    env.from_source(DataGeneratorSource(lambda i: i * i, 100, Types.LONG()), WatermarkStrategy.no_watermarks(),
                    "squares").add_sink(CollectSink(tmp_path / "one"))
    env.execute()
    assert read_collected(tmp_path / "one") == [i * i for i in range(100)]


def test_data_generator_rate_limit_holds_the_overall_rate(tmp_path: Path) -> None:
    count, rate = 200, 400.0
    env = env_with(2)
    source = DataGeneratorSource(lambda i: i, count, RateLimiterStrategy.per_second(rate), Types.LONG())
    env.from_source(source, WatermarkStrategy.no_watermarks(), "generated").add_sink(CollectSink(tmp_path))
    started = time.monotonic()
    env.execute()
    elapsed = time.monotonic() - started
    assert sorted(read_collected(tmp_path)) == list(range(count))
    assert elapsed >= count / rate * 0.8  # the rate is for the whole source, not per subtask


def test_data_generator_reader_restores_from_its_snapshot_and_gates_per_checkpoint() -> None:
    source = DataGeneratorSource(lambda i: i, 3000, RateLimiterStrategy.no_op(), Types.LONG())
    splits = source.create_splits(2)
    reader = source.create_reader(splits[:1])
    first = reader.poll_batch()
    state = reader.snapshot()
    reader.close()
    rest = poll_until(source.create_reader(state), lambda records: False)  # to its end
    assert first + rest == list(range(1500))  # subtask 0 of 2: the first half, in order

    gated = DataGeneratorSource(lambda i: i, 10, RateLimiterStrategy.per_checkpoint(4), Types.LONG())
    reader = gated.create_reader(gated.create_splits(1))
    assert reader.poll_batch() == [0, 1, 2, 3]
    assert reader.poll_batch() == []  # nothing more until a checkpoint
    reader.snapshot()
    assert reader.poll_batch() == [4, 5, 6, 7]


def test_data_generator_arguments_are_checked() -> None:
    with pytest.raises(ValueError, match="count"):
        DataGeneratorSource(lambda i: i, -1, RateLimiterStrategy.no_op(), Types.LONG())
    with pytest.raises(ValueError, match="records_per_second"):
        RateLimiterStrategy.per_second(-5)
    with pytest.raises(ValueError, match="records_per_second"):
        RateLimiterStrategy.per_second(0)
    with pytest.raises(ValueError, match="records_per_checkpoint"):
        RateLimiterStrategy.per_checkpoint(0)
    with pytest.raises(TypeError, match="rate_limiter_strategy"):
        DataGeneratorSource(lambda i: i, 10, 100, Types.LONG())


def test_pyflink_module_paths_and_names_exist() -> None:
    import importlib

    for module, names in {
        "ha_flink.datastream.connectors": ["FileSource", "FileSink", "StreamFormat", "OutputFileConfig",
                                           "RollingPolicy", "BucketAssigner", "NumberSequenceSource",
                                           "FileSourceBuilder", "FileEnumeratorProvider",
                                           "FileSplitAssignerProvider", "Source", "Sink", "DataGeneratorSource"],
        "ha_flink.datastream.connectors.file_system": ["FileSource", "FileSink", "StreamFormat", "RollingPolicy",
                                                       "OutputFileConfig", "BucketAssigner", "FileSourceBuilder"],
        "ha_flink.datastream.connectors.number_seq": ["NumberSequenceSource"],
        "ha_flink.datastream.connectors.datagen": ["DataGeneratorSource", "GeneratorFunction", "RateLimiterStrategy"],
    }.items():
        loaded = importlib.import_module(module)
        assert all(hasattr(loaded, name) for name in names), module
