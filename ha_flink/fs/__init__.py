"""Storage on fsspec URLs (`file://`, `s3://`, `hdfs://`): filesystem resolution with Flink's `s3.*` keys,
whole-or-nothing, write-once publishing of files, and sealed (checksummed) files."""

from __future__ import annotations

from ha_flink.fs.errors import (
    StorageError, StorageFileCorruptError, StorageFileExistsError, StorageFileNotFoundError, is_damage,
)
from ha_flink.fs.filesystems import filesystem_for
from ha_flink.fs.sealed import seal, unseal
from ha_flink.fs.storage import Storage, join_url, unique_name

__all__ = ["Storage", "StorageError", "StorageFileCorruptError", "StorageFileExistsError", "StorageFileNotFoundError",
           "filesystem_for", "is_damage", "join_url", "seal", "unique_name", "unseal"]
