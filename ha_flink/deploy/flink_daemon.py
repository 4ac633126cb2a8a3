"""What Flink's `flink-daemon.sh` does on one host: start, stop, stop-all and list the instances of a daemon
(`standalonesession`, `taskexecutor`, `zookeeper`) with pid files and log files.

- start: prints `Starting <daemon> daemon on host <host>.` (after `[INFO] N instance(s) of <daemon> are
  already running on <host>.` when some are), starts the process in a session of its own with stdout and
  stderr in `flink-<user>-<daemon>-<n>-<host>.out` (the daemon writes its own `.log` with the same n),
  appends its pid to the pid file and waits until it says `READY` (a ZooKeeper server: until its client
  port accepts) or exits, so a port in use or a bad config is reported by the start, not found later.
- stop: SIGTERM to the newest instance, stop-all: to all; both wait for the processes to end (SIGKILL
  after `STOP_TIMEOUT`), so that a stop leaves no process behind.

Several operations run as one batch: the starts are spawned one after another (the pid file lock keeps
instance numbers apart), then waited for together, which is what makes a cluster start fast. The cluster
scripts run a batch on each host: in this process for this machine, over SSH (`flink-daemon.sh --batch`)
for another, where the outcomes come back as one JSON line."""

from __future__ import annotations

import base64
import fcntl
import getpass
import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from ha_flink.config import Configuration, ConfigurationError, DeploymentOptions, install_dir, load_configuration
from ha_flink.deploy.pidfile import PidFile, pid_file_path, settled_command_line

if TYPE_CHECKING:
    from ha_flink.deploy.zookeeper_quorum import QuorumServer, ZooConfig

START_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0
POLL_INTERVAL = 0.02
OUTCOMES_PREFIX = "@ha-flink-outcomes "

PYTHON_DAEMONS = ("standalonesession", "taskexecutor")
DAEMONS = (*PYTHON_DAEMONS, "zookeeper")
ZOOKEEPER_MARKER = "QuorumPeerMain"

Emit = Callable[[str], None]


class DaemonError(RuntimeError):
    """An operation that cannot even be tried (unknown daemon, bad arguments, unreadable config)."""


@dataclass(frozen=True)
class DaemonOperation:
    """One thing to do on one host. `count`: how many of the newest instances `stop` ends. `label` names it
    in summaries (the cluster scripts use the host as conf/masters or conf/slaves spells it)."""

    action: str  # start | stop | stop-all | status
    daemon: str
    args: tuple[str, ...] = ()
    count: int = 1
    label: str = ""


@dataclass
class DaemonOutcome:
    """How an operation ended. `ok` False means it did not do what was asked; `detail` says why."""

    action: str
    daemon: str
    label: str
    host: str
    ok: bool
    pids: list[int] = field(default_factory=list)
    detail: str = ""
    out_file: str | None = None
    address: str | None = None
    rest_address: str | None = None


def host_name() -> str:
    """The name Flink's scripts print ($HOSTNAME) and the daemons put in their log file names."""
    return socket.gethostname()


@dataclass
class HostContext:
    """Where this host keeps pid files and logs, and what runs the daemons."""

    conf_dir: Path
    config: Configuration
    install: Path
    python: str
    emit: Emit

    @classmethod
    def load(cls, conf_dir: str | os.PathLike[str], emit: Emit = print,
             install: Path | None = None) -> HostContext:
        directory = Path(conf_dir).absolute()
        config = load_configuration(directory, required=False)
        return cls(directory, config, install or install_dir(), sys.executable, emit)

    def _path(self, value: str | None, default: Path) -> Path:
        # relative paths are taken from the install dir: every daemon runs there (see spawn)
        return default if not value else (self.install / os.path.expanduser(value))

    @property
    def pid_dir(self) -> Path:
        return self._path(self.config.get(DeploymentOptions.PID_DIR), Path("/tmp"))

    @property
    def log_dir(self) -> Path:
        return self._path(self.config.get(DeploymentOptions.LOG_DIR), self.install / "log")

    def pid_file(self, daemon: str) -> PidFile:
        return PidFile(pid_file_path(self.pid_dir, daemon), marker_of(daemon))


