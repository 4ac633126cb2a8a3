"""Leader retrieval: follow one component's connection info (`leader/<component>/connection_info`) and
tell a listener `(address, session_id)`, or `(None, None)` for "no leader", whenever that changes.

"No leader" is also reported when the connection is SUSPENDED (unless suspended connections are
tolerated) and when the session is LOST: a TaskManager must not keep talking to a leader it can no longer
verify. After a reconnect the node is read again. Listeners are called from one worker thread, in order,
never from kazoo's threads."""

from __future__ import annotations

import logging
import queue
import threading
import uuid
from typing import Any, Callable

from kazoo.client import KazooClient, KazooState
from kazoo.exceptions import ConnectionLoss, NoNodeError, SessionExpiredError

from ha_flink.ha import paths
from ha_flink.ha.leader_election import LeaderInformation

logger = logging.getLogger(__name__)

LeaderListener = Callable[[str | None, uuid.UUID | None], None]


class LeaderRetrieval:
    def __init__(self, client: KazooClient, base_path: str, component: str, *,
                 tolerate_suspended: bool = False) -> None:
        self.client = client
        self.component = component
        self.path = paths.connection_info(base_path, component)
        self.tolerate_suspended = tolerate_suspended
        self._events: queue.Queue[tuple[Any, ...]] = queue.Queue()
        self._listener: LeaderListener | None = None
        self._last: LeaderInformation | None = None
        self._notified = False
        self._worker: threading.Thread | None = None
        self._lock = threading.Lock()

    def start(self, listener: LeaderListener) -> None:
        self._listener = listener
        self.client.add_listener(self._on_connection_state)
        self._worker = threading.Thread(target=self._run, name=f"leader-retrieval-{self.component}", daemon=True)
        self._worker.start()
        self._events.put(("read",))

    def stop(self) -> None:
        self.client.remove_listener(self._on_connection_state)
        self._events.put(("stop",))
        if self._worker is not None and self._worker is not threading.current_thread():
            self._worker.join(timeout=10)

    @property
    def leader(self) -> LeaderInformation | None:
        with self._lock:
            return self._last

    def _on_connection_state(self, state: KazooState) -> None:
        if state == KazooState.LOST or (state == KazooState.SUSPENDED and not self.tolerate_suspended):
            self._events.put(("none",))
        elif state == KazooState.CONNECTED:
            self._events.put(("read",))

    def _on_watch(self, event: object) -> None:
        self._events.put(("read",))

    def _run(self) -> None:
        while True:
            kind = self._events.get()[0]
            if kind == "stop":
                return
            try:
                if kind == "none":
                    self._notify(None)
                elif kind == "read":
                    self._read()
            except (ConnectionLoss, SessionExpiredError):
                pass  # the state event that follows brings us back here
            except Exception:
                logger.exception("leader retrieval of %s failed", self.component)

    def _read(self) -> None:
        if self.client.state != KazooState.CONNECTED:
            return
        try:
            data, _ = self.client.get(self.path, watch=self._on_watch)
        except NoNodeError:
            # Watch for its creation.
            if self.client.exists(self.path, watch=self._on_watch) is not None:
                self._events.put(("read",))
            self._notify(None)
            return
        try:
            info = LeaderInformation.from_bytes(data)
        except (ValueError, KeyError) as exc:
            logger.warning("unreadable leader information at %s (%s); treating as no leader", self.path, exc)
            info = None
        self._notify(info)

    def _notify(self, info: LeaderInformation | None) -> None:
        with self._lock:
            if self._notified and info == self._last:
                return
            self._last, self._notified = info, True
        if self._listener is not None:
            if info is None:
                self._listener(None, None)
            else:
                self._listener(info.address, info.session_id)
