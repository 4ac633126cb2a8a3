"""The state handle store and the stores on it, against a real ZooKeeper and real files."""

from __future__ import annotations

import pickle
import subprocess
import uuid
from pathlib import Path
from typing import Callable

import pytest

from ha_flink.config import Configuration
from ha_flink.fs import StorageError
from ha_flink.ha import job_record, paths
from ha_flink.ha.checkpoint_store import CompletedCheckpoint
from ha_flink.ha.fencing import Fence, FencingError
from ha_flink.ha.job_graph_store import JobGraphLostError
from ha_flink.ha.job_result_store import JobResult
from ha_flink.ha.services import ZooKeeperHaServices
from ha_flink.ha.state_handle_store import AlreadyExistsError, StateHandleDamagedError, ZooKeeperStateHandleStore
from ha_flink.testing.processes import wait_for
from ha_flink.testing.zookeeper import ZooKeeperEnsemble

from .conftest import Participant


@pytest.fixture
def ha_config(zookeeper: ZooKeeperEnsemble, tmp_path: Path, zk_root: str) -> Configuration:
    return Configuration({
        "high-availability": "zookeeper",
        "high-availability.zookeeper.quorum": zookeeper.connect_string,
        "high-availability.zookeeper.path.root": zk_root,
        "high-availability.cluster-id": "/cluster-a",
        "high-availability.storageDir": f"file://{tmp_path}/ha",
        "high-availability.zookeeper.client.session-timeout": "10 s",
        "state.checkpoints.num-retained": "2",
    })


@pytest.fixture
def services_factory(ha_config: Configuration) -> Callable[[], ZooKeeperHaServices]:
    """Each call: HA services with a ZooKeeper session and lock-owner id of their own (another process)."""
    made: list[ZooKeeperHaServices] = []

    def create() -> ZooKeeperHaServices:
        services = ZooKeeperHaServices(ha_config)
        made.append(services)
        return services

    yield create
    for services in made:
        services.close()


def checkpoint(job_id: str, checkpoint_id: int) -> CompletedCheckpoint:
    return CompletedCheckpoint(job_id, checkpoint_id, 0.0, f"file:///checkpoints/{job_id}/chk-{checkpoint_id}")


def files(services: ZooKeeperHaServices) -> list[str]:
    return [url.rsplit("/", 1)[1] for url in services.storage.list(services.storage_dir)]


def test_layout_follows_path_root_and_cluster_id(services_factory: Callable[[], ZooKeeperHaServices],
                                                 zk_root: str, tmp_path: Path) -> None:
    services = services_factory()
    store = services.job_graph_store(Fence.unfenced(services.client))
    store.put_job_graph("a" * 32, {"graph": 1})
    node = f"{zk_root}/cluster-a/jobgraphs/{'a' * 32}"
    data, _ = services.client.get(node)
    url = ZooKeeperStateHandleStore.pointer_url(data)
    assert url.startswith(f"file://{tmp_path}/ha/cluster-a/submittedJobGraph")
    assert services.client.get_children(f"{node}/locks") == [services.owner]
    assert services.client.exists(f"{node}/locks/{services.owner}").ephemeralOwner == services.client.client_id[0]


def test_job_graphs_put_recover_replace_and_cleanup(services_factory: Callable[[], ZooKeeperHaServices]) -> None:
    services = services_factory()
    fence = Fence.unfenced(services.client)
    store = services.job_graph_store(fence)
    store.put_job_graph("job-1", {"v": 1})
    store.put_job_graph("job-2", {"v": 2})
    store.put_job_graph("job-1", {"v": 3})  # replace: new file, old file deleted
    assert store.job_ids() == ["job-1", "job-2"]
    assert len(files(services)) == 2

    other = services_factory().job_graph_store(Fence.unfenced(services.client))
    assert other.recover_job_graph("job-1") == {"v": 3}
    assert store.global_cleanup("job-1") is False  # the other owner holds it
    assert other.global_cleanup("job-1") is True
    assert store.job_ids() == ["job-2"]
    assert len(files(services)) == 1


