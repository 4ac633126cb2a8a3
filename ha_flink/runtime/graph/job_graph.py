"""The JobGraph: job vertices (chains of operators with one parallelism) joined by edges that carry a
partitioner. Built from transformations without any I/O, so the chaining rules are tested on their own.

Chaining follows Flink: an operator joins its producer's chain when the edge between them is forward,
both have the same parallelism, it has no other input, the producer has no other consumer, and neither
side asked for a new chain. A vertex's operators are pickled once here (cloudpickle), and every subtask
unpickles its own copy, so user functions never share state across subtasks and an unpicklable function
fails at submission, not on a TaskManager."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

import cloudpickle

from ha_flink.runtime.graph.transformations import (
    OneInputTransformation, PartitionTransformation, SideOutputTransformation, SourceTransformation, Transformation,
    TwoInputTransformation,
)
from ha_flink.runtime.key_groups import DEFAULT_MAX_PARALLELISM, KeyHash
from ha_flink.runtime.partitioner import (
    CustomPartitioner, ForwardPartitioner, KeyGroupStreamPartitioner, Partitioner,
    RebalancePartitioner, RescalePartitioner,
)


class JobGraphError(ValueError):
    """The declared job cannot run (no sinks, a forward edge that changes parallelism, ...)."""


@dataclass(eq=False)  # edges are told apart by identity: two may hold equal fields (r.union(r))
class JobEdge:
    """The partitioner is kept pickled, as a vertex's operators are: a key selector or custom partitioner is
    user code, which may import modules only the job's TaskManagers have (python.files), so only a task
    unpickles it, once its Python dependencies are in place; the JobManager reads the plain fields."""

    source: str  # vertex id
    target: str
    partitioner_payload: bytes  # cloudpickle of the Partitioner
    ship_strategy: str  # FORWARD, HASH, REBALANCE, ... (the partitioner's name)
    is_pointwise: bool  # subtask i of the producer feeds only subtask i of the consumer
    source_parallelism: int = 1  # channels per consuming subtask, unless the partitioner is pointwise
    type_number: int = 0  # which input of a two-input operator this edge feeds (0 or 1)
    output_tag: str | None = None  # a side output's OutputTag id; None: the main output
    output_operator: int = -1  # for a side output: the position in the producer's chain of the operator emitting it

    @staticmethod
    def of(source: str, target: str, partitioner: Partitioner, source_parallelism: int = 1, type_number: int = 0,
           output_tag: str | None = None) -> JobEdge:
        return JobEdge(source, target, cloudpickle.dumps(partitioner, protocol=5), repr(partitioner),
                       partitioner.is_pointwise, source_parallelism, type_number, output_tag)

    def instantiate_partitioner(self, key_hash: str = KeyHash.FLINK.value) -> Partitioner:
        """A fresh partitioner for one producing subtask (on its task thread: it may import shipped modules),
        hashing keys by the job's `key_hash`."""
        partitioner: Partitioner = cloudpickle.loads(self.partitioner_payload)
        if isinstance(partitioner, KeyGroupStreamPartitioner):
            partitioner.key_hash = KeyHash(key_hash)
        return partitioner


@dataclass
class JobVertex:
    id: str
    name: str
    parallelism: int
    max_parallelism: int
    operator_names: list[str]
    payload: bytes  # cloudpickle of (source or None, [operators])
    is_source: bool
    inputs: list[JobEdge] = field(default_factory=list)
    outputs: list[JobEdge] = field(default_factory=list)
    uids: list[str | None] = field(default_factory=list)
    state_key: str = ""  # matches this vertex's state in a savepoint: its operators' uids, else names + position

    def instantiate(self) -> tuple[Any, list[Any]]:
        """A fresh (source, operators) pair for one subtask."""
        return cloudpickle.loads(self.payload)


