"""The JobManager's guardian: the process `flink-daemon.sh` starts (`--guardian`) forks the JobManager and
stays beside it, small, so that a JobManager that dies loses its leadership at once instead of after the
ZooKeeper session timeout.

The JobManager hands the guardian its ZooKeeper session (id and password) over a pipe whenever its
session changes. When `waitpid` says the JobManager exited other than cleanly (a signal such as SIGKILL, a
segfault or an OOM kill, or a non-zero exit), the guardian resumes that session and closes it, so its
ephemeral latch and leader nodes vanish now and a standby is elected at once. Safety: the guardian acts only
on a confirmed exit, which only the kernel reports, never on a hang (SIGSTOP, a long pause, a partition:
the session-timeout path, as before), and a closed session can no longer write (every write of a leader is
fenced on its latch node). A guardian that dies leaves the JobManager running with the timeout path as
before. SIGTERM, SIGINT and SIGHUP to the guardian go to the JobManager, which stops gracefully (closing its
own session), and the guardian ends with it, with its exit code."""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from dataclasses import dataclass
from typing import Callable

from kazoo.client import KazooClient, KazooState

from ha_flink.config import Configuration
from ha_flink.ha.zookeeper_client import zookeeper_client

logger = logging.getLogger("ha_flink.guardian")

CLOSE_TIMEOUT_S = 10.0
FORWARDED_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


@dataclass(frozen=True)
class Session:
    session_id: int
    password: bytes

    def line(self) -> bytes:
        return f"{self.session_id} {self.password.hex()}\n".encode("ascii")

    @classmethod
    def parse(cls, line: str) -> Session:
        session_id, password = line.split()
        return cls(int(session_id), bytes.fromhex(password))

    def __str__(self) -> str:
        return f"0x{self.session_id:x}"


def publish_sessions(client: KazooClient, fd: int) -> None:
    """In the JobManager: write the client's session to the guardian now and whenever it connects with
    another (a reconnection after an expiry is a new session)."""
    last: list[int] = []

    def send() -> None:
        session_id, password = client.client_id or (None, None)
        if session_id is None or password is None or last == [session_id]:
            return
        last[:] = [session_id]
        try:
            os.write(fd, Session(session_id, password).line())  # (one short line: written at once)
        except OSError as error:  # the guardian is gone: the timeout path remains, as without one
            logger.warning("cannot hand the ZooKeeper session to the guardian: %s", error)

    def on_state(state: str) -> None:
        if state == KazooState.CONNECTED:
            send()

    client.add_listener(on_state)
    send()


def close_session(config: Configuration, session: Session) -> bool:
    """Resume `session` and close it (its ephemeral nodes are deleted by ZooKeeper). False when it could not
    be reached or had expired already (then there is nothing left to close)."""
    client = zookeeper_client(config, client_id=(session.session_id, session.password))
    try:
        client.start(timeout=CLOSE_TIMEOUT_S)
    except Exception as error:  # (unreachable ZooKeeper: the session times out on its own)
        logger.warning("could not reach ZooKeeper to close session %s: %s", session, error)
        client.close()
        return False
    resumed = client.client_id is not None and client.client_id[0] == session.session_id
    client.stop()  # closeSession: the resumed one, or a fresh one kazoo had to open when it had expired
    client.close()
    return resumed


def run_guarded(config: Configuration, jobmanager: Callable[[int], int]) -> int:
    """Fork: the child runs `jobmanager(fd)` (it writes its sessions to `fd`) and exits with its code; this
    process guards it and returns its exit code (128 + the signal that killed it)."""
    read_fd, write_fd = os.pipe()
    sys.stdout.flush()
    sys.stderr.flush()
    child = os.fork()
    if child == 0:  # the JobManager
        os.close(read_fd)
        for sig in FORWARDED_SIGNALS:
            signal.signal(sig, signal.SIG_DFL)
        code = 1
        try:
            code = jobmanager(write_fd)
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)  # (never back into the guardian's code)
    os.close(write_fd)
    print(f"Guardian (pid {os.getpid()}) of JobManager pid {child}", flush=True)
    for sig in FORWARDED_SIGNALS:
        signal.signal(sig, lambda signum, _frame: _forward(child, signum))
    latest: list[Session] = []
    reader = threading.Thread(target=_read_sessions, args=(read_fd, latest), name="guardian-sessions", daemon=True)
    reader.start()
    _, status = os.waitpid(child, 0)
    reader.join(1.0)  # (the pipe closes with the child: what it wrote last is read by now)
    if os.WIFSIGNALED(status):
        code, how = 128 + os.WTERMSIG(status), f"was killed by signal {os.WTERMSIG(status)}"
    else:
        code, how = os.waitstatus_to_exitcode(status), f"exited with {os.waitstatus_to_exitcode(status)}"
    if code != 0 and latest:
        session = latest[-1]
        closed = close_session(config, session)
        logger.warning("JobManager pid %d %s: %s", child, how,
                       f"closed its ZooKeeper session {session}, so its leadership ends now" if closed else
                       f"its ZooKeeper session {session} had ended already")
    elif code != 0:
        logger.warning("JobManager pid %d %s before it had a ZooKeeper session", child, how)
    return code


def _forward(child: int, signum: int) -> None:
    try:
        os.kill(child, signum)
    except ProcessLookupError:
        pass


def _read_sessions(fd: int, latest: list[Session]) -> None:
    with os.fdopen(fd, "r", encoding="ascii", errors="replace") as pipe:
        for line in pipe:
            try:
                latest.append(Session.parse(line))
                del latest[:-1]
            except ValueError:
                logger.warning("the JobManager handed an unreadable session line: %r", line[:80])
