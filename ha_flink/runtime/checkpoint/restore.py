"""From a completed checkpoint's task snapshots to what each new subtask restores (pure code).

Sources: the remaining splits of all old source subtasks are pooled and dealt round-robin to the new ones
(so a source can be restored at another parallelism); a source that is not replayable (a Python
SourceFunction) starts over. Operators: every old subtask's state of the operator is handed over, and
each new subtask keeps the key groups it owns (keyed state and timers), which is rescaling by key group."""

from __future__ import annotations

import pickle
from typing import Any

from ha_flink.runtime.graph.job_graph import JobGraph


def restored_states(graph: JobGraph, snapshots: dict[tuple[str, int], bytes]) -> dict[tuple[str, int], dict[str, Any]]:
    """`snapshots`: (vertex id, old subtask) -> TaskSnapshot.data. Returns (vertex id, new subtask) ->
    {"source": splits or None, "operators": [[state of each old subtask] per chained operator]}."""
    decoded: dict[str, list[dict[str, Any]]] = {}
    for (vertex_id, subtask), data in sorted(snapshots.items()):
        decoded.setdefault(vertex_id, []).append(pickle.loads(data))
    result: dict[tuple[str, int], dict[str, Any]] = {}
    for vertex in graph.vertices.values():
        old = decoded.get(vertex.id)
        if old is None:
            raise KeyError(f"the checkpoint has no state for {vertex.name} ({vertex.id}); was the job changed?")
        sources = [s["source"] for s in old]
        pooled = None if any(s is None for s in sources) else [split for s in sources for split in s]
        operators = [[s["operators"][k] for s in old] for k in range(len(old[0]["operators"]))]
        for index in range(vertex.parallelism):
            source = None if pooled is None else pooled[index::vertex.parallelism]
            result[(vertex.id, index)] = {"source": source, "operators": operators}
    return result
