"""From a completed checkpoint's task snapshots to what each new subtask restores (pure code).

Sources: the remaining splits of all old source subtasks are pooled and dealt round-robin to the new ones
(so a source can be restored at another parallelism); a source that is not replayable (a Python
SourceFunction) starts over. Operators: every old subtask's state of the operator is handed over, and
each new subtask keeps the key groups it owns (keyed state and timers), which is rescaling by key group."""

from __future__ import annotations

import pickle
from typing import Any

from ha_flink.runtime.graph.job_graph import JobGraph


def restored_states(graph: JobGraph, snapshots: dict[tuple[str, int], bytes],
                    old_parallelism: dict[str, int] | None = None) -> dict[tuple[str, int], dict[str, Any]]:
    """`snapshots`: (vertex id, old subtask) -> TaskSnapshot.data; subtasks that had finished before the
    checkpoint are absent (nothing left to read, no state to keep). Returns (vertex id, new subtask) ->
    {"source": splits or None, "operators": [[state of each old subtask] per chained operator]}."""
    decoded: dict[str, dict[int, dict[str, Any]]] = {}
    for (vertex_id, subtask), data in sorted(snapshots.items()):
        decoded.setdefault(vertex_id, {})[subtask] = pickle.loads(data)
    result: dict[tuple[str, int], dict[str, Any]] = {}
    for vertex in graph.vertices.values():
        old = decoded.get(vertex.id, {})
        states = [old[i] for i in sorted(old)]
        chain_length = len(states[0]["operators"]) if states else len(vertex.operator_names)
        operators = [[s["operators"][k] for s in states] for k in range(chain_length)] if states else None
        same = old_parallelism is not None and old_parallelism.get(vertex.id) == vertex.parallelism
        sources = [s["source"] for s in states]
        replayable = all(s is not None for s in sources)
        pooled = [split for s in sources for split in s] if replayable else None
        for index in range(vertex.parallelism):
            if not replayable:
                source = None  # a source that cannot rewind starts over
            elif same:
                source = old[index]["source"] if index in old else []  # absent: it had finished
            else:
                source = pooled[index::vertex.parallelism]  # rescaled: splits dealt round-robin
            result[(vertex.id, index)] = {"source": source,
                                          "operators": operators or [[] for _ in range(chain_length)]}
    return result
