"""The per-job Python environment on a TaskManager: what a job shipped with `add_python_file`,
`set_python_requirements` and `add_python_archive` (`runtime/python_artifacts.py`), made usable by its tasks.

At the first task of a job on a TaskExecutor (on that task's thread, before it unpickles its functions),
`PythonEnvironments.enter` materializes the job's artifacts once into a per-job folder under the first
`io.tmp.dirs` entry (else the system's temp folder): `files/<n>/` for each shipped file, package folder or
zip; `work/` for the archives (unpacked under their target names). Requirements are installed with the
TaskManager's own interpreter, `pip install --target`, into a folder shared by every job with the same
requirements (cached by their hash, so a restart or the next job does not install them again; offline
with `--no-index --find-links` when a requirements cache folder was shipped). Later tasks of the job wait
for that and use the result; a failure (pip's output in it) fails every task that needs it, so it is the
task's failure the job's exceptions show, never a hang.

Tasks run as threads of the TaskManager's process, and `sys.path` belongs to the process: the job's
folders are put at its front when the job's first task here starts, and removed when its last task here
ends; then the modules imported from them are dropped from `sys.modules` and the per-job folder is deleted
(it goes with the job; the installed requirements stay cached). Python caches modules by name in
`sys.modules`: two jobs that run at the same time on one TaskManager and ship *different* modules of the
*same* name both see the one imported first. With archives the process's working directory is the job's
`work/` folder while the job runs here, as PyFlink's in-process (loopback) workers do, so functions open
archive files by relative paths (`target/data.txt`); the working directory is process-wide too: a second
job with archives running at the same time keeps the first one's (a warning says so)."""

from __future__ import annotations

import importlib
import io
import logging
import os
import platform
import shutil
import subprocess
import sys
import tarfile
import tempfile
import threading
import zipfile
from typing import Any, Iterable

from ha_flink.runtime.python_artifacts import REQUIREMENTS, Artifact, PythonDependencies, PythonDependencyError

logger = logging.getLogger(__name__)

PIP_POLL_SECONDS = 0.1

# process-wide: sys.path entries and the working directory are the process's, whichever TaskExecutor adds them
_process_lock = threading.Lock()
_path_users: dict[str, int] = {}
_cwd: dict[str, Any] = {"owner": None, "saved": None}


class PythonEnvironmentCancelled(Exception):
    """The task was cancelled while its job's environment was being prepared."""


