"""Savepoint disposal (`flink savepoint -d`): a savepoint folder goes whole; anything that is not one (a
retained checkpoint, a folder without an intact sealed `_metadata`, a relative path) is refused, saying
why, and nothing is deleted."""

from __future__ import annotations

from pathlib import Path

import pytest

from ha_flink.fs import Storage
from ha_flink.runtime.checkpoint.coordinator import METADATA, SavepointError, dispose_savepoint


def folder_with_metadata(root: Path, name: str, storage: Storage) -> Path:
    folder = root / name
    storage.write_sealed(f"file://{folder}/{METADATA}", b"(a pickled dict, never unpickled here)")
    (folder / "0000abcd-0").write_bytes(b"state")
    return folder


def test_a_savepoint_folder_goes_whole(tmp_path: Path) -> None:
    storage = Storage()
    savepoint = folder_with_metadata(tmp_path, "savepoint-abc123-0123456789ab", storage)
    dispose_savepoint(storage, f"file://{savepoint}")
    assert not savepoint.exists()
    with pytest.raises(SavepointError, match="holds no _metadata.*disposed already"):
        dispose_savepoint(storage, str(savepoint))  # a second disposal says so


def test_what_is_no_savepoint_is_refused_and_kept(tmp_path: Path) -> None:
    storage = Storage()
    checkpoint = folder_with_metadata(tmp_path, "chk-7", storage)
    with pytest.raises(SavepointError, match="a retained checkpoint is deleted by its job"):
        dispose_savepoint(storage, str(checkpoint))
    damaged = folder_with_metadata(tmp_path, "savepoint-abc123-feedfeedfeed", storage)
    (damaged / METADATA).write_bytes((damaged / METADATA).read_bytes()[:-5])  # truncated
    with pytest.raises(SavepointError, match="is damaged"):
        dispose_savepoint(storage, str(damaged))
    with pytest.raises(SavepointError, match="neither an absolute path nor a URL"):
        dispose_savepoint(storage, "savepoint-abc123-feedfeedfeed")
    assert checkpoint.is_dir() and damaged.is_dir() and (damaged / "0000abcd-0").exists()
