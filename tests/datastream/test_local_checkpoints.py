"""Checkpoints in the local mini cluster: barriers, alignment, snapshots, and restarting from the latest
completed checkpoint with keyed state and source positions restored."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from ha_flink.common import Configuration, WatermarkStrategy
from ha_flink.config import CheckpointingOptions
from ha_flink.datastream import StreamExecutionEnvironment
from ha_flink.datastream.connectors.number_seq import RateLimitedNumberSequenceSource
from ha_flink.runtime.minicluster import JobExecutionError
from ha_flink.testing.functions import FailOnceAt
from ha_flink.testing.sinks import CollectSink, read_collected

N = 6000


def counting_job(out: Path, settings: dict[str, str], fail_at: int | None) -> StreamExecutionEnvironment:
    config = Configuration()
    for key, value in settings.items():
        config.set_string(key, value)
    env = StreamExecutionEnvironment.get_execution_environment(config).set_parallelism(2)
    env.enable_checkpointing(50)
    numbers = env.from_source(RateLimitedNumberSequenceSource(1, N, records_per_second=4000),
                              WatermarkStrategy.no_watermarks(), "numbers")
    if fail_at is not None:
        numbers = numbers.map(FailOnceAt(fail_at))
    (numbers.map(lambda n: (n % 10, 1)).key_by(lambda t: t[0]).reduce(lambda a, b: (a[0], a[1] + b[1]))
        .add_sink(CollectSink(out)))
    return env


def final_counts(out: Path) -> dict[int, int]:
    counts: dict[int, int] = {}
    for key, count in read_collected(out):
        counts[key] = max(counts.get(key, 0), count)
    return counts


def test_checkpoints_complete_while_the_job_runs(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    env = counting_job(tmp_path / "out", {}, None)
    with caplog.at_level(logging.INFO, logger="ha_flink.runtime"):
        client = env.execute_async()
        client.get_job_execution_result().result(60)
    completed = [int(r.getMessage().split()[2]) for r in caplog.records if r.getMessage().startswith("Completed checkpoint")]
    assert len(completed) >= 3
    assert completed == sorted(completed)
    assert final_counts(tmp_path / "out") == {k: N // 10 for k in range(10)}


def test_a_failure_restores_the_latest_checkpoint_and_the_counts_stay_exact(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = {"restart-strategy.type": "fixed-delay", "restart-strategy.fixed-delay.attempts": "2",
                "restart-strategy.fixed-delay.delay": "10 ms"}
    env = counting_job(tmp_path / "out", settings, fail_at=N * 2 // 3)
    with caplog.at_level(logging.INFO, logger="ha_flink.runtime"):
        client = env.execute_async()
        client.get_job_execution_result().result(60)
    job_id = client.get_job_id()
    assert client.mini_cluster.job_master(job_id).num_restarts == 1  # keyed: one region, the whole job restarted
    restored = client.mini_cluster.restored_checkpoint(job_id)
    assert restored is not None and restored >= 1
    assert f"({job_id}) restores checkpoint {restored}" in caplog.text
    # Keyed state came back with the checkpoint and the source resumed after it: every key's final count is
    # exact although the output holds the updates replayed since the checkpoint.
    assert final_counts(tmp_path / "out") == {k: N // 10 for k in range(10)}
    restarted_first = {}
    for key, count in read_collected(tmp_path / "out"):
        restarted_first.setdefault(key, []).append(count)
    # the state was restored, not rebuilt: no key started over from 1 after the restart
    assert all(counts.count(1) == 1 for counts in restarted_first.values())


def test_without_checkpoints_the_default_is_no_restart(tmp_path: Path) -> None:
    env = StreamExecutionEnvironment.get_execution_environment()
    env.from_collection([1, 2, 3]).map(FailOnceAt(2)).add_sink(CollectSink(tmp_path))
    with pytest.raises(JobExecutionError, match="failing once at 2"):
        env.execute()


def test_file_sink_output_is_exactly_once_across_a_restart(tmp_path: Path) -> None:
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "exactly_once_file_job", Path(__file__).resolve().parents[2] / "integration" / "exactly_once_file_job.py")
    job = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(job)  # type: ignore[union-attr]
    config = Configuration()
    config.set_string("restart-strategy.type", "fixed-delay")
    config.set_string("restart-strategy.fixed-delay.delay", "10 ms")
    env = StreamExecutionEnvironment.get_execution_environment(config)
    out = tmp_path / "out"
    job.build(env, str(out), N, 4000, N // 2)
    env.enable_checkpointing(50)
    client = env.execute_async()
    client.get_job_execution_result().result(60)
    assert client.mini_cluster.restored_checkpoint(client.get_job_id()) is not None
    numbers = sorted(int(line) for p in out.iterdir() if p.name.startswith("part-") for line in p.read_text().split())
    assert numbers == list(range(1, N + 1))
    assert not [p for p in out.iterdir() if ".inprogress." in p.name]


def test_at_least_once_mode_checkpoints_without_alignment_and_restores(tmp_path: Path) -> None:
    from ha_flink.datastream import CheckpointingMode

    settings = {"restart-strategy.type": "fixed-delay", "restart-strategy.fixed-delay.delay": "10 ms"}
    env = counting_job(tmp_path / "out", settings, fail_at=N // 2)
    env.enable_checkpointing(50, CheckpointingMode.AT_LEAST_ONCE)
    client = env.execute_async()
    client.get_job_execution_result().result(60)
    master = client.mini_cluster.job_master(client.get_job_id())
    assert master.graph.settings["execution.checkpointing.mode"] == "AT_LEAST_ONCE"
    # what each subtask was deployed with: barriers not aligned
    assert master.config.get(CheckpointingOptions.CHECKPOINTING_MODE) == "AT_LEAST_ONCE"
    assert client.mini_cluster.restored_checkpoint(client.get_job_id()) is not None
    # at least once: nothing is lost (counts may exceed the exact ones, never fall short)
    assert all(count >= N // 10 for count in final_counts(tmp_path / "out").values())
    assert len(final_counts(tmp_path / "out")) == 10
