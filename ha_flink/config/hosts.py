"""`conf/masters` and `conf/slaves` (or `conf/workers`): which hosts run JobManagers and TaskManagers.

masters: one `host[:webui-port]` per line; slaves: one host per line, a repeated host meaning several
TaskManagers there. `#` starts a comment, blank lines are skipped. A malformed line is an error naming the
file and line."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path

from ha_flink.config.errors import ConfigurationError

logger = logging.getLogger(__name__)

# A DNS name or IPv4 address, or an IPv6 address in brackets.
_HOST = r"(?:[A-Za-z0-9_](?:[A-Za-z0-9_.-]*[A-Za-z0-9_])?|\[[0-9A-Fa-f:.]+\])"
_MASTER_LINE = re.compile(rf"^(?P<host>{_HOST})(?::(?P<port>[^:\]]*))?$")
_HOST_LINE = re.compile(rf"^{_HOST}$")


@dataclass(frozen=True)
class MasterAddress:
    """One line of conf/masters. `webui_port` None means: the configured `rest.port`."""

    host: str
    webui_port: int | None
    source: str


@dataclass(frozen=True)
class WorkerHost:
    """One line of conf/slaves."""

    host: str
    source: str


def _content_lines(text: str, source_name: str) -> list[tuple[str, str]]:
    lines = []
    for number, line in enumerate(text.splitlines(), start=1):
        content = line.split("#", 1)[0].strip()
        if content:
            lines.append((content, f"{source_name}:{number}"))
    return lines


def parse_masters(text: str, source_name: str = "masters") -> list[MasterAddress]:
    masters = []
    for content, source in _content_lines(text, source_name):
        match = _MASTER_LINE.match(content)
        if not match:
            raise ConfigurationError(
                f"malformed line {content!r}; expected 'host' or 'host:webui-port', one per line", source=source
            )
        port_text = match.group("port")
        port = None
        if port_text is not None:
            if not port_text.isdigit() or not 0 < int(port_text) <= 65535:
                raise ConfigurationError(
                    f"{port_text!r} in {content!r} is not a web UI port; accepted: a port number from 1 to 65535",
                    source=source,
                )
            port = int(port_text)
        masters.append(MasterAddress(match.group("host"), port, source))
    return masters


def parse_slaves(text: str, source_name: str = "slaves") -> list[WorkerHost]:
    workers = []
    for content, source in _content_lines(text, source_name):
        if not _HOST_LINE.match(content):
            raise ConfigurationError(f"malformed line {content!r}; expected one host name or address per line",
                                     source=source)
        workers.append(WorkerHost(content, source))
    return workers


def read_masters(conf_dir: str | Path) -> list[MasterAddress]:
    path = Path(conf_dir) / "masters"
    if not path.is_file():
        raise ConfigurationError(f"No masters file. Please specify masters in '{path}'.")
    masters = parse_masters(path.read_text(encoding="utf-8"), str(path))
    if not masters:
        raise ConfigurationError("names no host. Please specify masters, one 'host[:webui-port]' per line.",
                                 source=str(path))
    return masters


def slaves_file(conf_dir: str | Path) -> Path | None:
    """conf/slaves, else conf/workers (Flink's later name for the same file)."""
    directory = Path(conf_dir)
    slaves, workers = directory / "slaves", directory / "workers"
    if slaves.is_file() and workers.is_file():
        logger.warning("Both %s and %s exist; reading %s only", slaves, workers, slaves)
    for path in (slaves, workers):
        if path.is_file():
            return path
    return None


def read_slaves(conf_dir: str | Path) -> list[WorkerHost]:
    path = slaves_file(conf_dir)
    if path is None:
        raise ConfigurationError(f"No slaves file. Please specify slaves in '{Path(conf_dir) / 'slaves'}'.")
    return parse_slaves(path.read_text(encoding="utf-8"), str(path))
