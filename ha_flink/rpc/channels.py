"""gRPC channel and server settings shared by every process: keepalive pings so a dead peer is noticed
by connection loss within seconds (not only by a missed heartbeat), and large messages for job graphs."""

from __future__ import annotations

import grpc

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


def insecure_channel(address: str) -> grpc.aio.Channel:
    return grpc.aio.insecure_channel(address, options=CHANNEL_OPTIONS)


def blocking_channel(address: str) -> grpc.Channel:
    """A synchronous channel, for the CLI and for threads that are not on an event loop."""
    return grpc.insecure_channel(address, options=CHANNEL_OPTIONS)
