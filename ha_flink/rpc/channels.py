"""gRPC channel and server settings shared by every process: keepalive pings so a dead peer is noticed
by connection loss within seconds (not only by a missed heartbeat), and large messages for job graphs;
and `complete`, which awaits a call on a channel that may be closed under it."""

from __future__ import annotations

import asyncio
from typing import Awaitable, TypeVar

import grpc

from ha_flink.rpc.peer_auth import channel_credentials
from ha_flink.security.tls import TlsSettings

T = TypeVar("T")

MAX_MESSAGE_BYTES = 256 * 1024 * 1024
DEFAULT_DEADLINE_SECONDS = 10.0

CHANNEL_OPTIONS = [
    ("grpc.keepalive_time_ms", 1000),
    ("grpc.keepalive_timeout_ms", 1000),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.max_pings_without_data", 0),
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 1000),
    # A host name is resolved again after a failed connect at most this often (gRPC's default: 30 s). A
    # JobManager container restarted with a new IP was dialled at its old one for 16-50 s before this.
    ("grpc.dns_min_time_between_resolutions_ms", 500),
    # How long one connection attempt may take (gRPC's default: 20 s). A peer whose machine is gone answers
    # no SYN, so each attempt to it took 20 s and a deploy to it used up its whole deadline.
    ("grpc.min_reconnect_backoff_ms", 2000),
]

SERVER_OPTIONS = [
    ("grpc.keepalive_time_ms", 1000),
    ("grpc.keepalive_timeout_ms", 1000),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.min_ping_interval_without_data_ms", 500),
    ("grpc.http2.max_ping_strikes", 0),
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
]


def _options(tls: TlsSettings | None) -> list[tuple[str, int | str]]:
    override = tls.target_name_override() if tls is not None else None
    return [*CHANNEL_OPTIONS, ("grpc.ssl_target_name_override", override)] if override else list(CHANNEL_OPTIONS)


def rpc_channel(address: str, tls: TlsSettings | None) -> grpc.aio.Channel:
    """A channel to a JobManager or TaskManager: mutual TLS when `security.ssl.internal.enabled` (`tls`)."""
    if tls is None:
        return grpc.aio.insecure_channel(address, options=CHANNEL_OPTIONS)
    return grpc.aio.secure_channel(address, channel_credentials(tls), options=_options(tls))


def blocking_channel(address: str, tls: TlsSettings | None = None) -> grpc.Channel:
    """A synchronous channel, for the CLI and for threads that are not on an event loop."""
    if tls is None:
        return grpc.insecure_channel(address, options=CHANNEL_OPTIONS)
    return grpc.secure_channel(address, channel_credentials(tls), options=_options(tls))


class ChannelClosedError(ConnectionError):
    """A call that was in flight when its channel was closed (its peer was declared lost meanwhile)."""


async def complete(call: Awaitable[T], address: str) -> T:
    """Await a gRPC call. grpc.aio ends a call whose channel is closed locally with asyncio.CancelledError,
    which would read as the cancellation of the awaiting task itself: a REST request answered by a daemon
    that had just lost a TaskManager ended without a response, and a `gather` of such calls passed the
    cancellation on to its caller. Here that case is a ChannelClosedError, an ordinary failed call; a
    cancellation of the awaiting task still propagates as one."""
    try:
        return await call
    except asyncio.CancelledError:
        task = asyncio.current_task()
        if task is not None and task.cancelling():
            raise
        raise ChannelClosedError(f"the call to {address} was cut short: its channel was closed") from None