def marker_of(daemon: str) -> str:
    """What a daemon's command line contains, telling our process from one that reused its pid."""
    return ZOOKEEPER_MARKER if daemon == "zookeeper" else f"daemons/{daemon}.py"


def log_name(daemon: str, index: int, host: str, suffix: str) -> str:
    return f"flink-{getpass.getuser()}-{daemon}-{index}-{host}.{suffix}"


def _held_elsewhere(path: Path) -> bool:
    """True while another open file holds an flock on `path` (a running daemon owns that log)."""
    try:
        with open(path, "a", encoding="utf-8") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                return True
            fcntl.flock(handle, fcntl.LOCK_UN)
            return False
    except OSError:
        return False


def first_free_index(taken: Callable[[int], bool], limit: int = 1000) -> int:
    """The lowest instance number not taken, as Flink numbers a daemon's log files."""
    return next(n for n in range(limit) if not taken(n))


# --- the commands that run the daemons ------------------------------------------------------------


def daemon_command(context: HostContext, daemon: str, args: tuple[str, ...], log_file: Path | str) -> list[str]:
    """The process a daemon runs as. A ZooKeeper server's own config file and myid are written here, and it
    logs to `log_file` (Python daemons choose their .log themselves)."""
    if daemon == "standalonesession":  # guarded: its ZooKeeper session is closed the moment it dies
        return [context.python, str(context.install / "daemons" / f"{daemon}.py"), "--guardian", *args]
    if daemon in PYTHON_DAEMONS:
        return [context.python, str(context.install / "daemons" / f"{daemon}.py"), *args]
    if daemon == "zookeeper":
        from ha_flink.deploy.zookeeper import zookeeper_server_command
        from ha_flink.deploy.zookeeper_quorum import server_jvm_options, write_server_files

        quorum, server = zookeeper_server(context, args)
        try:
            # env.java.opts.all (with the JAAS file of SASL auth), as Flink's zookeeper.sh passes it
            user_options = server_jvm_options(quorum, context.config, context.install)
        except ConfigurationError as error:
            raise DaemonError(str(error)) from None
        config_file = write_server_files(quorum, server)
        return zookeeper_server_command(config_file, (f"-Dorg.slf4j.simpleLogger.logFile={log_file}",
                                                     "-Dorg.slf4j.simpleLogger.dateTimeFormat=yyyy-MM-dd HH:mm:ss,SSS",
                                                     *user_options))
    raise DaemonError(f"unknown daemon {daemon!r}; known: {', '.join(DAEMONS)}")


def zookeeper_peer(args: tuple[str, ...]) -> tuple[Path, int]:
    """`--zkConfigFile FILE --peerId N`, as Flink's zookeeper.sh passes them."""
    values: dict[str, str] = {}
    words = list(args)
    while words:
        word = words.pop(0)
        if word in ("--zkConfigFile", "--peerId") and words:
            values[word] = words.pop(0)
        else:
            raise DaemonError(f"zookeeper: unexpected argument {word!r}; usage: --zkConfigFile <zoo.cfg> --peerId <id>")
    if "--zkConfigFile" not in values or "--peerId" not in values or not values["--peerId"].isdigit():
        raise DaemonError("zookeeper: needs --zkConfigFile <zoo.cfg> --peerId <id>")
    return Path(values["--zkConfigFile"]).absolute(), int(values["--peerId"])


def zookeeper_server(context: HostContext, args: tuple[str, ...]) -> tuple[ZooConfig, QuorumServer]:
    """zoo.cfg, read on this host, and the server `--peerId` names in it."""
    from ha_flink.deploy.zookeeper_quorum import read_zoo_cfg

    zoo_cfg, peer_id = zookeeper_peer(args)
    try:
        quorum = read_zoo_cfg(zoo_cfg, context.install)
        return quorum, quorum.server(peer_id)
    except ConfigurationError as error:
        raise DaemonError(str(error)) from None


def zookeeper_server_config_path(context: HostContext, args: tuple[str, ...]) -> Path:
    from ha_flink.deploy.zookeeper_quorum import server_config_path

    return server_config_path(*zookeeper_server(context, args))


# --- start ---------------------------------------------------------------------------------------------


@dataclass
class _Starting:
    operation: DaemonOperation
    process: subprocess.Popen[bytes]
    out_file: Path
    out_offset: int
    probe: tuple[str, int] | None  # a ZooKeeper server is ready when this port accepts
    log_file: Path | None = None  # where a ZooKeeper server says why it stopped (it logs there, not to .out)


