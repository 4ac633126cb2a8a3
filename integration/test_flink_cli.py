"""Flink's own CLI (`bin/flink` of Apache Flink 2.3, from PyPI's wheels, run on a real JVM) against a real
ha-flink HA cluster, through its standby as through its leader: `list` in Flink's line format (which
scripts parse), `savepoint` (a failing one too) and `savepoint -d`, `checkpoint` (and `--full`), `cancel` and `stop`. The paths it calls are Flink's versioned ones (`/v1/...`) and
its Jackson mapping is strict about the JSON shapes, so it is the judge here, not our reading of them."""

from __future__ import annotations

import json
import re
import subprocess
import urllib.request
from pathlib import Path
from typing import Any, Callable

import pytest

from ha_flink.testing.cluster import Cluster
from ha_flink.testing.flink_dist import flink_cli, flink_home
from ha_flink.testing.processes import wait_for
from ha_flink.testing.pyflink_wheel import PyFlinkUnavailable

JOB = Path(__file__).resolve().parent / "checkpointed_count_job.py"
LIST_LINE = r"^\d\d\.\d\d\.\d{4} \d\d:\d\d:\d\d : (?P<jid>[0-9a-f]{32}) : (?P<name>.+) \((?P<state>[A-Z]+)\)$"


@pytest.fixture(scope="module")
def flink_client() -> Path:
    try:
        return flink_home()
    except PyFlinkUnavailable as error:
        pytest.skip(f"Flink's CLI is not available here: {error}")


def listed(output: str) -> list[tuple[str, str, str]]:
    return [(m["jid"], m["name"], m["state"]) for m in re.finditer(LIST_LINE, output, re.MULTILINE)]


def test_flinks_cli_lists_savepoints_checkpoints_cancels_and_stops(flink_client: Path, cluster_factory: Callable[..., Cluster],
                                                 tmp_path: Path) -> None:
    cluster = cluster_factory(**{"state.savepoints.dir": f"file://{tmp_path}/savepoints"})
    leader = cluster.start_leader()
    standby = cluster.start_jobmanager()
    cluster.start_taskmanager()
    submitted = cluster.flink("run", "-d", "-py", str(JOB), str(tmp_path / "out"), "1000000", "200", "-1")
    assert submitted.returncode == 0, submitted.stdout + submitted.stderr
    job_id = cluster.job_id(submitted)
    client_conf = tmp_path / "flink-client-conf"

    def flink(*args: str, via: str | None = None) -> str:
        done = flink_cli(*args, rest=via or standby.rest_address() or "", conf_dir=client_conf)
        assert done.returncode == 0, f"flink {' '.join(args)}: exit {done.returncode}\n{done.stdout}\n{done.stderr}"
        return done.stdout

    wait_for(lambda: listed(flink("list", "-r")) == [(job_id, "checkpointed count", "RUNNING")], 60,
             what="Flink's `flink list -r` to show the job RUNNING")
    assert ok_json(f"{standby.rest_address()}/v1/config")["flink-version"] == "2.3.0"  # a real version string
    everything = flink("list", "-a", via=leader.rest_address())
    assert listed(everything) == [(job_id, "checkpointed count", "RUNNING")]
    assert "No scheduled jobs." in everything
    same_as_flink(cluster, flink, "-a")

    saved = flink("savepoint", job_id, f"{tmp_path}/manual")
    path = re.search(r"Savepoint completed\. Path: (\S+)", saved)
    assert path and Path(path.group(1).removeprefix("file:")).is_dir(), saved
    # savepoint -d: disposed (the folder gone); a folder that is no savepoint is refused, naming it, and kept
    assert "Savepoint '" in flink("savepoint", "-d", path.group(1)) and not Path(path.group(1)).exists()
    (tmp_path / "precious").mkdir()
    refused = flink_cli("savepoint", "-d", str(tmp_path / "precious"), rest=standby.rest_address() or "",
                        conf_dir=client_conf)
    assert refused.returncode != 0 and "is not a savepoint folder" in refused.stdout + refused.stderr
    assert (tmp_path / "precious").is_dir()
    # a savepoint that fails after it was accepted: Flink's client reads the failure-cause (our Java-serialized
    # SerializedThrowable) and shows the JobManager's reason at once, instead of polling until its timeout
    failed = flink_cli("savepoint", job_id, "file:///proc/ha-flink-savepoints", rest=standby.rest_address() or "",
                       conf_dir=client_conf)
    assert failed.returncode != 0 and "not written" in failed.stdout + failed.stderr, failed.stdout + failed.stderr
    assert "/proc/ha-flink-savepoints" in failed.stdout + failed.stderr

    for args, kind in ((("checkpoint",), ""), (("checkpoint", "--full"), "(FULL)")):
        done = re.search(rf"Checkpoint{re.escape(kind)} (\d+) for job {job_id} completed\.", flink(*args, job_id))
        assert done, f"flink {' '.join(args)} did not report its checkpoint"
        history = ok_json(f"{leader.rest_address()}/jobs/{job_id}/checkpoints")["history"]
        assert any(h["id"] == int(done.group(1)) and h["status"] == "COMPLETED" for h in history)

    assert "Cancelled job" in flink("cancel", job_id)
    wait_for(lambda: listed(flink("list", "-a")) == [(job_id, "checkpointed count", "CANCELED")], 30,
             what="`flink list -a` to show the job CANCELED")

    again = cluster.flink("run", "-d", "-py", str(JOB), str(tmp_path / "out2"), "1000000", "200", "-1")
    second = cluster.job_id(again)
    wait_for(lambda: (second, "checkpointed count", "RUNNING") in listed(flink("list", "-r")), 60,
             what="the second job to run")
    stopped = flink("stop", "--savepointPath", f"{tmp_path}/stopped", second)
    assert re.search(rf"Savepoint completed\. Path: \S*{tmp_path}/stopped/savepoint-", stopped), stopped
    wait_for(lambda: (second, "checkpointed count", "FINISHED") in listed(flink("list", "-a")), 30,
             what="`flink list -a` to show the stopped job FINISHED")
    for flags in ((), ("-a",), ("-r",), ("-s",)):
        same_as_flink(cluster, flink, *flags)
    overview = {j["jid"]: j for j in ok_json(f"{leader.rest_address()}/jobs/overview")["jobs"]}
    # and their tasks as Flink shows them: every one ended with its job
    assert overview[job_id]["tasks"]["canceled"] == overview[job_id]["tasks"]["total"] > 0
    assert overview[second]["tasks"]["finished"] == overview[second]["tasks"]["total"] > 0


