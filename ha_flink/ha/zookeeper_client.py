"""A kazoo client made from Flink's `high-availability.zookeeper.*` keys.

Commands retry a bounded number of times (`max-retry-attempts`, backing off from `retry-wait`), unlike
kazoo's default of forever, so a caller learns that ZooKeeper is unreachable. The connection itself keeps
trying to reconnect (bounded by the same delay) for as long as the client runs: a JobManager whose quorum
comes back must find it again, as Curator does."""

from __future__ import annotations

import logging

from kazoo.client import KazooClient
from kazoo.retry import KazooRetry
from kazoo.security import CREATOR_ALL_ACL

from ha_flink.config import Configuration, ConfigurationError, HighAvailabilityOptions

logger = logging.getLogger(__name__)


def zookeeper_client(config: Configuration) -> KazooClient:
    """An unstarted client for `high-availability.zookeeper.quorum` with the configured timeouts."""
    quorum = config.require(HighAvailabilityOptions.HA_ZOOKEEPER_QUORUM,
                            "high-availability is zookeeper, so the ZooKeeper servers must be named")
    if "/" in quorum:
        raise ConfigurationError(
            f"{quorum!r} holds a path; give host:port pairs only and put the path in "
            "high-availability.zookeeper.path.root", key=HighAvailabilityOptions.HA_ZOOKEEPER_QUORUM.key)
    retry_wait = config.get(HighAvailabilityOptions.ZOOKEEPER_RETRY_WAIT).total_seconds()
    attempts = config.get(HighAvailabilityOptions.ZOOKEEPER_MAX_RETRY_ATTEMPTS)
    acl = config.get(HighAvailabilityOptions.ZOOKEEPER_CLIENT_ACL)
    return KazooClient(
        hosts=quorum,
        timeout=config.get(HighAvailabilityOptions.ZOOKEEPER_SESSION_TIMEOUT).total_seconds(),
        connection_retry=KazooRetry(max_tries=-1, delay=0.05, backoff=2, max_delay=max(retry_wait, 0.05)),
        command_retry=KazooRetry(max_tries=attempts, delay=min(retry_wait, 0.1), backoff=2,
                                 max_delay=max(retry_wait, 0.1), ignore_expire=False),
        default_acl=CREATOR_ALL_ACL if acl == "creator" else None,
        logger=logging.getLogger("kazoo.client"),
    )


def start_zookeeper_client(config: Configuration) -> KazooClient:
    """A started client; fails within `connection-timeout` with the quorum named."""
    client = zookeeper_client(config)
    timeout = config.get(HighAvailabilityOptions.ZOOKEEPER_CONNECTION_TIMEOUT).total_seconds()
    try:
        client.start(timeout=timeout)
    except Exception as exc:
        client.stop()
        client.close()
        quorum = config.get(HighAvailabilityOptions.HA_ZOOKEEPER_QUORUM)
        raise ConnectionError(
            f"cannot reach ZooKeeper at {quorum} within {timeout:g} s "
            f"(high-availability.zookeeper.client.connection-timeout): {exc or type(exc).__name__}"
        ) from exc
    return client