def _start_python_daemon(context: HostContext, operation: DaemonOperation, pids: list[int],
                         host: str) -> _Starting:
    daemon = operation.daemon
    log_dir = context.log_dir
    log_dir.mkdir(parents=True, exist_ok=True)
    index = first_free_index(lambda n: _held_elsewhere(log_dir / log_name(daemon, n, host, "log")))
    out_file = log_dir / log_name(daemon, index, host, "out")
    starting = _spawn(context, operation, daemon_command(context, daemon, operation.args, out_file), out_file, None)
    pids.append(starting.process.pid)
    # Hold the pid file lock until the daemon has locked its log file, so the next start of the same daemon
    # sees that number taken and both daemons' .log and .out numbers agree.
    deadline = time.monotonic() + START_TIMEOUT
    # (without /proc/locks there is nothing to wait on: numbers then agree unless two starts race)
    while os.path.exists("/proc/locks") and starting.process.poll() is None and time.monotonic() < deadline:
        owned = locked_log(starting.process.pid, daemon, host)
        if owned is not None:
            if owned.name != out_file.with_suffix(".log").name:  # a daemon started by hand took `index` first
                renamed = out_file.with_name(owned.with_suffix(".out").name)
                os.replace(out_file, renamed)
                starting.out_file = renamed
            break
        time.sleep(POLL_INTERVAL)
    return starting


def _flock_inodes(pid: int) -> set[int]:
    """Inodes of the files `pid` holds an flock on (from /proc/locks; waiters, marked '->', excluded)."""
    inodes = set()
    try:
        with open("/proc/locks", encoding="ascii") as locks:
            for line in locks:
                parts = line.split()
                if len(parts) >= 6 and parts[1] == "FLOCK" and parts[4] == str(pid):
                    inodes.add(int(parts[5].rsplit(":", 1)[1]))
    except (OSError, ValueError):
        pass
    return inodes


def locked_log(pid: int, daemon: str, host: str) -> Path | None:
    """The log file the daemon has taken: one of its open `flink-<user>-<daemon>-<n>-<host>.log` files that
    it holds the lock on (while it looks for a free number it also opens, briefly, ones it cannot lock)."""
    prefix, suffix = f"flink-{getpass.getuser()}-{daemon}-", f"-{host}.log"
    inodes = _flock_inodes(pid)
    if not inodes:
        return None
    try:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
                name = os.path.basename(target)
                if name.startswith(prefix) and name.endswith(suffix) and os.stat(target).st_ino in inodes:
                    return Path(target)
            except OSError:
                continue
    except OSError:
        pass
    return None


def _spawn(context: HostContext, operation: DaemonOperation, command: list[str], out_file: Path,
           probe: tuple[str, int] | None) -> _Starting:
    context.emit(f"Starting {operation.daemon} daemon on host {host_name()}.")
    out_file.parent.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, FLINK_CONF_DIR=str(context.conf_dir))
    with open(out_file, "ab") as out:
        offset = out.tell()
        # A session of its own: the daemon outlives this script and the SSH session that ran it, and no
        # terminal signal (Ctrl-C on the script) reaches it. The install dir is its working dir, so relative
        # paths in flink-conf.yaml mean the same on every host.
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                   cwd=context.install, env=env, start_new_session=True, close_fds=True)
    return _Starting(operation, process, out_file, offset, probe)


