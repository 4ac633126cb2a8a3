"""From a completed checkpoint to what each new subtask restores, in two steps (pure code):

1. `plan_restore` (where the checkpoint is known: the JobMaster, or the local mini cluster) decides which
   old subtasks' snapshots each new subtask needs: with unchanged parallelism only its own (a finished
   subtask has none: nothing left to read); with another parallelism, or when the vertex has union or
   broadcast operator state, all of the vertex's (splits are pooled and dealt round-robin, keyed state is
   taken by key group, operator state redistributed by its mode). A vertex the snapshot holds no state
   for (an operator added since the savepoint) gets no plan: it starts fresh.
2. `materialize` (where the subtask runs: the TaskManager reads the files itself) turns the snapshots
   into the task's restored state: {"source": splits or None, "operators": [[state...] per operator]}.
   A state file that is gone, truncated or altered is a `CheckpointStateDamagedError` naming it (the
   JobMaster then restores an older checkpoint); one that cannot be reached now, its StorageError.

A source that is not replayable (a Python SourceFunction) starts over."""

from __future__ import annotations

import pickle
from dataclasses import dataclass
from typing import Any, Callable

from ha_flink.fs import StorageError, is_damage, unseal
from ha_flink.runtime.graph.job_graph import JobGraph


class CheckpointRestoreError(RuntimeError):
    """A checkpoint (or a savepoint) cannot be restored now: names the file."""


class CheckpointDamagedError(CheckpointRestoreError):
    """A checkpoint's `_metadata` or one of its state files is gone, truncated or altered: restoring it will
    never work, so an older retained checkpoint is restored instead."""


class CheckpointStateDamagedError(CheckpointDamagedError):
    """A state file a subtask needs is gone, truncated or altered (raised where the subtask is deployed)."""


@dataclass(frozen=True)
class RestorePlan:
    index: int  # the new subtask
    parallelism: int  # the new parallelism
    rescaled: bool
    refs: dict[int, Any]  # old subtask -> its snapshot (a URL to read, or the bytes themselves)
    chain_length: int


def plan_restore(graph: JobGraph, tasks: dict[tuple[str, int], Any], old_parallelism: dict[str, int] | None,
                 restore_from_all: set[str] | frozenset[str] = frozenset()) -> dict[tuple[str, int], RestorePlan]:
    plans = {}
    for vertex in graph.vertices.values():
        if old_parallelism is not None and vertex.id not in old_parallelism:
            continue  # an operator the snapshot has no state for (added since): it starts fresh, as in Flink
        refs = {subtask: ref for (vertex_id, subtask), ref in tasks.items() if vertex_id == vertex.id}
        rescaled = old_parallelism is None or old_parallelism.get(vertex.id) != vertex.parallelism
        every = rescaled or vertex.id in restore_from_all
        for index in range(vertex.parallelism):
            mine = refs if every else {i: r for i, r in refs.items() if i == index}
            plans[(vertex.id, index)] = RestorePlan(index, vertex.parallelism, rescaled, mine,
                                                    len(vertex.operator_names))
    return plans


def _snapshot(ref: Any, load: Callable[[Any], bytes], subtask: int) -> Any:
    """One old subtask's snapshot: read, checked against its seal, unpickled; damage names the file."""
    name = ref if isinstance(ref, str) else f"the in-memory snapshot of old subtask {subtask}"
    try:
        data = load(ref)
    except StorageError as error:
        if is_damage(error):
            raise CheckpointStateDamagedError(f"the state file {name} of old subtask {subtask} cannot be "
                                              f"restored: {error.reason}") from None
        raise
    try:
        return pickle.loads(unseal(data, name))
    except StorageError as error:
        raise CheckpointStateDamagedError(f"the state file {name} of old subtask {subtask} cannot be restored: "
                                          f"{error.reason}") from None
    except Exception as error:
        raise CheckpointStateDamagedError(f"the state file {name} of old subtask {subtask} is not a snapshot "
                                          f"({type(error).__name__}: {error})") from None


def materialize(plan: RestorePlan, load: Callable[[Any], bytes]) -> dict[str, Any]:
    old = {subtask: _snapshot(ref, load, subtask) for subtask, ref in sorted(plan.refs.items())}
    states = list(old.values())
    chain_length = len(states[0]["operators"]) if states else plan.chain_length
    operators = [[s["operators"][k] for s in states] for k in range(chain_length)]
    if plan.rescaled:
        sources = [s["source"] for s in states]
        source = None if any(s is None for s in sources) else \
            [split for s in sources for split in s][plan.index::plan.parallelism]
    else:
        own = old.get(plan.index)
        source = own["source"] if own is not None else []  # no snapshot: it had finished, nothing left to read
    return {"source": source, "operators": operators}


def restored_states(graph: JobGraph, snapshots: dict[tuple[str, int], bytes],
                    old_parallelism: dict[str, int] | None = None,
                    restore_from_all: set[str] | frozenset[str] = frozenset()) -> dict[tuple[str, int], dict[str, Any]]:
    """Both steps at once, for snapshots already in memory (the local mini cluster)."""
    return {key: materialize(plan, lambda data: data)
            for key, plan in plan_restore(graph, snapshots, old_parallelism, restore_from_all).items()}
