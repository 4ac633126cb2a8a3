"""Shared bits of the benchmarks: the machine description and appending results to BENCHMARKS.md."""

from __future__ import annotations

import datetime
import os
import platform
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parents[1] / "BENCHMARKS.md"


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
