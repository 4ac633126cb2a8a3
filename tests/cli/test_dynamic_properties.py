"""`bin/flink run/info -D key=value` reaches the program's environment as Flink's effective configuration:
the job runs with it unless the program sets the key itself, and `-p` wins over `-Dparallelism.default`.
Observed through `flink info`, which prints the job's plan (as Flink's: its JSON plan in Flink's frame) without
a cluster."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path


PROGRAM = """
from ha_flink.datastream import StreamExecutionEnvironment
env = StreamExecutionEnvironment.get_execution_environment()
env.from_collection([1, 2, 3]).map(lambda x: x + 1).print()
env.execute("plain")
"""


PLAN_START = "----------------------- Execution Plan -----------------------"
PLAN_END = "--------------------------------------------------------------"


def info(tmp_path: Path, *args: str, program: str = PROGRAM, conf_dir: Path | None = None) -> int:
    """The parallelism of the Map in the plan `flink info` prints (Flink's frame around Flink's JSON plan),
    with the conf dir `conf_dir` (else an empty one: not the installation's conf/, which sets 2)."""
    script = tmp_path / "job.py"
    script.write_text(program)
    if conf_dir is None:
        conf_dir = tmp_path / "empty-conf"
        conf_dir.mkdir(exist_ok=True)
    done = subprocess.run([sys.executable, "-m", "ha_flink.cli.main", "info", *args, "-py", str(script)],
                          capture_output=True, text=True, timeout=120, env=dict(os.environ, FLINK_CONF_DIR=str(conf_dir)))
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == PLAN_START and lines[-3:] == [PLAN_END, "", "No description provided."], done.stdout
    plan = json.loads("\n".join(lines[1:-3]))
    return next(node["parallelism"] for node in plan["nodes"] if node["type"] == "Map")


def test_a_dynamic_property_reaches_the_job(tmp_path: Path) -> None:
    assert info(tmp_path, "-Dparallelism.default=3") == 3
    assert info(tmp_path, "-D", "parallelism.default=3") == 3
    assert info(tmp_path, "-Dparallelism.default=3", "-p", "5") == 5  # -p wins
    assert info(tmp_path) == 1  # (under the CLI, a program that sets none runs at -p, else 1)


def test_the_programs_own_setting_wins(tmp_path: Path) -> None:
    program = PROGRAM.replace("get_execution_environment()", "get_execution_environment().set_parallelism(2)")
    assert info(tmp_path, "-Dparallelism.default=3", program=program) == 2


def test_a_d_among_the_programs_arguments_stays_the_programs(tmp_path: Path) -> None:
    """As Flink's parser: options end at the first argument that is not one of `run`'s, so what follows,
    a `-D` or an option of the program's own, is the program's (it used to be taken from it)."""
    script = tmp_path / "args.py"
    script.write_text("import sys\nprint('ARGS', sys.argv[1:])\n")

    def program_args(*args: str) -> str:
        done = subprocess.run([sys.executable, "-m", "ha_flink.cli.main", "run", *args], capture_output=True,
                              text=True, timeout=120, env={"FLINK_CONF_DIR": str(tmp_path / "none"), "PATH": ""})
        return next(line for line in done.stdout.splitlines() if line.startswith("ARGS"))

    assert program_args("-py", str(script), "out", "-Dk=v") == "ARGS ['out', '-Dk=v']"
    assert program_args("-py", str(script), "--input", "x", "-D", "k=v") == "ARGS ['--input', 'x', '-D', 'k=v']"
    assert program_args("-Dk=v", "-py", str(script), "-D", "a=b", "out") == "ARGS ['out']"  # (flink's: before it)


def test_the_conf_dirs_parallelism_default_is_the_programs_default(tmp_path: Path) -> None:
    """As Flink's client: the configuration file's `parallelism.default` (conf/ ships 2) is the parallelism
    of a submitted program that sets none; `-D` and `-p` win over it (it used to be read and ignored)."""
    conf = tmp_path / "conf"
    conf.mkdir()
    (conf / "config.yaml").write_text("parallelism.default: 4\n")
    assert info(tmp_path, conf_dir=conf) == 4
    assert info(tmp_path, "-Dparallelism.default=3", conf_dir=conf) == 3
    assert info(tmp_path, "-p", "5", conf_dir=conf) == 5
