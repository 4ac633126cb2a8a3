"""A chaos run on a cluster started the way a user starts one: `bin/start-zookeeper-quorum.sh` (three
ZooKeeper servers on loopback ports), `bin/start-cluster.sh` (JobManagers of conf/masters, TaskManagers of
conf/slaves), `flink run -d` of the exactly-once job (integration/chaos_job.py); then the seeded faults of
`faults.plan`, each followed by a wait for the job to checkpoint again; then `flink stop --savepointPath`,
a cancelled second job, and the checks of `checker`. Meanwhile a `RestWatcher` asks every JobManager what
the dashboard asks, as a user's open browser tab would: any answer in the 5xx range but 503 ("no leader
at the moment") is a problem.

Faults are real: signals to the processes (found by pid through /proc and the daemons' own logs), ZooKeeper
servers killed and started again by the script, the leader's ZooKeeper connections partitioned (every
ZooKeeper client reaches its server through a TCP proxy of the run's, `ha_flink.testing.proxy`, which
can stop carrying one process's bytes while the others and the TaskManagers' links to that leader go on),
the job's checkpoint folder taken away (a file put in its place; root ignores permission bits, so an
unwritable folder would not stop it); a stranger's ZooKeeper client deleting the latch node, the latch
folder or the job-graph node, or garbling the latest checkpoint pointer; the latest checkpoint handle
deleted or truncated, or the whole HA storage dir taken away, just before the leader is SIGKILLed. Every
process the run started is killed by pid at the end, whatever happened."""

from __future__ import annotations

import collections
import json
import os
import random
import re
import shutil
import signal
import threading
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import cloudpickle
from kazoo.client import KazooClient
from kazoo.security import CREATOR_ALL_ACL

from ha_flink.config import Configuration
from ha_flink.deploy.pidfile import command_line
from ha_flink.fs import Storage, join_url
from ha_flink.fs import unseal
from ha_flink.ha import paths
from ha_flink.ha.leader_election import list_contenders
from ha_flink.ha.state_handle_store import ZooKeeperStateHandleStore
from ha_flink.testing.chaos import faults as F
from ha_flink.testing.chaos.checker import (
    RUNNING, FailoverTiming, OutputCheck, check_output, checkpoint_order_problems, completed_checkpoints,
    failover_timings, leadership_problems,
)
from ha_flink.testing.chaos.logs import COMPLETED, RESTORES, Lifetime, first_after, parse_log
from ha_flink.deploy.zookeeper import server_mode
from ha_flink.testing.processes import free_fixed_ports, wait_for
from ha_flink.testing.proxy import TcpProxy
from ha_flink.testing.s3 import MotoS3Server
from ha_flink.testing.script_cluster import REPO, ScriptCluster
from ha_flink.testing.certificates import create_test_certificates
from ha_flink.testing.zookeeper import (
    SASL_AUTH_PROVIDER, delete_tree_at_once, write_client_jaas, write_server_jaas,
)

JOB = REPO / "integration" / "chaos_job.py"
JOB_START, JOB_KEYS = 1, 17  # as in integration/chaos_job.py


class ChaosFailure(AssertionError):
    """The cluster did not do what a fault should lead to (named, with the seed to repeat it)."""


@dataclass
class ChaosReport:
    seed: int
    faults: list[F.Fault]
    job_id: str = ""
    timings: list[FailoverTiming] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    output: OutputCheck | None = None
    checkpoints: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems and self.output is not None and self.output.ok


