"""The bin/ scripts' command lines (usage, exit statuses) and the small rules of flink-daemon.sh, without
starting daemons."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from ha_flink.deploy import scripts
from ha_flink.deploy.flink_daemon import (
    DaemonError, HostContext, _tail, first_free_index, log_name, marker_of, zookeeper_peer,
)


@pytest.fixture
def conf(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    conf = tmp_path / "conf"
    conf.mkdir()
    (conf / "flink-conf.yaml").write_text(f"high-availability.type: zookeeper\nenv.pid.dir: {tmp_path}/pid\n")
    monkeypatch.setenv("FLINK_CONF_DIR", str(conf))
    return conf


@pytest.mark.parametrize(("argv", "usage"), [
    (["jobmanager.sh"], scripts.JOBMANAGER_USAGE),
    (["jobmanager.sh", "begin"], scripts.JOBMANAGER_USAGE),
    (["jobmanager.sh", "start", "h", "8081", "extra"], scripts.JOBMANAGER_USAGE),
    (["jobmanager.sh", "start", "h", "80a"], "the web UI port '80a' is not a number"),
    (["taskmanager.sh", "restart"], scripts.TASKMANAGER_USAGE),
    (["flink-daemon.sh", "start", "historyserver"], scripts.DAEMON_USAGE),
    (["start-cluster.sh", "now"], "Usage: start-cluster.sh (takes no arguments"),
])
def test_bad_arguments_print_usage_and_fail(argv: list[str], usage: str, conf: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    assert scripts.main(argv) == 1
    assert usage in capsys.readouterr().err


def test_start_cluster_without_a_masters_file_says_so(conf: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert scripts.main(["start-cluster.sh"]) == 1
    assert capsys.readouterr().out == f"[ERROR] No masters file. Please specify masters in '{conf / 'masters'}'.\n"


def test_stop_of_nothing_running_says_so_and_succeeds(conf: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert scripts.main(["taskmanager.sh", "stop"]) == 0
    assert re.fullmatch(r"No taskexecutor daemon to stop on host \S+\.\n", capsys.readouterr().out)
    assert scripts.main(["flink-daemon.sh", "status", "standalonesession"]) == 3
    assert "0 instance(s) of standalonesession running on" in capsys.readouterr().out


def test_cluster_status_of_a_cluster_that_is_not_running(conf: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (conf / "masters").write_text("localhost:8081\nlocalhost:8082\n")
    (conf / "slaves").write_text("localhost\n")
    assert scripts.main(["cluster-status"]) == 1
    out = capsys.readouterr().out
    assert "standalonesession on localhost: 0 of 2 running (pids: none)" in out
    assert "taskexecutor on localhost: 0 of 1 running (pids: none)" in out


def test_instance_numbers_log_names_and_markers() -> None:
    assert first_free_index(lambda n: n in (0, 1, 3)) == 2
    assert re.fullmatch(r"flink-\S+-taskexecutor-2-node-1\.out", log_name("taskexecutor", 2, "node-1", "out"))
    assert marker_of("standalonesession") == "daemons/standalonesession.py"
    assert marker_of("zookeeper") == "QuorumPeerMain"


def test_a_refusing_daemon_is_quoted_by_its_reason(tmp_path: Path) -> None:
    out = tmp_path / "x.out"
    out.write_text("old run\n2026 INFO starting\n2026 INFO kazoo connecting\n"
                   "taskexecutor: cannot start: conf/flink-conf.yaml:2: heartbeat.interval: 'soon' ...\n")
    assert _tail(out, len("old run\n")) == "taskexecutor: cannot start: conf/flink-conf.yaml:2: heartbeat.interval: " \
                                           "'soon' ..."
    out.write_text("a\nb\nc\nd\n")
    assert _tail(out, 0) == "b | c | d"


def test_zookeeper_arguments_as_flinks_zookeeper_sh_passes_them() -> None:
    assert zookeeper_peer(("--zkConfigFile", "/c/zoo.cfg", "--peerId", "3")) == (Path("/c/zoo.cfg"), 3)
    with pytest.raises(DaemonError, match="needs --zkConfigFile <zoo.cfg> --peerId <id>"):
        zookeeper_peer(("--zkConfigFile", "/c/zoo.cfg"))
    with pytest.raises(DaemonError, match="unexpected argument '--myid'"):
        zookeeper_peer(("--myid", "3"))


def test_relative_pid_and_log_dirs_are_taken_from_the_install_dir(tmp_path: Path) -> None:
    (tmp_path / "flink-conf.yaml").write_text("env.pid.dir: run\nenv.log.dir: logs\n")
    context = HostContext.load(tmp_path, print, install=Path("/opt/flink"))
    assert (context.pid_dir, context.log_dir) == (Path("/opt/flink/run"), Path("/opt/flink/logs"))
    (tmp_path / "flink-conf.yaml").write_text("")
    context = HostContext.load(tmp_path, print, install=Path("/opt/flink"))
    assert (context.pid_dir, context.log_dir) == (Path("/tmp"), Path("/opt/flink/log"))


def test_the_log_a_daemon_has_taken_is_the_one_it_locked(tmp_path: Path) -> None:
    import subprocess
    import sys

    from ha_flink.deploy.flink_daemon import host_name, locked_log
    from ha_flink.testing.processes import wait_for

    # like a daemon looking for a free number: log 0 is open but not locked by it, log 1 is locked
    taken = tmp_path / log_name("taskexecutor", 0, host_name(), "log")
    mine = tmp_path / log_name("taskexecutor", 1, host_name(), "log")
    code = (f"import fcntl, sys, time\nopen({str(taken)!r}, 'a')\nkeep = open({str(taken)!r}, 'a')\n"
            f"own = open({str(mine)!r}, 'a')\nfcntl.flock(own, fcntl.LOCK_EX)\nprint('locked', flush=True)\n"
            "time.sleep(30)\n")
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None and child.stdout.readline() == "locked\n"
        assert wait_for(lambda: locked_log(child.pid, "taskexecutor", host_name()), 5) == mine
        assert locked_log(child.pid, "standalonesession", host_name()) is None
    finally:
        child.kill()
        child.wait()


def test_rotation_keeps_five_old_logs(tmp_path: Path) -> None:
    from ha_flink.deploy.flink_daemon import rotate

    log = tmp_path / "flink-me-zookeeper-0-h.log"
    for run in range(7):
        log.write_text(f"run {run}\n")
        rotate(log)
    assert not log.exists()
    assert [(tmp_path / f"{log.name}.{n}").read_text() for n in range(1, 6)] == [f"run {r}\n" for r in (6, 5, 4, 3, 2)]
    assert not (tmp_path / f"{log.name}.6").exists()
