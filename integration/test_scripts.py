"""The bin/ scripts for real: start-cluster.sh / stop-cluster.sh with JobManagers here and TaskManagers on
"remote" hosts 127.0.0.2 and 127.0.0.3 reached through a real OpenSSH sshd (paramiko on our side),
jobmanager.sh / taskmanager.sh with their pid files, start-zookeeper-quorum.sh with a 3-node ensemble, and
how each reports bad input. Every process a test starts is killed by pid when it ends."""

from __future__ import annotations

import getpass
import socket
import subprocess
from pathlib import Path
from typing import Callable, Iterator

import pytest

from ha_flink.deploy.flink_daemon import DaemonOperation, HostContext
from ha_flink.deploy.runner import HostBatch, Runner
from ha_flink.deploy.ssh import parse_ssh_opts
from ha_flink.testing.processes import free_ports, wait_for
from ha_flink.testing.script_cluster import ScriptCluster
from ha_flink.testing.sinks import read_collected
from integration.word_count_job import expected_counts
from ha_flink.testing.sshd import SshServer
from ha_flink.testing.zookeeper import ZooKeeperEnsemble

HERE = Path(__file__).resolve().parent
HOST = socket.gethostname()
USER = getpass.getuser()

pytestmark = pytest.mark.integration


@pytest.fixture
def script_cluster(zookeeper: ZooKeeperEnsemble, tmp_path: Path) -> Iterator[Callable[..., ScriptCluster]]:
    """`script_cluster(masters=[...], slaves=[...], settings={...})`: a conf dir on the shared ZooKeeper (or
    `quorum`); every process started for it is killed by pid after the test."""
    made: list[ScriptCluster] = []

    def create(masters: list[str], slaves: list[str], quorum: str | None = None, zoo_cfg: str | None = None,
               settings: dict[str, str] | None = None) -> ScriptCluster:
        cluster = ScriptCluster(tmp_path / f"cluster{len(made)}", quorum or zookeeper.connect_string, masters,
                                slaves, settings or {}, zoo_cfg)
        cluster.write_conf()
        made.append(cluster)
        return cluster

    try:
        yield create
    finally:
        for cluster in made:
            cluster.kill_all()


def wait_for_cluster(cluster: ScriptCluster, rest_port: int, task_managers: int, timeout: float = 30) -> dict:
    """The /overview of a cluster whose leader is elected and whose TaskManagers all registered, with the
    leader's REST address (from /cluster/ha) as "leader"."""
    def ready() -> dict | None:
        overview = cluster.rest(rest_port, "/overview")
        ha = cluster.rest(rest_port, "/cluster/ha")
        if isinstance(overview, dict) and isinstance(ha, dict) and ha.get("leader") \
                and overview["taskmanagers"] == task_managers:
            return {**overview, "leader": ha["leader"]["rest-address"]}
        return None

    return wait_for(ready, timeout, 0.1, f"a leader and {task_managers} TaskManagers at port {rest_port}")


def all_gone(pids: list[int]) -> bool:
    from ha_flink.deploy.pidfile import command_line

    return all(command_line(pid) is None for pid in pids)


