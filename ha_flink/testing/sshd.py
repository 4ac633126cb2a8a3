"""A real OpenSSH server for tests: Debian's `/usr/sbin/sshd` on a free port of a few loopback addresses
(127.0.0.1, .2, .3 act as three hosts), with a host key and a client key generated for the test, so the
SSH deployment (paramiko) is exercised for real. Stopped by pid when the test ends."""

from __future__ import annotations

import getpass
import os
import shutil
import socket
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from ha_flink.testing.processes import free_port, log_tail, start_process, stop_process, wait_for

SSHD = "/usr/sbin/sshd"
LISTEN_ADDRESSES = ("127.0.0.1", "127.0.0.2", "127.0.0.3")
START_TIMEOUT = 15.0


class SshdNotInstalledError(RuntimeError):
    pass


def _keygen(path: Path) -> None:
    keygen = shutil.which("ssh-keygen")
    if keygen is None:
        raise SshdNotInstalledError("ssh-keygen is missing: install the Debian package openssh-client")
    subprocess.run([keygen, "-q", "-t", "ed25519", "-N", "", "-C", f"ha-flink-test@{path.name}", "-f", str(path)],
                   check=True, capture_output=True, timeout=30)


@dataclass
class SshServer:
    """sshd on `port` of every address in `addresses`, accepting only `client_key` for the current user."""

    directory: Path
    addresses: tuple[str, ...] = LISTEN_ADDRESSES
    port: int = 0
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def host_key(self) -> Path:
        return self.directory / "ssh_host_ed25519_key"

    @property
    def client_key(self) -> Path:
        return self.directory / "id_ed25519"

    @property
    def log_path(self) -> Path:
        return self.directory / "sshd.log"

    @property
    def pid(self) -> int | None:
        return None if self.process is None else self.process.pid

    @property
    def ssh_opts(self) -> str:
        """The `env.ssh.opts` that reach this server, as a user would write them for OpenSSH's ssh."""
        return f"-p {self.port} -i {self.client_key} -o StrictHostKeyChecking=no -o ConnectTimeout=15"

    def write_config(self) -> Path:
        self.directory.mkdir(parents=True, exist_ok=True)
        for key in (self.host_key, self.client_key):
            if not key.exists():
                _keygen(key)
        authorized = self.directory / "authorized_keys"
        authorized.write_text(self.client_key.with_suffix(".pub").read_text())
        lines = [
            f"Port {self.port}",
            *(f"ListenAddress {address}" for address in self.addresses),
            f"HostKey {self.host_key}",
            f"AuthorizedKeysFile {authorized}",
            f"PidFile {self.directory / 'sshd.pid'}",
            f"AllowUsers {getpass.getuser()}",
            # the test's temp dir is not owned the way sshd's ownership checks want
            "StrictModes no",
            "PermitRootLogin prohibit-password",
            "PubkeyAuthentication yes",
            "PasswordAuthentication no",
            "KbdInteractiveAuthentication no",
            "UsePAM no",
            "AllowTcpForwarding no",
            "X11Forwarding no",
            "PrintMotd no",
            "LogLevel VERBOSE",
            # the test starts many sessions at once (one per daemon)
            "MaxStartups 100",
            "MaxSessions 100",
        ]
        config = self.directory / "sshd_config"
        config.write_text("\n".join(lines) + "\n")
        return config

    def start(self) -> None:
        if not os.path.exists(SSHD):
            raise SshdNotInstalledError(f"{SSHD} is missing: install the Debian package openssh-server "
                                        "(`make install` does)")
        if self.port == 0:
            self.port = free_port()
        config = self.write_config()
        # sshd refuses to start without its privilege separation directory.
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
        # -D: stay in the foreground (so the pid is sshd's own), -e: log to stderr (our log file)
        self.process = start_process([SSHD, "-D", "-e", "-f", str(config)], self.log_path)
        wait_for(self._answers, START_TIMEOUT, 0.05, f"sshd on port {self.port} to answer")

    def _answers(self) -> bool:
        if self.process is not None and self.process.poll() is not None:
            raise RuntimeError(f"sshd exited with {self.process.returncode}:\n{log_tail(self.log_path)}")
        try:
            with socket.create_connection((self.addresses[0], self.port), timeout=1) as sock:
                return sock.recv(64).startswith(b"SSH-")
        except OSError:
            return False

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process)
