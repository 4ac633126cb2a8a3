"""The checkpoint storage descriptions of `pyflink.datastream.checkpoint_storage`:
`JobManagerCheckpointStorage` and `FileSystemCheckpointStorage`.

As with state backends (state_backend.py), PyFlink 2.3 keeps the classes but no API takes one; Flink 2
selects checkpoint storage by configuration (`execution.checkpointing.dir`). `to_configuration()` gives
those keys, for `env.configure(...)`. ha-flink always writes a checkpoint's state to files under the
checkpoint directory, whichever storage is described (the JobManager's memory would be lost with it, which
high availability cannot allow), and settings it cannot honour are named in a warning."""

from __future__ import annotations

import logging
from abc import ABCMeta
from typing import Optional

from ha_flink.common.configuration import Configuration

logger = logging.getLogger(__name__)


class CheckpointStorage(metaclass=ABCMeta):
    """Where a job's checkpoints are kept (Flink's `CheckpointStorage`)."""

    def __init__(self, checkpoint_path: Optional[str], savepoint_path: Optional[str] = None) -> None:
        self._checkpoint_path = checkpoint_path
        self._savepoint_path = savepoint_path

    def get_checkpoint_path(self) -> Optional[str]:
        return self._checkpoint_path

    def get_savepoint_path(self) -> Optional[str]:
        return self._savepoint_path

    def to_configuration(self) -> Configuration:
        config = Configuration()
        if self._checkpoint_path is not None:
            config.set_string("execution.checkpointing.dir", self._checkpoint_path)
        return config


class JobManagerCheckpointStorage(CheckpointStorage):
    DEFAULT_MAX_STATE_SIZE = 5 * 1024 * 1024

    def __init__(self, checkpoint_path: Optional[str] = None, max_state_size: Optional[int] = None,
                 j_jobmanager_checkpoint_storage: None = None) -> None:
        if j_jobmanager_checkpoint_storage is not None:
            raise TypeError("JobManagerCheckpointStorage wraps no Java object in ha-flink")
        if max_state_size is not None and max_state_size <= 0:
            raise ValueError(f"max_state_size must be positive, got {max_state_size}")
        logger.warning("JobManagerCheckpointStorage: ha-flink keeps no checkpoint in the JobManager's memory; "
                       "checkpoints go to files under execution.checkpointing.dir (or the cluster's), so they "
                       "survive a JobManager failover")
        super().__init__(checkpoint_path)
        self._max_state_size = max_state_size or self.DEFAULT_MAX_STATE_SIZE

    def get_max_state_size(self) -> int:
        return self._max_state_size

    def __str__(self) -> str:
        return f"JobManagerCheckpointStorage (checkpoints to {self._checkpoint_path or 'the configured dir'})"


class FileSystemCheckpointStorage(CheckpointStorage):
    MAX_FILE_STATE_THRESHOLD = 1024 * 1024  # Flink's upper bound of file_state_size_threshold
    def __init__(self, checkpoint_path: Optional[str] = None, file_state_size_threshold: Optional[int] = None,
                 write_buffer_size: int = -1, j_filesystem_checkpoint_storage: None = None) -> None:
        if j_filesystem_checkpoint_storage is not None:
            raise TypeError("FileSystemCheckpointStorage wraps no Java object in ha-flink")
        if checkpoint_path is None:
            raise ValueError("checkpoint_path must not be None")
        if file_state_size_threshold is not None and file_state_size_threshold > self.MAX_FILE_STATE_THRESHOLD:
            raise ValueError(f"The maximum size threshold for file state is {self.MAX_FILE_STATE_THRESHOLD} bytes, "
                             f"got {file_state_size_threshold}")
        if file_state_size_threshold not in (None, -1) or write_buffer_size != -1:
            logger.warning("FileSystemCheckpointStorage(file_state_size_threshold=%s, write_buffer_size=%s): "
                           "no effect; ha-flink writes each subtask's state as one file per checkpoint",
                           file_state_size_threshold, write_buffer_size)
        super().__init__(checkpoint_path)
        self._threshold = 1024 if file_state_size_threshold in (None, -1) else file_state_size_threshold
        self._write_buffer_size = 4096 if write_buffer_size == -1 else write_buffer_size

    def get_checkpoint_path(self) -> str:
        assert self._checkpoint_path is not None
        return self._checkpoint_path

    def get_min_file_size_threshold(self) -> int:
        return self._threshold

    def get_write_buffer_size(self) -> int:
        return self._write_buffer_size

    def __str__(self) -> str:
        return f"FileSystemCheckpointStorage (checkpoints to {self._checkpoint_path})"
