"""A program that runs its job locally prints only its own log lines, as with PyFlink: the runtime's go to
a log file (env.log.dir), and its warnings reach the program's handlers too (local_logging.py)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

PROGRAM = textwrap.dedent("""
    import logging, sys
    from ha_flink.common import Configuration
    from ha_flink.datastream import StreamExecutionEnvironment

    logging.basicConfig(stream=sys.stdout, level=logging.INFO, format="%(message)s")
    config = Configuration()
    config.set_string("env.log.dir", sys.argv[1])
    env = StreamExecutionEnvironment.get_execution_environment(config).set_parallelism(1)
    env.from_collection([1, 2, 3]).map(lambda v: v * 10).print()
    env.execute("logging job")
    logging.info("the program's own line")
    logging.getLogger("ha_flink.runtime.example").warning("a runtime warning")
""")


def test_runtime_info_goes_to_the_log_file_and_warnings_to_the_program_too(tmp_path: Path) -> None:
    (tmp_path / "job.py").write_text(PROGRAM)
    done = subprocess.run([sys.executable, "job.py", str(tmp_path / "log")], cwd=tmp_path, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert sorted(line for line in lines if line.isdigit()) == ["10", "20", "30"]
    assert "the program's own line" in lines and "a runtime warning" in lines
    assert not [line for line in lines if "switched to FINISHED" in line or "Granted leadership" in line]
    (log,) = (tmp_path / "log").glob("ha-flink-*-local-*.log")
    text = log.read_text()
    assert "Job logging job" in text and "switched to FINISHED" in text and "a runtime warning" in text
    assert "the program's own line" not in text