def test_start_cluster_with_three_masters_and_two_ssh_workers_runs_a_job_and_stops(
    script_cluster: Callable[..., ScriptCluster], sshd: SshServer, tmp_path: Path
) -> None:
    ports = free_ports(3)
    cluster = script_cluster(masters=[f"127.0.0.1:{ports[0]}", f"localhost:{ports[1]}", f"127.0.0.1:{ports[2]}"],
                             slaves=["127.0.0.2", "127.0.0.3"], settings={"env.ssh.opts": sshd.ssh_opts})
    started = cluster.run("start-cluster.sh")
    assert started.returncode == 0, started.stdout + started.stderr
    out = started.stdout
    assert out.startswith("Starting HA cluster with 3 masters.\n")
    assert out.count(f"Starting standalonesession daemon on host {HOST}.") == 3
    assert out.count(f"Starting taskexecutor daemon on host {HOST}.") == 2
    for label in (f"standalonesession on 127.0.0.1:{ports[0]}: running", f"standalonesession on localhost:{ports[1]}: "
                  "running", "taskexecutor on 127.0.0.2: running", "taskexecutor on 127.0.0.3: running"):
        assert label in out, out
    assert "All 5 daemons are running." in out
    # the two workers were started through sshd, not directly
    assert sshd.log_path.read_text().count("Accepted publickey") >= 2

    pids = cluster.pid_files()
    assert len(pids["standalonesession"]) == 3 and len(pids["taskexecutor"]) == 2
    logs = sorted(p.name for p in cluster.log_dir.iterdir())
    for daemon, count in (("standalonesession", 3), ("taskexecutor", 2)):
        for n in range(count):
            assert f"flink-{USER}-{daemon}-{n}-{HOST}.log" in logs and f"flink-{USER}-{daemon}-{n}-{HOST}.out" in logs
            # each .out is its daemon's own (its stderr names the .log it took)
            out_text = (cluster.log_dir / f"flink-{USER}-{daemon}-{n}-{HOST}.out").read_text()
            assert f"-{daemon}-{n}-{HOST}.log" in out_text and "READY " in out_text, out_text

    # every JobManager answers (a standby by asking the leader): one leader, both TaskManagers registered
    leaders = {wait_for_cluster(cluster, port, 2)["leader"] for port in ports}
    assert len(leaders) == 1
    assert len(cluster.rest(ports[1], "/taskmanagers")["taskmanagers"]) == 2

    job_out = tmp_path / "job-out"
    ran = cluster.flink("run", "-py", str(HERE / "word_count_job.py"), str(job_out), "100")
    assert ran.returncode == 0, ran.stdout + ran.stderr
    final: dict[str, int] = {}
    for word, count in read_collected(job_out):
        final[word] = max(final.get(word, 0), count)
    assert final == expected_counts(100)

    everything = [pid for group in pids.values() for pid in group]
    stopped = cluster.run("stop-cluster.sh")
    assert stopped.returncode == 0, stopped.stdout + stopped.stderr
    assert stopped.stdout.count("Stopping taskexecutor daemon (pid: ") == 2
    assert stopped.stdout.count("Stopping standalonesession daemon (pid: ") == 3
    assert "Stopped 5 daemon(s)." in stopped.stdout
    assert all_gone(everything) and cluster.processes() == []
    assert list(cluster.pid_dir.glob("*.pid")) == []


def test_unreachable_host_and_port_in_use_are_reported_and_the_rest_starts(
    script_cluster: Callable[..., ScriptCluster], sshd: SshServer
) -> None:
    with socket.socket() as taken:
        taken.bind(("0.0.0.0", 0))
        taken.listen()
        busy = taken.getsockname()[1]
        free = free_ports(1)[0]
        # sshd listens on 127.0.0.1-3 only: 127.0.0.4 refuses the connection
        cluster = script_cluster(masters=[f"127.0.0.1:{free}", f"127.0.0.1:{busy}"],
                                 slaves=["127.0.0.2", "127.0.0.4"], settings={"env.ssh.opts": sshd.ssh_opts})
        started = cluster.run("start-cluster.sh")
    out = started.stdout
    assert started.returncode == 1, out + started.stderr
    assert f"[ERROR] 127.0.0.4: cannot reach 127.0.0.4 over SSH: connection refused at 127.0.0.4 port {sshd.port} " \
           "(no SSH server listening there?)" in out
    assert "taskexecutor on 127.0.0.4: NOT STARTED: cannot reach 127.0.0.4 over SSH" in out
    assert f"standalonesession on 127.0.0.1:{busy}: FAILED: exited at start with status 1: standalonesession: " \
           f"cannot start: cannot bind the REST port 127.0.0.1:{busy}" in out
    assert f"standalonesession on 127.0.0.1:{free}: running" in out
    assert "taskexecutor on 127.0.0.2: running" in out
    assert "2 of 4 daemons are running; 2 did not start" in out
    # the pid files list exactly what runs; the leader has the one reachable TaskManager
    pids = cluster.pid_files()
    assert len(pids["standalonesession"]) == 1 and len(pids["taskexecutor"]) == 1
    wait_for_cluster(cluster, free, 1)

    stopped = cluster.run("stop-cluster.sh")
    assert stopped.returncode == 1  # 127.0.0.4 still cannot be reached
    assert "[ERROR] 127.0.0.4: cannot reach 127.0.0.4 over SSH: connection refused" in stopped.stdout
    assert "Stopped 2 daemon(s)" in stopped.stdout
    assert cluster.processes() == [] and list(cluster.pid_dir.glob("*.pid")) == []


