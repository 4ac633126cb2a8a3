"""`env.get_execution_plan()` is Flink's JSON plan (what Flink's plan visualizer reads), not text."""

from __future__ import annotations

import json
import os

from ha_flink.common import WatermarkStrategy
from ha_flink.datastream import StreamExecutionEnvironment
from ha_flink.datastream.connectors.number_seq import NumberSequenceSource


def test_the_plan_is_flinks_json_with_ship_strategies() -> None:
    env = StreamExecutionEnvironment.get_execution_environment().set_parallelism(2)
    (env.from_collection([1, 2]).map(lambda x: (x, 1)).name("pairs")
        .key_by(lambda t: t[0]).reduce(lambda a, b: a)
        .rebalance().map(lambda x: x).set_parallelism(1)
        .print())
    nodes = json.loads(env.get_execution_plan())["nodes"]
    assert [(n["id"], n["type"], n["pact"], n["parallelism"]) for n in nodes] == [
        (1, "Source: Collection Source", "Data Source", 1),
        (2, "pairs", "Operator", 2),
        (3, "Keyed Reduce", "Operator", 2),
        (4, "Map", "Operator", 1),
        (5, "Sink: Print to Std. Out", "Data Sink", 2),
    ]
    assert "predecessors" not in nodes[0] and all(n["contents"] for n in nodes)
    assert [[(p["id"], p["ship_strategy"], p["side"]) for p in n["predecessors"]] for n in nodes[1:]] == [
        [(1, "REBALANCE", "second")], [(2, "HASH", "second")], [(3, "REBALANCE", "second")],
        [(4, "REBALANCE", "second")]]


def test_forward_unions_and_broadcast_edges() -> None:
    env = StreamExecutionEnvironment.get_execution_environment().set_parallelism(1)
    numbers = env.from_source(NumberSequenceSource(1, 10), WatermarkStrategy.no_watermarks(), "numbers")
    words = env.from_collection(["a"])
    numbers.map(str).union(words.broadcast()).print()
    nodes = {n["type"]: n for n in json.loads(env.get_execution_plan())["nodes"]}
    sink = nodes["Sink: Print to Std. Out"]
    strategies = sorted(p["ship_strategy"] for p in sink["predecessors"])
    assert strategies == ["BROADCAST", "FORWARD"]  # (the union itself is no node: its inputs feed the sink)
    assert nodes["Map"]["predecessors"][0]["ship_strategy"] == "FORWARD"


def test_unset_parallelism_is_the_local_default_in_the_plan_too() -> None:
    env = StreamExecutionEnvironment.get_execution_environment()
    env.from_collection([1]).map(str).print()
    assert env.get_parallelism() == (os.cpu_count() or 1)
    nodes = json.loads(env.get_execution_plan())["nodes"]
    assert [n["parallelism"] for n in nodes] == [1, env.get_parallelism(), env.get_parallelism()]
    env.set_default_local_parallelism(3)
    assert [n["parallelism"] for n in json.loads(env.get_execution_plan())["nodes"]] == [1, 3, 3]


def test_the_plan_is_laid_out_as_flinks_json_generator_prints_it() -> None:
    """Jackson's pretty printer, as `flink info` and PyFlink's get_execution_plan() print it: `"key" : value`,
    arrays inline (`[ {`, `}, {`, `} ]`). (The layout of PyFlink 2.3's own plan for this program, printed by
    Flink's `bin/flink info -py`; PyFlink's node ids and its merged "Map, Map" Python operator differ.)"""
    env = StreamExecutionEnvironment.get_execution_environment().set_parallelism(1)
    env.from_collection([1, 2, 3]).map(lambda x: x + 1).print()
    assert env.get_execution_plan() == """{
  "nodes" : [ {
    "id" : 1,
    "type" : "Source: Collection Source",
    "pact" : "Data Source",
    "contents" : "Source: Collection Source",
    "parallelism" : 1
  }, {
    "id" : 2,
    "type" : "Map",
    "pact" : "Operator",
    "contents" : "Map",
    "parallelism" : 1,
    "predecessors" : [ {
      "id" : 1,
      "ship_strategy" : "FORWARD",
      "side" : "second"
    } ]
  }, {
    "id" : 3,
    "type" : "Sink: Print to Std. Out",
    "pact" : "Data Sink",
    "contents" : "Sink: Print to Std. Out",
    "parallelism" : 1,
    "predecessors" : [ {
      "id" : 2,
      "ship_strategy" : "FORWARD",
      "side" : "second"
    } ]
  } ]
}"""
