"""The state backend descriptions of `pyflink.datastream.state_backend`: `HashMapStateBackend`,
`EmbeddedRocksDBStateBackend`, `PredefinedOptions`.

Flink 2 removed `env.set_state_backend`; PyFlink 2.3 keeps these classes, but no API of it takes one. A
job picks its backend by configuration, as in Flink 2: `state.backend.type: hashmap | rocksdb` (and
`execution.checkpointing.incremental`), through `env.configure(...)` or the cluster's config. So here too
they describe a backend and `to_configuration()` gives the keys that select it, which
`env.configure(backend.to_configuration())` applies."""

from __future__ import annotations

import logging
from abc import ABCMeta
from enum import Enum
from typing import List, Optional

from ha_flink.common.configuration import Configuration

logger = logging.getLogger(__name__)


class StateBackend(metaclass=ABCMeta):
    """How a job's keyed state is kept while it runs (Flink's `StateBackend`)."""

    _type = ""

    def to_configuration(self) -> Configuration:
        config = Configuration()
        config.set_string("state.backend.type", self._type)
        return config


class HashMapStateBackend(StateBackend):
    """State as Python objects in the TaskManager's memory (`state.backend.type: hashmap`)."""

    _type = "hashmap"

    def __init__(self, j_hashmap_state_backend: None = None) -> None:
        if j_hashmap_state_backend is not None:
            raise TypeError("HashMapStateBackend wraps no Java object in ha-flink")

    def __str__(self) -> str:
        return "HashMapStateBackend"


class PredefinedOptions(Enum):
    """Flink's predefined RocksDB tunings (`state.backend.rocksdb.predefined-options`)."""

    DEFAULT = 0
    SPINNING_DISK_OPTIMIZED = 1
    SPINNING_DISK_OPTIMIZED_HIGH_MEM = 2
    FLASH_SSD_OPTIMIZED = 3


class EmbeddedRocksDBStateBackend(StateBackend):
    """State in an embedded RocksDB database per subtask (`state.backend.type: rocksdb`)."""

    _type = "rocksdb"

    def __init__(self, enable_incremental_checkpointing: Optional[bool] = None,
                 j_embedded_rocks_db_state_backend: None = None) -> None:
        if j_embedded_rocks_db_state_backend is not None:
            raise TypeError("EmbeddedRocksDBStateBackend wraps no Java object in ha-flink")
        if enable_incremental_checkpointing not in (None, True, False):
            raise TypeError(f"Unsupported input for 'enable_incremental_checkpointing': "
                            f"{enable_incremental_checkpointing}, the value of the parameter should be None or "
                            "True or False.")
        self._incremental = enable_incremental_checkpointing
        self._paths: List[str] = []
        self._predefined = PredefinedOptions.DEFAULT
        self._options: Optional[str] = None
        self._transfer_threads = 4

    def set_db_storage_paths(self, *paths: str) -> None:
        self._paths = list(paths)

    def get_db_storage_paths(self) -> List[str]:
        return list(self._paths)

    def is_incremental_checkpoints_enabled(self) -> bool:
        return bool(self._incremental)

    def set_predefined_options(self, options: PredefinedOptions) -> None:
        """Recorded; a tuning other than DEFAULT has no effect on ha-flink's RocksDB (said in a warning)."""
        if options is not PredefinedOptions.DEFAULT:
            logger.warning("EmbeddedRocksDBStateBackend.set_predefined_options(%s) has no effect: ha-flink's "
                           "RocksDB state runs with its own fixed options", options.name)
        self._predefined = options

    def get_predefined_options(self) -> PredefinedOptions:
        return self._predefined

    def set_options(self, options_factory_class_name: str) -> None:
        """Refused: a RocksDBOptionsFactory is a Java class."""
        raise NotImplementedError(f"set_options({options_factory_class_name!r}): a RocksDB options factory is a "
                                  "Java class, which ha-flink cannot load; use set_predefined_options")

    def get_options(self) -> Optional[str]:
        return self._options

    def get_number_of_transfer_threads(self) -> int:
        return self._transfer_threads

    def set_number_of_transfer_threads(self, number_of_transfering_threads: int) -> None:
        """Recorded; has no effect (said in a warning): checkpoint files are uploaded by one thread."""
        logger.warning("EmbeddedRocksDBStateBackend.set_number_of_transfer_threads(%d) has no effect: ha-flink "
                       "uploads a subtask's checkpoint files from one thread", number_of_transfering_threads)
        self._transfer_threads = number_of_transfering_threads

    def to_configuration(self) -> Configuration:
        config = super().to_configuration()
        if self._incremental is not None:
            config.set_string("execution.checkpointing.incremental", str(self._incremental).lower())
        if self._paths:
            config.set_string("state.backend.rocksdb.localdir", ",".join(self._paths))
        return config

    def __str__(self) -> str:
        return "EmbeddedRocksDBStateBackend"
