"""JobGraphStore: submitted job graphs under `jobgraphs/<jobid>`, payloads `submittedJobGraph<hex>` in the
storage dir. The Dispatcher puts a graph before acknowledging a submission and recovers every stored graph
when it is granted leadership.

The same transaction that commits a graph's pointer copies it into the job's record (`jobs/<jobid>`,
ha/job_record.py). A job whose pointer was deleted behind the cluster's back is found from its record
(`records_without_graph`) and its pointer committed again from the copy (`readopt`): the job is not lost,
and its graph file is never collected as an orphan."""

from __future__ import annotations

from typing import Any

import cloudpickle
from kazoo.client import TransactionRequest
from kazoo.exceptions import NoNodeError

from ha_flink.ha import job_record, paths
from ha_flink.ha.state_handle_store import StateHandleDamagedError, ZooKeeperStateHandleStore


class JobGraphLostError(RuntimeError):
    """A job's graph is gone from ZooKeeper and its record holds no copy of the pointer: it cannot run again."""


class JobGraphStore:
    def __init__(self, handles: ZooKeeperStateHandleStore, jobs_root: str | None = None) -> None:
        self.handles = handles
        self.jobs_root = jobs_root  # `jobs/`: one node per job, holding its record

    def _record_path(self, job_id: str) -> str | None:
        return paths.join(self.jobs_root, job_id) if self.jobs_root is not None else None

    def put_job_graph(self, job_id: str, job_graph: Any) -> None:
        data = cloudpickle.dumps(job_graph, protocol=5)
        record_path = self._record_path(job_id)
        also = None
        if record_path is not None:  # the record keeps a copy of the pointer, written with it
            self.handles.client.ensure_path(self.jobs_root)

            def also(tx: TransactionRequest, pointer: bytes) -> None:
                record = job_record.read(self.handles.client, record_path)
                checkpointed = record is not None and record.checkpointed
                job_record.write(tx, self.handles.client, record_path, job_record.JobRecord(pointer, checkpointed))

        version = self.handles.exists(job_id)
        if version is None:
            self.handles.add_and_lock(job_id, data, also=also)
        else:
            self.handles.replace(job_id, version, data, also=also)

    def recover_job_graph(self, job_id: str) -> Any:
        handle, data = self.handles.get_and_lock(job_id)
        try:
            return cloudpickle.loads(data)
        except Exception as error:  # an unsealed file of an older version, damaged
            raise StateHandleDamagedError(paths.join(self.handles.root, job_id), handle.url,
                                          f"is not a job graph ({type(error).__name__}: {error})") from None

    def job_ids(self) -> list[str]:
        return self.handles.names()

    def records_without_graph(self) -> list[str]:
        """Ids of jobs with a record but no job-graph node (deleted behind the cluster's back, or a job whose
        cleanup was cut short after its graph went: the caller tells them apart by the job's result)."""
        if self.jobs_root is None:
            return []
        try:
            jobs = self.handles.client.get_children(self.jobs_root)
        except NoNodeError:
            return []
        graphs = set(self.handles.client.get_children(self.handles.root)) \
            if self.handles.client.exists(self.handles.root) else set()
        return sorted(job for job in jobs if job not in graphs)

    def readopt(self, job_id: str) -> str:
        """Commit the job-graph node of `job_id` again from the copy in its record, once the file it names is
        read and checked; returns that file's URL. JobGraphLostError if the record holds no copy;
        StateHandleDamagedError if the file is gone or damaged; a StorageError if storage is unreachable."""
        record_path = self._record_path(job_id)
        record = job_record.read(self.handles.client, record_path) if record_path is not None else None
        if record is None or record.job_graph_pointer is None:
            why = "holds no copy of its pointer" if record is not None and record.readable else \
                "is unreadable" if record is not None else "is gone too"
            raise JobGraphLostError(f"the job graph node {paths.join(self.handles.root, job_id)} of job {job_id} "
                                    f"is gone and its record {record_path} {why}")
        pointer = record.job_graph_pointer
        assert record_path is not None  # (the record was read from it)
        try:
            url, sha256 = self.handles.parse_pointer(pointer)
        except ValueError as error:
            raise JobGraphLostError(f"the job graph node of job {job_id} is gone and the copy in {record_path} "
                                    f"is {error}") from None
        self.handles.read_payload(url, sha256, record_path)  # the file must be there, whole, before committing
        self.handles.restore_pointer(job_id, pointer)
        return url

    def release_job_graph(self, job_id: str) -> None:
        """Let go of the graph without deleting it (leadership lost, job suspended)."""
        self.handles.release(job_id)

    def global_cleanup(self, job_id: str) -> bool:
        """Delete the graph of a job that reached a globally terminal state (unless another owner holds it)."""
        return self.handles.release_and_try_remove(job_id)
