"""The daemons as processes: their log files, and how they refuse to start."""

from __future__ import annotations

import getpass
import socket
import subprocess
import sys
from pathlib import Path
from typing import Callable

from ha_flink.testing.cluster import REPO, Cluster

DAEMONS = REPO / "daemons"


def run_daemon(script: str, conf_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(DAEMONS / script), "--configDir", str(conf_dir), *args],
                          capture_output=True, text=True, timeout=60)


def test_each_daemon_logs_to_its_own_numbered_file(cluster_factory: Callable[..., Cluster]) -> None:
    cluster = cluster_factory()
    cluster.start_jobmanager()
    cluster.start_jobmanager()
    cluster.start_taskmanager()
    logs = sorted(p.name for p in (cluster.directory / "log").glob("flink-*.log"))
    user, host = getpass.getuser(), socket.gethostname()
    assert logs == sorted([f"flink-{user}-standalonesession-0-{host}.log",
                           f"flink-{user}-standalonesession-1-{host}.log",
                           f"flink-{user}-taskexecutor-0-{host}.log"])
    assert "contending for leadership" in (cluster.directory / "log" / logs[0]).read_text()


def test_a_bad_config_value_stops_the_daemon_with_file_line_and_key(tmp_path: Path) -> None:
    (tmp_path / "flink-conf.yaml").write_text("rest.port: 8081\nheartbeat.interval: soon\n")
    result = run_daemon("taskexecutor.py", tmp_path)
    assert result.returncode == 1
    assert f"taskexecutor: cannot start: {tmp_path}/flink-conf.yaml:2: heartbeat.interval: 'soon'" in result.stderr


def test_a_port_in_use_stops_the_jobmanager_with_the_port_named(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("0.0.0.0", 0))
        taken.listen()
        port = taken.getsockname()[1]
        (tmp_path / "flink-conf.yaml").write_text(f"rest.port: {port}\njobmanager.rpc.port: 0\n"
                                                  f"env.log.dir: {tmp_path}/log\n")
        result = run_daemon("standalonesession.py", tmp_path)
    assert result.returncode == 1
    assert f"cannot bind the REST port 0.0.0.0:{port} (rest.port)" in result.stderr


def test_zookeeper_ha_without_a_quorum_is_refused(tmp_path: Path) -> None:
    (tmp_path / "flink-conf.yaml").write_text(f"high-availability.type: zookeeper\n"
                                              f"high-availability.storageDir: {tmp_path}/ha\n")
    result = run_daemon("standalonesession.py", tmp_path)
    assert result.returncode == 1
    assert "high-availability.zookeeper.quorum: is not set" in result.stderr


def test_a_taskmanager_over_its_process_size_stops_saying_so(cluster_factory: Callable[..., Cluster]) -> None:
    """`taskmanager.memory.process.size` is the TaskManager's memory limit (it used to be read and ignored):
    one whose resident memory passes it logs the key and both figures and stops (exit 1) as on SIGTERM, so
    its tasks fail over as from any stopped TaskManager; one under its limit runs on."""
    from ha_flink.testing.processes import wait_for

    roomy = cluster_factory(**{"taskmanager.memory.process.size": "2g"})
    roomy.start_leader()
    running = roomy.start_taskmanager()
    small = cluster_factory(**{"taskmanager.memory.process.size": "40m"})
    small.start_leader()
    doomed = small.start_taskmanager()
    wait_for(lambda: doomed.process.poll() is not None, 30, what="the TaskManager over its limit to stop")
    assert doomed.process.returncode == 1
    log = doomed.output()
    assert "taskmanager.memory.process.size is 40 MiB, but this process holds" in log, log[-2000:]
    assert running.process.poll() is None  # (2 GiB: far above what it holds)