def same_as_flink(cluster: Cluster, flink: Callable[..., str], *flags: str) -> None:
    """Our `bin/flink list <flags>` prints what Flink's own does, line for line (its log lines aside)."""
    def lines(text: str) -> list[str]:
        return [line for line in text.splitlines() if line and "Reconfiguration failed" not in line]

    ours = cluster.flink("list", *flags)
    assert ours.returncode == 0, ours.stderr
    assert lines(ours.stdout) == lines(flink("list", *flags)), f"flink list {' '.join(flags)}"


def ok_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as answer:
        return json.loads(answer.read())


_VARYING = [(re.compile(r"[0-9a-f]{32}"), "<id>"), (re.compile(r"savepoint-[0-9a-f]{6}-[0-9a-f]{12}"), "savepoint-<x>"),
            (re.compile(r"(Checkpoint(?:\(FULL\))?) \d+ "), r"\1 <n> ")]


def _shown(text: str) -> list[str]:
    """Output lines with ids, savepoint names and checkpoint numbers as placeholders (Flink's log4j notice
    about its missing log configuration aside)."""
    lines = []
    for line in text.splitlines():
        if not line or "Reconfiguration failed" in line:
            continue
        for pattern, placeholder in _VARYING:
            line = pattern.sub(placeholder, line)
        lines.append(line)
    return lines


