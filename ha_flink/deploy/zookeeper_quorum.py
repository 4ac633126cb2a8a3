"""The ZooKeeper quorum that Flink's `start-zookeeper-quorum.sh` runs from `conf/zoo.cfg`: one server for
every `server.N=host[:peerPort:leaderPort][;[clientAddress:]clientPort]` line, on its host (directly or over
SSH), each with its `myid`.

zoo.cfg holds one `dataDir` and one `clientPort` for all servers. So that several servers can share a host
(a loopback ensemble for trying things out, or tests), each server keeps its data in `<dataDir>/server-<N>`
and may name its own client port after a `;` on its line. From zoo.cfg each server gets a config file of
its own there (`<dataDir>/server-<N>/zoo.cfg`), which is what its java process runs with. A relative
`dataDir` is taken from the install dir. Missing ports get ZooKeeper's defaults (2888, 3888, 2181), as
Flink does; `clientPort` and `clientPortAddress` apply to every server line that does not name its own.

Each server's JVM gets `env.java.opts.all` (DeploymentOptions.JAVA_OPTS), as Flink's zookeeper.sh passes
FLINK_ENV_JAVA_OPTS: that is where `-Djava.security.auth.login.config=<jaas file>` names the servers' SASL
logins. When zoo.cfg has an `authProvider.N=...SASLAuthenticationProvider` line, that file must exist on
the server's host and have a `Server` section (or the one `-Dzookeeper.sasl.serverconfig` names) of
ZooKeeper's DigestLoginModule with `user_<name>="<password>"` options; otherwise the server is not started
and the reason names zoo.cfg and the key (a server without its logins would refuse every SASL client).

`parse_zoo_cfg` and `server_config_text` are pure; `start_quorum` / `stop_quorum` do the work."""

from __future__ import annotations

import re
import shlex
import time
from dataclasses import dataclass, field
from pathlib import Path

from ha_flink.config import Configuration, ConfigurationError, DeploymentOptions
from ha_flink.deploy.flink_daemon import DaemonError, DaemonOperation, Emit, HostContext
from ha_flink.deploy.hosts import is_local_host
from ha_flink.deploy.runner import HostBatch, Runner, group_by_host
from ha_flink.deploy.ssh import SshOptionsError, parse_ssh_opts
from ha_flink.deploy.zookeeper import server_mode
from ha_flink.security.jaas import (
    DIGEST_LOGIN_MODULE,
    JAAS_PROPERTY,
    jaas_file_from_java_opts,
    kerberos_unsupported,
    read_jaas_file,
)

DEFAULT_CLIENT_PORT = 2181
DEFAULT_PEER_PORT = 2888
DEFAULT_LEADER_PORT = 3888
SERVE_TIMEOUT = 30.0

_SERVER_LINE = re.compile(
    r"^server\.(?P<id>\d+)\s*=\s*(?P<host>[^:;\s#]+|\[[0-9A-Fa-f:.]+\])"
    r"(?::(?P<peer>\d+))?(?::(?P<leader>\d+))?(?::(?P<role>participant|observer))?"
    r"(?:;(?:(?P<caddr>[^:;\s]+):)?(?P<cport>\d+))?$"
)
# keys that name one server's own resources: rewritten per server
_PER_SERVER_KEYS = {"dataDir", "dataLogDir", "clientPort", "clientPortAddress"}


@dataclass(frozen=True)
class QuorumServer:
    """One `server.N=` line of zoo.cfg."""

    server_id: int
    host: str
    peer_port: int
    leader_port: int
    client_port: int
    client_address: str | None
    role: str | None
    source: str

    @property
    def client_probe_address(self) -> tuple[str, int]:
        """Where a client reaches this server (its own client address, else its host)."""
        host = self.client_address if self.client_address not in (None, "0.0.0.0") else self.host
        return host.strip("[]"), self.client_port

    @property
    def connect_address(self) -> str:
        host, port = self.client_probe_address
        return f"{host}:{port}"

    def line(self) -> str:
        role = f":{self.role}" if self.role else ""
        client = f"{self.client_address}:" if self.client_address else ""
        return (f"server.{self.server_id}={self.host}:{self.peer_port}:{self.leader_port}{role}"
                f";{client}{self.client_port}")


