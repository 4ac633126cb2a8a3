"""A kazoo client made from Flink's `high-availability.zookeeper.*` keys, authenticated with SASL when a
JAAS file names credentials (`ha_flink/security/jaas.py`).

Commands retry a bounded number of times (`max-retry-attempts`, backing off from `retry-wait`), unlike
kazoo's default of forever, so a caller learns that ZooKeeper is unreachable. The connection itself keeps
trying to reconnect (bounded by the same delay) for as long as the client runs: a JobManager whose quorum
comes back must find it again, as Curator does.

Reconnecting follows ZooKeeper's own client rather than kazoo's defaults: the servers are shuffled once and
then tried round and round (kazoo shuffles each round), and a connect waits at most the session timeout
divided by the number of servers (kazoo waits the whole session timeout). A server whose machine is gone
answers no SYN; with kazoo's defaults trying it after losing another server used up the session, and a
JobManager's leadership with it (`_ZooKeeperHandler`).

`high-availability.zookeeper.client.acl: creator` gives every znode the cluster creates kazoo's
CREATOR_ALL_ACL (the server turns it into `sasl:<user>`: all rights for the cluster's identity, none for
anyone else). kazoo applies the client's `default_acl` to every create that names no ACL of its own: plain
creates, transactions, `ensure_path` and the parents `makepath=True` makes, so the root path, the cluster-id
node, the election latches, the locks and the checkpoint ID counter all get it; the ha package names no
ACL anywhere. Without SASL credentials creator ACL is refused at start: ZooKeeper would answer every create
with InvalidACL, and falling back to open ACLs would hand the cluster's nodes to everyone.

TLS to the client port comes from ZooKeeper's own `-Dzookeeper.client.secure=true -Dzookeeper.ssl.*`
properties in `env.java.opts.all` (`ha_flink/security/zookeeper_tls.py`), and goes with SASL and creator ACL
as in Java (SASL runs inside the TLS connection). kazoo builds a fresh SSLContext per connection from file
paths and adds the system's CAs to the truststore; instead the client gets a kazoo handler
(`_TlsHandler`) that wraps each connection with one context made at start (the truststore's CAs alone, the
keystore's certificate, the allowed TLS versions) and remembers each server's last TLS failure. kazoo retries
a failed handshake for ever: when every server of the quorum has failed its last handshake (a certificate
refused either way, a plain port), the start ends at once with a ZooKeeperTlsError naming the quorum and the
reason; otherwise a start that times out names the TLS failures it saw."""

from __future__ import annotations

import logging
import random
import socket
import ssl
import threading
import time
from typing import Any, Callable

from kazoo.client import KazooClient
from kazoo.exceptions import AuthFailedError
from kazoo.handlers import utils as kazoo_utils
from kazoo.handlers.threading import KazooTimeoutError, SequentialThreadingHandler
from kazoo.retry import KazooRetry
from kazoo.security import CREATOR_ALL_ACL

from ha_flink.config import Configuration, ConfigurationError, HighAvailabilityOptions, SecurityOptions
from ha_flink.security.jaas import DIGEST_LOGIN_MODULE, JAAS_PROPERTY, ZooKeeperSasl, zookeeper_sasl
from ha_flink.security.zookeeper_tls import ZooKeeperTls, zookeeper_tls

logger = logging.getLogger(__name__)


class ZooKeeperAuthenticationError(ConnectionError):
    """The quorum refused the client's SASL credentials."""


class ZooKeeperTlsError(ConnectionError):
    """No server of the quorum completed a TLS handshake with the client."""


class _ReportingSSLSocket(ssl.SSLSocket):
    """An SSLSocket that reports a TLS error on a read or write: with TLS 1.3 a server's refusal of the
    client's certificate arrives after the client's side of the handshake has completed."""

    on_tls_error: Callable[[BaseException], None] | None = None

    def recv(self, buflen: int = 1024, flags: int = 0) -> bytes:
        try:
            return super().recv(buflen, flags)
        except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
            raise
        except ssl.SSLError as error:
            if self.on_tls_error is not None:
                self.on_tls_error(error)
            raise

    def send(self, data: Any, flags: int = 0) -> int:
        try:
            return super().send(data, flags)
        except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
            raise
        except ssl.SSLError as error:
            if self.on_tls_error is not None:
                self.on_tls_error(error)
            raise


