"""A local run (`env.execute()` without a cluster) is the cluster's own runtime in one process: the real
Dispatcher, JobMaster and TaskExecutor (runtime/minicluster.py). So a local run has what `flink run` has:
region failover, checkpoint timeouts, tolerable checkpoint failures."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from ha_flink.common import Configuration, WatermarkStrategy
from ha_flink.config import Configuration as ClusterConfiguration
from ha_flink.datastream import StreamExecutionEnvironment
from ha_flink.datastream.connectors.number_seq import RateLimitedNumberSequenceSource
from ha_flink.datastream.functions import CheckpointedFunction, MapFunction, RuntimeContext
from ha_flink.runtime.minicluster import MiniCluster
from ha_flink.testing.functions import FailOnceAt
from ha_flink.testing.sinks import CollectSink, read_collected

N = 4000


def configured(**settings: str) -> Configuration:
    config = Configuration()
    for key, value in {"restart-strategy.type": "fixed-delay", "restart-strategy.fixed-delay.delay": "10 ms",
                       **settings}.items():
        config.set_string(key, value)
    return config


def test_a_local_run_restarts_only_the_failed_region(tmp_path: Path) -> None:
    # two subtasks joined by forward edges only: two pipelined regions, each its own failover unit
    env = StreamExecutionEnvironment.get_execution_environment(configured()).set_parallelism(2)
    env.enable_checkpointing(50)
    (env.from_source(RateLimitedNumberSequenceSource(1, N, records_per_second=4000),
                     WatermarkStrategy.no_watermarks(), "numbers")
        .map(FailOnceAt(N // 2)).add_sink(CollectSink(tmp_path)))
    client = env.execute_async()
    client.get_job_execution_result().result(60)
    master = client.mini_cluster.job_master(client.get_job_id())
    assert master.num_restarts == 1 and master.attempt == 0  # no restart of the whole job
    attempts = sorted(master.attempts.values())
    assert attempts == [0, 1]  # one subtask (of the one chained vertex) came back, the other ran on
    assert sorted(set(read_collected(tmp_path))) == list(range(1, N + 1))  # nothing lost


class SlowFirstSnapshots(MapFunction, CheckpointedFunction):
    """Its snapshots take longer than the checkpoint timeout on the first attempt only."""

    def open(self, runtime_context: RuntimeContext) -> None:
        self.attempt = runtime_context.get_attempt_number()

    def map(self, value: Any) -> Any:
        return value

    def initialize_state(self, context: Any) -> None:
        pass

    def snapshot_state(self, context: Any) -> None:
        if self.attempt == 0:
            time.sleep(0.4)


def test_a_local_run_expires_checkpoints_and_fails_over_past_the_tolerable_failures(tmp_path: Path) -> None:
    config = configured(**{"execution.checkpointing.timeout": "100 ms",
                           "execution.checkpointing.tolerable-failed-checkpoints": "1"})
    env = StreamExecutionEnvironment.get_execution_environment(config).set_parallelism(1)
    env.enable_checkpointing(50)
    (env.from_source(RateLimitedNumberSequenceSource(1, N, records_per_second=2000),
                     WatermarkStrategy.no_watermarks(), "numbers")
        .map(SlowFirstSnapshots()).add_sink(CollectSink(tmp_path)))
    client = env.execute_async()
    client.get_job_execution_result().result(60)
    master = client.mini_cluster.job_master(client.get_job_id())
    causes = [entry.stacktrace for entry in master.exceptions]
    assert any("Exceeded checkpoint tolerable failure threshold" in cause and "expired after 0.1 s" in cause
               for cause in causes), causes
    assert master.num_restarts >= 1
    assert master.coordinator is not None and master.coordinator.stats.failed >= 2  # the tolerated one too
    assert sorted(set(read_collected(tmp_path))) == list(range(1, N + 1))


def test_a_mini_cluster_runs_several_jobs_and_stops_with_its_threads(tmp_path: Path) -> None:
    import threading

    before = {t.ident for t in threading.enumerate()}
    with MiniCluster(ClusterConfiguration(), task_managers=2, slots=1) as cluster:
        ids = []
        for name in ("first", "second"):
            env = StreamExecutionEnvironment.get_execution_environment().set_parallelism(2)
            env.from_collection(list(range(100))).map(lambda x: x * 2).add_sink(CollectSink(tmp_path / name))
            ids.append(cluster.submit(env.get_job_graph(name)))
        for job_id in ids:
            cluster.wait(job_id, 60)
        # p=2 on two TaskManagers of one slot each: the subtasks of a job ran on both, exchanging over gRPC
        assert len(cluster.dispatcher.rm.task_managers) == 2
    for name in ("first", "second"):
        assert sorted(read_collected(tmp_path / name)) == [2 * x for x in range(100)]
    left = [t for t in threading.enumerate() if t.ident not in before and t.is_alive()]
    assert not [t for t in left if t.name == "mini-cluster"], left