def test_bad_files_are_named_and_nothing_starts(script_cluster: Callable[..., ScriptCluster]) -> None:
    cluster = script_cluster(masters=["localhost:8081"], slaves=["localhost"])
    (cluster.conf_dir / "masters").unlink()
    result = cluster.run("start-cluster.sh")
    assert result.returncode == 1
    assert f"No masters file. Please specify masters in '{cluster.conf_dir / 'masters'}'." in result.stdout

    (cluster.conf_dir / "masters").write_text("localhost:8081\nlocalhost:80a1\n")
    result = cluster.run("start-cluster.sh")
    assert result.returncode == 1
    assert f"{cluster.conf_dir / 'masters'}:2: '80a1' in 'localhost:80a1' is not a web UI port" in result.stdout

    (cluster.conf_dir / "masters").write_text("localhost:8081\n")
    (cluster.conf_dir / "slaves").write_text("localhost\nworker one\n")
    result = cluster.run("start-cluster.sh")
    assert result.returncode == 1
    assert f"{cluster.conf_dir / 'slaves'}:2: malformed line 'worker one'" in result.stdout

    (cluster.conf_dir / "slaves").write_text("localhost\n")
    with (cluster.conf_dir / "flink-conf.yaml").open("a") as conf:
        conf.write("env.ssh.opts: -J jumphost -p 22\n")
    result = cluster.run("start-cluster.sh")
    assert result.returncode == 1
    assert "env.ssh.opts: -J is not supported by ha-flink's SSH client (paramiko)" in result.stdout

    result = cluster.run("start-zookeeper-quorum.sh")
    assert result.returncode == 1
    assert f"[ERROR] No ZooKeeper configuration file found in '{cluster.conf_dir / 'zoo.cfg'}'." in result.stdout

    cluster.write_conf()  # the good files again
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = taken.getsockname()[1]
        (cluster.conf_dir / "zoo.cfg").write_text(f"dataDir={cluster.directory}/zk\nclientPort={busy}\n"
                                                  "clientPortAddress=127.0.0.1\nserver.1=localhost:2888:3888\n")
        result = cluster.run("start-zookeeper-quorum.sh")
    assert result.returncode == 1
    assert f"zookeeper server.1 (localhost, client port {busy}): FAILED: the client port 127.0.0.1:{busy} is " \
           "already in use by another process" in result.stdout

    result = cluster.run("jobmanager.sh", "begin")
    assert result.returncode == 1 and "Usage: jobmanager.sh ((start|start-foreground) [host] [webui-port])" \
        in result.stderr
    assert cluster.processes() == [] and list(cluster.pid_dir.glob("*.pid")) == []


def test_a_remote_host_without_the_install_path_is_named(tmp_path: Path, sshd: SshServer) -> None:
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "flink-conf.yaml").write_text(f"env.pid.dir: {tmp_path}/pid\n")
    lines: list[str] = []
    context = HostContext.load(tmp_path / "conf", lines.append, install=tmp_path / "not-installed")
    runner = Runner(context, parse_ssh_opts(sshd.ssh_opts))
    operation = DaemonOperation("start", "taskexecutor", label="127.0.0.2")
    [report] = runner.run([HostBatch("127.0.0.2", False, [operation])])
    assert report.error == (f"ha-flink is not installed at {tmp_path / 'not-installed'} on this host "
                            f"({tmp_path / 'not-installed' / 'bin' / 'flink-daemon.sh'} is missing); Flink's scripts "
                            "need the same install path on every host")
    assert lines == [f"[ERROR] 127.0.0.2: {report.error}"]


