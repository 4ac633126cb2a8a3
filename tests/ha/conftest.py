"""Helpers for the HA tests: contenders that record what they were told, in this process or in another."""

from __future__ import annotations

import subprocess
import sys
import threading
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import pytest
from kazoo.client import KazooClient

from ha_flink.ha.leader_election import LeaderElection
from ha_flink.testing.processes import start_process, stop_process, wait_for
from ha_flink.testing.proxy import TcpProxy
from ha_flink.testing.zookeeper import ZooKeeperEnsemble


@dataclass
class RecordingContender:
    """Records grants and revocations; `leading` is the current session id or None."""

    name: str
    leading: uuid.UUID | None = None
    grants: list[uuid.UUID] = field(default_factory=list)
    revocations: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def grant(self, session_id: uuid.UUID) -> None:
        with self.lock:
            self.leading = session_id
            self.grants.append(session_id)

    def revoke(self) -> None:
        with self.lock:
            self.leading = None
            self.revocations += 1


@dataclass
class Participant:
    client: KazooClient
    election: LeaderElection
    contender: RecordingContender


@pytest.fixture
def participants(kazoo_factory: Callable[..., KazooClient]) -> Iterator[Callable[..., Participant]]:
    """`participants(ensemble, base_path, name, timeout=..., tolerate_suspended=...)`: a contender with a
    ZooKeeper session of its own, started in the election; closed after the test."""
    made: list[Participant] = []

    def create(ensemble: ZooKeeperEnsemble, base_path: str, name: str, timeout: float = 10.0,
               tolerate_suspended: bool = False) -> Participant:
        client = kazoo_factory(ensemble, timeout=timeout)
        election = LeaderElection(client, base_path, tolerate_suspended=tolerate_suspended, name=name)
        contender = RecordingContender(name)
        election.start(contender)
        wait_for(lambda: election.latch_path is not None, 10, what=f"{name} to join the election")
        participant = Participant(client, election, contender)
        made.append(participant)
        return participant

    yield create
    for participant in made:
        participant.election.close()


@pytest.fixture
def tcp_proxy() -> Iterator[Callable[..., TcpProxy]]:
    """`tcp_proxy(target, ready)`: a proxy closed when the test ends. Ask for it before `participants` so
    that it outlives their teardown (their clients still talk through it)."""
    made: list[TcpProxy] = []

    def create(target: tuple[str, int], ready: Callable[[], bool] = lambda: True) -> TcpProxy:
        proxy = TcpProxy(target, ready)
        made.append(proxy)
        return proxy

    yield create
    for proxy in made:
        proxy.close()


@dataclass
class ContenderProcess:
    process: subprocess.Popen[bytes]
    output: Path

    def lines(self) -> list[str]:
        return self.output.read_text().splitlines() if self.output.exists() else []

    def granted(self) -> bool:
        return any(line.startswith("granted ") for line in self.lines())

    def latch_path(self) -> str | None:
        return next((line.split()[1] for line in self.lines() if line.startswith("joined ")), None)


@pytest.fixture
def contender_process(tmp_path: Path) -> Iterator[Callable[..., ContenderProcess]]:
    """`contender_process(ensemble, base_path, name, session_timeout)`: a contender in its own OS process."""
    started: list[ContenderProcess] = []

    def start(ensemble: ZooKeeperEnsemble, base_path: str, name: str, session_timeout: float) -> ContenderProcess:
        output = tmp_path / f"{name}.out"
        process = start_process([sys.executable, "-m", "ha_flink.testing.contender_process",
                                 ensemble.connect_string, base_path, str(session_timeout), name], output)
        contender = ContenderProcess(process, output)
        started.append(contender)
        wait_for(contender.latch_path, 20, what=f"{name} (pid {process.pid}) to join the election")
        return contender

    yield start
    for contender in started:
        stop_process(contender.process)
