"""Bounded input on the REST API of a real cluster: a body over `rest.server.max-content-length` is answered
413 before it is read (the JobManager's memory stays where it was), on the leader and on a standby; a
savepoint target that is not an absolute path or URL is refused with 400; `jobmanager.bind-host` and
`taskmanager.bind-host` bind every listener of their daemon."""

from __future__ import annotations

import http.client
import json
import os
import socket
import urllib.parse
from pathlib import Path
from typing import Any, Callable

from ha_flink.testing.cluster import Cluster
from ha_flink.testing.processes import wait_for

HERE = Path(__file__).resolve().parent
LIMIT = 1024 * 1024


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmRSS for pid {pid}")


def post_declared(address: str, path: str, declared: int, sent: int) -> tuple[int, Any]:
    """POST with a Content-Length of `declared` bytes, of which only `sent` are sent before the answer."""
    url = urllib.parse.urlsplit(address)
    connection = http.client.HTTPConnection(url.hostname, url.port, timeout=10)
    try:
        connection.putrequest("POST", path)
        connection.putheader("Content-Length", str(declared))
        connection.endheaders()
        connection.send(b"x" * sent)
        answer = connection.getresponse()
        return answer.status, json.loads(answer.read() or b"null")
    finally:
        connection.close()


def post_chunked(address: str, path: str, total: int) -> tuple[int, Any]:
    """POST `total` bytes chunked (no Content-Length), 64 KiB a chunk, until the server answers."""
    url = urllib.parse.urlsplit(address)
    connection = http.client.HTTPConnection(url.hostname, url.port, timeout=10)
    try:
        connection.putrequest("POST", path)
        connection.putheader("Transfer-Encoding", "chunked")
        connection.endheaders()
        chunk = b"x" * 65536
        try:
            for _ in range(total // len(chunk)):
                connection.send(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            connection.send(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass  # answered and closed before the whole body was sent
        answer = connection.getresponse()
        return answer.status, json.loads(answer.read() or b"null")
    finally:
        connection.close()


def call(address: str, path: str, method: str = "GET", body: dict[str, Any] | None = None) -> tuple[int, Any]:
    url = urllib.parse.urlsplit(address)
    connection = http.client.HTTPConnection(url.hostname, url.port, timeout=10)
    try:
        data = json.dumps(body).encode() if body is not None else None
        connection.request(method, path, body=data, headers={"Content-Type": "application/json"} if data else {})
        answer = connection.getresponse()
        return answer.status, json.loads(answer.read() or b"null")
    finally:
        connection.close()


def test_a_body_over_the_limit_gets_413_unread_on_the_leader_and_a_standby(
    cluster_factory: Callable[..., Cluster],
) -> None:
    cluster = cluster_factory(**{"rest.server.max-content-length": str(LIMIT)})
    leader = cluster.start_leader()
    standby = cluster.start_jobmanager()
    for daemon in (leader, standby):
        address = daemon.rest_address()
        assert address is not None
        wait_for(lambda: call(address, "/config")[0] == 200, 20, what="the REST endpoint")
        before = rss_bytes(daemon.process.pid)
        # 200 MB declared, 64 KiB sent: the answer comes without the rest
        status, answer = post_declared(address, "/jobs", 200 * 1024 * 1024, 65536)
        assert status == 413
        assert f"{200 * 1024 * 1024} bytes, over the limit of {LIMIT} bytes (rest.server.max-content-length)" \
            in answer["errors"][0]
        status, answer = post_chunked(address, "/jobs", 4 * LIMIT)
        assert status == 413 and "rest.server.max-content-length" in answer["errors"][0]
        assert rss_bytes(daemon.process.pid) - before < 16 * 1024 * 1024
        assert call(address, "/config")[0] == 200  # and it answers on
    # a body under the limit still reaches the Dispatcher (here: not a job graph, a clear 400)
    status, answer = call(leader.rest_address() or "", "/jobs", "POST", {"not": "a job graph"})
    assert status == 400


def test_a_savepoint_target_that_is_not_absolute_is_refused(
    cluster_factory: Callable[..., Cluster], tmp_path: Path,
) -> None:
    cluster = cluster_factory()
    leader = cluster.start_leader()
    cluster.start_taskmanager()
    submitted = cluster.flink("run", "-d", "-py", str(HERE / "unbounded_job.py"), str(tmp_path / "out"))
    assert submitted.returncode == 0, submitted.stdout + submitted.stderr
    job_id = cluster.job_id(submitted)
    address = leader.rest_address() or ""
    wait_for(lambda: call(address, f"/jobs/{job_id}")[1].get("state") == "RUNNING", 30, what="the job to run")
    for target in ("../../x", "savepoints", "./sp"):
        status, answer = call(address, f"/jobs/{job_id}/savepoints", "POST", {"target-directory": target})
        assert status == 400 and f"{target!r} is neither an absolute path nor a URL" in answer["errors"][0]
        status, answer = call(address, f"/jobs/{job_id}/stop", "POST", {"targetDirectory": target})
        assert status == 400
    assert not list(Path.cwd().glob("savepoint-*")) and not (tmp_path.parent.parent / "x").exists()
    assert call(address, f"/jobs/{job_id}")[1]["state"] == "RUNNING"  # refused, nothing else happened
    assert call(address, f"/jobs/{job_id}", "PATCH")[0] == 202


def listening_addresses(pid: int) -> set[tuple[str, int]]:
    """The (address, port) of every TCP socket process `pid` listens on (its fds matched in /proc/net/tcp)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:  # closed meanwhile
            continue
        if target.startswith("socket:["):
            inodes.add(target[len("socket:["):-1])
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and fields[9] in inodes:  # LISTEN
                address, port = fields[1].split(":")
                if len(address) == 8:
                    ip = socket.inet_ntop(socket.AF_INET, bytes.fromhex(address)[::-1])
                else:
                    ip = socket.inet_ntop(socket.AF_INET6, b"".join(
                        bytes.fromhex(address[i:i + 8])[::-1] for i in range(0, 32, 8)))
                found.add((ip.removeprefix("::ffff:"), int(port, 16)))  # (an IPv4-mapped socket: the same)
    return found


def test_bind_host_binds_every_listener_of_both_daemons(cluster_factory: Callable[..., Cluster]) -> None:
    """RPC, REST, Prometheus and the TaskManager's data exchange (on taskmanager.data.port) of a daemon
    listen only on its jobmanager.bind-host / taskmanager.bind-host."""
    with socket.socket() as probe:  # (a port free now, for taskmanager.data.port)
        probe.bind(("127.0.0.1", 0))
        data_port = probe.getsockname()[1]
    cluster = cluster_factory(**{"jobmanager.bind-host": "127.0.0.1", "taskmanager.bind-host": "127.0.0.1",
                                 "metrics.reporter.prom.port": "29250-29299", "taskmanager.data.port": str(data_port)})
    leader = cluster.start_leader()
    taskmanager = cluster.start_taskmanager()
    address = leader.rest_address() or ""
    wait_for(lambda: call(address, "/overview")[1].get("taskmanagers") == 1, 20, what="the TaskManager")
    jm = listening_addresses(leader.process.pid)
    tm = listening_addresses(taskmanager.process.pid)
    assert len(jm) >= 3 and len(tm) >= 3, (jm, tm)  # RPC, REST, metrics / RPC, data, metrics
    assert ("127.0.0.1", data_port) in tm, (tm, data_port)
    assert [t["dataPort"] for t in call(address, "/taskmanagers")[1]["taskmanagers"]] == [data_port]  # (Flink's field)
    assert {ip for ip, _ in jm | tm} == {"127.0.0.1"}, (jm, tm)
    assert int(urllib.parse.urlsplit(address).port or 0) in {port for _, port in jm}