@dataclass
class ZooConfig:
    """zoo.cfg, read: its plain settings (in order), its servers, where data goes, and what was skipped."""

    path: Path
    settings: list[tuple[str, str]]
    servers: list[QuorumServer]
    data_dir: Path
    data_log_dir: Path | None = None
    warnings: list[str] = field(default_factory=list)

    def server(self, server_id: int) -> QuorumServer:
        for server in self.servers:
            if server.server_id == server_id:
                return server
        known = ", ".join(str(s.server_id) for s in self.servers) or "none"
        raise ConfigurationError(f"has no line server.{server_id}=...; its servers: {known}", source=str(self.path))

    @property
    def connect_string(self) -> str:
        """The `high-availability.zookeeper.quorum` that reaches these servers."""
        return ",".join(server.connect_address for server in self.servers)


def _port(text: str | None, default: int, what: str, source: str) -> int:
    if text is None:
        return default
    value = int(text)
    if not 0 < value <= 65535:
        raise ConfigurationError(f"{what} {value} is not a port number (1 to 65535)", source=source)
    return value


def parse_zoo_cfg(text: str, source_name: str, base_dir: Path) -> ZooConfig:
    """Read zoo.cfg's `key=value` lines. A malformed `server.` line is skipped with Flink's warning
    (`[WARN] Parse error. Skipping config entry '...'.`) plus its file and line; a line that is not
    `key=value`, a repeated server id or two servers on one host and port are errors naming the lines."""
    settings: list[tuple[str, str]] = []
    servers: list[QuorumServer] = []
    warnings: list[str] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        source = f"{source_name}:{number}"
        if not line or line[0] in "#!":
            continue
        if line.startswith("server."):
            match = _SERVER_LINE.match(line)
            if match is None:
                warnings.append(f"[WARN] Parse error. Skipping config entry '{line}' ({source}: expected "
                                "server.<id>=<host>[:<peerPort>:<leaderPort>][;[<clientAddress>:]<clientPort>]).")
                continue
            servers.append(QuorumServer(
                int(match["id"]), match["host"], _port(match["peer"], DEFAULT_PEER_PORT, "peer port", source),
                _port(match["leader"], DEFAULT_LEADER_PORT, "leader port", source),
                _port(match["cport"], -1, "client port", source), match["caddr"], match["role"], source))
            continue
        key, sep, value = line.partition("=")
        if not sep or not key.strip():
            raise ConfigurationError(f"malformed line {line!r}; expected key=value", source=source)
        settings.append((key.strip(), value.strip()))
    values = dict(settings)
    client_port_text = values.get("clientPort")
    if client_port_text is not None and not client_port_text.isdigit():
        raise ConfigurationError(f"clientPort={client_port_text!r} is not a port number", source=source_name)
    client_port = int(client_port_text) if client_port_text else DEFAULT_CLIENT_PORT
    servers = [_with_client_port(server, client_port, values.get("clientPortAddress") or None) for server in servers]
    _check_servers(servers, source_name)
    data_dir = base_dir / values.get("dataDir", "data/zookeeper")
    data_log_dir = base_dir / values["dataLogDir"] if values.get("dataLogDir") else None
    return ZooConfig(Path(source_name), settings, servers, data_dir, data_log_dir, warnings)


def _with_client_port(server: QuorumServer, client_port: int, client_address: str | None) -> QuorumServer:
    """zoo.cfg's `clientPort` and `clientPortAddress` for a server line that names neither."""
    if server.client_port != -1:
        return server
    return QuorumServer(server.server_id, server.host, server.peer_port, server.leader_port, client_port,
                        server.client_address or client_address, server.role, server.source)


def _check_servers(servers: list[QuorumServer], source_name: str) -> None:
    if not servers:
        raise ConfigurationError("names no ZooKeeper server; add one line per server, e.g. "
                                 "server.1=localhost:2888:3888", source=source_name)
    seen_ids: dict[int, QuorumServer] = {}
    seen_ports: dict[tuple[str, int], tuple[QuorumServer, str]] = {}
    for server in servers:
        if server.server_id in seen_ids:
            raise ConfigurationError(f"server.{server.server_id} is defined twice (also at "
                                     f"{seen_ids[server.server_id].source})", source=server.source)
        seen_ids[server.server_id] = server
        # a port can be used only once on a host: peer, leader and client ports of all servers together
        for port, what in ((server.peer_port, "peer port"), (server.leader_port, "leader port"),
                           (server.client_port, "client port")):
            key = (server.host.lower(), port)
            if key in seen_ports:
                other, other_what = seen_ports[key]
                if other is server:
                    raise ConfigurationError(f"server.{server.server_id} uses port {port} twice ({other_what} and "
                                             f"{what})", source=server.source)
                raise ConfigurationError(
                    f"server.{server.server_id} would use port {port} on {server.host} as its {what}, but "
                    f"server.{other.server_id} ({other.source}) uses it as its {other_what}; servers sharing a "
                    "host need ports of their own (give a client port after ';': server.N=host:p:l;clientPort)",
                    source=server.source)
            seen_ports[key] = (server, what)


