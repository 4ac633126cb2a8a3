"""`high-availability: NONE`: a single JobManager works without any ZooKeeper."""

from __future__ import annotations

import uuid

import pytest

from ha_flink.config import Configuration
from ha_flink.ha.checkpoint_store import CompletedCheckpoint
from ha_flink.ha.fencing import FencingError
from ha_flink.ha.job_result_store import JobResult
from ha_flink.ha.services import create_ha_services
from ha_flink.ha.standalone import DEFAULT_LEADER_ID, StandaloneHaServices

from .conftest import RecordingContender


def test_none_needs_no_zookeeper_and_grants_at_once() -> None:
    # A quorum that nothing listens on: NONE must not try it.
    services = create_ha_services(Configuration({"high-availability": "NONE", "jobmanager.rpc.address": "jm-host",
                                                 "high-availability.zookeeper.quorum": "127.0.0.1:1"}))
    assert isinstance(services, StandaloneHaServices)
    contender = RecordingContender("only")
    election = services.leader_election()
    election.start(contender)
    assert contender.leading == DEFAULT_LEADER_ID
    election.publish("dispatcher", "jm-host:6123", DEFAULT_LEADER_ID)
    with pytest.raises(FencingError):
        election.fence(uuid.uuid4())
    seen = []
    services.leader_retrieval("dispatcher").start(lambda address, session: seen.append((address, session)))
    assert seen == [("jm-host:6123", DEFAULT_LEADER_ID)]
    election.close()
    assert contender.leading is None and contender.revocations == 1


def test_none_keeps_checkpoints_and_ids_in_memory_across_job_restarts() -> None:
    services = create_ha_services(Configuration({"state.checkpoints.num-retained": "2"}))
    counter = services.checkpoint_id_counter("job")
    store = services.checkpoint_store("job")
    for _ in range(3):
        store.add_checkpoint_and_subsume_old_ones(CompletedCheckpoint("job", counter.get_and_increment(), 0.0, "x"))
    # A restart of the job in the same JobManager gets the same store and counter.
    assert [c.checkpoint_id for c in services.checkpoint_store("job").recover()] == [2, 3]
    assert services.checkpoint_id_counter("job").get_and_increment() == 4
    results = services.job_result_store()
    results.create_dirty_result(JobResult.of("job", "FINISHED"))
    services.cleanup_job_data("job")
    results.mark_result_clean("job")
    assert results.has_clean_job_result_entry("job")
    assert services.checkpoint_store("job").latest() is None
