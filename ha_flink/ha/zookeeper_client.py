"""A kazoo client made from Flink's `high-availability.zookeeper.*` keys, authenticated with SASL when a
JAAS file names credentials (`ha_flink/security/jaas.py`).

Commands retry a bounded number of times (`max-retry-attempts`, backing off from `retry-wait`), unlike
kazoo's default of forever, so a caller learns that ZooKeeper is unreachable. The connection itself keeps
trying to reconnect (bounded by the same delay) for as long as the client runs: a JobManager whose quorum
comes back must find it again, as Curator does.

`high-availability.zookeeper.client.acl: creator` gives every znode the cluster creates kazoo's
CREATOR_ALL_ACL (the server turns it into `sasl:<user>`: all rights for the cluster's identity, none for
anyone else). kazoo applies the client's `default_acl` to every create that names no ACL of its own: plain
creates, transactions, `ensure_path` and the parents `makepath=True` makes, so the root path, the cluster-id
node, the election latches, the locks and the checkpoint ID counter all get it; the ha package names no
ACL anywhere. Without SASL credentials creator ACL is refused at start: ZooKeeper would answer every create
with InvalidACL, and falling back to open ACLs would hand the cluster's nodes to everyone."""

from __future__ import annotations

import logging
import socket
import time

from kazoo.client import KazooClient
from kazoo.exceptions import AuthFailedError
from kazoo.handlers.threading import KazooTimeoutError
from kazoo.retry import KazooRetry
from kazoo.security import CREATOR_ALL_ACL

from ha_flink.config import Configuration, ConfigurationError, HighAvailabilityOptions, SecurityOptions
from ha_flink.security.jaas import DIGEST_LOGIN_MODULE, JAAS_PROPERTY, ZooKeeperSasl, zookeeper_sasl

logger = logging.getLogger(__name__)


class ZooKeeperAuthenticationError(ConnectionError):
    """The quorum refused the client's SASL credentials."""


def zookeeper_client(config: Configuration) -> KazooClient:
    """An unstarted client for `high-availability.zookeeper.quorum` with the configured timeouts."""
    client, _ = _client_and_sasl(config)
    return client


def _client_and_sasl(config: Configuration) -> tuple[KazooClient, ZooKeeperSasl | None]:
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
    client = KazooClient(
        hosts=quorum,
        timeout=config.get(HighAvailabilityOptions.ZOOKEEPER_SESSION_TIMEOUT).total_seconds(),
        connection_retry=KazooRetry(max_tries=-1, delay=0.05, backoff=2, max_delay=max(retry_wait, 0.05)),
        command_retry=KazooRetry(max_tries=attempts, delay=min(retry_wait, 0.1), backoff=2,
                                 max_delay=max(retry_wait, 0.1), ignore_expire=False),
        default_acl=CREATOR_ALL_ACL if acl == "creator" else None,
        sasl_options=sasl.kazoo_sasl_options() if sasl is not None else None,
        logger=logging.getLogger("kazoo.client"),
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
    named, and at once with the quorum and the JAAS file named when the credentials are refused."""
    client, sasl = _client_and_sasl(config)
    timeout = config.get(HighAvailabilityOptions.ZOOKEEPER_CONNECTION_TIMEOUT).total_seconds()
    quorum = config.get(HighAvailabilityOptions.HA_ZOOKEEPER_QUORUM)
    deadline = time.monotonic() + timeout
    try:
        client.start(timeout=timeout)
    except Exception as exc:
        _close(client)
        raise ConnectionError(
            f"cannot reach ZooKeeper at {quorum} within {timeout:g} s "
            f"(high-availability.zookeeper.client.connection-timeout): {exc or type(exc).__name__}"
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
