"""Leader election, connection info and retrieval against real ZooKeeper servers."""

from __future__ import annotations

import signal
import time
import uuid
from dataclasses import dataclass
from typing import Callable

import pytest
from kazoo.client import KazooClient

from ha_flink.ha import paths
from ha_flink.ha.fencing import FencingError
from ha_flink.ha.leader_election import LeaderInformation
from ha_flink.ha.leader_retrieval import LeaderRetrieval
from ha_flink.testing.processes import wait_for
from ha_flink.deploy.zookeeper import server_mode
from ha_flink.testing.proxy import TcpProxy
from ha_flink.testing.zookeeper import (
    ZooKeeperEnsemble, ZooKeeperServer, delete_tree_at_once, expire_client_session,
)

from .conftest import ContenderProcess, Participant


def leaders(group: list[Participant]) -> list[Participant]:
    return [p for p in group if p.contender.leading is not None]


def test_ten_contenders_each_lead_once_and_never_two_at_a_time(
    zookeeper: ZooKeeperEnsemble, participants: Callable[..., Participant],
    kazoo_factory: Callable[..., KazooClient], zk_root: str,
) -> None:
    group = [participants(zookeeper, zk_root, f"c{i}") for i in range(10)]
    observer = kazoo_factory(zookeeper)
    led: list[str] = []
    while len(led) < 10:
        wait_for(lambda: len(leaders(group)) == 1, 10, what="exactly one leader")
        # At every step, from a separate client: one latch node is lowest, and it is the leader's.
        (leader,) = leaders(group)
        latches = sorted(observer.get_children(paths.latch_dir(zk_root)), key=lambda n: int(n.rsplit("-", 1)[1]))
        assert f"{paths.latch_dir(zk_root)}/{latches[0]}" == leader.election.latch_path
        assert len(latches) == 10 - len(led)
        assert leader.contender.name not in led
        led.append(leader.contender.name)
        assert sum(1 for p in group if p.election.leader_session_id is not None) == 1
        leader.election.close()
        assert leader.contender.leading is None
    assert sorted(led) == sorted(f"c{i}" for i in range(10))
    assert all(len(p.contender.grants) == 1 for p in group)


def test_each_grant_has_a_fresh_session_id(
    zookeeper: ZooKeeperEnsemble, participants: Callable[..., Participant], zk_root: str
) -> None:
    first = participants(zookeeper, zk_root, "first")
    wait_for(lambda: first.contender.leading, 10, what="a grant")
    first.election.close()
    second = participants(zookeeper, zk_root, "second")
    wait_for(lambda: second.contender.leading, 10, what="a grant")
    assert first.contender.grants[0] != second.contender.grants[0]


def test_sigkilled_leader_is_followed_after_its_session_expires(
    zookeeper: ZooKeeperEnsemble, participants: Callable[..., Participant],
    contender_process: Callable[..., ContenderProcess], kazoo_factory: Callable[..., KazooClient], zk_root: str,
) -> None:
    killed = contender_process(zookeeper, zk_root, "doomed", session_timeout=2.0)
    wait_for(killed.granted, 10, what="the process contender to lead")
    standby = participants(zookeeper, zk_root, "standby")
    assert standby.contender.leading is None
    observer = kazoo_factory(zookeeper)
    dead_latch = killed.latch_path()
    killed.process.send_signal(signal.SIGKILL)
    killed.process.wait(10)
    wait_for(lambda: standby.contender.leading, 15, what="the standby to be granted")
    # It was granted only once the dead leader's session had expired: its latch node is gone.
    assert observer.exists(dead_latch) is None
    # The dead leader's published connection info went with its session.
    assert observer.exists(paths.connection_info(zk_root, paths.DISPATCHER)) is None


def test_graceful_close_hands_over_without_waiting_for_the_session_timeout(
    zookeeper: ZooKeeperEnsemble, participants: Callable[..., Participant],
    contender_process: Callable[..., ContenderProcess], zk_root: str,
) -> None:
    # A 30 s session: a hand-over within the 10 s deadline cannot have waited for an expiry.
    leaving = contender_process(zookeeper, zk_root, "leaving", session_timeout=30.0)
    wait_for(leaving.granted, 10, what="the process contender to lead")
    standby = participants(zookeeper, zk_root, "standby", timeout=30.0)
    signaled = time.monotonic()
    leaving.process.send_signal(signal.SIGTERM)
    wait_for(lambda: standby.contender.leading, 10, what="the standby to be granted after SIGTERM")
    assert time.monotonic() - signaled < 30.0
    assert leaving.process.wait(10) == 0
    assert "closed" in leaving.lines()


