"""Pipelined regions and which subtasks restart, computed from real job graphs (no processes)."""

from __future__ import annotations

import pytest

from ha_flink.datastream import StreamExecutionEnvironment
from ha_flink.runtime.graph.job_graph import JobGraph
from ha_flink.runtime.scheduler.failover import pipelined_regions, tasks_to_restart


def graph_of(build) -> JobGraph:  # type: ignore[no-untyped-def]
    env = StreamExecutionEnvironment.get_execution_environment().set_parallelism(2)
    build(env)
    return env.get_job_graph()


def two_lane_forward_job() -> JobGraph:
    from ha_flink.common import WatermarkStrategy
    from ha_flink.datastream.connectors.number_seq import NumberSequenceSource

    return graph_of(lambda env: env.from_source(NumberSequenceSource(1, 10), WatermarkStrategy.no_watermarks(),
                                                "numbers").map(str).disable_chaining().map(str).print())


def test_each_lane_of_an_all_forward_job_is_its_own_region() -> None:
    graph = two_lane_forward_job()
    regions = pipelined_regions(graph)
    assert len(graph.vertices) == 3
    assert len(regions) == 2
    assert [sorted(i for _, i in r) for r in regions] == [[0, 0, 0], [1, 1, 1]]


def test_region_failover_restarts_only_the_failed_lane() -> None:
    graph = two_lane_forward_job()
    middle = list(graph.vertices.values())[1]
    restart = tasks_to_restart("region", graph, (middle.id, 1))
    assert restart == {(v.id, 1) for v in graph.vertices.values()}
    assert tasks_to_restart("full", graph, (middle.id, 1)) == {
        (v.id, i) for v in graph.vertices.values() for i in range(2)}


def test_a_key_by_makes_one_region() -> None:
    graph = graph_of(lambda env: env.from_collection([1]).rebalance().map(str).key_by(len).reduce(max).print())
    assert len(pipelined_regions(graph)) == 1
    any_vertex = next(iter(graph.vertices.values()))
    assert len(tasks_to_restart("region", graph, (any_vertex.id, 0))) == sum(
        v.parallelism for v in graph.vertices.values())


def test_an_unknown_strategy_is_refused() -> None:
    graph = two_lane_forward_job()
    vertex = next(iter(graph.vertices.values()))
    with pytest.raises(ValueError, match="unknown failover strategy 'partial'; accepted: full, region"):
        tasks_to_restart("partial", graph, (vertex.id, 0))
