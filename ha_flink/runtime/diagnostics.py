"""What a daemon can tell about itself for Flink's diagnostic REST endpoints, JobManager and TaskManager
alike: where its log files are and their listing, reading one of them (only a plain file of the log
directory, at most its last `MAX_LOG_BYTES`), a dump of its Python threads with their stacks, and its
process figures (CPU, memory, threads, file descriptors) under Flink's metric ids where one fits.

The REST layer shapes these into Flink's JSON (`rest/diagnostics.py`); a TaskManager hands them to the
leader over gRPC (`TaskExecutor.ListLogFiles`, `ReadLogFile`, `RequestThreadDump`,
`RequestTaskManagerMetrics`)."""

from __future__ import annotations

import collections
import enum
import logging
import os
import resource
import stat
import sys
import threading
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ha_flink.config import Configuration, DeploymentOptions

logger = logging.getLogger(__name__)

# The most of one file a request reads: its tail, as the dashboard shows the end of a log (and a gRPC
# message from a TaskManager stays far below the channel's limit).
MAX_LOG_BYTES = 8 * 1024 * 1024
# Flink's `cluster.thread-dump.stacktrace-max-depth` (its default: 50 frames per thread)
THREAD_DUMP_DEPTH_KEY = "cluster.thread-dump.stacktrace-max-depth"
DEFAULT_THREAD_DUMP_DEPTH = 50


class LogFileProblem(enum.Enum):
    BAD_NAME = "bad name"     # not a plain file name: a path, "..", empty (REST: 400)
    NOT_FOUND = "not found"   # no such plain file in the log directory, or none configured (REST: 404)


class LogFileError(Exception):
    def __init__(self, problem: LogFileProblem, message: str) -> None:
        super().__init__(message)
        self.problem = problem


@dataclass(frozen=True)
class LogFile:
    """Flink's LogInfo: a file of the log directory."""

    name: str
    size: int
    mtime: int  # ms since the epoch


@dataclass(frozen=True)
class LogChunk:
    data: bytes
    size: int       # the whole file's size
    skipped: int    # bytes before `data` not read (0: the whole file)


@dataclass(frozen=True)
class LogLocation:
    """A daemon's log file, its `.out` file (the daemon's stdout and stderr, flink-daemon.sh's) and the
    folder of both. Any may be unknown (a daemon started without a log file: a test's MiniCluster)."""

    directory: Path | None
    log_file: Path | None
    stdout_file: Path | None

    @classmethod
    def of_this_process(cls, config: Configuration, path_key: str) -> LogLocation:
        """As Flink finds it: the configured path (`web.log.path` for a JobManager, `taskmanager.log.path`
        for a TaskManager; Flink's `log.file` property otherwise), else the file the daemon's root logger
        writes to (entrypoint.py opens `flink-<user>-<daemon>-<n>-<host>.log`); the folder is that file's,
        else `env.log.dir`."""
        configured = config.get_raw(path_key)
        log_file = Path(str(configured)) if configured else _root_log_file()
        log_dir: str | None = config.get(DeploymentOptions.LOG_DIR)
        directory = log_file.parent if log_file is not None else Path(log_dir) if log_dir else None
        stdout_file = log_file.with_suffix(".out") if log_file is not None else None
        return cls(directory, log_file, stdout_file)

    def files(self) -> list[LogFile]:
        return list_log_files(self.directory) if self.directory is not None else []

    def read(self, name: str, max_bytes: int = MAX_LOG_BYTES) -> LogChunk:
        if self.directory is None:
            raise LogFileError(LogFileProblem.NOT_FOUND, f"log file {name!r}: this process has no log directory "
                                                         "(env.log.dir)")
        return read_log_file(self.directory, name, max_bytes)

    def read_log(self, max_bytes: int = MAX_LOG_BYTES) -> LogChunk:
        return self._read_own(self.log_file, "log file", max_bytes)

    def read_stdout(self, max_bytes: int = MAX_LOG_BYTES) -> LogChunk:
        return self._read_own(self.stdout_file, "stdout file (.out)", max_bytes)

    def _read_own(self, path: Path | None, what: str, max_bytes: int) -> LogChunk:
        if path is None:
            raise LogFileError(LogFileProblem.NOT_FOUND, f"this process writes no {what}")
        return read_log_file(path.parent, path.name, max_bytes)


def _root_log_file() -> Path | None:
    for handler in logging.getLogger().handlers:
        name = getattr(handler, "baseFilename", None) or getattr(getattr(handler, "stream", None), "name", None)
        if isinstance(name, str) and os.path.isabs(name) and name.endswith(".log"):
            return Path(name)
    return None


