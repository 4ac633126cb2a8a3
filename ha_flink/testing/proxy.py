"""A TCP proxy on a loopback port in front of a real server, for tests that cut connections: `cut()`
drops every connection and refuses new ones (a partition), `heal()` lets them through again. With a
`ready` check, a new connection is refused (closed at once) while the server behind is not ready, so a
client never sits on a half-started server (kazoo waits a whole session timeout for an answer there).

It forwards bytes unchanged: the client still talks to the real server."""

from __future__ import annotations

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
            try:
                server = socket.create_connection(self.target, timeout=2)
                server.settimeout(None)
            except OSError:
                _close(client)
                continue
            with self._lock:
                self._connections.update((client, server))
            for source, sink in ((client, server), (server, client)):
                threading.Thread(target=self._pipe, args=(source, sink), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                sink.sendall(data)
        except OSError:
            pass
        finally:
            _close(source)
            _close(sink)
            with self._lock:
                self._connections.discard(source)
                self._connections.discard(sink)


def _close(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    try:
        sock.close()
    except OSError:
        pass
