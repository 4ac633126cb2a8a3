"""Real ZooKeeper servers for tests: one node or an ensemble on loopback ports, each a `java` process
stopped (or killed) by pid, data and log in a temp dir; and a real session expiry.

tickTime is small (200 ms) so that sessions of 0.4 s and up are allowed and expire on time.

`sasl_users` ({name: password}) starts servers that authenticate clients with SASL DIGEST-MD5: a JAAS
file with a `Server` section of ZooKeeper's DigestLoginModule (`user_<name>="<password>"`), zoo.cfg's
`authProvider.1=...SASLAuthenticationProvider` and `-Djava.security.auth.login.config` on the JVM. An
ensemble's servers talk to each other without SASL (quorum.auth is off): only clients authenticate.
Clients without credentials still connect; what they may do is up to each znode's ACL.
`write_client_jaas` writes the `Client` section a JobManager names in env.java.opts.all.

`tls` (a `ServerTls`) gives each server a TLS client port (`secureClientPort`, on Netty:
`serverCnxnFactory=org.apache.zookeeper.server.NettyServerCnxnFactory`) with zoo.cfg's `ssl.keyStore.*`,
`ssl.trustStore.*` and `ssl.clientAuth` (need, want or none), and makes `address` / `connect_string` name
the secure ports. The plain `clientPort` stays open on loopback only for the readiness probe (`srvr` over
plain TCP); tests do not connect to it. The default truststore is the CA as PEM (`ca.pem`): the JVM's
PKCS12 loader ignores a certificate without Java's trusted-key-usage attribute, which the `truststore.p12`
written by `ha_flink.testing.certificates` lacks."""

from __future__ import annotations

import signal
import socket
import subprocess
import threading
from dataclasses import dataclass, field
from pathlib import Path

from kazoo.client import KazooClient, KazooState
from kazoo.retry import KazooRetry

from ha_flink.deploy.zookeeper import server_mode, zookeeper_server_command
from ha_flink.testing.certificates import CertificateSet
from ha_flink.testing.processes import free_ports, log_tail, start_process, stop_process, wait_for

TICK_TIME_MS = 200
START_TIMEOUT = 30.0
NETTY_SERVER_CNXN_FACTORY = "org.apache.zookeeper.server.NettyServerCnxnFactory"
CLIENT_AUTH_MODES = ("need", "want", "none")


@dataclass(frozen=True)
class ServerTls:
    """A ZooKeeper server's TLS client port settings (zoo.cfg `ssl.*`, ZooKeeper 3.8's names)."""

    keystore: Path
    keystore_password: str
    truststore: Path
    truststore_password: str | None = None
    keystore_type: str = "PKCS12"
    truststore_type: str = "PEM"
    client_auth: str = "need"

    def __post_init__(self) -> None:
        if self.client_auth not in CLIENT_AUTH_MODES:
            raise ValueError(f"client_auth {self.client_auth!r}: one of {', '.join(CLIENT_AUTH_MODES)}")

    @classmethod
    def from_certificates(cls, certificates: CertificateSet, name: str = "internal",
                          client_auth: str = "need") -> ServerTls:
        """Keystore `name`.p12 of a `create_test_certificates` set, trusting its CA (ca.pem)."""
        return cls(certificates.keystore(name), certificates.password, certificates.ca_pem,
                   client_auth=client_auth)

    def zoo_cfg_lines(self) -> list[str]:
        lines = [f"ssl.keyStore.location={self.keystore}", f"ssl.keyStore.password={self.keystore_password}",
                 f"ssl.keyStore.type={self.keystore_type}", f"ssl.trustStore.location={self.truststore}",
                 f"ssl.trustStore.type={self.truststore_type}", f"ssl.clientAuth={self.client_auth}"]
        if self.truststore_password is not None:
            lines.append(f"ssl.trustStore.password={self.truststore_password}")
        return lines