def test_two_owners_hold_a_checkpoint_one_subsumes_it_and_it_survives_until_the_other_releases(
    services_factory: Callable[[], ZooKeeperHaServices],
) -> None:
    first, second = services_factory(), services_factory()
    job = uuid.uuid4().hex
    store_a = first.checkpoint_store(job, Fence.unfenced(first.client), max_retained=1)
    store_a.add_checkpoint_and_subsume_old_ones(checkpoint(job, 1))
    store_b = second.checkpoint_store(job, Fence.unfenced(second.client), max_retained=1)
    assert [c.checkpoint_id for c in store_b.recover()] == [1]  # B now holds checkpoint 1 too
    node = paths.join(paths.checkpoints(first.base_path, job), paths.checkpoint_name(1))
    url = ZooKeeperStateHandleStore.pointer_url(first.client.get(node)[0])

    removed = store_a.add_checkpoint_and_subsume_old_ones(checkpoint(job, 2))
    assert removed == []  # subsumed by A, but B still holds it: kept
    assert first.client.exists(node) is not None
    assert first.storage.exists(url)
    assert first.client.get_children(f"{node}/locks") == [second.owner]
    assert [c.checkpoint_id for c in store_a.all()] == [2]

    store_b.shutdown(globally_terminal=False)  # B releases (e.g. a JobMaster suspended)
    assert first.client.exists(node) is not None  # releasing alone deletes nothing
    assert store_a.handles.release_and_try_remove(paths.checkpoint_name(1)) is True
    assert first.client.exists(node) is None
    assert not first.storage.exists(url)


def test_retained_checkpoints_and_latest(services_factory: Callable[[], ZooKeeperHaServices]) -> None:
    services = services_factory()
    job = uuid.uuid4().hex
    store = services.checkpoint_store(job, Fence.unfenced(services.client))  # num-retained 2 from config
    removed = []
    for i in range(1, 6):
        removed += store.add_checkpoint_and_subsume_old_ones(checkpoint(job, i))
    assert [c.checkpoint_id for c in removed] == [1, 2, 3]
    assert store.latest().checkpoint_id == 5
    assert store.handles.names() == [paths.checkpoint_name(4), paths.checkpoint_name(5)]
    assert len(files(services)) == 2
    with pytest.raises(ValueError, match="not newer than the latest completed one, 5"):
        store.add_checkpoint_and_subsume_old_ones(checkpoint(job, 5))
    recovered = services_factory().checkpoint_store(job, Fence.unfenced(services.client)).recover()
    assert [c.checkpoint_id for c in recovered] == [4, 5]


def test_crash_between_file_write_and_commit_leaves_no_pointer_and_an_orphan_that_is_reported(
    services_factory: Callable[[], ZooKeeperHaServices],
) -> None:
    services = services_factory()
    store = services.job_graph_store(Fence.unfenced(services.client))
    store.put_job_graph("kept", {"v": 1})
    # The first half of add_and_lock, as a process killed before its ZooKeeper commit leaves it.
    orphan = services.storage.write_unique(services.storage_dir, "submittedJobGraph", b"half-done")
    assert store.job_ids() == ["kept"]
    assert services.find_orphaned_files() == [orphan]
    services.storage.delete(orphan)
    assert services.find_orphaned_files() == []


def test_fenced_add_refused_leaves_neither_node_nor_file(
    services_factory: Callable[[], ZooKeeperHaServices], participants: Callable[..., Participant],
    zookeeper: ZooKeeperEnsemble,
) -> None:
    services = services_factory()
    leader = participants(zookeeper, services.base_path, "leader")
    session = wait_for(lambda: leader.contender.leading, 10, what="a leader")
    store = services.job_graph_store(leader.election.fence(session))
    store.put_job_graph("before", {"v": 1})
    leader.election.close()
    with pytest.raises(FencingError):
        store.put_job_graph("after", {"v": 2})
    assert store.job_ids() == ["before"]
    assert len(files(services)) == 1