class JobPythonEnvironment:
    """One job's materialized dependencies on one TaskExecutor, used by `users` of its running tasks."""

    def __init__(self, job_id: str, dependencies: PythonDependencies, base_dir: str) -> None:
        self.job_id = job_id
        self.dependencies = dependencies
        self.base_dir = base_dir
        self.users = 0
        self.folder: str | None = None
        self.path_entries: list[str] = []
        self._prepared = False
        self._error: BaseException | None = None
        self._lock = threading.Lock()  # one task prepares; the job's others wait for it

    @property
    def working_dir(self) -> str | None:
        return os.path.join(self.folder, "work") if self.folder is not None else None

    def prepare(self, cancelled: threading.Event) -> None:
        with self._lock:
            if self._prepared:
                return
            if self._error is not None:
                raise self._error
            try:
                self._materialize(cancelled)
            except PythonEnvironmentCancelled:
                self._remove_folder()  # the next task of the job tries again
                raise
            except BaseException as error:
                self._error = error
                raise
            _add_paths(self.path_entries)
            if self.dependencies.archives:
                _enter_working_dir(self)
            self._prepared = True
            logger.info("Python environment of job %s ready in %s (%s)", self.job_id, self.folder,
                        self.dependencies.describe())

    def _materialize(self, cancelled: threading.Event) -> None:
        deps = self.dependencies
        if deps.python_version != sys.version_info[:2]:
            raise PythonDependencyError(
                f"the job was submitted from Python {'.'.join(map(str, deps.python_version))}, but this TaskManager "
                f"runs its functions in Python {sys.version.split()[0]} ({sys.executable}); submit it with the "
                "TaskManagers' Python version")
        if not deps.artifacts:
            return  # (an interpreter setting alone: nothing to lay out)
        os.makedirs(self.base_dir, exist_ok=True)
        self.folder = tempfile.mkdtemp(prefix=f"ha-flink-python-{self.job_id}-", dir=self.base_dir)
        entries = []
        for index, artifact in enumerate(deps.files):
            entries += lay_out(artifact, os.path.join(self.folder, "files", str(index)))
        work = os.path.join(self.folder, "work")
        os.makedirs(work)
        for artifact in deps.archives:
            _unpack(artifact, os.path.join(work, artifact.name))
        if deps.requirements is not None:
            entries.append(self._install_requirements(cancelled))
        self.path_entries = entries

    def _install_requirements(self, cancelled: threading.Event) -> str:
        deps = self.dependencies
        assert deps.requirements is not None and self.folder is not None
        key = deps.requirements_key(f"{sys.implementation.name}-{sys.version_info[0]}.{sys.version_info[1]}-"
                                    f"{sys.platform}-{platform.machine()}")
        root = os.path.join(self.base_dir, "ha-flink-python-requirements")
        target = os.path.join(root, str(key))
        if os.path.isdir(target):
            logger.info("Requirements of job %s: installed already in %s", self.job_id, target)
            return target
        os.makedirs(root, exist_ok=True)
        requirements = os.path.join(self.folder, deps.requirements.name)
        _write(requirements, deps.requirements.data)
        command = [sys.executable, "-m", "pip", "install", "--no-input", "--disable-pip-version-check",
                   "--no-warn-script-location", "-r", requirements]
        if deps.requirements_cache is not None:
            cache = os.path.join(self.folder, "requirements-cache")
            _unzip(deps.requirements_cache, cache)
            command += ["--no-index", "--find-links", cache]
        installing = tempfile.mkdtemp(prefix=f"{key}.installing-", dir=root)
        command += ["--target", installing]
        logger.info("Installing the requirements of job %s: %s", self.job_id, " ".join(command))
        try:
            output = _run_pip(command, self.folder, cancelled)
            try:
                os.rename(installing, target)
            except OSError:
                if not os.path.isdir(target):  # (else another TaskManager on this host was first: use its)
                    raise
        finally:
            shutil.rmtree(installing, ignore_errors=True)
        logger.info("Requirements of job %s installed in %s:\n%s", self.job_id, target, output.strip()[-2000:])
        return target

    def close(self) -> None:
        """The job's last task here ended: its folders leave sys.path, its modules sys.modules, and the
        per-job folder is deleted."""
        with self._lock:
            if self._prepared:
                _leave_working_dir(self)
                _remove_paths(self.path_entries)
                self._prepared = False
            self._remove_folder()

    def _remove_folder(self) -> None:
        if self.folder is not None:
            shutil.rmtree(self.folder, ignore_errors=True)
            logger.info("Python environment of job %s removed (%s)", self.job_id, self.folder)
            self.folder = None


class PythonEnvironments:
    """The per-job Python environments of one TaskExecutor."""

    def __init__(self, base_dir: str | None = None) -> None:
        self.base_dir = base_dir or tempfile.gettempdir()
        self._lock = threading.Lock()
        self.jobs: dict[str, JobPythonEnvironment] = {}

    def enter(self, job_id: str, dependencies: PythonDependencies, cancelled: threading.Event) -> JobPythonEnvironment:
        """On a task's thread, before it runs: the job's environment, prepared (by this call or a former
        one); call `leave` with it when the task's thread is done. Raises what preparing raised."""
        with self._lock:
            environment = self.jobs.get(job_id)
            if environment is None or environment.dependencies.digest != dependencies.digest:
                environment = JobPythonEnvironment(job_id, dependencies, self.base_dir)
                if job_id not in self.jobs:
                    self.jobs[job_id] = environment
            environment.users += 1
        try:
            environment.prepare(cancelled)
        except BaseException:
            self.leave(environment)
            raise
        return environment

    def leave(self, environment: JobPythonEnvironment) -> None:
        with self._lock:
            environment.users -= 1
            if environment.users > 0:
                return
            if self.jobs.get(environment.job_id) is environment:
                del self.jobs[environment.job_id]
        environment.close()

    def close(self) -> None:
        """The TaskExecutor stopped: whatever is left (tasks whose threads did not end) is removed."""
        with self._lock:
            left, self.jobs = list(self.jobs.values()), {}
        for environment in left:
            environment.close()


# -- materializing ---------------------------------------------------------------------------------------


def lay_out(artifact: Artifact, where: str) -> list[str]:
    """Put one shipped Python file into the new folder `where`; returns its sys.path entries, as Flink
    lays them out: a .py file's folder; a folder itself and its parent (its modules, and the folder as a
    package); a .zip expanded (its root); a .whl or .egg itself (zipimport)."""
    os.makedirs(where)
    path = os.path.join(where, artifact.name)
    if artifact.kind == "folder":
        _unzip(artifact, path)
        return [path, where]
    if artifact.kind == "zip":
        expanded = os.path.join(where, artifact.name[:-len(".zip")] or "zip")
        _unzip(artifact, expanded)
        return [expanded]
    _write(path, artifact.data)
    return [path] if artifact.kind == "wheel" else [where]