def _start_zookeeper(context: HostContext, operation: DaemonOperation, pids: list[int], host: str,
                     outcomes: list[DaemonOutcome]) -> _Starting | None:
    _, server = zookeeper_server(context, operation.args)
    config_file, peer_id = zookeeper_server_config_path(context, operation.args), server.server_id
    running = [pid for pid in pids if str(config_file) in (settled_command_line(pid) or [])]
    if running:
        # A server id runs once: a second one would fight the first for its ports and data.
        context.emit(f"[INFO] ZooKeeper server {peer_id} is already running on host {host} (pid: {running[0]}).")
        outcomes.append(DaemonOutcome(operation.action, operation.daemon, operation.label, host, True, running,
                                      "already running"))
        return None

    address = server.client_probe_address
    if _port_accepts(address):
        # readiness is told by the client port accepting: another process on it would fool that
        reason = f"the client port {address[0]}:{address[1]} is already in use by another process"
        context.emit(f"[ERROR] zookeeper daemon on host {host} not started: {reason}")
        outcomes.append(DaemonOutcome(operation.action, operation.daemon, operation.label, host, False, [], reason))
        return None

    def taken(n: int) -> bool:
        log = str(context.log_dir / log_name("zookeeper", n, host, "log"))
        return any(any(log in part for part in settled_command_line(pid) or []) for pid in pids)

    index = first_free_index(taken)
    out_file = context.log_dir / log_name("zookeeper", index, host, "out")
    # ZooKeeper's logger truncates its log file: keep the previous ones as Flink does (.log.1 ... .log.5)
    rotate(out_file.with_suffix(".log"))
    try:
        command = daemon_command(context, "zookeeper", operation.args, out_file.with_suffix(".log"))
    except DaemonError as error:  # e.g. SASL auth in zoo.cfg without the servers' JAAS logins
        context.emit(f"[ERROR] zookeeper daemon on host {host} not started: {error}")
        outcomes.append(DaemonOutcome(operation.action, operation.daemon, operation.label, host, False, [],
                                      str(error)))
        return None
    starting = _spawn(context, operation, command, out_file, address)
    starting.log_file = out_file.with_suffix(".log")
    pids.append(starting.process.pid)
    return starting


def rotate(path: Path, keep: int = 5) -> None:
    """`path` -> `path.1` -> ... -> `path.<keep>` (the oldest dropped), as Flink's scripts rotate logs."""
    if not path.exists() or path.stat().st_size == 0:
        return
    for n in range(keep - 1, 0, -1):
        older = path.with_name(f"{path.name}.{n}")
        if older.exists():
            os.replace(older, path.with_name(f"{path.name}.{n + 1}"))
    os.replace(path, path.with_name(f"{path.name}.1"))


def _port_accepts(address: tuple[str, int]) -> bool:
    try:
        with socket.create_connection(address, timeout=0.5):
            return True
    except OSError:
        return False


def _ready_line(starting: _Starting) -> list[str] | None:
    try:
        with open(starting.out_file, "rb") as out:
            out.seek(starting.out_offset)
            text = out.read().decode("utf-8", "replace")
    except OSError:
        return None
    return next((line.split() for line in text.splitlines() if line.startswith("READY ")), None)


def _tail(path: Path, offset: int, lines: int = 3) -> str:
    """Why a daemon exited, from its output since `offset`: our daemons' own refusal line ("<daemon>:
    cannot start: ..."), else the last error a Java server logged, else the last lines."""
    try:
        with open(path, "rb") as handle:
            handle.seek(offset)
            text = handle.read().decode("utf-8", "replace")
    except OSError:
        return ""
    kept = [line for line in text.splitlines() if line.strip()]
    for marker in (": cannot start: ", " ERROR ", "Exception"):
        found = [line for line in kept if marker in line]
        if found:
            return found[-1].strip()
    return " | ".join(kept[-lines:])


def _await_started(context: HostContext, waiting: list[_Starting], host: str) -> list[DaemonOutcome]:
    outcomes: dict[int, DaemonOutcome] = {}
    deadline = time.monotonic() + START_TIMEOUT
    while len(outcomes) < len(waiting):
        for index, starting in enumerate(waiting):
            if index in outcomes:
                continue
            op, pid = starting.operation, starting.process.pid
            base = DaemonOutcome(op.action, op.daemon, op.label, host, False, [pid], out_file=str(starting.out_file))
            ready = _ready_line(starting) if starting.probe is None else None
            if ready or (starting.probe is not None and _port_accepts(starting.probe)):
                base.ok = True
                if ready:
                    base.address = ready[1] if len(ready) > 1 else None
                    base.rest_address = ready[2] if len(ready) > 2 else None
                    base.detail = "running" + (f", REST {base.rest_address}" if base.rest_address else "")
                else:
                    base.detail = f"running, client port {starting.probe[1]}"  # type: ignore[index]
                outcomes[index] = base
            elif starting.process.poll() is not None:
                reason = _tail(starting.out_file, starting.out_offset) or \
                    (_tail(starting.log_file, 0) if starting.log_file else "") or "no output"
                base.pids = []
                base.detail = f"exited at start with status {starting.process.returncode}: {reason}"
                outcomes[index] = base
                context.emit(f"[ERROR] {op.daemon} daemon on host {host} did not start: {reason} "
                             f"(see {starting.out_file})")
                with context.pid_file(op.daemon).locked() as pids:
                    pids[:] = [p for p in pids if p != pid]
            elif time.monotonic() > deadline:
                base.detail = (f"started (pid {pid}) but not ready after {START_TIMEOUT:g} s; it is left running, "
                               f"see {starting.out_file}")
                outcomes[index] = base
                context.emit(f"[WARN] {op.daemon} daemon (pid: {pid}) on host {host} is not ready after "
                             f"{START_TIMEOUT:g} s")
        if len(outcomes) < len(waiting):
            time.sleep(POLL_INTERVAL)
    return [outcomes[i] for i in range(len(waiting))]


