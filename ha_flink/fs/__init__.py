"""Storage on fsspec URLs (`file://`, `s3://`, `hdfs://`): filesystem resolution with Flink's `s3.*` keys,
and whole-or-nothing, write-once publishing of files."""

from __future__ import annotations

from ha_flink.fs.errors import StorageError, StorageFileExistsError, StorageFileNotFoundError
from ha_flink.fs.filesystems import filesystem_for
from ha_flink.fs.storage import Storage, join_url, unique_name

__all__ = ["Storage", "StorageError", "StorageFileExistsError", "StorageFileNotFoundError", "filesystem_for",
           "join_url", "unique_name"]
