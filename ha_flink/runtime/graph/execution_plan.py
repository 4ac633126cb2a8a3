"""`env.get_execution_plan()`: the job's stream graph as Flink's JSON plan (StreamGraph's JSONGenerator),
the text Flink's plan visualizer and `flink info` read:

    {"nodes": [{"id": 1, "type": "Source: Collection Source", "pact": "Data Source",
                "contents": "Source: Collection Source", "parallelism": 1},
               {"id": 2, "type": "Map", "pact": "Operator", "contents": "Map", "parallelism": 2,
                "predecessors": [{"id": 1, "ship_strategy": "REBALANCE", "side": "second"}]}, ...]}

One node per physical transformation (operators are not chained in the plan, as in Flink's); virtual ones
(partitioning, side outputs, unions) become the ship strategy of the edges through them. The strategy of an
edge without a partitioner is FORWARD between equal parallelisms, else REBALANCE, as Flink picks."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from ha_flink.runtime.graph.transformations import (
    PartitionTransformation, SourceTransformation, Transformation,
)
from ha_flink.runtime.partitioner import Partitioner


@dataclass(frozen=True)
class _Edge:
    source: Transformation
    partitioner: Partitioner | None


def _physical_inputs(t: Transformation, partitioner: Partitioner | None = None) -> list[_Edge]:
    edges: list[_Edge] = []
    for upstream in t.inputs:
        if isinstance(upstream, PartitionTransformation):
            edges += _physical_inputs(upstream, partitioner or upstream.partitioner)
        elif upstream.is_virtual:
            edges += _physical_inputs(upstream, partitioner)
        else:
            edges.append(_Edge(upstream, partitioner))
    return edges


def execution_plan_json(sinks: list[Transformation], default_parallelism: int) -> str:
    order: list[Transformation] = []
    seen: set[int] = set()

    def visit(t: Transformation) -> None:
        if t.id in seen:
            return
        seen.add(t.id)
        for upstream in t.inputs:
            visit(upstream)
        if not t.is_virtual:
            order.append(t)

    for sink in sinks:
        visit(sink)
    sink_ids = {s.id for s in sinks}
    ids = {t.id: number for number, t in enumerate(order, start=1)}

    def parallelism(t: Transformation) -> int:
        if t.non_parallel:
            return 1
        if t.parallelism is not None:
            return t.parallelism
        if isinstance(t, SourceTransformation):
            limit = getattr(t.source, "max_parallelism", None)
            if limit is not None:
                return min(limit, default_parallelism)
        return default_parallelism

    nodes = []
    for t in order:
        pact = "Data Source" if isinstance(t, SourceTransformation) else "Data Sink" if t.id in sink_ids else "Operator"
        node: dict[str, object] = {"id": ids[t.id], "type": t.name, "pact": pact,
                                   "contents": t.name if not t.description else f"{t.name}: {t.description}",
                                   "parallelism": parallelism(t)}
        predecessors = []
        for edge in _physical_inputs(t):
            if edge.partitioner is not None:
                strategy = edge.partitioner.name.upper()
            else:
                strategy = "FORWARD" if parallelism(edge.source) == parallelism(t) else "REBALANCE"
            predecessors.append({"id": ids[edge.source.id], "ship_strategy": strategy, "side": "second"})
        if predecessors:
            node["predecessors"] = predecessors
        nodes.append(node)
    return jackson_pretty({"nodes": nodes})


def jackson_pretty(value: Any, depth: int = 0) -> str:
    """JSON as Jackson's DefaultPrettyPrinter writes it (what Flink's getExecutionPlan and `flink info` print):
    `"key" : value`, each object field on its own line indented by two spaces per enclosing object, arrays
    inline (`[ {`, `}, {`, `} ]`), empty ones as `{ }` and `[ ]`."""
    if isinstance(value, dict):
        if not value:
            return "{ }"
        inner = "  " * (depth + 1)
        fields = ",\n".join(f"{inner}{json.dumps(str(k), ensure_ascii=False)} : {jackson_pretty(v, depth + 1)}"
                            for k, v in value.items())
        return "{\n" + fields + "\n" + "  " * depth + "}"
    if isinstance(value, (list, tuple)):
        if not value:
            return "[ ]"
        return "[ " + ", ".join(jackson_pretty(item, depth) for item in value) + " ]"
    return json.dumps(value, ensure_ascii=False)