# --- stop and status --------------------------------------------------------------------------------


@dataclass
class _Stopping:
    operation: DaemonOperation
    pid: int
    marker: str


def _select_for_stop(context: HostContext, operation: DaemonOperation, pids: list[int]) -> list[int]:
    if operation.daemon == "zookeeper" and operation.args:
        # stop-zookeeper-quorum.sh names the server: stop exactly that one
        config_file = zookeeper_server_config_path(context, operation.args)
        return [pid for pid in pids if str(config_file) in (settled_command_line(pid) or [])]
    if operation.action == "stop-all":
        return list(pids)
    return pids[-operation.count:] if operation.count > 0 else []


def _stop(context: HostContext, operation: DaemonOperation, host: str,
          outcomes: list[DaemonOutcome]) -> list[_Stopping]:
    pid_file = context.pid_file(operation.daemon)
    with pid_file.locked() as pids:
        for stale in pid_file.stale:
            context.emit(f"No {operation.daemon} daemon (pid: {stale}) is running anymore on {host}.")
        chosen = _select_for_stop(context, operation, pids)
        if not chosen:
            context.emit(f"No {operation.daemon} daemon to stop on host {host}.")
            outcomes.append(DaemonOutcome(operation.action, operation.daemon, operation.label, host, True, [],
                                          "not running"))
            return []
        for pid in reversed(chosen):  # newest first, as Flink's stop takes the last line
            context.emit(f"Stopping {operation.daemon} daemon (pid: {pid}) on host {host}.")
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        pids[:] = [pid for pid in pids if pid not in chosen]
    return [_Stopping(operation, pid, pid_file.marker) for pid in chosen]