class ChaosCluster:
    """Three ZooKeeper servers, `masters` JobManagers and `workers` TaskManagers (one slot each) on this
    host, all started and stopped by the bin/ scripts from a conf dir of their own."""

    def __init__(self, directory: Path, masters: int = 3, workers: int = 3, settings: dict[str, str] | None = None,
                 storage: str = "file", secure: bool = False):
        ports = free_fixed_ports(9 + masters)  # servers here are killed and started again on their ports
        zk_ports = ports[:9]
        self.rest_ports = ports[9:]
        servers = "".join(f"server.{i}=127.0.0.1:{zk_ports[3 * i - 3]}:{zk_ports[3 * i - 2]};127.0.0.1:"
                          f"{zk_ports[3 * i - 1]}\n" for i in (1, 2, 3))
        zoo_cfg = f"tickTime=200\ninitLimit=20\nsyncLimit=10\ndataDir={directory}/zookeeper\n{servers}"
        # secure: mutual TLS on all RPC and REST (a test CA's certificates), ZooKeeper clients authenticated
        # with SASL DIGEST-MD5 and every cluster znode readable and writable only by the cluster's identity
        self.sasl: dict[str, str] | None = None
        security_settings: dict[str, str] = {}
        if secure:
            certificates = create_test_certificates(directory / "certs")
            self.sasl = {"mechanism": "DIGEST-MD5", "username": "flink", "password": "chaos-" + uuid.uuid4().hex}
            jaas = directory / "jaas.conf"
            write_server_jaas(jaas, {"flink": self.sasl["password"]})
            server_section = jaas.read_text()
            write_client_jaas(jaas, "flink", self.sasl["password"])
            jaas.write_text(server_section + jaas.read_text())  # one file: Server for ZooKeeper, Client for us
            zoo_cfg += f"authProvider.1={SASL_AUTH_PROVIDER}\n"
            security_settings = {**certificates.internal_config(), **certificates.rest_config(),
                                 "high-availability.zookeeper.client.acl": "creator",
                                 "env.java.opts.all": f"-Djava.security.auth.login.config={jaas}"}
        # clients reach each server through a proxy: a partition of one process is cut there; a server
        # that does not serve (starting, or without a quorum) is refused at once, as a client would be
        self.proxies = [TcpProxy(("127.0.0.1", port), ready=_serving(port))
                        for port in (zk_ports[2], zk_ports[5], zk_ports[8])]
        quorum = ",".join(proxy.address for proxy in self.proxies)
        self.cluster_id = f"/chaos-{uuid.uuid4().hex[:12]}"
        # Checkpoints on local disk, or on a moto S3 server reached through a proxy (an outage is a cut there:
        # moto keeps its objects in memory, so stopping the process would lose them, which no S3 does).
        self.moto: MotoS3Server | None = None
        self.s3_proxy: TcpProxy | None = None
        storage_settings = {"state.checkpoints.dir": f"file://{directory}/checkpoints"}
        if storage == "s3":
            self.moto = MotoS3Server(directory / "moto", port=free_fixed_ports(1)[0])  # started last
            self.s3_proxy = TcpProxy(("127.0.0.1", self.moto.port))
            storage_settings = {**self.moto.configuration().to_dict(), "s3.endpoint": f"http://{self.s3_proxy.address}",
                                "state.checkpoints.dir": "s3://chaos/checkpoints"}
        elif storage != "file":
            raise ValueError(f"storage {storage!r}: accepted are file and s3")
        chaos_settings = {
            "high-availability.cluster-id": self.cluster_id,
            "high-availability.zookeeper.client.session-timeout": "3 s",
            # a ZooKeeper node lost must not restart anything (DESIGN's failure table); a leader cut off
            # from the quorum still revokes once the session timeout has passed
            "high-availability.zookeeper.client.tolerate-suspended-connections": "true",
            **storage_settings,
            "state.savepoints.dir": f"file://{directory}/savepoints",
            "restart-strategy.type": "fixed-delay",
            "restart-strategy.fixed-delay.attempts": "1000000",
            "restart-strategy.fixed-delay.delay": "100 ms",
            "execution.checkpointing.tolerable-failed-checkpoints": "5",
            **security_settings,
            **(settings or {}),
        }
        self.scripts = ScriptCluster(directory, quorum, [f"127.0.0.1:{port}" for port in self.rest_ports],
                                     ["localhost"] * workers, chaos_settings, zoo_cfg)
        self.scripts.write_conf()
        self.directory = directory
        self.quorum = quorum
        self.workers = workers
        self.checkpoints_dir = storage_settings["state.checkpoints.dir"]
        self.storage = Storage(Configuration(chaos_settings))
        if self.moto is not None:
            self.moto.directory.mkdir(parents=True, exist_ok=True)
            self.moto.start()
            try:
                fs, _ = self.storage.filesystem("s3://chaos")
                fs.mkdir("chaos")  # the bucket
            except Exception:
                self.moto.stop()
                raise

    # -- scripts -------------------------------------------------------------------------------------

    def script(self, name: str, *args: str, timeout: float = 120) -> str:
        done = self.scripts.run(name, *args, timeout=timeout)
        if done.returncode != 0:
            raise ChaosFailure(f"bin/{name} {' '.join(args)} exited with {done.returncode}:\n"
                               f"{done.stdout}{done.stderr}")
        return done.stdout

    def start(self) -> None:
        self.script("start-zookeeper-quorum.sh")
        self.script("start-cluster.sh")
        self.wait_ready()

    def wait_ready(self, timeout: float = 60) -> None:
        def ready() -> bool:
            for port in self.rest_ports:
                overview = self.scripts.rest(port, "/overview")
                if isinstance(overview, dict) and overview.get("taskmanagers") == self.workers:
                    return True
            return False

        wait_for(ready, timeout, 0.1, f"a leader with {self.workers} TaskManagers")

    def stop(self) -> None:
        for name in ("stop-cluster.sh", "stop-zookeeper-quorum.sh"):
            try:
                self.scripts.run(name, timeout=60)
            except Exception:  # noqa: BLE001 - kill_all below ends whatever is left
                pass
        self.scripts.kill_all()
        for proxy in [*self.proxies, *([self.s3_proxy] if self.s3_proxy else [])]:
            proxy.close()
        if self.moto is not None:
            self.moto.stop()

    # -- processes -----------------------------------------------------------------------------------

    def _pids(self, word: str) -> list[int]:
        return [pid for pid in self.scripts.processes() if any(word in part for part in command_line(pid) or [])]

    def jobmanager_port(self, pid: int) -> int:
        argv = command_line(pid) or []
        return int(argv[argv.index("--webui-port") + 1])

    def zookeeper_pids(self) -> dict[int, int]:
        """ZooKeeper server id -> pid, for the servers running."""
        found = {}
        for pid in self._pids("QuorumPeerMain"):
            for part in command_line(pid) or []:
                if part.endswith("/zoo.cfg") and "/server-" in part:
                    found[int(part.rsplit("/server-", 1)[1].split("/")[0])] = pid
        return found

    def lifetimes(self, daemon: str = "standalonesession") -> list[Lifetime]:
        found = []
        for path in sorted(self.scripts.log_dir.glob(f"flink-*-{daemon}-*.log")):
            found += parse_log(path.read_text(errors="replace"), path.name)
        return found

    def leader(self) -> Lifetime:
        """The live JobManager holding the latest-granted leadership that it has not given up."""
        def find() -> Lifetime | None:
            best: tuple[float, Lifetime] | None = None
            for lifetime in self.lifetimes():
                sessions = lifetime.sessions()
                if sessions and sessions[-1].revoked is None and command_line(lifetime.pid) is not None:
                    if best is None or sessions[-1].granted > best[0]:
                        best = (sessions[-1].granted, lifetime)
            return best[1] if best else None

        return wait_for(find, 30, 0.05, "a leading JobManager")

    def busy_taskmanagers(self) -> list[int]:
        """Pids of the TaskManagers running tasks (no free slot), as the leader's REST API tells."""
        answer: dict[str, Any] | None = None
        for port in self.rest_ports:
            reply = self.scripts.rest(port, "/taskmanagers")
            if isinstance(reply, dict):
                answer = reply
                break
        busy = {tm["path"] for tm in (answer or {}).get("taskmanagers", []) if tm["freeSlots"] == 0}
        pids = []
        for lifetime in self.lifetimes("taskexecutor"):
            if command_line(lifetime.pid) is None:
                continue
            for line in lifetime.lines:
                if line.message.startswith("TaskManager ") and " serving at " in line.message and \
                        line.message.split(" serving at ")[1].split()[0] in busy:
                    pids.append(lifetime.pid)
        return pids

    def zookeeper_client(self) -> KazooClient:
        # (secure: as the cluster's identity; a stranger would be refused everything)
        client = KazooClient(hosts=self.quorum, timeout=10, sasl_options=self.sasl,
                             default_acl=CREATOR_ALL_ACL if self.sasl else None)
        client.start(timeout=30)
        return client

    @property
    def base_path(self) -> str:
        return paths.cluster_path("/flink", self.cluster_id)

    @property
    def ha_storage(self) -> Path:
        """Where the job-graph and checkpoint handles are (`<storageDir>/<cluster-id>`)."""
        return self.directory / "ha" / self.cluster_id.strip("/")


