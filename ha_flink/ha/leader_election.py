"""Leader election among JobManager processes under `<base>/leader/latch`, and the leader's published
connection info under `<base>/leader/<component>/connection_info`.

Each contender creates one ephemeral-sequential latch node; the lowest sequence leads; every other
contender watches only its predecessor (no herd effect). Each grant mints a fresh UUID leader session id,
the fencing token of everything the leader does.

kazoo revokes nothing by itself on connection trouble. Here the connection listener only flips a flag
(so fenced writes stop at once) and queues an event; one worker thread per election does all ZooKeeper
calls and calls the contender's `grant` / `revoke`, never kazoo's own threads:
- SUSPENDED revokes, unless `tolerate_suspended`; a reconnect on the same session re-checks the latch.
  A tolerated SUSPENDED that outlasts the session timeout revokes too, as Curator's simulated session
  expiry does for Flink: kazoo reports LOST only once it reaches a server again, and a leader cut off
  from ZooKeeper (a partition, a lost quorum) must not go on driving its TaskManagers meanwhile.
- LOST always revokes; on the next CONNECTED (a new session) the contender joins again.
- `close()` deletes the latch and connection-info nodes at once, so a standby takes over without
  waiting for a session timeout.
- A latch node or the whole latch folder deleted behind the election's back (a stray `deleteall`): the
  contender revokes if it led (also when a fenced write finds its latch gone) and joins again, creating
  the folder anew; every contender does, so the election goes on.
Revocations on connection trouble run on a timer thread of their own: the worker may be waiting in a
kazoo call that a disconnected client holds until it reconnects, however long that takes."""

from __future__ import annotations

import json
import logging
import queue
import re
import threading
import uuid
from dataclasses import dataclass
from typing import Any, Protocol

from kazoo.client import KazooClient, KazooState
from kazoo.exceptions import ConnectionLoss, KazooException, NoNodeError, NodeExistsError, SessionExpiredError
from kazoo.protocol.states import WatchedEvent

from ha_flink.ha import paths
from ha_flink.ha.fencing import Fence, FencingError

logger = logging.getLogger(__name__)

IDLE_CHECK_SECONDS = 5.0
_LATCH_NODE = re.compile(r"-latch-\d+$")
CLOSE_WAIT_SECONDS = 5.0


class LeaderContender(Protocol):
    """What takes part in an election: told when it leads and when it no longer does."""

    def grant(self, session_id: uuid.UUID) -> None: ...

    def revoke(self) -> None: ...


@dataclass(frozen=True)
class LeaderInformation:
    """A leader's connection info as published in ZooKeeper: where it is and its session id."""

    address: str
    session_id: uuid.UUID

    def to_bytes(self) -> bytes:
        return json.dumps({"address": self.address, "session_id": str(self.session_id)}).encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> LeaderInformation:
        fields = json.loads(data.decode())
        return cls(fields["address"], uuid.UUID(fields["session_id"]))


def _sequence(node_name: str) -> int:
    return int(node_name.rsplit("-", 1)[-1])


def _latches(children: list[str]) -> list[str]:
    """The contenders' latch nodes among `children`, in sequence order; a node of anyone else's is no
    contender and must not stop the election."""
    return sorted((child for child in children if _LATCH_NODE.search(child)), key=_sequence)


def list_contenders(client: KazooClient, base_path: str) -> list[dict[str, Any]]:
    """Every contender of the election at `base_path`, in latch order (the first one leads or is about
    to), each with the info it joined with and its latch node."""
    latch_dir = paths.latch_dir(base_path)
    try:
        children = _latches(client.get_children(latch_dir))
    except NoNodeError:
        return []
    contenders = []
    for child in children:
        try:
            data, _ = client.get(f"{latch_dir}/{child}")
        except NoNodeError:
            continue  # left meanwhile
        try:
            info = json.loads(data.decode()) if data else {}
        except ValueError:
            info = {}
        contenders.append({**info, "latch": child})
    return contenders