def test_session_expiry_revokes_refuses_fenced_writes_and_rejoins_as_standby(
    zookeeper: ZooKeeperEnsemble, participants: Callable[..., Participant],
    kazoo_factory: Callable[..., KazooClient], zk_root: str,
) -> None:
    leader = participants(zookeeper, zk_root, "leader", timeout=4.0)
    standby = participants(zookeeper, zk_root, "standby", timeout=4.0)
    session = wait_for(lambda: leader.contender.leading, 10, what="a leader")
    fence = leader.election.fence(session)
    observer = kazoo_factory(zookeeper)

    expire_client_session(leader.client)
    wait_for(lambda: leader.contender.leading is None, 10, what="the expired leader to be revoked")
    wait_for(lambda: standby.contender.leading, 10, what="the standby to take over")

    tx = fence.transaction()
    tx.create(f"{zk_root}/written-by-deposed-leader", b"x")
    with pytest.raises(FencingError, match="has lost its leadership"):
        fence.commit(tx)
    assert observer.exists(f"{zk_root}/written-by-deposed-leader") is None
    # The old leader joined again, behind the new one.
    wait_for(lambda: leader.election.latch_path is not None and observer.exists(leader.election.latch_path),
             10, what="the expired leader to re-join")
    assert leader.contender.leading is None and len(leader.contender.grants) == 1


def test_leader_whose_latch_node_is_deleted_cannot_write_and_is_revoked(
    zookeeper: ZooKeeperEnsemble, participants: Callable[..., Participant],
    kazoo_factory: Callable[..., KazooClient], zk_root: str,
) -> None:
    leader = participants(zookeeper, zk_root, "leader")
    session = wait_for(lambda: leader.contender.leading, 10, what="a leader")
    fence = leader.election.fence(session)
    # Another client removes the latch node behind the leader's back; the very next write is refused by
    # ZooKeeper itself (the transaction's check), whatever the leader believes.
    kazoo_factory(zookeeper).delete(leader.election.latch_path)
    tx = fence.transaction()
    tx.create(f"{zk_root}/x", b"x")
    # Refused either by ZooKeeper (the check) or, once the leader saw its node go, by the leader itself.
    with pytest.raises(FencingError, match="has lost its leadership"):
        fence.commit(tx)
    assert kazoo_factory(zookeeper).exists(f"{zk_root}/x") is None
    # It watches its own node: it is revoked, joins again and, alone, leads again with a new session id.
    new_session = wait_for(lambda: leader.contender.revocations == 1 and leader.contender.leading, 10,
                           what="revocation and a new grant")
    assert new_session != session


def test_the_latch_folder_deleted_behind_the_election_revokes_and_the_election_goes_on(
    zookeeper: ZooKeeperEnsemble, participants: Callable[..., Participant],
    kazoo_factory: Callable[..., KazooClient], zk_root: str,
) -> None:
    group = [participants(zookeeper, zk_root, f"c{i}") for i in range(3)]
    wait_for(lambda: len(leaders(group)) == 1, 10, what="a leader")
    (first,) = leaders(group)
    session = first.contender.leading
    fence = first.election.fence(session)
    stranger = kazoo_factory(zookeeper)
    stranger.create(f"{paths.latch_dir(zk_root)}/not-a-contender", b"")  # a stranger's node is no contender
    delete_tree_at_once(stranger, paths.latch_dir(zk_root))  # a stray `deleteall`
    # The leader gives up at once, everyone joins again in a folder made anew, and one of them leads.
    wait_for(lambda: first.contender.revocations >= 1, 10, what="the leader to be revoked")
    with pytest.raises(FencingError):
        tx = fence.transaction()
        tx.create(f"{zk_root}/x", b"x")
        fence.commit(tx)
    wait_for(lambda: len(leaders(group)) == 1 and all(p.election.latch_path for p in group)
             and len(stranger.get_children(paths.latch_dir(zk_root))) == 3, 10, what="a new leader, all rejoined")
    (second,) = leaders(group)
    assert second.contender.leading != session
    # ... and the election still works: the new leader leaves, another leads.
    second.election.close()
    wait_for(lambda: len(leaders(group)) == 1, 10, what="the next leader")
    assert leaders(group)[0] is not second


