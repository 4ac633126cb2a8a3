"""Where a job's checkpoint files live in `state.checkpoints.dir` (Flink's layout), as a TaskManager
writes them:

    <checkpoints dir>/<jobid>/chk-<id>/<vertex>-<subtask>-<attempt>   one subtask's snapshot
    <checkpoints dir>/<jobid>/chk-<id>/_metadata                       written by the coordinator
    <checkpoints dir>/<jobid>/shared/<name>                            state files several incremental
                                                                       checkpoints reference

A `chk-<id>` folder belongs to its checkpoint and goes when the checkpoint is subsumed; a shared file goes
when no retained checkpoint references it any more (the coordinator's SharedStateRegistry)."""

from __future__ import annotations

from pathlib import Path

from ha_flink.fs import Storage, join_url

SHARED = "shared"


def is_absolute_location(target: str) -> bool:
    """A savepoint target must be an absolute path or a URL: a relative one (`../../x`) would resolve
    against whatever working directory the JobManager happens to have."""
    return "://" in target or target.startswith("/")


def checkpoint_folder(job_dir: str, checkpoint_id: int) -> str:
    return join_url(job_dir, f"chk-{checkpoint_id}")


class CheckpointStorageAccess:
    """One job's checkpoint storage, for its subtasks on one TaskManager (the backends' SnapshotStorage)."""

    def __init__(self, storage: Storage, checkpoints_dir: str, job_id: str) -> None:
        self.storage = storage
        self.job_dir = join_url(checkpoints_dir, job_id)

    def task_snapshot_url(self, checkpoint_id: int, vertex_id: str, subtask: int, attempt: int) -> str:
        return join_url(checkpoint_folder(self.job_dir, checkpoint_id), f"{vertex_id}-{subtask}-{attempt}")

    def upload_shared(self, local_path: Path, name: str) -> str:
        url = join_url(self.job_dir, SHARED, name)
        self.storage.write(url, Path(local_path).read_bytes())
        return url

    def download(self, url: str, local_path: Path) -> None:
        Path(local_path).write_bytes(self.storage.read(url))
