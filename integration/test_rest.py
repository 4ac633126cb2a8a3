"""The REST API on a real HA cluster: the leader answers, a standby forwards to it, and without a leader
that answers the standby says so with 503."""

from __future__ import annotations

import json
import signal
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Callable

import cloudpickle

from ha_flink.datastream import StreamExecutionEnvironment
from ha_flink.testing.cluster import Cluster
from ha_flink.testing.processes import wait_for
from ha_flink.testing.zookeeper import ZooKeeperEnsemble
from ha_flink.testing.sinks import CollectSink, read_collected


def call(url: str, method: str = "GET", body: bytes | None = None) -> tuple[int, Any]:
    request = urllib.request.Request(url, data=body, method=method)
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, json.loads(answer.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


def test_leader_answers_standby_forwards_and_503_without_a_reachable_leader(
    cluster_factory: Callable[..., Cluster], tmp_path: Path
) -> None:
    cluster = cluster_factory()
    leader = cluster.start_leader()
    standby = cluster.start_jobmanager()
    cluster.start_taskmanager()
    wait_for(lambda: call(f"{leader.rest_address()}/overview")[1]["taskmanagers"] == 1, 20,
             what="the TaskManager to register")

    # Submit through the standby: it forwards to the leader.
    env = StreamExecutionEnvironment.get_execution_environment()
    env.from_collection([1, 2, 3]).map(lambda x: x * 10).add_sink(CollectSink(tmp_path / "out"))
    graph = env.get_job_graph("rest job")
    status, answer = call(f"{standby.rest_address()}/jobs", "POST", cloudpickle.dumps(graph))
    assert status == 202 and answer == {"jobid": graph.job_id}
    wait_for(lambda: call(f"{standby.rest_address()}/jobs/{graph.job_id}")[1]["state"] == "FINISHED", 30,
             what="the job to finish")
    assert sorted(read_collected(tmp_path / "out")) == [10, 20, 30]
    assert call(f"{leader.rest_address()}/overview")[1]["jobs-finished"] == 1
    assert call(f"{standby.rest_address()}/jobs/nope")[0] == 404
    config = dict((e["key"], e["value"]) for e in call(f"{leader.rest_address()}/jobmanager/config")[1])
    assert config["high-availability.type"] == "zookeeper"

    # The leader dies; until its session expires the standby cannot reach a leader: a clear 503.
    leader.kill(signal.SIGKILL)
    status, answer = call(f"{standby.rest_address()}/overview")
    assert status == 503 and "does not answer" in answer["errors"][0]
    wait_for(lambda: call(f"{standby.rest_address()}/overview")[0] == 200, 30, what="the standby to lead")


def test_flink_cli_with_m_talks_rest_to_any_jobmanager(cluster_factory: Callable[..., Cluster], tmp_path: Path) -> None:
    cluster = cluster_factory()
    cluster.start_leader()
    standby = cluster.start_jobmanager()
    cluster.start_taskmanager()
    rest = standby.rest_address().removeprefix("http://")
    script = Path(__file__).resolve().parent / "word_count_job.py"
    result = cluster.flink("run", "-m", rest, "-py", str(script), str(tmp_path / "out"), "20")
    assert result.returncode == 0, result.stdout + result.stderr
    job_id = cluster.job_id(result)
    assert "has finished" in result.stdout
    listed = cluster.flink("list", "-m", rest)
    assert listed.returncode == 0 and "No running jobs." in listed.stdout
    unknown = cluster.flink("cancel", "-m", rest, "0" * 32)
    assert unknown.returncode == 1 and "HTTP 404" in unknown.stderr
    assert job_id


def test_cluster_ha_answers_with_zookeeper_down_and_shows_the_cluster_coming_back(
    zookeeper_factory: Callable[[int], ZooKeeperEnsemble], tmp_path: Path
) -> None:
    """With ZooKeeper gone every JobManager still answers /cluster/ha (saying what it cannot know and why),
    nobody leads (503 elsewhere), and once ZooKeeper is back a leader is elected and listed again."""
    ensemble = zookeeper_factory(1)  # this test's own: it is stopped and started again
    cluster = Cluster(tmp_path / "cluster", ensemble.connect_string, {})
    cluster.write_conf()
    try:
        daemons = [cluster.start_leader(), cluster.start_jobmanager()]
        wait_for(lambda: len(call(f"{daemons[1].rest_address()}/cluster/ha")[1]["masters"]) == 2, 30,
                 what="both JobManagers listed")

        ensemble.stop()
        for daemon in daemons:
            def cut_off(url: str = f"{daemon.rest_address()}/cluster/ha") -> dict[str, Any] | None:
                status, body = call(url)
                assert status == 200, body
                return body if body["zookeeper"]["state"] != "CONNECTED" and body["leader"] is None else None

            body = wait_for(cut_off, 30, 0.1, "the JobManager to see ZooKeeper gone")
            assert "ZooKeeper connection is" in body["masters-error"] and body["masters"] == []
            assert body["answered-by"]["role"] == "standby" and body["election-in-progress"]
            status, answer = call(f"{daemon.rest_address()}/overview")
            assert status == 503 and answer["errors"], answer

        ensemble.start()

        def led_again() -> dict[str, Any] | None:
            status, body = call(f"{daemons[1].rest_address()}/cluster/ha")
            return body if status == 200 and body["leader"] and len(body["masters"]) == 2 else None

        body = wait_for(led_again, 60, 0.2, "a leader elected once ZooKeeper is back")
        assert body["zookeeper"]["state"] == "CONNECTED" and body["masters-error"] is None
        assert sorted(m["role"] for m in body["masters"]) == ["leader", "standby"]
    finally:
        cluster.close()
