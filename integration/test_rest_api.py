"""Flink's REST API, the Prometheus endpoints and the savepoint operations on a real HA cluster (a leader,
a standby, a TaskManager, each a process): a checkpointed job that fails once is seen through the standby
with its vertices, records, checkpoints, restore, exception and restart, then savepointed and stopped
over REST; bad requests get a 4xx with a message; schemathesis finds no 5xx in the served OpenAPI spec."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Callable, NamedTuple

import pytest

from ha_flink.testing.cluster import Cluster, DaemonProcess
from ha_flink.testing.processes import wait_for

JOB = Path(__file__).resolve().parent / "checkpointed_count_job.py"
PROM_PORTS = "19249-19299"


def call(url: str, method: str = "GET", body: Any = None) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers={"content-type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, json.loads(answer.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


def ok(url: str) -> Any:
    status, body = call(url)
    assert status == 200, f"GET {url}: {status} {body}"
    return body


def job_metrics(job_url: str, *names: str) -> dict[str, float]:
    """Flink's job-scope metrics (`/jobs/<id>/metrics?get=...`), as numbers."""
    return {m["id"]: float(m["value"]) for m in ok(f"{job_url}/metrics?get={','.join(names)}")}


def recovered(job_url: str) -> bool:
    """The job has failed once, restored, and runs every task again."""
    metrics = job_metrics(job_url, "numRestarts", "uptime")
    return ok(job_url)["state"] == "RUNNING" and metrics["numRestarts"] == 1 and metrics["uptime"] > 0


def prometheus(daemon: DaemonProcess) -> dict[str, float]:
    """The daemon's Prometheus samples: 'name{labels}' -> value."""
    port = re.search(r"Prometheus metrics at http://[^:]+:(\d+)/metrics", daemon.output())
    assert port, f"no Prometheus endpoint in the log of {daemon.kind}"
    with urllib.request.urlopen(f"http://127.0.0.1:{port.group(1)}/metrics", timeout=10) as answer:
        text = answer.read().decode()
    return {line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
            if line and not line.startswith("#")}


def sample(samples: dict[str, float], name: str, **labels: str) -> list[float]:
    return [value for key, value in samples.items() if key.split("{")[0] == name
            and all(f'{k}="{v}"' in key for k, v in labels.items())]


class RunningJob(NamedTuple):
    cluster: Cluster
    daemons: dict[str, DaemonProcess]
    job_id: str
    run_output: str  # what `flink run` printed


@pytest.fixture
def running_job(cluster_factory: Callable[..., Cluster], tmp_path: Path) -> RunningJob:
    cluster = cluster_factory(**{"metrics.reporter.prom.port": PROM_PORTS,
                                 "state.savepoints.dir": f"file://{tmp_path}/savepoints",
                                 "restart-strategy.type": "fixed-delay",
                                 "restart-strategy.fixed-delay.delay": "100 ms",
                                 "restart-strategy.fixed-delay.attempts": "3"})
    daemons = {"leader": cluster.start_leader(), "standby": cluster.start_jobmanager(),
               "taskmanager": cluster.start_taskmanager()}
    # 400 records/s up to 1,000,000 (it runs until stopped); the first attempt fails at 1000, ~2.5 s in,
    # after several checkpoints (every 200 ms)
    result = cluster.flink("run", "-d", "-py", str(JOB), str(tmp_path / "out"), "1000000", "400", "1000")
    assert result.returncode == 0, result.stdout + result.stderr
    return RunningJob(cluster, daemons, cluster.job_id(result), result.stdout)


