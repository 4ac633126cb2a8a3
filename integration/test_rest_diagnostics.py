"""Flink's diagnostic REST endpoints on a real HA cluster, asked through the standby: a TaskManager's log
is read over REST (the leader asks the TaskManager over gRPC, no SSH) and holds the line it logged at
start; its thread dump names its task threads; a log file name that leaves the log directory ('..', a
symbolic link) is refused without reading anything outside it; a TaskManager's own metrics and the
JobManager's log (the leader's, as Flink's REST shows it) are there too."""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Callable

import pytest

from ha_flink.testing.cluster import Cluster
from ha_flink.testing.processes import wait_for
from ha_flink.testing.pyflink_wheel import PyFlinkUnavailable
from ha_flink.testing.rest_shapes import rest_shape_judge

JOB = Path(__file__).resolve().parent / "checkpointed_count_job.py"


def fetch(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=15) as answer:
            return answer.status, answer.read().decode(errors="replace")
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode(errors="replace")


def ok_json(url: str) -> Any:
    status, body = fetch(url)
    assert status == 200, f"GET {url}: {status} {body}"
    return json.loads(body)


def test_taskmanager_logs_thread_dump_and_metrics_through_the_standby(
        cluster_factory: Callable[..., Cluster], tmp_path: Path) -> None:
    cluster = cluster_factory()
    cluster.start_leader()
    standby = cluster.start_jobmanager()
    cluster.start_taskmanager()
    rest = standby.rest_address() or ""
    wait_for(lambda: fetch(f"{rest}/taskmanagers")[0] == 200 and json.loads(fetch(f"{rest}/taskmanagers")[1])
             ["taskmanagers"], 30, what="the TaskManager to register")
    tm = ok_json(f"{rest}/taskmanagers")["taskmanagers"][0]["id"]
    submitted = cluster.flink("run", "-d", "-py", str(JOB), str(tmp_path / "out"), "1000000", "100", "-1")
    assert submitted.returncode == 0, submitted.stdout + submitted.stderr
    job_id = cluster.job_id(submitted)
    wait_for(lambda: ok_json(f"{rest}/jobs/{job_id}")["state"] == "RUNNING", 30, what="the job to run")

    # the TaskManager's log, read over REST through the standby
    status, log = fetch(f"{rest}/taskmanagers/{tm}/log")
    assert status == 200, log
    assert f"TaskManager {tm} serving at" in log
    listed = {entry["name"]: entry for entry in ok_json(f"{rest}/taskmanagers/{tm}/logs")["logs"]}
    own = next(name for name in listed if "-taskexecutor-" in name and name.endswith(".log"))
    assert listed[own]["size"] > 0 and listed[own]["mtime"] > 0
    status, same = fetch(f"{rest}/taskmanagers/{tm}/logs/{own}")
    assert status == 200 and f"TaskManager {tm} serving at" in same

    # its thread dump names the threads of its running subtasks, and the RPC that answers it
    threads = ok_json(f"{rest}/taskmanagers/{tm}/thread-dump")["threadInfos"]
    names = {thread["threadName"] for thread in threads}
    vertices = ok_json(f"{rest}/jobs/{job_id}")["vertices"]
    for vertex in vertices:
        for index in range(vertex["parallelism"]):
            assert f"{vertex['name']} ({index + 1}/{vertex['parallelism']})" in names, sorted(names)
    assert any("RequestThreadDump(" in t["stringifiedThreadInfo"] and "task_executor.py" in t["stringifiedThreadInfo"]
               for t in threads)

    # nothing outside the log directory: '..' is refused, a symbolic link out of it is not followed
    secret = tmp_path / "secret.txt"
    secret.write_text("the secret outside the log dir\n")
    log_dir = cluster.directory / "log"
    os.symlink(secret, log_dir / "link.log")
    for path, code in ((f"/taskmanagers/{tm}/logs/..%2Fsecret.txt", 400), (f"/taskmanagers/{tm}/logs/..", 400),
                       (f"/taskmanagers/{tm}/logs/../../secret.txt", 400), (f"/taskmanagers/{tm}/logs/link.log", 404),
                       ("/jobmanager/logs/..%2F..%2Fsecret.txt", 400), ("/jobmanager/logs/link.log", 404)):
        status, body = fetch(rest + path)
        assert status == code, f"GET {path}: {status} {body}"
        assert "the secret outside" not in body
        assert "not a plain file" in body, body  # the error names why, and the file
    assert "link.log" not in {entry["name"] for entry in ok_json(f"{rest}/taskmanagers/{tm}/logs")["logs"]}
    status, body = fetch(f"{rest}/taskmanagers/no-such-tm/log")
    assert status == 404 and "no-such-tm" in body

    # the TaskManager's own figures, one and aggregated
    load = ok_json(f"{rest}/taskmanagers/{tm}/metrics?get=Status.JVM.CPU.Load,Status.JVM.Threads.Count")
    values = {metric["id"]: float(metric["value"]) for metric in load}
    assert 0.0 <= values["Status.JVM.CPU.Load"] <= 1.0 and values["Status.JVM.Threads.Count"] >= 4
    aggregated = ok_json(f"{rest}/taskmanagers/metrics?get=Status.JVM.Threads.Count&agg=max,sum&taskmanagers={tm}")
    assert [sorted(metric) for metric in aggregated] == [["id", "max", "sum"]]
    assert aggregated[0]["id"] == "Status.JVM.Threads.Count" and aggregated[0]["max"] == aggregated[0]["sum"] >= 4

    # the JobManager's log through the standby is the leader's; the log URLs point at these routes
    status, jm_log = fetch(f"{rest}/jobmanager/log")
    assert status == 200 and "Granted leadership" in jm_log
    url = ok_json(f"{rest}/jobs/{job_id}/taskmanagers/{tm}/log-url")["url"]
    assert url.endswith(f"/taskmanagers/{tm}/log") and f"TaskManager {tm} serving at" in fetch(url)[1]