def test_missing_payload_file_is_an_error_naming_node_and_file(
    services_factory: Callable[[], ZooKeeperHaServices],
) -> None:
    services = services_factory()
    job = uuid.uuid4().hex
    store = services.checkpoint_store(job, Fence.unfenced(services.client))
    store.add_checkpoint_and_subsume_old_ones(checkpoint(job, 1))
    store.add_checkpoint_and_subsume_old_ones(checkpoint(job, 2))
    node = paths.join(paths.checkpoints(services.base_path, job), paths.checkpoint_name(2))
    url = ZooKeeperStateHandleStore.pointer_url(services.client.get(node)[0])
    services.storage.delete(url)

    reader = services_factory()
    with pytest.raises(StateHandleDamagedError) as error:
        reader.checkpoint_store(job, Fence.unfenced(reader.client)).handles.get_and_lock(paths.checkpoint_name(2))
    assert str(error.value) == f"ZooKeeper node {node} points at {url}, which does not exist"

    # Recovery returns the readable checkpoints and names the damaged one by id, node and file: it is
    # committed (its node exists), so the coordinator rebuilds it from its own folder rather than skip it.
    recovering = reader.checkpoint_store(job, Fence.unfenced(reader.client))
    assert [c.checkpoint_id for c in recovering.recover()] == [1]
    assert [(d.checkpoint_id, d.error.node, d.error.url) for d in recovering.damaged] == [(2, node, url)]
    assert recovering.had_checkpoints
    # Nothing readable at all: nothing to restore from the store, both named, and the job record still
    # says the job had checkpoints (so it is never started from empty state).
    services.storage.delete(ZooKeeperStateHandleStore.pointer_url(
        services.client.get(paths.join(paths.checkpoints(services.base_path, job), paths.checkpoint_name(1)))[0]))
    empty = reader.checkpoint_store(job, Fence.unfenced(reader.client))
    assert empty.recover() == []
    assert [d.checkpoint_id for d in empty.damaged] == [1, 2]
    assert all("does not exist" in str(d.error) for d in empty.damaged)


def _latest_handle(services: ZooKeeperHaServices, job: str, checkpoint_id: int) -> tuple[str, Path]:
    node = paths.join(paths.checkpoints(services.base_path, job), paths.checkpoint_name(checkpoint_id))
    url = ZooKeeperStateHandleStore.pointer_url(services.client.get(node)[0])
    return node, Path(url.removeprefix("file://"))


@pytest.mark.parametrize("damage", ["truncated", "altered", "swapped", "garbled pointer", "unsealed"])
def test_a_damaged_handle_is_found_out_by_its_seal_never_unpickled(
    services_factory: Callable[[], ZooKeeperHaServices], damage: str
) -> None:
    services = services_factory()
    job = uuid.uuid4().hex
    store = services.checkpoint_store(job, Fence.unfenced(services.client))
    store.add_checkpoint_and_subsume_old_ones(checkpoint(job, 1))
    store.add_checkpoint_and_subsume_old_ones(checkpoint(job, 2))
    node, handle = _latest_handle(services, job, 2)
    _, older = _latest_handle(services, job, 1)
    data = handle.read_bytes()
    if damage == "truncated":
        handle.write_bytes(data[:len(data) // 2])
    elif damage == "altered":
        handle.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))
    elif damage == "swapped":  # another valid handle file in its place
        handle.write_bytes(older.read_bytes())
    elif damage == "garbled pointer":
        services.client.set(node, b"\x80\x04garbage")
    else:  # a pickle as an older version wrote it, where a sealed file is expected
        handle.write_bytes(pickle.dumps(checkpoint(job, 2)))

    reader = services_factory()
    recovering = reader.checkpoint_store(job, Fence.unfenced(reader.client))
    assert [c.checkpoint_id for c in recovering.recover()] == [1]
    [damaged] = recovering.damaged
    assert damaged.checkpoint_id == 2 and damaged.error.node == node
    expected = {"truncated": "truncated or altered", "altered": "truncated or altered",
                "swapped": "another file than its pointer names", "garbled pointer": "not a pointer",
                "unsealed": "not a sealed file"}[damage]
    assert expected in str(damaged.error)
    if damage != "garbled pointer":
        assert str(handle) in str(damaged.error)

    # Adopted (rebuilt by its caller): the handle is written anew and the next reader finds it whole.
    recovering.adopt(checkpoint(job, 2))
    assert [c.checkpoint_id for c in recovering.all()] == [1, 2]
    again = services_factory().checkpoint_store(job, Fence.unfenced(services.client))
    assert [c.checkpoint_id for c in again.recover()] == [1, 2] and again.damaged == []


