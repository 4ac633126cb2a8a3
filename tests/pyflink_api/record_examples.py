"""Record what real PyFlink prints for each of its DataStream example programs (the test data of
test_examples.py). Needs a Python with the apache-flink wheel installed and a Java runtime:

    python3 -m venv /tmp/pyflink-venv && /tmp/pyflink-venv/bin/pip install apache-flink==2.3.0
    PATH=/tmp/pyflink-venv/bin:$PATH .venv/bin/python -m tests.pyflink_api.record_examples /tmp/pyflink-venv/bin/python

(PyFlink starts its Python workers with the `python` on PATH, hence the PATH.) Each example runs in its own
folder with PyFlink's defaults (local mini cluster, parallelism = this machine's cores); its stdout goes to
tests/pyflink_api/examples/<path with / as __>.out. Recorded on 2026-12-02 with apache-flink 2.3.0, OpenJDK 17,
2 cores."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from ha_flink.testing.pyflink_wheel import example_needs, pyflink_examples, pyflink_source

RECORDED = Path(__file__).resolve().parent / "examples"


def recorded_name(example: Path, root: Path) -> str:
    return str(example.relative_to(root)).removesuffix(".py").replace("/", "__")


def runnable_examples() -> list[Path]:
    """The examples that need neither the Table API nor an external system."""
    return [path for path in pyflink_examples() if not example_needs(path).table_api]


def main(python: str) -> int:
    root = pyflink_source() / "examples" / "datastream"
    RECORDED.mkdir(exist_ok=True)
    for example in runnable_examples():
        done = subprocess.run([python, example.name], cwd=example.parent, capture_output=True, text=True, timeout=600)
        print(f"{example.relative_to(root)}: exit {done.returncode}, {len(done.stdout.splitlines())} lines")
        if done.returncode != 0:
            print(done.stderr[-2000:], file=sys.stderr)
            return 1
        (RECORDED / f"{recorded_name(example, root)}.out").write_text(done.stdout)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1]))