def _write(path: str, data: bytes) -> None:
    with open(path, "wb") as out:
        out.write(data)


def _unzip(artifact: Artifact, folder: str) -> None:
    """Unpack a zip (a shipped folder, an archive) into `folder`, file modes kept; no member leaves it."""
    os.makedirs(folder, exist_ok=True)
    root = os.path.realpath(folder)
    with zipfile.ZipFile(io.BytesIO(artifact.data)) as archive:
        for info in archive.infolist():
            path = os.path.realpath(os.path.join(root, info.filename))
            if path != root and not path.startswith(root + os.sep):
                raise PythonDependencyError(f"{artifact.source}: the member {info.filename} would be unpacked "
                                            "outside its folder")
            archive.extract(info, root)
            mode = info.external_attr >> 16
            if mode and not info.is_dir():
                os.chmod(path, mode & 0o7777)


def _unpack(artifact: Artifact, folder: str) -> None:
    if zipfile.is_zipfile(io.BytesIO(artifact.data)):
        _unzip(artifact, folder)
        return
    os.makedirs(folder, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(artifact.data)) as archive:
        try:
            archive.extractall(folder, filter="data")
        except tarfile.FilterError as error:
            raise PythonDependencyError(f"{artifact.source}: {error}") from None


def _run_pip(command: list[str], cwd: str, cancelled: threading.Event) -> str:
    """pip's output; PythonDependencyError with it if pip fails, PythonEnvironmentCancelled (pip killed)
    if the task is cancelled meanwhile."""
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(command, cwd=cwd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                   env={**os.environ, "PIP_NO_INPUT": "1", "PYTHONNOUSERSITE": "1"})
        while True:
            try:
                code = process.wait(PIP_POLL_SECONDS)
                break
            except subprocess.TimeoutExpired:
                if cancelled.is_set():
                    process.kill()
                    process.wait()
                    raise PythonEnvironmentCancelled("cancelled while installing the job's requirements") from None
        log.seek(0)
        output = log.read().decode(errors="replace")
    if code != 0:
        raise PythonDependencyError(f"{REQUIREMENTS}: installing the job's requirements failed on this TaskManager "
                                    f"(pip exited with {code}): {' '.join(command)}\n{output.strip()}")
    return output


# -- process-wide: sys.path, sys.modules, the working directory ----------------------------------------


def _add_paths(entries: list[str]) -> None:
    with _process_lock:
        for entry in reversed(entries):
            _path_users[entry] = _path_users.get(entry, 0) + 1
            if _path_users[entry] == 1:
                sys.path.insert(0, entry)
        importlib.invalidate_caches()


def _remove_paths(entries: list[str]) -> None:
    with _process_lock:
        gone = []
        for entry in entries:
            _path_users[entry] = _path_users.get(entry, 1) - 1
            if _path_users[entry] <= 0:
                del _path_users[entry]
                while entry in sys.path:
                    sys.path.remove(entry)
                sys.path_importer_cache.pop(entry, None)
                gone.append(entry)
        _forget_modules(gone)
        importlib.invalidate_caches()


def _forget_modules(entries: Iterable[str]) -> None:
    """Drop the modules imported from `entries` from sys.modules, so that a later job's module of the same
    name is imported from its own files."""
    prefixes = tuple(os.path.join(entry, "") for entry in entries) + tuple(entries)
    if not prefixes:
        return
    for name, module in list(sys.modules.items()):
        where = [getattr(module, "__file__", None) or "", *list(getattr(module, "__path__", None) or [])]
        if any(isinstance(path, str) and path.startswith(prefixes) for path in where):
            sys.modules.pop(name, None)


def _enter_working_dir(environment: JobPythonEnvironment) -> None:
    with _process_lock:
        if _cwd["owner"] is None:
            _cwd["saved"] = os.getcwd()
            os.chdir(str(environment.working_dir))
            _cwd["owner"] = environment
            return
        logger.warning("Job %s ships archives, but the working directory of this process is the one of job %s "
                       "(%s) while that runs: relative paths of job %s's functions resolve there", environment.job_id,
                       _cwd["owner"].job_id, _cwd["owner"].working_dir, environment.job_id)


def _leave_working_dir(environment: JobPythonEnvironment) -> None:
    with _process_lock:
        if _cwd["owner"] is not environment:
            return
        _cwd["owner"] = None
        try:
            os.chdir(_cwd["saved"])
        except OSError:
            os.chdir(tempfile.gettempdir())