def test_a_handle_that_cannot_be_written_commits_nothing(services_factory: Callable[[], ZooKeeperHaServices],
                                                          tmp_path: Path) -> None:
    services = services_factory()
    job = uuid.uuid4().hex
    store = services.checkpoint_store(job, Fence.unfenced(services.client))
    store.add_checkpoint_and_subsume_old_ones(checkpoint(job, 1))
    folder = Path(services.storage_dir.removeprefix("file://"))
    if subprocess.run(["chattr", "+i", str(folder)], capture_output=True).returncode != 0:
        pytest.skip(f"chattr +i (an immutable folder, which even root cannot write) is not supported for {folder}")
    try:
        with pytest.raises(StorageError, match=r"cannot write .*completedCheckpoint"):
            store.add_checkpoint_and_subsume_old_ones(checkpoint(job, 2))
    finally:
        subprocess.run(["chattr", "-i", str(folder)], check=True)
    assert [c.checkpoint_id for c in store.all()] == [1]
    root = paths.checkpoints(services.base_path, job)
    assert services.client.get_children(root) == [paths.checkpoint_name(1)]


def test_the_job_record_says_a_checkpoint_completed(services_factory: Callable[[], ZooKeeperHaServices]) -> None:
    services = services_factory()
    job = uuid.uuid4().hex
    services.job_graph_store(Fence.unfenced(services.client)).put_job_graph(job, {"graph": job})
    record = job_record.read(services.client, paths.job_dir(services.base_path, job))
    assert record is not None and not record.checkpointed and record.job_graph_pointer is not None
    store = services.checkpoint_store(job, Fence.unfenced(services.client))
    store.recover()
    assert not store.had_checkpoints
    store.add_checkpoint_and_subsume_old_ones(checkpoint(job, 1))
    record = job_record.read(services.client, paths.job_dir(services.base_path, job))
    assert record.checkpointed and record.job_graph_pointer is not None  # the copy of the pointer is kept

    # Every checkpoint node deleted behind the cluster's back: the record still says there were some.
    services.client.delete(paths.checkpoints(services.base_path, job), recursive=True)
    reader = services_factory().checkpoint_store(job, Fence.unfenced(services.client))
    assert reader.recover() == [] and reader.had_checkpoints


def test_a_deleted_job_graph_node_is_readopted_from_the_record_and_its_file_never_collected(
    services_factory: Callable[[], ZooKeeperHaServices],
) -> None:
    services = services_factory()
    store = services.job_graph_store(Fence.unfenced(services.client))
    store.put_job_graph("kept", {"graph": "kept"})
    store.put_job_graph("other", {"graph": "other"})
    services.client.delete(paths.join(paths.job_graphs(services.base_path), "kept"), recursive=True)

    assert store.job_ids() == ["other"]
    assert store.records_without_graph() == ["kept"]
    assert services.find_orphaned_files() == []  # the record names the file: it is the job, not garbage
    assert services.collect_orphaned_files(older_than_s=0) == []

    reader = services_factory().job_graph_store(Fence.unfenced(services.client))
    url = reader.readopt("kept")
    assert reader.job_ids() == ["kept", "other"] and reader.records_without_graph() == []
    assert reader.recover_job_graph("kept") == {"graph": "kept"}
    assert url in [services.storage_dir + "/" + name for name in files(services)]

    # The file gone too: the readoption says so (by node and file) and creates no node.
    services.client.delete(paths.join(paths.job_graphs(services.base_path), "kept"), recursive=True)
    services.storage.delete(url)
    with pytest.raises(StateHandleDamagedError, match="does not exist"):
        reader.readopt("kept")
    assert reader.job_ids() == ["other"]
    # No record of a pointer at all: lost, said so.
    services.client.set(paths.job_dir(services.base_path, "kept"), b"")
    with pytest.raises(JobGraphLostError, match="holds no copy of its pointer"):
        reader.readopt("kept")


