"""Building JobGraphs from declared streams: chaining, partitioners, parallelism rules (no execution)."""

from __future__ import annotations

import pytest

from ha_flink.datastream import StreamExecutionEnvironment
from ha_flink.runtime.graph.job_graph import JobGraphError


def vertices(env: StreamExecutionEnvironment) -> list[tuple[str, int, list[str]]]:
    graph = env.get_job_graph()
    return [(v.name, v.parallelism, [e.ship_strategy for e in v.outputs]) for v in graph.vertices.values()]


def test_forward_operators_of_equal_parallelism_chain_and_key_by_cuts_the_chain() -> None:
    env = StreamExecutionEnvironment.get_execution_environment().set_parallelism(2)
    env.from_collection([1]).map(str).filter(bool).key_by(len).reduce(max).print()
    assert vertices(env) == [
        ("Source: Collection Source", 1, ["REBALANCE"]),
        ("Map -> Filter", 2, ["HASH"]),
        ("Keyed Reduce -> Sink: Print to Std. Out", 2, []),
    ]


def test_disable_chaining_and_start_new_chain() -> None:
    env = StreamExecutionEnvironment.get_execution_environment()
    env.from_collection([1]).map(str).disable_chaining().map(str).map(str).start_new_chain().print()
    assert [name for name, _, _ in vertices(env)] == [
        "Source: Collection Source", "Map", "Map", "Map -> Sink: Print to Std. Out"]


def test_an_operator_with_two_consumers_ends_its_chain() -> None:
    env = StreamExecutionEnvironment.get_execution_environment()
    mapped = env.from_collection([1]).map(str)
    mapped.print()
    mapped.filter(bool).print()
    assert [name for name, _, _ in vertices(env)] == [
        "Source: Collection Source -> Map", "Sink: Print to Std. Out", "Filter -> Sink: Print to Std. Out"]


def test_explicit_partitioning_is_kept() -> None:
    env = StreamExecutionEnvironment.get_execution_environment().set_parallelism(2)
    stream = env.from_collection([1]).set_parallelism(1)
    stream.rebalance().map(str).shuffle().map(str).broadcast().map(str).print()
    assert [outs for _, _, outs in vertices(env)] == [["REBALANCE"], ["SHUFFLE"], ["BROADCAST"], []]


def test_forward_across_a_parallelism_change_is_refused() -> None:
    env = StreamExecutionEnvironment.get_execution_environment().set_parallelism(2)
    env.from_collection([1]).map(str).set_parallelism(1).forward().map(str).print()
    with pytest.raises(JobGraphError, match="Forward partitioning does not allow change of parallelism"):
        env.get_job_graph()


def test_a_job_without_sinks_is_refused() -> None:
    env = StreamExecutionEnvironment.get_execution_environment()
    env.from_collection([1]).map(str)
    with pytest.raises(JobGraphError, match="No operators defined in streaming topology"):
        env.execute()


def test_a_collection_source_cannot_run_in_parallel() -> None:
    env = StreamExecutionEnvironment.get_execution_environment()
    env.from_collection([1]).set_parallelism(3).print()
    with pytest.raises(JobGraphError, match="non-parallel source; its parallelism cannot be 3"):
        env.get_job_graph()


def test_an_unpicklable_function_fails_at_submission() -> None:
    import threading

    lock = threading.Lock()
    env = StreamExecutionEnvironment.get_execution_environment()
    env.from_collection([1]).map(lambda x: (lock, x)).print()
    with pytest.raises(JobGraphError, match="cannot serialize the functions of Source: Collection Source -> Map"):
        env.get_job_graph()


def test_union_and_rekeying() -> None:
    env = StreamExecutionEnvironment.get_execution_environment().set_parallelism(2)
    a = env.from_collection([1])
    b = env.from_collection([2])
    a.union(b).key_by(str).key_by(int).reduce(max).print()
    graph = env.get_job_graph()
    reduce_vertex = next(v for v in graph.vertices.values() if v.name.startswith("Keyed Reduce"))
    assert [e.ship_strategy for e in reduce_vertex.inputs] == ["HASH", "HASH"]