class _ZooKeeperHandler(SequentialThreadingHandler):
    """kazoo's threading handler with ZooKeeper's own connect timeout: the session timeout divided by the
    number of servers, as the Java client's ClientCnxn has it. kazoo waits the whole session timeout on
    each connect, so after losing its server a client that tried one whose machine is gone (no reset: its
    SYNs go unanswered) lost its session before it reached a server that serves; a JobManager's leadership
    and its job's run went with it."""

    def __init__(self, connect_timeout: float) -> None:
        super().__init__()
        self.connect_timeout = connect_timeout

    def bounded(self, timeout: float | None) -> float:
        return self.connect_timeout if timeout is None else min(timeout, self.connect_timeout)

    def create_connection(self, *args: Any, **kwargs: Any) -> socket.socket:
        kwargs["timeout"] = self.bounded(kwargs.get("timeout"))
        return super().create_connection(*args, **kwargs)


class _TlsHandler(_ZooKeeperHandler):
    """The handler above, wrapping every connection in TLS with one SSLContext; it remembers the last TLS
    failure of each server (host, port), cleared by a handshake that succeeds."""

    def __init__(self, tls: ZooKeeperTls, connect_timeout: float) -> None:
        super().__init__(connect_timeout)
        self.tls = tls
        self._context = tls.ssl_context()
        self._context.sslsocket_class = _ReportingSSLSocket
        self._lock = threading.Lock()
        self._failures: dict[tuple[str, int], str] = {}

    def create_connection(self, address: tuple[str, int], hostname: str | None = None,
                          timeout: float | None = None, **_kazoo_ssl_arguments: object) -> ssl.SSLSocket:
        # kazoo's use_ssl/ca/certfile/... arguments are ignored: self._context holds all of it
        server = (hostname or address[0], address[1])
        sock = kazoo_utils.create_tcp_connection(socket, address, hostname, self.bounded(timeout))
        sock.settimeout(timeout)  # the handshake, with a server that answered, may take kazoo's whole timeout
        try:
            tls_sock = self._context.wrap_socket(sock, server_hostname=hostname or address[0],
                                                 do_handshake_on_connect=False)
            tls_sock.do_handshake()
        except (ssl.SSLError, OSError) as error:
            sock.close()
            self._record(server, error)
            raise
        assert isinstance(tls_sock, _ReportingSSLSocket)
        tls_sock.on_tls_error = lambda error: self._record(server, error)
        with self._lock:
            self._failures.pop(server, None)
        return tls_sock

    def _record(self, server: tuple[str, int], error: BaseException) -> None:
        reason = _tls_reason(error)
        with self._lock:
            known = self._failures.get(server)
            self._failures[server] = reason
        if known != reason:  # kazoo retries every few tenths of a second: say each new reason once
            logger.warning("TLS to ZooKeeper at %s:%s failed: %s", server[0], server[1], reason)

    def failures(self) -> dict[tuple[str, int], str]:
        with self._lock:
            return dict(self._failures)

    def all_failed(self, servers: list[tuple[str, int]]) -> bool:
        failures = self.failures()
        return bool(servers) and all((host.strip(), port) in failures for host, port in servers)


def _tls_reason(error: BaseException) -> str:
    if isinstance(error, ssl.SSLCertVerificationError):
        return f"the server's certificate is not accepted: {error.verify_message or error}"
    if isinstance(error, (ssl.SSLEOFError, ConnectionResetError, BrokenPipeError)):
        return (f"the server closed the connection during the TLS handshake ({error}): not a TLS port "
                "(secureClientPort), or it refused the client's certificate")
    if isinstance(error, TimeoutError):
        return "no answer to the TLS handshake (a plain-TCP port, not secureClientPort?)"
    if isinstance(error, ssl.SSLError):
        reason = error.reason or str(error)
        if "WRONG_VERSION_NUMBER" in str(reason).upper():
            return f"the server does not speak TLS there ({reason}): a plain clientPort, not secureClientPort?"
        if any(word in str(reason).upper() for word in ("CERTIFICATE", "UNKNOWN_CA", "HANDSHAKE_FAILURE")):
            return f"the TLS handshake failed ({reason}): did the server refuse the client's certificate?"
        return f"{reason}"
    return f"{type(error).__name__}: {error}"


