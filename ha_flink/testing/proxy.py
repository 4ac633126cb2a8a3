"""A TCP proxy on a loopback port in front of a real server, for tests that cut connections: `cut()`
drops every connection and refuses new ones (a partition), `heal()` lets them through again. With a
`ready` check, a new connection is refused (closed at once) while the server behind is not ready, so a
client never sits on a half-started server (kazoo waits a whole session timeout for an answer there).

`cut_process(pid)` partitions one client process only: its connections stop carrying bytes (left open, as
packets lost on a real partition would leave them) and new connections it opens are accepted but never
answered, while every other client goes on; `heal_process(pid)` closes what was held so it reconnects.
Which process owns a connection is read from /proc (the client socket's inode among the process's fds).

It forwards bytes unchanged: the client still talks to the real server."""

from __future__ import annotations

import os
import socket
import threading
from typing import Callable

from ha_flink.testing.processes import free_port


class TcpProxy:
    def __init__(self, target: tuple[str, int], ready: Callable[[], bool] = lambda: True,
                 host: str = "127.0.0.1") -> None:
        self.target = target
        self.ready = ready
        self.host = host
        self.port = free_port(host)
        self._open = True
        self._connections: set[socket.socket] = set()
        self._peers: dict[socket.socket, socket.socket] = {}  # client -> server side of each link
        self._cut_pids: set[int] = set()
        self._silenced: set[socket.socket] = set()  # sockets whose bytes are dropped (either side of a link)
        self._held: dict[int, list[socket.socket]] = {}  # cut pid -> its connections held unanswered
        self._lock = threading.Lock()
        self._listener = socket.create_server((host, self.port))
        self._closed = threading.Event()
        threading.Thread(target=self._accept_loop, name=f"proxy-{self.port}", daemon=True).start()

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def cut(self) -> None:
        """Drop every connection and refuse new ones, as a network partition would."""
        self._open = False
        with self._lock:
            connections, self._connections = self._connections, set()
        for sock in connections:
            _close(sock)

    def heal(self) -> None:
        self._open = True

    def cut_process(self, pid: int) -> None:
        """Partition the client process `pid` from the server (the others still get through)."""
        with self._lock:
            self._cut_pids.add(pid)
            links = list(self._peers.items())
        for client, server in links:
            if self._owner(client) == pid:
                with self._lock:
                    self._silenced.update((client, server))
                    self._held.setdefault(pid, []).append(client)

    def heal_process(self, pid: int) -> None:
        """End the partition of `pid`: what it held open is closed, so it reconnects at once."""
        with self._lock:
            self._cut_pids.discard(pid)
            held = self._held.pop(pid, [])
        for sock in held:
            _close(sock)

    def _owner(self, client: socket.socket) -> int | None:
        """The cut process (if any) whose socket is the other end of `client`."""
        with self._lock:
            pids = set(self._cut_pids)
        if not pids:
            return None
        try:
            peer_port = client.getpeername()[1]
        except OSError:
            return None
        inode = _socket_inode(peer_port, self.port)
        for pid in pids:
            if inode is not None and inode in _socket_inodes(pid):
                return pid
        return None

    def close(self) -> None:
        self._closed.set()
        self.cut()
        _close(self._listener)

    def _accept_loop(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if not self._open or not self.ready():
                _close(client)
                continue
            owner = self._owner(client)
            if owner is not None:  # accepted, never answered: a connect across a partition times out
                with self._lock:
                    self._held.setdefault(owner, []).append(client)
                continue
            try:
                server = socket.create_connection(self.target, timeout=2)
                server.settimeout(None)
            except OSError:
                _close(client)
                continue
            with self._lock:
                self._connections.update((client, server))
                self._peers[client] = server
            for source, sink in ((client, server), (server, client)):
                threading.Thread(target=self._pipe, args=(source, sink), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                if source not in self._silenced:
                    sink.sendall(data)
        except OSError:
            pass
        finally:
            _close(source)
            _close(sink)
            with self._lock:
                for sock in (source, sink):
                    self._connections.discard(sock)
                    self._peers.pop(sock, None)
                    self._silenced.discard(sock)


def _close(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    try:
        sock.close()
    except OSError:
        pass


def _socket_inode(local_port: int, remote_port: int) -> int | None:
    """The inode of this host's loopback TCP socket from `local_port` to `remote_port` (/proc/net/tcp)."""
    try:
        rows = open("/proc/net/tcp").read().splitlines()[1:]
    except OSError:
        return None
    for row in rows:
        fields = row.split()
        if int(fields[1].split(":")[1], 16) == local_port and int(fields[2].split(":")[1], 16) == remote_port:
            return int(fields[9])
    return None


def _socket_inodes(pid: int) -> set[int]:
    found = set()
    try:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if target.startswith("socket:["):
                found.add(int(target[8:-1]))
    except OSError:
        pass
    return found
