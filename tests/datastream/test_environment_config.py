"""`env.get_config()`, `env.get_checkpoint_config()`, `env.configure(...)` and the environment's own
switches, as a PyFlink program uses them: the getters give PyFlink's defaults and what was set, a setter
Flink would refuse raises, and what is set reaches the running job (its JobMaster and job graph)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from ha_flink.common import Configuration, Duration, ExecutionConfig, WatermarkStrategy
from ha_flink.config import ConfigurationError
from ha_flink.datastream import (
    CheckpointConfig, CheckpointingMode, ExternalizedCheckpointRetention, RuntimeExecutionMode,
    StreamExecutionEnvironment,
)
from ha_flink.datastream.connectors.number_seq import RateLimitedNumberSequenceSource
from ha_flink.testing.sinks import CollectSink, read_collected


def test_checkpoint_config_defaults_are_pyflinks() -> None:
    config = StreamExecutionEnvironment.get_execution_environment().get_checkpoint_config()
    assert isinstance(config, CheckpointConfig)
    assert not config.is_checkpointing_enabled() and config.get_checkpoint_interval() == -1
    assert config.get_checkpointing_mode() == CheckpointingMode.EXACTLY_ONCE
    assert config.get_checkpoint_timeout() == 600_000
    assert config.get_min_pause_between_checkpoints() == 0
    assert config.get_max_concurrent_checkpoints() == 1
    assert config.get_tolerable_checkpoint_failure_number() == 0 and config.is_fail_on_checkpointing_errors()
    assert not config.is_unaligned_checkpoints_enabled() and not config.is_force_unaligned_checkpoints()


def test_checkpoint_config_setters_are_read_back_and_refuse_what_flink_refuses() -> None:
    env = StreamExecutionEnvironment.get_execution_environment()
    config = env.get_checkpoint_config()
    config.set_checkpoint_interval(500).set_checkpointing_mode(CheckpointingMode.AT_LEAST_ONCE)
    config.set_checkpoint_timeout(2000).set_min_pause_between_checkpoints(100).set_max_concurrent_checkpoints(2)
    config.set_tolerable_checkpoint_failure_number(3)
    config.set_externalized_checkpoint_retention(ExternalizedCheckpointRetention.RETAIN_ON_CANCELLATION)
    assert (env.get_checkpoint_interval(), env.get_checkpointing_mode()) == (500, CheckpointingMode.AT_LEAST_ONCE)
    assert env.get_checkpoint_config().get_checkpoint_timeout() == 2000  # a second view of the same settings
    assert config.get_min_pause_between_checkpoints() == 100 and config.get_max_concurrent_checkpoints() == 2
    assert config.get_tolerable_checkpoint_failure_number() == 3 and not config.is_fail_on_checkpointing_errors()
    assert config.get_externalized_checkpoint_retention() == ExternalizedCheckpointRetention.RETAIN_ON_CANCELLATION
    assert config.is_externalized_checkpoints_enabled()
    config.set_fail_on_checkpointing_errors(False)
    assert config.get_tolerable_checkpoint_failure_number() == 2147483647
    config.set_aligned_checkpoint_timeout(Duration.of_seconds(3))
    assert config.get_alignment_timeout().to_milliseconds() == 3000
    for bad in (lambda: config.set_checkpoint_interval(5), lambda: config.set_checkpoint_timeout(0),
                lambda: config.set_min_pause_between_checkpoints(-1), lambda: config.set_max_concurrent_checkpoints(0),
                lambda: config.set_tolerable_checkpoint_failure_number(-1)):
        with pytest.raises(ValueError):
            bad()
    assert env.get_checkpoint_interval() == 500  # a refused value changed nothing


def test_checkpoint_settings_reach_the_running_job(tmp_path: Path) -> None:
    env = StreamExecutionEnvironment.get_execution_environment()
    config = env.get_checkpoint_config()
    config.set_checkpoint_interval(50)
    config.set_checkpoint_timeout(7000)
    config.set_min_pause_between_checkpoints(20)
    config.set_max_concurrent_checkpoints(2)
    config.set_tolerable_checkpoint_failure_number(4)
    (env.from_source(RateLimitedNumberSequenceSource(1, 2000, records_per_second=4000),
                     WatermarkStrategy.no_watermarks(), "numbers").add_sink(CollectSink(tmp_path)))
    client = env.execute_async()
    client.get_job_execution_result().result(60)
    coordinator = client.mini_cluster.job_master(client.get_job_id()).coordinator
    assert coordinator is not None and coordinator.interval_s == 0.05 and coordinator.timeout_s == 7.0
    tracker = coordinator.tracker
    assert (tracker.min_pause_s, tracker.max_concurrent, tracker.tolerable_failures) == (0.02, 2, 4)
    assert coordinator.stats.completed >= 1
    assert sorted(read_collected(tmp_path)) == list(range(1, 2001))


def test_execution_config_is_the_environments() -> None:
    env = StreamExecutionEnvironment.get_execution_environment()
    config = env.get_config()
    assert isinstance(config, ExecutionConfig) and config == env.get_config()
    config.set_parallelism(3).set_max_parallelism(64).set_global_job_parameters({"a": 1})
    assert (env.get_parallelism(), env.get_max_parallelism()) == (3, 64)
    assert config.get_global_job_parameters() == {"a": "1"}
    assert config.is_closure_cleaner_enabled() and not config.disable_closure_cleaner().is_closure_cleaner_enabled()
    assert config.get_auto_watermark_interval() == 200
    assert config.set_auto_watermark_interval(50).get_auto_watermark_interval() == 50
    assert not config.is_object_reuse_enabled() and config.enable_object_reuse().is_object_reuse_enabled()
    with pytest.raises(ValueError):
        config.set_max_parallelism(0)


def test_configure_and_the_constructor_configuration_set_what_the_getters_read() -> None:
    configuration = Configuration()
    configuration.set_string("parallelism.default", "4")
    configuration.set_string("execution.checkpointing.interval", "2 s")
    configuration.set_string("pipeline.global-job-parameters", "who:me,what:count")
    env = StreamExecutionEnvironment.get_execution_environment(configuration)
    assert env.get_parallelism() == 4 and env.get_checkpoint_interval() == 2000
    assert env.get_config().get_global_job_parameters() == {"who": "me", "what": "count"}
    later = Configuration()
    later.set_string("execution.runtime-mode", "batch")
    env.configure(later)
    env.from_collection([1, 2]).print()
    assert env.get_job_graph().runtime_mode == "BATCH"
    with pytest.raises(ConfigurationError, match="execution.checkpointing.savepoint-dir"):  # (Flink 2's key)
        env.set_default_savepoint_directory("relative/savepoints")
    assert env.set_default_savepoint_directory("/sp").get_default_savepoint_directory() == "/sp"


def test_disabled_chaining_makes_every_operator_a_task_of_its_own() -> None:
    def graph(chained: bool) -> list[str]:
        env = StreamExecutionEnvironment.get_execution_environment()
        if not chained:
            env.disable_operator_chaining()
        assert env.is_chaining_enabled() == chained
        env.from_collection([1, 2]).map(lambda v: v).filter(lambda v: True).print()
        return [v.name for v in env.get_job_graph().vertices.values()]

    assert len(graph(True)) == 1
    assert len(graph(False)) == 4


def test_buffer_timeout_and_local_parallelism_are_kept() -> None:
    env = StreamExecutionEnvironment.get_execution_environment()
    assert env.get_buffer_timeout() == 100
    assert env.set_buffer_timeout(5).get_buffer_timeout() == 5
    assert env.set_buffer_timeout(-1).get_buffer_timeout() == -1
    with pytest.raises(ValueError):
        env.set_buffer_timeout(-2)
    assert env.set_default_local_parallelism(3).get_default_local_parallelism() == 3
    env.set_runtime_mode(RuntimeExecutionMode.STREAMING)


def test_a_local_run_takes_the_default_local_parallelism_unless_one_was_set(tmp_path: Path) -> None:
    def parallelism(explicit: int | None) -> int:
        env = StreamExecutionEnvironment.get_execution_environment().set_default_local_parallelism(2)
        if explicit is not None:
            env.set_parallelism(explicit)
        env.from_collection([1, 2, 3]).map(lambda v: v).add_sink(CollectSink(tmp_path / str(explicit)))
        client = env.execute_async()
        client.get_job_execution_result().result(60)
        master = client.mini_cluster.job_master(client.get_job_id())
        return max(vertex.parallelism for vertex in master.graph.vertices.values())

    assert parallelism(None) == 2
    assert parallelism(1) == 1


def test_what_ha_flink_does_not_provide_is_said_not_ignored(caplog: pytest.LogCaptureFixture) -> None:
    env = StreamExecutionEnvironment.get_execution_environment()
    assert env.is_changelog_state_backend_enabled() is None
    with pytest.raises(NotImplementedError, match="changelog state backend"):
        env.enable_changelog_state_backend(True)
    assert env.enable_changelog_state_backend(False).is_changelog_state_backend_enabled() is False
    env.get_checkpoint_config().enable_unaligned_checkpoints()
    env.from_collection([1]).print()
    with caplog.at_level(logging.WARNING):
        env.get_job_graph()
        env._take_job_graph("j")
    assert "unaligned checkpoints" in caplog.text and "not supported" in caplog.text


def test_without_auto_generated_uids_every_operator_needs_one() -> None:
    env = StreamExecutionEnvironment.get_execution_environment()
    env.get_config().disable_auto_generated_uids()
    env.from_collection([1]).uid("src").map(lambda v: v).name("unnamed map").print()
    with pytest.raises(ValueError, match="no UID was set for: .*unnamed map"):
        env.get_job_graph()
