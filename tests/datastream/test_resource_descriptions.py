"""Slot sharing groups, memory sizes, state backend and checkpoint storage descriptions, as PyFlink's; what
ha-flink cannot grant is said in a warning, what it can is applied through the configuration."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from ha_flink.datastream import (
    EmbeddedRocksDBStateBackend, FileSystemCheckpointStorage, HashMapStateBackend, JobManagerCheckpointStorage,
    MemorySize, PredefinedOptions, SlotSharingGroup, StreamExecutionEnvironment,
)
from ha_flink.datastream.time_domain import TimeDomain
from ha_flink.datastream.timerservice import TimerService
from ha_flink.testing.sinks import CollectSink, read_collected


def test_memory_size_units_order_and_java_text() -> None:
    size = MemorySize.of_mebi_bytes(3)
    assert (size.get_bytes(), size.get_kibi_bytes(), size.get_mebi_bytes(), size.get_gibi_bytes()) == (
        3 << 20, 3 << 10, 3, 0)
    assert str(size) == "3 mb" and str(MemorySize(bytes_size=1536)) == "1536 bytes"
    assert str(MemorySize(bytes_size=2048)) == "2 kb"
    assert MemorySize(bytes_size=10) < size <= MemorySize.of_mebi_bytes(3)
    with pytest.raises(Exception, match="non-MemorySize"):
        _ = size < 5  # type: ignore[operator]


def test_slot_sharing_group_builder_as_flinks() -> None:
    group = (SlotSharingGroup.builder("heavy").set_cpu_cores(1.5).set_task_heap_memory_mb(100)
             .set_managed_memory(MemorySize.of_mebi_bytes(50)).set_external_resource("gpu", 1.0).build())
    assert group.get_name() == "heavy" and group.get_cpu_cores() == 1.5
    assert group.get_task_heap_memory() == MemorySize.of_mebi_bytes(100)
    assert group.get_managed_memory() == MemorySize.of_mebi_bytes(50) and group.get_task_off_heap_memory() is None
    assert group.get_external_resources() == {"gpu": 1.0}
    with pytest.raises(ValueError, match="cpu cores and task heap memory are required"):
        SlotSharingGroup.builder("half").set_cpu_cores(1).build()
    assert not SlotSharingGroup.builder("plain").build().has_resources()


def test_a_group_asking_for_resources_is_named_at_submission(tmp_path: Path,
                                                              caplog: pytest.LogCaptureFixture) -> None:
    env = StreamExecutionEnvironment.get_execution_environment().set_parallelism(1)
    heavy = SlotSharingGroup.builder("heavy").set_cpu_cores(2).set_task_heap_memory_mb(64).build()
    env.from_collection([1, 2]).map(lambda v: v + 1).slot_sharing_group(heavy) \
        .add_sink(CollectSink(tmp_path)).slot_sharing_group("plain")
    with caplog.at_level(logging.WARNING):
        env.execute("grouped")
    assert sorted(read_collected(tmp_path)) == [2, 3]  # it runs, in the job's shared slots
    warnings = [r.getMessage() for r in caplog.records if "slot sharing group" in r.getMessage()]
    assert len(warnings) == 1 and "'heavy'" in warnings[0] and "cpu 2" in warnings[0]


def test_state_backends_select_themselves_through_the_configuration(tmp_path: Path) -> None:
    rocks = EmbeddedRocksDBStateBackend(enable_incremental_checkpointing=True)
    rocks.set_db_storage_paths(str(tmp_path / "db"))
    assert rocks.is_incremental_checkpoints_enabled() and rocks.get_db_storage_paths() == [str(tmp_path / "db")]
    assert rocks.get_predefined_options() is PredefinedOptions.DEFAULT
    with pytest.raises(TypeError, match="enable_incremental_checkpointing"):
        EmbeddedRocksDBStateBackend(enable_incremental_checkpointing="yes")  # type: ignore[arg-type]
    with pytest.raises(NotImplementedError, match="Java class"):
        rocks.set_options("org.example.MyOptionsFactory")
    env = StreamExecutionEnvironment.get_execution_environment().set_parallelism(1)
    env.configure(rocks.to_configuration())
    env.from_collection([("a", 1), ("a", 2), ("b", 5)]).key_by(lambda t: t[0]) \
        .reduce(lambda x, y: (x[0], x[1] + y[1])).add_sink(CollectSink(tmp_path / "out"))
    settings = env.get_job_graph().settings
    assert settings["state.backend.type"] == "rocksdb" and settings["execution.checkpointing.incremental"] == "true"
    env.execute()
    assert sorted(read_collected(tmp_path / "out")) == [("a", 1), ("a", 3), ("b", 5)]
    assert (tmp_path / "db").is_dir()  # the RocksDB instances lived where the backend said (gone with the job)
    assert HashMapStateBackend().to_configuration().to_dict() == {"state.backend.type": "hashmap"}


def test_checkpoint_storages(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    files = FileSystemCheckpointStorage(str(tmp_path))
    assert files.get_checkpoint_path() == str(tmp_path) and files.get_min_file_size_threshold() == 1024
    assert files.to_configuration().to_dict() == {"execution.checkpointing.dir": str(tmp_path)}
    with pytest.raises(ValueError, match="must not be None"):
        FileSystemCheckpointStorage()
    with pytest.raises(ValueError, match="maximum size threshold"):
        FileSystemCheckpointStorage(str(tmp_path), FileSystemCheckpointStorage.MAX_FILE_STATE_THRESHOLD + 1)
    with caplog.at_level(logging.WARNING):
        memory = JobManagerCheckpointStorage()
    assert memory.get_max_state_size() == JobManagerCheckpointStorage.DEFAULT_MAX_STATE_SIZE
    assert any("no checkpoint in the JobManager's memory" in r.getMessage() for r in caplog.records)


def test_pyflinks_module_names_for_time_domain_and_timer_service() -> None:
    assert TimeDomain.EVENT_TIME != TimeDomain.PROCESSING_TIME
    assert hasattr(TimerService, "register_event_time_timer")
