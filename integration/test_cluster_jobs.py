"""Jobs on a real HA cluster: JobManager and TaskManager processes, ZooKeeper, `flink run`."""

from __future__ import annotations

import collections
import os
import re
import signal
import sys
import time
from pathlib import Path
from typing import Callable

from ha_flink.testing.cluster import REPO, Cluster
from ha_flink.testing.processes import start_process, stop_process, wait_for
from ha_flink.testing.sinks import read_collected
from integration.word_count_job import expected_counts

HERE = Path(__file__).resolve().parent


def test_keyed_word_count_on_two_taskmanagers_is_exact_and_cleans_up(
    cluster_factory: Callable[..., Cluster], tmp_path: Path
) -> None:
    cluster = cluster_factory()
    cluster.start_jobmanager()
    tm1, tm2 = cluster.start_taskmanager(), cluster.start_taskmanager()
    out = tmp_path / "out"
    result = cluster.flink("run", "-py", str(HERE / "word_count_job.py"), str(out), "500")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Job has been submitted with JobID" in result.stdout
    final: dict[str, int] = {}
    for word, count in read_collected(out):
        final[word] = max(final.get(word, 0), count)
    assert final == expected_counts(500)
    # both TaskManagers ran a share of the work (p=2, one slot each)
    assert "RUNNING" in tm1.output() or "FINISHED" in tm1.output()
    assert "FINISHED" in tm1.output() and "FINISHED" in tm2.output()
    # a bounded job's HA data is gone once it FINISHED: no job graph file remains
    ha_files = [p for p in (cluster.directory / "ha").rglob("*") if p.is_file() and "job-result-store" not in str(p)]
    assert ha_files == []
    results = list((cluster.directory / "ha" / "job-result-store").rglob("*.json"))
    assert len(results) == 1 and not results[0].name.endswith("_DIRTY.json")


def test_execute_async_under_flink_run_submits_to_the_cluster_and_follows_the_job(
    cluster_factory: Callable[..., Cluster], tmp_path: Path
) -> None:
    cluster = cluster_factory()
    cluster.start_jobmanager()
    cluster.start_taskmanager(), cluster.start_taskmanager()
    out = tmp_path / "out"
    result = cluster.flink("run", "-py", str(HERE / "async_word_count_job.py"), str(out), "200")
    assert result.returncode == 0, result.stdout + result.stderr
    job_id = cluster.job_id(result)
    assert f"client of {job_id}: local mini cluster False" in result.stdout
    assert f"result of {job_id}: FINISHED" in result.stdout
    final: dict[str, int] = {}
    for word, count in read_collected(out):
        final[word] = max(final.get(word, 0), count)
    assert final == expected_counts(200)


def record_files(folder: Path) -> set[str]:
    return {p.name for p in folder.glob("*.records")} if folder.exists() else set()