def _await_stopped(context: HostContext, stopping: list[_Stopping], host: str) -> list[DaemonOutcome]:
    from ha_flink.deploy.pidfile import is_daemon_process

    deadline = time.monotonic() + STOP_TIMEOUT
    remaining = list(stopping)
    killed: set[int] = set()
    while remaining:
        remaining = [s for s in remaining if is_daemon_process(s.pid, s.marker)]
        if remaining and time.monotonic() > deadline:
            for item in remaining:
                if item.pid not in killed:
                    context.emit(f"[WARN] {item.operation.daemon} daemon (pid: {item.pid}) on host {host} did not "
                                 f"stop within {STOP_TIMEOUT:g} s of SIGTERM; killing it (SIGKILL).")
                    killed.add(item.pid)
                    try:
                        os.kill(item.pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
            deadline = time.monotonic() + STOP_TIMEOUT
        if remaining:
            time.sleep(POLL_INTERVAL)
    by_operation: dict[int, DaemonOutcome] = {}
    for item in stopping:
        op = item.operation
        outcome = by_operation.setdefault(id(op), DaemonOutcome(op.action, op.daemon, op.label, host, True, [],
                                                                 "stopped"))
        outcome.pids.append(item.pid)
        if item.pid in killed:
            outcome.detail = "killed (SIGKILL) after it ignored SIGTERM"
    return list(by_operation.values())


def _status(context: HostContext, operation: DaemonOperation, host: str) -> DaemonOutcome:
    """The running instances; with `--configDir DIR` in args, only those of that conf dir."""
    pids = context.pid_file(operation.daemon).live_pids()
    if "--configDir" in operation.args:
        wanted = operation.args[operation.args.index("--configDir") + 1]
        pids = [pid for pid in pids if _has_option(settled_command_line(pid) or [], "--configDir", wanted)]
    detail = "running" if pids else "not running"
    return DaemonOutcome(operation.action, operation.daemon, operation.label, host, True, pids, detail)


def _has_option(argv: list[str], option: str, value: str) -> bool:
    return any(argv[i] == option and Path(argv[i + 1]).absolute() == Path(value).absolute()
               for i in range(len(argv) - 1))


# --- batches ------------------------------------------------------------------------------------------


def run_batch(context: HostContext, operations: list[DaemonOperation]) -> list[DaemonOutcome]:
    """Carry out `operations` on this host; one outcome per operation (a stop of several instances is one)."""
    host = host_name()
    outcomes: list[DaemonOutcome] = []
    starting: list[_Starting] = []
    stopping: list[_Stopping] = []
    for operation in operations:
        if operation.daemon not in DAEMONS:
            raise DaemonError(f"unknown daemon {operation.daemon!r}; known: {', '.join(DAEMONS)}")
        if operation.action == "start":
            pid_file = context.pid_file(operation.daemon)
            with pid_file.locked() as pids:
                if operation.daemon == "zookeeper":
                    started = _start_zookeeper(context, operation, pids, host, outcomes)
                    if started is not None:
                        starting.append(started)
                    continue
                if pids:
                    context.emit(f"[INFO] {len(pids)} instance(s) of {operation.daemon} are already running on "
                                 f"{host}.")
                starting.append(_start_python_daemon(context, operation, pids, host))
        elif operation.action in ("stop", "stop-all"):
            stopping.extend(_stop(context, operation, host, outcomes))
        elif operation.action == "status":
            outcomes.append(_status(context, operation, host))
        else:
            raise DaemonError(f"unknown action {operation.action!r}; known: start, stop, stop-all, status")
    outcomes.extend(_await_started(context, starting, host))
    outcomes.extend(_await_stopped(context, stopping, host))
    return outcomes


def encode_batch(operations: list[DaemonOperation]) -> str:
    """The batch as one shell-safe word (base64 of JSON) for `flink-daemon.sh --batch` on another host."""
    return base64.urlsafe_b64encode(json.dumps([asdict(op) for op in operations]).encode()).decode("ascii")


def decode_batch(word: str) -> list[DaemonOperation]:
    try:
        raw = json.loads(base64.urlsafe_b64decode(word.encode("ascii")))
        return [DaemonOperation(op["action"], op["daemon"], tuple(op.get("args", ())), int(op.get("count", 1)),
                                op.get("label", "")) for op in raw]
    except (ValueError, KeyError, TypeError) as error:
        raise DaemonError(f"--batch: not a batch of operations ({error})") from None


def encode_outcomes(outcomes: list[DaemonOutcome]) -> str:
    return OUTCOMES_PREFIX + json.dumps([asdict(outcome) for outcome in outcomes])


def decode_outcomes(line: str) -> list[DaemonOutcome]:
    return [DaemonOutcome(**raw) for raw in json.loads(line[len(OUTCOMES_PREFIX):])]


def start_foreground(context: HostContext, daemon: str, args: tuple[str, ...]) -> None:
    """Replace this process with the daemon, logging to the terminal (for containers and supervisors)."""
    # (a Python daemon still writes its .log too; a ZooKeeper server logs to stderr only)
    command = daemon_command(context, daemon, args, "System.err")
    os.chdir(context.install)
    os.environ["FLINK_CONF_DIR"] = str(context.conf_dir)
    os.execv(command[0], command)


def conf_dir_of(args: tuple[str, ...]) -> Path | None:
    """The `--configDir DIR` (or `-c DIR`) among a daemon's arguments."""
    for index, word in enumerate(args[:-1]):
        if word in ("--configDir", "-c"):
            return Path(args[index + 1])
    return None


def context_for(args: tuple[str, ...], emit: Emit = print) -> HostContext:
    from ha_flink.config import default_conf_dir

    try:
        return HostContext.load(conf_dir_of(args) or default_conf_dir(), emit)
    except ConfigurationError as error:
        raise DaemonError(f"cannot read the configuration: {error}") from None
