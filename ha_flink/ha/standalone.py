"""`high-availability: NONE`: one JobManager, no ZooKeeper, as Flink's standalone HA services.

The election grants at once with Flink's fixed default leader id; retrieval answers the configured
address; checkpoints and ids live in memory (a restart of the JobManager loses them, as in Flink);
job graphs are not persisted; job results are kept in memory."""

from __future__ import annotations

import threading
import uuid
from typing import Any

from ha_flink.config import CheckpointingOptions, Configuration, JobManagerOptions
from ha_flink.ha.checkpoint_id_counter import INITIAL_CHECKPOINT_ID
from ha_flink.ha.checkpoint_store import CompletedCheckpoint, RetainedCheckpoints
from ha_flink.ha.fencing import FencingError
from ha_flink.ha.job_result_store import JobResult
from ha_flink.ha.leader_election import LeaderContender
from ha_flink.ha.leader_retrieval import LeaderListener

DEFAULT_LEADER_ID = uuid.UUID(int=0)


class StandaloneLeaderElection:
    def __init__(self) -> None:
        self._contender: LeaderContender | None = None
        self._leading = False
        self.published: dict[str, str] = {}

    def start(self, contender: LeaderContender) -> None:
        self._contender = contender
        self._leading = True
        contender.grant(DEFAULT_LEADER_ID)

    def close(self) -> None:
        if self._leading and self._contender is not None:
            self._leading = False
            self._contender.revoke()

    @property
    def leader_session_id(self) -> uuid.UUID | None:
        return DEFAULT_LEADER_ID if self._leading else None

    def has_leadership(self, session_id: uuid.UUID) -> bool:
        return self._leading and session_id == DEFAULT_LEADER_ID

    def fence(self, session_id: uuid.UUID) -> None:
        if not self.has_leadership(session_id):
            raise FencingError(f"the standalone JobManager does not hold leadership {session_id}")
        return None

    def publish(self, component: str, address: str, session_id: uuid.UUID) -> None:
        self.fence(session_id)
        self.published[component] = address


class StandaloneLeaderRetrieval:
    """Tells the listener the one configured address, once."""

    def __init__(self, address: str) -> None:
        self.address = address

    def start(self, listener: LeaderListener) -> None:
        listener(self.address, DEFAULT_LEADER_ID)

    def stop(self) -> None:
        pass


class StandaloneJobGraphStore:
    """Job graphs are not persisted without HA: a restarted JobManager has no jobs."""

    def put_job_graph(self, job_id: str, job_graph: Any) -> None:
        pass

    def recover_job_graph(self, job_id: str) -> Any:
        raise KeyError(f"job {job_id}: without high availability, job graphs are not kept")

    def job_ids(self) -> list[str]:
        return []

    def records_without_graph(self) -> list[str]:
        return []

    def readopt(self, job_id: str) -> str:
        raise KeyError(f"job {job_id}: without high availability, job graphs are not kept")

    def release_job_graph(self, job_id: str) -> None:
        pass

    def global_cleanup(self, job_id: str) -> bool:
        return True


class StandaloneCompletedCheckpointStore(RetainedCheckpoints):
    def recover(self) -> list[CompletedCheckpoint]:
        return list(self._checkpoints)

    def adopt(self, checkpoint: CompletedCheckpoint) -> bool:
        """(Nothing in memory is ever damaged: kept as the ZooKeeper store keeps a rebuilt entry.)"""
        self._checkpoints = sorted([*self._checkpoints, checkpoint], key=lambda c: c.checkpoint_id)
        return True

    def add_checkpoint_and_subsume_old_ones(self, checkpoint: CompletedCheckpoint) -> list[CompletedCheckpoint]:
        self._checkpoints.append(checkpoint)
        removed = self._checkpoints[:-self.max_retained]
        self._checkpoints = self._checkpoints[-self.max_retained:]
        return removed

    def shutdown(self, globally_terminal: bool) -> None:
        self._checkpoints = []


