"""PyFlink's Python dependency management in local runs (`python job.py`): `add_python_file` (a module, a
package folder, a zip), `add_python_archive`, `set_python_requirements` with an offline cache of a wheel
built here, the same through `python.*` keys; the per-job folder and sys.path after the job; the errors."""

from __future__ import annotations

import glob
import importlib
import os
import subprocess
import sys
import tarfile
import tempfile
import textwrap
import zipfile
from pathlib import Path

import pytest

from ha_flink.common import Configuration
from ha_flink.datastream import StreamExecutionEnvironment
from ha_flink.runtime.minicluster import JobExecutionError
from ha_flink.runtime.python_artifacts import PythonDependencyError


def leftover_job_folders() -> list[str]:
    return glob.glob(os.path.join(tempfile.gettempdir(), "ha-flink-python-*-*"))


def not_importable(name: str) -> None:
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module(name)


@pytest.fixture
def clean_process():
    """sys.path, the working directory and the job folders are as before once the job is done."""
    path, cwd, folders = list(sys.path), os.getcwd(), set(leftover_job_folders())
    yield
    assert sys.path == path
    assert os.getcwd() == cwd
    assert set(leftover_job_folders()) - folders == set()


def run(env: StreamExecutionEnvironment, stream) -> list:  # type: ignore[no-untyped-def]
    return sorted(stream.execute_and_collect())


def test_a_module_shipped_with_add_python_file_is_imported_by_the_map(tmp_path: Path, clean_process: None) -> None:
    shipped = tmp_path / "elsewhere"
    shipped.mkdir()
    (shipped / "hf_shipped_mod.py").write_text("def triple(x):\n    return 3 * x\n")
    not_importable("hf_shipped_mod")
    env = StreamExecutionEnvironment.get_execution_environment()
    env.add_python_file(str(shipped / "hf_shipped_mod.py"))

    def triple(x: int) -> int:
        import hf_shipped_mod  # on the TaskManager's side: from the job's folder

        return hf_shipped_mod.triple(x)

    assert run(env, env.from_collection([1, 2, 3]).map(triple)) == [3, 6, 9]
    not_importable("hf_shipped_mod")  # gone from sys.path and sys.modules with the job


def test_a_package_folder_and_a_zip_of_modules(tmp_path: Path, clean_process: None) -> None:
    package = tmp_path / "hf_shipped_pkg"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("OFFSET = 100\n")
    (package / "sub" / "__init__.py").write_text("")
    (package / "sub" / "calc.py").write_text("from hf_shipped_pkg import OFFSET\n\ndef shift(x):\n"
                                             "    return x + OFFSET\n")
    with zipfile.ZipFile(tmp_path / "zipped.zip", "w") as archive:
        archive.writestr("hf_zipped_mod.py", "def neg(x):\n    return -x\n")
    not_importable("hf_shipped_pkg")
    not_importable("hf_zipped_mod")
    env = StreamExecutionEnvironment.get_execution_environment()
    env.add_python_file(str(package))
    env.add_python_file(str(tmp_path / "zipped.zip"))

    def both(x: int) -> int:
        from hf_shipped_pkg.sub.calc import shift
        from hf_zipped_mod import neg

        return neg(shift(x))

    assert run(env, env.from_collection([1, 2]).map(both)) == [-102, -101]
    not_importable("hf_shipped_pkg")


def test_the_python_files_key_and_a_parallel_job_on_two_slots(tmp_path: Path, clean_process: None) -> None:
    (tmp_path / "hf_keyed_mod.py").write_text("def square(x):\n    return x * x\n")
    not_importable("hf_keyed_mod")
    config = Configuration()
    config.set_string("python.files", str(tmp_path / "hf_keyed_mod.py"))
    env = StreamExecutionEnvironment.get_execution_environment(config)
    env.set_parallelism(2)

    def square(x: int) -> int:
        import hf_keyed_mod

        return hf_keyed_mod.square(x)

    assert run(env, env.from_collection(list(range(6))).rebalance().map(square)) == [0, 1, 4, 9, 16, 25]


def test_an_archive_is_unpacked_in_the_working_folder_under_its_target(tmp_path: Path, clean_process: None) -> None:
    with zipfile.ZipFile(tmp_path / "lookup.zip", "w") as archive:
        archive.writestr("tables/factor.txt", "7\n")
    with tarfile.open(tmp_path / "words.tar.gz", "w:gz") as archive:
        (tmp_path / "word.txt").write_text("hello")
        archive.add(tmp_path / "word.txt", arcname="word.txt")
    env = StreamExecutionEnvironment.get_execution_environment()
    env.add_python_archive(str(tmp_path / "lookup.zip"), "lookup")
    env.add_python_archive(str(tmp_path / "words.tar.gz"))  # under the archive's own name

    def scale(x: int) -> str:
        with open("lookup/tables/factor.txt") as factor, open("words.tar.gz/word.txt") as word:  # relative paths
            return f"{word.read()}{x * int(factor.read())}"

    assert run(env, env.from_collection([1, 2]).map(scale)) == ["hello14", "hello7"]


def build_wheel(tmp_path: Path, name: str) -> Path:
    """A wheel of a tiny package, built here without network."""
    project = tmp_path / "project"
    (project / name).mkdir(parents=True)
    (project / name / "__init__.py").write_text("def greet(x):\n    return f'hi {x}'\n")
    (project / "setup.py").write_text(textwrap.dedent(f"""\
        from setuptools import setup
        setup(name="{name.replace('_', '-')}", version="1.0", packages=["{name}"])
        """))
    cache = tmp_path / "cache"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
                    "-w", str(cache), str(project)], check=True, capture_output=True, timeout=300)
    return cache