def read_zoo_cfg(path: Path, base_dir: Path) -> ZooConfig:
    if not path.is_file():
        raise ConfigurationError(f"[ERROR] No ZooKeeper configuration file found in '{path}'.")
    return parse_zoo_cfg(path.read_text(encoding="utf-8"), str(path), base_dir)


def server_dir(quorum: ZooConfig, server: QuorumServer) -> Path:
    return quorum.data_dir / f"server-{server.server_id}"


def server_config_path(quorum: ZooConfig, server: QuorumServer) -> Path:
    return server_dir(quorum, server) / "zoo.cfg"


def server_config_text(quorum: ZooConfig, server: QuorumServer) -> str:
    """The config file one server runs with: zoo.cfg's settings, its own data dir and client port, and
    every server line (with its client port, so each server knows where its peers serve)."""
    lines = [f"# Written by ha-flink from {quorum.path} for server.{server.server_id}: edit that file, not this one."]
    lines += [f"{key}={value}" for key, value in quorum.settings if key not in _PER_SERVER_KEYS]
    lines.append(f"dataDir={server_dir(quorum, server)}")
    if quorum.data_log_dir is not None:
        lines.append(f"dataLogDir={quorum.data_log_dir / f'server-{server.server_id}'}")
    lines.append(f"clientPort={server.client_port}")
    if server.client_address:
        lines.append(f"clientPortAddress={server.client_address}")
    if len(quorum.servers) > 1:
        lines += [other.line() for other in quorum.servers]
    return "\n".join(lines) + "\n"


def write_server_files(quorum: ZooConfig, server: QuorumServer) -> Path:
    """`<dataDir>/server-<N>/zoo.cfg` and its `myid`; returns the config file."""
    directory = server_dir(quorum, server)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "myid").write_text(f"{server.server_id}\n")
    path = server_config_path(quorum, server)
    path.write_text(server_config_text(quorum, server))
    return path


SASL_AUTH_PROVIDER = "org.apache.zookeeper.server.auth.SASLAuthenticationProvider"
_SERVER_SECTION_PROPERTY = "zookeeper.sasl.serverconfig"


def server_jvm_options(quorum: ZooConfig, config: Configuration, working_dir: Path) -> tuple[str, ...]:
    """The JVM options every server of `quorum` runs with: `env.java.opts.all`'s words. With SASL auth in
    zoo.cfg, checks that they name a JAAS file whose server section holds DIGEST-MD5 users (a relative
    path is the JVM's: from `working_dir`, where the server runs)."""
    key = DeploymentOptions.JAVA_OPTS.key
    java_opts = config.get(DeploymentOptions.JAVA_OPTS) or ""
    try:
        words = tuple(shlex.split(java_opts))
    except ValueError as error:
        raise ConfigurationError(f"cannot be split into JVM options: {error}", key=key) from None
    providers = [f"{name}={value}" for name, value in quorum.settings
                 if name.startswith("authProvider.") and value == SASL_AUTH_PROVIDER]
    if not providers:
        return words
    section_name = next((word.split("=", 1)[1] for word in reversed(words)
                         if word.startswith(f"-D{_SERVER_SECTION_PROPERTY}=")), "Server")
    wanted = (f'a {section_name} section ({section_name} {{ {DIGEST_LOGIN_MODULE} required user_<name>="<password>"; '
              "};)")
    path = jaas_file_from_java_opts(java_opts, key, working_dir)
    if path is None:
        raise ConfigurationError(
            f"sets {providers[0]}, but {key} names no JAAS file (-D{JAAS_PROPERTY}=<file>) with {wanted}: the "
            "servers could not authenticate any client", source=str(quorum.path))
    jaas = read_jaas_file(path, f"-D{JAAS_PROPERTY} in {key}, for {providers[0]} in {quorum.path}")
    section = jaas.section(section_name)
    if section is None:
        raise ConfigurationError(
            f"has no {section_name} section, which {providers[0]} in {quorum.path} needs; its sections: "
            f"{', '.join(jaas.sections) or 'none'}. Add {wanted}", source=str(path))
    for entry in section.entries:
        if entry.is_kerberos:
            raise ConfigurationError(kerberos_unsupported(f"section {section_name} uses {entry.module}"),
                                     source=f"{path}:{entry.line}")
    if not any(entry.module == DIGEST_LOGIN_MODULE and any(o.startswith("user_") for o in entry.options)
               for entry in section.entries):
        raise ConfigurationError(f"section {section_name} names no user; add {wanted}",
                                 source=f"{path}:{section.line}")
    return words