def test_a_vertex_flame_graph_is_sampled_from_its_task_threads(cluster_factory: Callable[..., Cluster],
                                                               tmp_path: Path) -> None:
    """rest.flamegraph.enabled: the first request answers Flink's `waiting` (-3) and starts a sampling of
    the vertex's task threads on their TaskManager; then the graph is there, its root counting every sample,
    through the frames of the task's own loop. Python cannot tell on-CPU from off-CPU: those types are
    refused, naming why."""
    cluster = cluster_factory(**{"rest.flamegraph.enabled": "true", "rest.flamegraph.num-samples": "20",
                                 "rest.flamegraph.delay-between-samples": "10 ms"})
    cluster.start_leader()
    standby = cluster.start_jobmanager()
    cluster.start_taskmanager()
    rest = standby.rest_address() or ""
    submitted = cluster.flink("run", "-d", "-py", str(JOB), str(tmp_path / "out"), "1000000", "100", "-1")
    assert submitted.returncode == 0, submitted.stdout + submitted.stderr
    job_id = cluster.job_id(submitted)
    wait_for(lambda: ok_json(f"{rest}/jobs/{job_id}")["state"] == "RUNNING", 30, what="the job to run")
    vertex = ok_json(f"{rest}/jobs/{job_id}")["vertices"][-1]
    url = f"{rest}/jobs/{job_id}/vertices/{vertex['id']}/flamegraph"
    assert ok_json(url) == {"endTimestamp": -3, "data": None}
    graph = wait_for(lambda: (lambda g: g if g["endTimestamp"] > 0 else None)(ok_json(url)), 30,
                     what="the sampled flame graph")
    root = graph["data"]
    assert root["name"] == "root" and root["value"] == 20 * vertex["parallelism"]  # every subtask, every sample
    frames: list[str] = []
    pending = list(root["children"])
    while pending:
        node = pending.pop()
        frames.append(node["name"])
        pending += node["children"]
    assert any(frame.startswith("run (task.py:") for frame in frames), frames[:20]
    status, body = fetch(url + "?type=ON_CPU")
    assert status == 400 and "Python cannot tell whether a thread is on a CPU" in body
    try:  # and Flink's own class reads it
        judge = rest_shape_judge(tmp_path / "judge")
    except PyFlinkUnavailable as error:
        pytest.skip(f"the graph was checked, but Flink's classes cannot judge its shape here: {error}")
    flame_class = "org.apache.flink.runtime.webmonitor.threadinfo.VertexFlameGraph"
    assert judge.judge({("CLASS", flame_class): graph}) == {("CLASS", flame_class): "OK"}
