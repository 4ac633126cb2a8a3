"""A job's Python dependencies as shipped with its job graph: PyFlink's `python.files`, `python.requirements`,
`python.archives` and `python.executable`, read on the side that submits the job and carried by value.

`collect(settings)` reads what the keys name (Flink's syntax: entries separated by `,`, an entry's parameter
after `#`: `requirements.txt#cache_dir`, `data.zip#target`) into `PythonDependencies`: every file or folder
as bytes (a folder as a deterministic zip of it), each named by its SHA-256, so that the job graph the
Dispatcher stores in the HA storage holds everything a TaskManager needs, after a failover too. The
TaskManager's side (materializing, pip, sys.path) is `runtime/python_env.py`.

Only local paths (or `file://` URLs) can be named: they are read where the job is submitted, as PyFlink's
client does."""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import subprocess
import sys
import tarfile
import zipfile
from dataclasses import dataclass, field
from typing import Mapping

FILES = "python.files"
REQUIREMENTS = "python.requirements"
ARCHIVES = "python.archives"
EXECUTABLE = "python.executable"
CLIENT_EXECUTABLE = "python.client.executable"
KEYS = (FILES, REQUIREMENTS, ARCHIVES, EXECUTABLE, CLIENT_EXECUTABLE)
FILE_DELIMITER = ","  # Flink's PythonDependencyUtils.FILE_DELIMITER
PARAM_DELIMITER = "#"  # Flink's PythonDependencyUtils.PARAM_DELIMITER

# what a shipped file is on the TaskManager (as Flink's Python environment manager lays them out): a .py
# file (its folder on sys.path), a folder (the folder itself and its parent: its modules and the folder as a
# package), a .zip (expanded, the expanded root on sys.path), another zip (.whl, .egg: on sys.path itself,
# zipimport), an archive unpacked into the working folder, the requirements file, the folder of packages
# pip installs them from
KINDS = ("module", "folder", "zip", "wheel", "archive", "requirements", "cache")
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)


class PythonDependencyError(ValueError):
    """A Python dependency of the job cannot be shipped or used: names the key, the path and why."""


@dataclass(frozen=True)
class Artifact:
    """One shipped file: `data` is the file's bytes, or a zip of a folder (`kind` folder and cache)."""

    kind: str
    name: str  # the file's or folder's name; an archive's target folder
    source: str  # the path the user named, for messages
    data: bytes = field(repr=False)
    sha256: str = ""

    @staticmethod
    def of(kind: str, name: str, source: str, data: bytes) -> Artifact:
        return Artifact(kind, name, source, data, hashlib.sha256(data).hexdigest())


@dataclass(frozen=True)
class PythonDependencies:
    files: tuple[Artifact, ...] = ()  # on sys.path, in this order (the first wins)
    archives: tuple[Artifact, ...] = ()  # unpacked into the job's working folder under their names
    requirements: Artifact | None = None
    requirements_cache: Artifact | None = None
    python_version: tuple[int, int] = (sys.version_info[0], sys.version_info[1])  # of the submitting side

    @property
    def artifacts(self) -> list[Artifact]:
        return [*self.files, *self.archives, *filter(None, (self.requirements, self.requirements_cache))]

    @property
    def digest(self) -> str:
        """Names this set of dependencies (its artifacts' digests in order, and the Python version)."""
        text = "|".join(f"{a.kind}:{a.name}:{a.sha256}" for a in self.artifacts)
        return hashlib.sha256(f"{text}|{self.python_version}".encode()).hexdigest()

    def requirements_key(self, platform: str) -> str | None:
        """What an installation of the requirements is cached under on a TaskManager: the requirements',
        the cache folder's digests, the interpreter's version and the platform."""
        if self.requirements is None:
            return None
        cache = self.requirements_cache.sha256 if self.requirements_cache is not None else "-"
        return hashlib.sha256(f"{self.requirements.sha256}|{cache}|{platform}".encode()).hexdigest()[:32]

    def describe(self) -> str:
        parts = [f"{a.kind} {a.name} ({len(a.data)} bytes, {a.sha256[:12]})" for a in self.artifacts]
        return ", ".join(parts) or "nothing"