def zookeeper_client(config: Configuration, client_id: tuple[int, bytes] | None = None) -> KazooClient:
    """An unstarted client for `high-availability.zookeeper.quorum` with the configured timeouts; with
    `client_id` (session id, password), one that resumes that session (deploy/guardian.py closes a dead
    JobManager's session with it)."""
    client, _ = _client_and_sasl(config, client_id)
    return client


def _client_and_sasl(config: Configuration,
                     client_id: tuple[int, bytes] | None = None) -> tuple[KazooClient, ZooKeeperSasl | None]:
    quorum = config.require(HighAvailabilityOptions.HA_ZOOKEEPER_QUORUM,
                            "high-availability is zookeeper, so the ZooKeeper servers must be named")
    if "/" in quorum:
        raise ConfigurationError(
            f"{quorum!r} holds a path; give host:port pairs only and put the path in "
            "high-availability.zookeeper.path.root", key=HighAvailabilityOptions.HA_ZOOKEEPER_QUORUM.key)
    retry_wait = config.get(HighAvailabilityOptions.ZOOKEEPER_RETRY_WAIT).total_seconds()
    attempts = config.get(HighAvailabilityOptions.ZOOKEEPER_MAX_RETRY_ATTEMPTS)
    acl = config.get(HighAvailabilityOptions.ZOOKEEPER_CLIENT_ACL)
    sasl = zookeeper_sasl(config)
    if acl == "creator" and sasl is None:
        raise ConfigurationError(_creator_without_sasl(config), key=HighAvailabilityOptions.ZOOKEEPER_CLIENT_ACL.key)
    if sasl is not None:
        logger.info("Authenticating to ZooKeeper at %s with SASL %s", quorum, sasl.describe())
    tls = zookeeper_tls(config)
    if tls is not None:
        logger.info("Connecting to ZooKeeper at %s with %s", quorum, tls.describe())
    session_timeout = config.get(HighAvailabilityOptions.ZOOKEEPER_SESSION_TIMEOUT).total_seconds()
    # ZooKeeper's own order of servers (StaticHostProvider): shuffled once, then round and round. kazoo
    # shuffles again for each round, so a server that never answers could come last in one round and first
    # in the next: two connect timeouts in a row, the session's whole timeout.
    servers = [server.strip() for server in quorum.split(",") if server.strip()]
    random.shuffle(servers)
    connect_timeout = session_timeout / max(1, len(servers))
    client = KazooClient(
        hosts=",".join(servers),
        randomize_hosts=False,
        timeout=session_timeout,
        connection_retry=KazooRetry(max_tries=-1, delay=0.05, backoff=2, max_delay=max(retry_wait, 0.05)),
        command_retry=KazooRetry(max_tries=attempts, delay=min(retry_wait, 0.1), backoff=2,
                                 max_delay=max(retry_wait, 0.1), ignore_expire=False),
        default_acl=CREATOR_ALL_ACL if acl == "creator" else None,
        sasl_options=sasl.kazoo_sasl_options() if sasl is not None else None,
        logger=logging.getLogger("kazoo.client"),
        handler=_TlsHandler(tls, connect_timeout) if tls is not None else _ZooKeeperHandler(connect_timeout),
        use_ssl=tls is not None,  # for kazoo's log lines; the handler does the TLS
        client_id=client_id,
    )
    return client, sasl


def _creator_without_sasl(config: Configuration) -> str:
    context = config.get(SecurityOptions.ZOOKEEPER_SASL_LOGIN_CONTEXT_NAME)
    if config.get(SecurityOptions.ZOOKEEPER_SASL_DISABLE):
        why = f"{SecurityOptions.ZOOKEEPER_SASL_DISABLE.key} is true"
    else:
        why = f"no JAAS file is named (-D{JAAS_PROPERTY}=<file> in env.java.opts.all)"
    return (f"is creator, so the cluster's znodes are to be readable and writable only by the identity it "
            f"authenticates as, but the ZooKeeper client has no SASL credentials: {why}. Name a JAAS file with "
            f"-D{JAAS_PROPERTY}=<file> in env.java.opts.all whose {context} section "
            f"({SecurityOptions.ZOOKEEPER_SASL_LOGIN_CONTEXT_NAME.key}) has {DIGEST_LOGIN_MODULE} required "
            'username="..." password="..."; (ha-flink never falls back to open ACLs)')


