"""The ZooKeeper layout of one cluster, in one place (see ARCHITECTURE.md, "ZooKeeper layout").

Everything lives under `<path.root>/<cluster-id>` (defaults `/flink/default`)."""

from __future__ import annotations

import posixpath

LATCH = "leader/latch"
JOB_GRAPHS = "jobgraphs"
JOBS = "jobs"
LOCKS = "locks"
CONNECTION_INFO = "connection_info"

DISPATCHER = "dispatcher"
RESOURCE_MANAGER = "resource_manager"
REST_SERVER = "rest_server"


def normalize(path: str) -> str:
    """'/flink', 'flink/', '//flink' -> '/flink'; '' or '/' -> ''."""
    parts = [part for part in path.split("/") if part]
    return "/" + "/".join(parts) if parts else ""


def cluster_path(root: str, cluster_id: str) -> str:
    return normalize(root) + normalize(cluster_id) or "/"


def join(*parts: str) -> str:
    return posixpath.join(*parts)


def latch_dir(base: str) -> str:
    return join(base, LATCH)


def job_component(job_id: str) -> str:
    """The leader component name of one job's JobMaster, as Flink names it."""
    return f"job-{job_id}"


def connection_info(base: str, component: str) -> str:
    return join(base, "leader", component, CONNECTION_INFO)


def job_graphs(base: str) -> str:
    return join(base, JOB_GRAPHS)


def job_dir(base: str, job_id: str) -> str:
    return join(base, JOBS, job_id)


def checkpoints(base: str, job_id: str) -> str:
    return join(job_dir(base, job_id), "checkpoints")


def checkpoint_name(checkpoint_id: int) -> str:
    """`%019d`: zero-padded so that names sort in id order, as Flink does."""
    return f"{checkpoint_id:019d}"


def checkpoint_id_counter(base: str, job_id: str) -> str:
    return join(job_dir(base, job_id), "checkpoint_id_counter")