@dataclass
class ZooKeeperServer:
    """One ZooKeeper server process. `peers` is the ensemble's `server.N=` lines, empty when standalone."""

    directory: Path
    client_port: int
    server_id: int = 1
    peers: list[str] = field(default_factory=list)
    host: str = "127.0.0.1"
    process: subprocess.Popen[bytes] | None = None
    sasl_users: dict[str, str] | None = None
    tls: ServerTls | None = None
    secure_client_port: int | None = None  # with `tls`

    @property
    def jaas_path(self) -> Path:
        return self.directory / "server-jaas.conf"

    @property
    def address(self) -> str:
        """Where clients connect: the secure port with TLS, else the plain one."""
        if self.tls is not None:
            return f"{self.host}:{self.secure_port}"
        return f"{self.host}:{self.client_port}"

    @property
    def secure_port(self) -> int:
        if self.secure_client_port is None:
            raise ValueError(f"ZooKeeper server {self.server_id} has no TLS client port")
        return self.secure_client_port

    @property
    def log_path(self) -> Path:
        return self.directory / "zookeeper.log"

    @property
    def pid(self) -> int | None:
        return None if self.process is None else self.process.pid

    def write_config(self) -> Path:
        data = self.directory / "data"
        data.mkdir(parents=True, exist_ok=True)
        lines = [
            f"tickTime={TICK_TIME_MS}",
            f"dataDir={data}",
            f"clientPort={self.client_port}",
            f"clientPortAddress={self.host}",
            f"minSessionTimeout={2 * TICK_TIME_MS}",
            "maxSessionTimeout=60000",
            "initLimit=20",
            "syncLimit=10",
            "admin.enableServer=false",
            "4lw.commands.whitelist=srvr,ruok,stat,mntr,cons",
            "maxClientCnxns=0",
        ]
        if self.peers:
            (data / "myid").write_text(f"{self.server_id}\n")
            lines += self.peers
        if self.sasl_users is not None:
            lines.append(f"authProvider.1={SASL_AUTH_PROVIDER}")
            write_server_jaas(self.jaas_path, self.sasl_users)
        if self.tls is not None:
            # TLS is only on Netty; the plain clientPort (Netty too) stays for the srvr readiness probe
            lines += [f"serverCnxnFactory={NETTY_SERVER_CNXN_FACTORY}", f"secureClientPort={self.secure_port}",
                      f"secureClientPortAddress={self.host}",
                      *self.tls.zoo_cfg_lines()]
        path = self.directory / "zoo.cfg"
        path.write_text("\n".join(lines) + "\n")
        return path

    def start(self, wait: bool = True) -> None:
        if self.running:
            return
        config = self.write_config()
        jvm = (f"-Djava.security.auth.login.config={self.jaas_path}",) if self.sasl_users is not None else ()
        self.process = start_process(zookeeper_server_command(config, jvm), self.log_path)
        if wait:
            self.wait_serving()

    def wait_serving(self, timeout: float = START_TIMEOUT) -> None:
        def serving() -> bool:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"ZooKeeper server {self.server_id} exited with {self.process.returncode}:\n"
                                   f"{log_tail(self.log_path)}")
            if server_mode(self.host, self.client_port) is None:
                return False
            # the server answers srvr on the plain port a moment before it binds the secure one
            return self.tls is None or _accepts(self.host, self.secure_port)

        wait_for(serving, timeout, 0.05, f"ZooKeeper server {self.server_id} at {self.address} to serve")

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self) -> None:
        """Graceful stop (SIGTERM), as `zkServer.sh stop` does."""
        if self.process is not None:
            stop_process(self.process)

    def kill(self) -> None:
        """SIGKILL: the server vanishes without closing its connections."""
        if self.process is not None:
            stop_process(self.process, signal.SIGKILL)

    def restart(self) -> None:
        self.stop()
        self.start()


def _accepts(host: str, port: int) -> bool:
    """Whether a TCP connection to the port is accepted (closed at once, before any TLS)."""
    try:
        with socket.create_connection((host, port), timeout=1.0):
            return True
    except OSError:
        return False


@dataclass
class ZooKeeperEnsemble:
    """One or more servers; `connect_string` lists them all, as `high-availability.zookeeper.quorum` does."""

    servers: list[ZooKeeperServer]

    @classmethod
    def create(cls, directory: Path, size: int = 1, sasl_users: dict[str, str] | None = None,
               tls: ServerTls | None = None) -> ZooKeeperEnsemble:
        """`sasl_users`: {name: password} the servers accept over SASL DIGEST-MD5 (None: no SASL);
        `tls`: a TLS client port on every server, which `connect_string` then names (None: plain only)."""
        ports = free_ports(4 * size)
        peers = [f"server.{i + 1}=127.0.0.1:{ports[4 * i + 1]}:{ports[4 * i + 2]}" for i in range(size)] if size > 1 else []
        servers = [ZooKeeperServer(directory / f"zk-{i + 1}", ports[4 * i], i + 1, peers,
                                   sasl_users=dict(sasl_users) if sasl_users is not None else None,
                                   tls=tls, secure_client_port=ports[4 * i + 3] if tls is not None else None)
                   for i in range(size)]
        return cls(servers)

    @property
    def tls(self) -> ServerTls | None:
        # getattr: tests also build ensembles of stand-ins that only give an address (a proxy's)
        tls: ServerTls | None = getattr(self.servers[0], "tls", None) if self.servers else None
        return tls

    @property
    def connect_string(self) -> str:
        return ",".join(server.address for server in self.servers)

    def start(self) -> None:
        # An ensemble member only serves once a quorum is up: start all, then wait for each.
        for server in self.servers:
            server.start(wait=False)
        for server in self.servers:
            if server.running or server.process is None:
                server.wait_serving()

    def stop(self) -> None:
        for server in self.servers:
            server.stop()

    def client(self, **kwargs: object) -> KazooClient:
        """A started kazoo client on this ensemble (the caller stops it). Reconnect attempts back off to
        at most 0.5 s (kazoo's default grows to an hour), so a restarted server is found at once. On a TLS
        ensemble it trusts the servers' truststore (a PEM one) unless `ca` is given; a server that needs
        client certificates also needs `certfile`/`keyfile` (a `create_test_certificates` PEM keystore)."""
        kwargs.setdefault("connection_retry", KazooRetry(max_tries=-1, delay=0.05, backoff=2, max_delay=0.5))
        if self.tls is not None:
            kwargs.setdefault("use_ssl", True)
            if self.tls.truststore_type == "PEM":
                kwargs.setdefault("ca", str(self.tls.truststore))
        client = KazooClient(hosts=self.connect_string, **kwargs)
        client.start(timeout=15)
        return client

    def log_paths(self) -> list[Path]:
        return [server.log_path for server in self.servers]