def test_leader_sigkill_during_an_unbounded_job_the_standby_recovers_it(
    cluster_factory: Callable[..., Cluster], tmp_path: Path
) -> None:
    cluster = cluster_factory()
    first = cluster.start_leader()
    standby = cluster.start_jobmanager()
    cluster.start_taskmanager()
    cluster.start_taskmanager()
    out = tmp_path / "out"
    submitted = cluster.flink("run", "-d", "-py", str(HERE / "unbounded_job.py"), str(out))
    assert submitted.returncode == 0, submitted.stdout + submitted.stderr
    job_id = cluster.job_id(submitted)
    wait_for(lambda: len(read_collected(out)) > 50, 30, what="records from the first attempt")
    before = record_files(out)

    first.kill(signal.SIGKILL)
    wait_for(lambda: "Granted leadership" in standby.output(), 30, what="the standby to lead")
    wait_for(lambda: f"Recovered job unbounded numbers ({job_id})" in standby.output(), 10,
             what="the standby to recover the job graph")
    # The surviving TaskManagers follow the new leader and run the job again: new sink subtasks write
    # new files.
    wait_for(lambda: len(record_files(out) - before) >= 2, 30, what="the recovered job's sink subtasks")
    listed = cluster.flink("list")
    assert re.search(rf"^\d\d\.\d\d\.\d{{4}} \d\d:\d\d:\d\d : {job_id} : unbounded numbers \(RUNNING\)$",
                     listed.stdout, re.M), listed.stdout + listed.stderr
    table = cluster.flink("list", "--table").stdout  # ha-flink's table, with the duration
    assert re.search(rf"^{job_id}  unbounded numbers  RUNNING  \d{{4}}-\d\d-\d\d \d\d:\d\d:\d\d  \d+ s$", table, re.M)
    assert table.splitlines()[1].split() == ["JOB", "ID", "NAME", "STATE", "START", "TIME", "DURATION"]
    cancelled = cluster.flink("cancel", job_id)
    assert cancelled.returncode == 0, cancelled.stderr
    wait_for(lambda: "No running jobs." in cluster.flink("list").stdout, 30, what="the job to be cancelled")
    # CANCELED is globally terminal: the result is recorded clean and the job's HA files are gone.
    results = cluster.directory / "ha" / "job-result-store"
    wait_for(lambda: list(results.rglob(f"{job_id}.json")), 10, what="the clean job result")
    assert '"status": "CANCELED"' in next(results.rglob(f"{job_id}.json")).read_text()
    assert not [p for p in (cluster.directory / "ha").rglob("submittedJobGraph*")]


def test_a_finished_job_is_not_rerun_by_the_next_leader(cluster_factory: Callable[..., Cluster],
                                                        tmp_path: Path) -> None:
    cluster = cluster_factory()
    first = cluster.start_leader()
    standby = cluster.start_jobmanager()
    cluster.start_taskmanager()
    result = cluster.flink("run", "-py", str(HERE / "word_count_job.py"), str(tmp_path / "out"), "50")
    assert result.returncode == 0, result.stderr
    first.kill(signal.SIGTERM)  # graceful: the standby takes over at once
    wait_for(lambda: "Job recovery done" in standby.output(), 30, what="the standby to lead and recover")
    assert "Job recovery done: 0 job(s) recovered" in standby.output()
    assert "No running jobs." in cluster.flink("list").stdout


def test_a_broken_job_script_fails_flink_run_with_its_traceback(cluster_factory: Callable[..., Cluster]) -> None:
    cluster = cluster_factory()
    cluster.start_jobmanager()
    result = cluster.flink("run", "-py", str(HERE / "broken_job.py"))
    assert result.returncode == 1
    assert "RuntimeError: this script is broken before execute()" in result.stderr
    assert "broken_job.py\", line 7" in result.stderr
    assert not list((cluster.directory / "ha").rglob("submittedJobGraph*"))


def test_a_killed_taskmanager_is_noticed_and_the_job_restarts_on_a_replacement(
    cluster_factory: Callable[..., Cluster], tmp_path: Path
) -> None:
    cluster = cluster_factory(**{"restart-strategy.type": "fixed-delay",
                                 "restart-strategy.fixed-delay.attempts": "10",
                                 "restart-strategy.fixed-delay.delay": "200 ms",
                                 "taskmanager.numberOfTaskSlots": "1",
                                 "heartbeat.timeout": "60 s"})  # so only the connection loss can tell
    leader = cluster.start_jobmanager()
    doomed, _survivor = cluster.start_taskmanager(), cluster.start_taskmanager()
    out = tmp_path / "out"
    submitted = cluster.flink("run", "-d", "-py", str(HERE / "unbounded_job.py"), str(out))
    assert submitted.returncode == 0, submitted.stderr
    wait_for(lambda: len(read_collected(out)) > 50, 30, what="records from the first attempt")
    before = record_files(out)

    doomed.kill(signal.SIGKILL)
    wait_for(lambda: "is lost: connection to" in leader.output(), 15,
             what="the JobManager to notice the dead TaskManager by its connection")
    cluster.start_taskmanager()  # the replacement brings the slot back
    wait_for(lambda: len(record_files(out) - before) >= 2, 30, what="the restarted job's sink subtasks")
    wait_for(lambda: re.search(r"attempt 1: all \d+ tasks RUNNING", leader.output()), 10,
             what="the JobMaster to report attempt 1 running")


