"""The checkpoint coordinator's bookkeeping of checkpoints in flight, on the standalone (NONE) HA
services and a local checkpoint folder."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

from ha_flink.config import Configuration
from ha_flink.datastream import StreamExecutionEnvironment
from ha_flink.fs import Storage
from ha_flink.ha.services import create_ha_services
from ha_flink.runtime.checkpoint.coordinator import CheckpointCoordinator, PendingCheckpoint


def test_a_subtask_that_finished_without_acknowledging_drops_the_checkpoint_and_the_next_follows(
    tmp_path: Path,
) -> None:
    """A source that ended right after its own final checkpoint never sees a trigger that came later: the
    checkpoint waiting for it would block every later one until the timeout (10 min)."""
    env = StreamExecutionEnvironment.get_execution_environment().set_parallelism(2)
    env.from_collection([1, 2]).print()
    graph = env.get_job_graph()
    source, sink = list(graph.vertices)
    finished, running = (source, 1), (sink, 0)

    async def scenario() -> tuple[set[int], bool]:
        coordinator = CheckpointCoordinator(graph, create_ha_services(Configuration({})), None, Storage(),
                                            str(tmp_path), interval_s=3600, max_retained=1)
        coordinator._soon = asyncio.Event()
        coordinator._loop_task = asyncio.ensure_future(asyncio.sleep(0))  # (no periodic triggering here)
        coordinator.pending[7] = PendingCheckpoint(7, 0, {finished, running}, acks={running: "url"})
        coordinator.pending[8] = PendingCheckpoint(8, 0, {running})  # does not wait for the finished one
        coordinator.task_finished(finished, "Source (2/2)")
        await asyncio.sleep(0)
        return set(coordinator.pending), coordinator._soon.is_set()

    pending, triggered_soon = asyncio.run(scenario())
    assert pending == {8}
    assert triggered_soon


def test_a_failover_while_the_checkpoint_id_is_fetched_triggers_nothing_that_would_wait_forever(
    tmp_path: Path,
) -> None:
    """The subtasks a checkpoint waits for are read before its id comes from the counter; a region failover
    in between cancels one of them, and a checkpoint still waiting for its ack would block every later one
    (one in flight at a time) until the timeout."""
    env = StreamExecutionEnvironment.get_execution_environment().set_parallelism(2)
    env.from_collection([1, 2]).print()
    graph = env.get_job_graph()
    source = list(graph.vertices)[0]
    running = {(source, 0), (source, 1)}
    answers = iter([running, running - {(source, 1)}])  # the second look sees the failed subtask gone
    triggered: list[int] = []

    async def scenario() -> dict[int, PendingCheckpoint]:
        coordinator = CheckpointCoordinator(graph, create_ha_services(Configuration({})), None, Storage(),
                                            str(tmp_path), interval_s=0.01, max_retained=1)
        await coordinator.initialize()

        async def trigger(checkpoint_id: int, timestamp: int) -> None:
            triggered.append(checkpoint_id)

        coordinator.start(lambda: next(answers, set()), trigger)
        await asyncio.sleep(0.2)
        coordinator.stop()
        return coordinator.pending

    assert asyncio.run(scenario()) == {}
    assert triggered == []


class _HeldMetadataStorage(Storage):
    """Local storage whose `_metadata` writes wait until released (a slow object store)."""

    def __init__(self) -> None:
        super().__init__()
        self.writing = threading.Event()
        self.release = threading.Event()

    def write_sealed(self, url: str, payload: bytes, *, overwrite: bool = False) -> None:
        if url.endswith("/_metadata"):
            self.writing.set()
            self.release.wait(10)
        super().write_sealed(url, payload, overwrite=overwrite)


def test_a_checkpoint_whose_metadata_is_written_as_the_job_stops_is_not_committed_and_the_cleanup_waits(
    tmp_path: Path,
) -> None:
    """A chaos run cancelled a job while its last checkpoint's `_metadata` was being written: the checkpoint
    was committed after the job was CANCELED and its folder outlived the job's cleanup."""
    env = StreamExecutionEnvironment.get_execution_environment().set_parallelism(1)
    env.from_collection([1, 2]).print()
    graph = env.get_job_graph()
    task = (list(graph.vertices)[0], 0)
    storage = _HeldMetadataStorage()
    state_url = str(tmp_path / graph.job_id / "chk-1" / "task-0")
    storage.write(state_url, b"state")

    async def scenario() -> tuple[bool, int | None, list[int], bool, str]:
        coordinator = CheckpointCoordinator(graph, create_ha_services(Configuration({})), None, storage,
                                            str(tmp_path), interval_s=3600, max_retained=1)
        await coordinator.initialize()
        coordinator.pending[1] = PendingCheckpoint(1, 0, {task})
        coordinator.stats.triggered(1, 0, 1, is_savepoint=False)
        completing = asyncio.ensure_future(coordinator.acknowledge(task, 1, state_url))
        while not storage.writing.is_set():
            await asyncio.sleep(0.01)
        coordinator.stop()  # the job was cancelled meanwhile
        settled = asyncio.ensure_future(coordinator.settled())
        await asyncio.sleep(0.1)
        waited = not settled.done()
        storage.release.set()
        result = await asyncio.wait_for(completing, 10)
        await asyncio.wait_for(settled, 10)
        for _ in range(500):  # the uncommitted checkpoint's folder is deleted in the background
            if not storage.exists(coordinator.checkpoint_url(1)):
                break
            await asyncio.sleep(0.01)
        failed = coordinator.stats.latest_failed
        return (waited, result, [c.checkpoint_id for c in coordinator.store.all()],
                storage.exists(coordinator.checkpoint_url(1)), failed.failure_message if failed else "")

    waited, result, committed, folder_left, failure = asyncio.run(scenario())
    assert waited, "settled() returned while the _metadata was still being written"
    assert result is None and committed == []
    assert not folder_left
    assert failure == "the job stopped running here"