def test_the_standby_shows_the_job_its_checkpoints_restore_exception_and_metrics(
        running_job: RunningJob) -> None:
    cluster, daemons, job_id, _ = running_job
    standby, leader = daemons["standby"].rest_address(), daemons["leader"].rest_address()

    def settled() -> bool:
        job = ok(f"{standby}/jobs/{job_id}")
        checkpoints = ok(f"{standby}/jobs/{job_id}/checkpoints")
        metrics = job_metrics(f"{standby}/jobs/{job_id}", "numRestarts", "uptime")
        return job["state"] == "RUNNING" and metrics["numRestarts"] == 1 and \
            checkpoints["counts"]["completed"] >= 2 and metrics["uptime"] > 0 and \
            all(v["metrics"]["write-records"] > 0 for v in job["vertices"][:-1])

    wait_for(settled, 60, 0.2, what="the job to fail once, restore and complete two checkpoints")

    job = ok(f"{standby}/jobs/{job_id}")
    assert job["jid"] == job_id and job["name"] == "checkpointed count" and job["isStoppable"]
    assert [v["parallelism"] for v in job["vertices"]] and all(v["parallelism"] == 2 for v in job["vertices"])
    assert len(job["plan"]["nodes"]) == len(job["vertices"])
    assert [n["inputs"][0]["ship_strategy"] for n in job["plan"]["nodes"][1:]] == ["HASH"]
    assert job["status-counts"]["RUNNING"] == sum(v["parallelism"] for v in job["vertices"])
    wait_for(lambda: ok(f"{standby}/jobs/{job_id}/dashboard")["vertices"][0]["metrics"]["records-out-per-second"] > 0, 10,
             what="a records/s figure (the dashboard's live one)")
    restored = ok(f"{standby}/jobs/{job_id}/checkpoints")["latest"]["restored"]
    assert ok(f"{standby}/jobs/{job_id}/dashboard")["restored-checkpoint"] == restored  # (ours, for the dashboard)
    assert restored["id"] > 0 and not restored["is_savepoint"] and restored["external_path"].endswith(
        f"chk-{restored['id']}")
    overview = ok(f"{standby}/jobs/overview")["jobs"]
    assert [(j["jid"], j["state"], j["tasks"]["total"]) for j in overview] == [(job_id, "RUNNING", 4)]

    checkpoints = ok(f"{standby}/jobs/{job_id}/checkpoints")
    completed = [h for h in checkpoints["history"] if h["status"] == "COMPLETED"]
    # (hashmap state: each checkpoint writes all of it, so its checkpointed size is its full size)
    assert completed and all(h["state_size"] == h["checkpointed_size"] > 0
                             and h["num_acknowledged_subtasks"] == h["num_subtasks"] == 4
                             and h["external_path"].endswith(f"chk-{h['id']}") for h in completed)
    assert checkpoints["latest"]["completed"]["id"] == max(h["id"] for h in completed)
    assert checkpoints["summary"]["end_to_end_duration"]["max"] >= checkpoints["summary"]["end_to_end_duration"]["min"]
    config = ok(f"{standby}/jobs/{job_id}/checkpoints/config")
    assert config["interval"] == 200 and config["mode"] == "exactly_once"

    exceptions = ok(f"{standby}/jobs/{job_id}/exceptions")
    entry = exceptions["exceptionHistory"]["entries"][0]
    assert "failing once at 1000" in entry["stacktrace"] and entry["taskName"].startswith("Source: numbers")
    assert entry["endpoint"] == daemons["taskmanager"].address()
    assert ok(f"{standby}/jobs/{job_id}/config")["execution-config"]["restart-strategy"] == "fixed-delay"

    (tm,) = ok(f"{standby}/taskmanagers")["taskmanagers"]
    assert tm["slotsNumber"] == 2 and tm["freeSlots"] == 0
    details = ok(f"{standby}/taskmanagers/{tm['id']}")
    assert details["assignedTasks"] == 4 and [s["jobId"] for s in details["allocatedSlots"]] == [job_id]
    assert call(f"{standby}/taskmanagers/nope")[0] == 404

    # GET /cluster/ha is answered by the JobManager asked, with the election as ZooKeeper holds it
    ha = ok(f"{standby}/cluster/ha")
    assert ha["answered-by"]["role"] == "standby" and ha["zookeeper"]["state"] == "CONNECTED"
    assert ha["leader"]["rest-address"] == leader and ha["leader"]["session-id"]
    assert sorted((m["rest-address"], m["role"]) for m in ha["masters"]) == sorted(
        [(leader, "leader"), (standby, "standby")])
    assert ok(f"{leader}/cluster/ha")["answered-by"]["role"] == "leader"
    assert ok(f"{standby}/config")["refresh-interval"] == 1000  # answered by the standby itself
    assert {"id": "isLeader", "value": "1.0"} in ok(f"{standby}/jobmanager/metrics?get=isLeader,numRunningJobs")

    # Prometheus, with Flink's names, on every daemon
    jm = prometheus(daemons["leader"])
    assert sample(jm, "flink_jobmanager_isLeader") == [1.0]
    assert sample(jm, "flink_jobmanager_job_numRestarts", job_id=job_id) == [1.0]
    assert sample(jm, "flink_jobmanager_job_numberOfCompletedCheckpoints", job_id=job_id)[0] >= 2
    assert sample(jm, "flink_jobmanager_job_lastCheckpointSize", job_id=job_id)[0] > 0
    assert sample(jm, "flink_jobmanager_job_lastCheckpointFullSize", job_id=job_id)[0] >= \
        sample(jm, "flink_jobmanager_job_lastCheckpointSize", job_id=job_id)[0]
    assert sample(jm, "flink_jobmanager_job_lastCheckpointRestoreTimestamp", job_id=job_id)[0] > 0
    assert sample(jm, "flink_jobmanager_job_uptime", job_id=job_id)[0] > 0
    assert sample(jm, "flink_jobmanager_zooKeeperConnected") == [1.0]
    assert sample(prometheus(daemons["standby"]), "flink_jobmanager_isLeader") == [0.0]
    wait_for(lambda: sum(sample(prometheus(daemons["taskmanager"]), "flink_taskmanager_job_task_numRecordsOut",
                                job_id=job_id)) > 0, 10, what="the TaskManager's records out")
    back_pressure = sample(prometheus(daemons["taskmanager"]), "flink_taskmanager_job_task_backPressuredTimeMsPerSecond",
                           job_id=job_id)
    assert len(back_pressure) == 4 and all(0 <= v <= 1000 for v in back_pressure)


