"""`JobClient`, as in `pyflink.common.job_client`: what `env.execute_async()` returns, the handle of one
running job. Every call answers with a `CompletableFuture` (PyFlink's), so a program can go on while the
job runs and wait with `.result()`."""

from __future__ import annotations

from typing import Optional, Protocol

from ha_flink.common.completable_future import CompletableFuture, run_async
from ha_flink.common.job_execution_result import JobExecutionResult
from ha_flink.common.job_id import JobID
from ha_flink.common.job_status import JobStatus


class JobHandle(Protocol):
    """What runs the job (the local mini cluster's client): blocking calls the futures wrap."""

    job_id: str

    def status(self) -> str: ...

    def cancel(self) -> None: ...

    def wait(self, timeout: float | None = None) -> JobExecutionResult: ...

    def savepoint(self, directory: str | None, then: str) -> str: ...


class JobClient:
    def __init__(self, job: JobHandle) -> None:
        self._job = job

    def get_job_id(self) -> JobID:
        return JobID(self._job.job_id)

    def get_job_status(self) -> CompletableFuture[JobStatus]:
        return run_async(lambda: JobStatus(self._job.status()), "job-client-status")

    def cancel(self) -> CompletableFuture[None]:
        return run_async(self._job.cancel, "job-client-cancel")

    def stop_with_savepoint(self, advance_to_end_of_event_time: bool,
                            savepoint_directory: Optional[str] = None) -> CompletableFuture[str]:
        """A savepoint, then the job stops (FINISHED); with `advance_to_end_of_event_time` the sources emit
        the final watermark first, so every event-time window fires (Flink's `stop --drain`)."""
        then = "drain" if advance_to_end_of_event_time else "stop"
        return run_async(lambda: self._job.savepoint(savepoint_directory, then), "job-client-stop")

    def trigger_savepoint(self, savepoint_directory: Optional[str] = None) -> CompletableFuture[str]:
        return run_async(lambda: self._job.savepoint(savepoint_directory, ""), "job-client-savepoint")

    def get_accumulators(self) -> CompletableFuture[dict[str, object]]:
        return run_async(lambda: {}, "job-client-accumulators")  # (no accumulators: a job has none to show)

    def get_job_execution_result(self) -> CompletableFuture[JobExecutionResult]:
        """The result once the job ended; `result()` raises the job's failure (JobExecutionError) or its
        cancellation (JobCancelledError)."""
        return run_async(self._job.wait, "job-client-result")
