"""The HA ZooKeeper client (ha/zookeeper_client.py) when a server of its quorum is gone as a machine goes:
its address answers nothing (no reset; SYNs unanswered). A real ZooKeeper server behind a proxy of this
test, and a loopback port whose accept queue is full, where Linux drops every further SYN."""

from __future__ import annotations

import socket
import threading
from pathlib import Path
from typing import Iterator

import pytest
from kazoo.protocol.states import KazooState

from ha_flink.config import Configuration
from ha_flink.ha.zookeeper_client import start_zookeeper_client
from ha_flink.testing.processes import wait_for
from ha_flink.testing.proxy import TcpProxy
from ha_flink.testing.zookeeper import ZooKeeperEnsemble


@pytest.fixture
def silent_address() -> Iterator[str]:
    """host:port of a listener that never accepts, its queue filled: a connect there waits until it times out."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    address = listener.getsockname()
    fillers = []

    def answers() -> bool:
        try:
            socket.create_connection(address, timeout=0.3).close()
            return True
        except OSError:
            return False

    while answers():  # each connect that completes is one more held in the queue
        filler = socket.socket()
        filler.setblocking(False)
        filler.connect_ex(address)
        fillers.append(filler)
        if len(fillers) > 16:
            pytest.skip("this kernel completes every connect to a full listener (no silent address to be had)")
    try:
        yield f"{address[0]}:{address[1]}"
    finally:
        for filler in fillers:
            filler.close()
        listener.close()


def test_a_session_outlives_losing_its_server_while_the_other_server_never_answers(
        zookeeper: ZooKeeperEnsemble, zk_root: str, silent_address: str, tmp_path: Path) -> None:
    """After its connection drops, the client tries the servers in a random order. kazoo waited the whole
    session timeout on a connect, so trying the silent one first cost the session (its leadership, in a
    JobManager); ZooKeeper's own client waits the session timeout divided by the servers, and so does ours:
    the session survives every drop, whichever server comes first."""
    host, port = zookeeper.connect_string.split(",")[0].rsplit(":", 1)
    proxy = TcpProxy((host, int(port)))
    config = Configuration({
        "high-availability": "zookeeper",
        "high-availability.zookeeper.quorum": f"{silent_address},{proxy.address}",
        "high-availability.zookeeper.path.root": zk_root,
        "high-availability.storageDir": f"file://{tmp_path}/ha",
        "high-availability.zookeeper.client.session-timeout": "6 s",
        "high-availability.zookeeper.client.connection-timeout": "15 s",
    })
    client = start_zookeeper_client(config)
    states: list[KazooState] = []
    lock = threading.Lock()

    def listen(state: KazooState) -> None:
        with lock:
            states.append(state)

    client.add_listener(listen)
    try:
        session = client.client_id
        for drop in range(1, 5):
            proxy.cut()  # the connection drops; the server serves again at once
            proxy.heal()
            wait_for(lambda: states.count(KazooState.CONNECTED) >= drop or KazooState.LOST in states, 30, 0.05,
                     f"the client to reconnect after drop {drop}")
            assert KazooState.LOST not in states, f"the session was lost at drop {drop}: {states}"
            assert client.client_id == session
        assert client.exists("/") is not None
    finally:
        client.stop()
        client.close()
        proxy.close()
