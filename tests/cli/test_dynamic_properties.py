"""`bin/flink run/info -D key=value` reaches the program's environment as Flink's effective configuration:
the job runs with it unless the program sets the key itself, and `-p` wins over `-Dparallelism.default`.
Observed through `flink info`, which builds the job's plan without a cluster."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

PROGRAM = """
from ha_flink.datastream import StreamExecutionEnvironment
env = StreamExecutionEnvironment.get_execution_environment()
env.from_collection([1, 2, 3]).map(lambda x: x + 1).print()
env.execute("plain")
"""


def info(tmp_path: Path, *args: str, program: str = PROGRAM) -> str:
    script = tmp_path / "job.py"
    script.write_text(program)
    done = subprocess.run([sys.executable, "-m", "ha_flink.cli.main", "info", *args, "-py", str(script)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_a_dynamic_property_reaches_the_job(tmp_path: Path) -> None:
    assert "Map -> Sink: Print to Std. Out (parallelism 3)" in info(tmp_path, "-Dparallelism.default=3")
    assert "Map -> Sink: Print to Std. Out (parallelism 3)" in info(tmp_path, "-D", "parallelism.default=3")
    assert "(parallelism 5)" in info(tmp_path, "-Dparallelism.default=3", "-p", "5")  # -p wins
    assert "(parallelism 3)" not in info(tmp_path)


def test_the_programs_own_setting_wins(tmp_path: Path) -> None:
    program = PROGRAM.replace("get_execution_environment()", "get_execution_environment().set_parallelism(2)")
    assert "Map -> Sink: Print to Std. Out (parallelism 2)" in info(tmp_path, "-Dparallelism.default=3",
                                                                   program=program)