def _serving(port: int) -> Callable[[], bool]:
    """Whether the ZooKeeper server at `port` serves (a proxy's `ready`)."""
    return lambda: server_mode("127.0.0.1", port) is not None


def _last_until(deadline: float) -> None:
    """An outage lasts until `deadline` (a fault's length from the seeded plan, not a wait for a condition)."""
    remaining = deadline - time.time()
    if remaining > 0:
        time.sleep(remaining)


def _take_away(folder: Path, what: str) -> Path:
    """A folder unreachable: moved aside, a file in its place (root ignores permission bits). Returns where."""
    away = folder.with_name(folder.name + ".away")
    folder.rename(away)
    folder.write_text(f"not a folder: the chaos run took {what} away\n")
    return away


def _put_back(folder: Path, away: Path) -> None:
    folder.unlink()
    if folder.exists():  # a writer re-created the folder in the instant between: keep both
        shutil.copytree(away, folder, dirs_exist_ok=True)
        shutil.rmtree(away)
    else:
        away.rename(folder)


def _wait_gone(pid: int, timeout: float = 30) -> None:
    wait_for(lambda: command_line(pid) is None, timeout, 0.02, f"process {pid} to end")


class RestWatcher:
    """A thread asking every JobManager's REST API the dashboard's questions every `interval_s` while faults
    happen; a JobManager that does not answer (killed, paused) is skipped, an error answer is recorded."""

    def __init__(self, scripts: ScriptCluster, rest_ports: list[int], job_id: str, interval_s: float = 1.0) -> None:
        self.opener = scripts.rest_opener()
        self.urls = [scripts.rest_url(port, path) for port in rest_ports
                     for path in ("/cluster/ha", "/overview", "/jobs/overview", f"/jobs/{job_id}",
                                  f"/jobs/{job_id}/checkpoints", f"/jobs/{job_id}/exceptions")]
        self.interval_s = interval_s
        self.errors: list[str] = []
        self.answered = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="chaos-rest-watcher", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(30)

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            for url in self.urls:
                try:
                    with self.opener.open(url, timeout=2) as answer:
                        json.load(answer)
                    self.answered += 1
                except urllib.error.HTTPError as error:
                    if error.code >= 500 and error.code != 503:
                        self.errors.append(f"{time.strftime('%H:%M:%S')} GET {url}: {error.code} "
                                           f"{error.read()[:300]!r}")
                except (OSError, ValueError):
                    pass  # down, paused or cut off: nothing to judge


