"""The real Apache Flink 2.3 client, the judge of our REST API: Flink's `bin/flink` CLI, assembled from the
two wheels PyPI has it in (apache-flink: the bin/ scripts; apache-flink-libraries: the jars of lib/),
downloaded on first use and cached outside the repository beside the extracted PyFlink source.

`flink_cli(*args, rest=...)` runs it against a JobManager's REST address (as `-m host:port`) with a conf
dir of its own; the tests skip, saying why, when the wheels cannot be had or no `java` is installed."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import zipfile
from pathlib import Path

from ha_flink.testing.pyflink_wheel import (
    PYFLINK_VERSION, PyFlinkUnavailable, cache_folder, download_wheel, pyflink_source,
)

_COMPLETE = ".complete"


def flink_home(version: str = PYFLINK_VERSION) -> Path:
    """FLINK_HOME of a Flink `version` distribution with bin/ and lib/ (downloaded once, then cached).
    Raises PyFlinkUnavailable when it cannot be had or there is no java to run it."""
    if shutil.which("java") is None:
        raise PyFlinkUnavailable("no `java` on the PATH to run Flink's CLI (make install adds default-jre-headless)")
    home = cache_folder(version).parent / f"flink-{version}-client"
    if (home / _COMPLETE).exists():
        return home
    source = pyflink_source(version)  # the apache-flink wheel: bin/
    home.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f"flink-{version}-", dir=home.parent) as tmp:
        wheel = download_wheel("apache-flink-libraries", version, Path(tmp) / "download", timeout=900)
        staging = Path(tmp) / "home"
        shutil.copytree(source / "bin", staging / "bin")
        with zipfile.ZipFile(wheel) as archive:
            for name in archive.namelist():
                if name.startswith(("pyflink/lib/", "pyflink/bin/")) and not name.endswith("/"):
                    target = staging / name.removeprefix("pyflink/")
                    target.parent.mkdir(parents=True, exist_ok=True)
                    with archive.open(name) as member, open(target, "wb") as out:
                        shutil.copyfileobj(member, out)
        (staging / "log").mkdir()
        (staging / _COMPLETE).write_text(wheel.name + "\n")
        if home.exists():
            shutil.rmtree(home)
        staging.rename(home)
    return home


def flink_cli(*args: str, rest: str, conf_dir: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Flink's own `bin/flink <args> -m <host:port>` against the JobManager at `rest` (http://host:port),
    with the (empty unless written) config.yaml of `conf_dir`."""
    home = flink_home()
    conf_dir.mkdir(parents=True, exist_ok=True)
    (conf_dir / "config.yaml").touch()
    action, rest_args = args[0], list(args[1:])
    address = rest.split("://", 1)[-1]
    env = dict(os.environ, FLINK_HOME=str(home), FLINK_CONF_DIR=str(conf_dir), FLINK_LOG_DIR=str(conf_dir))
    env.pop("PYTHONPATH", None)
    return subprocess.run(["bash", str(home / "bin" / "flink"), action, "-m", address, *rest_args],
                          capture_output=True, text=True, env=env, timeout=timeout)


def java_against_flink(source: str, class_name: str, folder: Path) -> list[str]:
    """Compile a Java judge class (`source`, public class `class_name`) against Flink's flink-dist jar into
    `folder`; returns the command that runs it. Raises PyFlinkUnavailable without a JDK (javac) or Flink."""
    if shutil.which("javac") is None:
        raise PyFlinkUnavailable("no `javac` on this machine to compile a judge against Flink's jar (a JDK is "
                                 "needed, not only a JRE)")
    jar = next((flink_home() / "lib").glob("flink-dist-*.jar"))
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{class_name}.java").write_text(source)
    subprocess.run(["javac", "-cp", str(jar), "-d", str(folder), str(folder / f"{class_name}.java")], check=True,
                   capture_output=True, timeout=120)
    return ["java", "-cp", f"{jar}{os.pathsep}{folder}", class_name]
