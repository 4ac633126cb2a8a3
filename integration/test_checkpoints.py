"""Checkpoints on a real HA cluster: recovery from the latest completed checkpoint after a task failure and
after the leader is killed; the keyed state comes back exactly (no count lost or doubled)."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import threading
import urllib.request
from pathlib import Path
from typing import Callable

import pytest

from ha_flink.testing.cluster import Cluster
from ha_flink.testing.processes import wait_for
from ha_flink.testing.sinks import read_collected

HERE = Path(__file__).resolve().parent
JOB = str(HERE / "checkpointed_count_job.py")
FAST_RESTARTS = {"restart-strategy.type": "fixed-delay", "restart-strategy.fixed-delay.attempts": "5",
                 "restart-strategy.fixed-delay.delay": "100 ms"}


def final_counts(out: Path) -> dict[int, int]:
    counts: dict[int, int] = {}
    for key, count in read_collected(out):
        counts[key] = max(counts.get(key, 0), count)
    return counts


def completed_ids(log: str) -> list[int]:
    return [int(m) for m in re.findall(r"Completed checkpoint (\d+) of job", log)]


def last_completed_after(sig: int, log: str) -> set[int]:
    """The checkpoint a new leader must restore: the last one the old leader completed. A SIGKILL can land
    between the commit in ZooKeeper and the log line that reports it, so then the next id is right too."""
    last = max(completed_ids(log))
    return {last, last + 1} if sig == signal.SIGKILL else {last}


def test_a_task_failure_restores_the_latest_checkpoint_exactly(cluster_factory: Callable[..., Cluster],
                                                               tmp_path: Path) -> None:
    cluster = cluster_factory(**FAST_RESTARTS)
    leader = cluster.start_jobmanager()
    cluster.start_taskmanager()
    cluster.start_taskmanager()
    n, out = 8000, tmp_path / "out"
    result = cluster.flink("run", "-py", JOB, str(out), str(n), "3000", str(n * 3 // 4), timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    log = leader.output()
    restored = int(re.search(r"restores checkpoint (\d+)", log).group(1))
    completed = completed_ids(log)
    assert completed == sorted(completed) and len(set(completed)) == len(completed)  # strictly increasing
    assert restored in completed and restored == max(c for c in completed if log.index(
        f"Completed checkpoint {c} of job") < log.index("restores checkpoint"))
    assert final_counts(out) == {k: n // 10 for k in range(10)}
    # no key's count started over after the restart: the state came from the checkpoint
    firsts = [count for key, count in read_collected(out) if count == 1]
    assert len(firsts) == 10
    # a FINISHED job's checkpoint folders and HA files are gone
    assert not list((cluster.directory / "ha" / "checkpoints").rglob("chk-*"))
    assert not list((cluster.directory / "ha").rglob("completedCheckpoint*"))


def test_leader_sigkill_the_new_leader_restores_the_last_completed_checkpoint(
    cluster_factory: Callable[..., Cluster], tmp_path: Path
) -> None:
    cluster = cluster_factory(**FAST_RESTARTS)
    first = cluster.start_leader()
    standby = cluster.start_jobmanager()
    cluster.start_taskmanager()
    cluster.start_taskmanager()
    n, out = 12000, tmp_path / "out"
    submitted = cluster.flink("run", "-d", "-py", JOB, str(out), str(n), "3000", "-1")
    assert submitted.returncode == 0, submitted.stderr
    job_id = cluster.job_id(submitted)
    wait_for(lambda: len(completed_ids(first.output())) >= 3, 30, what="a few completed checkpoints")
    first.kill(signal.SIGKILL)
    first.process.wait(10)
    wait_for(lambda: "restores checkpoint" in standby.output(), 30, what="the new leader to restore")
    restored = int(re.search(r"restores checkpoint (\d+)", standby.output()).group(1))
    assert restored in last_completed_after(signal.SIGKILL, first.output())
    wait_for(lambda: '"status": "FINISHED"' in cluster.job_result(job_id), 60, what="the job to finish under the new leader")
    assert final_counts(out) == {k: n // 10 for k in range(10)}
    new_ids = completed_ids(standby.output())
    assert all(i > restored for i in new_ids)  # ids keep increasing across the leader change


def committed_numbers(out: Path) -> list[int]:
    numbers: list[int] = []
    for path in out.iterdir():
        if path.name.startswith("part-"):
            numbers += [int(line) for line in path.read_text().split()]
    return sorted(numbers)


def test_two_phase_commit_file_output_is_exactly_once_across_a_task_failure(
    cluster_factory: Callable[..., Cluster], tmp_path: Path
) -> None:
    cluster = cluster_factory(**FAST_RESTARTS)
    leader = cluster.start_jobmanager()
    cluster.start_taskmanager()
    n, out = 6000, tmp_path / "out"
    result = cluster.flink("run", "-py", str(HERE / "exactly_once_file_job.py"), str(out), str(n), "3000",
                           str(n // 2), timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "restores checkpoint" in leader.output()
    assert committed_numbers(out) == list(range(1, n + 1))  # none lost, none twice
    assert not [p for p in out.iterdir() if ".inprogress." in p.name]


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["sigkill", "sigterm"])
def test_two_phase_commit_file_output_is_exactly_once_across_a_leader_change(
    cluster_factory: Callable[..., Cluster], tmp_path: Path, sig: int
) -> None:
    cluster = cluster_factory(**FAST_RESTARTS)
    first = cluster.start_leader()
    standby = cluster.start_jobmanager()
    cluster.start_taskmanager()
    n, out = 9000, tmp_path / "out"
    submitted = cluster.flink("run", "-d", "-py", str(HERE / "exactly_once_file_job.py"), str(out), str(n),
                              "3000", "-1")
    assert submitted.returncode == 0, submitted.stderr
    job_id = cluster.job_id(submitted)
    wait_for(lambda: len(completed_ids(first.output())) >= 2, 30, what="completed checkpoints")
    first.kill(sig)  # SIGTERM: graceful, the standby takes over at once; neither deletes anything
    first.process.wait(15)
    wait_for(lambda: '"status": "FINISHED"' in cluster.job_result(job_id), 60, what="the job to finish under the new leader")
    restored = int(re.search(r"restores checkpoint (\d+)", standby.output()).group(1))
    assert restored in last_completed_after(sig, first.output())
    assert committed_numbers(out) == list(range(1, n + 1))


def test_a_killed_taskmanager_restores_exactly_on_a_replacement(cluster_factory: Callable[..., Cluster],
                                                                 tmp_path: Path) -> None:
    cluster = cluster_factory(**FAST_RESTARTS, **{"taskmanager.numberOfTaskSlots": "1"})
    leader = cluster.start_jobmanager()
    cluster.start_taskmanager()
    doomed = cluster.start_taskmanager()
    n, out = 9000, tmp_path / "out"
    submitted = cluster.flink("run", "-d", "-py", str(HERE / "exactly_once_file_job.py"), str(out), str(n),
                              "3000", "-1")
    assert submitted.returncode == 0, submitted.stderr
    job_id = cluster.job_id(submitted)
    wait_for(lambda: len(completed_ids(leader.output())) >= 2, 30, what="completed checkpoints")
    doomed.kill(signal.SIGKILL)
    cluster.start_taskmanager()  # the replacement
    wait_for(lambda: '"status": "FINISHED"' in cluster.job_result(job_id), 60, what="the job to finish")
    assert "restores checkpoint" in leader.output()
    assert committed_numbers(out) == list(range(1, n + 1))


def test_an_unreadable_latest_checkpoint_fails_the_job_naming_the_file(cluster_factory: Callable[..., Cluster],
                                                                       tmp_path: Path) -> None:
    cluster = cluster_factory(**{"restart-strategy.type": "fixed-delay", "restart-strategy.fixed-delay.attempts": "1",
                                 "restart-strategy.fixed-delay.delay": "100 ms"})
    first = cluster.start_jobmanager()
    cluster.start_taskmanager()
    submitted = cluster.flink("run", "-d", "-py", JOB, str(tmp_path / "out"), "100000", "1000", "-1")
    assert submitted.returncode == 0, submitted.stderr
    job_id = cluster.job_id(submitted)
    wait_for(lambda: len(completed_ids(first.output())) >= 2, 30, what="completed checkpoints")
    first.kill(signal.SIGKILL)
    first.process.wait(10)
    metadata = max((cluster.directory / "ha" / "checkpoints" / job_id).glob("chk-*/_metadata"),
                   key=lambda p: int(p.parent.name.split("-")[1]))
    metadata.write_bytes(b"not a checkpoint")
    second = cluster.start_jobmanager()
    wait_for(lambda: "cannot restore the latest checkpoint" in second.output(), 30, what="the restore error")
    assert f"{metadata.parent.name}/_metadata is not a readable _metadata file" in second.output()
    wait_for(lambda: '"status": "FAILED"' in cluster.job_result(job_id), 30, what="the job to fail")
    assert "is not a readable _metadata file" in cluster.job_result(job_id)  # the failure names the file too


def test_savepoint_cancel_and_run_from_it_at_another_parallelism_gives_the_same_counts(
    cluster_factory: Callable[..., Cluster], tmp_path: Path
) -> None:
    cluster = cluster_factory(**{"state.savepoints.dir": str(tmp_path / "savepoints")})
    leader = cluster.start_jobmanager()
    cluster.start_taskmanager()
    cluster.start_taskmanager()
    # 12 s of input at 1,000 records/s: the job cannot end before the cancel on a loaded machine (at 4 s
    # of input it once did); the resumed run reads the rest 3 times as fast
    n, out = 12000, tmp_path / "out"
    submitted = cluster.flink("run", "-d", "-py", JOB, str(out), str(n), "1000", "-1", "2")
    assert submitted.returncode == 0, submitted.stderr
    job_id = cluster.job_id(submitted)
    wait_for(lambda: len(completed_ids(leader.output())) >= 2, 30, what="the job to run a while")

    cancelled = cluster.flink("cancel", "-s", job_id)  # Flink's form: the folder from state.savepoints.dir
    assert cancelled.returncode == 0, cancelled.stdout + cancelled.stderr
    path = cancelled.stdout.split("Savepoint stored in ")[1].rstrip(".\n")
    assert Path(path, "_metadata").is_file() and Path(path).parent == tmp_path / "savepoints"
    counted_before = sum(final_counts(out).values())
    assert 0 < counted_before < n

    resumed = cluster.flink("run", "-s", path, "-py", JOB, str(out), str(n), "3000", "-1", "3", timeout=120)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert f"restores savepoint {path}" in leader.output()
    assert final_counts(out) == {k: n // 10 for k in range(10)}
    assert Path(path, "_metadata").is_file()  # savepoints belong to the user: never deleted
    # the REST API says what the new job restored: that savepoint, by its checkpoint id
    saved_id = int(re.search(rf"Completed savepoint (\d+) of job {job_id}", leader.output()).group(1))
    with urllib.request.urlopen(f"{leader.rest_address()}/jobs/{cluster.job_id(resumed)}/checkpoints") as answer:
        restored = json.load(answer)["latest"]["restored"]
    assert (restored["id"], restored["is_savepoint"], restored["external_path"]) == (saved_id, True, path)


def test_a_savepoint_with_state_the_job_lacks_needs_allow_non_restored_state(
    cluster_factory: Callable[..., Cluster], tmp_path: Path
) -> None:
    cluster = cluster_factory(**{"state.savepoints.dir": str(tmp_path / "savepoints"),
                                 "restart-strategy.type": "none"})
    leader = cluster.start_jobmanager()
    cluster.start_taskmanager()
    submitted = cluster.flink("run", "-d", "-py", JOB, str(tmp_path / "out"), "100000", "1000", "-1")
    job_id = cluster.job_id(submitted)
    wait_for(lambda: len(completed_ids(leader.output())) >= 1, 30, what="a checkpoint")
    stopped = cluster.flink("stop", "--savepointPath", str(tmp_path / "savepoints"), job_id)
    assert stopped.returncode == 0, stopped.stderr
    path = stopped.stdout.split("Path: ")[1].split()[0]
    # A different job (the exactly-once file job) has none of these operators.
    other = cluster.flink("run", "-s", path, "-py", str(HERE / "exactly_once_file_job.py"), str(tmp_path / "f"),
                          "100", "1000", "-1")
    assert other.returncode == 1
    assert "holds state for operators this job does not have" in other.stderr + leader.output()
    allowed = cluster.flink("run", "-s", path, "-n", "-py", str(HERE / "exactly_once_file_job.py"),
                            str(tmp_path / "g"), "100", "1000", "-1")
    assert allowed.returncode == 0, allowed.stdout + allowed.stderr


def test_failing_checkpoints_are_declined_counted_and_the_job_fails_over_past_the_tolerance(
    cluster_factory: Callable[..., Cluster], tmp_path: Path
) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("storage that cannot take checkpoints")
    # The timeout is far away: the failures must come from the tasks declining, at once.
    cluster = cluster_factory(**{"state.checkpoints.dir": str(blocker / "checkpoints"),
                                 "execution.checkpointing.timeout": "10 min",
                                 "execution.checkpointing.tolerable-failed-checkpoints": "2",
                                 "restart-strategy.type": "none"})
    leader = cluster.start_jobmanager()
    cluster.start_taskmanager()
    submitted = cluster.flink("run", "-d", "-py", JOB, str(tmp_path / "out"), "1000000", "1000", "-1")
    assert submitted.returncode == 0, submitted.stderr
    job_id = cluster.job_id(submitted)
    wait_for(lambda: "Exceeded checkpoint tolerable failure threshold" in leader.output(), 30,
             what="the tolerance to run out")
    log = leader.output()
    # the job kept running through the tolerated failures, then failed over (and, with no restarts, FAILED)
    assert log.index("(1 in a row, 2 tolerated)") < log.index("(2 in a row, 2 tolerated)") < log.index(
        "(3 in a row, 2 tolerated)") < log.index("Exceeded checkpoint tolerable failure threshold")
    assert "Completed checkpoint" not in log
    # the reason names the subtask, the checkpoint and the file that could not be written
    assert re.search(r"checkpoint 1 declined: .+ \([12]/2\) could not snapshot checkpoint 1: .*"
                     + re.escape(str(blocker)), log), log
    wait_for(lambda: job_id not in cluster.flink("list").stdout, 20,
             what="the job to end")



def test_operator_list_and_union_state_come_back_from_the_checkpoint(cluster_factory: Callable[..., Cluster],
                                                                     tmp_path: Path) -> None:
    # full failover: both subtasks restore (under region failover only the failed lane would)
    cluster = cluster_factory(**FAST_RESTARTS, **{"jobmanager.execution.failover-strategy": "full"})
    leader = cluster.start_jobmanager()
    cluster.start_taskmanager()
    n, out = 6000, tmp_path / "out"
    result = cluster.flink("run", "-py", str(HERE / "operator_state_job.py"), str(out), str(n), "3000", str(n // 2),
                           timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "restores checkpoint" in leader.output()
    records = read_collected(out)
    restored = [(subtask, [tuple(entry) for entry in union]) for kind, subtask, union in records
                if kind == "restored"]
    # both subtasks got the union of both subtasks' entries back
    assert sorted(subtask for subtask, _ in restored) == [0, 1]
    for _, union in restored:
        assert [subtask for subtask, _ in union] == [0, 1]
    # each subtask's own count went on from its checkpointed value: every record counted exactly once
    # (the restored subtasks' first record is the "restored" marker, which counts as one)
    finals = {0: 0, 1: 0}
    for kind, subtask, value in records:
        if kind == "count":
            finals[subtask] = max(finals[subtask], value)
    assert sum(finals.values()) == n
    union_at_restore = dict(restored[0][1])
    assert all(union_at_restore[s] <= finals[s] for s in (0, 1))


def test_rocksdb_state_of_a_million_keys_survives_a_failure_exactly(cluster_factory: Callable[..., Cluster],
                                                                     tmp_path: Path) -> None:
    local = tmp_path / "rocksdb"
    cluster = cluster_factory(**FAST_RESTARTS, **{"jobmanager.execution.failover-strategy": "full",
                                                  "state.backend.rocksdb.localdir": str(local)})
    leader = cluster.start_jobmanager()
    cluster.start_taskmanager()
    n, keys, out = 2_000_000, 1_000_000, tmp_path / "out"
    result = cluster.flink("run", "-py", str(HERE / "rocksdb_count_job.py"), str(out), str(n), str(keys),
                           "1000000", str(n * 3 // 4), timeout=280)
    assert result.returncode == 0, result.stdout + result.stderr
    log = leader.output()
    assert "restores checkpoint" in log
    finals: dict[int, int] = {}
    for key, count in read_collected(out):
        finals[key] = max(finals.get(key, 0), count)
    assert len(finals) == keys and set(finals.values()) == {2}  # every key counted twice: none lost, none doubled
    shared = [p for p in (cluster.directory / "ha" / "checkpoints").rglob("shared")]
    assert not shared  # the finished job's checkpoint files, shared ones too, are gone
    assert not list(local.rglob("*.sst"))  # and the TaskManager deleted its local RocksDB files
    # incremental checkpoints: the statistics tell what each one wrote apart from its full size
    with urllib.request.urlopen(f"{leader.rest_address()}/jobs/{cluster.job_id(result)}/checkpoints") as answer:
        history = [h for h in json.load(answer)["history"] if h["status"] == "COMPLETED"]
    assert history and all(0 < h["checkpointed_size"] <= h["state_size"] for h in history)
    assert any(h["checkpointed_size"] < h["state_size"] for h in history), history  # files reused


def test_a_savepoint_in_flight_when_the_leader_dies_is_taken_by_the_new_leader(
    cluster_factory: Callable[..., Cluster], tmp_path: Path
) -> None:
    """`flink savepoint` waits through a leader change: the operation died with the leader's memory (as in
    Flink), so the CLI asks the new leader again under the same trigger id once it runs the job again."""
    cluster = cluster_factory(**FAST_RESTARTS)
    first = cluster.start_leader()
    standby = cluster.start_jobmanager()
    cluster.start_taskmanager()
    control, savepoints = tmp_path / "control", tmp_path / "savepoints"
    control.mkdir()
    submitted = cluster.flink("run", "-d", "-py", str(HERE / "slow_snapshot_job.py"), str(tmp_path / "out"),
                              str(control))
    assert submitted.returncode == 0, submitted.stderr
    job_id = cluster.job_id(submitted)
    wait_for(lambda: completed_ids(first.output()), 30, what="a completed checkpoint")

    (control / "slow").write_text("snapshots take 3 s now")
    answer: list[subprocess.CompletedProcess[str]] = []
    cli = threading.Thread(target=lambda: answer.append(cluster.flink("savepoint", job_id, str(savepoints))))
    cli.start()
    try:
        def savepoint_in_flight() -> bool:
            try:
                with urllib.request.urlopen(f"{first.rest_address()}/jobs/{job_id}/checkpoints", timeout=2) as got:
                    history = json.load(got)["history"]
            except OSError:
                return False
            return any(h["is_savepoint"] and h["status"] == "IN_PROGRESS" for h in history)

        wait_for(savepoint_in_flight, 30, 0.05, "the savepoint to be in flight")
        (control / "slow").unlink()
        first.kill(signal.SIGKILL)
    finally:
        cli.join(150)
    done = answer[0]
    assert done.returncode == 0, done.stdout + done.stderr
    path = Path(done.stdout.split("Path: ")[1].split()[0])
    assert (path / "_metadata").is_file() and path.parent == savepoints
    assert f"asked the leader at {standby.rest_address()} again" in done.stderr  # (progress: stdout is Flink's)
    assert "restores checkpoint" in standby.output()
    with urllib.request.urlopen(f"{standby.rest_address()}/jobs/{job_id}") as got:
        assert json.load(got)["state"] == "RUNNING"  # a savepoint, not a stop: the job goes on