def test_a_slow_sink_back_pressures_its_source_across_the_network(
    cluster_factory: Callable[..., Cluster], tmp_path: Path
) -> None:
    cluster = cluster_factory()
    cluster.start_jobmanager()
    cluster.start_taskmanager()
    progress = tmp_path / "progress"
    progress.mkdir()
    submitted = cluster.flink("run", "-d", "-py", str(HERE / "backpressure_job.py"), str(progress))
    assert submitted.returncode == 0, submitted.stderr

    def counts() -> tuple[int, int]:
        read = lambda name: int((progress / name).read_text() or 0) if (progress / name).exists() else 0  # noqa: E731
        return read("emitted"), read("consumed")

    wait_for(lambda: counts()[1] >= 1000, 30, what="the sink to consume")
    samples = []
    for _ in range(10):
        samples.append(counts())
        time.sleep(0.3)  # sampling interval of a measurement, not a wait for a condition
    # Unthrottled, the source makes ~100k records/s; what it is ahead of the sink stays within the buffers
    # on the way (source queue, subpartition, credits, input gate), a few times 10k records, and does not grow.
    leads = [emitted - consumed for emitted, consumed in samples]
    assert max(leads) < 40_000, samples
    assert samples[-1][0] - samples[0][0] < 10_000, samples  # the source advanced only as the sink did


def test_fixed_delay_gives_up_after_its_attempts_and_the_failed_job_is_cleaned_up(
    cluster_factory: Callable[..., Cluster],
) -> None:
    cluster = cluster_factory(**{"restart-strategy.type": "fixed-delay",
                                 "restart-strategy.fixed-delay.attempts": "2",
                                 "restart-strategy.fixed-delay.delay": "100 ms"})
    leader = cluster.start_jobmanager()
    cluster.start_taskmanager()
    result = cluster.flink("run", "-py", str(HERE / "failing_job.py"))
    assert result.returncode == 1
    assert "ValueError: cannot handle 1" in result.stderr
    log = leader.output()
    assert "restarts (attempt 1) in 0.100 s under the fixed-delay restart strategy" in log
    assert "restarts (attempt 2)" in log and "restarts (attempt 3)" not in log
    assert "the fixed-delay restart strategy gives up" in log
    results = list((cluster.directory / "ha" / "job-result-store").rglob("*.json"))
    assert len(results) == 1 and '"status": "FAILED"' in results[0].read_text()
    assert not list((cluster.directory / "ha").rglob("submittedJobGraph*"))


def test_region_failover_restarts_only_the_failed_lane(cluster_factory: Callable[..., Cluster],
                                                       tmp_path: Path) -> None:
    cluster = cluster_factory(**{"restart-strategy.type": "fixed-delay",
                                 "restart-strategy.fixed-delay.attempts": "3",
                                 "restart-strategy.fixed-delay.delay": "100 ms",
                                 "jobmanager.execution.failover-strategy": "region"})
    leader = cluster.start_jobmanager()
    cluster.start_taskmanager()
    out = tmp_path / "out"
    submitted = cluster.flink("run", "-d", "-py", str(HERE / "two_lane_job.py"), str(out))
    assert submitted.returncode == 0, submitted.stderr
    wait_for(lambda: {(lane, attempt) for lane, attempt, _ in read_collected(out)} >= {(0, 0), (1, 1)}, 30,
             what="lane 2 to come back on attempt 1 while lane 1 runs")
    assert "restarting a region of 1 of 2 tasks" in leader.output()
    # Lane 1 was never redeployed: one sink file from its only attempt; lane 2 has one per attempt.
    files = [p.name for p in out.glob("*.records")]
    assert sum(name.startswith("0-") for name in files) == 1
    assert sum(name.startswith("1-") for name in files) == 2
    assert {attempt for lane, attempt, _ in read_collected(out) if lane == 0} == {0}


