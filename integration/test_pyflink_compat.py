"""The compatibility check: PyFlink programs (`integration/pyflink_programs/`, written with PyFlink's
imports and idiom) run with only their import root changed from `pyflink.` to `ha_flink.`, locally
(`python program.py`) and on a cluster (`flink run -py`), and their output must equal what Flink's
documented semantics give for the input. The expectations are computed here straight from those
semantics (window bounds, session merging, count triggers, state), not taken from a run."""

from __future__ import annotations

import collections
import os
import random
import subprocess
import sys
from pathlib import Path
from typing import Callable

import pytest

from ha_flink.testing.cluster import Cluster

PROGRAMS = Path(__file__).resolve().parent / "pyflink_programs"
REPO = PROGRAMS.parents[1]


def port(program: str, folder: Path) -> Path:
    """The program with `pyflink.` imports turned into `ha_flink.` ones: the only change a user makes."""
    source = (PROGRAMS / program).read_text()
    assert "ha_flink" not in source  # the program itself is plain PyFlink
    ported = source.replace("from pyflink.", "from ha_flink.").replace("import pyflink.", "import ha_flink.")
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / program
    path.write_text(ported)
    return path


def committed_lines(folder: Path) -> list[str]:
    """Every line of the FileSink's finished part files under `folder` (no in-progress or hidden files)."""
    lines: list[str] = []
    for path in sorted(folder.rglob("*")):
        if path.is_file() and not path.name.startswith(".") and ".inprogress" not in path.name:
            lines += path.read_text().splitlines()
    return lines


# -- inputs and what Flink's semantics make of them ---------------------------------------------------

TEXT = """To be, or not to be, that is the question:
Whether 'tis nobler in the mind to suffer
The slings and arrows of outrageous fortune,
Or to take arms against a sea of troubles
And by opposing end them. To die: to sleep;
No more; and by a sleep to say we end
"""


def make_events(seed: int = 7) -> list[tuple[str, int, int]]:
    """Three keys; per key, event times rising by 10..800 ms; the file order is shuffled within 150 ms
    (below every program's out-of-orderness bound, so no record is ever late)."""
    rng = random.Random(seed)
    events = []
    for key in ("a", "b", "c"):
        timestamp = rng.randrange(0, 300)
        for _ in range(150):
            events.append((key, timestamp, rng.randrange(1, 20)))
            timestamp += rng.randrange(10, 800)
    return sorted(events, key=lambda e: e[1] + rng.uniform(0, 150))


def per_key(events: list[tuple[str, int, int]]) -> dict[str, list[tuple[str, int, int]]]:
    """Each key's events in file order: the order a key's records reach its subtask (one reader, and
    key_by keeps the order of each channel)."""
    keyed: dict[str, list[tuple[str, int, int]]] = collections.defaultdict(list)
    for event in events:
        keyed[event[0]].append(event)
    return keyed


def expected_process_functions(events: list[tuple[str, int, int]]) -> dict[str, list[str]]:
    state, timers = [], []
    for key, mine in per_key(events).items():
        total, seen, recent = 0, set(), []
        for _, _, value in mine:
            total += value
            seen.add(value)
            recent = (recent + [value])[-3:]
            state.append(str((key, total, len(seen), tuple(recent))))
        # Gaps within a key are < 1 s of event time, so only the timer set by the key's last record (in
        # processing order) still matches the state when it fires: one result per key.
        timers.append(str((key, len(mine), mine[-1][1] + 1000)))
    return {"state": sorted(state), "timers": sorted(timers)}


