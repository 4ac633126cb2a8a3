"""Pid files as Flink's `flink-daemon.sh` keeps them: `$env.pid.dir/flink-<user>-<daemon>.pid`, one pid
per line, the newest last, shared by every instance of that daemon on the host.

Every change is a read-modify-write under an flock on the file itself (rewritten in place, so the lock
stays on the same inode), because several starts may race: two SSH sessions to two "hosts" that are the
same machine, or start-cluster.sh starting three JobManagers. A pid is trusted only if that process is
alive and its command line names the daemon; anything else is stale and dropped, never signalled."""

from __future__ import annotations

import fcntl
import getpass
import os
import time
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Callable, Iterator


def pid_file_path(pid_dir: str | os.PathLike[str], daemon: str, user: str | None = None) -> Path:
    return Path(pid_dir) / f"flink-{user or getpass.getuser()}-{daemon}.pid"


def parse_pids(text: str) -> list[int]:
    """The pids of a pid file, in order; lines that are not a pid (a damaged file) are skipped."""
    return [int(line) for line in (raw.strip() for raw in text.splitlines()) if line.isdigit()]


def format_pids(pids: list[int]) -> str:
    return "".join(f"{pid}\n" for pid in pids)


EXEC_GRACE_SECONDS = 0.5


def command_line(pid: int) -> list[str] | None:
    """The process's argv, or None when it is gone or a zombie (exited, not yet reaped: not running)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            # the state letter follows the parenthesised command name, which may itself hold ') '
            if stat.read().rsplit(b")", 1)[1].split()[0] in (b"Z", b"X"):
                _reap(pid)
                return None
        with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
            return [part.decode("utf-8", "replace") for part in cmdline.read().split(b"\0") if part]
    except (OSError, IndexError):
        return None


def settled_command_line(pid: int) -> list[str] | None:
    """`command_line`, for a pid of ours: an empty argv of a live process is read again for up to
    EXEC_GRACE_SECONDS. A process's arguments appear a moment after the exec that Popen waits for (the
    new image sets them up after closing the exec pipe), and a daemon started just before must not look
    stale then.
    (Not for scanning /proc: kernel threads never have one.)"""
    deadline = time.monotonic() + EXEC_GRACE_SECONDS
    while True:
        argv = command_line(pid)
        if argv or argv is None or time.monotonic() >= deadline:
            return argv
        time.sleep(0.002)


def _reap(pid: int) -> None:
    """Collect a zombie if it is our own child (a test that started daemons in-process)."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def is_daemon_process(pid: int, marker: str) -> bool:
    """Alive, and running the daemon: one of its arguments contains `marker` (a pid may have been reused)."""
    argv = settled_command_line(pid)
    return argv is not None and any(marker in part for part in argv)


class PidFile:
    """One daemon's pid file. `with pid_file.locked() as pids:` gives the live pids under the lock; assign
    `pids[:]` to change them. `stale` then holds the pids that were dropped as dead."""

    def __init__(self, path: Path, marker: str, alive: Callable[[int, str], bool] = is_daemon_process) -> None:
        self.path = path
        self.marker = marker
        self.alive = alive
        self.stale: list[int] = []

    def _open_locked(self) -> IO[str]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        while True:
            handle = open(self.path, "a+", encoding="ascii")
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                if os.fstat(handle.fileno()).st_ino == os.stat(self.path).st_ino:
                    return handle
            except FileNotFoundError:
                pass
            # another process removed the file (its last pid stopped) while we waited: lock the new one
            handle.close()

    @contextmanager
    def locked(self) -> Iterator[list[int]]:
        """The live pids, under the lock; whatever the list holds at the end is written back (the file is
        removed when it is empty, as Flink's stop-all does)."""
        with self._open_locked() as handle:
            handle.seek(0)
            recorded = parse_pids(handle.read())
            pids = [pid for pid in recorded if self.alive(pid, self.marker)]
            self.stale = [pid for pid in recorded if pid not in pids]
            yield pids
            if pids:
                handle.seek(0)
                handle.truncate()
                handle.write(format_pids(pids))
                handle.flush()
            else:
                self.path.unlink(missing_ok=True)

    def live_pids(self) -> list[int]:
        """The live pids; a file left with none is removed."""
        if not self.path.exists():
            return []
        with self.locked() as pids:
            return list(pids)