class ChaosRun:
    """One seeded run: the job, the faults, the final checks; `report` says what was seen."""

    def __init__(self, cluster: ChaosCluster, seed: int, counts: dict[str, int], rate: float = 1000.0,
                 parallelism: int = 2, say: Callable[[str], None] = print) -> None:
        self.cluster = cluster
        self.rate = rate
        self.parallelism = parallelism
        self.say = say
        self.report = ChaosReport(seed, F.plan(seed, counts))
        self.out = cluster.directory / "out"
        self.job_id = ""

    # -- helpers -------------------------------------------------------------------------------------

    def _problem(self, text: str) -> None:
        self.say(f"PROBLEM: {text}")
        self.report.problems.append(text)

    def _submit(self, out: Path) -> str:
        done = self.cluster.scripts.flink("run", "-d", "-py", str(JOB), str(out), str(self.rate), str(self.parallelism))
        if done.returncode != 0:
            raise ChaosFailure(f"flink run failed:\n{done.stdout}{done.stderr}")
        return done.stdout.split("JobID ")[1].split()[0]

    def _last_completed(self, job_id: str) -> int:
        completed = completed_checkpoints(self.cluster.lifetimes(), job_id)
        return completed[-1][1] if completed else 0

    def _wait_checkpoint_after(self, since: float, job_id: str, timeout: float = 60,
                               after_running: bool = True) -> None:
        """Until the job's tasks all run again (if a restart was expected) and a checkpoint completed after."""
        def done() -> bool:
            lifetimes = self.cluster.lifetimes()
            start = since
            if after_running:
                running = first_after(lifetimes, RUNNING, since, job_id)
                if running is None:
                    return False
                start = running.time
            return first_after(lifetimes, COMPLETED, start, job_id) is not None

        wait_for(done, timeout, 0.05, f"job {job_id} to run and checkpoint again")

    def _job_result(self, job_id: str) -> dict[str, Any] | None:
        for path in (self.cluster.directory / "ha" / "job-result-store").rglob(f"{job_id}.json"):
            return json.loads(path.read_text())
        return None

    # -- faults --------------------------------------------------------------------------------------

    def _leader_signal(self, fault: F.Fault, sig: int) -> None:
        leader = self.cluster.leader()
        port = self.cluster.jobmanager_port(leader.pid)
        at = time.time()
        os.kill(leader.pid, sig)
        self._wait_checkpoint_after(at, self.job_id)
        self._timing(fault, at, expect_new_leader=True)
        _wait_gone(leader.pid)
        self.cluster.script("jobmanager.sh", "start", "127.0.0.1", str(port))  # back as a standby

    def _leader_pause(self, fault: F.Fault) -> None:
        leader = self.cluster.leader()
        session = leader.sessions()[-1].session_id
        at = time.time()
        os.kill(leader.pid, signal.SIGSTOP)
        try:
            self._wait_checkpoint_after(at, self.job_id)  # a new leader runs the job meanwhile
            self._timing(fault, at, expect_new_leader=True)
        finally:
            resumed = time.time()
            os.kill(leader.pid, signal.SIGCONT)

        self._wait_gave_up(leader.pid, session)
        self._wait_checkpoint_after(resumed, self.job_id, after_running=False)

    def _leader_partition(self, fault: F.Fault) -> None:
        """The leader cut off from every ZooKeeper server (its TaskManagers still reach it)."""
        leader = self.cluster.leader()
        session = leader.sessions()[-1].session_id
        at = time.time()
        for proxy in self.cluster.proxies:
            proxy.cut_process(leader.pid)
        try:
            self._wait_checkpoint_after(at, self.job_id)  # a new leader runs the job meanwhile
            self._timing(fault, at, expect_new_leader=True)
            self._wait_gave_up(leader.pid, session)
        finally:
            for proxy in self.cluster.proxies:
                proxy.heal_process(leader.pid)
        healed = time.time()
        self._wait_checkpoint_after(healed, self.job_id, after_running=False)

    def _wait_gave_up(self, pid: int, session: str) -> None:
        def gave_up() -> bool:
            for lifetime in self.cluster.lifetimes():
                if lifetime.pid == pid:
                    return any(s.session_id == session and s.revoked is not None for s in lifetime.sessions())
            return False

        wait_for(gave_up, 30, 0.05, f"the former leader (pid {pid}) to give up leadership {session}")

    def _taskmanager_kill(self, fault: F.Fault) -> None:
        busy = wait_for(self.cluster.busy_taskmanagers, 30, 0.1, "a TaskManager running tasks")
        pid = busy[fault.pick % len(busy)]
        if fault.pick % 2 == 0:  # every other one while a checkpoint is being taken
            try:
                wait_for(self._checkpoint_in_flight, 5, 0.002, "a checkpoint being taken")
            except TimeoutError:
                pass  # none caught in the act: the kill comes between checkpoints
        at = time.time()
        os.kill(pid, signal.SIGKILL)
        self._wait_checkpoint_after(at, self.job_id)
        self._timing(fault, at, expect_new_leader=False)
        _wait_gone(pid)
        self.cluster.script("taskmanager.sh", "start")

    def _checkpoint_in_flight(self) -> bool:
        """Whether the job's newest checkpoint folder has task files but no `_metadata` yet."""
        folder = join_url(self.cluster.checkpoints_dir, self.job_id)
        names = [url.rsplit("/", 1)[1] for url in self.cluster.storage.list(folder)]
        ids = [int(name[4:]) for name in names if name.startswith("chk-") and name[4:].isdigit()]
        return bool(ids) and not self.cluster.storage.exists(join_url(folder, f"chk-{max(ids)}", "_metadata"))

    def _zookeeper_one_node(self, fault: F.Fault) -> None:
        servers = self.cluster.zookeeper_pids()
        server_id = sorted(servers)[fault.pick % len(servers)]
        at = time.time()
        os.kill(servers[server_id], signal.SIGKILL)
        # the job goes on: two more checkpoints, and nothing restarted or re-elected meanwhile
        wait_for(lambda: [c for c in completed_checkpoints(self.cluster.lifetimes(), self.job_id) if c[0] > at][1:],
                 60, 0.05, f"two checkpoints with ZooKeeper server {server_id} down")
        lifetimes = self.cluster.lifetimes()
        for what, pattern in (("a restore", RESTORES), ("a leader election", re.compile("^Granted leadership"))):
            line = first_after(lifetimes, pattern, at)
            if line is not None:
                self._problem(f"{fault.describe()}: {what} followed the loss of one ZooKeeper server: {line.message}")
        self.cluster.script("start-zookeeper-quorum.sh")

    def _zookeeper_quorum(self, fault: F.Fault) -> None:
        servers = self.cluster.zookeeper_pids()
        ids = sorted(servers)
        first = ids[fault.pick % 3]
        second = ids[(fault.pick + 1) % 3]
        leader = self.cluster.leader()
        at = time.time()
        for server_id in (first, second):
            os.kill(servers[server_id], signal.SIGKILL)
        # jobs suspend: the leader gives up once the session timeout has passed without a quorum
        self._wait_gave_up(leader.pid, leader.sessions()[-1].session_id)
        last = self._last_completed(self.job_id)  # (read now: one may have completed as the servers died)
        self._check_kept(last, f"{fault.describe()}, quorum lost")
        _last_until(at + fault.outage_s)
        starting = time.time()
        self.cluster.script("start-zookeeper-quorum.sh")  # returns once the servers serve again
        serving = time.time()
        self._wait_checkpoint_after(starting, self.job_id)
        self._timing(fault, starting, expect_new_leader=True)
        timing = self.report.timings[-1]  # counted from the quorum serving again, not from the start command
        timing.at = serving
        for name in ("new_leader_s", "running_s", "checkpoint_s"):
            value = getattr(timing, name)
            setattr(timing, name, None if value is None else max(0.0, value - (serving - starting)))
        self._check_restored(starting, last, fault)

    def _storage_outage(self, fault: F.Fault) -> None:
        if self.cluster.s3_proxy is not None:
            self._s3_outage(fault)
            return
        folder = self.cluster.directory / "checkpoints" / self.job_id
        at = time.time()
        away = _take_away(folder, "the checkpoint folder")
        try:
            _last_until(at + fault.outage_s)
        finally:
            _put_back(folder, away)
        restored = time.time()
        self._wait_checkpoint_after(restored, self.job_id, after_running=False)
        self._timing(fault, at, expect_new_leader=False)

    def _s3_outage(self, fault: F.Fault) -> None:
        """The S3 endpoint unreachable for a while: every connection to it cut, new ones refused."""
        proxy = self.cluster.s3_proxy
        assert proxy is not None  # (_storage_outage calls this only with S3 storage)
        at = time.time()
        proxy.cut()
        try:
            _last_until(at + fault.outage_s)
        finally:
            proxy.heal()
        self._wait_checkpoint_after(time.time(), self.job_id, after_running=False)
        self._timing(fault, at, expect_new_leader=False)

    def _cluster_restart(self, fault: F.Fault) -> None:
        at = time.time()
        self.cluster.script("stop-cluster.sh")
        if self.cluster._pids("standalonesession") or self.cluster._pids("taskexecutor"):
            self._problem(f"{fault.describe()}: daemons still run after stop-cluster.sh")
        last = self._last_completed(self.job_id)
        self._check_kept(last, f"{fault.describe()}, cluster stopped")
        started = time.time()
        self.cluster.script("start-cluster.sh")
        self._wait_checkpoint_after(started, self.job_id)
        self._timing(fault, at, expect_new_leader=True)
        self._check_restored(started, last, fault)

    def _zookeeper_vandal(self, fault: F.Fault) -> None:
        """A stranger's ZooKeeper client damages the cluster's nodes; the job must go on exactly."""
        base = self.cluster.base_path
        client = self.cluster.zookeeper_client()
        try:
            leader = self.cluster.leader()
            port = self.cluster.jobmanager_port(leader.pid)
            last = self._last_completed(self.job_id)
            killed = False
            if fault.act == F.VANDAL_ACTS[0]:  # the leader's own latch node: it gives up, another leads
                latch = next(c["latch"] for c in list_contenders(client, base) if c.get("pid") == str(leader.pid))
                at = time.time()
                client.delete(paths.join(paths.latch_dir(base), latch))
            elif fault.act == F.VANDAL_ACTS[1]:  # every contender's node at once: all join again
                at = time.time()
                delete_tree_at_once(client, paths.latch_dir(base))
            elif fault.act == F.VANDAL_ACTS[2]:  # the job is re-adopted by the next leader from its record
                at = time.time()
                delete_tree_at_once(client, paths.join(paths.job_graphs(base), self.job_id))
                os.kill(leader.pid, signal.SIGKILL)
                killed = True
            else:  # paused first, so that its next checkpoint cannot subsume the garbled one
                os.kill(leader.pid, signal.SIGSTOP)
                root = paths.checkpoints(base, self.job_id)
                at = time.time()
                client.set(paths.join(root, max(client.get_children(root))), b"\x00garbled by a stranger")
                os.kill(leader.pid, signal.SIGKILL)
                killed = True
        finally:
            client.stop()
            client.close()
        self._wait_checkpoint_after(at, self.job_id)
        self._timing(fault, at, expect_new_leader=True)
        self._check_restored(at, last, fault)
        if killed:
            _wait_gone(leader.pid)
            self.cluster.script("jobmanager.sh", "start", "127.0.0.1", str(port))  # back as a standby

    def _storage_blip_at_failover(self, fault: F.Fault) -> None:
        """The latest checkpoint handle damaged (or the HA storage dir unreachable) as the leader dies: the next
        leader must restore that checkpoint (rebuilt from its own _metadata), or wait for the storage."""
        leader = self.cluster.leader()
        port = self.cluster.jobmanager_port(leader.pid)
        os.kill(leader.pid, signal.SIGSTOP)  # no checkpoint completes (or subsumes the damaged one) from here on
        client = self.cluster.zookeeper_client()
        try:
            root = paths.checkpoints(self.cluster.base_path, self.job_id)
            latest = max(client.get_children(root))
            url = ZooKeeperStateHandleStore.pointer_url(client.get(paths.join(root, latest))[0])
        finally:
            client.stop()
            client.close()
        handle = Path(url.removeprefix("file://"))
        at = time.time()
        away = None
        if fault.act == F.BLIP_ACTS[0]:
            handle.unlink()
        elif fault.act == F.BLIP_ACTS[1]:
            handle.write_bytes(handle.read_bytes()[:len(handle.read_bytes()) // 2])
        else:
            away = _take_away(self.cluster.ha_storage, "the HA storage dir")
        os.kill(leader.pid, signal.SIGKILL)
        if away is not None:
            try:  # the outage lasts into the next leadership: that leader must wait for it, then recover
                wait_for(lambda: first_after(self.cluster.lifetimes(), re.compile("^Granted leadership"), at), 30,
                         0.05, "a new leader")
                _last_until(time.time() + fault.outage_s)
            finally:
                _put_back(self.cluster.ha_storage, away)
        self._wait_checkpoint_after(at, self.job_id)
        self._timing(fault, at, expect_new_leader=True)
        self._check_restored(at, int(latest), fault)  # that very checkpoint (or a later one), never an older
        _wait_gone(leader.pid)
        self.cluster.script("jobmanager.sh", "start", "127.0.0.1", str(port))  # back as a standby

    def _check_kept(self, checkpoint_id: int, when: str) -> None:
        """Nothing of the job's HA data or latest checkpoint is deleted while it is suspended."""
        metadata = join_url(self.cluster.checkpoints_dir, self.job_id, f"chk-{checkpoint_id}", "_metadata")
        if checkpoint_id and not self.cluster.storage.exists(metadata):
            self._problem(f"{when}: the latest completed checkpoint {metadata} is gone")
        graphs = list((self.cluster.directory / "ha").rglob("submittedJobGraph*"))
        if not graphs:
            self._problem(f"{when}: the job graph file is gone from the HA storage dir")

    def _check_restored(self, since: float, expected: int, fault: F.Fault) -> None:
        line = first_after(self.cluster.lifetimes(), RESTORES, since, self.job_id)
        match = RESTORES.search(line.message) if line else None  # (first_after found it by this pattern)
        restored = int(match.group(1)) if match else None
        if restored is None or restored < expected:
            self._problem(f"{fault.describe()}: restored checkpoint {restored}, expected {expected} (the latest "
                          "completed before the fault) or later")

    def _timing(self, fault: F.Fault, at: float, expect_new_leader: bool) -> None:
        timing = failover_timings(fault.kind, at, self.cluster.lifetimes(), self.job_id, expect_new_leader)
        self.report.timings.append(timing)

    # -- the run -------------------------------------------------------------------------------------

    def run(self) -> ChaosReport:
        report = self.report
        kinds = collections.Counter(f.kind for f in report.faults)
        self.say(f"chaos run: seed {report.seed}, {len(report.faults)} faults ("
                 + ", ".join(f"{n} {kind}" for kind, n in kinds.items()) + ")")
        self.cluster.start()
        self.job_id = report.job_id = self._submit(self.out)
        self._wait_checkpoint_after(time.time() - 60, self.job_id)
        self.watcher = RestWatcher(self.cluster.scripts, self.cluster.rest_ports, self.job_id)
        self.watcher.start()
        actions = {
            F.LEADER_SIGKILL: lambda f: self._leader_signal(f, signal.SIGKILL),
            F.LEADER_SIGTERM: lambda f: self._leader_signal(f, signal.SIGTERM),
            F.LEADER_SIGSTOP: self._leader_pause,
            F.LEADER_PARTITION: self._leader_partition,
            F.TASKMANAGER_SIGKILL: self._taskmanager_kill,
            F.ZOOKEEPER_ONE_NODE: self._zookeeper_one_node,
            F.ZOOKEEPER_QUORUM: self._zookeeper_quorum,
            F.STORAGE_OUTAGE: self._storage_outage,
            F.CLUSTER_RESTART: self._cluster_restart,
            F.ZOOKEEPER_VANDAL: self._zookeeper_vandal,
            F.STORAGE_BLIP_AT_FAILOVER: self._storage_blip_at_failover,
        }
        try:
            for number, fault in enumerate(report.faults, 1):
                time.sleep(fault.delay_s)  # the job runs undisturbed this long (part of the seeded plan)
                started = time.time()
                try:
                    actions[fault.kind](fault)
                except TimeoutError as error:
                    raise ChaosFailure(f"seed {report.seed}, fault {number} {fault.describe()}: {error}") from None
                timing = report.timings[-1] if report.timings and report.timings[-1].at >= started else None
                figures = "" if timing is None else " (" + ", ".join(
                    f"{label} {value:.2f} s" for label, value in (("new leader", timing.new_leader_s),
                                                                  ("all tasks RUNNING", timing.running_s),
                                                                  ("next checkpoint", timing.checkpoint_s))
                    if value is not None) + ")"
                self.say(f"  fault {number}/{len(report.faults)} {fault.describe()}: done in "
                         f"{time.time() - started:.2f} s{figures}")
            self._finish()
        finally:
            self.watcher.stop()  # (also when a fault fails the run)
        return report

    def _finish(self) -> None:
        report = self.report
        self.watcher.stop()
        for error in self.watcher.errors:
            self._problem(f"the REST API answered an error during the faults: {error}")
        self.say(f"REST API: {self.watcher.answered} answers during the faults, {len(self.watcher.errors)} errors")
        stopped_at = time.time()
        done = self.cluster.scripts.flink("stop", "--savepointPath", str(self.cluster.directory / "savepoints"),
                                          self.job_id)
        if done.returncode != 0:
            raise ChaosFailure(f"seed {report.seed}: flink stop failed:\n{done.stdout}{done.stderr}")
        result = wait_for(lambda: self._job_result(self.job_id), 60, 0.1, "the stopped job's clean result")
        if result.get("status") != "FINISHED":
            self._problem(f"the stopped job ended {result.get('status')}, expected FINISHED")
        # a finished job never runs again, not even under a new leader
        leader = self.cluster.leader()
        killed_at = time.time()
        os.kill(leader.pid, signal.SIGKILL)
        wait_for(lambda: first_after(self.cluster.lifetimes(), re.compile("^Job recovery done"), killed_at), 30, 0.05,
                 "a new leader's job recovery")
        for lifetime in self.cluster.lifetimes():
            for line in lifetime.lines:
                if line.time > stopped_at + 0.5 and self.job_id in line.message and \
                        ("deployed" in line.message or "Recovered job" in line.message):
                    self._problem(f"the finished job ran again: {lifetime.label}: {line.message}")
        self._cancelled_job_leaves_nothing()
        lifetimes = self.cluster.lifetimes()
        for problem in checkpoint_order_problems(lifetimes, self.job_id) + leadership_problems(lifetimes):
            self._problem(problem)
        report.checkpoints = len(completed_checkpoints(lifetimes, self.job_id))
        lines: list[str] = []
        for path in sorted(self.out.rglob("part-*")):
            lines += path.read_text().splitlines()
        report.output = check_output(lines, self.parallelism, JOB_START, JOB_KEYS)
        self.say(f"output: {report.output.summary()}")

    def _cancelled_job_leaves_nothing(self) -> None:
        out = self.cluster.directory / "out-cancelled"
        job_id = self._submit(out)
        self._wait_checkpoint_after(time.time() - 60, job_id)
        done = self.cluster.scripts.flink("cancel", job_id)
        if done.returncode != 0:
            raise ChaosFailure(f"flink cancel {job_id} failed:\n{done.stdout}{done.stderr}")
        result = wait_for(lambda: self._job_result(job_id), 60, 0.1, "the cancelled job's clean result")
        if result.get("status") != "CANCELED":
            self._problem(f"the cancelled job {job_id} ended {result.get('status')}")
        base = paths.cluster_path("/flink", self.cluster.cluster_id)
        client = self.cluster.zookeeper_client()
        try:
            for node in (paths.join(paths.job_graphs(base), job_id), paths.job_dir(base, job_id)):
                if client.exists(node):
                    self._problem(f"after cancel, ZooKeeper still holds {node}")
        finally:
            client.stop()
            client.close()
        if self.cluster.storage.exists(join_url(self.cluster.checkpoints_dir, job_id)):
            self._problem(f"after cancel, the checkpoint folder of {job_id} remains")
        # Both jobs have ended: no job graph or checkpoint handle of the cancelled job may remain. A file
        # of the chaos job that a deposed leader wrote but could never commit is garbage the next leader
        # (or job end) collects once it is 30 s old; only an older one is a leak.
        now = time.time()
        for path in (self.cluster.directory / "ha").rglob("*"):
            if not path.name.startswith(("submittedJobGraph", "completedCheckpoint")):
                continue
            owner = _job_of(path)
            if owner == job_id:
                self._problem(f"after cancel, the HA file {path.name} of job {job_id} remains")
            elif now - path.stat().st_mtime > 60:
                self._problem(f"the orphaned HA file {path.name} (job {owner}) was never collected")
            else:
                self.say(f"  (an orphaned HA file, {path.name}, is younger than the 30 s before collection)")


def _job_of(path: Path) -> str | None:
    """The job id a job graph or completed-checkpoint file belongs to."""
    try:
        return getattr(cloudpickle.loads(unseal(path.read_bytes(), str(path))), "job_id", None)
    except Exception:  # noqa: BLE001 - unreadable: reported as belonging to no job
        return None


def run_chaos(directory: Path, seed: int | None, counts: dict[str, int], rate: float = 1000.0,
              say: Callable[[str], None] = print, **cluster_args: Any) -> ChaosReport:
    """Start a chaos cluster in `directory`, run the seeded plan, stop everything (by pid), report."""
    seed = seed if seed is not None else random.SystemRandom().randrange(1 << 31)
    cluster = ChaosCluster(directory, **cluster_args)
    try:
        return ChaosRun(cluster, seed, counts, rate=rate, say=say).run()
    finally:
        cluster.stop()