class StandaloneCheckpointIDCounter:
    def __init__(self) -> None:
        self._next = INITIAL_CHECKPOINT_ID
        self._lock = threading.Lock()

    def start(self) -> None:
        pass

    def get(self) -> int:
        return self._next

    def get_and_increment(self) -> int:
        with self._lock:
            value, self._next = self._next, self._next + 1
            return value

    def set_count(self, count: int) -> None:
        with self._lock:
            self._next = max(self._next, count)

    def shutdown(self, globally_terminal: bool) -> None:
        pass


class InMemoryJobResultStore:
    def __init__(self) -> None:
        self._results: dict[str, tuple[JobResult, bool]] = {}  # job id -> (result, clean)

    def create_dirty_result(self, result: JobResult) -> None:
        if result.job_id in self._results:
            raise KeyError(f"job {result.job_id} already has a result")
        self._results[result.job_id] = (result, False)

    def mark_result_clean(self, job_id: str) -> None:
        self._results[job_id] = (self._results[job_id][0], True)

    def has_dirty_job_result_entry(self, job_id: str) -> bool:
        return job_id in self._results and not self._results[job_id][1]

    def has_clean_job_result_entry(self, job_id: str) -> bool:
        return job_id in self._results and self._results[job_id][1]

    def has_job_result_entry(self, job_id: str) -> bool:
        return job_id in self._results

    def get_dirty_results(self) -> list[JobResult]:
        return [result for result, clean in self._results.values() if not clean]

    def get(self, job_id: str) -> JobResult | None:
        entry = self._results.get(job_id)
        return None if entry is None else entry[0]


class StandaloneHaServices:
    """The `NONE` counterpart of `ZooKeeperHaServices`, with the same methods."""

    def __init__(self, config: Configuration) -> None:
        self.config = config
        self.job_manager_address = (f"{config.get(JobManagerOptions.RPC_ADDRESS)}:"
                                    f"{config.get(JobManagerOptions.RPC_PORT)}")
        self._results = InMemoryJobResultStore()
        self._checkpoint_stores: dict[str, StandaloneCompletedCheckpointStore] = {}
        self._counters: dict[str, StandaloneCheckpointIDCounter] = {}

    def leader_election(self, name: str = "jobmanager", info: dict[str, str] | None = None) -> StandaloneLeaderElection:
        return StandaloneLeaderElection()

    def contenders(self) -> list[dict[str, str]]:
        return []  # one JobManager, no election

    def leader_retrieval(self, component: str) -> StandaloneLeaderRetrieval:
        return StandaloneLeaderRetrieval(self.job_manager_address)

    def job_graph_store(self, fence: object = None) -> StandaloneJobGraphStore:
        return StandaloneJobGraphStore()

    def checkpoint_store(self, job_id: str, fence: object = None,
                         max_retained: int | None = None) -> StandaloneCompletedCheckpointStore:
        retained = max_retained or self.config.get(CheckpointingOptions.MAX_RETAINED_CHECKPOINTS)
        # The same store across a job's restarts within this process, so a restart finds its checkpoints.
        return self._checkpoint_stores.setdefault(job_id, StandaloneCompletedCheckpointStore(job_id, retained))

    def checkpoint_id_counter(self, job_id: str, fence: object = None) -> StandaloneCheckpointIDCounter:
        return self._counters.setdefault(job_id, StandaloneCheckpointIDCounter())

    def job_result_store(self) -> InMemoryJobResultStore:
        return self._results

    def collect_orphaned_files(self, older_than_s: float = 30.0) -> list[str]:
        return []  # nothing is written to an HA storage dir without ZooKeeper HA

    def cleanup_job_data(self, job_id: str, fence: object = None) -> bool:
        self._checkpoint_stores.pop(job_id, None)
        self._counters.pop(job_id, None)
        return True

    def close_and_cleanup_all_data(self) -> None:
        self._checkpoint_stores.clear()
        self._counters.clear()

    def close(self) -> None:
        pass