def start_zookeeper_client(config: Configuration) -> KazooClient:
    """A started (and, with SASL, authenticated) client; fails within `connection-timeout` with the quorum
    named, at once with the quorum and the JAAS file named when the credentials are refused, and as soon as
    every server has failed the TLS handshake with the quorum and the reason named."""
    client, sasl = _client_and_sasl(config)
    timeout = config.get(HighAvailabilityOptions.ZOOKEEPER_CONNECTION_TIMEOUT).total_seconds()
    quorum = config.get(HighAvailabilityOptions.HA_ZOOKEEPER_QUORUM)
    deadline = time.monotonic() + timeout
    try:
        _start(client, deadline)
    except ZooKeeperTlsError as exc:
        _close(client)
        raise ZooKeeperTlsError(f"no ZooKeeper server at {quorum} completed a TLS handshake: {exc}") from None
    except Exception as exc:
        _close(client)
        seen = _tls_failures(client)
        raise ConnectionError(
            f"cannot reach ZooKeeper at {quorum} within {timeout:g} s "
            f"(high-availability.zookeeper.client.connection-timeout): {exc or type(exc).__name__}{seen}"
        ) from exc
    if sasl is None:
        return client
    try:
        # kazoo reports CONNECTED before its SASL exchange, which runs on the connection thread ahead of
        # any request: one answered request means the server accepted the credentials.
        client.exists_async("/").get(timeout=max(deadline - time.monotonic(), 0.1))
    except KazooTimeoutError as exc:
        # A server without SASL answers every SASL packet with an empty token and kazoo's exchange goes
        # round until the session timeout, deaf to stop(): end it by shutting its socket (the exchange then
        # fails as AUTH_FAILED and the connection thread stops).
        _abort_connection(client)
        _close(client)
        raise ZooKeeperAuthenticationError(
            f"ZooKeeper at {quorum} did not complete the SASL authentication ({sasl.describe()}) within "
            f"{timeout:g} s (high-availability.zookeeper.client.connection-timeout): do the servers accept "
            "SASL (zoo.cfg authProvider.1=org.apache.zookeeper.server.auth.SASLAuthenticationProvider and "
            "-Djava.security.auth.login.config naming a JAAS file with a Server section)?") from exc
    except AuthFailedError as exc:
        _close(client)
        raise ZooKeeperAuthenticationError(
            f"ZooKeeper at {quorum} refused the client's authentication ({sasl.describe()}): a wrong username or "
            "password, no such user on the servers (their JAAS Server section's user_<name>), or servers "
            "without SASL (zoo.cfg authProvider and -Djava.security.auth.login.config)") from exc
    except Exception as exc:
        _abort_connection(client)
        _close(client)
        raise ConnectionError(f"ZooKeeper at {quorum}: the first request after connecting failed "
                              f"({exc or type(exc).__name__})") from exc
    return client


def _start(client: KazooClient, deadline: float) -> None:
    """kazoo's `start(timeout)`, ending early when every server has failed its last TLS handshake."""
    connected = client.start_async()
    handler = client.handler if isinstance(client.handler, _TlsHandler) else None
    while not connected.wait(max(min(0.05, deadline - time.monotonic()), 0)):
        if handler is not None and handler.all_failed(list(client.hosts)):
            raise ZooKeeperTlsError("; ".join(f"{host}:{port}: {reason}"
                                              for (host, port), reason in sorted(handler.failures().items())))
        if time.monotonic() >= deadline:
            raise KazooTimeoutError("Connection time-out")


def _tls_failures(client: KazooClient) -> str:
    if not isinstance(client.handler, _TlsHandler):
        return ""
    failures = client.handler.failures()
    if not failures:
        return ""
    return "; TLS failures: " + "; ".join(f"{host}:{port}: {reason}" for (host, port), reason in sorted(failures.items()))


def _close(client: KazooClient) -> None:
    client.stop()
    client.close()


def _abort_connection(client: KazooClient) -> None:
    """Shut the socket of kazoo's current connection (kazoo has no public way to interrupt a handshake)."""
    sock = getattr(getattr(client, "_connection", None), "_socket", None)
    if sock is not None:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
