"""Pid files: one pid per line, stale pids dropped, the file removed when empty, safe against races."""

from __future__ import annotations

import multiprocessing
import os
import subprocess
import sys
from pathlib import Path

from ha_flink.deploy.pidfile import PidFile, command_line, is_daemon_process, parse_pids, pid_file_path
from ha_flink.deploy.zookeeper import java_executable
from ha_flink.testing.processes import wait_for


def test_name_and_format_are_flinks(tmp_path: Path) -> None:
    assert pid_file_path(tmp_path, "taskexecutor", "flink") == tmp_path / "flink-flink-taskexecutor.pid"
    assert parse_pids("12\n 13 \n\nnot-a-pid\n14") == [12, 13, 14]


def test_stale_pids_are_dropped_and_an_empty_file_removed(tmp_path: Path) -> None:
    path = tmp_path / "flink-me-taskexecutor.pid"
    path.write_text("11\n22\n33\n")
    alive = {22}
    pid_file = PidFile(path, "marker", alive=lambda pid, marker: pid in alive)
    with pid_file.locked() as pids:
        assert pids == [22]
        pids.append(44)
    assert pid_file.stale == [11, 33]
    assert path.read_text() == "22\n44\n"
    alive.clear()
    assert pid_file.live_pids() == []
    assert not path.exists()


def test_a_pid_counts_only_while_its_process_runs_the_daemon(tmp_path: Path) -> None:
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)", "daemons/taskexecutor.py"])
    try:
        # until the child has exec'd, /proc shows the parent's command line
        wait_for(lambda: is_daemon_process(process.pid, "daemons/taskexecutor.py"), 10, what="the child to exec")
        assert not is_daemon_process(process.pid, "daemons/standalonesession.py")  # a reused pid
    finally:
        process.kill()
        process.wait()
    assert command_line(process.pid) is None


def test_a_zombie_is_not_running(tmp_path: Path) -> None:
    process = subprocess.Popen([sys.executable, "-c", "pass"])

    def zombie() -> bool:  # exited but not reaped: /proc still lists it, in state Z
        return Path(f"/proc/{process.pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"

    wait_for(zombie, 10, what="the child to exit")
    assert command_line(process.pid) is None
    assert process.poll() is not None or not Path(f"/proc/{process.pid}").exists()  # reaped by command_line


def _append_many(path: str, start: int) -> None:
    pid_file = PidFile(Path(path), "x", alive=lambda pid, marker: True)
    for pid in range(start, start + 50):
        with pid_file.locked() as pids:
            pids.append(pid)


def test_concurrent_appends_from_processes_lose_nothing(tmp_path: Path) -> None:
    path = tmp_path / "flink-me-taskexecutor.pid"
    context = multiprocessing.get_context("fork")
    workers = [context.Process(target=_append_many, args=(str(path), 1000 * (i + 1))) for i in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(30)
    assert sorted(parse_pids(path.read_text())) == sorted(p for i in range(4) for p in range(1000 * (i + 1),
                                                                                            1000 * (i + 1) + 50))
    assert os.path.exists(path)


def test_a_java_daemon_just_started_is_not_taken_for_a_stale_pid() -> None:
    """A process's arguments appear in /proc a moment after the exec that Popen waits for: a read right
    after the start sees no command line about once in fifty starts here. A chaos run's
    start-zookeeper-quorum.sh started two servers in one go and, reading the pid file again for the
    second, dropped the first as stale (it then logged into the same file, and a later start refused to
    run because its port was taken "by another process")."""
    java = java_executable()
    for attempt in range(1000):  # ~0.5 s; without the grace some 20 of them fail
        process = subprocess.Popen([java, "-Xmx16m", "-cp", "/nonexistent", "QuorumPeerMain"],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            assert is_daemon_process(process.pid, "QuorumPeerMain"), f"start {attempt + 1}: taken for stale"
        finally:
            process.kill()
            process.wait()
