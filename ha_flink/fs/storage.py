"""`Storage`: the file operations the HA services, checkpoints and job artifacts need, on any fsspec URL.

Writes publish a file whole or not at all. Local files go to a temp file in the same folder, are fsynced,
then hard-linked to their name (fails if the name exists, so a write-once name is never overwritten;
`os.replace` where overwriting is asked for), and the folder is fsynced. S3 has no rename: a PUT is
already atomic, so keys are written once, under a fresh name where the caller wants uniqueness, and made
visible to readers by a ZooKeeper pointer (the commit point). Other filesystems (HDFS) write a temp file
and rename it."""

from __future__ import annotations

import errno
import os
import secrets
import tempfile
from typing import Callable, TypeVar

from fsspec import AbstractFileSystem
from fsspec.implementations.local import LocalFileSystem

from ha_flink.config import Configuration
from ha_flink.fs.errors import StorageError, StorageFileExistsError, StorageFileNotFoundError
from ha_flink.fs.filesystems import filesystem_for
from ha_flink.fs.sealed import MAGIC, Payload, seal_header, unseal

T = TypeVar("T")


def join_url(base: str, *names: str) -> str:
    url = base.rstrip("/")
    for name in names:
        url = f"{url}/{name.strip('/')}"
    return url


def unique_name(prefix: str) -> str:
    """`prefix` plus 32 random hex digits, as Flink names its HA files (completedCheckpoint<hex>)."""
    return f"{prefix}{secrets.token_hex(16)}"


class Storage:
    """File operations on storage URLs (`file://`, bare paths, `s3://`, `hdfs://`).

    Every failure is a `StorageError` naming the operation and the URL; a missing file is a
    `StorageFileNotFoundError`."""

    def __init__(self, config: Configuration | None = None) -> None:
        self.config = config or Configuration()

    def filesystem(self, url: str) -> tuple[AbstractFileSystem, str]:
        return filesystem_for(url, self.config)

    def _call(self, operation: str, url: str, action: Callable[[AbstractFileSystem, str], T]) -> T:
        fs, path = self.filesystem(url)
        try:
            return action(fs, path)
        except StorageError:
            raise
        except FileNotFoundError as exc:
            raise StorageFileNotFoundError(operation, url, "no such file or folder") from exc
        except FileExistsError as exc:
            raise StorageFileExistsError(operation, url, "it exists already (write-once)") from exc
        except Exception as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc) or type(exc).__name__
            raise StorageError(operation, url, reason) from exc

    def write(self, url: str, data: bytes, *, overwrite: bool = False) -> None:
        """Publish `data` at `url` whole or not at all; without `overwrite` an existing file is an error."""
        self._call("write", url, lambda fs, path: self._write(fs, path, (data,), overwrite))

    def write_unique(self, folder_url: str, prefix: str, data: bytes) -> str:
        """Write `data` under a fresh random name in `folder_url`; returns the new file's URL."""
        url = join_url(folder_url, unique_name(prefix))
        self.write(url, data)
        return url

    def _write(self, fs: AbstractFileSystem, path: str, chunks: tuple[bytes, ...], overwrite: bool) -> None:
        if isinstance(fs, LocalFileSystem):
            _write_local(path, chunks, overwrite)
            return
        if not overwrite and fs.exists(path):
            raise FileExistsError(path)
        data = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        if type(fs).__name__ == "S3FileSystem":
            fs.pipe_file(path, data)
            return
        parent = path.rsplit("/", 1)[0]
        fs.makedirs(parent, exist_ok=True)
        temp = f"{parent}/.{path.rsplit('/', 1)[-1]}.{secrets.token_hex(4)}.inprogress"
        fs.pipe_file(temp, data)
        try:
            fs.mv(temp, path)
        finally:
            if fs.exists(temp):
                fs.rm(temp)

    def read(self, url: str) -> bytes:
        return self._call("read", url, lambda fs, path: fs.cat_file(path))

    def write_sealed(self, url: str, payload: bytes, *, overwrite: bool = False) -> str:
        """`write` of a sealed file (fs/sealed.py): a reader finds out if it is ever truncated or altered. (The
        seal and the payload go out one after the other: a local file never copies the payload.) Returns the
        payload's hex SHA-256, for a pointer to record."""
        header = seal_header(payload)
        self._call("write", url, lambda fs, path: self._write(fs, path, (header, payload), overwrite))
        return header[len(MAGIC):].hex()

    def read_sealed(self, url: str, expected_sha256: str | None = None) -> Payload:
        """The payload of a sealed file; StorageFileCorruptError names the file if it is not what was written."""
        return unseal(self.read(url), url, expected_sha256)

    def exists(self, url: str) -> bool:
        return self._call("check", url, lambda fs, path: fs.exists(path))

    def modified(self, url: str) -> float | None:
        """When the file was last written (seconds since the epoch), where the filesystem says."""
        info = self._call("stat", url, lambda fs, path: fs.info(path))
        for key in ("mtime", "LastModified", "last_modified", "modification_time"):
            value = info.get(key)
            if isinstance(value, (int, float)):
                return float(value)
            if hasattr(value, "timestamp"):
                return value.timestamp()
        return None

    def list(self, folder_url: str) -> list[str]:
        """URLs of the entries directly in `folder_url`, sorted; a missing folder has none."""

        def action(fs: AbstractFileSystem, path: str) -> list[str]:
            try:
                entries = fs.ls(path, detail=False)
            except FileNotFoundError:
                return []
            names = sorted(str(entry).rstrip("/").rsplit("/", 1)[-1] for entry in entries)
            return [join_url(folder_url, name) for name in names if name]

        return self._call("list", folder_url, action)

    def delete(self, url: str, *, recursive: bool = True) -> None:
        """Remove a file or folder; removing what is already gone is not an error (cleanup is repeatable)."""

        def action(fs: AbstractFileSystem, path: str) -> None:
            try:
                if fs.isdir(path):
                    fs.rm(path, recursive=recursive)
                else:
                    fs.rm_file(path)
            except FileNotFoundError:
                pass

        self._call("delete", url, action)

    def makedirs(self, url: str) -> None:
        self._call("create folder", url, lambda fs, path: fs.makedirs(path, exist_ok=True))


def _write_local(path: str, chunks: tuple[bytes, ...], overwrite: bool) -> None:
    folder = os.path.dirname(path)
    os.makedirs(folder, exist_ok=True)
    fd, temp = tempfile.mkstemp(dir=folder, prefix=f".{os.path.basename(path)}.", suffix=".inprogress")
    try:
        with os.fdopen(fd, "wb") as out:
            for chunk in chunks:
                out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
        if overwrite:
            os.replace(temp, path)
        else:
            try:
                os.link(temp, path)
            except OSError as exc:
                if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EXDEV):
                    raise
                # A filesystem without hard links: check, then rename (last-writer-wins race accepted).
                if os.path.exists(path):
                    raise FileExistsError(path) from None
                os.replace(temp, path)
    finally:
        if os.path.exists(temp):
            os.unlink(temp)
    _fsync_folder(folder)


def _fsync_folder(folder: str) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
