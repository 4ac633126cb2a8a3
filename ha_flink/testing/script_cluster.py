"""A cluster started the way a user starts one, by the `bin/` scripts, for integration tests and benchmarks:
a conf dir of its own (flink-conf.yaml, masters, slaves, zoo.cfg) in a temp dir, with its own pid and log
dirs and a unique cluster-id, and a way to run the scripts and the `flink` CLI against it.

`kill_all` ends every process the scripts started for it, found by pid: every process whose command line
names its directory (daemons by their conf dir, ZooKeeper servers by their config file), whether or not
a pid file still lists it, so a failing test leaves nothing running."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from ha_flink.deploy.pidfile import command_line, parse_pids

REPO = Path(__file__).resolve().parents[2]
BIN = REPO / "bin"


@dataclass
class ScriptCluster:
    directory: Path
    zookeeper_quorum: str
    masters: list[str] = field(default_factory=list)  # lines of conf/masters
    slaves: list[str] = field(default_factory=list)  # lines of conf/slaves
    settings: dict[str, str] = field(default_factory=dict)
    zoo_cfg: str | None = None
    _opener: urllib.request.OpenerDirector | None = field(default=None, init=False, repr=False)

    @property
    def conf_dir(self) -> Path:
        return self.directory / "conf"

    @property
    def pid_dir(self) -> Path:
        return self.directory / "pid"

    @property
    def log_dir(self) -> Path:
        return self.directory / "log"

    def write_conf(self) -> None:
        self.conf_dir.mkdir(parents=True, exist_ok=True)
        settings = {
            "high-availability.type": "zookeeper",
            "high-availability.zookeeper.quorum": self.zookeeper_quorum,
            # unique: tests share one ZooKeeper
            "high-availability.cluster-id": f"/scripts-{uuid.uuid4().hex[:12]}",
            "high-availability.storageDir": f"file://{self.directory}/ha",
            "high-availability.zookeeper.client.session-timeout": "3 s",
            "rest.port": "0",
            "rest.bind-address": "127.0.0.1",
            "env.pid.dir": str(self.pid_dir),
            "env.log.dir": str(self.log_dir),
            "taskmanager.host": "127.0.0.1",
            "taskmanager.numberOfTaskSlots": "1",
            "heartbeat.interval": "500 ms",
            "heartbeat.timeout": "5 s",
            **self.settings,
        }
        (self.conf_dir / "flink-conf.yaml").write_text("".join(f"{k}: {v}\n" for k, v in settings.items()))
        (self.conf_dir / "masters").write_text("".join(f"{line}\n" for line in self.masters))
        (self.conf_dir / "slaves").write_text("".join(f"{line}\n" for line in self.slaves))
        if self.zoo_cfg is not None:
            (self.conf_dir / "zoo.cfg").write_text(self.zoo_cfg)

    def env(self) -> dict[str, str]:
        return dict(os.environ, FLINK_CONF_DIR=str(self.conf_dir))

    def run(self, script: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """Run `bin/<script>`; its stdout and stderr are returned (and the script's exit status)."""
        return subprocess.run([str(BIN / script), *args], capture_output=True, text=True, env=self.env(),
                              timeout=timeout, stdin=subprocess.DEVNULL)

    def flink(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return self.run("flink", *args, timeout=timeout)

    def pid_files(self) -> dict[str, list[int]]:
        """daemon -> pids, as the pid files list them."""
        if not self.pid_dir.exists():
            return {}
        return {path.name.rsplit("-", 1)[1].removesuffix(".pid"): parse_pids(path.read_text())
                for path in self.pid_dir.glob("flink-*.pid")}

    def processes(self) -> list[int]:
        """Every live process whose command line names this cluster's directory (but this process and its
        ancestors, whose command lines may name it too)."""
        mine = []
        ours = _ancestors()
        for entry in os.listdir("/proc"):
            if entry.isdigit() and int(entry) not in ours:
                argv = command_line(int(entry))
                if argv and any(str(self.directory) in part for part in argv):
                    mine.append(int(entry))
        return mine

    def rest_url(self, port: int, path: str) -> str:
        https = str(self.settings.get("security.ssl.rest.enabled", "false")).lower() == "true"
        return f"{'https' if https else 'http'}://127.0.0.1:{port}{path}"

    def rest_opener(self) -> urllib.request.OpenerDirector:
        """Opens REST URLs with the client keys of this cluster's conf (plain HTTP without REST TLS)."""
        if self._opener is None:
            from ha_flink.config import Configuration
            from ha_flink.security.tls import rest_client_tls, url_opener

            self._opener = url_opener(rest_client_tls(Configuration(self.settings)))
        return self._opener

    def rest(self, port: int, path: str, timeout: float = 2.0) -> dict | list | None:
        """GET a JobManager's REST path; None when it does not answer (yet) or answers an error."""
        try:
            with self.rest_opener().open(self.rest_url(port, path), timeout=timeout) as answer:
                return json.loads(answer.read())
        except (OSError, ValueError):
            return None

    def kill_all(self, timeout: float = 10.0) -> None:
        # only processes whose command line names this cluster's directory: a pid in a pid file may have
        # been reused by a process that is none of ours
        pids = set(self.processes())
        for sig in (signal.SIGTERM, signal.SIGKILL):
            for pid in pids:
                if command_line(pid) is not None:
                    try:
                        os.kill(pid, sig)
                    except ProcessLookupError:
                        pass
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline and any(command_line(pid) is not None for pid in pids):
                time.sleep(0.05)


def _ancestors() -> set[int]:
    """This process and its parents up to init."""
    found, pid = set(), os.getpid()
    while pid > 1 and pid not in found:
        found.add(pid)
        try:
            pid = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            break
    return found