def test_a_fenced_write_that_finds_the_latch_gone_revokes_at_once(
    zookeeper: ZooKeeperEnsemble, participants: Callable[..., Participant],
    kazoo_factory: Callable[..., KazooClient], zk_root: str,
) -> None:
    leader = participants(zookeeper, zk_root, "leader")
    session = wait_for(lambda: leader.contender.leading, 10, what="a leader")
    fence = leader.election.fence(session)
    # The node is deleted, and the leader's own watch on it is lost (as when its event is still queued):
    # the failing write is what tells the election, which revokes and rejoins. (The watch was registered
    # at the grant, so its event is dropped on its way into the election's queue, and waited for: one that
    # got through would revoke before the write and the write would fail for that reason instead.)
    events = leader.election._events
    put, dropped = events.put, []

    def drop_checks(item: object, *args: object, **kwargs: object) -> None:
        if item == ("check",):
            dropped.append(item)
        else:
            put(item, *args, **kwargs)

    events.put = drop_checks  # type: ignore[method-assign]
    kazoo_factory(zookeeper).delete(leader.election.latch_path)
    wait_for(lambda: dropped, 10, what="the watch event of the deleted latch node")
    events.put = put  # type: ignore[method-assign]
    tx = fence.transaction()
    tx.create(f"{zk_root}/x", b"x")
    with pytest.raises(FencingError, match="its latch node .* is gone"):
        fence.commit(tx)
    wait_for(lambda: leader.contender.revocations == 1, 5, what="the revocation the refused write caused")


def test_connection_info_is_published_and_republished_if_overwritten(
    zookeeper: ZooKeeperEnsemble, participants: Callable[..., Participant],
    kazoo_factory: Callable[..., KazooClient], zk_root: str,
) -> None:
    leader = participants(zookeeper, zk_root, "leader")
    session = wait_for(lambda: leader.contender.leading, 10, what="a leader")
    leader.election.publish(paths.DISPATCHER, "host-a:6123", session)
    path = paths.connection_info(zk_root, paths.DISPATCHER)
    observer = kazoo_factory(zookeeper)
    data, stat = observer.get(path)
    assert LeaderInformation.from_bytes(data) == LeaderInformation("host-a:6123", session)
    assert stat.ephemeralOwner == leader.client.client_id[0]

    observer.set(path, b'{"address": "impostor:1", "session_id": "%s"}' % str(uuid.uuid4()).encode())
    wait_for(lambda: LeaderInformation.from_bytes(observer.get(path)[0]).address == "host-a:6123", 10,
             what="the overwritten connection info to be restored")
    observer.delete(path)
    wait_for(lambda: observer.exists(path) and
             LeaderInformation.from_bytes(observer.get(path)[0]).session_id == session, 10,
             what="the deleted connection info to be restored")


def test_retrieval_follows_the_leader_across_a_handover(
    zookeeper: ZooKeeperEnsemble, participants: Callable[..., Participant],
    kazoo_factory: Callable[..., KazooClient], zk_root: str,
) -> None:
    seen: list[tuple[str | None, uuid.UUID | None]] = []
    retrieval = LeaderRetrieval(kazoo_factory(zookeeper), zk_root, paths.DISPATCHER)
    retrieval.start(lambda address, session: seen.append((address, session)))
    try:
        wait_for(lambda: seen == [(None, None)], 10, what="'no leader' before any leader")
        first = participants(zookeeper, zk_root, "first")
        s1 = wait_for(lambda: first.contender.leading, 10, what="a leader")
        first.election.publish(paths.DISPATCHER, "first:1", s1)
        second = participants(zookeeper, zk_root, "second")
        wait_for(lambda: seen[-1] == ("first:1", s1), 10, what="retrieval of the first leader")
        first.election.close()
        s2 = wait_for(lambda: second.contender.leading, 10, what="the second leader")
        second.election.publish(paths.DISPATCHER, "second:2", s2)
        wait_for(lambda: seen[-1] == ("second:2", s2), 10, what="retrieval of the second leader")
    finally:
        retrieval.stop()


