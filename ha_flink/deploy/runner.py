"""Carrying out daemon operations on many hosts at once: this machine's batch in this process, every other
host's over SSH (`<install>/bin/flink-daemon.sh --batch ...` with the same install path and conf dir, as
Flink requires), all hosts in parallel. A host that cannot be reached, or lacks the installation, fails on
its own with the reason; the other hosts go on."""

from __future__ import annotations

import shlex
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from ha_flink.deploy.flink_daemon import (
    OUTCOMES_PREFIX, DaemonError, DaemonOperation, DaemonOutcome, HostContext, decode_outcomes, encode_batch,
    run_batch,
)
from ha_flink.deploy.ssh import SshError, SshOptions, open_shell

# exit statuses of the remote preamble, so the reason can be told apart from a failing daemon
NO_INSTALLATION = 97
NO_CONF_DIR = 98
REMOTE_TIMEOUT = 120.0


@dataclass
class HostBatch:
    """The operations for one host. `host` as conf/masters, conf/slaves or zoo.cfg spells it."""

    host: str
    local: bool
    operations: list[DaemonOperation] = field(default_factory=list)


@dataclass
class HostReport:
    batch: HostBatch
    outcomes: list[DaemonOutcome] = field(default_factory=list)
    error: str | None = None  # set when the host as a whole failed (unreachable, no installation, ...)


def group_by_host(items: list[tuple[str, DaemonOperation]], is_local: Callable[[str], bool]) -> list[HostBatch]:
    """One batch per host, in order of first mention; every name of this machine shares one batch."""
    batches: dict[str, HostBatch] = {}
    for host, operation in items:
        local = is_local(host)
        key = "" if local else host.lower()
        batches.setdefault(key, HostBatch(host, local)).operations.append(operation)
    return list(batches.values())


def remote_command(install: Path, conf_dir: Path, operations: list[DaemonOperation]) -> str:
    """The shell command that runs a batch on another host, checking first that the install path and the
    conf dir exist there."""
    script = install / "bin" / "flink-daemon.sh"
    no_install = (f"ha-flink is not installed at {install} on this host ({script} is missing); Flink's scripts "
                  "need the same install path on every host")
    no_conf = f"the conf dir {conf_dir} does not exist on this host; it must have the same path on every host"
    q = shlex.quote
    return (f"if [ ! -x {q(str(script))} ]; then echo {q(no_install)} >&2; exit {NO_INSTALLATION}; fi; "
            f"if [ ! -d {q(str(conf_dir))} ]; then echo {q(no_conf)} >&2; exit {NO_CONF_DIR}; fi; "
            f"FLINK_CONF_DIR={q(str(conf_dir))} exec {q(str(script))} --batch {encode_batch(operations)}")


class Runner:
    """Runs `HostBatch`es; prints through `emit` (serialized, so lines of parallel hosts never mix)."""

    def __init__(self, context: HostContext, ssh_options: SshOptions) -> None:
        self.context = context
        self.ssh_options = ssh_options
        self._lock = threading.Lock()
        self._print = context.emit
        context.emit = self.emit

    def emit(self, line: str) -> None:
        with self._lock:
            self._print(line)

    def run(self, batches: list[HostBatch]) -> list[HostReport]:
        batches = [batch for batch in batches if batch.operations]
        if not batches:
            return []
        with ThreadPoolExecutor(max_workers=min(32, len(batches))) as pool:
            return list(pool.map(self._run_one, batches))

    def _run_one(self, batch: HostBatch) -> HostReport:
        try:
            if batch.local:
                return HostReport(batch, run_batch(self.context, batch.operations))
            return self._run_remote(batch)
        except (DaemonError, SshError, OSError) as error:
            reason = f"cannot reach {batch.host} over SSH: {error.reason}" if isinstance(error, SshError) \
                else str(error)
            self.emit(f"[ERROR] {batch.host}: {reason}")
            return HostReport(batch, error=reason)

    def _run_remote(self, batch: HostBatch) -> HostReport:
        command = remote_command(self.context.install, self.context.conf_dir, batch.operations)
        outcomes: list[DaemonOutcome] = []

        def on_line(line: str) -> None:
            if line.startswith(OUTCOMES_PREFIX):
                outcomes.extend(decode_outcomes(line))
            elif line.strip():
                self.emit(line)

        with open_shell(batch.host, self.ssh_options) as shell:
            result = shell.run(command, on_line, timeout=REMOTE_TIMEOUT)
        for line in result.stderr.splitlines():
            if line.strip() and result.exit_status == 0:
                self.emit(f"[{batch.host}] {line}")
        if result.exit_status != 0 or not outcomes:
            said = " | ".join(line for line in result.stderr.splitlines() if line.strip())[-600:]
            reason = said or f"flink-daemon.sh exited with status {result.exit_status} and no report"
            if result.exit_status not in (NO_INSTALLATION, NO_CONF_DIR):
                reason = f"flink-daemon.sh on {batch.host} failed (status {result.exit_status}): {reason}"
            self.emit(f"[ERROR] {batch.host}: {reason}")
            return HostReport(batch, outcomes, error=reason)
        return HostReport(batch, outcomes)