def test_our_cli_prints_what_flinks_prints(flink_client: Path, cluster_factory: Callable[..., Cluster],
                                           tmp_path: Path) -> None:
    """savepoint (-detached, -d), checkpoint (--full), stop (-detached, --drain), cancel and -v: our
    `bin/flink` prints Flink's lines (scripts parse them), and refuses what it does not provide as Flink's
    does not: a NATIVE savepoint is a named error from both, never a canonical one in its place."""
    cluster = cluster_factory(**{"state.savepoints.dir": f"file://{tmp_path}/savepoints",
                                 "taskmanager.numberOfTaskSlots": "8"})
    leader = cluster.start_leader()
    cluster.start_taskmanager()
    rest = leader.rest_address() or ""
    conf = tmp_path / "flink-client-conf"

    def job() -> str:
        submitted = cluster.flink("run", "-d", "-py", str(JOB), str(tmp_path / "out"), "1000000", "200", "-1", "1")
        assert submitted.returncode == 0, submitted.stdout + submitted.stderr
        job_id = cluster.job_id(submitted)
        wait_for(lambda: ok_json(f"{rest}/jobs/{job_id}/checkpoints")["counts"]["completed"] >= 1, 60,
                 what="the job's first checkpoint")
        return job_id

    def both(*args: str, succeed: bool = True) -> tuple[subprocess.CompletedProcess[str], subprocess.CompletedProcess[str]]:
        ours, flinks = cluster.flink(*args), flink_cli(*args, rest=rest, conf_dir=conf)
        for who, done in (("ours", ours), ("Flink's", flinks)):
            assert (done.returncode == 0) == succeed, f"{who} flink {' '.join(args)}:\n{done.stdout}\n{done.stderr}"
        return ours, flinks

    first = job()
    paths = []
    for args in (("savepoint", first, f"{tmp_path}/manual"), ("savepoint", "-detached", first, f"{tmp_path}/manual"),
                 ("checkpoint", first), ("checkpoint", "--full", first)):
        ours, flinks = both(*args)
        assert _shown(ours.stdout) == _shown(flinks.stdout), f"flink {' '.join(args)}"
        if args[:2] == ("savepoint", first):
            paths = [re.search(r"Path: (\S+)", done.stdout).group(1) for done in (ours, flinks)]  # type: ignore[union-attr]
    ours, flinks = both("savepoint", "-type", "native", first, f"{tmp_path}/manual", succeed=False)
    for done in (ours, flinks):
        assert "formatType NATIVE is not supported" in done.stdout + done.stderr, done.stdout + done.stderr
    mine, theirs = cluster.flink("savepoint", "-d", paths[0]), flink_cli("savepoint", "-d", paths[1], rest=rest,
                                                                          conf_dir=conf)
    assert mine.returncode == theirs.returncode == 0, mine.stderr + theirs.stderr
    assert not any(Path(path.removeprefix("file:")).exists() for path in paths)
    assert _shown(mine.stdout.replace(paths[0], "<path>")) == _shown(theirs.stdout.replace(paths[1], "<path>"))

    for flags in (("-detached",), ("--drain",), ()):
        stopped = job()
        mine, theirs = cluster.flink("stop", *flags, "-p", f"{tmp_path}/stops", stopped), flink_cli(
            "stop", *flags, "-p", f"{tmp_path}/stops", job(), rest=rest, conf_dir=conf)
        assert mine.returncode == theirs.returncode == 0, mine.stderr + theirs.stderr
        assert _shown(mine.stdout) == _shown(theirs.stdout), f"flink stop {' '.join(flags)}"
    mine, theirs = cluster.flink("cancel", first), flink_cli("cancel", job(), rest=rest, conf_dir=conf)
    assert _shown(mine.stdout) == _shown(theirs.stdout)
    mine, theirs = both("cancel", first)  # cancelled already: acknowledged again, as Flink's handler does
    assert _shown(mine.stdout) == _shown(theirs.stdout)
    wait_for(lambda: ok_json(f"{rest}/jobs/{stopped}")["state"] == "FINISHED", 60, what="the stopped job to finish")
    for done in both("cancel", stopped, succeed=False):  # stopped with a savepoint: FINISHED, not cancellable
        assert "Job cancellation failed because the job has already reached another terminal state (FINISHED)." \
            in done.stdout + done.stderr, done.stdout + done.stderr
    version = cluster.flink("-v").stdout
    assert version.startswith("Version: 2.3.0, Commit ID: ") and flink_cli("-v", rest=rest, conf_dir=conf).stdout \
        .startswith("Version: 2.3.0, Commit ID: ")
