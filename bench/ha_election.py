"""Figures of the ZooKeeper HA services (issue: ZooKeeper HA services), against a real ZooKeeper server:

1. graceful close of the leader -> the standby's grant (goal: median < 100 ms);
2. SIGKILL of a leader in its own process -> the standby's grant, session timeout 2 s
   (goal: median < session timeout + 300 ms);
3. ZooKeeper requests per completed checkpoint added to the store, for 1, 5 and 20 retained checkpoints,
   counted by the server (`mntr` zk_packets_received) (goal: constant, <= 3).

Run: `.venv/bin/python bench/ha_election.py [--runs N] [--no-record]`."""

from __future__ import annotations

import argparse
import signal
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from kazoo.client import KazooClient  # noqa: E402

from bench.common import report, spread  # noqa: E402
from ha_flink.config import Configuration  # noqa: E402
from ha_flink.deploy.zookeeper import four_letter_word  # noqa: E402
from ha_flink.ha.checkpoint_store import CompletedCheckpoint  # noqa: E402
from ha_flink.ha.fencing import Fence  # noqa: E402
from ha_flink.ha.leader_election import LeaderElection  # noqa: E402
from ha_flink.ha.services import ZooKeeperHaServices  # noqa: E402
from ha_flink.testing.processes import start_process, stop_process, wait_for  # noqa: E402
from ha_flink.testing.zookeeper import ZooKeeperEnsemble  # noqa: E402


class TimedContender:
    def __init__(self) -> None:
        self.granted_at: float | None = None
        self.event = threading.Event()

    def grant(self, session_id: uuid.UUID) -> None:
        self.granted_at = time.monotonic()
        self.event.set()

    def revoke(self) -> None:
        pass


def join(ensemble: ZooKeeperEnsemble, base: str, timeout: float) -> tuple[KazooClient, LeaderElection, TimedContender]:
    client = KazooClient(hosts=ensemble.connect_string, timeout=timeout)
    client.start(15)
    election = LeaderElection(client, base, name="bench")
    contender = TimedContender()
    election.start(contender)
    wait_for(lambda: election.latch_path is not None, 10)
    return client, election, contender


def close(client: KazooClient, election: LeaderElection) -> None:
    election.close()
    client.stop()
    client.close()


def graceful_handover(ensemble: ZooKeeperEnsemble, runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        base = f"/bench/{uuid.uuid4().hex}"
        leader = join(ensemble, base, 10)
        leader[2].event.wait(10)
        standby = join(ensemble, base, 10)
        started = time.monotonic()
        leader[1].close()
        if not standby[2].event.wait(10):
            raise RuntimeError("standby was not granted within 10 s")
        times.append(standby[2].granted_at - started)
        leader[0].stop()
        leader[0].close()
        close(standby[0], standby[1])
    return times


def sigkill_handover(ensemble: ZooKeeperEnsemble, runs: int, session_timeout: float, workdir: Path) -> list[float]:
    times = []
    for i in range(runs):
        base = f"/bench/{uuid.uuid4().hex}"
        out = workdir / f"contender-{i}.out"
        process = start_process([sys.executable, "-m", "ha_flink.testing.contender_process", ensemble.connect_string,
                                 base, str(session_timeout), f"killed-{i}"], out)
        try:
            wait_for(lambda: out.exists() and "granted" in out.read_text(), 20, what="the process to lead")
            standby = join(ensemble, base, session_timeout)
            started = time.monotonic()
            process.send_signal(signal.SIGKILL)
            if not standby[2].event.wait(session_timeout * 5):
                raise RuntimeError("standby was not granted after the kill")
            times.append(standby[2].granted_at - started)
            close(standby[0], standby[1])
        finally:
            stop_process(process)
    return times


def packets_received(ensemble: ZooKeeperEnsemble) -> int:
    server = ensemble.servers[0]
    for line in four_letter_word(server.host, server.client_port, "mntr").splitlines():
        if line.startswith("zk_packets_received"):
            return int(line.split()[1])
    raise RuntimeError("mntr gave no zk_packets_received")


def requests_per_checkpoint(ensemble: ZooKeeperEnsemble, retained: int, adds: int, workdir: Path) -> float:
    config = Configuration({
        "high-availability": "zookeeper", "high-availability.zookeeper.quorum": ensemble.connect_string,
        "high-availability.zookeeper.path.root": f"/bench-{uuid.uuid4().hex}",
        "high-availability.storageDir": str(workdir / "ha"),
        "high-availability.zookeeper.client.session-timeout": "60 s",  # no pings during the count
    })
    services = ZooKeeperHaServices(config)
    try:
        job = uuid.uuid4().hex
        store = services.checkpoint_store(job, Fence.unfenced(services.client), max_retained=retained)
        for i in range(1, retained + 2):  # fill up: the steady state subsumes one per add
            store.add_checkpoint_and_subsume_old_ones(CompletedCheckpoint(job, i, time.time(), f"file:///chk-{i}"))
        baseline_start = packets_received(ensemble)
        baseline = packets_received(ensemble) - baseline_start  # what the mntr connection itself adds
        before = packets_received(ensemble)
        for i in range(retained + 2, retained + 2 + adds):
            store.add_checkpoint_and_subsume_old_ones(CompletedCheckpoint(job, i, time.time(), f"file:///chk-{i}"))
        return (packets_received(ensemble) - before - baseline) / adds
    finally:
        services.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=20, help="graceful hand-overs to time (SIGKILL: a quarter)")
    parser.add_argument("--no-record", action="store_true", help="print only; do not append to BENCHMARKS.md")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        ensemble = ZooKeeperEnsemble.create(workdir / "zk", 1)
        ensemble.start()
        try:
            graceful = graceful_handover(ensemble, args.runs)
            killed = sigkill_handover(ensemble, max(5, args.runs // 4), 2.0, workdir)
            per_add = {r: requests_per_checkpoint(ensemble, r, 50, workdir) for r in (1, 5, 20)}
        finally:
            ensemble.stop()

    def ms(values: list[float]) -> str:
        return spread(values, 1000, "ms", 0)

    table = "\n".join([
        "| figure | measured | goal |",
        "|---|---|---|",
        f"| graceful close of the leader -> next grant | {ms(graceful)} | median < 100 ms |",
        f"| SIGKILL of the leader -> next grant, session timeout 2 s | {ms(killed)} | median < 2300 ms |",
        *(f"| ZooKeeper requests per checkpoint added, {r} retained | {v:.2f} | constant, <= 3 |"
          for r, v in per_add.items()),
    ])
    report("ZooKeeper HA services: leader hand-over and checkpoint store", "make bench (bench/ha_election.py)",
           table, "ZooKeeper 3.8 (Debian), one server on loopback, tickTime 200 ms. Requests counted by the server "
           "(mntr zk_packets_received), so every round trip counts, reads included.", not args.no_record)


if __name__ == "__main__":
    main()
