"""The state handle store: payloads in the storage dir, small pointers in ZooKeeper (the commit point).

Layout of one entry `<root>/<name>`: the node's data is a JSON pointer `{"path": <file URL>, "sha256":
<digest of the payload>}`; its child `locks` holds one EPHEMERAL `locks/<owner>` node per process that uses
the entry. An entry whose `locks` child is gone is marked for deletion: listings hide it, and whoever
removed `locks` deletes the file, then the node. So an entry is only ever removed when no owner holds it,
and a crash mid-removal leaves an entry that is already invisible and can be finished later.

The payload is written first, sealed (fs/sealed.py), under a fresh random name; only then does one fenced
transaction create the node, `locks` and the owner's lock. A crash in between leaves a file no node points
at: garbage, reported by `HighAvailabilityServices.find_orphaned_files`, never a node without its file. A
failed write raises the StorageError before anything was sent to ZooKeeper.

Reading checks the file against the pointer's digest: a file that is gone, truncated, altered or another
file, and a pointer that is not one, are a `StateHandleDamagedError` naming the node and the file (damage
that waiting will not mend); a storage that cannot be reached right now raises its StorageError."""

from __future__ import annotations

import json
import logging
import uuid
from dataclasses import dataclass
from typing import Callable

from kazoo.client import KazooClient, TransactionRequest
from kazoo.exceptions import ConnectionLoss, NodeExistsError, NoNodeError, NotEmptyError, SessionExpiredError

from ha_flink.fs import Storage, StorageFileCorruptError, StorageFileNotFoundError, join_url, unique_name
from ha_flink.fs.sealed import Payload
from ha_flink.ha import paths
from ha_flink.ha.fencing import Fence, FencingError

logger = logging.getLogger(__name__)


class StateHandleDamagedError(RuntimeError):
    """A pointer node whose file is missing, truncated or altered, or a node that holds no pointer: names
    both. Damage, not an outage: reading again will not mend it."""

    def __init__(self, node: str, url: str, reason: str) -> None:
        self.node = node
        self.url = url
        super().__init__(f"ZooKeeper node {node} points at {url}, which {reason}")


class AlreadyExistsError(RuntimeError):
    pass


class CommitUnknownError(RuntimeError):
    """The connection broke during a commit: it may or may not have happened. Nothing was deleted (the
    file may be named by a committed pointer); read the store again once reconnected."""


@dataclass(frozen=True)
class StateHandle:
    """One entry as this store knows it: its name, file URL and the pointer node's version."""

    name: str
    url: str
    version: int


def _pointer(url: str, sha256: str) -> bytes:
    return json.dumps({"path": url, "sha256": sha256}).encode()


