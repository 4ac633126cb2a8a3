"""JobResultStore: the results of jobs that reached a globally terminal state, as files in
`<storageDir>/job-result-store/<cluster-id>/`. A result is written dirty (`<jobid>_DIRTY.json`) before the
job's HA data is cleaned up, and marked clean (`<jobid>.json`) after. A new leader never re-runs a job
with a result, and finishes the cleanup of dirty ones."""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass

from ha_flink.fs import Storage, StorageFileExistsError, join_url

DIRTY_SUFFIX = "_DIRTY.json"
CLEAN_SUFFIX = ".json"


@dataclass(frozen=True)
class JobResult:
    job_id: str
    status: str  # FINISHED, CANCELED or FAILED
    timestamp: float
    error: str | None = None
    checkpoints: str | None = None  # the job's checkpoint folder (<state.checkpoints.dir>/<jobid>)
    # whether that folder outlives the job (externalized-checkpoint-retention); None in results of older
    # versions: kept if the job FAILED
    checkpoints_kept: bool | None = None
    latest_checkpoint: str | None = None  # the kept folder's latest completed checkpoint, to resume from

    @classmethod
    def of(cls, job_id: str, status: str, error: str | None = None, checkpoints: str | None = None,
           checkpoints_kept: bool | None = None, latest_checkpoint: str | None = None) -> JobResult:
        return cls(job_id, status, time.time(), error, checkpoints, checkpoints_kept, latest_checkpoint)

    @property
    def keeps_checkpoints(self) -> bool:
        return self.checkpoints_kept if self.checkpoints_kept is not None else self.status == "FAILED"

    @classmethod
    def from_json(cls, text: bytes | str) -> JobResult:
        fields = json.loads(text)
        return cls(**{name: value for name, value in fields.items() if name in cls.__dataclass_fields__})


class JobResultStore:
    def __init__(self, storage: Storage, storage_dir: str, cluster_id: str) -> None:
        self.storage = storage
        self.folder = join_url(storage_dir, "job-result-store", cluster_id.strip("/") or "default")

    def _url(self, job_id: str, suffix: str) -> str:
        return join_url(self.folder, f"{job_id}{suffix}")

    def create_dirty_result(self, result: JobResult) -> None:
        if self.has_job_result_entry(result.job_id):
            raise StorageFileExistsError("write", self._url(result.job_id, DIRTY_SUFFIX),
                                         f"job {result.job_id} already has a result")
        self.storage.write(self._url(result.job_id, DIRTY_SUFFIX), json.dumps(asdict(result)).encode())

    def mark_result_clean(self, job_id: str) -> None:
        dirty = self._url(job_id, DIRTY_SUFFIX)
        if not self.storage.exists(dirty):
            if self.has_clean_job_result_entry(job_id):
                return
            raise KeyError(f"job {job_id} has no dirty result at {dirty} to mark clean")
        self.storage.write(self._url(job_id, CLEAN_SUFFIX), self.storage.read(dirty), overwrite=True)
        self.storage.delete(dirty)

    def has_dirty_job_result_entry(self, job_id: str) -> bool:
        return self.storage.exists(self._url(job_id, DIRTY_SUFFIX))

    def has_clean_job_result_entry(self, job_id: str) -> bool:
        return self.storage.exists(self._url(job_id, CLEAN_SUFFIX))

    def has_job_result_entry(self, job_id: str) -> bool:
        return self.has_dirty_job_result_entry(job_id) or self.has_clean_job_result_entry(job_id)

    def get_dirty_results(self) -> list[JobResult]:
        results = []
        for url in self.storage.list(self.folder):
            if url.endswith(DIRTY_SUFFIX):
                results.append(JobResult.from_json(self.storage.read(url)))
        return results

    def get(self, job_id: str) -> JobResult | None:
        for suffix in (CLEAN_SUFFIX, DIRTY_SUFFIX):
            if self.storage.exists(self._url(job_id, suffix)):
                return JobResult.from_json(self.storage.read(self._url(job_id, suffix)))
        return None