def test_savepoint_and_stop_over_rest_and_bad_requests_get_4xx(
        running_job: RunningJob, tmp_path: Path) -> None:
    cluster, daemons, job_id, _ = running_job
    standby = daemons["standby"].rest_address()
    wait_for(lambda: recovered(f"{standby}/jobs/{job_id}"), 60, what="the job's one failure behind it")

    def finished(trigger: str) -> dict[str, Any]:
        answers: list[Any] = []
        wait_for(lambda: answers.append(ok(f"{standby}/jobs/{job_id}/savepoints/{trigger}")) or
                 answers[-1]["status"]["id"] == "COMPLETED", 60, what=f"savepoint operation {trigger}")
        return answers[-1]["operation"]

    status, answer = call(f"{standby}/jobs/{job_id}/savepoints", "POST", {"target-directory": str(tmp_path / "sp")})
    assert status == 202, answer
    location = finished(answer["request-id"])["location"]
    assert (Path(location) / "_metadata").is_file() and Path(location).parent == tmp_path / "sp"
    history = ok(f"{standby}/jobs/{job_id}/checkpoints")["history"]
    assert any(h["is_savepoint"] and h["status"] == "COMPLETED" for h in history)

    # bad requests: a 4xx naming what was wrong, the job untouched
    assert call(f"{standby}/jobs/{job_id}/savepoints", "POST", {"cancel-job": "maybe"})[0] == 400
    assert call(f"{standby}/jobs/{job_id}/savepoints", "POST", {"no-such-field": 1})[0] == 400
    status, answer = call(f"{standby}/jobs/{job_id}?mode=terminate", "PATCH")
    assert status == 400 and "terminate" in answer["errors"][0]
    assert call(f"{standby}/jobs/{job_id}/savepoints/{'0' * 32}")[0] == 404
    assert call(f"{standby}/jobs/{'f' * 32}/stop", "POST", {})[0] == 404
    assert call(f"{standby}/jobs/{job_id}/exceptions?maxExceptions=-1")[0] == 400
    assert call(f"{standby}/no/such/path")[0] == 404
    assert ok(f"{standby}/jobs/{job_id}")["state"] == "RUNNING"

    status, answer = call(f"{standby}/jobs/{job_id}/stop", "POST", {"drain": "when convenient"})
    assert status == 400 and "drain" in answer["errors"][0]
    status, answer = call(f"{standby}/jobs/{job_id}/stop", "POST", {"targetDirectory": str(tmp_path / "stop"),
                                                                   "triggerId": "my-stop-1", "drain": True})
    assert status == 202 and answer == {"request-id": "my-stop-1"}  # Flink 1.15+: the caller's own id
    assert (Path(finished("my-stop-1")["location"]) / "_metadata").is_file()
    wait_for(lambda: ok(f"{standby}/jobs/{job_id}")["state"] == "FINISHED", 30, what="the job to finish")
    status, answer = call(f"{standby}/jobs/{job_id}/savepoints", "POST", {})
    assert status == 409 and "FINISHED" in answer["errors"][0]