class _HeldSecondMetadataStorage(_HeldMetadataStorage):
    def write_sealed(self, url: str, payload: bytes, *, overwrite: bool = False) -> None:
        if "/chk-2/" in url:
            super().write_sealed(url, payload, overwrite=overwrite)
        else:
            Storage.write_sealed(self, url, payload, overwrite=overwrite)


def test_a_restore_after_a_failover_waits_for_the_checkpoint_still_committing_and_restores_it(
    tmp_path: Path,
) -> None:
    """Seen in the suite: a task failed while checkpoint 11 (every ack in) was committing; the new attempt
    read checkpoint 10 as the latest, then 11's commit subsumed 10 and deleted its files, and the deployment
    failed with DATA_LOSS. The restore must wait for the commit and take 11."""
    from ha_flink.runtime.jobmanager.job_master import JobMaster
    from ha_flink.runtime.jobmanager.resource_manager import ResourceManager

    env = StreamExecutionEnvironment.get_execution_environment().set_parallelism(1)
    env.enable_checkpointing(3_600_000)
    env.from_collection([1, 2]).print()
    graph = env.get_job_graph()
    task = (list(graph.vertices)[0], 0)
    storage = _HeldSecondMetadataStorage()

    async def scenario() -> tuple[bool, int | None, list[int]]:
        config = Configuration({"state.checkpoints.dir": f"file://{tmp_path}"})
        master = JobMaster(graph, ResourceManager(1, 10), None, config, lambda _: None, create_ha_services(config))
        coordinator = master.coordinator
        assert coordinator is not None
        coordinator.storage = storage
        await coordinator.initialize()
        for checkpoint_id in (1, 2):
            url = f"{coordinator.checkpoint_url(checkpoint_id)}/task-0"
            storage.write(url, b"state")
            coordinator.pending[checkpoint_id] = PendingCheckpoint(checkpoint_id, 0, {task})
            coordinator.stats.triggered(checkpoint_id, 0, 1, is_savepoint=False)
            completing = asyncio.ensure_future(coordinator.acknowledge(task, checkpoint_id, url))
            if checkpoint_id == 1:
                assert await completing == 1
        while not storage.writing.is_set():  # checkpoint 2: every ack in, its _metadata being written
            await asyncio.sleep(0.01)
        restoring = asyncio.ensure_future(master._latest_checkpoint(fall_back=True))  # the failover's restore
        await asyncio.sleep(0.1)
        waited = not restoring.done()
        storage.release.set()
        assert await asyncio.wait_for(completing, 10) == 2
        latest = await asyncio.wait_for(restoring, 10)
        master.rm.close()
        return waited, latest[0] if latest else None, [c.checkpoint_id for c in coordinator.store.all()]

    waited, restored, retained = asyncio.run(scenario())
    assert waited, "the restore read the store while checkpoint 2 was committing"
    assert restored == 2 and retained == [2]
