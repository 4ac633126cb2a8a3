"""`JobExecutionResult`, as in `pyflink.common.job_execution_result`: what `execute()` returns for a job that
ended (its id, net runtime and accumulators)."""

from __future__ import annotations

from typing import Any, Dict, Optional

from ha_flink.common.job_id import JobID


class JobExecutionResult:
    def __init__(self, job_id: str, job_name: str = "", net_runtime_ms: int = 0,
                 accumulators: Optional[Dict[str, Any]] = None) -> None:
        self.job_id = JobID(job_id)
        self.job_name = job_name
        self.net_runtime_ms = net_runtime_ms
        self.accumulators = dict(accumulators or {})

    def get_job_id(self) -> JobID:
        return self.job_id

    def get_net_runtime(self) -> int:
        """Milliseconds from the job's start to its end."""
        return self.net_runtime_ms

    def get_accumulator_result(self, accumulator_name: str) -> Any:
        return self.accumulators.get(accumulator_name)

    def get_all_accumulator_results(self) -> Dict[str, Any]:
        return dict(self.accumulators)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, JobExecutionResult) and (self.job_id, self.net_runtime_ms, self.accumulators) == (
            other.job_id, other.net_runtime_ms, other.accumulators)

    def __repr__(self) -> str:
        return f"JobExecutionResult(job_id={self.job_id}, net_runtime={self.net_runtime_ms} ms)"

    __str__ = __repr__