@pytest.mark.parametrize("tolerate", [False, True], ids=["revoke-on-suspended", "tolerate-suspended"])
def test_zookeeper_restart_suspends_then_recovers(
    zookeeper_factory: Callable[[int], ZooKeeperEnsemble], tcp_proxy: Callable[..., TcpProxy],
    participants: Callable[..., Participant], kazoo_factory: Callable[..., KazooClient], tolerate: bool,
) -> None:
    ensemble = zookeeper_factory(1)
    (server,) = ensemble.servers
    # Clients reach the server through a proxy that admits connections only while it serves: kazoo would
    # otherwise wait a whole session timeout on a connection the starting server accepted but ignores.
    proxy = tcp_proxy((server.host, server.client_port),
                      ready=lambda: server_mode(server.host, server.client_port) is not None)
    ensemble = ZooKeeperEnsemble([_AddressOverride(server, proxy.address)])
    # A session long enough to outlive the restart: the connection is SUSPENDED, never LOST.
    leader = participants(ensemble, "/flink/default", "leader", timeout=20.0, tolerate_suspended=tolerate)
    session = wait_for(lambda: leader.contender.leading, 10, what="a leader")
    leader.election.publish(paths.DISPATCHER, "leader:1", session)
    seen: list[tuple[str | None, uuid.UUID | None]] = []
    retrieval = LeaderRetrieval(kazoo_factory(ensemble, timeout=20.0), "/flink/default", paths.DISPATCHER,
                                tolerate_suspended=tolerate)
    retrieval.start(lambda address, s: seen.append((address, s)))
    try:
        wait_for(lambda: seen and seen[-1] == ("leader:1", session), 10, what="the leader to be retrieved")
        server.stop()
        if tolerate:
            wait_for(lambda: leader.client.state == "SUSPENDED", 10, what="SUSPENDED")
            assert leader.contender.revocations == 0 and leader.contender.leading == session
        else:
            wait_for(lambda: leader.contender.leading is None, 10, what="revocation on SUSPENDED")
            wait_for(lambda: seen[-1] == (None, None), 10, what="retrieval to report no leader")
        server.start()
        if tolerate:
            wait_for(lambda: leader.client.state == "CONNECTED", 30, what="reconnect")
            assert leader.contender.grants == [session] and leader.contender.revocations == 0
        else:
            new_session = wait_for(lambda: leader.contender.leading, 30, what="leadership again after reconnect")
            assert new_session != session
            leader.election.publish(paths.DISPATCHER, "leader:1", new_session)
            session = new_session
        wait_for(lambda: seen[-1] == ("leader:1", session), 30, what="retrieval of the leader again")
    finally:
        retrieval.stop()


@dataclass
class _AddressOverride:
    """A server as clients see it through a proxy: only its address differs."""

    server: ZooKeeperServer
    address: str


def connected_port(client: KazooClient) -> int:
    return client._connection._socket.getpeername()[1]


def start_again(*servers: ZooKeeperServer) -> None:
    """Start killed servers together (a lone one cannot serve without the others) and wait until they do."""
    for server in servers:
        server.start(wait=False)
    for server in servers:
        server.wait_serving()


def test_ensemble_keeps_the_leader_with_one_node_lost_and_revokes_without_quorum(
    zookeeper_factory: Callable[[int], ZooKeeperEnsemble], participants: Callable[..., Participant],
) -> None:
    ensemble = zookeeper_factory(3)
    leader = participants(ensemble, "/flink/default", "leader", timeout=20.0)
    session = wait_for(lambda: leader.contender.leading, 10, what="a leader")
    # Lose a node the leader is not connected to: the quorum stays, nothing is revoked.
    port = connected_port(leader.client)
    first = next(s for s in ensemble.servers if s.client_port != port)
    first.kill()
    leader.client.get("/")  # a round trip through the remaining quorum
    assert leader.contender.revocations == 0 and leader.contender.leading == session
    # Lose a second node: no quorum, the connection is SUSPENDED, leadership revoked.
    second = next(s for s in ensemble.servers if s.running and s is not first)
    second.kill()
    wait_for(lambda: leader.contender.leading is None, 20, what="revocation without quorum")
    # Restore both: a leader again, with a new session id.
    start_again(first, second)
    new_session = wait_for(lambda: leader.contender.leading, 30, what="leadership once the quorum is back")
    assert new_session != session


