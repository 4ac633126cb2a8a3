"""The short chaos run of CI: one fault of every kind, in a seeded order, on a secured cluster the bin/
scripts start (3 ZooKeeper servers, 3 JobManagers, 3 TaskManagers), with the exactly-once job running and its
checkpoints on a moto S3 server (the storage outage is that endpoint cut off); then `flink stop
--savepointPath` and every check of ha_flink.testing.chaos.checker. The long run is `make chaos`
(bench/chaos.py, checkpoints on local disk, whose outage is the folder taken away).

The seed is printed; `HA_FLINK_CHAOS_SEED=N` repeats a run with another one."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ha_flink.testing.chaos import faults as F
from ha_flink.testing.chaos.harness import run_chaos

pytestmark = pytest.mark.integration

SEED = int(os.environ.get("HA_FLINK_CHAOS_SEED", "2"))


def test_one_fault_of_every_kind_on_a_secured_cluster_loses_nothing_and_counts_nothing_twice(tmp_path: Path) -> None:
    """One run, the secured cluster (mutual TLS on all RPC and REST, ZooKeeper with SASL and creator ACLs:
    the vandal acts with the cluster's own credentials, a stranger would be refused everything) with its
    checkpoints on S3: the faults reach every path a plain cluster has and the security's own. (It was two
    runs, plain and secured, 70 s each; the plain cluster's faults are every other test of integration/ and
    `make chaos`.)"""
    said: list[str] = []

    def say(line: str) -> None:
        said.append(line)
        print(line, flush=True)

    report = run_chaos(tmp_path / "chaos", SEED, {kind: 1 for kind in F.KINDS}, say=say, storage="s3", secure=True)
    log = "\n".join(said)
    daemons = [path.read_text() for pattern in ("flink-*-standalonesession-*.log", "flink-*-taskexecutor-*.log")
               for path in (tmp_path / "chaos" / "log").glob(pattern)]
    assert len(daemons) >= 6 and all("TLS: internal RPC mutual" in text and "with SASL DIGEST-MD5" in text
                                     for text in daemons), log
    assert report.problems == [], log
    assert report.output is not None and report.output.ok, log
    assert report.output.records > 1000, log
    # every fault was answered: the job ran and checkpointed again after each (timings came from the logs)
    assert {t.fault for t in report.timings} >= {F.LEADER_SIGKILL, F.LEADER_SIGTERM, F.LEADER_SIGSTOP,
                                                  F.TASKMANAGER_SIGKILL, F.ZOOKEEPER_QUORUM, F.CLUSTER_RESTART,
                                                  F.ZOOKEEPER_VANDAL, F.STORAGE_BLIP_AT_FAILOVER}, log
    assert all(t.running_s is not None for t in report.timings if t.fault != F.STORAGE_OUTAGE), log
