"""Checkpoint recovery when the HA data is damaged or unreachable, against a real ZooKeeper and real files:
a damaged handle is rebuilt from the checkpoint's own `_metadata`; a damaged `_metadata` falls back to the
next older retained checkpoint; with none left the job is never started empty; an outage fails the
attempt (the next one recovers); a handle that cannot be written is a counted, declined checkpoint."""

from __future__ import annotations

import asyncio
import pickle
import subprocess
from pathlib import Path
from typing import Callable

import pytest

from ha_flink.config import Configuration
from ha_flink.datastream import StreamExecutionEnvironment
from ha_flink.fs import Storage, StorageError
from ha_flink.ha import paths
from ha_flink.ha.fencing import Fence
from ha_flink.ha.services import ZooKeeperHaServices
from ha_flink.ha.state_handle_store import ZooKeeperStateHandleStore
from ha_flink.runtime.checkpoint.coordinator import (
    CheckpointCoordinator, CheckpointFallbackNeeded, PendingCheckpoint, restored_from_savepoint,
)
from ha_flink.runtime.checkpoint.restore import CheckpointRestoreError, CheckpointStateDamagedError, materialize
from ha_flink.runtime.graph.job_graph import JobGraph
from ha_flink.testing.zookeeper import ZooKeeperEnsemble


def _graph() -> JobGraph:
    env = StreamExecutionEnvironment.get_execution_environment().set_parallelism(1)
    env.from_collection([1, 2]).uid("numbers").map(lambda v: v).uid("identity").print()
    return env.get_job_graph()


@pytest.fixture
def ha_config(zookeeper: ZooKeeperEnsemble, tmp_path: Path, zk_root: str) -> Configuration:
    return Configuration({
        "high-availability": "zookeeper", "high-availability.zookeeper.quorum": zookeeper.connect_string,
        "high-availability.zookeeper.path.root": zk_root, "high-availability.storageDir": f"file://{tmp_path}/ha",
    })


@pytest.fixture
def leader(ha_config: Configuration, tmp_path: Path) -> Callable[..., CheckpointCoordinator]:
    """`leader(graph, max_retained)`: a coordinator with HA services of its own (a new leader's process)."""
    made: list[ZooKeeperHaServices] = []

    def create(graph: JobGraph, max_retained: int = 1, tolerable_failures: int = 0) -> CheckpointCoordinator:
        services = ZooKeeperHaServices(ha_config)
        made.append(services)
        return CheckpointCoordinator(graph, services, Fence.unfenced(services.client), Storage(),
                                     f"file://{tmp_path}/checkpoints", interval_s=3600, max_retained=max_retained,
                                     tolerable_failures=tolerable_failures)

    yield create
    for services in made:
        services.close()


async def _complete(coordinator: CheckpointCoordinator, checkpoint_id: int) -> int | None:
    """Checkpoint `checkpoint_id` of the graph's every subtask, each acknowledging a sealed state file."""
    tasks = {(vertex.id, i) for vertex in coordinator.graph.vertices.values() for i in range(vertex.parallelism)}
    coordinator.pending[checkpoint_id] = PendingCheckpoint(checkpoint_id, 1000 * checkpoint_id, set(tasks))
    coordinator.stats.triggered(checkpoint_id, 0, len(tasks))
    result = None
    for vertex_id, subtask in sorted(tasks):
        url = f"{coordinator.checkpoint_url(checkpoint_id)}/{vertex_id}-{subtask}"
        coordinator.storage.write_sealed(url, pickle.dumps({"source": None, "operators": [[checkpoint_id]]}))
        result = await coordinator.acknowledge((vertex_id, subtask), checkpoint_id, url)
    return result


def _handle(coordinator: CheckpointCoordinator, checkpoint_id: int) -> tuple[str, Path]:
    node = paths.join(coordinator.store.handles.root, paths.checkpoint_name(checkpoint_id))
    url = ZooKeeperStateHandleStore.pointer_url(coordinator.store.handles.client.get(node)[0])
    return node, Path(url.removeprefix("file://"))


def _metadata(coordinator: CheckpointCoordinator, checkpoint_id: int) -> Path:
    return Path(coordinator.checkpoint_url(checkpoint_id).removeprefix("file://")) / "_metadata"