def serving_modes(quorum: ZooConfig, servers: list[QuorumServer],
                  timeout: float = SERVE_TIMEOUT) -> dict[int, str | None]:
    """Wait (up to `timeout`) until each of `servers` serves; their modes (None: not serving)."""
    deadline = time.monotonic() + timeout
    modes: dict[int, str | None] = {server.server_id: None for server in servers}
    while True:
        for server in servers:
            if modes[server.server_id] is None:
                modes[server.server_id] = server_mode(*server.client_probe_address)
        if all(modes.values()) or time.monotonic() > deadline:
            return modes
        time.sleep(0.05)


# --- start-zookeeper-quorum.sh / stop-zookeeper-quorum.sh ----------------------------------------------


def _quorum_context(conf_dir: Path, emit: Emit) -> tuple[HostContext, ZooConfig, Runner] | None:
    """The conf dir's hosts, zoo.cfg and runner; None after reporting what is wrong with them."""
    try:
        context = HostContext.load(conf_dir, emit)
        quorum = read_zoo_cfg(context.conf_dir / "zoo.cfg", context.install)
        for warning in quorum.warnings:
            emit(warning)
        return context, quorum, Runner(context, parse_ssh_opts(context.config.get(DeploymentOptions.SSH_OPTS)))
    except (ConfigurationError, SshOptionsError, DaemonError) as error:
        emit(str(error) if str(error).startswith("[ERROR]") else f"[ERROR] {error}")
        return None


def _server_batches(quorum: ZooConfig, action: str) -> list[HostBatch]:
    items = [(server.host, DaemonOperation(action, "zookeeper",
                                           ("--zkConfigFile", str(quorum.path.absolute()), "--peerId",
                                            str(server.server_id)),
                                           label=f"server.{server.server_id} ({server.host}, client port "
                                                 f"{server.client_port})"))
             for server in quorum.servers]
    return group_by_host(items, is_local_host)


def _peer_id(label: str) -> int:
    return int(label.split(" ", 1)[0].removeprefix("server."))


def start_quorum(conf_dir: Path, emit: Emit = print) -> int:
    """Start every server of conf/zoo.cfg (one already running is left alone), then wait until they serve."""
    loaded = _quorum_context(conf_dir, emit)
    if loaded is None:
        return 1
    context, quorum, runner = loaded
    reports = runner.run(_server_batches(quorum, "start"))
    started = [quorum.server(_peer_id(o.label)) for r in reports for o in r.outcomes if o.ok]
    modes = serving_modes(quorum, started) if started else {}
    lines, bad = [], 0
    for report in reports:
        if report.error is not None and not report.outcomes:
            for operation in report.batch.operations:
                bad += 1
                lines.append(f"  zookeeper {operation.label}: NOT STARTED: {report.error}")
        for outcome in report.outcomes:
            if not outcome.ok:
                bad += 1
                lines.append(f"  zookeeper {outcome.label}: FAILED: {outcome.detail}")
                continue
            mode = modes.get(_peer_id(outcome.label))
            if mode is None:
                bad += 1
                lines.append(f"  zookeeper {outcome.label}: running (pid {outcome.pids[0]}) but not serving after "
                             f"{SERVE_TIMEOUT:g} s (no quorum? a majority of the servers must run)")
            else:
                lines.append(f"  zookeeper {outcome.label}: {mode} (pid {outcome.pids[0]})")
    runner.emit("Summary:")
    for line in lines:
        runner.emit(line)
    runner.emit(f"high-availability.zookeeper.quorum: {quorum.connect_string}")
    if bad:
        runner.emit(f"{bad} of {len(quorum.servers)} ZooKeeper servers are not serving (reasons above).")
        return 1
    return 0


def stop_quorum(conf_dir: Path, emit: Emit = print) -> int:
    loaded = _quorum_context(conf_dir, emit)
    if loaded is None:
        return 1
    context, quorum, runner = loaded
    reports = runner.run(_server_batches(quorum, "stop"))
    failed = [r for r in reports if r.error is not None] + [r for r in reports for o in r.outcomes if not o.ok]
    stopped = sum(len(o.pids) for r in reports for o in r.outcomes if o.ok)
    runner.emit(f"Stopped {stopped} ZooKeeper server(s).")
    return 1 if failed else 0