def test_requirements_are_installed_offline_from_the_cache_dir(tmp_path: Path, clean_process: None) -> None:
    name = f"hf_req_pkg_{os.getpid()}"
    cache = build_wheel(tmp_path, name)
    (tmp_path / "requirements.txt").write_text(f"{name.replace('_', '-')}==1.0\n")
    not_importable(name)
    env = StreamExecutionEnvironment.get_execution_environment()
    env.set_python_requirements(str(tmp_path / "requirements.txt"), str(cache))

    def greet(x: int) -> str:
        return importlib.import_module(name).greet(x)

    assert run(env, env.from_collection([1, 2]).map(greet)) == ["hi 1", "hi 2"]
    not_importable(name)


def test_a_requirement_that_cannot_be_installed_fails_the_job_with_pips_output(
    tmp_path: Path, clean_process: None,
) -> None:
    (tmp_path / "requirements.txt").write_text("hf-no-such-package==9.9\n")
    (tmp_path / "empty-cache").mkdir()
    env = StreamExecutionEnvironment.get_execution_environment()
    env.set_python_requirements(str(tmp_path / "requirements.txt"), str(tmp_path / "empty-cache"))
    with pytest.raises(JobExecutionError) as failed:
        run(env, env.from_collection([1]).map(lambda x: x))
    assert "python.requirements" in failed.value.task_traceback
    assert "pip exited with" in failed.value.task_traceback
    assert "hf-no-such-package" in failed.value.task_traceback  # pip's own words


def test_missing_files_are_refused_when_added(tmp_path: Path) -> None:
    env = StreamExecutionEnvironment.get_execution_environment()
    with pytest.raises(FileNotFoundError, match="nowhere.py"):
        env.add_python_file(str(tmp_path / "nowhere.py"))
    with pytest.raises(FileNotFoundError, match="requirements.txt"):
        env.set_python_requirements(str(tmp_path / "requirements.txt"))
    with pytest.raises(FileNotFoundError, match="data.zip"):
        env.add_python_archive(str(tmp_path / "data.zip"))


def test_a_missing_file_named_by_a_key_fails_the_submission(tmp_path: Path, clean_process: None) -> None:
    config = Configuration()
    config.set_string("python.files", str(tmp_path / "gone.py"))
    env = StreamExecutionEnvironment.get_execution_environment(config)
    with pytest.raises(ValueError, match="gone.py"):
        env.from_collection([1]).map(lambda x: x).execute_and_collect()


def test_only_the_running_interpreter_can_be_the_python_executable(tmp_path: Path, clean_process: None) -> None:
    env = StreamExecutionEnvironment.get_execution_environment()
    env.set_python_executable(sys.executable)  # the TaskManager's own: accepted
    assert run(env, env.from_collection([1]).map(lambda x: x + 1)) == [2]
    other = tmp_path / "venv" / "bin" / "python"
    other.parent.mkdir(parents=True)
    other.write_text("#!/bin/sh\necho cpython 2 7 /somewhere/else\n")
    other.chmod(0o755)
    with pytest.raises(PythonDependencyError, match="python.executable"):
        env.set_python_executable(str(other))
    env.add_python_archive(str(shutil_zip(tmp_path)), "py_env")
    with pytest.raises(PythonDependencyError, match="inside the archive py_env"):
        env.set_python_executable("py_env/bin/python")


def shutil_zip(tmp_path: Path) -> Path:
    with zipfile.ZipFile(tmp_path / "env.zip", "w") as archive:
        archive.writestr("bin/python", "")
    return tmp_path / "env.zip"


def test_flink_runs_python_options_long_and_short_and_their_merge_with_the_program(tmp_path: Path) -> None:
    from ha_flink.cli.main import build_parser
    from ha_flink.client.submission import ship_python_dependencies
    from ha_flink.runtime.graph.job_graph import JobGraph

    for short in (True, False):
        names = ["-pyfs", "-pyreq", "-pyarch", "-pyexec"] if short else \
            ["--pyFiles", "--pyRequirements", "--pyArchives", "--pyExecutable"]
        args = build_parser().parse_args(["run", "-py", "job.py", names[0], "a.py,b", names[1], "r.txt#cache",
                                          names[2], "d.zip#data", names[3], sys.executable, "x"])
        assert (args.pyFiles, args.pyRequirements, args.pyArchives, args.pyExecutable, args.args) == \
            ("a.py,b", "r.txt#cache", "d.zip#data", sys.executable, ["x"])
    (tmp_path / "cli_mod.py").write_text("")
    (tmp_path / "prog_mod.py").write_text("")
    graph = JobGraph("j", "n", {}, settings={"python.files": str(tmp_path / "prog_mod.py")})
    ship_python_dependencies(graph, {"python.files": str(tmp_path / "cli_mod.py")})
    assert [a.name for a in graph.python_dependencies.files] == ["prog_mod.py", "cli_mod.py"]  # the program's first
    with pytest.raises(FileNotFoundError, match="gone.py"):
        ship_python_dependencies(JobGraph("j", "n", {}), {"python.files": str(tmp_path / "gone.py")})
