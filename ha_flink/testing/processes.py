"""Process and polling helpers for tests: free loopback ports, a `popen` that always stops what it
started (by pid, with its process group), and `wait_for` that polls a condition with a deadline."""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator, Sequence, TypeVar

T = TypeVar("T")


def free_ports(count: int, host: str = "127.0.0.1") -> list[int]:
    """`count` distinct ports free right now (all held open together so none repeats)."""
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket()
            sock.bind((host, 0))
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def free_fixed_ports(count: int, host: str = "127.0.0.1") -> list[int]:
    """`count` distinct ports free right now below the kernel's ephemeral range, for servers that are
    stopped and started again on the same port: a port of that range, free while its server is down,
    may meanwhile be given to any other socket bound to port 0 (a gRPC server, an outgoing connection)."""
    try:
        low = int(open("/proc/sys/net/ipv4/ip_local_port_range").read().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32768
    candidates = list(range(max(1024, low - 12000), low))
    random.shuffle(candidates)
    ports: list[int] = []
    for port in candidates:
        with socket.socket() as sock:
            try:
                sock.bind((host, port))
            except OSError:
                continue
        ports.append(port)
        if len(ports) == count:
            return ports
    raise OSError(f"fewer than {count} free ports below {low} on {host}")


def free_port(host: str = "127.0.0.1") -> int:
    return free_ports(1, host)[0]


def wait_for(condition: Callable[[], T | None], timeout: float = 10.0, interval: float = 0.02, what: str = "") -> T:
    """Poll `condition` until it returns a truthy value (returned) or `timeout` seconds pass."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() >= deadline:
            raise TimeoutError(f"timed out after {timeout} s waiting for {what or condition}")
        time.sleep(interval)


def start_process(args: Sequence[str], log_path: str | os.PathLike[str], *, env: dict[str, str] | None = None,
                  cwd: str | os.PathLike[str] | None = None) -> subprocess.Popen[bytes]:
    """Start `args` in a session of its own, stdout and stderr appended to `log_path`."""
    Path(log_path).parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        return subprocess.Popen(list(args), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                env=env, cwd=cwd, start_new_session=True)


def stop_process(process: subprocess.Popen[bytes], sig: int = signal.SIGTERM, timeout: float = 10.0) -> int | None:
    """Signal the process group, wait up to `timeout`, then SIGKILL. Returns the exit code."""
    if process.poll() is None:
        _signal_group(process.pid, sig)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            _signal_group(process.pid, signal.SIGKILL)
            process.wait(timeout)
    return process.returncode


def _signal_group(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)
    except ProcessLookupError:
        pass


@contextmanager
def popen(args: Sequence[str], log_path: str | os.PathLike[str], **kwargs: object) -> Iterator[subprocess.Popen[bytes]]:
    """Run a process for the length of a `with` block; it is stopped when the block ends, however it ends."""
    process = start_process(args, log_path, **kwargs)  # type: ignore[arg-type]
    try:
        yield process
    finally:
        stop_process(process)


def log_tail(path: str | os.PathLike[str], lines: int = 40) -> str:
    try:
        return "\n".join(Path(path).read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return f"(no log at {path})"