def split_entries(value: str | None) -> list[str]:
    return [entry.strip() for entry in (value or "").split(FILE_DELIMITER) if entry.strip()]


def join_entries(*values: str | None) -> str:
    return FILE_DELIMITER.join(entry for value in values for entry in split_entries(value))


def local_path(key: str, entry: str) -> str:
    """The local path an entry names (`file://` stripped); other URLs are refused."""
    if entry.startswith("file://"):
        return entry[len("file://"):]
    if "://" in entry:
        raise PythonDependencyError(f"{key}: {entry} is not a local path; ha-flink ships Python dependencies from "
                                    "the machine that submits the job (name a local file or folder)")
    return os.path.expanduser(entry)


def require_exists(key: str, entry: str) -> str:
    """The absolute path of `entry`; FileNotFoundError naming it (and the key) if nothing is there."""
    path = local_path(key, entry)
    if not os.path.exists(path):
        raise FileNotFoundError(f"{key}: {entry} does not exist (looked for {os.path.abspath(path)})")
    return os.path.abspath(path)


def zip_folder(folder: str) -> bytes:
    """The folder's files as a zip, the same bytes for the same content (sorted, fixed times; no
    __pycache__), with each file's mode bits."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for root, dirs, names in os.walk(folder, followlinks=True):
            dirs[:] = sorted(d for d in dirs if d != "__pycache__")
            for name in sorted(names):
                if name.endswith((".pyc", ".pyo")):
                    continue
                path = os.path.join(root, name)
                info = zipfile.ZipInfo(os.path.relpath(path, folder).replace(os.sep, "/"), _ZIP_TIME)
                info.external_attr = (os.stat(path).st_mode & 0o7777) << 16
                info.compress_type = zipfile.ZIP_DEFLATED
                with open(path, "rb") as source:
                    archive.writestr(info, source.read())
    return buffer.getvalue()


def _python_file(entry: str) -> Artifact:
    path = require_exists(FILES, entry)
    name = os.path.basename(path.rstrip(os.sep))
    if os.path.isdir(path):
        return Artifact.of("folder", name, entry, zip_folder(path))
    with open(path, "rb") as source:
        data = source.read()
    if name.endswith(".py"):
        return Artifact.of("module", name, entry, data)
    if zipfile.is_zipfile(io.BytesIO(data)):
        return Artifact.of("zip" if name.endswith(".zip") else "wheel", name, entry, data)
    raise PythonDependencyError(f"{FILES}: {entry} is neither a .py file, a folder nor a zip file (.zip, .whl, "
                                ".egg) of modules")


def _archive(entry: str) -> Artifact:
    source, _, target = entry.partition(PARAM_DELIMITER)
    path = require_exists(ARCHIVES, source)
    name = target.strip() or os.path.basename(path)  # PyFlink: the archive's own name, extension and all
    if not name or name in (".", "..") or "/" in name or os.sep in name:
        raise PythonDependencyError(f"{ARCHIVES}: {entry}: the target folder must be one plain name, not {name!r}")
    if os.path.isdir(path):
        raise PythonDependencyError(f"{ARCHIVES}: {source} is a folder; name a zip or tar file")
    with open(path, "rb") as file:
        data = file.read()
    if not zipfile.is_zipfile(io.BytesIO(data)):
        try:
            with tarfile.open(fileobj=io.BytesIO(data)):
                pass
        except tarfile.TarError:
            raise PythonDependencyError(f"{ARCHIVES}: {source} is neither a zip nor a tar file") from None
    return Artifact.of("archive", name, entry, data)


def _requirements(value: str) -> tuple[Artifact, Artifact | None]:
    requirements, _, cache = value.partition(PARAM_DELIMITER)
    path = require_exists(REQUIREMENTS, requirements.strip())
    if os.path.isdir(path):
        raise PythonDependencyError(f"{REQUIREMENTS}: {requirements} is a folder; name a requirements file")
    with open(path, "rb") as file:
        artifact = Artifact.of("requirements", os.path.basename(path), requirements, file.read())
    if not cache.strip():
        return artifact, None
    folder = require_exists(REQUIREMENTS, cache.strip())
    if not os.path.isdir(folder):
        raise PythonDependencyError(f"{REQUIREMENTS}: the requirements cache {cache} is not a folder (make one "
                                    f"with: pip download -d {cache} -r {requirements})")
    return artifact, Artifact.of("cache", os.path.basename(folder), cache, zip_folder(folder))


def check_interpreter(key: str, value: str, archive_names: set[str]) -> None:
    """ha-flink runs a job's Python functions in the TaskManager's own interpreter (tasks are threads of
    its process, not workers started with another Python), so an interpreter named by `key` is accepted
    only if it is this one: the same executable, or one of the same environment (`sys.prefix`) and
    version. Anything else is refused, rather than silently ignored with its packages missing later."""
    first = value.replace("\\", "/").split("/", 1)[0]
    if first in archive_names:
        raise PythonDependencyError(
            f"{key}: {value} is an interpreter inside the archive {first}; ha-flink runs Python functions in the "
            f"TaskManager's own interpreter ({sys.executable}, Python {sys.version.split()[0]}) and cannot switch "
            "to another one. Remove the setting, and ship packages with python.requirements, python.files or "
            "python.archives instead")
    found = shutil.which(value) or (value if os.path.isfile(value) else None)
    if found is None:
        raise PythonDependencyError(f"{key}: {value} is no interpreter found on this machine (not a file, not on "
                                    "PATH); ha-flink's tasks run in the TaskManager's own interpreter, so the "
                                    "setting can be left out")
    if os.path.abspath(found) == os.path.abspath(sys.executable):
        return
    probe = "import sys; print(sys.implementation.name, sys.version_info[0], sys.version_info[1], sys.prefix)"
    try:
        answer = subprocess.run([found, "-c", probe], capture_output=True, text=True, timeout=30, check=True)
        implementation, major, minor, prefix = answer.stdout.strip().split(" ", 3)
    except (OSError, subprocess.SubprocessError, ValueError) as error:
        raise PythonDependencyError(f"{key}: {value} ({found}) cannot be run as a Python interpreter: "
                                    f"{error}") from None
    ours = (sys.implementation.name, str(sys.version_info[0]), str(sys.version_info[1]), sys.prefix)
    if (implementation, major, minor, os.path.realpath(prefix)) != (*ours[:3], os.path.realpath(ours[3])):
        raise PythonDependencyError(
            f"{key}: {value} is {implementation} {major}.{minor} of the environment {prefix}, but ha-flink runs the "
            f"job's Python functions in the TaskManager's own interpreter ({sys.executable}: {ours[0]} "
            f"{ours[1]}.{ours[2]} of {ours[3]}) and cannot switch to another one. Remove the setting (or name "
            "this interpreter), and ship packages with python.requirements, python.files or python.archives")


def collect(settings: Mapping[str, str]) -> PythonDependencies | None:
    """Read what the `python.*` keys of `settings` name; None if no key is set (an interpreter alone gives
    dependencies without files: the TaskManager still checks the Python version). FileNotFoundError for a
    path that does not exist, PythonDependencyError for anything else that cannot be shipped or used."""
    if not any(settings.get(key, "").strip() for key in KEYS):
        return None
    files = tuple(_python_file(entry) for entry in split_entries(settings.get(FILES)))
    archives = tuple(_archive(entry) for entry in split_entries(settings.get(ARCHIVES)))
    names = [a.name for a in archives]
    if len(set(names)) != len(names):
        twice = sorted({n for n in names if names.count(n) > 1})
        raise PythonDependencyError(f"{ARCHIVES}: more than one archive would be unpacked into {', '.join(twice)}; "
                                    "give each its own target folder (archive#target)")
    requirements, cache = _requirements(settings[REQUIREMENTS]) if settings.get(REQUIREMENTS, "").strip() \
        else (None, None)
    for key in (EXECUTABLE, CLIENT_EXECUTABLE):
        if settings.get(key, "").strip():
            check_interpreter(key, settings[key].strip(), set(names))
    return PythonDependencies(files, archives, requirements, cache)
