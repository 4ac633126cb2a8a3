"""HighAvailabilityServices: everything a JobManager or TaskManager needs for HA, made from config.

`high-availability: zookeeper` gives `ZooKeeperHaServices` (a kazoo client, elections, retrieval, the
stores, cleanup); `NONE` gives `StandaloneHaServices` (ha/standalone.py): one JobManager, no ZooKeeper.
"""

from __future__ import annotations

import logging
import time
import uuid

from kazoo.client import KazooClient
from kazoo.exceptions import NoNodeError

from ha_flink.config import CheckpointingOptions, Configuration, ConfigurationError, HighAvailabilityOptions
from ha_flink.fs import Storage, join_url
from ha_flink.ha import job_record, paths
from ha_flink.ha.checkpoint_id_counter import CheckpointIDCounter
from ha_flink.ha.checkpoint_store import CompletedCheckpointStore
from ha_flink.ha.fencing import Fence, FencingError
from ha_flink.ha.job_graph_store import JobGraphStore
from ha_flink.ha.job_result_store import JobResultStore
from ha_flink.ha.leader_election import LeaderElection, list_contenders
from ha_flink.ha.leader_retrieval import LeaderRetrieval
from ha_flink.ha.standalone import StandaloneHaServices
from ha_flink.ha.state_handle_store import ZooKeeperStateHandleStore
from ha_flink.ha.zookeeper_client import start_zookeeper_client

logger = logging.getLogger(__name__)

JOB_GRAPH_PREFIX = "submittedJobGraph"
CHECKPOINT_PREFIX = "completedCheckpoint"


