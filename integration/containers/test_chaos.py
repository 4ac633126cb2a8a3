"""The short chaos run across containers (ha_flink/testing/container_chaos.py): the exactly-once job on the
containerized HA cluster of deploy/podman/cluster.sh while the leader's container is killed, paused and cut off
from the network, a TaskManager's container is killed and a ZooKeeper server's container is killed; then the
chaos suite's checks: every record once, keyed counts exact, no act of a stale leader."""

from __future__ import annotations

from pathlib import Path

from ha_flink.testing import container_chaos as C
from ha_flink.testing.containers import BuiltImage, Podman


def test_container_faults_lose_nothing_and_count_nothing_twice(tmp_path: Path, podman: Podman,
                                                               image: BuiltImage) -> None:
    try:
        report = C.run_container_chaos(tmp_path / "chaos", podman, image.name,
                                       say=lambda line: print(line, flush=True))
    finally:
        C.remove_tree(tmp_path / "chaos")
    log = "\n".join(report.said)
    assert report.problems == [], log
    assert report.output is not None and report.output.ok, log
    # (committed: what the restores and the final savepoint cover; part files roll only every 60 s)
    assert report.output.records > 100, log
    assert {t.fault for t in report.timings} == set(C.FAULTS), log
    # every fault that restarts the job was answered: the tasks ran and checkpointed again
    assert all(t.running_s is not None and t.checkpoint_s is not None for t in report.timings
               if t.fault != C.ZOOKEEPER_KILL), log
    # a leader that is gone, frozen or cut off is replaced by another JobManager
    assert all(t.new_leader_s is not None for t in report.timings
               if t.fault in (C.LEADER_KILL, C.LEADER_PAUSE, C.LEADER_DISCONNECT)), log