def test_adding_an_existing_name_is_refused_and_leaves_no_file(
    services_factory: Callable[[], ZooKeeperHaServices],
) -> None:
    services = services_factory()
    store = services.job_graph_store(Fence.unfenced(services.client))
    store.handles.add_and_lock("j", b"1")
    with pytest.raises(AlreadyExistsError, match="exists already; nothing was added"):
        store.handles.add_and_lock("j", b"2")
    assert len(files(services)) == 1


def test_checkpoint_ids_strictly_increase_across_three_leader_changes(
    services_factory: Callable[[], ZooKeeperHaServices], participants: Callable[..., Participant],
    zookeeper: ZooKeeperEnsemble,
) -> None:
    services = services_factory()
    job = uuid.uuid4().hex
    ids: list[int] = []
    previous_fence = None
    for round_ in range(4):  # the first leader and three changes
        leader = participants(zookeeper, services.base_path, f"leader-{round_}")
        session = wait_for(lambda: leader.contender.leading, 10, what=f"leader {round_}")
        fence = leader.election.fence(session)
        counter = services.checkpoint_id_counter(job, fence)
        counter.start()
        ids += [counter.get_and_increment() for _ in range(3)]
        leader.election.close()
        if previous_fence is not None:
            with pytest.raises(FencingError):
                services.checkpoint_id_counter(job, previous_fence).get_and_increment()
        previous_fence = fence
    assert ids == list(range(1, 13))


def test_dirty_result_is_seen_by_a_new_leader_and_cleanup_removes_every_node_and_file(
    services_factory: Callable[[], ZooKeeperHaServices],
) -> None:
    old_leader = services_factory()
    job = uuid.uuid4().hex
    fence = Fence.unfenced(old_leader.client)
    old_leader.job_graph_store(fence).put_job_graph(job, {"v": 1})
    counter = old_leader.checkpoint_id_counter(job, fence)
    counter.start()
    store = old_leader.checkpoint_store(job, fence)
    for _ in range(3):
        store.add_checkpoint_and_subsume_old_ones(checkpoint(job, counter.get_and_increment()))
    old_leader.job_result_store().create_dirty_result(JobResult.of(job, "FINISHED"))
    old_leader.close()  # dies before cleaning up: its locks vanish with its session

    new_leader = services_factory()
    results = new_leader.job_result_store()
    assert [r.job_id for r in results.get_dirty_results()] == [job]
    assert results.has_job_result_entry(job) and not results.has_clean_job_result_entry(job)
    assert new_leader.cleanup_job_data(job, Fence.unfenced(new_leader.client)) is True
    results.mark_result_clean(job)

    assert new_leader.client.exists(paths.job_dir(new_leader.base_path, job)) is None
    assert new_leader.job_graph_store(fence).job_ids() == []
    assert files(new_leader) == []
    assert results.has_clean_job_result_entry(job) and not results.has_dirty_job_result_entry(job)
    assert results.get(job).status == "FINISHED"
    assert results.get_dirty_results() == []