def test_tolerant_leader_survives_the_loss_of_its_own_node(
    zookeeper_factory: Callable[[int], ZooKeeperEnsemble], participants: Callable[..., Participant],
) -> None:
    ensemble = zookeeper_factory(3)
    leader = participants(ensemble, "/flink/default", "leader", timeout=20.0, tolerate_suspended=True)
    session = wait_for(lambda: leader.contender.leading, 10, what="a leader")
    port = connected_port(leader.client)
    next(s for s in ensemble.servers if s.client_port == port).kill()
    wait_for(lambda: leader.client.state == "CONNECTED" and leader.client._connection._socket is not None
             and connected_port(leader.client) != port, 20, what="a move to another node")
    fence = leader.election.fence(session)
    tx = fence.transaction()
    tx.create("/flink/default/still-leading", b"")
    fence.commit(tx)
    assert leader.contender.revocations == 0 and leader.contender.grants == [session]


def test_tolerant_leader_cut_off_from_the_quorum_revokes_once_the_session_timeout_has_passed(
    zookeeper_factory: Callable[[int], ZooKeeperEnsemble], participants: Callable[..., Participant],
) -> None:
    """kazoo reports LOST only when it reaches a server again; without a quorum a tolerant leader would
    stay SUSPENDED, and leading, for as long as the outage lasts."""
    ensemble = zookeeper_factory(3)
    leader = participants(ensemble, "/flink/default", "leader", timeout=4.0, tolerate_suspended=True)
    session = wait_for(lambda: leader.contender.leading, 10, what="a leader")
    leader.election.publish(paths.DISPATCHER, "leader:1", session)
    port = connected_port(leader.client)
    own = next(s for s in ensemble.servers if s.client_port == port)
    other = next(s for s in ensemble.servers if s is not own)
    other.kill()
    own.kill()
    wait_for(lambda: leader.client.state == "SUSPENDED", 20, what="SUSPENDED")
    assert leader.contender.revocations == 0  # tolerated at first
    wait_for(lambda: leader.contender.leading is None, 20, what="revocation once the session timeout passed")
    assert leader.election.leader_session_id is None
    start_again(own, other)
    new_session = wait_for(lambda: leader.contender.leading, 30, what="leadership once the quorum is back")
    assert new_session != session
    # the session outlived the outage, so the old connection info was still there: it goes, the new stays
    leader.election.publish(paths.DISPATCHER, "leader:1", new_session)
    node = paths.connection_info("/flink/default", paths.DISPATCHER)
    wait_for(lambda: LeaderInformation.from_bytes(leader.client.get(node)[0]).session_id == new_session, 10,
             what="the new connection info")


def test_contenders_are_listed_in_latch_order_with_the_info_they_joined_with(
    zookeeper: ZooKeeperEnsemble, kazoo_factory: Callable[..., KazooClient], zk_root: str
) -> None:
    from ha_flink.ha.leader_election import LeaderElection, list_contenders

    from .conftest import RecordingContender

    elections = []
    try:
        for name in ("first", "second"):
            election = LeaderElection(kazoo_factory(zookeeper), zk_root, name=name,
                                      contender_info={"name": name, "rest": f"http://{name}:8081"})
            election.start(RecordingContender(name))
            wait_for(lambda: election.latch_path is not None, 10, what=f"{name} to join")
            elections.append(election)
        observer = kazoo_factory(zookeeper)
        listed = list_contenders(observer, zk_root)
        assert [(c["name"], c["rest"]) for c in listed] == [("first", "http://first:8081"),
                                                            ("second", "http://second:8081")]
        assert [c["latch"] for c in listed] == [e.latch_path.rsplit("/", 1)[1] for e in elections]
        elections[0].close()
        wait_for(lambda: [c["name"] for c in list_contenders(observer, zk_root)] == ["second"], 10,
                 what="the first contender to leave the list")
    finally:
        for election in elections:
            election.close()
    assert list_contenders(observer, zk_root + "/nothing-here") == []
