"""Failover strategies: which subtasks restart when one fails.

Pipelined regions are the connected components of the pipelined data flow between subtasks: a forward
edge joins subtask i of the producer with subtask i of the consumer; any all-to-all edge (hash, rebalance,
shuffle, broadcast) joins every producer subtask with every consumer subtask. So each parallel lane of an
all-forward job is its own region, and a job with a key_by is one region. `full` restarts everything;
`region` restarts the failed subtask's region and, transitively, every region consuming from it."""

from __future__ import annotations

from ha_flink.runtime.graph.job_graph import JobGraph

Execution = tuple[str, int]  # (vertex id, subtask index)


def pipelined_regions(graph: JobGraph) -> list[frozenset[Execution]]:
    parent: dict[Execution, Execution] = {}

    def find(x: Execution) -> Execution:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    def union(a: Execution, b: Execution) -> None:
        root_a, root_b = find(a), find(b)
        if root_a != root_b:
            parent[root_b] = root_a

    for vertex in graph.vertices.values():
        for index in range(vertex.parallelism):
            parent[(vertex.id, index)] = (vertex.id, index)
    for edge in graph.edges():
        producer, consumer = graph.vertices[edge.source], graph.vertices[edge.target]
        if edge.is_pointwise:
            for index in range(min(producer.parallelism, consumer.parallelism)):
                union((producer.id, index), (consumer.id, index))
        else:
            anchor = (producer.id, 0)
            for index in range(producer.parallelism):
                union(anchor, (producer.id, index))
            for index in range(consumer.parallelism):
                union(anchor, (consumer.id, index))
    regions: dict[Execution, set[Execution]] = {}
    for execution in parent:
        regions.setdefault(find(execution), set()).add(execution)
    return sorted((frozenset(r) for r in regions.values()), key=lambda r: sorted(r))


def tasks_to_restart(strategy: str, graph: JobGraph, failed: Execution) -> set[Execution]:
    """The subtasks to restart after `failed` failed, under `full` or `region` failover."""
    everything = {(v.id, i) for v in graph.vertices.values() for i in range(v.parallelism)}
    if strategy == "full":
        return everything
    if strategy != "region":
        raise ValueError(f"unknown failover strategy {strategy!r}; accepted: full, region")
    regions = pipelined_regions(graph)
    region_of = {execution: region for region in regions for execution in region}
    consumers: dict[Execution, set[Execution]] = {}
    for edge in graph.edges():
        producer, consumer_vertex = graph.vertices[edge.source], graph.vertices[edge.target]
        for p in range(producer.parallelism):
            targets = [p] if edge.is_pointwise else range(consumer_vertex.parallelism)
            consumers.setdefault((producer.id, p), set()).update((consumer_vertex.id, c) for c in targets)
    restart: set[Execution] = set()
    pending = [region_of[failed]]
    while pending:
        region = pending.pop()
        if region <= restart:
            continue
        restart |= region
        for execution in region:
            for consumer in consumers.get(execution, ()):
                if consumer not in restart:
                    pending.append(region_of[consumer])
    return restart