def test_a_result_says_where_the_kept_checkpoints_are_and_results_of_older_versions_still_read(
    services_factory: Callable[[], ZooKeeperHaServices],
) -> None:
    results = services_factory().job_result_store()
    results.create_dirty_result(JobResult.of("a", "FAILED", "boom", checkpoints="file:///c/a", checkpoints_kept=True,
                                             latest_checkpoint="file:///c/a/chk-7"))
    got = results.get("a")
    assert (got.keeps_checkpoints, got.latest_checkpoint, got.error) == (True, "file:///c/a/chk-7", "boom")
    # A result written before these fields (and one with a field of a newer version): read, and a FAILED
    # job's checkpoints are taken as kept (never deleted on a guess).
    legacy = JobResult.from_json('{"job_id": "b", "status": "FAILED", "timestamp": 1.0, "error": null, "new": 1}')
    assert legacy.keeps_checkpoints and legacy.checkpoints is None
    assert not JobResult.from_json('{"job_id": "c", "status": "CANCELED", "timestamp": 1.0}').keeps_checkpoints


def test_whole_cluster_cleanup(services_factory: Callable[[], ZooKeeperHaServices], ha_config: Configuration) -> None:
    services = services_factory()
    services.job_graph_store(Fence.unfenced(services.client)).put_job_graph("j", 1)
    services.job_result_store().create_dirty_result(JobResult.of("j", "CANCELED"))
    observer = services_factory()
    services.close_and_cleanup_all_data()
    assert observer.client.exists(observer.base_path) is None
    assert not observer.storage.exists(observer.storage_dir)
    assert not observer.job_result_store().has_job_result_entry("j")


def test_services_need_a_quorum_and_a_storage_dir(tmp_path: Path) -> None:
    from ha_flink.config import ConfigurationError

    with pytest.raises(ConfigurationError, match="high-availability.storageDir: is not set"):
        ZooKeeperHaServices(Configuration({"high-availability": "zookeeper"}))
    with pytest.raises(ConfigurationError, match="high-availability.zookeeper.quorum: is not set"):
        ZooKeeperHaServices(Configuration({"high-availability": "zookeeper", "high-availability.storageDir": "/x"}))


def test_unreachable_quorum_is_named_within_the_connection_timeout(tmp_path: Path) -> None:
    from ha_flink.testing.processes import free_port

    quorum = f"127.0.0.1:{free_port()}"
    config = Configuration({"high-availability": "zookeeper", "high-availability.storageDir": str(tmp_path),
                            "high-availability.zookeeper.quorum": quorum,
                            "high-availability.zookeeper.client.connection-timeout": "1 s"})
    with pytest.raises(ConnectionError, match=f"cannot reach ZooKeeper at {quorum} within 1 s"):
        ZooKeeperHaServices(config)


def test_client_takes_its_session_timeout_and_bounded_retries_from_config(
    services_factory: Callable[[], ZooKeeperHaServices],
) -> None:
    services = services_factory()
    assert services.client._session_timeout == 10_000  # negotiated with the server: 10 s as configured
    assert services.client._retry.max_tries == 3  # high-availability.zookeeper.client.max-retry-attempts
    assert services.base_path.endswith("/cluster-a")


def test_job_cleanup_keeps_what_another_owner_holds_and_says_so(
    services_factory: Callable[[], ZooKeeperHaServices],
) -> None:
    leader, straggler = services_factory(), services_factory()
    job = uuid.uuid4().hex
    fence = Fence.unfenced(leader.client)
    leader.checkpoint_store(job, fence).add_checkpoint_and_subsume_old_ones(checkpoint(job, 1))
    straggler.checkpoint_store(job, Fence.unfenced(straggler.client)).recover()  # holds checkpoint 1
    node = paths.join(paths.checkpoints(leader.base_path, job), paths.checkpoint_name(1))

    assert leader.cleanup_job_data(job, fence) is False
    assert leader.client.get_children(f"{node}/locks") == [straggler.owner]
    assert len(files(leader)) == 1
    straggler.close()  # its session ends, and its lock with it
    assert leader.cleanup_job_data(job, fence) is True
    assert leader.client.exists(paths.job_dir(leader.base_path, job)) is None
    assert files(leader) == []
