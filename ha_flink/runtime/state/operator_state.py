"""Operator state: per subtask, not per key (Flink's DefaultOperatorStateBackend), for user functions that
are CheckpointedFunctions. Small by nature (offsets, buffers, rules), so it lives in Python lists and dicts
and is snapshotted by copy.

How it comes back after a restore (the old subtasks' snapshots of this operator, `restore()`):
- list state (even-split): unchanged parallelism, each subtask its own list; otherwise the elements of all
  old subtasks are dealt out round-robin;
- union list state: every subtask gets the elements of all old subtasks;
- broadcast state: every subtask gets old subtask 0's map (all copies are the same).
Union and broadcast state make a restore read every old subtask's snapshot, so the snapshot says it has
them (`needs_all_on_restore`) and the restore plan hands every subtask all of them."""

from __future__ import annotations

from typing import Any, Iterable

from ha_flink.core.state import (
    BroadcastState, ListState, ListStateDescriptor, MapStateDescriptor, OperatorStateStore,
)

SPLIT, UNION, BROADCAST = "list", "union", "broadcast"


class OperatorStateBackend(OperatorStateStore):
    def __init__(self, subtask_index: int, parallelism: int) -> None:
        self.subtask_index = subtask_index
        self.parallelism = parallelism
        self.lists: dict[str, list[Any]] = {}
        self.modes: dict[str, str] = {}  # list state name -> SPLIT or UNION
        self.broadcast: dict[str, dict[Any, Any]] = {}
        self._states: dict[str, Any] = {}

    def _list(self, descriptor: ListStateDescriptor, mode: str) -> ListState:
        name = descriptor.name
        if self.modes.setdefault(name, mode) != mode or name in self.broadcast:
            raise ValueError(f"operator state {name!r} is already registered with another redistribution mode")
        state = self._states.get(name)
        if state is None:
            state = self._states[name] = _OperatorListState(self.lists.setdefault(name, []))
        return state

    def get_list_state(self, state_descriptor: ListStateDescriptor) -> ListState:
        return self._list(state_descriptor, SPLIT)

    def get_union_list_state(self, state_descriptor: ListStateDescriptor) -> ListState:
        return self._list(state_descriptor, UNION)

    def get_broadcast_state(self, state_descriptor: MapStateDescriptor) -> BroadcastState:
        name = state_descriptor.name
        if name in self.modes:
            raise ValueError(f"operator state {name!r} is already registered as a list state")
        state = self._states.get(name)
        if state is None:
            state = self._states[name] = _BroadcastState(self.broadcast.setdefault(name, {}))
        return state

    @property
    def empty(self) -> bool:
        return not self.lists and not self.broadcast

    def snapshot(self) -> dict[str, Any]:
        return {"subtask": self.subtask_index, "parallelism": self.parallelism,
                "lists": {name: (self.modes[name], list(values)) for name, values in self.lists.items()},
                "broadcast": {name: dict(values) for name, values in self.broadcast.items()}}

    @staticmethod
    def needs_all_on_restore(snapshot: dict[str, Any]) -> bool:
        return bool(snapshot["broadcast"]) or any(mode == UNION for mode, _ in snapshot["lists"].values())

    def restore(self, snapshots: Iterable[dict[str, Any]]) -> None:
        """`snapshots`: this operator's part of the old subtasks' snapshots (its own only, or all)."""
        old = sorted(snapshots, key=lambda s: s["subtask"])
        if not old:
            return
        unchanged = all(s["parallelism"] == self.parallelism for s in old)
        for name in {name for s in old for name in s["lists"]}:
            mode = next(s["lists"][name][0] for s in old if name in s["lists"])
            self.modes[name] = mode
            if mode == UNION:
                values = [v for s in old if name in s["lists"] for v in s["lists"][name][1]]
            elif unchanged:
                values = [v for s in old if s["subtask"] == self.subtask_index and name in s["lists"]
                          for v in s["lists"][name][1]]
            else:
                pooled = [v for s in old if name in s["lists"] for v in s["lists"][name][1]]
                values = pooled[self.subtask_index::self.parallelism]
            self.lists[name] = values
        for name in {name for s in old for name in s["broadcast"]}:
            self.broadcast[name] = dict(next(s["broadcast"][name] for s in old if name in s["broadcast"]))


class _OperatorListState(ListState):
    def __init__(self, values: list[Any]) -> None:
        self.values = values

    def get(self) -> list[Any]:
        return list(self.values)

    def add(self, value: Any) -> None:
        self.values.append(value)

    def add_all(self, values: list[Any]) -> None:
        self.values.extend(values)

    def update(self, values: list[Any]) -> None:
        self.values[:] = list(values or [])

    def clear(self) -> None:
        self.values.clear()


class _BroadcastState(BroadcastState):
    def __init__(self, entries: dict[Any, Any]) -> None:
        self.entries = entries

    def get(self, key: Any) -> Any:
        return self.entries.get(key)

    def put(self, key: Any, value: Any) -> None:
        self.entries[key] = value

    def put_all(self, dict_value: dict[Any, Any]) -> None:
        self.entries.update(dict_value)

    def remove(self, key: Any) -> None:
        self.entries.pop(key, None)

    def contains(self, key: Any) -> bool:
        return key in self.entries

    def items(self) -> Iterable[tuple[Any, Any]]:
        return list(self.entries.items())

    def keys(self) -> Iterable[Any]:
        return list(self.entries.keys())

    def values(self) -> Iterable[Any]:
        return list(self.entries.values())

    def is_empty(self) -> bool:
        return not self.entries

    def clear(self) -> None:
        self.entries.clear()