@dataclass
class JobGraph:
    job_id: str
    name: str
    vertices: dict[str, JobVertex]  # in topological order
    runtime_mode: str = "STREAMING"
    config: dict[str, str] = field(default_factory=dict)
    checkpoint_interval_ms: int | None = None
    settings: dict[str, str] = field(default_factory=dict)  # the job's own Flink settings (restart-strategy...)
    savepoint_path: str | None = None  # `flink run -s`: restore this savepoint when there is no checkpoint
    allow_non_restored_state: bool = False
    submission_time: int = 0  # ms; set by the Dispatcher that accepted it
    # runtime/python_artifacts.py PythonDependencies: python.files/requirements/archives, by value; None: none
    python_dependencies: Any = None
    # how keys map to key groups (runtime/key_groups.py): FLINK for a new job; a graph stored without
    # one was built by ha-flink 0.1. A restore adopts the one its snapshot was written with.
    key_hash: str = KeyHash.HA_FLINK_1.value

    def sources(self) -> list[JobVertex]:
        return [v for v in self.vertices.values() if v.is_source]

    def edges(self) -> list[JobEdge]:
        return [edge for vertex in self.vertices.values() for edge in vertex.outputs]

    def describe(self) -> str:
        lines = []
        for vertex in self.vertices.values():
            targets = ", ".join(f"{e.ship_strategy} -> {self.vertices[e.target].name}" for e in vertex.outputs)
            lines.append(f"{vertex.name} (parallelism {vertex.parallelism}){': ' + targets if targets else ''}")
        return "\n".join(lines)


@dataclass
class _Input:
    node: _Node
    partitioner: Partitioner | None
    tag: str | None  # side output of `node`, or None
    type_number: int  # 0, or 1 for the second input of a two-input operator


@dataclass
class _Node:
    transformation: Transformation
    parallelism: int
    max_parallelism: int
    inputs: list[_Input] = field(default_factory=list)
    outputs: list[_Node] = field(default_factory=list)


def build_job_graph(sinks: list[Transformation], *, job_name: str, default_parallelism: int,
                    default_max_parallelism: int = DEFAULT_MAX_PARALLELISM, runtime_mode: str = "STREAMING",
                    job_id: str | None = None, config: dict[str, str] | None = None,
                    checkpoint_interval_ms: int | None = None, settings: dict[str, str] | None = None,
                    chaining: bool = True) -> JobGraph:
    """`chaining=False` (env.disable_operator_chaining()): every operator a vertex of its own."""
    if not sinks:
        raise JobGraphError("No operators defined in streaming topology. Cannot execute. "
                            "(Add a sink, e.g. ds.print(), before execute().)")
    nodes: dict[int, _Node] = {}
    order: list[_Node] = []

    def physical_inputs(t: Transformation, partitioner: Partitioner | None, tag: str | None,
                        type_number: int) -> list[_Input]:
        """Resolve virtual transformations down to the physical producers, with the partitioner and the
        side output on the way."""
        if isinstance(t, PartitionTransformation):
            # The partitioning nearest the consumer wins (key_by after rebalance is a key_by).
            return [p for upstream in t.inputs
                    for p in physical_inputs(upstream, partitioner or t.partitioner, tag, type_number)]
        if isinstance(t, SideOutputTransformation):
            return [p for upstream in t.inputs for p in physical_inputs(upstream, partitioner, t.tag_id, type_number)]
        if t.is_virtual:  # union
            return [p for upstream in t.inputs for p in physical_inputs(upstream, partitioner, tag, type_number)]
        return [_Input(visit(t), partitioner, tag, type_number)]

    def visit(t: Transformation) -> _Node:
        if t.id in nodes:
            return nodes[t.id]
        parallelism = t.parallelism or default_parallelism
        source_limit = getattr(getattr(t, "source", None), "max_parallelism", None)
        if source_limit is not None:
            if t.parallelism is not None and t.parallelism > source_limit:
                raise JobGraphError(f"{t.name} is a non-parallel source; its parallelism cannot be {t.parallelism}")
            parallelism = min(parallelism, source_limit)
        node = _Node(t, parallelism, t.max_parallelism or default_max_parallelism)
        if t.parallelism is None and t.parallelism_of_input and t.inputs:
            first_inputs = physical_inputs(t.inputs[0], None, None, 0)
            if first_inputs:
                node.parallelism = first_inputs[0].node.parallelism
        two_inputs = isinstance(t, TwoInputTransformation)
        node.inputs = [p for number, upstream in enumerate(t.inputs)
                       for p in physical_inputs(upstream, None, None, number if two_inputs else 0)]
        nodes[t.id] = node
        for upstream in node.inputs:
            upstream.node.outputs.append(node)
        order.append(node)
        return node

    for sink in sinks:
        visit(sink)

    chain_of: dict[int, list[_Node]] = {}
    head_of: dict[int, _Node] = {}
    for node in order:  # producers come before consumers
        if chaining and _chainable(node):
            upstream = node.inputs[0].node
            head = head_of[upstream.transformation.id]
            chain_of[head.transformation.id].append(node)
            head_of[node.transformation.id] = head
        else:
            chain_of[node.transformation.id] = [node]
            head_of[node.transformation.id] = node

    vertices: dict[str, JobVertex] = {}
    vertex_of_head: dict[int, JobVertex] = {}
    for node in order:
        if head_of[node.transformation.id] is not node:
            continue
        chain = chain_of[node.transformation.id]
        source = getattr(node.transformation, "source", None)
        operators = [n.transformation.operator for n in chain
                     if isinstance(n.transformation, (OneInputTransformation, TwoInputTransformation))]
        names = [n.transformation.name for n in chain]
        try:
            payload = cloudpickle.dumps((source, operators), protocol=5)
        except Exception as exc:
            raise JobGraphError(f"cannot serialize the functions of {' -> '.join(names)}: {exc}") from exc
        uids = [n.transformation.uid for n in chain]
        state_key = "|".join(uid or name for uid, name in zip(uids, names))
        if any(uid is None for uid in uids):
            state_key += f"#{len(vertices)}"  # no uid: the position in the graph tells operators apart
        vertex = JobVertex(uuid.uuid4().hex, " -> ".join(names), node.parallelism, node.max_parallelism, names,
                           payload, isinstance(node.transformation, SourceTransformation), uids=uids,
                           state_key=state_key)
        vertices[vertex.id] = vertex
        vertex_of_head[node.transformation.id] = vertex

    for node in order:
        head = head_of[node.transformation.id]
        for link in node.inputs:
            if head is not node:
                continue  # a chained input, not an edge
            upstream = link.node
            producer = vertex_of_head[head_of[upstream.transformation.id].transformation.id]
            consumer = vertex_of_head[node.transformation.id]
            edge = JobEdge.of(producer.id, consumer.id,
                              _edge_partitioner(upstream, node, link.partitioner, dict(config or {})),
                              upstream.parallelism, link.type_number, link.tag)
            if link.tag is not None:
                operators_of_chain = [n for n in chain_of[head_of[upstream.transformation.id].transformation.id]
                                      if isinstance(n.transformation, (OneInputTransformation, TwoInputTransformation))]
                edge.output_operator = next(i for i, n in enumerate(operators_of_chain) if n is upstream)
            producer.outputs.append(edge)
            consumer.inputs.append(edge)
    return JobGraph(job_id or uuid.uuid4().hex, job_name, vertices, runtime_mode, dict(config or {}),
                    checkpoint_interval_ms, dict(settings or {}), key_hash=KeyHash.FLINK.value)