def expected_windows(events: list[tuple[str, int, int]]) -> dict[str, list[str]]:
    keyed = per_key(events)
    tumbling, sliding, session, count, global_ = [], [], [], [], []
    for key, mine in keyed.items():
        # Tumbling 1 s: [start, start + 1000) with start = ts - ts % 1000.
        buckets: dict[int, list[int]] = collections.defaultdict(list)
        for _, ts, value in mine:
            buckets[ts - ts % 1000].append(value)
        tumbling += [str((key, s, s + 1000, len(v), sum(v))) for s, v in buckets.items()]
        # Sliding 2 s every 1 s: each record is in the two windows starting at ts - ts % 1000 and 1 s earlier.
        slides: dict[int, int] = collections.defaultdict(int)
        for _, ts, value in mine:
            last = ts - ts % 1000
            for start in (last, last - 1000):
                slides[start] += value
        sliding += [str((key, s, s + 2000, total)) for s, total in slides.items()]
        # Sessions with a 500 ms gap: [ts, ts + 500) per record, merged while they touch (Flink's
        # TimeWindow.intersects is inclusive: a record exactly 500 ms after the last one joins the session).
        ordered = sorted(mine, key=lambda e: e[1])
        groups = [[ordered[0]]]
        for event in ordered[1:]:
            if event[1] <= groups[-1][-1][1] + 500:
                groups[-1].append(event)
            else:
                groups.append([event])
        session += [str((key, g[0][1], g[-1][1] + 500, len(g), sum(e[2] for e in g))) for g in groups]
        # Count windows of 3 (and a global window purged every 4): consecutive records in arrival order;
        # an incomplete last group never fires. reduce keeps (key, max time, sum).
        for size, out in ((3, count), (4, global_)):
            for i in range(0, len(mine) - size + 1, size):
                group = mine[i:i + size]
                out.append(str((key, max(e[1] for e in group), sum(e[2] for e in group))))
    return {"tumbling": sorted(tumbling), "sliding": sorted(sliding), "session": sorted(session),
            "count": sorted(count), "global": sorted(global_)}


def expected_word_count() -> list[str]:
    return sorted(f"{word}\t{count}" for word, count in collections.Counter(TEXT.split()).items())


def write_inputs(folder: Path) -> tuple[Path, Path, list[tuple[str, int, int]]]:
    folder.mkdir(parents=True, exist_ok=True)
    text = folder / "text.txt"
    text.write_text(TEXT)
    events = make_events()
    events_file = folder / "events.csv"
    events_file.write_text("".join(f"{k},{ts},{v}\n" for k, ts, v in events))
    return text, events_file, events


def check_outputs(program: str, out: Path, events: list[tuple[str, int, int]]) -> None:
    if program == "word_count.py":
        lines = committed_lines(out)
        assert sorted(lines) == expected_word_count()
        names = [p.name for p in out.rglob("*") if p.is_file()]
        assert names and all(n.startswith("prefix-") and n.endswith(".ext") for n in names), names
        return
    expected = expected_process_functions(events) if program == "process_functions.py" else expected_windows(events)
    for name, lines in expected.items():
        assert sorted(committed_lines(out / name)) == lines, f"{program}: output {name!r} differs"


PROGRAM_NAMES = ["word_count.py", "process_functions.py", "windows.py"]


def run_locally(path: Path, text: Path, events_file: Path, out: Path) -> subprocess.CompletedProcess[str]:
    source = text if path.name == "word_count.py" else events_file
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, str(path), str(source), str(out)], capture_output=True, text=True,
                          timeout=120, env=env, cwd=path.parent)


@pytest.mark.parametrize("program", PROGRAM_NAMES)
def test_pyflink_program_runs_locally_with_flinks_results(program: str, tmp_path: Path) -> None:
    text, events_file, events = write_inputs(tmp_path / "in")
    out = tmp_path / "out"
    result = run_locally(port(program, tmp_path / "ported"), text, events_file, out)
    assert result.returncode == 0, result.stdout + result.stderr
    check_outputs(program, out, events)


def test_pyflink_programs_run_on_a_cluster_with_flinks_results(
    cluster_factory: Callable[..., Cluster], tmp_path: Path
) -> None:
    cluster = cluster_factory()
    cluster.start_jobmanager()
    cluster.start_taskmanager()
    cluster.start_taskmanager()
    text, events_file, events = write_inputs(tmp_path / "in")
    for program in PROGRAM_NAMES:
        path = port(program, tmp_path / "ported")
        out = tmp_path / "out" / program
        source = text if program == "word_count.py" else events_file
        result = cluster.flink("run", "-py", str(path), str(source), str(out))
        assert result.returncode == 0, f"{program}:\n{result.stdout}{result.stderr}"
        check_outputs(program, out, events)
