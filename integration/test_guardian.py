"""The JobManager's guardian (deploy/guardian.py) on a real cluster, with a ZooKeeper session timeout far
longer than the test's deadlines (30 s), so that only the guardian can explain a quick failover:

- the leader's JobManager SIGKILLed: its guardian closes its session, the standby leads at once and the
  job ends with every number committed once;
- the leader stopped (SIGSTOP, a hang): no failover while it hangs, whatever the guardian sees; killed
  while stopped, it fails over at once;
- the guardian killed first: the JobManager runs on, and its death later fails over only by the session
  timeout, as without a guardian."""

from __future__ import annotations

import json
import signal
import time
import urllib.request
from pathlib import Path
from typing import Callable

import pytest

from ha_flink.testing.cluster import Cluster, DaemonProcess
from ha_flink.testing.processes import wait_for
from integration.test_checkpoints import FAST_RESTARTS, committed_numbers, completed_ids

HERE = Path(__file__).resolve().parent
SESSION_TIMEOUT = {"high-availability.zookeeper.client.session-timeout": "30 s"}
# well under the session timeout: a failover this quick is the guardian's
QUICK = 10.0


def leads(daemon: DaemonProcess) -> bool:
    return "Granted leadership" in daemon.output()


@pytest.fixture
def guarded(cluster_factory: Callable[..., Cluster]) -> tuple[Cluster, DaemonProcess, DaemonProcess]:
    cluster = cluster_factory(**SESSION_TIMEOUT, **FAST_RESTARTS)
    first = cluster.start_leader(guardian=True)
    assert first.guarded_pid is not None and first.guarded_pid != first.pid
    standby = cluster.start_jobmanager()
    cluster.start_taskmanager()
    return cluster, first, standby


def test_a_killed_jobmanager_hands_over_at_once_and_the_job_is_exact(
        guarded: tuple[Cluster, DaemonProcess, DaemonProcess], tmp_path: Path) -> None:
    cluster, first, standby = guarded
    n, out = 9000, tmp_path / "out"
    submitted = cluster.flink("run", "-d", "-py", str(HERE / "exactly_once_file_job.py"), str(out), str(n),
                              "3000", "-1")
    assert submitted.returncode == 0, submitted.stderr
    job_id = cluster.job_id(submitted)
    wait_for(lambda: len(completed_ids(first.output())) >= 2, 30, what="completed checkpoints")
    first.kill(signal.SIGKILL)  # the JobManager, not its guardian
    wait_for(lambda: leads(standby), QUICK, 0.01, what="the standby to lead well before the session timeout")
    first.process.wait(15)
    assert first.process.returncode == 128 + signal.SIGKILL  # (the guardian ends with its JobManager's code)
    assert "closed its ZooKeeper session" in first.output()
    wait_for(lambda: '"status": "FINISHED"' in cluster.job_result(job_id), 60, what="the job to finish")
    assert committed_numbers(out) == list(range(1, n + 1))  # none lost, none twice


def test_a_hanging_jobmanager_keeps_its_leadership_until_it_dies(
        guarded: tuple[Cluster, DaemonProcess, DaemonProcess]) -> None:
    _, first, standby = guarded
    pid = first.guarded_pid
    assert pid is not None
    first.kill(signal.SIGSTOP)
    try:
        hung = time.monotonic()
        while time.monotonic() - hung < 4.0:  # (a hang is not an exit: the guardian does nothing)
            assert not leads(standby), "the standby took over from a JobManager that only hangs"
            time.sleep(0.1)
    finally:
        first.kill(signal.SIGKILL)  # (killed while stopped: now it is gone)
    wait_for(lambda: leads(standby), QUICK, 0.01, what="the standby to lead once the hung JobManager died")


def test_without_its_guardian_a_jobmanager_fails_over_by_the_session_timeout(
        cluster_factory: Callable[..., Cluster]) -> None:
    cluster = cluster_factory(**{"high-availability.zookeeper.client.session-timeout": "6 s"})
    first = cluster.start_leader(guardian=True)
    standby = cluster.start_jobmanager()
    pid = first.guarded_pid
    assert pid is not None
    first.kill_guardian(signal.SIGKILL)
    first.process.wait(10)
    assert Path(f"/proc/{pid}").exists() and not leads(standby)  # the JobManager runs on, and leads
    first.kill(signal.SIGKILL)
    # nothing closed its session: its latch node is still in the election (the standby lists it) until
    # ZooKeeper expires the session; only then does the standby lead
    assert str(pid) in [m["pid"] for m in masters(standby)]
    wait_for(lambda: leads(standby), 30, 0.05, what="the standby to lead after the session timeout")
    assert str(pid) not in [m["pid"] for m in masters(standby)]


def masters(daemon: DaemonProcess) -> list[dict[str, str]]:
    with urllib.request.urlopen(f"{daemon.rest_address()}/cluster/ha", timeout=10) as answer:
        return list(json.loads(answer.read())["masters"])