def test_region_failover_after_a_taskmanager_kill_moves_only_its_lane_to_a_spare(
    cluster_factory: Callable[..., Cluster], tmp_path: Path
) -> None:
    cluster = cluster_factory(**{"restart-strategy.type": "fixed-delay",
                                 "restart-strategy.fixed-delay.attempts": "3",
                                 "restart-strategy.fixed-delay.delay": "0 ms",
                                 "jobmanager.execution.failover-strategy": "region",
                                 "taskmanager.numberOfTaskSlots": "1"})
    leader = cluster.start_jobmanager()
    first, second = cluster.start_taskmanager(), cluster.start_taskmanager()
    out = tmp_path / "out"
    submitted = cluster.flink("run", "-d", "-py", str(HERE / "two_lane_job.py"), str(out), "steady")
    assert submitted.returncode == 0, submitted.stderr
    wait_for(lambda: {lane for lane, _, _ in read_collected(out)} == {0, 1}, 30, what="both lanes to run")
    cluster.start_taskmanager()  # the spare
    wait_for(lambda: leader.output().count("Registered TaskManager") == 3, 30, what="the spare to register")
    first.kill(signal.SIGKILL)
    wait_for(lambda: any(attempt == 1 for _, attempt, _ in read_collected(out)), 30,
             what="the killed TaskManager's lane to run again on the spare")
    assert "restarting a region of 1 of 2 tasks" in leader.output()
    lanes = collections.defaultdict(set)
    for lane, attempt, _ in read_collected(out):
        lanes[lane].add(attempt)
    assert sorted(lanes.values(), key=len) == [{0}, {0, 1}]  # one lane ran on untouched, one restarted
    moved = next(lane for lane, attempts in lanes.items() if attempts == {0, 1})
    kept = 1 - moved
    before = max(value for lane, _, value in read_collected(out) if lane == kept)
    wait_for(lambda: max(value for lane, _, value in read_collected(out) if lane == kept) > before + 100, 20,
             what="the other lane to keep going")
    assert second.process.poll() is None


def test_an_interrupted_attached_client_with_sae_cancels_its_job(cluster_factory: Callable[..., Cluster],
                                                                  tmp_path: Path) -> None:
    """flink run -sae (--shutdownOnAttachedExit): the attached client's SIGTERM cancels the job, as Flink's."""
    cluster = cluster_factory()
    cluster.start_jobmanager()
    cluster.start_taskmanager()
    env = dict(os.environ, FLINK_CONF_DIR=str(cluster.conf_dir))
    client = start_process([sys.executable, "-m", "ha_flink.cli.main", "run", "-sae", "-py",
                            str(HERE / "checkpointed_count_job.py"), str(tmp_path / "out"), "1000000", "100", "-1"],
                           tmp_path / "client.log", env=env, cwd=REPO)
    try:
        wait_for(lambda: "Job has been submitted with JobID" in (tmp_path / "client.log").read_text(), 60,
                 what="the attached client to submit its job")
        job_id = re.search(r"JobID ([0-9a-f]{32})", (tmp_path / "client.log").read_text()).group(1)
        wait_for(lambda: f"{job_id} : checkpointed count (RUNNING)" in cluster.flink("list").stdout, 60,
                 what="the job to run")
        assert stop_process(client) == 130
        assert "cancelling job" in (tmp_path / "client.log").read_text()
        wait_for(lambda: f"{job_id} : checkpointed count (CANCELED)" in cluster.flink("list", "-a").stdout, 30,
                 what="the interrupted client's job to be cancelled")
    finally:
        stop_process(client)