class ZooKeeperHaServices:
    def __init__(self, config: Configuration, client: KazooClient | None = None) -> None:
        if config.get(HighAvailabilityOptions.HA_MODE) != "zookeeper":
            raise ConfigurationError("is not zookeeper; ZooKeeperHaServices need it",
                                     key=HighAvailabilityOptions.HA_MODE.key)
        storage_dir = config.require(HighAvailabilityOptions.HA_STORAGE_PATH,
                                     "ZooKeeper HA keeps job graphs and checkpoint handles there")
        self.config = config
        self.cluster_id = config.get(HighAvailabilityOptions.HA_CLUSTER_ID)
        self.base_path = paths.cluster_path(config.get(HighAvailabilityOptions.HA_ZOOKEEPER_ROOT), self.cluster_id)
        self.storage = Storage(config)
        self.storage_root = storage_dir
        self.storage_dir = join_url(storage_dir, self.cluster_id.strip("/") or "default")
        self.tolerate_suspended = bool(config.get(HighAvailabilityOptions.ZOOKEEPER_TOLERATE_SUSPENDED_CONNECTIONS))
        self.session_timeout_s = config.get(HighAvailabilityOptions.ZOOKEEPER_SESSION_TIMEOUT).total_seconds()
        self._owns_client = client is None
        self.client = client if client is not None else start_zookeeper_client(config)
        self.owner = uuid.uuid4().hex  # lock owner id of this process's stores

    # -- leadership -----------------------------------------------------------------------------------

    def leader_election(self, name: str = "jobmanager", info: dict[str, str] | None = None) -> LeaderElection:
        return LeaderElection(self.client, self.base_path, tolerate_suspended=self.tolerate_suspended, name=name,
                              session_timeout_s=self.session_timeout_s, contender_info=info)

    def contenders(self) -> list[dict[str, str]]:
        """The JobManagers in the election, leader (or next leader) first, with their addresses."""
        return list_contenders(self.client, self.base_path)

    def leader_retrieval(self, component: str) -> LeaderRetrieval:
        return LeaderRetrieval(self.client, self.base_path, component, tolerate_suspended=self.tolerate_suspended)

    # -- stores ---------------------------------------------------------------------------------------

    def _handles(self, root: str, prefix: str, fence: Fence | None) -> ZooKeeperStateHandleStore:
        return ZooKeeperStateHandleStore(self.client, root, self.storage, self.storage_dir, prefix,
                                         _required(fence), self.owner)

    def job_graph_store(self, fence: Fence | None) -> JobGraphStore:
        return JobGraphStore(self._handles(paths.job_graphs(self.base_path), JOB_GRAPH_PREFIX, fence),
                             paths.join(self.base_path, paths.JOBS))

    def checkpoint_store(self, job_id: str, fence: Fence | None,
                         max_retained: int | None = None) -> CompletedCheckpointStore:
        retained = max_retained or self.config.get(CheckpointingOptions.MAX_RETAINED_CHECKPOINTS)
        return CompletedCheckpointStore(
            self._handles(paths.checkpoints(self.base_path, job_id), CHECKPOINT_PREFIX, fence), job_id, retained,
            job_node=paths.job_dir(self.base_path, job_id))

    def checkpoint_id_counter(self, job_id: str, fence: Fence | None) -> CheckpointIDCounter:
        return CheckpointIDCounter(self.client, paths.checkpoint_id_counter(self.base_path, job_id), _required(fence))

    def job_result_store(self) -> JobResultStore:
        return JobResultStore(self.storage, self.storage_root, self.cluster_id)

    # -- cleanup --------------------------------------------------------------------------------------

    def cleanup_job_data(self, job_id: str, fence: Fence) -> bool:
        """Delete one terminal job's HA data: checkpoints (files, then nodes), job graph, counter, znodes.
        Call after its result is written dirty; mark the result clean only if this returns True. False:
        another owner still holds some entry, which is kept (never deleted from under it); retry later."""
        checkpoints = self._handles(paths.checkpoints(self.base_path, job_id), CHECKPOINT_PREFIX, fence)
        removed = [checkpoints.release_and_try_remove(name) for name in checkpoints.names()]
        removed.append(self.job_graph_store(fence).global_cleanup(job_id))
        if not all(removed):
            logger.info("HA data of job %s is still held by another owner; cleanup will be retried", job_id)
            return False
        self._delete_tree(paths.job_dir(self.base_path, job_id), fence)
        self._delete_tree(paths.join(self.base_path, "leader", paths.job_component(job_id)), fence)
        return True

    def _delete_tree(self, path: str, fence: Fence) -> None:
        """Delete `path` and what is below it, leaves first, each delete fenced."""
        try:
            children = self.client.get_children(path)
        except NoNodeError:
            return
        for child in children:
            self._delete_tree(paths.join(path, child), fence)
        tx = fence.transaction()
        tx.delete(path)
        try:
            fence.commit(tx)
        except NoNodeError:
            pass

    def find_orphaned_files(self) -> list[str]:
        """HA files in the storage dir that no ZooKeeper pointer names (left by a crash between writing a
        file and committing its node). Collectable: nothing reads them. A file being written right now
        looks the same, so only collect those older than a write could take. A job graph file that a job
        record still names (its pointer deleted behind the cluster's back) is no orphan: it is the job."""
        referenced = set()
        jobs = self._children(paths.join(self.base_path, paths.JOBS))
        for root in [paths.job_graphs(self.base_path), *(paths.checkpoints(self.base_path, job) for job in jobs)]:
            for name in self._children(root):
                try:
                    data, _ = self.client.get(paths.join(root, name))
                    referenced.add(ZooKeeperStateHandleStore.pointer_url(data))
                except (NoNodeError, ValueError, KeyError):
                    continue
        for job in jobs:
            record = job_record.read(self.client, paths.job_dir(self.base_path, job))
            if record is not None and record.job_graph_pointer is not None:
                try:
                    referenced.add(ZooKeeperStateHandleStore.pointer_url(record.job_graph_pointer))
                except ValueError:
                    continue
        return [url for url in self.storage.list(self.storage_dir)
                if url.rsplit("/", 1)[1].startswith((JOB_GRAPH_PREFIX, CHECKPOINT_PREFIX)) and url not in referenced]

    def collect_orphaned_files(self, older_than_s: float = 30.0) -> list[str]:
        """Delete the orphaned HA files (`find_orphaned_files`) written more than `older_than_s` ago: a
        younger one may be a commit in flight. Such files are left by a leader that died, or lost
        ZooKeeper, between writing a file and committing its node. Returns what was deleted."""
        deleted = []
        now = time.time()
        for url in self.find_orphaned_files():
            try:
                written = self.storage.modified(url)
                if written is None or now - written < older_than_s:
                    continue
                self.storage.delete(url)
            except Exception as error:  # noqa: BLE001 - garbage; a later leader tries again
                logger.info("Orphaned HA file %s not deleted: %s", url, error)
                continue
            logger.info("Deleted orphaned HA file %s (no ZooKeeper node points at it)", url)
            deleted.append(url)
        return deleted

    def _children(self, path: str) -> list[str]:
        try:
            return self.client.get_children(path)
        except NoNodeError:
            return []

    def close_and_cleanup_all_data(self) -> None:
        """Remove everything of this cluster-id: its znodes, its HA files, its job results."""
        if self.client.exists(self.base_path):
            self.client.delete(self.base_path, recursive=True)
        self.storage.delete(self.storage_dir)
        self.storage.delete(self.job_result_store().folder)
        self.close()

    def close(self) -> None:
        if self._owns_client:
            self.client.stop()
            self.client.close()


HaServices = ZooKeeperHaServices | StandaloneHaServices  # what `high-availability` gives the runtime


def _required(fence: Fence | None) -> Fence:
    """ZooKeeper's stores write only through the leader's fence (the standalone services need none)."""
    if fence is None:
        raise FencingError("a ZooKeeper HA store was asked for without the leader's fence: nothing may be written")
    return fence


def create_ha_services(config: Configuration) -> HaServices:
    """The HA services that `high-availability` asks for."""
    if config.get(HighAvailabilityOptions.HA_MODE) == "zookeeper":
        return ZooKeeperHaServices(config)
    return StandaloneHaServices(config)