def test_jobmanager_and_taskmanager_scripts_keep_flinks_pid_files(
    script_cluster: Callable[..., ScriptCluster]
) -> None:
    port = free_ports(1)[0]
    cluster = script_cluster(masters=[], slaves=[])
    first = cluster.run("taskmanager.sh", "start")
    second = cluster.run("taskmanager.sh", "start")
    jobmanager = cluster.run("jobmanager.sh", "start", "127.0.0.1", str(port))
    assert first.returncode == second.returncode == jobmanager.returncode == 0, second.stdout + jobmanager.stdout
    assert first.stdout == f"Starting taskexecutor daemon on host {HOST}.\n"
    assert second.stdout == (f"[INFO] 1 instance(s) of taskexecutor are already running on {HOST}.\n"
                             f"Starting taskexecutor daemon on host {HOST}.\n")
    pid_file = cluster.pid_dir / f"flink-{USER}-taskexecutor.pid"
    older, newer = (int(line) for line in pid_file.read_text().split())
    wait_for_cluster(cluster, port, 2)

    # a stale pid (its process is gone) is cleaned, never signalled
    pid_file.write_text(f"{older}\n{newer}\n999999999\n")
    stopped = cluster.run("taskmanager.sh", "stop")
    assert stopped.returncode == 0
    assert stopped.stdout == (f"No taskexecutor daemon (pid: 999999999) is running anymore on {HOST}.\n"
                              f"Stopping taskexecutor daemon (pid: {newer}) on host {HOST}.\n")
    assert pid_file.read_text() == f"{older}\n" and all_gone([newer])

    stopped = cluster.run("taskmanager.sh", "stop-all")
    assert stopped.stdout == f"Stopping taskexecutor daemon (pid: {older}) on host {HOST}.\n"
    assert not pid_file.exists() and all_gone([older])
    again = cluster.run("taskmanager.sh", "stop")
    assert again.stdout == f"No taskexecutor daemon to stop on host {HOST}.\n"

    stopped = cluster.run("jobmanager.sh", "stop-all")
    assert stopped.returncode == 0 and "Stopping standalonesession daemon (pid: " in stopped.stdout
    assert cluster.processes() == [] and list(cluster.pid_dir.glob("*.pid")) == []


def test_zookeeper_quorum_script_runs_a_three_node_ensemble_that_a_cluster_uses(
    script_cluster: Callable[..., ScriptCluster], sshd: SshServer, tmp_path: Path
) -> None:
    ports = free_ports(10)
    # server 1 here, servers 2 and 3 on the "remote" hosts 127.0.0.2 and .3 (over SSH); each serves
    # clients on its own loopback address
    servers = "".join(f"server.{i}=127.0.0.{i}:{ports[3 * i - 2]}:{ports[3 * i - 1]};127.0.0.{i}:{ports[3 * i]}\n"
                      for i in (1, 2, 3))
    zoo_cfg = f"tickTime=200\ninitLimit=20\nsyncLimit=10\ndataDir={tmp_path}/cluster0/zk\n{servers}" \
              "server.4=not a host line\n"
    quorum = ",".join(f"127.0.0.{i}:{ports[3 * i]}" for i in (1, 2, 3))
    cluster = script_cluster(masters=[f"127.0.0.1:{ports[0]}"], slaves=["localhost"], quorum=quorum,
                             zoo_cfg=zoo_cfg, settings={"env.ssh.opts": sshd.ssh_opts})
    started = cluster.run("start-zookeeper-quorum.sh")
    out = started.stdout
    assert started.returncode == 0, out + started.stderr
    assert "[WARN] Parse error. Skipping config entry 'server.4=not a host line'" in out
    assert f"({cluster.conf_dir / 'zoo.cfg'}:8:" in out
    assert out.count(f"Starting zookeeper daemon on host {HOST}.") == 3
    modes = [line.rsplit(": ", 1)[1].split()[0] for line in out.splitlines() if line.startswith("  zookeeper server.")]
    assert sorted(modes) == ["follower", "follower", "leader"], out
    assert f"high-availability.zookeeper.quorum: {quorum}" in out
    for i in (1, 2, 3):
        assert (tmp_path / "cluster0" / "zk" / f"server-{i}" / "myid").read_text() == f"{i}\n"

    again = cluster.run("start-zookeeper-quorum.sh")
    assert again.returncode == 0 and again.stdout.count("is already running on host") == 3

    assert cluster.run("start-cluster.sh").returncode == 0
    wait_for_cluster(cluster, ports[0], 1)
    assert cluster.run("stop-cluster.sh").returncode == 0

    stopped = cluster.run("stop-zookeeper-quorum.sh")
    assert stopped.returncode == 0, stopped.stdout + stopped.stderr
    assert "Stopped 3 ZooKeeper server(s)." in stopped.stdout
    assert cluster.processes() == [] and list(cluster.pid_dir.glob("*.pid")) == []


