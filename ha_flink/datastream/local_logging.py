"""Where the runtime's log lines go when a program runs its job in this process (`python job.py`).

PyFlink's local mini cluster runs in a JVM that logs to its own files, so a program that sends Python's
logging to stdout (`logging.basicConfig(stream=sys.stdout, level=logging.INFO)`, as PyFlink's examples do)
prints only its own lines. Here the runtime shares the program's process and its root logger, so the
first local run routes the `ha_flink` loggers the same way: every line into a log file
(`<env.log.dir>/ha-flink-<user>-local-<host>.log`; unset: `<tmp>/ha-flink-logs/`), and warnings and errors
also to the program's own handlers, where they are seen (Flink would leave those in its file too).

A program (or a test suite) that configured the `ha_flink` logger itself (a handler of its own, or
`propagate` off) is left as it is."""

from __future__ import annotations

import getpass
import logging
import socket
import tempfile
import threading
from pathlib import Path

from ha_flink.config import Configuration, DeploymentOptions

LOG_FORMAT = "%(asctime)s %(levelname)-5s %(name)s [%(threadName)s] %(message)s"

_lock = threading.Lock()
_routed: Path | None = None


class _WarningsToProgram(logging.Handler):
    """Hands WARNING and above on to the root logger's handlers (the program's), as propagation would."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)

    def emit(self, record: logging.LogRecord) -> None:
        logging.getLogger().handle(record)


def log_file(config: Configuration) -> Path:
    folder = config.get(DeploymentOptions.LOG_DIR) or str(Path(tempfile.gettempdir()) / "ha-flink-logs")
    return Path(folder) / f"ha-flink-{getpass.getuser()}-local-{socket.gethostname()}.log"


def route_runtime_logs(config: Configuration) -> Path | None:
    """Route the runtime's logging as the module docstring says (once per process); returns the log file,
    or None when the `ha_flink` logger was configured by the program."""
    global _routed
    runtime = logging.getLogger("ha_flink")
    with _lock:
        if _routed is not None:
            return _routed
        if runtime.handlers or not runtime.propagate:
            return None
        path = log_file(config)
        path.parent.mkdir(parents=True, exist_ok=True)
        to_file = logging.FileHandler(path, encoding="utf-8")
        to_file.setFormatter(logging.Formatter(LOG_FORMAT))
        runtime.addHandler(to_file)
        runtime.addHandler(_WarningsToProgram())
        if runtime.level == logging.NOTSET:
            runtime.setLevel(logging.INFO)  # (the file gets INFO even when the program logs only warnings)
        runtime.propagate = False
        _routed = path
        return path
