"""The chaos suite's verdicts, as pure functions over committed output lines and parsed daemon logs.

- `check_output`: the chaos job's committed lines (`<n> <key> <running count>`) hold every number its
  sources emitted up to where the job stopped exactly once (per source subtask, a gap-free prefix of
  start+i, start+i+p, ...), and each key's counts are exactly 1..c (state neither lost nor counted twice).
- `checkpoint_order_problems`: completed checkpoint ids, across every JobManager in time order, strictly
  increase.
- `leadership_problems`: at no instant do two JobManagers act as leader: every acting line (a completed
  checkpoint, a deployment, a restore, a recovery) belongs to a leader session, and once a later-granted
  session has acted, no earlier session acts again (a paused, resumed leader must not write).
- `failover_timings`: seconds from a fault to the new grant, all tasks RUNNING and the next completed
  checkpoint, from the logs' millisecond timestamps."""

from __future__ import annotations

import bisect
import collections
import re
from dataclasses import dataclass, field

from ha_flink.testing.chaos.logs import ACTING, COMPLETED, Lifetime, LogLine, first_after

RUNNING = re.compile(r"^Job .* attempt \d+: all \d+ tasks RUNNING")
_DURATION = re.compile(r"^Completed (?:checkpoint|savepoint) \d+ of job \w+ \(\d+ tasks, (\d+) ms\)")
_GRANTED = re.compile(r"^Granted leadership with session id ")


@dataclass
class OutputCheck:
    records: int = 0
    duplicated: list[int] = field(default_factory=list)  # numbers committed more than once
    lost: list[int] = field(default_factory=list)  # numbers missing below a source subtask's highest
    bad_counts: list[str] = field(default_factory=list)  # keys whose counts are not exactly 1..c
    malformed: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.duplicated or self.lost or self.bad_counts or self.malformed) and self.records > 0

    def summary(self) -> str:
        def some(values: list) -> str:
            return ", ".join(map(str, values[:10])) + (" ..." if len(values) > 10 else "")

        return (f"{self.records} records committed; duplicated: {len(self.duplicated)} ({some(self.duplicated)}); "
                f"lost: {len(self.lost)} ({some(self.lost)}); keys with wrong counts: {len(self.bad_counts)} "
                f"({some(self.bad_counts)}); malformed lines: {len(self.malformed)} ({some(self.malformed)})")


def check_output(lines: list[str], parallelism: int, start: int, keys: int) -> OutputCheck:
    check = OutputCheck()
    seen: collections.Counter[int] = collections.Counter()
    counts: dict[int, list[int]] = collections.defaultdict(list)
    for line in lines:
        parts = line.split()
        if len(parts) != 3 or not all(p.lstrip("-").isdigit() for p in parts) or int(parts[1]) != int(parts[0]) % keys:
            check.malformed.append(line)
            continue
        n, key, count = map(int, parts)
        seen[n] += 1
        counts[key].append(count)
    check.records = sum(seen.values())
    check.duplicated = sorted(n for n, times in seen.items() if times > 1)
    for subtask in range(parallelism):
        mine = [n for n in seen if n >= start and (n - start) % parallelism == subtask]
        if mine:
            expected = range(start + subtask, max(mine) + 1, parallelism)
            check.lost += [n for n in expected if n not in seen]
    check.lost.sort()
    for key, values in sorted(counts.items()):
        if sorted(values) != list(range(1, len(values) + 1)):
            check.bad_counts.append(f"key {key}: {len(values)} records, counts {sorted(values)[:5]}...")
    return check


def completed_checkpoints(lifetimes: list[Lifetime], job_id: str) -> list[tuple[float, int, str]]:
    """(time, checkpoint id, JobManager) of every completed checkpoint of the job, in time order."""
    found = [(line.time, int(match.group(1)), lifetime.label) for lifetime in lifetimes
             for line, match in lifetime.matching(COMPLETED) if match.group(2) == job_id]
    return sorted(found)


def earliest(line: LogLine) -> float:
    """The earliest moment the act a line reports can have happened: a completed checkpoint was committed
    between its trigger and its log line (a process paused in between logs it late)."""
    if match := _DURATION.search(line.message):
        return line.time - int(match.group(1)) / 1000
    return line.time


def checkpoint_order_problems(lifetimes: list[Lifetime], job_id: str) -> list[str]:
    problems = []
    lines = sorted((line.time, int(match.group(1)), lifetime.label, earliest(line)) for lifetime in lifetimes
                   for line, match in lifetime.matching(COMPLETED) if match.group(2) == job_id)
    for (t0, id0, jm0, _), (t1, id1, jm1, e1) in zip(lines, lines[1:]):
        if id1 <= id0 and e1 > t0:  # (overlapping spans may have committed in either order)
            problems.append(f"checkpoint {id1} completed by {jm1} at {t1:.3f} after checkpoint {id0} by {jm0} "
                            f"at {t0:.3f}: ids must strictly increase")
    return problems


def leadership_problems(lifetimes: list[Lifetime]) -> list[str]:
    problems = []
    grant_order: dict[str, float] = {}
    for lifetime in lifetimes:
        for session in lifetime.sessions():
            grant_order[session.session_id] = session.granted
    acts: list[tuple[float, float, float, str, str, str]] = []  # (time, earliest, grant, session, who, what)
    for lifetime in lifetimes:
        for line in lifetime.lines:
            if any(pattern.search(line.message) for pattern in ACTING):
                # (a commit sent while leading may be logged just after a revoke: its span counts)
                session_id = lifetime.session_at(line.time) or lifetime.session_at(earliest(line))
                if session_id is None:
                    problems.append(f"{lifetime.label} acted without leadership at {line.time:.3f}: {line.message}")
                else:
                    acts.append((line.time, earliest(line), grant_order[session_id], session_id, lifetime.label,
                                 line.message))
    acts.sort()
    times = [act[0] for act in acts]
    # leading[i]: the act of the latest-granted session among acts[:i + 1]
    leading: list[tuple[float, float, float, str, str, str]] = []
    for act in acts:
        leading.append(act if not leading or act[2] >= leading[-1][2] else leading[-1])
    for act in acts:
        # every act logged before this one could have happened: any of a later-granted session is a breach
        before = bisect.bisect_left(times, act[1])
        if before and leading[before - 1][2] > act[2]:
            later = leading[before - 1]
            problems.append(f"{act[4]} acted in session {act[3]} at {act[0]:.3f} ({act[5]}) after {later[4]} had "
                            f"acted in the later session {later[3]} at {later[0]:.3f} ({later[5]})")
    return problems


@dataclass
class FailoverTiming:
    fault: str
    at: float
    new_leader_s: float | None
    running_s: float | None
    checkpoint_s: float | None


def failover_timings(fault: str, at: float, lifetimes: list[Lifetime], job_id: str,
                     expect_new_leader: bool) -> FailoverTiming:
    """Seconds from `at` to the next grant (if one is expected), all of the job's tasks RUNNING, and the
    first checkpoint of the job completed after that."""
    grant = first_after(lifetimes, _GRANTED, at) if expect_new_leader else None
    running = first_after(lifetimes, RUNNING, at, job_id)
    checkpoint = first_after(lifetimes, COMPLETED, running.time, job_id) if running is not None else None
    return FailoverTiming(fault, at, None if grant is None else grant.time - at,
                          None if running is None else running.time - at,
                          None if checkpoint is None else checkpoint.time - at)
