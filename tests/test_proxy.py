"""The test TCP proxy's partition of one client process: its bytes stop (the connection stays open, as on a
lost network), a new connection of it is never answered, every other client goes on; healing closes what
it held."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
from typing import Iterator

import pytest

from ha_flink.testing.processes import stop_process, wait_for
from ha_flink.testing.proxy import TcpProxy

# A client process: sends a line through the proxy on each line of its stdin, prints what comes back
# (or TIMEOUT), and on "new" opens a fresh connection first.
CLIENT = """
import socket, sys
address = (sys.argv[1], int(sys.argv[2]))
sock = socket.create_connection(address, timeout=1)
for line in sys.stdin:
    try:
        if line.strip() == "new":
            sock = socket.create_connection(address, timeout=1)
        sock.sendall(b"ping\\n")
        data = sock.recv(100)
        print(data.decode().strip() or "CLOSED", flush=True)
    except OSError as error:
        print("TIMEOUT" if isinstance(error, socket.timeout) else "CLOSED", flush=True)
"""


@pytest.fixture
def echo_proxy() -> Iterator[TcpProxy]:
    server = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return

            def echo(conn: socket.socket = conn) -> None:
                with conn:
                    while data := conn.recv(100):
                        conn.sendall(data)

            threading.Thread(target=echo, daemon=True).start()

    threading.Thread(target=serve, daemon=True).start()
    proxy = TcpProxy(server.getsockname())
    yield proxy
    proxy.close()
    server.close()


def test_one_process_is_cut_off_while_another_client_goes_on(echo_proxy: TcpProxy) -> None:
    client = subprocess.Popen([sys.executable, "-c", CLIENT, echo_proxy.host, str(echo_proxy.port)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, start_new_session=True)
    mine = socket.create_connection((echo_proxy.host, echo_proxy.port), timeout=2)
    try:
        def ask(line: str = "") -> str:
            client.stdin.write(f"{line}\n")
            client.stdin.flush()
            return client.stdout.readline().strip()

        assert ask() == "ping"
        echo_proxy.cut_process(client.pid)
        assert ask() == "TIMEOUT"  # its connection is open but carries nothing
        assert ask("new") == "TIMEOUT"  # a new one is accepted and never answered
        mine.sendall(b"still here")  # this process's connection was left alone
        assert wait_for(lambda: mine.recv(100), 5, what="the echo") == b"still here"
        echo_proxy.heal_process(client.pid)
        assert ask() == "CLOSED"  # what it held was closed: it reconnects
        assert ask("new") == "ping"
    finally:
        mine.close()
        stop_process(client)
