"""The link between `flink run` and a job script: while the CLI runs a script, `env.execute()` submits the
job graph to the cluster instead of running it in the local mini cluster (as PyFlink's CLI does)."""

from __future__ import annotations

import signal
import sys
import time
from dataclasses import dataclass, field
from typing import Any

from ha_flink.client.cluster_client import ClusterClient
from ha_flink.common.job_execution_result import JobExecutionResult
from ha_flink.runtime import python_artifacts as pa


@dataclass
class SubmissionContext:
    client: ClusterClient | None  # None only with `plans` (`flink info` submits nothing)
    detached: bool
    parallelism: int | None
    submitted: list[str]
    plans: list[str] | None = None  # `flink info`: record the JSON execution plans, submit nothing
    savepoint_path: str | None = None  # `flink run -s`
    allow_non_restored_state: bool = False
    # `flink run -pyfs/-pyreq/-pyarch/-pyexec`: python.* settings under the program's own (runtime/python_artifacts)
    python_settings: dict[str, str] = field(default_factory=dict)
    # `flink run/info -D key=value`: the program's environments start with these as their configuration (as
    # Flink's effective configuration); what the program sets itself wins, and `-p` wins over parallelism.default
    dynamic_properties: dict[str, str] = field(default_factory=dict)
    # `flink run -sae`: an attached client that is interrupted (Ctrl-C, SIGTERM) cancels its job first
    shutdown_on_attached_exit: bool = False


_context: SubmissionContext | None = None


def current() -> SubmissionContext | None:
    return _context


def activate(context: SubmissionContext | None) -> None:
    global _context
    _context = context


def ship_python_dependencies(graph: Any, cli_settings: dict[str, str]) -> None:
    """Merge the CLI's python.* settings with the program's (as Flink: the program's files come first, its
    requirements and interpreter win) and read what they name into the graph, which carries it to the
    cluster. FileNotFoundError or PythonDependencyError here fails the program before anything is sent."""
    settings = graph.settings
    merged = {pa.FILES: pa.join_entries(settings.get(pa.FILES), cli_settings.get(pa.FILES)),
              pa.ARCHIVES: pa.join_entries(cli_settings.get(pa.ARCHIVES), settings.get(pa.ARCHIVES))}
    for key in (pa.REQUIREMENTS, pa.EXECUTABLE, pa.CLIENT_EXECUTABLE):
        merged[key] = settings.get(key) or cli_settings.get(key) or ""
    settings.update({key: value for key, value in merged.items() if value})
    graph.python_dependencies = pa.collect(settings)


def _submit(graph: Any) -> str | None:
    """Submit `graph` (`flink info`: record its plan only, returning None); returns the job's id."""
    context = _context
    assert context is not None
    if context.plans is not None:  # (the environment recorded the program's plan)
        context.submitted.append(graph.job_id)
        return None
    client = context.client
    assert client is not None  # (only a context with plans has none)
    ship_python_dependencies(graph, context.python_settings)
    if context.savepoint_path:
        graph.savepoint_path = context.savepoint_path
        graph.allow_non_restored_state = context.allow_non_restored_state
    job_id = client.submit(graph)
    context.submitted.append(job_id)
    print(f"Job has been submitted with JobID {job_id}", flush=True)
    dashboard = client.rest_address() if hasattr(client, "rest_address") else None
    if dashboard:
        print(f"Dashboard: {dashboard}/#/jobs/{job_id}", flush=True)
    return job_id


def submit(graph: Any) -> JobExecutionResult:
    """Submit `graph`; wait for its end unless detached. Returns the JobExecutionResult (with no runtime when
    detached or only planned)."""
    started = time.monotonic()
    job_id = _submit(graph)
    context = _context
    assert context is not None
    if job_id is None or context.detached:
        return JobExecutionResult(job_id or graph.job_id, graph.name, 0)
    job = RemoteJob(context.client, job_id, graph.name, started)
    if context.shutdown_on_attached_exit:
        result = _wait_cancelling_on_exit(job)
    else:
        result = job.wait()
    print(f"Program execution finished\nJob with JobID {job_id} has finished.\n"
          f"Job Runtime: {result.net_runtime_ms} ms", file=sys.stdout, flush=True)
    return result


def _wait_cancelling_on_exit(job: RemoteJob) -> JobExecutionResult:
    """Flink's -sae: waits for the job; a Ctrl-C or SIGTERM of this client cancels the job, then exits."""
    previous = signal.getsignal(signal.SIGTERM)

    def terminated(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, terminated)
    try:
        return job.wait()
    except KeyboardInterrupt:
        print(f"The client is exiting: cancelling job {job.job_id} (-sae, --shutdownOnAttachedExit)",
              file=sys.stderr, flush=True)
        job.cancel()
        raise
    finally:
        signal.signal(signal.SIGTERM, previous)


def submit_async(graph: Any) -> RemoteJob:
    """Submit `graph` and return at once (`env.execute_async()` under `flink run`)."""
    started = time.monotonic()
    job_id = _submit(graph)
    context = _context
    assert context is not None
    if job_id is None:
        raise RuntimeError(f"`flink info` plans job {graph.name!r} and runs nothing, so there is no job to follow")
    return RemoteJob(context.client, job_id, graph.name, started)


class RemoteJob:
    """A job on the cluster, as the JobClient of `execute_async()` follows it (common.job_client.JobHandle)."""

    def __init__(self, client: ClusterClient | None, job_id: str, name: str, started: float) -> None:
        assert client is not None
        self.client = client
        self.job_id = job_id
        self.name = name
        self._started = started

    def status(self) -> str:
        return self.client.job_status(self.job_id).state

    def cancel(self) -> None:
        self.client.cancel(self.job_id)

    def savepoint(self, directory: str | None, then: str) -> str:
        return self.client.savepoint(self.job_id, directory, then)

    def wait(self, timeout: float | None = None) -> JobExecutionResult:
        from ha_flink.runtime.minicluster import JobCancelledError, JobExecutionError

        status = self.client.wait(self.job_id, timeout)
        if status.state == "FAILED":
            raise JobExecutionError(self.job_id, "(see the failure)", status.failure)
        if status.state == "CANCELED":
            raise JobCancelledError(f"Job {self.job_id} ({self.name}) was cancelled")
        return JobExecutionResult(self.job_id, self.name, int((time.monotonic() - self._started) * 1000))