def test_schemathesis_finds_no_server_error_in_the_served_openapi_spec(
        running_job: RunningJob, tmp_path: Path) -> None:
    cluster, daemons, job_id, _ = running_job
    # through the standby: every leader route is reached by forwarding, the local ones answer themselves
    for daemon in (daemons["standby"],):
        url = daemon.rest_address()
        spec = ok(f"{url}/openapi.json")
        assert {"/jobs/{job_id}/checkpoints", "/cluster/ha", "/jobs/{job_id}/savepoints"} <= set(spec["paths"])
        result = subprocess.run(
            [str(Path(sys.executable).with_name("schemathesis")), "run", f"{url}/openapi.json", "--checks",
             "not_a_server_error", "--max-examples", "6", "--no-color", "--seed", "1"],
            capture_output=True, text=True, timeout=300, cwd=tmp_path)  # (its cache folder goes there)
        assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    # the job survived the fuzzing (a random job id never matches) and every daemon is still up
    assert ok(f"{daemons['standby'].rest_address()}/jobs/{job_id}")["state"] == "RUNNING"
    assert all(d.process.poll() is None for d in daemons.values())


def test_cli_prints_the_dashboard_lists_a_table_shows_savepoint_progress_and_names_the_master(
        running_job: RunningJob, tmp_path: Path) -> None:
    cluster, daemons, job_id, run_output = running_job
    leader, standby = daemons["leader"].rest_address(), daemons["standby"].rest_address()
    assert f"Job has been submitted with JobID {job_id}" in run_output
    assert f"Dashboard: {leader}/#/jobs/{job_id}" in run_output
    wait_for(lambda: recovered(f"{leader}/jobs/{job_id}"), 60, what="the job's one failure behind it")

    listed = cluster.flink("list", "-m", standby.removeprefix("http://"))
    assert listed.returncode == 0, listed.stderr
    assert re.search(rf"^\d\d\.\d\d\.\d{{4}} \d\d:\d\d:\d\d : {job_id} : checkpointed count \((RUNNING|RESTARTING)\)$",
                     listed.stdout, re.M), listed.stdout

    saved = cluster.flink("savepoint", "-m", standby.removeprefix("http://"), job_id, str(tmp_path / "cli-sp"))
    assert saved.returncode == 0, saved.stdout + saved.stderr
    assert f"Triggered savepoint for job {job_id} at {standby}" in saved.stderr  # (progress: stdout is Flink's)
    path = saved.stdout.split("Savepoint completed. Path: ")[1].split()[0]
    assert (Path(path) / "_metadata").is_file()

    # errors name the JobManager asked and what it answered
    unknown = cluster.flink("savepoint", "f" * 32)  # (the leader, found in ZooKeeper)
    assert unknown.returncode == 1
    assert f"the JobManager at {leader} answered HTTP 404: Job {'f' * 32} not found" in unknown.stderr
    no_dir = cluster.flink("cancel", "-m", standby.removeprefix("http://"), "0" * 32)
    assert no_dir.returncode == 1 and f"the JobManager at {standby} answered HTTP 404" in no_dir.stderr
