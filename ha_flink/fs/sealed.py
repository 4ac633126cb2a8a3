"""Sealed files: a payload behind a magic word and its SHA-256 digest, so that a truncated, garbled or
swapped file is found out by name before anything unpickles it.

Every file the HA services, the checkpoint coordinator and the TaskManagers write for recovery (job-graph
and completed-checkpoint handles, checkpoint and savepoint `_metadata`, task state files) is sealed. A
reader that also holds the digest from elsewhere (a ZooKeeper pointer) checks that it is the file the
pointer meant. Files of older versions carry no seal; they are read as they are unless the caller holds a
digest for them (a sealed pointer never names an unsealed file)."""

from __future__ import annotations

import hashlib

from ha_flink.fs.errors import StorageFileCorruptError

MAGIC = b"HAFLINK\x01"
_DIGEST = 32
HEADER = len(MAGIC) + _DIGEST


# A payload read back: the bytes after the seal, as a view (copying 100 MB costs as much as hashing it here);
# pickle and everything else that reads bytes take either.
Payload = bytes | memoryview


def seal_header(payload: bytes) -> bytes:
    """What goes before `payload` in its sealed file."""
    return MAGIC + hashlib.sha256(payload).digest()


def seal(payload: bytes) -> bytes:
    return seal_header(payload) + payload


def is_sealed(data: bytes) -> bool:
    return data[:len(MAGIC)] == MAGIC


def unseal(data: bytes, url: str, expected_sha256: str | None = None) -> Payload:
    """The payload of a sealed file read from `url`; raises StorageFileCorruptError naming the file when it
    is truncated, altered, or not the file `expected_sha256` names. Unsealed data (a file of an older
    version) is returned as it is, unless a digest was expected."""
    if not is_sealed(data):
        if expected_sha256 is not None:
            raise StorageFileCorruptError("read", url, f"it is not a sealed file ({len(data)} bytes, "
                                          f"starting {data[:16]!r}); its pointer expects SHA-256 {expected_sha256}")
        return data
    if len(data) < HEADER:
        raise StorageFileCorruptError("read", url, f"it is truncated ({len(data)} bytes, shorter than its header)")
    stored = data[len(MAGIC):HEADER]
    payload = memoryview(data)[HEADER:]
    actual = hashlib.sha256(payload).digest()
    if actual != stored:
        raise StorageFileCorruptError("read", url, f"it is truncated or altered ({len(payload)} payload bytes, "
                                      f"SHA-256 {actual.hex()[:16]}..., sealed with {stored.hex()[:16]}...)")
    if expected_sha256 is not None and actual.hex() != expected_sha256:
        raise StorageFileCorruptError("read", url, f"it is another file than its pointer names (SHA-256 "
                                      f"{actual.hex()[:16]}..., the pointer expects {expected_sha256[:16]}...)")
    return payload
