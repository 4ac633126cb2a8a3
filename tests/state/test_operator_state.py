"""Operator state (CheckpointedFunction): redistribution after a restore, as pure code, and a counting
function whose per-subtask operator state survives a restart of the local mini cluster exactly."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from ha_flink.common import Configuration, WatermarkStrategy
from ha_flink.datastream import CheckpointedFunction, MapFunction, StreamExecutionEnvironment
from ha_flink.datastream.connectors.number_seq import RateLimitedNumberSequenceSource
from ha_flink.datastream.state import ListStateDescriptor, MapStateDescriptor
from ha_flink.runtime.state.operator_state import OperatorStateBackend
from ha_flink.testing.functions import FailOnceAt
from ha_flink.testing.sinks import CollectSink, read_collected


def old_snapshots(parallelism: int) -> list[dict]:
    """Each old subtask i kept list [i*10 .. i*10+2], union ["u<i>"] and broadcast {"rule": 1}."""
    snapshots = []
    for i in range(parallelism):
        backend = OperatorStateBackend(i, parallelism)
        backend.get_list_state(ListStateDescriptor("offsets")).add_all([i * 10, i * 10 + 1, i * 10 + 2])
        backend.get_union_list_state(ListStateDescriptor("seen")).add(f"u{i}")
        backend.get_broadcast_state(MapStateDescriptor("rules")).put("rule", 1)
        snapshots.append(backend.snapshot())
    return snapshots


def restored(snapshots: list[dict], index: int, parallelism: int) -> OperatorStateBackend:
    backend = OperatorStateBackend(index, parallelism)
    backend.restore(snapshots)
    return backend


def test_unchanged_parallelism_gives_each_subtask_its_own_list_and_everyone_the_union() -> None:
    snapshots = old_snapshots(2)
    for index in range(2):
        backend = restored(snapshots, index, 2)
        assert backend.get_list_state(ListStateDescriptor("offsets")).get() == [index * 10 + k for k in range(3)]
        assert backend.get_union_list_state(ListStateDescriptor("seen")).get() == ["u0", "u1"]
        assert dict(backend.get_broadcast_state(MapStateDescriptor("rules")).items()) == {"rule": 1}


@pytest.mark.parametrize(("old", "new"), [(2, 3), (3, 2), (4, 1)])
def test_rescaling_deals_list_elements_out_exactly_once(old: int, new: int) -> None:
    snapshots = old_snapshots(old)
    backends = [restored(snapshots, index, new) for index in range(new)]
    dealt = [v for b in backends for v in b.get_list_state(ListStateDescriptor("offsets")).get()]
    assert sorted(dealt) == sorted(i * 10 + k for i in range(old) for k in range(3))
    sizes = [len(b.get_list_state(ListStateDescriptor("offsets")).get()) for b in backends]
    assert max(sizes) - min(sizes) <= 1  # even split
    for backend in backends:
        assert backend.get_union_list_state(ListStateDescriptor("seen")).get() == [f"u{i}" for i in range(old)]
        assert backend.get_broadcast_state(MapStateDescriptor("rules")).get("rule") == 1


def test_union_and_broadcast_state_make_a_restore_read_every_subtask() -> None:
    plain = OperatorStateBackend(0, 2)
    plain.get_list_state(ListStateDescriptor("offsets")).add(1)
    assert not OperatorStateBackend.needs_all_on_restore(plain.snapshot())
    assert all(OperatorStateBackend.needs_all_on_restore(s) for s in old_snapshots(2))


def test_one_name_cannot_be_two_kinds_of_operator_state() -> None:
    backend = OperatorStateBackend(0, 1)
    backend.get_list_state(ListStateDescriptor("s"))
    with pytest.raises(ValueError, match="'s' is already registered"):
        backend.get_union_list_state(ListStateDescriptor("s"))
    with pytest.raises(ValueError, match="'s' is already registered as a list state"):
        backend.get_broadcast_state(MapStateDescriptor("s"))


class CountingMap(MapFunction, CheckpointedFunction):
    """Counts the records of its subtask in operator list state; emits (subtask, running count)."""

    def initialize_state(self, context):
        self.state = context.get_operator_state_store().get_list_state(ListStateDescriptor("count"))
        self.count = sum(self.state.get())
        self.restored = context.is_restored()

    def open(self, runtime_context):
        self.subtask = runtime_context.get_index_of_this_subtask()

    def snapshot_state(self, context):
        self.state.update([self.count])

    def map(self, value):
        self.count += 1
        return (self.subtask, self.count)


def test_a_checkpointed_function_restores_its_operator_state_exactly(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    n = 6000
    config = Configuration()
    config.set_string("restart-strategy.type", "fixed-delay")
    config.set_string("restart-strategy.fixed-delay.delay", "10 ms")
    env = StreamExecutionEnvironment.get_execution_environment(config).set_parallelism(2)
    env.enable_checkpointing(50)
    (env.from_source(RateLimitedNumberSequenceSource(1, n, records_per_second=4000),
                     WatermarkStrategy.no_watermarks(), "numbers")
        .map(FailOnceAt(n // 2)).map(CountingMap()).add_sink(CollectSink(tmp_path)))
    with caplog.at_level(logging.INFO, logger="ha_flink.runtime"):
        client = env.execute_async()
        client.get_job_execution_result().result(60)
    assert client.mini_cluster.restored_checkpoint(client.get_job_id()) is not None
    finals: dict[int, int] = {}
    ones = 0
    for subtask, count in read_collected(tmp_path):
        finals[subtask] = max(finals.get(subtask, 0), count)
        ones += count == 1
    assert sum(finals.values()) == n  # every record counted once, across the restart
    assert ones == 2  # the counts went on from the checkpoint: no subtask started over at 1
