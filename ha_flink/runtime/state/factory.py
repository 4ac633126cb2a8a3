"""Which keyed state backend an operator gets: `state.backend.type` (`hashmap`, `rocksdb`), Flink's
StateBackendLoader. Kept apart from `backend.py`, the interfaces both implementations import."""

from __future__ import annotations

import time
from typing import Callable

from ha_flink.runtime.state.backend import KeyedStateBackend, StateBackendSettings
from ha_flink.runtime.state.heap import HeapKeyedStateBackend
from ha_flink.runtime.state.rocksdb import RocksDBKeyedStateBackend


def create_keyed_state_backend(settings: StateBackendSettings, key_groups: range, max_parallelism: int,
                               owner: str, clock: Callable[[], float] = time.time) -> KeyedStateBackend:
    """`owner` names the operator's subtask (unique within the job), for file names."""
    if settings.kind == "rocksdb":
        return RocksDBKeyedStateBackend(key_groups, max_parallelism, owner, settings.local_dir,
                                        settings.incremental, clock)
    return HeapKeyedStateBackend(key_groups, max_parallelism, clock)