@pytest.mark.parametrize("damage", ["handle deleted", "handle truncated", "pointer garbled"])
def test_a_damaged_handle_is_rebuilt_from_the_checkpoints_own_metadata_and_repaired(
    leader: Callable[..., CheckpointCoordinator], damage: str,
) -> None:
    graph = _graph()

    async def scenario() -> None:
        first = leader(graph)
        await first.initialize()
        assert await _complete(first, 1) == 1 and await _complete(first, 2) == 2
        node, handle = _handle(first, 2)
        if damage == "handle deleted":
            handle.unlink()
        elif damage == "handle truncated":
            handle.write_bytes(handle.read_bytes()[:20])
        else:
            first.store.handles.client.set(node, b"{not json")

        second = leader(graph)
        await second.initialize()
        [note] = second.take_notes()
        assert note.kind == "CheckpointHandleRepaired"
        assert node in note.message and "rebuilt from its own" in note.message and "repaired" in note.message
        checkpoint_id, plans = await second.restored_state()
        assert checkpoint_id == 2  # the latest: nothing lost, nothing replayed
        assert {plan.refs[0].rsplit("/", 2)[-2] for plan in plans.values()} == {"chk-2"}
        assert second.counter.get() == 3  # ids go on after it

        third = leader(graph)  # the repair holds for the next leader: no damage left
        await third.initialize()
        assert third.take_notes() == [] and third.store.damaged == []
        assert (await third.restored_state())[0] == 2

    asyncio.run(scenario())


def test_a_damaged_latest_metadata_falls_back_to_the_next_older_retained_checkpoint_and_says_so(
    leader: Callable[..., CheckpointCoordinator],
) -> None:
    graph = _graph()

    async def scenario() -> None:
        first = leader(graph, max_retained=2)
        await first.initialize()
        for checkpoint_id in (1, 2, 3):
            await _complete(first, checkpoint_id)
        assert [c.checkpoint_id for c in first.store.all()] == [2, 3]
        metadata = _metadata(first, 3)
        metadata.write_bytes(metadata.read_bytes()[:-5])  # truncated

        region = leader(graph, max_retained=2)
        await region.initialize()
        with pytest.raises(CheckpointFallbackNeeded, match="chk-3/_metadata cannot be used: it is truncated"):
            await region.restored_state(fall_back=False)  # a region restore leaves the fallback to the job

        second = leader(graph, max_retained=2)
        await second.initialize()
        checkpoint_id, _ = await second.restored_state()
        assert checkpoint_id == 2
        [note] = second.take_notes()
        assert note.kind == "CheckpointRestoreFallback"
        assert "restores checkpoint 2, the latest of the 2 retained" in note.message
        assert "chk-3/_metadata" in note.message
        assert second.stats.latest_restored.checkpoint_id == 2  # what REST shows as restored
        assert (await second.restored_state())[0] == 2 and second.take_notes() == []  # said once

    asyncio.run(scenario())


def test_with_no_restorable_checkpoint_left_the_job_is_never_started_empty(
    leader: Callable[..., CheckpointCoordinator],
) -> None:
    graph = _graph()

    async def scenario() -> None:
        first = leader(graph)
        await first.initialize()
        await _complete(first, 1)
        metadata = _metadata(first, 1)
        metadata.write_bytes(b"garbage")

        second = leader(graph)
        await second.initialize()
        with pytest.raises(CheckpointRestoreError) as error:
            await second.restored_state()
        assert "chk-1/_metadata" in str(error.value) and "not started from empty state" in str(error.value)
        assert second.unrestorable == {}  # the next attempt looks at it again (an operator may put it back)

        # Every checkpoint node deleted behind the cluster's back: the job record still says it had some.
        second.store.handles.client.delete(second.store.handles.root, recursive=True)
        third = leader(graph)
        await third.initialize()
        with pytest.raises(CheckpointRestoreError, match="the job record says checkpoints were completed"):
            await third.restored_state()

    asyncio.run(scenario())