def test_without_high_availability_one_jobmanager_starts_here(script_cluster: Callable[..., ScriptCluster]) -> None:
    rest_port, rpc_port = free_ports(2)
    cluster = script_cluster(masters=["node-that-is-not-used:8081"], slaves=["localhost"],
                             settings={"high-availability.type": "NONE", "jobmanager.rpc.address": "127.0.0.1",
                                       "jobmanager.rpc.port": str(rpc_port), "rest.port": str(rest_port)})
    started = cluster.run("start-cluster.sh")
    assert started.returncode == 0, started.stdout + started.stderr
    assert started.stdout.startswith(f"Starting cluster.\nStarting standalonesession daemon on host {HOST}.\n")
    assert "All 2 daemons are running." in started.stdout
    wait_for_cluster(cluster, rest_port, 1)
    ha = cluster.rest(rest_port, "/cluster/ha")  # one JobManager, no election: it leads
    assert ha["high-availability"] == "NONE" and ha["zookeeper"]["state"] == "NONE"
    assert ha["answered-by"]["role"] == "leader" and not ha["election-in-progress"]
    assert [m["role"] for m in ha["masters"]] == ["leader"]
    assert ha["leader"]["rest-address"].endswith(f":{rest_port}")
    stopped = cluster.run("stop-cluster.sh")
    assert stopped.returncode == 0 and "Stopped 2 daemon(s)." in stopped.stdout
    assert cluster.processes() == []


def test_ssh_refusals_are_named_with_their_reason(tmp_path: Path, sshd: SshServer) -> None:
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text("")
    stranger = tmp_path / "stranger_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(stranger)], check=True, timeout=30)
    (tmp_path / "conf").mkdir()
    operation = DaemonOperation("status", "taskexecutor", label="127.0.0.2")
    cases = {
        # strict host key checking (ssh's default) and a host key nobody has seen
        f"-p {sshd.port} -i {sshd.client_key} -o UserKnownHostsFile={known_hosts}":
            f"cannot reach 127.0.0.2 over SSH: the host key of 127.0.0.2 is unknown: add it to known_hosts "
            f"(ssh-keyscan -p {sshd.port} 127.0.0.2 >> ~/.ssh/known_hosts) or set -o StrictHostKeyChecking=no",
        # a key the server does not accept
        f"-p {sshd.port} -i {stranger} -o StrictHostKeyChecking=no":
            f"cannot reach 127.0.0.2 over SSH: authentication as '{USER}' failed (tried {stranger})",
    }
    for ssh_opts, reason in cases.items():
        context = HostContext.load(tmp_path / "conf", lambda line: None)
        [report] = Runner(context, parse_ssh_opts(ssh_opts)).run([HostBatch("127.0.0.2", False, [operation])])
        assert report.error is not None and report.error.startswith(reason), report.error