def check_log_file_name(name: str) -> None:
    """A plain file name, nothing that could leave the folder (LogFileError BAD_NAME otherwise)."""
    if not name or name in (".", "..") or "/" in name or "\\" in name or "\0" in name:
        raise LogFileError(LogFileProblem.BAD_NAME, f"log file name {name!r} is not a plain file name of the "
                                                    "log directory (no '/', no '..')")


def list_log_files(directory: Path) -> list[LogFile]:
    """The plain files of `directory` (no folders, no symbolic links), by name; none if it is missing."""
    try:
        entries = list(os.scandir(directory))
    except (FileNotFoundError, NotADirectoryError):
        return []
    files = []
    for entry in entries:
        try:
            info = entry.stat(follow_symlinks=False)
        except FileNotFoundError:  # removed since the listing
            continue
        if stat.S_ISREG(info.st_mode):
            files.append(LogFile(entry.name, info.st_size, int(info.st_mtime * 1000)))
    return sorted(files, key=lambda f: f.name)


def read_log_file(directory: Path, name: str, max_bytes: int = MAX_LOG_BYTES) -> LogChunk:
    """The last `max_bytes` of the plain file `name` of `directory`. Opened relative to the folder without
    following a symbolic link (O_NOFOLLOW), then checked to be a regular file on the open descriptor, so a
    link or a rename in between cannot make it read anything outside the folder."""
    check_log_file_name(name)
    try:
        folder = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        raise LogFileError(LogFileProblem.NOT_FOUND, f"log file {name!r}: the log directory {directory} "
                                                     "does not exist") from None
    try:
        try:
            fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=folder)
        except OSError:  # missing, a symbolic link (ELOOP), unreadable
            raise LogFileError(LogFileProblem.NOT_FOUND, f"log file {name!r} is not a plain file of the log "
                                                         f"directory {directory}") from None
    finally:
        os.close(folder)
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):  # a folder, a FIFO, a device
        os.close(fd)
        raise LogFileError(LogFileProblem.NOT_FOUND, f"log file {name!r} is not a plain file of the log "
                                                     f"directory {directory}")
    with os.fdopen(fd, "rb") as handle:
        skipped = max(0, info.st_size - max_bytes)
        handle.seek(skipped)
        data = handle.read(max_bytes)
    if skipped:  # start at a whole line
        newline = data.find(b"\n")
        if 0 <= newline < len(data) - 1:
            skipped += newline + 1
            data = data[newline + 1:]
    return LogChunk(data, info.st_size, skipped)


# -- threads ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ThreadStack:
    """Flink's ThreadDumpInfo.ThreadInfo: a thread's name and its stack as text."""

    name: str
    text: str


def thread_dump(max_depth: int = DEFAULT_THREAD_DUMP_DEPTH) -> list[ThreadStack]:
    """Every Python thread of this process with its stack, innermost frame first, in the layout of Java's
    ThreadInfo text that Flink shows: `"name" daemon Id=<ident> ...` then one `\\tat` line per frame (at most
    `max_depth`, then `\\t...`). Python does not know whether a thread is blocked, so no state is claimed;
    the innermost frame shows where it waits."""
    frames = sys._current_frames()
    dump = []
    for thread in sorted(threading.enumerate(), key=lambda t: t.name):
        frame = frames.get(thread.ident) if thread.ident is not None else None
        stack = list(reversed(traceback.extract_stack(frame))) if frame is not None else []
        header = (f'"{thread.name}"{" daemon" if thread.daemon else ""} Id={thread.ident} '
                  f'native_id={thread.native_id}{" (current)" if thread is threading.current_thread() else ""}')
        lines = [header] + [f"\tat {entry.name}({entry.filename}:{entry.lineno})" for entry in stack[:max_depth]]
        if len(stack) > max_depth:
            lines.append("\t...")
        dump.append(ThreadStack(thread.name, "\n".join(lines) + "\n\n"))
    return dump


def thread_dump_depth(config: Configuration) -> int:
    raw = config.get_raw(THREAD_DUMP_DEPTH_KEY)
    try:
        depth = int(str(raw)) if raw is not None else DEFAULT_THREAD_DUMP_DEPTH
    except ValueError:
        logger.warning("%s: %r is not a number; using %d", THREAD_DUMP_DEPTH_KEY, raw, DEFAULT_THREAD_DUMP_DEPTH)
        return DEFAULT_THREAD_DUMP_DEPTH
    return max(1, depth)