def _edge_partitioner(upstream: _Node, node: _Node, partitioner: Partitioner | None,
                      job_parameters: dict[str, str]) -> Partitioner:
    """The partitioner of one edge, completed with what only the graph knows: both parallelisms (rescale's
    ranges), the producer (a custom partitioner's runtime context), the consumer's max parallelism (key
    groups)."""
    if partitioner is None:
        # Flink's default: forward between equal parallelism, else rebalance.
        return ForwardPartitioner() if upstream.parallelism == node.parallelism else RebalancePartitioner()
    if isinstance(partitioner, ForwardPartitioner) and upstream.parallelism != node.parallelism:
        raise JobGraphError(
            f"Forward partitioning does not allow change of parallelism. Upstream operation: "
            f"{upstream.transformation.name} parallelism: {upstream.parallelism}, downstream operation: "
            f"{node.transformation.name} parallelism: {node.parallelism}. You must use another partitioning "
            "strategy, such as rebalance, shuffle or broadcast.")
    if isinstance(partitioner, KeyGroupStreamPartitioner):
        partitioner = KeyGroupStreamPartitioner(partitioner.key_selector, node.max_parallelism, partitioner.key_type)
    elif isinstance(partitioner, RescalePartitioner):
        # Flink's POINTWISE edge: one to one when the parallelisms are equal (is_pointwise); otherwise
        # all-to-all with each producer's selection restricted to its range of consumers.
        partitioner = partitioner.for_edge(upstream.parallelism, node.parallelism)
    elif isinstance(partitioner, CustomPartitioner):
        partitioner = partitioner.for_edge(upstream.transformation.name, upstream.parallelism,
                                           upstream.max_parallelism, job_parameters)
    return partitioner


def _chainable(node: _Node) -> bool:
    if len(node.inputs) != 1 or node.transformation.chaining in ("never", "head") \
            or isinstance(node.transformation, TwoInputTransformation):
        return False
    upstream, partitioner = node.inputs[0].node, node.inputs[0].partitioner
    if node.inputs[0].tag is not None:
        return False  # a side output travels over its own edge
    return (partitioner is None or isinstance(partitioner, ForwardPartitioner)) \
        and upstream.parallelism == node.parallelism \
        and len(upstream.outputs) == 1 \
        and upstream.transformation.chaining != "never"
