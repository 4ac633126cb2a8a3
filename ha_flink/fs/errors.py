"""Storage errors: each names the operation and the URL it failed on."""

from __future__ import annotations


class StorageError(OSError):
    def __init__(self, operation: str, url: str, reason: str) -> None:
        self.operation = operation
        self.url = url
        self.reason = reason
        super().__init__(f"cannot {operation} {url}: {reason}")


class StorageFileNotFoundError(StorageError, FileNotFoundError):
    """The URL names nothing. Callers that hold a pointer to it report both the pointer and the URL."""


class StorageFileExistsError(StorageError, FileExistsError):
    """A write-once target exists already; nothing was changed."""


class StorageFileCorruptError(StorageError):
    """The file is there but is not what was written (truncated, altered, or another file): it will not
    become readable by trying again."""


def is_damage(error: BaseException) -> bool:
    """Whether a storage error says the file is gone or broken for good, rather than unreachable for now
    (a connection, a permission, a storage outage): only damage makes a reader fall back to older data."""
    return isinstance(error, (StorageFileNotFoundError, StorageFileCorruptError))
