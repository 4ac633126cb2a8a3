"""Which host names in conf/masters, conf/slaves and zoo.cfg mean this machine.

A local host's daemons are started directly, any other host's over SSH. Local means: `localhost`, the
loopback address 127.0.0.1 (or ::1), this machine's host name (short or fully qualified) and the
addresses that name resolves to. Other loopback addresses (127.0.0.2, ...) are deliberately *not* local:
the tests use them as stand-ins for remote hosts reached through a real sshd."""

from __future__ import annotations

import functools
import socket

ALWAYS_LOCAL = frozenset({"localhost", "127.0.0.1", "::1", "localhost.localdomain"})


def _strip_brackets(host: str) -> str:
    return host[1:-1] if host.startswith("[") and host.endswith("]") else host


@functools.lru_cache(maxsize=1)
def local_names() -> frozenset[str]:
    """Names and addresses of this machine (computed once: a resolver lookup may be slow)."""
    names = set(ALWAYS_LOCAL)
    hostname = socket.gethostname()
    names.add(hostname.lower())
    try:
        canonical, aliases, addresses = socket.gethostbyname_ex(hostname)
        names.update(name.lower() for name in (canonical, *aliases))
        names.update(addresses)
    except OSError:
        pass  # a host name the resolver does not know is still this machine's name
    return frozenset(names)


def is_local_host(host: str, names: frozenset[str] | None = None) -> bool:
    """True when `host` (as written in masters/slaves/zoo.cfg) is this machine."""
    candidate = _strip_brackets(host.strip()).lower()
    return candidate in (local_names() if names is None else names)
