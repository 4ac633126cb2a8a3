"""Shared bits of the benchmarks: the machine description and appending results to BENCHMARKS.md."""

from __future__ import annotations

import contextlib
import datetime
import os
import platform
import statistics
import subprocess
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

if TYPE_CHECKING:
    from ha_flink.testing.cluster import Cluster

ROOT = Path(__file__).resolve().parents[1]
BENCHMARKS = ROOT / "BENCHMARKS.md"


@contextlib.contextmanager
def worktree(rev: str) -> Iterator[tuple[Path, str]]:
    """Commit `rev` checked out into a temporary git worktree, removed at the end; and its short hash."""
    with tempfile.TemporaryDirectory(prefix="bench-baseline-") as tmp:
        tree = Path(tmp) / "tree"
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(tree), rev], check=True,
                       capture_output=True)
        try:
            commit = subprocess.run(["git", "-C", str(tree), "rev-parse", "--short", "HEAD"], check=True,
                                    capture_output=True, text=True).stdout.strip()
            yield tree, commit
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(tree)], check=False,
                           capture_output=True)


def machine() -> str:
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = ""
    try:
        kib = int(next(l for l in Path("/proc/meminfo").read_text().splitlines() if l.startswith("MemTotal")).split()[1])
        memory = f", {kib / 1024 / 1024:.0f} GiB"
    except (OSError, StopIteration, ValueError):
        pass
    return f"{os.cpu_count()} cores ({model}){memory}, {platform.system()} {platform.release()}, Python {platform.python_version()}"


def record(title: str, command: str, table: str) -> None:
    """Append one dated section to BENCHMARKS.md."""
    today = datetime.date.today().isoformat()
    section = f"\n## {title} ({today})\n\nMachine: {machine()}. Command: `{command}`.\n\n{table}\n"
    if not BENCHMARKS.exists():
        BENCHMARKS.write_text("# Benchmarks\n\nFigures measured by the scripts in `bench/` (`make bench`), newest last.\n")
    with BENCHMARKS.open("a") as out:
        out.write(section)


def spread(values: list[float], scale: float = 1.0, unit: str = "s", digits: int = 2) -> str:
    """`median M unit, min A, max B (n=N)` of `values` times `scale`."""
    median, low, high = (f"{v * scale:.{digits}f}" for v in (statistics.median(values), min(values), max(values)))
    return f"median {median} {unit}, min {low}, max {high} (n={len(values)})"


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process (its ended threads included), from /proc/<pid>/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # fields 14 and 15 of proc(5)


def median_max(values: list[float | None]) -> str:
    """`median / max` of the known values (None: not seen), or "-" when none is known."""
    known = [v for v in values if v is not None]
    if not known:
        return "-"
    return f"{statistics.median(known):.2f} / {max(known):.2f}"


def report(title: str, command: str, table: str, notes: str, keep: bool) -> None:
    """Print the figures; with `keep`, also append them to BENCHMARKS.md."""
    print(table)
    if keep:
        record(title, command, f"{table}\n\n{notes}")


@contextlib.contextmanager
def bench_cluster(workdir: Path, settings: dict[str, str]) -> Iterator[Cluster]:
    """One ZooKeeper server and a cluster conf dir under `workdir`; every process stopped at the end."""
    from ha_flink.testing.cluster import Cluster
    from ha_flink.testing.zookeeper import ZooKeeperEnsemble

    zookeeper = ZooKeeperEnsemble.create(workdir / "zk", 1)
    zookeeper.start()
    cluster = Cluster(workdir / "bench", zookeeper.connect_string, settings)
    cluster.write_conf()
    try:
        yield cluster
    finally:
        cluster.close()
        zookeeper.stop()