class LeaderElection:
    """One contender's place in the election of the cluster at `base_path`."""

    def __init__(self, client: KazooClient, base_path: str, *, tolerate_suspended: bool = False,
                 name: str = "contender", session_timeout_s: float | None = None,
                 contender_info: dict[str, str] | None = None) -> None:
        self.client = client
        # kept in the latch node, so anyone can list the contenders with their addresses (GET /cluster/ha)
        self.contender_info = json.dumps(contender_info or {"name": name}).encode()
        self.base_path = base_path
        self.tolerate_suspended = tolerate_suspended
        # how long a tolerated SUSPENDED may last before it revokes (kazoo keeps the timeout in ms)
        self.session_timeout_s = session_timeout_s if session_timeout_s is not None \
            else getattr(client, "_session_timeout", 10_000) / 1000
        self._suspension = 0  # counts connection state changes: a revoke timer of an older one does nothing
        self.name = name
        self._latch_dir = paths.latch_dir(base_path)
        self._prefix = f"_c_{uuid.uuid4()}-latch-"
        self._events: queue.Queue[tuple[Any, ...]] = queue.Queue()
        self._lock = threading.RLock()
        self._contender: LeaderContender | None = None
        self._latch_path: str | None = None
        self._session_id: uuid.UUID | None = None
        self._connection_usable = True
        self._published: dict[str, str] = {}  # component -> address, while leading
        self._stale_connection_info: set[tuple[str, uuid.UUID]] = set()  # to delete once connected
        self._worker: threading.Thread | None = None
        self._closed = False

    # -- public API ---------------------------------------------------------------------------------

    def start(self, contender: LeaderContender) -> None:
        self._contender = contender
        self.client.add_listener(self._on_connection_state)
        self._worker = threading.Thread(target=self._run, name=f"leader-election-{self.name}", daemon=True)
        self._worker.start()
        self._events.put(("join",))

    def close(self) -> None:
        """Leave the election now: revoke if leading, delete this contender's nodes."""
        if self._closed:
            return
        self._closed = True
        self.client.remove_listener(self._on_connection_state)
        self._events.put(("close",))
        if self._worker is not None and self._worker is not threading.current_thread():
            # With ZooKeeper unreachable the worker may sit in a kazoo call; nothing could be deleted then
            # anyway (the session's ephemeral nodes go when it expires), so do not hold the caller long.
            self._worker.join(timeout=CLOSE_WAIT_SECONDS)

    @property
    def latch_path(self) -> str | None:
        return self._latch_path

    @property
    def leader_session_id(self) -> uuid.UUID | None:
        with self._lock:
            return self._session_id if self._connection_usable else None

    def has_leadership(self, session_id: uuid.UUID) -> bool:
        with self._lock:
            return self._connection_usable and self._session_id == session_id and not self._closed

    def fence(self, session_id: uuid.UUID) -> Fence:
        """Fenced writes for the leadership identified by `session_id`."""
        latch = self._latch_path
        if latch is None or not self.has_leadership(session_id):
            raise FencingError(f"{self.name} does not hold leadership {session_id}; nothing can be written")
        return Fence(self.client, latch, lambda: self.has_leadership(session_id),
                     f"{self.name} (leader session {session_id})", on_lost=lambda: self._events.put(("check",)))

    def publish(self, component: str, address: str, session_id: uuid.UUID) -> None:
        """Publish `component`'s connection info as the leader with `session_id`; kept up (re-written if
        overwritten or deleted) for as long as that leadership lasts."""
        fence = self.fence(session_id)
        with self._lock:
            self._published[component] = address
        self._write_connection_info(component, address, session_id, fence)

    # -- connection listener: flips state, queues work, never blocks ----------------------------------

    def _on_connection_state(self, state: KazooState) -> None:
        self._suspension += 1
        if state == KazooState.SUSPENDED:
            if not self.tolerate_suspended:
                with self._lock:
                    self._connection_usable = False
                self._revoke_soon("connection to ZooKeeper suspended", 0.0)
            else:
                self._revoke_soon(f"connection to ZooKeeper suspended for longer than the session timeout "
                                  f"({self.session_timeout_s:g} s)", self.session_timeout_s)
        elif state == KazooState.LOST:
            with self._lock:
                self._connection_usable = False
            self._revoke_soon("ZooKeeper session lost", 0.0)
            self._events.put(("lost",))
        else:
            self._events.put(("connected",))

    def _revoke_soon(self, reason: str, delay: float) -> None:
        """Revoke from a thread of its own, after `delay` if the connection is still down then: the worker
        may sit in a kazoo call made while disconnected, which waits for the reconnect however long."""
        suspension = self._suspension

        def revoke() -> None:
            if self._closed or (delay > 0 and (suspension != self._suspension
                                               or self.client.state == KazooState.CONNECTED)):
                return
            with self._lock:
                self._connection_usable = False
            try:
                self._revoke(reason)
            except Exception:
                logger.exception("%s: revoking leadership failed", self.name)

        timer = threading.Timer(delay, revoke)
        timer.daemon = True
        timer.name = f"leader-election-revoke-{self.name}"
        timer.start()

    # -- worker thread --------------------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            try:
                event = self._events.get(timeout=IDLE_CHECK_SECONDS)
            except queue.Empty:
                # A safety net for a lost watch or state event: look at the latch again (one read).
                event = ("check",) if self.client.state == KazooState.CONNECTED else ("idle",)
            kind = event[0]
            try:
                if kind == "close":
                    try:
                        self._leave()
                    finally:
                        return  # noqa: B012 - the worker ends on close, whatever _leave raised
                if self._closed:
                    continue
                if kind == "join":
                    self._join()
                elif kind == "check":
                    self._check()
                elif kind == "revoke":
                    self._revoke(event[1])
                elif kind == "lost":
                    self._revoke("ZooKeeper session lost")
                    self._latch_path = None
                    self._stale_connection_info.clear()  # ephemeral: gone with the session
                elif kind == "connected":
                    # Stale info first, before a grant lets the contender publish anew: the node it writes
                    # has the same version as ours had, so a delete by version could remove the new one.
                    self._delete_stale_connection_info()
                    with self._lock:
                        self._connection_usable = True
                    if self._latch_path is None:
                        self._join()
                    else:
                        self._check()
                elif kind == "verify":
                    self._verify_connection_info(event[1], event[2])
            except (ConnectionLoss, SessionExpiredError) as exc:
                # A state event follows (SUSPENDED/LOST, then CONNECTED) and drives the retry.
                logger.info("%s: ZooKeeper unavailable during %s (%s); waiting to reconnect", self.name, kind,
                            type(exc).__name__)
            except Exception:
                logger.exception("%s: leader election step %s failed", self.name, kind)

    def _join(self) -> None:
        if self.client.state != KazooState.CONNECTED:
            return
        for _ in range(10):  # the folder may be deleted again between its creation and ours
            self.client.ensure_path(self._latch_dir)
            # An earlier create whose reply was lost may have made our node already: never make a second one,
            # it would sit ahead of every other contender until this session ends.
            self._latch_path = self._find_own_latch()
            if self._latch_path is not None:
                self._check()
                return
            try:
                self._latch_path = self.client.create(f"{self._latch_dir}/{self._prefix}", self.contender_info,
                                                      ephemeral=True, sequence=True)
                break
            except NoNodeError:
                continue
            except ConnectionLoss:
                # The create may have happened: find it by our unique prefix (Curator's "protected" mode).
                self._latch_path = self._find_own_latch()
                if self._latch_path is None:
                    raise
                break
        else:
            raise NoNodeError(f"{self._latch_dir} was deleted again each time it was created")
        logger.info("%s joined the leader election as %s", self.name, self._latch_path)
        self._check()

    def _find_own_latch(self) -> str | None:
        try:
            children = self.client.get_children(self._latch_dir)
        except NoNodeError:
            return None
        for child in children:
            if child.startswith(self._prefix):
                return f"{self._latch_dir}/{child}"
        return None

    def _check(self) -> None:
        if self._latch_path is None or self.client.state != KazooState.CONNECTED:
            return
        folder_gone = False
        try:
            children = _latches(self.client.get_children(self._latch_dir))
        except NoNodeError:
            children, folder_gone = [], True  # the whole latch folder was deleted (a stray deleteall)
        own = self._latch_path.rsplit("/", 1)[1]
        if own not in children:
            # Our ephemeral node is gone though the session lives (deleted by hand, or its folder): join again.
            self._revoke(f"the latch folder {self._latch_dir} vanished" if folder_gone else
                         f"latch node {self._latch_path} vanished")
            self._latch_path = None
            self._join()
            return
        index = children.index(own)
        if index == 0:
            # Watch our own node too: deleted behind our back (session alive), we must not go on leading.
            if self.client.exists(self._latch_path, watch=self._on_predecessor_change) is None:
                self._events.put(("check",))
                return
            self._grant()
            return
        self._revoke("another contender precedes this one")
        predecessor = f"{self._latch_dir}/{children[index - 1]}"
        if self.client.exists(predecessor, watch=self._on_predecessor_change) is None:
            self._events.put(("check",))

    def _on_predecessor_change(self, event: WatchedEvent) -> None:
        self._events.put(("check",))

    def _grant(self) -> None:
        with self._lock:
            if self._session_id is not None or not self._connection_usable:
                return
            session_id = uuid.uuid4()
            self._session_id = session_id
        logger.info("%s was granted leadership with session id %s", self.name, session_id)
        if self._contender is not None:
            self._contender.grant(session_id)

    def _revoke(self, reason: str) -> None:
        with self._lock:
            if self._session_id is None:
                return
            old = self._session_id
            self._session_id = None
            published = dict(self._published)
            self._published.clear()
        logger.info("%s lost leadership %s: %s", self.name, old, reason)
        # Our connection info must go (else retrievers keep a refused token); while disconnected, do it on
        # the next reconnect of the same session (after LOST the ephemeral nodes are gone anyway).
        self._stale_connection_info.update((component, old) for component in published)
        try:
            if self._contender is not None:
                self._contender.revoke()
        finally:
            if self.client.state == KazooState.CONNECTED:
                self._delete_stale_connection_info()

    def _delete_stale_connection_info(self) -> None:
        stale, self._stale_connection_info = self._stale_connection_info, set()
        for component, session_id in stale:
            self._delete_own_connection_info(component, session_id)

    def _leave(self) -> None:
        self._revoke("leaving the election")
        latch, self._latch_path = self._latch_path, None
        if latch is not None and self.client.state == KazooState.CONNECTED:
            try:
                self.client.delete(latch)
            except NoNodeError:
                pass
            except KazooException as exc:
                logger.warning("%s could not delete its latch node %s: %s", self.name, latch, exc)

    # -- connection info -------------------------------------------------------------------------------

    def _write_connection_info(self, component: str, address: str, session_id: uuid.UUID, fence: Fence) -> None:
        path = paths.connection_info(self.base_path, component)
        self.client.ensure_path(path.rsplit("/", 1)[0])
        tx = fence.transaction()
        if self.client.exists(path) is not None:
            tx.delete(path)
        tx.create(path, LeaderInformation(address, session_id).to_bytes(), ephemeral=True)
        try:
            fence.commit(tx)
        except (NodeExistsError, NoNodeError):
            # Raced with another write of the node: look again.
            self._events.put(("verify", component, session_id))
            return
        if self.client.exists(path, watch=lambda event: self._events.put(("verify", component, session_id))) is None:
            self._events.put(("verify", component, session_id))  # gone already: the watch waits for a creation

    def _verify_connection_info(self, component: str, session_id: uuid.UUID) -> None:
        with self._lock:
            address = self._published.get(component)
        if address is None or not self.has_leadership(session_id):
            return
        path = paths.connection_info(self.base_path, component)
        try:
            data, _ = self.client.get(path, watch=lambda event: self._events.put(("verify", component, session_id)))
            if LeaderInformation.from_bytes(data) == LeaderInformation(address, session_id):
                return
        except NoNodeError:
            pass
        except (ValueError, KeyError):
            pass
        logger.info("%s: connection info of %s was changed or removed; publishing it again", self.name, component)
        try:
            self._write_connection_info(component, address, session_id, self.fence(session_id))
        except FencingError:
            pass

    def _delete_own_connection_info(self, component: str, session_id: uuid.UUID) -> None:
        path = paths.connection_info(self.base_path, component)
        try:
            data, stat = self.client.get(path)
            if LeaderInformation.from_bytes(data).session_id == session_id:
                self.client.delete(path, version=stat.version)
        except (NoNodeError, ValueError, KeyError):
            pass
        except KazooException as exc:
            logger.info("%s could not remove its connection info %s: %s", self.name, path, exc)
