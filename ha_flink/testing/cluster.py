"""A whole HA cluster of real processes for tests: JobManagers (`daemons/standalonesession.py`) and
TaskManagers (`daemons/taskexecutor.py`) against a real ZooKeeper, with a conf dir of its own. Every
process is stopped by pid when the cluster is closed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from ha_flink.testing.processes import log_tail, start_process, stop_process, wait_for

REPO = Path(__file__).resolve().parents[2]


@dataclass
class DaemonProcess:
    kind: str
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def _ready_line(self) -> list[str] | None:
        for line in self.output().splitlines():
            if line.startswith("READY "):
                return line.split()
        return None

    def address(self) -> str | None:
        """host:port of its RPC endpoint, once it is up."""
        ready = self._ready_line()
        return ready[1] if ready else None

    def rest_address(self) -> str | None:
        """http://host:port of a JobManager's REST endpoint."""
        ready = self._ready_line()
        return ready[2] if ready and len(ready) > 2 else None

    @property
    def guarded_pid(self) -> int | None:
        """The pid of a guarded JobManager (`--guardian`: `process` is its guardian), else None."""
        for line in self.output().splitlines():
            if line.startswith("Guardian (pid ") and " of JobManager pid " in line:
                return int(line.rsplit(" ", 1)[1])
        return None

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Signal the daemon: a guarded JobManager itself, not its guardian (see kill_guardian)."""
        guarded = self.guarded_pid
        if guarded is not None:
            os.kill(guarded, sig)
        else:
            self.process.send_signal(sig)

    def kill_guardian(self, sig: int = signal.SIGKILL) -> None:
        self.process.send_signal(sig)


@dataclass
class Cluster:
    directory: Path
    zookeeper_quorum: str
    settings: dict[str, str] = field(default_factory=dict)
    daemons: list[DaemonProcess] = field(default_factory=list)

    @property
    def conf_dir(self) -> Path:
        return self.directory / "conf"

    @property
    def cluster_id(self) -> str:
        return self._cluster_id

    @property
    def zookeeper_base(self) -> str:
        """The cluster's ZooKeeper path (`/flink/<cluster-id>`)."""
        return f"/flink{self._cluster_id}"

    @property
    def ha_storage(self) -> Path:
        """The folder of the cluster's job-graph and checkpoint handles (`<storageDir>/<cluster-id>`)."""
        return self.directory / "ha" / self._cluster_id.strip("/")

    def write_conf(self) -> None:
        self.conf_dir.mkdir(parents=True, exist_ok=True)
        self._cluster_id = self.settings.get("high-availability.cluster-id",
                                             f"/{self.directory.name}-{uuid.uuid4().hex[:12]}")
        settings = {
            "high-availability.type": "zookeeper",
            "high-availability.zookeeper.quorum": self.zookeeper_quorum,
            "high-availability.zookeeper.path.root": "/flink",
            # unique: tests share one ZooKeeper, and a killed leader's nodes outlive its test
            "high-availability.cluster-id": self._cluster_id,
            "high-availability.storageDir": f"file://{self.directory}/ha",
            "high-availability.zookeeper.client.session-timeout": "3 s",
            "jobmanager.rpc.address": "127.0.0.1",
            "rest.port": "0",  # several JobManagers share this host
            "env.log.dir": str(self.directory / "log"),
            "taskmanager.host": "127.0.0.1",
            "taskmanager.numberOfTaskSlots": "2",
            "heartbeat.interval": "500 ms",
            "heartbeat.timeout": "5 s",
            **self.settings,
        }
        (self.conf_dir / "flink-conf.yaml").write_text("".join(f"{k}: {v}\n" for k, v in settings.items()))

    def _start(self, kind: str, script: str, *args: str) -> DaemonProcess:
        log = self.directory / "log" / f"{kind}-{len(self.daemons)}.log"
        env = dict(os.environ, FLINK_CONF_DIR=str(self.conf_dir))
        process = start_process([sys.executable, str(REPO / "daemons" / script), "--configDir",
                                 str(self.conf_dir), *args], log, env=env)
        daemon = DaemonProcess(kind, process, log)
        self.daemons.append(daemon)

        def ready() -> bool:
            if process.poll() is not None:
                raise RuntimeError(f"{kind} exited with {process.returncode}:\n{log_tail(log)}")
            return daemon.address() is not None

        wait_for(ready, 30, 0.05, f"{kind} (pid {process.pid}) to start")
        return daemon

    def start_jobmanager(self, guardian: bool = False) -> DaemonProcess:
        """`guardian`: as flink-daemon.sh starts it (deploy/guardian.py), `process` being the guardian."""
        return self._start("jobmanager", "standalonesession.py", "--host", "127.0.0.1",
                           *(("--guardian",) if guardian else ()))

    def start_taskmanager(self) -> DaemonProcess:
        return self._start("taskmanager", "taskexecutor.py")

    def start_leader(self, guardian: bool = False) -> DaemonProcess:
        """A JobManager, once it has been granted leadership (start standbys after it)."""
        leader = self.start_jobmanager(guardian)
        wait_for(lambda: "Granted leadership" in leader.output(), 20, what="the first JobManager to lead")
        return leader

    @staticmethod
    def job_id(submitted: subprocess.CompletedProcess[str]) -> str:
        """The job id `flink run` printed ("Job has been submitted with JobID <id>")."""
        return submitted.stdout.split("JobID ")[1].split()[0]

    def job_result(self, job_id: str) -> str:
        """The job's recorded result (JSON text), or '' while it has none. While the result is marked
        clean, both its files exist for a moment (the clean one written, the dirty one not yet deleted):
        the clean one is read then."""
        found = sorted((self.directory / "ha" / "job-result-store").rglob(f"{job_id}*.json"),
                       key=lambda path: path.name.endswith("_DIRTY.json"))
        for path in found:
            try:
                return path.read_text()
            except FileNotFoundError:  # the dirty one, deleted since the listing
                continue
        return ""

    def flink(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """Run the `flink` CLI against this cluster."""
        env = dict(os.environ, FLINK_CONF_DIR=str(self.conf_dir))
        return subprocess.run([sys.executable, "-m", "ha_flink.cli.main", *args], capture_output=True, text=True,
                              env=env, timeout=timeout, cwd=REPO)

    def logs(self) -> list[Path]:
        return [daemon.log for daemon in self.daemons]

    def close(self) -> None:
        for daemon in reversed(self.daemons):
            stop_process(daemon.process)
            guarded = daemon.guarded_pid
            if guarded is not None:  # (a JobManager whose guardian was killed before it: stopped by its pid)
                _stop_orphan(guarded)


def _stop_orphan(pid: int, timeout: float = 10.0) -> None:
    """Stop a process that is not our child (we cannot wait for it): SIGTERM, then SIGKILL if it lingers."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return
        try:
            wait_for(lambda: not os.path.exists(f"/proc/{pid}") or _is_zombie(pid), timeout, 0.05,
                     what=f"process {pid} to end")
            return
        except TimeoutError:
            continue


def _is_zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(") ", 1)[1].startswith("Z")
    except OSError:
        return True
