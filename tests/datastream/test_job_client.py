"""`env.execute_async()`'s JobClient as PyFlink's: every call answers with a CompletableFuture, the job's
result included; savepoints and stop-with-savepoint through it; `execute()`'s JobExecutionResult."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ha_flink.common import CompletableFuture, JobExecutionResult, JobID, JobStatus, WatermarkStrategy
from ha_flink.datastream import MapFunction, StreamExecutionEnvironment
from ha_flink.datastream.connectors.number_seq import RateLimitedNumberSequenceSource
from ha_flink.runtime.minicluster import JobCancelledError, JobExecutionError
from ha_flink.testing.functions import CountPerKey, stop_with_savepoint_once_running
from ha_flink.testing.processes import wait_for
from ha_flink.testing.sinks import CollectSink, read_collected


def unbounded_job(tmp_path: Path, checkpointing: bool = False) -> StreamExecutionEnvironment:
    env = StreamExecutionEnvironment.get_execution_environment().set_parallelism(1)
    if checkpointing:
        env.enable_checkpointing(100)
    env.from_source(RateLimitedNumberSequenceSource(), WatermarkStrategy.no_watermarks(), "numbers") \
        .add_sink(CollectSink(tmp_path / "out"))
    return env


def local_path(location: str) -> Path:
    return Path(location.removeprefix("file://"))


def test_every_call_answers_with_a_future(tmp_path: Path) -> None:
    client = unbounded_job(tmp_path).execute_async("numbers job")
    try:
        job_id = client.get_job_id()
        assert isinstance(job_id, JobID) and len(job_id.to_hex_string()) == 32
        status = client.get_job_status()
        assert isinstance(status, CompletableFuture)
        wait_for(lambda: client.get_job_status().result(10) == JobStatus.RUNNING, 10, what="the job to run")
        assert client.get_job_status().result() is JobStatus.RUNNING
        result = client.get_job_execution_result()
        assert isinstance(result, CompletableFuture) and not result.done()  # (the job runs until cancelled)
        assert client.get_accumulators().result(10) == {}
        client.cancel().result(10)
        with pytest.raises(JobCancelledError, match="numbers job"):
            result.result(30)
        assert isinstance(result.exception(), JobCancelledError) and result.done()
        assert client.get_job_status().result(10) == JobStatus.CANCELED
    finally:
        client.get_job_execution_result().exception(30)  # (the job ended, its mini cluster stopped)


def test_a_bounded_jobs_result_carries_its_id_and_runtime(tmp_path: Path) -> None:
    env = StreamExecutionEnvironment.get_execution_environment()
    env.from_collection([1, 2, 3]).add_sink(CollectSink(tmp_path))
    client = env.execute_async()
    result = client.get_job_execution_result().result(60)
    assert isinstance(result, JobExecutionResult)
    assert result.get_job_id() == client.get_job_id() and result.get_net_runtime() >= 0
    assert sorted(read_collected(tmp_path)) == [1, 2, 3]
    assert client.get_job_status().result(10) == JobStatus.FINISHED

    env.from_collection([4]).add_sink(CollectSink(tmp_path / "again"))
    executed = env.execute("again")
    assert isinstance(executed, JobExecutionResult) and isinstance(executed.get_job_id(), JobID)
    assert str(executed).startswith("JobExecutionResult(")


def test_a_failing_job_fails_its_result_future(tmp_path: Path) -> None:
    class Fails(MapFunction):
        def map(self, value: Any) -> Any:
            raise ValueError(f"no good: {value}")

    env = StreamExecutionEnvironment.get_execution_environment()
    env.from_collection([7]).map(Fails()).add_sink(CollectSink(tmp_path))
    future = env.execute_async().get_job_execution_result()
    with pytest.raises(JobExecutionError, match="no good: 7"):
        future.result(60)


def test_trigger_savepoint_and_stop_with_savepoint(tmp_path: Path) -> None:
    client = unbounded_job(tmp_path, checkpointing=True).execute_async()
    try:
        wait_for(lambda: len(read_collected(tmp_path / "out")) > 100, 20, what="records to flow")
        taken = client.trigger_savepoint(str(tmp_path / "savepoints")).result(60)
        assert local_path(taken).is_relative_to(tmp_path / "savepoints") and local_path(taken).exists()
        assert client.get_job_status().result(10) == JobStatus.RUNNING  # a plain savepoint keeps it running
        final = client.stop_with_savepoint(False, str(tmp_path / "final")).result(60)
        assert local_path(final).is_relative_to(tmp_path / "final") and local_path(final).exists()
        client.get_job_execution_result().result(60)  # stopped with a savepoint: FINISHED, no error
    finally:
        client.cancel()
        client.get_job_execution_result().exception(30)


def test_a_savepoint_without_checkpointing_names_the_reason(tmp_path: Path) -> None:
    client = unbounded_job(tmp_path).execute_async()
    try:
        wait_for(lambda: client.get_job_status().result(10) == JobStatus.RUNNING, 10, what="the job to run")
        with pytest.raises(Exception, match="checkpointing off"):
            client.trigger_savepoint(str(tmp_path / "savepoints")).result(30)
        assert client.get_job_status().result(10) == JobStatus.RUNNING
    finally:
        client.cancel().result(10)
        client.get_job_execution_result().exception(30)


@pytest.mark.parametrize("key", ["execution.state-recovery.path", "execution.savepoint.path"])
def test_a_local_job_starts_from_a_savepoint_and_an_operator_added_since_starts_fresh(tmp_path: Path, key: str) -> None:
    """Flink 2's key (and its 1.x name) for the state a local job starts from; a source that has no state
    in the savepoint reads from its beginning (it once restored as a source with no splits, and read nothing)."""
    client = unbounded_job(tmp_path, checkpointing=True).execute_async()
    try:
        wait_for(lambda: len(read_collected(tmp_path / "out")) > 100, 20, what="records to flow")
        savepoint = client.stop_with_savepoint(False, str(tmp_path / "savepoints")).result(60)
        client.get_job_execution_result().result(60)
    finally:
        client.cancel()
        client.get_job_execution_result().exception(30)
    env = StreamExecutionEnvironment.get_execution_environment().set_parallelism(2)
    env.configure({key: savepoint})
    env.from_collection(list(range(50))).uid("added").add_sink(CollectSink(tmp_path / "again"))
    with pytest.raises(JobExecutionError, match="holds state for operators this job does not have"):
        env.execute("refused: the savepoint's source state has no operator")
    env = StreamExecutionEnvironment.get_execution_environment().set_parallelism(2)
    env.configure({key: savepoint, key.replace(".path", ".ignore-unclaimed-state"): "true"})
    env.from_collection(list(range(50))).uid("added").add_sink(CollectSink(tmp_path / "again"))
    env.execute("restored")
    assert sorted(read_collected(tmp_path / "again")) == list(range(50))



def test_stop_with_savepoint_emits_nothing_after_the_state_it_saved(tmp_path: Path) -> None:
    """Flink's synchronous savepoint: the sources emit nothing after a stop's barrier, so what a plain
    (non-transactional) sink received is exactly what the savepoint's state counted, and a job resumed from
    it repeats nothing. (The sources used to read on until the tasks were cancelled.)"""
    keys = 10
    env = StreamExecutionEnvironment.get_execution_environment().set_parallelism(2)
    env.enable_checkpointing(100)
    env.from_source(RateLimitedNumberSequenceSource(0, None, 2000), WatermarkStrategy.no_watermarks(),
                    "numbers").uid("numbers") \
        .key_by(lambda n: n % keys).process(CountPerKey()).uid("count").add_sink(CollectSink(tmp_path / "before"))
    client = env.execute_async("counting")
    try:
        wait_for(lambda: len(read_collected(tmp_path / "before")) > 20 * keys, 30, what="records to flow")
        savepoint = stop_with_savepoint_once_running(client, str(tmp_path / "savepoints"))
        client.get_job_execution_result().result(60)
    finally:
        client.cancel()
        client.get_job_execution_result().exception(30)
    emitted: dict[int, int] = {}
    for key, count in read_collected(tmp_path / "before"):
        emitted[key] = max(emitted.get(key, 0), count)

    env = StreamExecutionEnvironment.get_execution_environment().set_parallelism(2)
    env.configure({"execution.state-recovery.path": savepoint, "execution.state-recovery.ignore-unclaimed-state": "true"})
    env.from_collection(list(range(keys))).uid("once").key_by(lambda n: n % keys).process(CountPerKey()).uid("count") \
        .add_sink(CollectSink(tmp_path / "after"))
    env.execute("resumed")
    assert dict(read_collected(tmp_path / "after")) == {key: emitted[key] + 1 for key in range(keys)}


def test_a_stop_whose_savepoint_fails_leaves_the_job_running_and_reading(tmp_path: Path) -> None:
    """The sources stopped at the stop's barrier; its savepoint cannot be written (into /proc), so the job
    is not stopped, and the next checkpoint lets the sources read on."""
    client = unbounded_job(tmp_path, checkpointing=True).execute_async()
    try:
        wait_for(lambda: len(read_collected(tmp_path / "out")) > 100, 20, what="records to flow")
        with pytest.raises(Exception, match="not written"):
            client.stop_with_savepoint(False, "file:///proc/ha-flink-savepoints").result(60)
        assert client.get_job_status().result(10) == JobStatus.RUNNING
        after = len(read_collected(tmp_path / "out"))
        wait_for(lambda: len(read_collected(tmp_path / "out")) > after + 100, 20, what="the sources to read on")
    finally:
        client.cancel()
        client.get_job_execution_result().exception(30)
