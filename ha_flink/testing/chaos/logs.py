"""Daemon logs read back for the chaos checks: each `flink-<user>-<daemon>-<n>-<host>.log` holds one or
more process lifetimes (a restarted daemon may take the same file), each opening with
`Starting <daemon> (pid N)`. Lines carry millisecond timestamps of this machine's clock, so events of
different processes can be ordered.

A JobManager lifetime's leader sessions run from `Granted leadership with session id S` to
`Leadership S revoked` (or the end of the process). Pure code over text."""

from __future__ import annotations

import datetime
import re
from dataclasses import dataclass, field

_LINE = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) (\w+) (\S+) - (.*)$")
_START = re.compile(r"^Starting (\w+) \(pid (\d+)\)")
# a guarded JobManager (deploy/guardian.py): the lifetime is the forked child's, not its guardian's
_GUARDED = re.compile(r"^JobManager process pid (\d+), guarded by pid (\d+)")
_GRANT = re.compile(r"^Granted leadership with session id (\S+)")
_REVOKE = re.compile(r"^Leadership (\S+) revoked")
COMPLETED = re.compile(r"^Completed checkpoint (\d+) of job (\w+)")
RESTORES = re.compile(r"restores checkpoint (\d+)")

# What only a leader does; each such line is attributed to the session it happened in.
ACTING = (
    re.compile(r"^Completed checkpoint \d+"),
    re.compile(r"^Completed savepoint \d+"),
    re.compile(r"^Job .* restores checkpoint \d+"),
    re.compile(r"^Job .*: all \d+ tasks deployed"),
    re.compile(r"^Job .*: region of \d+ tasks redeployed"),
    re.compile(r"^Submitted job "),
    re.compile(r"^Recovered job "),
)


def parse_time(text: str) -> float:
    return datetime.datetime.strptime(text, "%Y-%m-%d %H:%M:%S,%f").timestamp()


@dataclass(frozen=True)
class LogLine:
    time: float
    level: str
    logger: str
    message: str


@dataclass
class LeaderSession:
    session_id: str
    granted: float
    revoked: float | None  # None: to the end of its process


@dataclass
class Lifetime:
    """One process's lines of a daemon log."""

    log: str
    daemon: str
    pid: int
    lines: list[LogLine] = field(default_factory=list)

    @property
    def label(self) -> str:
        return f"{self.log} (pid {self.pid})"

    @property
    def started(self) -> float:
        return self.lines[0].time if self.lines else 0.0

    def sessions(self) -> list[LeaderSession]:
        sessions: list[LeaderSession] = []
        for line in self.lines:
            if grant := _GRANT.match(line.message):
                sessions.append(LeaderSession(grant.group(1), line.time, None))
            elif (revoke := _REVOKE.match(line.message)) and sessions and \
                    sessions[-1].session_id == revoke.group(1) and sessions[-1].revoked is None:
                sessions[-1].revoked = line.time
        return sessions

    def session_at(self, time: float) -> str | None:
        """The leader session this process was in at `time` (None: not leading)."""
        current = None
        for session in self.sessions():
            if session.granted <= time and (session.revoked is None or time < session.revoked):
                current = session.session_id
        return current

    def matching(self, pattern: re.Pattern[str], after: float = 0.0) -> list[tuple[LogLine, re.Match[str]]]:
        found = []
        for line in self.lines:
            if line.time > after and (match := pattern.search(line.message)):
                found.append((line, match))
        return found


def parse_log(text: str, name: str) -> list[Lifetime]:
    """The lifetimes in one daemon log file; lines before the first start line are dropped."""
    lifetimes: list[Lifetime] = []
    for raw in text.splitlines():
        match = _LINE.match(raw)
        if match is None:
            continue  # a traceback's continuation or a READY line
        line = LogLine(parse_time(match.group(1)), match.group(2), match.group(3), match.group(4))
        if start := _START.match(line.message):
            lifetimes.append(Lifetime(name, start.group(1), int(start.group(2))))
        elif (guarded := _GUARDED.match(line.message)) and lifetimes and lifetimes[-1].pid == int(guarded.group(2)):
            lifetimes[-1].pid = int(guarded.group(1))
        if lifetimes:
            lifetimes[-1].lines.append(line)
    return lifetimes


def first_after(lifetimes: list[Lifetime], pattern: re.Pattern[str], after: float,
                job_id: str | None = None) -> LogLine | None:
    """The earliest line of any lifetime after `after` that matches (and names `job_id`, if given)."""
    found = [line for lifetime in lifetimes for line, _ in lifetime.matching(pattern, after)
             if job_id is None or job_id in line.message]
    return min(found, key=lambda line: line.time, default=None)
