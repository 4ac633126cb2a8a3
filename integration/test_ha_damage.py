"""A careless or hostile operator against a real HA cluster (real ZooKeeper, files, processes, signals):
handle files deleted or truncated, checkpoint pointers garbled, a job-graph node or the whole latch folder
deleted, the HA storage made read-only, a damaged latest checkpoint. Each ends in exact recovery or in a
visible, named failure with the checkpoints kept: never in a job that quietly starts again from empty state
or vanishes."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Callable

import pytest
from kazoo.client import KazooClient

from ha_flink.ha import paths
from ha_flink.ha.state_handle_store import ZooKeeperStateHandleStore
from ha_flink.testing.cluster import Cluster, DaemonProcess
from ha_flink.testing.processes import wait_for
from ha_flink.testing.zookeeper import ZooKeeperEnsemble, delete_tree_at_once

from .test_checkpoints import JOB, completed_ids, final_counts

RESTARTS = {"restart-strategy.type": "fixed-delay", "restart-strategy.fixed-delay.attempts": "100",
            "restart-strategy.fixed-delay.delay": "100 ms"}
N, RATE = 24000, 3000  # 8 s of numbers (the damage comes within the first 2), counted per n % 10


def rest(daemon: DaemonProcess, path: str) -> Any:
    with urllib.request.urlopen(f"{daemon.rest_address()}{path}", timeout=10) as answer:
        return json.load(answer)


def exceptions(daemon: DaemonProcess, job_id: str) -> list[dict[str, Any]]:
    return rest(daemon, f"/jobs/{job_id}/exceptions")["exceptionHistory"]["entries"]


def finished(cluster: Cluster, job_id: str) -> bool:
    return '"status": "FINISHED"' in cluster.job_result(job_id)


def start(cluster: Cluster, out: Path, n: int = N) -> tuple[DaemonProcess, DaemonProcess, str]:
    """A leader, a standby, two TaskManagers, and the counting job, once it has completed 3 checkpoints."""
    first = cluster.start_leader()
    standby = cluster.start_jobmanager()
    cluster.start_taskmanager()
    cluster.start_taskmanager()
    submitted = cluster.flink("run", "-d", "-py", JOB, str(out), str(n), str(RATE), "-1")
    assert submitted.returncode == 0, submitted.stdout + submitted.stderr
    wait_for(lambda: len(completed_ids(first.output())) >= 3, 30, what="three completed checkpoints")
    return first, standby, cluster.job_id(submitted)


def latest_committed(client: KazooClient, cluster: Cluster, job_id: str) -> tuple[int, str, Path]:
    """The latest checkpoint in ZooKeeper: its id, its node and its handle file."""
    root = paths.checkpoints(cluster.zookeeper_base, job_id)
    name = max(client.get_children(root))
    node = paths.join(root, name)
    url = ZooKeeperStateHandleStore.pointer_url(client.get(node)[0])
    return int(name), node, Path(url.removeprefix("file://"))


def restored(daemon: DaemonProcess) -> list[int]:
    return [int(m) for m in re.findall(r"restores checkpoint (\d+)", daemon.output())]


@pytest.mark.parametrize("damage", ["handle deleted", "handle truncated", "pointer garbled"])
def test_a_damaged_latest_handle_then_a_leader_kill_restores_that_checkpoint_exactly(
    cluster_factory: Callable[..., Cluster], kazoo_factory: Callable[..., KazooClient],
    zookeeper: ZooKeeperEnsemble, tmp_path: Path, damage: str,
) -> None:
    cluster = cluster_factory(**RESTARTS)
    out = tmp_path / "out"
    first, standby, job_id = start(cluster, out)
    client = kazoo_factory(zookeeper)
    first.kill(signal.SIGSTOP)  # no checkpoint completes (or subsumes the damaged one) from here on
    latest, node, handle = latest_committed(client, cluster, job_id)
    if damage == "handle deleted":
        handle.unlink()
    elif damage == "handle truncated":
        handle.write_bytes(handle.read_bytes()[:40])
    else:
        client.set(node, b"\x00garbled by a stranger")
    first.kill(signal.SIGKILL)
    first.process.wait(10)

    wait_for(lambda: finished(cluster, job_id), 60, what="the job to finish under the new leader")
    assert restored(standby)[0] == latest  # that very checkpoint: no progress lost, nothing replayed twice
    assert final_counts(out) == {k: N // 10 for k in range(10)}
    assert "rebuilt from its own" in standby.output() and node in standby.output()
    names = [entry["exceptionName"] for entry in exceptions(standby, job_id)]
    assert "CheckpointHandleRepaired" in names


def test_a_deleted_job_graph_node_then_a_leader_kill_readopts_the_job(
    cluster_factory: Callable[..., Cluster], kazoo_factory: Callable[..., KazooClient],
    zookeeper: ZooKeeperEnsemble, tmp_path: Path,
) -> None:
    cluster = cluster_factory(**RESTARTS)
    out = tmp_path / "out"
    first, standby, job_id = start(cluster, out)
    client = kazoo_factory(zookeeper)
    delete_tree_at_once(client, paths.join(paths.job_graphs(cluster.zookeeper_base), job_id))
    graph_files = list(cluster.ha_storage.glob("submittedJobGraph*"))
    assert len(graph_files) == 1
    first.kill(signal.SIGKILL)
    first.process.wait(10)

    wait_for(lambda: finished(cluster, job_id), 60, what="the re-adopted job to finish under the new leader")
    assert f"Job {job_id}: its job graph node was gone from ZooKeeper" in standby.output()
    assert str(graph_files[0].name) in standby.output()
    assert restored(standby), "the re-adopted job restored its latest checkpoint"
    assert final_counts(out) == {k: N // 10 for k in range(10)}


def test_the_latch_folder_deleted_the_election_goes_on_and_the_next_leader_kill_is_survived(
    cluster_factory: Callable[..., Cluster], kazoo_factory: Callable[..., KazooClient],
    zookeeper: ZooKeeperEnsemble, tmp_path: Path,
) -> None:
    cluster = cluster_factory(**RESTARTS)
    out = tmp_path / "out"
    first, standby, job_id = start(cluster, out, n=30000)
    client = kazoo_factory(zookeeper)
    latch = paths.latch_dir(cluster.zookeeper_base)
    delete_tree_at_once(client, latch)  # a stray `deleteall`
    # Both JobManagers rejoin, one leads (the old leader gave up at once) and the job checkpoints again.
    wait_for(lambda: client.exists(latch) and len(client.get_children(latch)) == 2, 20,
             what="both JobManagers back in the election")
    # (it finds its node gone, or the whole folder if it looks before anyone has made it anew)
    wait_for(lambda: re.search(r"lost leadership \S+: (the latch folder|latch node) \S+ vanished", first.output()),
             10, what="the old leader to give up")
    leading = wait_for(lambda: next((d for d in (first, standby)
                                     if rest(d, "/cluster/ha")["answered-by"]["role"] == "leader"), None),
                       20, what="a leader again")
    before = len(completed_ids(leading.output()))
    wait_for(lambda: len(completed_ids(leading.output())) > before, 30, what="a checkpoint under the leader")
    other = standby if leading is first else first
    leading.kill(signal.SIGKILL)  # and after that one dies, the other still takes over
    leading.process.wait(10)
    wait_for(lambda: finished(cluster, job_id), 90, what="the job to finish under the last JobManager")
    assert restored(other)
    assert final_counts(out) == {k: 30000 // 10 for k in range(10)}


def test_a_leader_whose_latch_node_is_deleted_lives_on_holding_nothing_the_next_leader_needs(
    cluster_factory: Callable[..., Cluster], kazoo_factory: Callable[..., KazooClient],
    zookeeper: ZooKeeperEnsemble, tmp_path: Path,
) -> None:
    cluster = cluster_factory(**RESTARTS)
    out = tmp_path / "out"
    first, standby, job_id = start(cluster, out)
    client = kazoo_factory(zookeeper)
    latch = paths.latch_dir(cluster.zookeeper_base)
    [own] = [name for name in client.get_children(latch) if client.get(f"{latch}/{name}")[0].find(
        f'"pid": "{first.pid}"'.encode()) >= 0]
    client.delete(f"{latch}/{own}")  # it gives up and joins again behind the standby, which leads
    wait_for(lambda: finished(cluster, job_id), 60, what="the job to finish under the standby")
    assert restored(standby) and final_counts(out) == {k: N // 10 for k in range(10)}
    # The old leader, still alive with its ZooKeeper session, let go of its locks on the job graph and the
    # checkpoints: the new leader subsumes those checkpoints and cleans the finished job up completely.
    wait_for(lambda: list((cluster.directory / "ha" / "job-result-store").rglob(f"{job_id}.json")), 30,
             what="the job's clean result")
    assert client.exists(paths.job_dir(cluster.zookeeper_base, job_id)) is None
    assert not list(cluster.ha_storage.glob("completedCheckpoint*"))
    assert "still held" not in standby.output() and "still locked" not in standby.output()


def test_read_only_ha_storage_declines_checkpoints_counted_then_they_complete_again(
    cluster_factory: Callable[..., Cluster], tmp_path: Path,
) -> None:
    cluster = cluster_factory(**RESTARTS, **{"execution.checkpointing.tolerable-failed-checkpoints": "2"})
    out = tmp_path / "out"
    n = 24000
    first, _, job_id = start(cluster, out, n=n)
    folder = cluster.ha_storage
    if subprocess.run(["chattr", "+i", str(folder)], capture_output=True).returncode != 0:
        pytest.skip(f"chattr +i (a folder even root cannot write) is not supported for {folder}")
    try:
        def declined() -> list[dict[str, Any]]:
            history = rest(first, f"/jobs/{job_id}/checkpoints")["history"]
            return [c for c in history if "handle could not be written" in (c.get("failure_message") or "")]

        wait_for(lambda: len(declined()) >= 3, 30, what="three declined checkpoints")
        counts = rest(first, f"/jobs/{job_id}/checkpoints")["counts"]
        assert counts["failed"] >= 3
        assert "nothing was committed" in declined()[0]["failure_message"]
        assert "commit outcome unknown" not in first.output()
        # past the tolerance of 2 the job fails over (restarts from its latest checkpoint), as Flink does
        wait_for(lambda: any("tolerable failure threshold" in e["stacktrace"] for e in exceptions(first, job_id)),
                 30, what="a failover past the tolerable failed checkpoints")
    finally:
        subprocess.run(["chattr", "-i", str(folder)], check=True)
    wait_for(lambda: finished(cluster, job_id), 90, what="the job to finish once the storage is writable again")
    assert final_counts(out) == {k: n // 10 for k in range(10)}


@pytest.mark.parametrize("damage", ["_metadata", "state file"])
def test_a_damaged_latest_checkpoint_falls_back_to_the_older_retained_one_and_says_so(
    cluster_factory: Callable[..., Cluster], kazoo_factory: Callable[..., KazooClient],
    zookeeper: ZooKeeperEnsemble, tmp_path: Path, damage: str,
) -> None:
    cluster = cluster_factory(**RESTARTS, **{"execution.checkpointing.num-retained": "2"})
    out = tmp_path / "out"
    first, standby, job_id = start(cluster, out)
    client = kazoo_factory(zookeeper)
    first.kill(signal.SIGSTOP)
    latest, _, _ = latest_committed(client, cluster, job_id)
    older = int(sorted(client.get_children(paths.checkpoints(cluster.zookeeper_base, job_id)))[-2])
    folder = cluster.directory / "ha" / "checkpoints" / job_id / f"chk-{latest}"
    victim = folder / "_metadata" if damage == "_metadata" else sorted(p for p in folder.iterdir()
                                                                       if p.name != "_metadata")[0]
    victim.write_bytes(victim.read_bytes()[:-3])
    first.kill(signal.SIGKILL)
    first.process.wait(10)

    wait_for(lambda: finished(cluster, job_id), 60, what="the job to finish from the older checkpoint")
    # the state file is read by the TaskManager: its restore of the latest fails first (DATA_LOSS), then the job
    # (a restart for another reason, such as a task failing as the deployment of its upstream failed, tries
    # the same again)
    tried = restored(standby)
    assert tried[0] == (older if damage == "_metadata" else latest) and tried[-1] == older
    assert set(tried) <= {latest, older}
    assert final_counts(out) == {k: N // 10 for k in range(10)}
    fallback = [e for e in exceptions(standby, job_id) if e["exceptionName"] == "CheckpointRestoreFallback"]
    assert len(fallback) == 1
    assert f"restores checkpoint {older}, the latest of the 2 retained" in fallback[0]["stacktrace"]
    assert f"chk-{latest}/{victim.name}" in fallback[0]["stacktrace"]


def test_a_failed_job_keeps_its_checkpoints_and_flink_run_s_resumes_from_the_latest(
    cluster_factory: Callable[..., Cluster], tmp_path: Path,
) -> None:
    cluster = cluster_factory(**{"restart-strategy.type": "none"})
    leader = cluster.start_leader()
    cluster.start_taskmanager()
    n, out = 8000, tmp_path / "out"
    submitted = cluster.flink("run", "-d", "-py", JOB, str(out), str(n), str(RATE), str(n * 3 // 4))
    assert submitted.returncode == 0, submitted.stdout + submitted.stderr
    job_id = cluster.job_id(submitted)
    wait_for(lambda: '"status": "FAILED"' in cluster.job_result(job_id), 60, what="the job to fail")
    result = json.loads(cluster.job_result(job_id))
    latest = result["latest_checkpoint"]
    assert result["checkpoints_kept"] and latest and Path(latest.removeprefix("file://"), "_metadata").exists()
    # (the Dispatcher says so as it cleans up, just after it wrote the result this test read)
    wait_for(lambda: "its checkpoints are kept in" in leader.output() and f"flink run -s {latest}" in leader.output(),
             10, what="the JobManager to name the checkpoint to resume from")

    resumed = cluster.flink("run", "-s", latest, "-py", JOB, str(out), str(n), str(RATE), "-1", timeout=120)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert final_counts(out) == {k: n // 10 for k in range(10)}  # counted on from the checkpoint, not from 0
    assert f"restores savepoint {latest}" in leader.output()


def test_a_job_whose_graph_cannot_be_read_is_listed_and_retried_and_a_lost_one_fails_visibly(
    cluster_factory: Callable[..., Cluster], kazoo_factory: Callable[..., KazooClient],
    zookeeper: ZooKeeperEnsemble, tmp_path: Path,
) -> None:
    cluster = cluster_factory(**RESTARTS)
    first = cluster.start_leader()
    standby = cluster.start_jobmanager()
    cluster.start_taskmanager()
    cluster.start_taskmanager()
    jobs = {}
    # parallelism 1: three jobs in the four slots; none can end before the damage (30 s at 1,000 records/s,
    # the other two never)
    for name, n in (("waits", 30000), ("cancelled", 10**9), ("lost", 10**9)):
        submitted = cluster.flink("run", "-d", "-py", JOB, str(tmp_path / name), str(n), "1000", "-1", "1")
        assert submitted.returncode == 0, submitted.stdout + submitted.stderr
        jobs[name] = cluster.job_id(submitted)
    wait_for(lambda: all(f"of job {job_id}" in first.output() for job_id in jobs.values()), 30,
             what="a checkpoint of each job")
    client = kazoo_factory(zookeeper)
    graphs = paths.job_graphs(cluster.zookeeper_base)

    def graph_file(job_id: str) -> Path:
        return Path(ZooKeeperStateHandleStore.pointer_url(client.get(paths.join(graphs, job_id))[0])
                    .removeprefix("file://"))

    first.kill(signal.SIGSTOP)
    waits, cancelled = graph_file(jobs["waits"]), graph_file(jobs["cancelled"])
    waits.rename(tmp_path / "away")  # unreadable for a while (an outage, a restore from backup)
    cancelled.unlink()
    delete_tree_at_once(client, paths.join(graphs, jobs["lost"]))  # the node gone, and no copy of it left
    client.set(paths.job_dir(cluster.zookeeper_base, jobs["lost"]), b"")
    first.kill(signal.SIGKILL)
    first.process.wait(10)

    wait_for(lambda: "Job recovery done" in standby.output(), 30, what="the new leader's recovery")
    listed = cluster.flink("list", "-a")
    assert listed.returncode == 0, listed.stderr
    # Flink's lines, "<date> <time> : <jobid> : <name> (<STATE>)"
    rows = {line.split(" : ")[1]: line for line in listed.stdout.splitlines()
            if line.count(" : ") >= 2 and line.split(" : ")[1] in jobs.values()}
    assert "INITIALIZING" in rows[jobs["waits"]] and "INITIALIZING" in rows[jobs["cancelled"]]
    assert "FAILED" in rows[jobs["lost"]]
    with pytest.raises(urllib.error.HTTPError) as answer:
        rest(standby, f"/jobs/{jobs['waits']}")
    assert answer.value.code == 503 and waits.name in answer.value.read().decode()
    lost = json.loads(cluster.job_result(jobs["lost"]))
    assert lost["status"] == "FAILED" and "was lost" in lost["error"] and "holds no copy of its pointer" in lost["error"]
    assert (cluster.directory / "ha" / "checkpoints" / jobs["lost"]).is_dir()  # a FAILED job keeps its checkpoints

    cancel = cluster.flink("cancel", jobs["cancelled"])
    assert cancel.returncode == 0, cancel.stdout + cancel.stderr
    wait_for(lambda: '"status": "CANCELED"' in cluster.job_result(jobs["cancelled"]), 30, what="the cancel")
    (tmp_path / "away").rename(waits)  # back: the next retry recovers the job, which runs to its end
    wait_for(lambda: finished(cluster, jobs["waits"]), 120, what="the job once its graph is readable again")
    assert final_counts(tmp_path / "waits") == {k: 3000 for k in range(10)}