class ZooKeeperStateHandleStore:
    def __init__(self, client: KazooClient, root: str, storage: Storage, storage_dir: str, prefix: str,
                 fence: Fence, owner: str | None = None) -> None:
        self.client = client
        self.root = root
        self.storage = storage
        self.storage_dir = storage_dir
        self.prefix = prefix
        self.fence = fence
        self.owner = owner or uuid.uuid4().hex
        self._known_urls: dict[str, str] = {}  # name -> URL, saves a read when removing
        self._root_exists = False

    @staticmethod
    def pointer_url(data: bytes) -> str:
        """The file URL in a pointer node's data (ValueError if it holds none)."""
        return ZooKeeperStateHandleStore.parse_pointer(data)[0]

    @staticmethod
    def parse_pointer(data: bytes) -> tuple[str, str | None]:
        """(file URL, payload digest) of a pointer node's data; pointers of older versions have no digest.
        Raises ValueError for data that is not a pointer."""
        try:
            fields = json.loads(data.decode())
            url, sha256 = fields["path"], fields.get("sha256")
        except (ValueError, KeyError, TypeError, AttributeError, UnicodeDecodeError) as error:
            raise ValueError(f"not a pointer ({type(error).__name__}): {data[:80]!r}") from None
        if not isinstance(url, str) or not (sha256 is None or isinstance(sha256, str)):
            raise ValueError(f"not a pointer: {data[:80]!r}")
        return url, sha256

    def _path(self, name: str) -> str:
        return paths.join(self.root, name)

    def _lock_path(self, name: str) -> str:
        return paths.join(self.root, name, paths.LOCKS, self.owner)

    def _ensure_root(self) -> None:
        if not self._root_exists:
            self.client.ensure_path(self.root)
            self._root_exists = True

    # -- writing --------------------------------------------------------------------------------------

    def add_and_lock(self, name: str, data: bytes,
                     also: Callable[[TransactionRequest, bytes], None] | None = None) -> StateHandle:
        """Write `data` to a fresh sealed file, then commit a pointer to it named `name`, locked by this owner.
        `also(tx, pointer)` adds operations of the caller's to the same transaction. A failed write raises
        its StorageError with nothing sent to ZooKeeper."""
        url = join_url(self.storage_dir, unique_name(self.prefix))
        sha256 = self.storage.write_sealed(url, data)
        return self._commit(name, _pointer(url, sha256), url, also, owns_file=True)

    def restore_pointer(self, name: str, pointer: bytes) -> StateHandle:
        """Commit the node `name` again with a `pointer` recorded elsewhere, naming a file that exists (its
        node was deleted behind the store's back). The file is never deleted here, whatever happens."""
        url, _ = self.parse_pointer(pointer)
        return self._commit(name, pointer, url, None, owns_file=False)

    def _commit(self, name: str, pointer: bytes, url: str, also: Callable[[TransactionRequest, bytes], None] | None,
                owns_file: bool) -> StateHandle:
        path = self._path(name)

        def drop_file() -> None:  # certainly not committed: a file of ours would only be garbage
            if owns_file:
                self.storage.delete(url)

        for attempt in (1, 2):
            self._ensure_root()
            tx = self.fence.transaction()
            tx.create(path, pointer)
            tx.create(paths.join(path, paths.LOCKS))
            tx.create(self._lock_path(name), ephemeral=True)
            if also is not None:
                also(tx, pointer)
            try:
                self.fence.commit(tx)
                break
            except NoNodeError:
                if attempt == 2:
                    drop_file()
                    raise
                self._root_exists = False  # the root was removed (cleanup): create it again
            except NodeExistsError:
                drop_file()
                raise AlreadyExistsError(f"{path} exists already; nothing was added") from None
            except FencingError:
                drop_file()
                raise
            except (ConnectionLoss, SessionExpiredError) as exc:
                raise CommitUnknownError(f"adding {path} (file {url}): {type(exc).__name__}") from exc
        self._known_urls[name] = url
        return StateHandle(name, url, 0)

    def replace(self, name: str, expected_version: int, data: bytes,
                also: Callable[[TransactionRequest, bytes], None] | None = None) -> StateHandle:
        """Point `name` at a new file if its node still has `expected_version`; the old file is deleted
        after the pointer moved."""
        path = self._path(name)
        try:
            old_url: str | None = self._read_pointer(path)[0]
        except StateHandleDamagedError:
            old_url = None  # a garbled pointer being repaired: no old file to delete
        url = join_url(self.storage_dir, unique_name(self.prefix))
        pointer = _pointer(url, self.storage.write_sealed(url, data))
        tx = self.fence.transaction()
        tx.set_data(path, pointer, version=expected_version)
        if also is not None:
            also(tx, pointer)
        try:
            self.fence.commit(tx)
        except (ConnectionLoss, SessionExpiredError) as exc:
            raise CommitUnknownError(f"replacing {path} (file {url}): {type(exc).__name__}") from exc
        except Exception:
            self.storage.delete(url)  # refused for certain: nothing names the new file
            raise
        if old_url is not None and old_url != url:
            self.storage.delete(old_url)
        self._known_urls[name] = url
        return StateHandle(name, url, expected_version + 1)

    # -- reading --------------------------------------------------------------------------------------

    def _read_pointer(self, path: str) -> tuple[str, int, str | None]:
        """(file URL, node version, payload digest); StateHandleDamagedError if the node holds no pointer."""
        data, stat = self.client.get(path)
        try:
            url, sha256 = self.parse_pointer(data)
        except ValueError as error:
            raise StateHandleDamagedError(path, "<no file: the pointer is unreadable>", str(error)) from None
        return url, stat.version, sha256

    def version(self, name: str) -> int:
        """The entry's node version (NoNodeError if there is none), also when its pointer is damaged."""
        stat = self.client.exists(self._path(name))
        if stat is None:
            raise NoNodeError(self._path(name))
        return stat.version

    def read_payload(self, url: str, sha256: str | None, node: str) -> Payload:
        """A handle file's payload, checked against its pointer's digest; damage is a StateHandleDamagedError
        naming `node` and the file, an unreachable storage its StorageError."""
        try:
            return self.storage.read_sealed(url, sha256)
        except StorageFileNotFoundError:
            raise StateHandleDamagedError(node, url, "does not exist") from None
        except StorageFileCorruptError as error:
            raise StateHandleDamagedError(node, url, f"cannot be used: {error.reason}") from None

    def get_and_lock(self, name: str) -> tuple[StateHandle, Payload]:
        """Lock the entry for this owner and read its payload. Damage (the file gone, truncated or altered, the
        pointer unreadable) is a StateHandleDamagedError naming the node and the file; a missing or
        marked-for-deletion entry raises NoNodeError; an unreachable storage its StorageError."""
        path = self._path(name)
        tx = self.fence.transaction()
        tx.create(self._lock_path(name), ephemeral=True)
        try:
            self.fence.commit(tx)
        except NodeExistsError:
            pass  # this owner holds it already
        url, version, sha256 = self._read_pointer(path)
        data = self.read_payload(url, sha256, path)
        self._known_urls[name] = url
        return StateHandle(name, url, version), data

    def names(self) -> list[str]:
        """Names of the entries that are not marked for deletion, sorted."""
        try:
            children = self.client.get_children(self.root)
        except NoNodeError:
            return []
        return sorted(name for name in children if self.client.exists(paths.join(self.root, name, paths.LOCKS)))

    def exists(self, name: str) -> int | None:
        """The entry's node version, or None when it does not exist or is marked for deletion."""
        stat = self.client.exists(self._path(name))
        if stat is None or self.client.exists(paths.join(self._path(name), paths.LOCKS)) is None:
            return None
        return stat.version

    def lock_owners(self, name: str) -> list[str]:
        try:
            return sorted(self.client.get_children(paths.join(self._path(name), paths.LOCKS)))
        except NoNodeError:
            return []

    # -- releasing ------------------------------------------------------------------------------------

    def release(self, name: str) -> None:
        """Drop this owner's lock (not fenced: a revoked leader must still let go of what it held)."""
        try:
            self.client.delete(self._lock_path(name))
        except NoNodeError:
            pass
        self._known_urls.pop(name, None)

    def release_all(self) -> None:
        for name in self.names():
            self.release(name)

    def release_and_try_remove(self, name: str) -> bool:
        """Release this owner's lock and remove the entry (file first, then node) if no other owner holds
        it. Returns whether the entry is gone."""
        path = self._path(name)
        url = self._known_urls.get(name)
        if url is None:
            try:
                url = self._read_pointer(path)[0]
            except NoNodeError:
                return True
            except StateHandleDamagedError as error:
                logger.warning("removing %s without a file to delete: %s", path, error)
        own_lock, locks = self._lock_path(name), paths.join(path, paths.LOCKS)
        holds_lock = True
        while True:
            tx = self.fence.transaction()
            if holds_lock:
                tx.delete(own_lock)
            tx.delete(locks)  # the mark for deletion; refused while other owners hold locks
            try:
                self.fence.commit(tx)
                break
            except NotEmptyError:
                if holds_lock:
                    self.release(name)
                logger.debug("%s is still locked by %s; kept", path, self.lock_owners(name))
                return False
            except NoNodeError:
                if not holds_lock:
                    break  # `locks` is gone already: marked for deletion by someone else; finish it
                holds_lock = False  # we held no lock: try the mark alone
        self._known_urls.pop(name, None)
        if url is not None and not url.startswith("<"):
            self.storage.delete(url)
        tx = self.fence.transaction()
        tx.delete(path)
        try:
            self.fence.commit(tx)
        except NoNodeError:
            pass
        return True
