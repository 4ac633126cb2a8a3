"""Which names in the host files mean this machine (started directly) and which are other hosts (SSH)."""

from __future__ import annotations

import socket

from ha_flink.deploy.hosts import is_local_host


def test_localhost_loopback_and_this_hosts_name_are_local() -> None:
    for name in ("localhost", "LOCALHOST", "127.0.0.1", "::1", "[::1]", socket.gethostname(), " localhost "):
        assert is_local_host(name), name


def test_other_names_and_other_loopback_addresses_are_remote() -> None:
    # 127.0.0.2 and up stand in for other hosts in the tests, reached through a real sshd
    for name in ("127.0.0.2", "127.0.0.3", "node-1.example.com", "10.1.2.3"):
        assert not is_local_host(name, frozenset({"localhost", "127.0.0.1", "vm"})), name