def sample_stacks(idents: list[int], samples: int, delay_s: float, depth: int) -> collections.Counter[tuple[str, ...]]:
    """The stacks of the threads `idents`, sampled `samples` times `delay_s` apart (blocks meanwhile): how
    often each stack (outermost frame first, its innermost `depth` frames) was seen; Flink's flame graph
    samples task threads so. A thread that ended meanwhile is simply not seen again."""
    seen: collections.Counter[tuple[str, ...]] = collections.Counter()
    for sample in range(samples):
        frames = sys._current_frames()
        for ident in idents:
            frame = frames.get(ident)
            if frame is not None:
                stack = traceback.extract_stack(frame)[-depth:]
                seen[tuple(f"{entry.name} ({os.path.basename(entry.filename)}:{entry.lineno})"
                           for entry in stack)] += 1
        if sample + 1 < samples:
            time.sleep(delay_s)
    return seen


def flame_graph(stacks: collections.Counter[tuple[str, ...]]) -> dict[str, Any]:
    """Flink's VertexFlameGraph node tree: `root` with every sample, each node's children the frames called
    from it, each node's value the samples that passed through it."""
    root: dict[str, Any] = {"name": "root", "value": 0, "children": []}
    index: dict[int, dict[str, dict[str, Any]]] = {}
    for stack, count in stacks.items():
        node = root
        node["value"] += count
        for frame in stack:
            children = index.setdefault(id(node), {})
            child = children.get(frame)
            if child is None:
                child = children[frame] = {"name": frame, "value": 0, "children": []}
                node["children"].append(child)
            child["value"] += count
            node = child
    return root


# -- process figures -------------------------------------------------------------------------------------

class ProcessStatus:
    """This process's figures as metric id -> value text (Flink's MetricStore form). Flink's ids where the
    meaning is the same: `Status.JVM.CPU.Load` (the process's CPU use since the previous sample, a fraction
    of all cores, as the JVM's getProcessCpuLoad), `Status.JVM.CPU.Time` (ns), `Status.JVM.Threads.Count`,
    `Status.FileDescriptor.Open` / `.Max`. Ours, named as such, where a JVM figure has no Python
    counterpart: `Status.Python.Memory.RSS` / `.VMS` (bytes; there is no heap to report)."""

    def __init__(self) -> None:
        self._last: tuple[float, float] | None = None  # (wall clock, process CPU s) at the previous sample
        self._lock = threading.Lock()

    def sample(self) -> dict[str, str]:
        wall, cpu = time.monotonic(), time.process_time()
        with self._lock:
            previous, self._last = self._last, (wall, cpu)
        if previous is None:
            previous = _process_start()
        elapsed = wall - previous[0]
        load = (cpu - previous[1]) / elapsed / (os.cpu_count() or 1) if elapsed > 0 else 0.0
        values = {"Status.JVM.CPU.Load": str(round(min(max(load, 0.0), 1.0), 4)),
                  "Status.JVM.CPU.Time": str(int(cpu * 1e9)),
                  "Status.JVM.Threads.Count": str(threading.active_count())}
        fds = _open_file_descriptors()
        if fds is not None:
            values["Status.FileDescriptor.Open"] = str(fds)
        soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
        values["Status.FileDescriptor.Max"] = str(soft if soft != resource.RLIM_INFINITY else -1)
        memory = _memory()
        if memory is not None:
            values["Status.Python.Memory.RSS"], values["Status.Python.Memory.VMS"] = map(str, memory)
        return values


def _process_start() -> tuple[float, float]:
    """(monotonic time, CPU s) at the process's start, so the first sample covers its whole life."""
    try:
        ticks = os.sysconf("SC_CLK_TCK")
        fields = Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()
        started_after_boot = int(fields[19]) / ticks  # (field 22 of stat: starttime, in clock ticks)
        uptime = float(Path("/proc/uptime").read_text().split()[0])
        return time.monotonic() - max(0.0, uptime - started_after_boot), 0.0
    except (OSError, ValueError, IndexError):
        return time.monotonic(), time.process_time()


def _open_file_descriptors() -> int | None:
    try:
        return len(os.listdir("/proc/self/fd"))
    except OSError:
        return None


def _memory() -> tuple[int, int] | None:
    """(resident, virtual) bytes of this process (Linux's /proc/self/statm)."""
    try:
        size, resident = Path("/proc/self/statm").read_text().split()[:2]
    except (OSError, ValueError):
        return None
    page = os.sysconf("SC_PAGE_SIZE")
    return int(resident) * page, int(size) * page
