"""Which keyed state backend an operator gets: `state.backend.type` (`hashmap`, `rocksdb`), Flink's
StateBackendLoader. Kept apart from `backend.py`, the interfaces both implementations import."""

from __future__ import annotations

import time
from typing import Callable

from ha_flink.runtime.key_groups import KeyGroupAssigner
from ha_flink.runtime.state.backend import KeyedStateBackend, StateBackendSettings
from ha_flink.runtime.state.heap import HeapKeyedStateBackend
from ha_flink.runtime.state.rocksdb import RocksDBKeyedStateBackend


def create_keyed_state_backend(settings: StateBackendSettings, key_groups: range, max_parallelism: int,
                               owner: str, clock: Callable[[], float] = time.time,
                               key_group_of: KeyGroupAssigner | None = None) -> KeyedStateBackend:
    """`owner` names the operator's subtask (unique within the job), for file names; `key_group_of` is the
    keyed stream's key -> key group (runtime/key_groups.py)."""
    if settings.kind == "rocksdb":
        return RocksDBKeyedStateBackend(key_groups, max_parallelism, owner, settings.local_dir,
                                        settings.incremental, clock, key_group_of)
    return HeapKeyedStateBackend(key_groups, max_parallelism, clock, key_group_of)
