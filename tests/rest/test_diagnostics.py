"""The pure parts of the diagnostic endpoints: which log files may be read and how much of them, the
thread dump's text, the aggregation of TaskManager metrics (Flink's skew) and the log URL patterns."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from ha_flink.config import Configuration
from ha_flink.rest.diagnostics import environment_info, log_url
from ha_flink.rest.views import aggregated_metrics, metric_answer
from ha_flink.runtime.diagnostics import (
    LogFileError, LogFileProblem, LogLocation, ProcessStatus, list_log_files, read_log_file, thread_dump,
    thread_dump_depth,
)


@pytest.fixture
def log_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "log"
    folder.mkdir()
    (folder / "flink-u-taskexecutor-0-h.log").write_text("line 1\nline 2\nline 3\n")
    (tmp_path / "outside.txt").write_text("outside\n")
    os.symlink(tmp_path / "outside.txt", folder / "link.log")
    (folder / "sub").mkdir()
    return folder


@pytest.mark.parametrize("name", ["..", ".", "", "../outside.txt", "sub/x", "/etc/passwd", "a\\b", "a\0b"])
def test_a_name_that_is_not_a_plain_file_name_is_refused_naming_it(log_dir: Path, name: str) -> None:
    with pytest.raises(LogFileError) as caught:
        read_log_file(log_dir, name)
    assert caught.value.problem is LogFileProblem.BAD_NAME and repr(name) in str(caught.value)


@pytest.mark.parametrize("name", ["link.log", "sub", "missing.log"])
def test_a_link_a_folder_or_a_missing_file_is_not_found(log_dir: Path, name: str) -> None:
    with pytest.raises(LogFileError) as caught:
        read_log_file(log_dir, name)
    assert caught.value.problem is LogFileProblem.NOT_FOUND and repr(name) in str(caught.value)


def test_the_listing_holds_plain_files_only(log_dir: Path) -> None:
    assert [f.name for f in list_log_files(log_dir)] == ["flink-u-taskexecutor-0-h.log"]
    assert list_log_files(log_dir / "missing") == []


def test_a_long_file_is_read_from_its_tail_starting_at_a_whole_line(log_dir: Path) -> None:
    whole = read_log_file(log_dir, "flink-u-taskexecutor-0-h.log")
    assert whole.data == b"line 1\nline 2\nline 3\n" and whole.skipped == 0 and whole.size == 21
    tail = read_log_file(log_dir, "flink-u-taskexecutor-0-h.log", max_bytes=10)
    assert tail.data == b"line 3\n" and tail.skipped == 14 and tail.size == 21


def test_the_location_comes_from_the_configured_path_or_the_log_dir(log_dir: Path) -> None:
    configured = LogLocation.of_this_process(
        Configuration({"taskmanager.log.path": str(log_dir / "flink-u-taskexecutor-0-h.log")}), "taskmanager.log.path")
    assert configured.directory == log_dir and configured.read_log().data.startswith(b"line 1")
    with pytest.raises(LogFileError, match="no log file|not a plain file"):
        configured.read_stdout()  # (no .out file beside it)
    only_dir = LogLocation(log_dir, None, None)
    with pytest.raises(LogFileError, match="writes no log file"):
        only_dir.read_log()
    assert [f.name for f in only_dir.files()] == ["flink-u-taskexecutor-0-h.log"]
    assert LogLocation(None, None, None).files() == []


def test_a_thread_dump_names_every_thread_with_its_stack_innermost_first() -> None:
    started, stop = threading.Event(), threading.Event()

    def parked_here() -> None:
        started.set()
        stop.wait(10)

    thread = threading.Thread(target=parked_here, name="parked worker", daemon=True)
    thread.start()
    started.wait(5)
    try:
        dump = {t.name: t.text for t in thread_dump(max_depth=3)}
    finally:
        stop.set()
        thread.join(5)
    text = dump["parked worker"]
    assert text.startswith('"parked worker" daemon Id=')
    frames = [line for line in text.splitlines() if line.startswith("\tat ")]
    assert len(frames) == 3 and "\t..." in text  # bounded, as Flink's stacktrace-max-depth
    assert frames[0].startswith("\tat wait(") and any("parked_here(" in f for f in frames)
    assert "MainThread" in dump


def test_the_thread_dump_depth_is_flinks_option() -> None:
    assert thread_dump_depth(Configuration()) == 50
    assert thread_dump_depth(Configuration({"cluster.thread-dump.stacktrace-max-depth": "7"})) == 7


def test_process_figures_use_flinks_ids() -> None:
    figures = ProcessStatus().sample()
    assert 0.0 <= float(figures["Status.JVM.CPU.Load"]) <= 1.0
    assert int(figures["Status.JVM.CPU.Time"]) > 0 and int(figures["Status.JVM.Threads.Count"]) >= 1
    assert int(figures["Status.Python.Memory.RSS"]) > 0


def test_aggregation_over_taskmanagers_with_flinks_skew() -> None:
    reports = [{"a": "1", "b": "x"}, {"a": "3"}]
    assert aggregated_metrics(reports, None, ["min"]) == [{"id": "a"}, {"id": "b"}]
    assert aggregated_metrics(reports, ["a", "b", "c"], ["min", "max", "avg", "sum", "skew"]) == [
        {"id": "a", "min": 1.0, "max": 3.0, "avg": 2.0, "sum": 4.0, "skew": 50.0}]  # mean |dev| 1 of mean 2
    assert aggregated_metrics([{"a": "0"}], ["a"], ["skew"]) == [{"id": "a", "skew": 0.0}]
    assert metric_answer({"b": "2", "a": "1"}, None) == [{"id": "a"}, {"id": "b"}]
    assert metric_answer({"b": "2", "a": "1"}, ["b", "zz"]) == [{"id": "b", "value": "2"}]


def test_log_urls_follow_flinks_patterns_else_our_routes() -> None:
    assert log_url(None, "http://jm:8081/taskmanagers/tm1/log", "j1", "tm1") == "http://jm:8081/taskmanagers/tm1/log"
    assert log_url("logs.example/<jobid>/<tmid>", "", "j1", "tm1") == "http://logs.example/j1/tm1"
    assert log_url("https://logs.example/<jobid>", "", "j1") == "https://logs.example/j1"


def test_the_environment_has_flinks_fields() -> None:
    info = environment_info()
    assert sorted(info) == ["classpath", "jvm"] and sorted(info["jvm"]) == ["arch", "options", "version"]
    assert all(isinstance(entry, str) for entry in info["classpath"] + info["jvm"]["options"])


def test_a_flame_graph_counts_the_samples_through_each_frame() -> None:
    import collections
    import threading

    from ha_flink.runtime.diagnostics import flame_graph, sample_stacks

    stop = threading.Event()

    def busy_in_here() -> None:
        while not stop.is_set():
            sum(range(1000))

    worker = threading.Thread(target=busy_in_here, name="worker")
    worker.start()
    try:
        assert worker.ident is not None
        stacks = sample_stacks([worker.ident], samples=20, delay_s=0.001, depth=100)
    finally:
        stop.set()
        worker.join()
    assert sum(stacks.values()) == 20  # one stack per sample of the one thread
    assert all(any(frame.startswith("busy_in_here (test_diagnostics.py:") for frame in stack) for stack in stacks)
    tree = flame_graph(collections.Counter({("a", "b"): 3, ("a", "c"): 1, ("d",): 2}))
    assert tree == {"name": "root", "value": 6, "children": [
        {"name": "a", "value": 4, "children": [{"name": "b", "value": 3, "children": []},
                                              {"name": "c", "value": 1, "children": []}]},
        {"name": "d", "value": 2, "children": []}]}