SASL_AUTH_PROVIDER = "org.apache.zookeeper.server.auth.SASLAuthenticationProvider"
DIGEST_LOGIN_MODULE = "org.apache.zookeeper.server.auth.DigestLoginModule"


def _jaas_quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def write_server_jaas(path: Path, users: dict[str, str]) -> Path:
    """A ZooKeeper server's JAAS file: the `Server` section accepting `users` ({name: password})."""
    options = "".join(f"\n    user_{name}={_jaas_quote(password)}" for name, password in users.items())
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"Server {{\n  {DIGEST_LOGIN_MODULE} required{options};\n}};\n")
    return path


def write_client_jaas(path: Path, username: str, password: str, section: str = "Client") -> Path:
    """A client's JAAS file, as a Flink user writes one for `-Djava.security.auth.login.config`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"// ZooKeeper client credentials (DIGEST-MD5)\n{section} {{\n  {DIGEST_LOGIN_MODULE} required\n"
                    f"    username={_jaas_quote(username)}\n    password={_jaas_quote(password)};\n}};\n")
    return path


def expire_session(hosts: str, session_id: int, password: bytes, timeout: float = 10.0) -> None:
    """Expire a ZooKeeper session for real: connect a second client with the victim's session id and
    password, then close it. The server ends the session (its ephemeral nodes go at once) and the victim
    learns it is expired when it reconnects. kazoo's own test helper only fakes this client-side."""
    intruder = KazooClient(hosts=hosts, client_id=(session_id, password), timeout=timeout)
    intruder.start(timeout=timeout)
    try:
        if intruder.client_id is None or intruder.client_id[0] != session_id:
            raise RuntimeError(f"could not attach to session 0x{session_id:x}: it has already expired")
    finally:
        intruder.stop()
        intruder.close()


def expire_client_session(client: KazooClient, timeout: float = 10.0) -> None:
    """Expire `client`'s session for real and wait until the client itself has seen it LOST."""
    lost = threading.Event()

    def listener(state: KazooState) -> bool:
        if state == KazooState.LOST:
            lost.set()
            return True  # remove the listener
        return False

    client.add_listener(listener)
    session_id, password = client.client_id
    expire_session(_hosts_of(client), session_id, password, timeout)
    if not lost.wait(timeout):
        client.remove_listener(listener)
        raise TimeoutError(f"client did not see its session 0x{session_id:x} expire within {timeout} s")


def _hosts_of(client: KazooClient) -> str:
    return ",".join(f"{host}:{port}" for host, port in client.hosts)


def delete_tree_at_once(client: KazooClient, path: str, attempts: int = 20) -> None:
    """Delete `path` and everything below it in one transaction, as a careless operator's `deleteall` of a
    quiet moment would (kazoo's recursive delete goes node by node, and nodes created meanwhile make it fail).
    Tried again while nodes keep appearing under it."""
    from kazoo.exceptions import NoNodeError, NotEmptyError

    def nodes(node: str) -> list[str]:  # leaves first
        found = []
        for child in client.get_children(node):
            found += nodes(f"{node.rstrip('/')}/{child}")
        return [*found, node]

    for _ in range(attempts):
        try:
            tx = client.transaction()
            for node in nodes(path):
                tx.delete(node)
            results = tx.commit()
        except NoNodeError:
            return
        if not any(isinstance(result, (NotEmptyError, NoNodeError)) for result in results):
            return
    raise RuntimeError(f"{path} kept changing; not deleted in {attempts} attempts")
