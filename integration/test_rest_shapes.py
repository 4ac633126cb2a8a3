"""Every GET endpoint Flink 2.3 defines (its own MessageHeaders classes, listed from its jar) answers on a
real ha-flink HA cluster, through the standby, with a body Flink's own response class reads under Flink's
strict REST mapper, as Flink's RestClient would. The few endpoints left out are named, with why, below
(and in the README); one of them answering would fail the test, as would a new one of Flink's."""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Callable

import pytest

from ha_flink.testing.cluster import Cluster
from ha_flink.testing.processes import wait_for
from ha_flink.testing.pyflink_wheel import PyFlinkUnavailable
from ha_flink.testing.rest_shapes import RestShapeJudge, rest_shape_judge

JOB = Path(__file__).resolve().parent / "checkpointed_count_job.py"

# Flink's endpoints a standalone session cluster of ha-flink does not serve (404), and why.
LEFT_OUT = {
    "/applications/overview": "Flink 2.3's application mode (ApplicationDispatcher): ha-flink runs session clusters",
    "/applications/:applicationid": "application mode",
    "/applications/:applicationid/exceptions": "application mode",
    "/applications/:applicationid/jobmanager/config": "application mode",
    "/jobmanager/profiler": "async-profiler is a JVM agent; there is no JVM to profile",
    "/taskmanagers/:taskmanagerid/profiler": "async-profiler is a JVM agent",
    "/jobs/:jobid/rescales/config": "adaptive-scheduler rescale history: ha-flink's scheduler does not rescale a "
                                    "running job",
    "/jobs/:jobid/rescales/details/:rescaleuuid": "adaptive-scheduler rescale history",
    "/jobs/:jobid/rescales/history": "adaptive-scheduler rescale history",
    "/jobs/:jobid/rescales/overview": "adaptive-scheduler rescale history",
    "/jobs/:jobid/rescales/summary": "adaptive-scheduler rescale history",
    "/jobs/:jobid/rescaling/:triggerid": "rescaling a running job (Flink's legacy scheduler refuses it too)",
    "/jobs/:jobid/vertices/:vertexid/jm-operator-metrics": "operator coordinators' metrics: ha-flink's sources "
                                                           "have no JobManager-side coordinator",
}


def get(url: str) -> tuple[int, Any]:
    try:
        with urllib.request.urlopen(url, timeout=15) as answer:
            return answer.status, json.loads(answer.read() or b"null")
    except urllib.error.HTTPError as error:
        body = error.read()
        try:
            return error.code, json.loads(body or b"null")
        except json.JSONDecodeError:
            return error.code, body.decode(errors="replace")


def post(url: str, body: Any) -> Any:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                     headers={"content-type": "application/json"})
    with urllib.request.urlopen(request, timeout=15) as answer:
        return json.loads(answer.read())


@pytest.fixture(scope="module")
def judge(tmp_path_factory: pytest.TempPathFactory) -> RestShapeJudge:
    try:
        return rest_shape_judge(tmp_path_factory.mktemp("rest-shapes"))
    except PyFlinkUnavailable as error:
        pytest.skip(f"Flink's REST message classes cannot be run here: {error}")