def test_a_storage_outage_at_recovery_fails_the_attempt_and_a_later_one_recovers_the_latest(
    leader: Callable[..., CheckpointCoordinator], tmp_path: Path,
) -> None:
    graph = _graph()

    async def scenario() -> None:
        first = leader(graph)
        await first.initialize()
        await _complete(first, 1)
        await _complete(first, 2)
        folder = Path(first.store.handles.storage_dir.removeprefix("file://"))
        away = folder.with_name("away")
        folder.rename(away)
        folder.write_text("the HA storage dir is unreachable")  # reads below it fail, but nothing is "gone"

        second = leader(graph)
        with pytest.raises(StorageError) as error:
            await second.initialize()
        assert not isinstance(error.value, FileNotFoundError) and str(folder) in str(error.value)
        assert not second.initialized and second.store.damaged == []
        folder.unlink()
        away.rename(folder)
        await second.initialize()  # the next attempt
        assert (await second.restored_state())[0] == 2 and second.take_notes() == []

    asyncio.run(scenario())


def test_a_handle_that_cannot_be_written_is_a_declined_checkpoint_counted_against_the_tolerance(
    leader: Callable[..., CheckpointCoordinator],
) -> None:
    graph = _graph()
    failovers: list[str] = []

    async def scenario() -> None:
        coordinator = leader(graph, tolerable_failures=0)
        await coordinator.initialize()
        coordinator._on_too_many_failures = failovers.append
        await _complete(coordinator, 1)
        folder = Path(coordinator.store.handles.storage_dir.removeprefix("file://"))
        if subprocess.run(["chattr", "+i", str(folder)], capture_output=True).returncode != 0:
            pytest.skip(f"chattr +i (a folder even root cannot write) is not supported for {folder}")
        try:
            assert await _complete(coordinator, 2) is None
        finally:
            subprocess.run(["chattr", "-i", str(folder)], check=True)
        [failed] = [c for c in coordinator.stats.to_json()["history"] if c["id"] == 2]
        assert failed["status"] == "FAILED"
        assert "declined: its handle could not be written to the HA storage dir" in failed["failure_message"]
        assert "nothing was committed" in failed["failure_message"]
        assert [c.checkpoint_id for c in coordinator.store.all()] == [1]
        assert len(failovers) == 1 and "tolerable failure threshold" in failovers[0]

    asyncio.run(scenario())


def test_a_retained_checkpoint_starts_another_submission_of_the_job(leader: Callable[..., CheckpointCoordinator],
                                                                    tmp_path: Path) -> None:
    """`flink run -s <chk-N folder>`: the new job graph has other vertex ids; state is matched by state key."""
    graph = _graph()

    async def scenario() -> None:
        coordinator = leader(graph)
        await coordinator.initialize()
        await _complete(coordinator, 1)
        again = _graph()
        assert set(again.vertices).isdisjoint(graph.vertices)
        checkpoint_id, plans = await restored_from_savepoint(again, Storage(), coordinator.checkpoint_url(1), False,
                                                             asyncio.get_running_loop())
        assert checkpoint_id == 1 and set(plans) == {(v, 0) for v in again.vertices}
        for plan in plans.values():
            assert materialize(plan, Storage().read) == {"source": None, "operators": [[[1]]]}  # (one old subtask)

    asyncio.run(scenario())


def test_a_damaged_state_file_is_named_where_the_subtask_restores(tmp_path: Path) -> None:
    graph = _graph()
    url = f"file://{tmp_path}/chk-4/state"
    Storage().write_sealed(url, pickle.dumps({"source": None, "operators": [[1]]}))
    from ha_flink.runtime.checkpoint.restore import plan_restore

    plan = plan_restore(graph, {(v, 0): url for v in graph.vertices}, {v: 1 for v in graph.vertices})
    state = next(iter(plan.values()))
    path = Path(url.removeprefix("file://"))
    path.write_bytes(path.read_bytes()[:-1])
    with pytest.raises(CheckpointStateDamagedError, match=f"the state file {url} of old subtask 0 cannot be restored: "
                                                          "it is truncated or altered"):
        materialize(state, Storage().read)
    path.unlink()
    with pytest.raises(CheckpointStateDamagedError, match="no such file"):
        materialize(state, Storage().read)
