"""JobGraphStore: submitted job graphs under `jobgraphs/<jobid>`, payloads `submittedJobGraph<hex>` in the
storage dir. The Dispatcher puts a graph before acknowledging a submission and recovers every stored graph
when it is granted leadership."""

from __future__ import annotations

from typing import Any

import cloudpickle

from ha_flink.ha.state_handle_store import ZooKeeperStateHandleStore


class JobGraphStore:
    def __init__(self, handles: ZooKeeperStateHandleStore) -> None:
        self.handles = handles

    def put_job_graph(self, job_id: str, job_graph: Any) -> None:
        data = cloudpickle.dumps(job_graph, protocol=5)
        version = self.handles.exists(job_id)
        if version is None:
            self.handles.add_and_lock(job_id, data)
        else:
            self.handles.replace(job_id, version, data)

    def recover_job_graph(self, job_id: str) -> Any:
        _, data = self.handles.get_and_lock(job_id)
        return cloudpickle.loads(data)

    def job_ids(self) -> list[str]:
        return self.handles.names()

    def release_job_graph(self, job_id: str) -> None:
        """Let go of the graph without deleting it (leadership lost, job suspended)."""
        self.handles.release(job_id)

    def global_cleanup(self, job_id: str) -> bool:
        """Delete the graph of a job that reached a globally terminal state (unless another owner holds it)."""
        return self.handles.release_and_try_remove(job_id)