def test_every_flink_endpoint_answers_with_the_shape_flinks_client_reads(
        judge: RestShapeJudge, cluster_factory: Callable[..., Cluster], tmp_path: Path) -> None:
    cluster = cluster_factory(**{"state.savepoints.dir": f"file://{tmp_path}/savepoints"})
    leader = cluster.start_leader()
    standby = cluster.start_jobmanager()
    cluster.start_taskmanager()
    submitted = cluster.flink("run", "-d", "-py", str(JOB), str(tmp_path / "out"), "1000000", "200", "-1")
    assert submitted.returncode == 0, submitted.stdout + submitted.stderr
    job_id = cluster.job_id(submitted)
    rest = standby.rest_address() or ""
    wait_for(lambda: get(f"{rest}/jobs/{job_id}/checkpoints")[1].get("counts", {}).get("completed", 0) >= 1, 60,
             what="a completed checkpoint")
    job = get(f"{rest}/jobs/{job_id}")[1]
    vertex = job["vertices"][-1]["id"]
    checkpoint = get(f"{rest}/jobs/{job_id}/checkpoints")[1]["latest"]["completed"]["id"]
    taskmanager = get(f"{rest}/taskmanagers")[1]["taskmanagers"][0]["id"]
    savepoint_trigger = post(f"{rest}/jobs/{job_id}/savepoints", {"cancel-job": False})["request-id"]
    checkpoint_trigger = post(f"{rest}/jobs/{job_id}/checkpoints", {})["request-id"]
    wait_for(lambda: get(f"{rest}/jobs/{job_id}/savepoints/{savepoint_trigger}")[1]["status"]["id"] == "COMPLETED",
             60, what="the savepoint")
    location = get(f"{rest}/jobs/{job_id}/savepoints/{savepoint_trigger}")[1]["operation"]["location"]
    disposal_trigger = post(f"{rest}/savepoint-disposal", {"savepoint-path": location})["request-id"]
    values = {"jobid": job_id, "vertexid": vertex, "checkpointid": str(checkpoint), "taskmanagerid": taskmanager,
              "subtaskindex": "0", "attempt": "0"}
    triggers = {"savepoints": savepoint_trigger, "checkpoints": checkpoint_trigger,
                "savepoint-disposal": disposal_trigger}

    def concrete(template: str) -> str:
        def value(match: re.Match[str]) -> str:
            name = match.group(1)
            if name == "triggerid":
                return triggers.get(template.strip("/").split("/")[-2], "x")
            return values.get(name, "x")
        return re.sub(r":(\w+)", value, template)

    answers, problems = {}, []
    endpoints = [(m, t) for m, t in judge.endpoints() if m == "GET"]
    assert len(endpoints) > 50 and ("GET", "/jobs/:jobid/vertices/:vertexid/backpressure") in endpoints
    for method, template in endpoints:
        url = rest + concrete(template)
        status, body = get(url)
        if template in LEFT_OUT:
            if status != 404:
                problems.append(f"{template}: left out as {LEFT_OUT[template]!r}, but answers {status}")
            continue
        if status != 200:
            problems.append(f"GET {template} ({url}): {status} {str(body)[:300]}")
            continue
        answers[(method, template)] = body
    # endpoints whose headers Flink builds per request (not in its list): their response classes by name
    for template, response_class in (
            ("/jobs/:jobid/resource-requirements", "org.apache.flink.runtime.rest.messages.job.JobResourceRequirementsBody"),
            ("/jobs/:jobid/vertices/:vertexid/watermarks", "org.apache.flink.runtime.rest.messages.job.metrics."
                                                           "MetricCollectionResponseBody")):
        status, body = get(rest + concrete(template))
        assert status == 200, f"GET {template}: {status} {body}"
        answers[("CLASS", response_class)] = body
    for (method, template), verdict in judge.judge(answers).items():
        if verdict != "OK":
            problems.append(f"GET {template}: Flink's client cannot read it: {verdict[:400]}")
    assert not problems, f"{len(problems)} of {len(endpoints)} endpoints:\n" + "\n".join(problems)
    # Flink's watermarks endpoint (its headers take parameters: not in the list above): each subtask's
    # currentInputWatermark, Long.MIN_VALUE in a job without watermarks, as Flink shows it
    status, marks = get(f"{rest}/jobs/{job_id}/vertices/{vertex}/watermarks")
    parallelism = job["vertices"][-1]["parallelism"]
    assert status == 200 and [m["id"] for m in marks] == [f"{i}.currentInputWatermark" for i in range(parallelism)]
    assert all(int(m["value"]) == -2 ** 63 for m in marks), marks
    assert leader.rest_address()
