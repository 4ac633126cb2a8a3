"""The real-ZooKeeper fixtures themselves: a server that serves, an ensemble that survives one lost node,
and a session expiry that is real on the server (ephemeral nodes vanish), not faked in the client."""

from __future__ import annotations

import os
import threading
from typing import Callable

import pytest
from kazoo.client import KazooClient, KazooState

from ha_flink.deploy.zookeeper import server_mode
from ha_flink.testing.processes import wait_for
from ha_flink.testing.zookeeper import ZooKeeperEnsemble, expire_client_session, expire_session


def test_single_node_serves_reads_and_writes(
    zookeeper: ZooKeeperEnsemble, kazoo_factory: Callable[..., KazooClient], zk_root: str
) -> None:
    (server,) = zookeeper.servers
    assert server_mode(server.host, server.client_port) == "standalone"
    client = kazoo_factory(zookeeper)
    client.create(f"{zk_root}/a", b"hello", makepath=True)
    other = kazoo_factory(zookeeper)
    assert other.get(f"{zk_root}/a")[0] == b"hello"


def test_short_sessions_are_allowed(zookeeper: ZooKeeperEnsemble, kazoo_factory: Callable[..., KazooClient]) -> None:
    client = kazoo_factory(zookeeper, timeout=1.0)
    # The server grants what the client asks for when tickTime allows it (min is 2 ticks = 0.4 s).
    assert client._session_timeout == 1000


def test_ensemble_survives_the_loss_of_one_node(
    zookeeper_factory: Callable[[int], ZooKeeperEnsemble], kazoo_factory: Callable[..., KazooClient]
) -> None:
    ensemble = zookeeper_factory(3)
    modes = sorted(server_mode(s.host, s.client_port) or "" for s in ensemble.servers)
    assert modes == ["follower", "follower", "leader"]
    client = kazoo_factory(ensemble, timeout=4.0)
    client.create("/survivor/before", b"1", makepath=True)
    states: list[KazooState] = []
    client.add_listener(states.append)

    # Kill (SIGKILL) the very node this client is connected to, so it has to move.
    host, port = client._connection._socket.getpeername()[:2]
    victim = next(s for s in ensemble.servers if s.client_port == port)
    victim.kill()
    assert not victim.running

    def write_and_read() -> bool:
        try:
            client.create("/survivor/after", b"2")
        except Exception:  # connection loss while the client moves to another node
            return False
        return client.get("/survivor/after")[0] == b"2"

    wait_for(write_and_read, timeout=20, what="a write on the two remaining nodes")
    assert client.get("/survivor/before")[0] == b"1"
    assert KazooState.LOST not in states
    assert client.state == KazooState.CONNECTED
    # The remaining two still form a quorum, one of them leading.
    live = [server_mode(s.host, s.client_port) for s in ensemble.servers if s is not victim]
    assert sorted(live) == ["follower", "leader"]


def test_real_session_expiry_removes_the_victims_ephemeral_node(
    zookeeper: ZooKeeperEnsemble, kazoo_factory: Callable[..., KazooClient], zk_root: str
) -> None:
    victim = kazoo_factory(zookeeper, timeout=4.0)
    observer = kazoo_factory(zookeeper)
    victim.create(f"{zk_root}/owner", b"me", ephemeral=True, makepath=True)
    old_session = victim.client_id[0]
    gone = threading.Event()

    def watch(event: object) -> None:
        gone.set()

    assert observer.exists(f"{zk_root}/owner", watch=watch) is not None
    expire_client_session(victim)
    # The server removed the node when the session ended: the observer sees it go.
    assert gone.wait(10)
    assert observer.exists(f"{zk_root}/owner") is None
    # kazoo then starts a fresh session for the victim.
    wait_for(lambda: victim.state == KazooState.CONNECTED, 10, what="the victim to reconnect")
    assert victim.client_id[0] != old_session


def test_expiring_a_session_of_another_process_by_id(
    zookeeper: ZooKeeperEnsemble, kazoo_factory: Callable[..., KazooClient], zk_root: str
) -> None:
    victim = kazoo_factory(zookeeper, timeout=30.0)
    victim.create(f"{zk_root}/lock", ephemeral=True, makepath=True)
    session_id, password = victim.client_id
    expire_session(zookeeper.connect_string, session_id, password)
    observer = kazoo_factory(zookeeper)
    assert observer.exists(f"{zk_root}/lock") is None
    # A session that has ended cannot be expired again: the helper says so.
    with pytest.raises(RuntimeError, match=f"could not attach to session 0x{session_id:x}: it has already expired"):
        expire_session(zookeeper.connect_string, session_id, password, timeout=3)


def test_a_stopped_server_leaves_no_process(zookeeper_factory: Callable[[int], ZooKeeperEnsemble]) -> None:
    ensemble = zookeeper_factory(1)
    (server,) = ensemble.servers
    pid = server.pid
    assert pid is not None and server.running
    ensemble.stop()
    assert not server.running
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    server.start()
    assert server_mode(server.host, server.client_port) == "standalone"
