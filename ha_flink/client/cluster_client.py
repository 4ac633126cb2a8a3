"""`ClusterClient`: the leader's Dispatcher, found through leader retrieval and called over gRPC (a call
refused because leadership moved is retried once with the new leader), or, with `-m host:port`, any
JobManager's REST endpoint, as Flink's CLI uses it. Savepoints always go through the REST API (the
leader's REST address is in ZooKeeper), whose trigger/status operations let the CLI show progress.
Every error names the JobManager that was asked and what it answered."""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
import uuid
from typing import Any, Callable

import cloudpickle
import grpc

from ha_flink.common.job_status import GLOBALLY_TERMINAL
from ha_flink.config import Configuration, HighAvailabilityOptions, JobManagerOptions, RestOptions
from ha_flink.ha import paths
from ha_flink.rpc import flink_pb2 as pb
from ha_flink.rpc import flink_pb2_grpc as pb_grpc
from ha_flink.rpc.channels import blocking_channel
from ha_flink.rpc.fencing import fencing_metadata
from ha_flink.security.tls import internal_tls, rest_client_tls, url_opener



class ClusterUnavailableError(ConnectionError):
    pass


class RestError(RuntimeError):
    def __init__(self, status: int, message: str, address: str = "") -> None:
        self.status = status
        asked = f"the JobManager at {address} answered " if address else ""
        super().__init__(f"{asked}HTTP {status}: {message}")


class JobManagerError(RuntimeError):
    """A gRPC call the leader refused: its code and message, and which JobManager it was."""


class ClusterClient:
    def __init__(self, config: Configuration, address: str | None = None, timeout: float | None = None) -> None:
        """`timeout`: of each REST request (default rest.connection-timeout); a leader is awaited for
        rest.await-leader-timeout."""
        self.config = config
        self.fixed_address = address
        self.timeout = timeout if timeout is not None else config.get(RestOptions.CONNECTION_TIMEOUT).total_seconds()
        self.await_leader_s = config.get(RestOptions.AWAIT_LEADER_TIMEOUT).total_seconds()
        # bin/flink talks to the leader's Dispatcher with the internal keys and to REST with the REST keys;
        # a keystore that cannot be used fails here, before anything is sent
        self.tls = internal_tls(config)
        rest_tls = rest_client_tls(config)
        self._scheme = "https" if rest_tls else "http"
        self._opener = url_opener(rest_tls)
        self._ha: Any = None
        self._retrieval: Any = None
        self._leader: tuple[str | None, uuid.UUID | None] = (None, None)
        self._known = threading.Event()

    def __enter__(self) -> ClusterClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._retrieval is not None:
            self._retrieval.stop()
        if self._ha is not None:
            self._ha.close()

    def leader(self) -> tuple[str, uuid.UUID | None]:
        if self.fixed_address:
            return self.fixed_address, None
        if self._retrieval is None:
            from ha_flink.ha.services import create_ha_services

            self._ha = create_ha_services(self.config)
            self._retrieval = self._ha.leader_retrieval(paths.DISPATCHER)
            self._retrieval.start(self._on_leader)
        deadline = time.monotonic() + self.await_leader_s
        while time.monotonic() < deadline:
            address, session = self._leader
            if address is not None:
                return address, session
            self._known.wait(0.1)
        raise ClusterUnavailableError(f"no leading JobManager found within {self.await_leader_s:g} s "
                                      "(rest.await-leader-timeout; is the cluster running? see `flink list` and "
                                      "the JobManager logs)")

    def rest_address(self, timeout: float = 3.0) -> str | None:
        """The REST base URL (and dashboard) of the JobManager to ask: `-m`, else the leader's from
        ZooKeeper; None if no leader published one within `timeout`."""
        if self.fixed_address:
            return self.fixed_address if "://" in self.fixed_address else f"{self._scheme}://{self.fixed_address}"
        if self.config.get(HighAvailabilityOptions.HA_MODE) != "zookeeper":  # one JobManager, at rest.address
            host = self.config.get(RestOptions.ADDRESS) or self.config.get(JobManagerOptions.RPC_ADDRESS)
            return f"{self._scheme}://{host}:{self.config.get(RestOptions.PORT)}"
        self.leader()  # starts the HA services
        found: list[str] = []
        known = threading.Event()

        def on_rest(address: str | None, session: uuid.UUID | None) -> None:
            if address:
                found.append(address)
                known.set()

        retrieval = self._ha.leader_retrieval(paths.REST_SERVER)
        retrieval.start(on_rest)
        try:
            known.wait(timeout)
        finally:
            retrieval.stop()
        return found[-1] if found else None

    def _on_leader(self, address: str | None, session: uuid.UUID | None) -> None:
        self._leader = (address, session)
        if address is not None:
            self._known.set()

    def _call(self, method: str, request: Any) -> Any:
        for attempt in (1, 2):
            address, session = self.leader()
            with blocking_channel(address, self.tls) as channel:
                stub = pb_grpc.DispatcherStub(channel)
                try:
                    return getattr(stub, method)(request, metadata=fencing_metadata(session), timeout=self.timeout)
                except grpc.RpcError as error:
                    if error.code() == grpc.StatusCode.FAILED_PRECONDITION and attempt == 1:
                        if self._leader == (address, session):  # keep a newer leader retrieval just sent
                            self._leader = (None, None)
                            self._known.clear()
                        continue
                    if error.code() == grpc.StatusCode.UNAVAILABLE:
                        raise ClusterUnavailableError(f"the JobManager at {address} is unreachable: "
                                                      f"{error.details()}") from None
                    raise JobManagerError(f"the leading JobManager at {address} answered {error.code().name}: "
                                          f"{error.details()}") from None
        raise AssertionError("unreachable")

    def _rest(self, method: str, path: str, body: bytes | None = None, base: str | None = None) -> Any:
        """`-m host:port` is a JobManager's REST address, as in Flink (any JobManager: a standby forwards)."""
        base = base or self.rest_address()
        if base is None:
            raise ClusterUnavailableError("no leading JobManager has published a REST address in ZooKeeper "
                                          "(is the cluster running? see the JobManager logs)")
        headers = {"content-type": "application/json"} if body is not None and body[:1] == b"{" else {}
        request = urllib.request.Request(f"{base}{path}", data=body, method=method, headers=headers)
        try:
            with self._opener.open(request, timeout=self.timeout) as answer:
                return json.loads(answer.read() or b"null")
        except urllib.error.HTTPError as error:
            try:
                errors = json.loads(error.read() or b"{}").get("errors", [error.reason])
            except ValueError:
                errors = [error.reason]
            raise RestError(error.code, "; ".join(map(str, errors)), base) from None
        except OSError as error:
            raise ClusterUnavailableError(f"no JobManager answers at {base}: {error}") from None

    @staticmethod
    def _status(job: dict[str, Any]) -> pb.JobStatus:
        return pb.JobStatus(job_id=job["jid"], name=job.get("name", ""), state=job["state"],
                            start_time=max(0, job.get("start-time") or 0), failure=job.get("failure") or "")

    def submit(self, job_graph: Any) -> str:
        if self.fixed_address:
            return self._rest("POST", "/jobs", cloudpickle.dumps(job_graph))["jobid"]
        return self._call("SubmitJob", pb.SubmitJobRequest(job_graph=cloudpickle.dumps(job_graph))).job_id

    def list_jobs(self) -> list[pb.JobStatus]:
        if self.fixed_address:
            return [self._status(job) for job in self._rest("GET", "/jobs/overview")["jobs"]]
        return list(self._call("ListJobs", pb.Empty()).jobs)

    def job_status(self, job_id: str) -> pb.JobStatus:
        if self.fixed_address:
            return self._status(self._rest("GET", f"/jobs/{job_id}"))
        return self._call("GetJobStatus", pb.JobId(job_id=job_id))

    def savepoint(self, job_id: str, target_directory: str | None, then: str = "",
                  progress: Callable[[str], None] | None = None, timeout: float = 180.0,
                  format_type: str = "CANONICAL", detached: bool = False) -> str:
        """Trigger a savepoint over REST (then cancel, stop or drain and stop the job, if asked) and poll its
        operation until done, telling `progress` what the leader reports meanwhile; returns the savepoint's path.

        Operations live in the leader's memory (as in Flink): when the JobManager asked dies or loses its
        leadership meanwhile, the same request (same triggerId, so a leader that has it already just goes on)
        is made again to the new leader once it runs the job, which it restored from its latest checkpoint.
        `detached`: returns the trigger id once the leader accepted it (Flink's `-detached`)."""
        trigger = uuid.uuid4().hex
        if then in ("stop", "drain"):
            path, body = f"/jobs/{job_id}/stop", {"targetDirectory": target_directory, "drain": then == "drain",
                                                  "triggerId": trigger, "formatType": format_type}
        else:
            path, body = f"/jobs/{job_id}/savepoints", {"target-directory": target_directory,
                                                        "cancel-job": then == "cancel", "triggerId": trigger,
                                                        "formatType": format_type}
        tell = progress or (lambda message: None)
        started = time.monotonic()
        deadline = started + timeout
        base = self.rest_address()
        self._rest("POST", path, json.dumps(body).encode(), base)
        if detached:
            return trigger
        tell(f"Triggered savepoint for job {job_id} at {base} (request {trigger}).")
        last_told = started
        while True:
            try:
                answer = self._rest("GET", f"/jobs/{job_id}/savepoints/{trigger}", base=base)
            except (ClusterUnavailableError, RestError) as error:
                if isinstance(error, RestError) and error.status not in (404, 503):
                    raise
                tell(f"  {error}")
                base = self._trigger_again(job_id, path, body, then, deadline, tell)
                continue
            if answer["status"]["id"] == "COMPLETED":
                operation = answer["operation"]
                if "failure-cause" in operation:
                    raise JobManagerError(f"the JobManager at {base} reports: the savepoint of job {job_id} failed: "
                                          f"{operation['failure-cause']['stack-trace']}")
                return operation["location"]
            now = time.monotonic()
            if now > deadline:
                raise TimeoutError(f"the savepoint of job {job_id} did not complete within {timeout:g} s "
                                   f"(asked {base}; it may still complete)")
            if now - last_told >= 1.0:
                last_told = now
                tell(f"  {now - started:.0f} s: {self._savepoint_progress(job_id, base)}")
            time.sleep(0.1)

    def _trigger_again(self, job_id: str, path: str, body: dict[str, Any], then: str, deadline: float,
                       tell: Callable[[str], None]) -> str | None:
        """The JobManager that had the operation is gone or no longer leads: make the request again to the
        leader there is now, once it runs the job; returns the REST address that took it (None: the one
        `_rest` looks up at each call)."""
        while True:
            if time.monotonic() > deadline:
                raise TimeoutError(f"no leading JobManager took the savepoint of job {job_id} again in time")
            try:
                base = self.rest_address()
                # Only once every task runs there: a savepoint asked for while the new leader still deploys
                # fails at once ("not running every task", as Flink's does), and the answer would be that.
                details = self._rest("GET", f"/jobs/{job_id}", base=base)
                if details["state"] in GLOBALLY_TERMINAL:
                    raise _terminal(job_id, str(details["state"]), base, body, then)
                if _runs_every_task(details):
                    self._rest("POST", path, json.dumps(body).encode(), base)
                    tell(f"  asked the leader at {base} again (request {body['triggerId']})")
                    return base
            except ClusterUnavailableError:
                pass  # (the election is not over yet)
            except RestError as error:
                if error.status == 409:  # the operation is known there already, or the job is not RUNNING (yet)
                    state = self._job_state(job_id, base)
                    if state == "RUNNING":
                        return base
                    if state in GLOBALLY_TERMINAL:
                        raise _terminal(job_id, state, base, body, then) from None
                elif error.status not in (404, 503):  # (404: the new leader has not recovered the job yet)
                    raise
            time.sleep(0.2)

    def _job_state(self, job_id: str, base: str | None) -> str:
        try:
            return str(self._rest("GET", f"/jobs/{job_id}", base=base)["state"])
        except (RestError, ClusterUnavailableError):
            return ""

    def _savepoint_progress(self, job_id: str, base: str | None) -> str:
        try:
            history = self._rest("GET", f"/jobs/{job_id}/checkpoints", base=base)["history"]
        except (RestError, ClusterUnavailableError) as error:
            return f"waiting ({error})"
        for entry in history:
            if entry["is_savepoint"] and entry["status"] == "IN_PROGRESS":
                return (f"savepoint {entry['id']}: {entry['num_acknowledged_subtasks']} of {entry['num_subtasks']} "
                        "subtasks acknowledged")
        return "writing the savepoint"

    def _operation(self, trigger_path: str, body: dict[str, Any], status_path: str, what: str,
                   timeout: float) -> dict[str, Any]:
        """POST an asynchronous operation (Flink's trigger + status) and poll it at the same JobManager until
        COMPLETED; its `operation`, or JobManagerError with the failure-cause it reports."""
        base = self.rest_address()
        trigger = self._rest("POST", trigger_path, json.dumps(body).encode(), base)["request-id"]
        deadline = time.monotonic() + timeout
        while True:
            answer = self._rest("GET", status_path.format(trigger=trigger), base=base)
            if answer["status"]["id"] == "COMPLETED":
                operation: dict[str, Any] = answer.get("operation") or {}
                cause = operation.get("failure-cause")
                if cause:
                    raise JobManagerError(f"the JobManager at {base} reports: {what} failed: {cause['stack-trace']}")
                return operation
            if time.monotonic() > deadline:
                raise TimeoutError(f"{what} did not complete within {timeout:g} s (asked {base}; it may still complete)")
            time.sleep(0.1)

    def checkpoint(self, job_id: str, full: bool = False, timeout: float = 180.0) -> int:
        """`flink checkpoint [--full]`: a checkpoint now; returns its id."""
        operation = self._operation(f"/jobs/{job_id}/checkpoints", {"checkpointType": "FULL" if full else "CONFIGURED"},
                                    f"/jobs/{job_id}/checkpoints/{{trigger}}", f"the checkpoint of job {job_id}", timeout)
        return int(operation["checkpointId"])

    def dispose_savepoint(self, path: str, timeout: float = 180.0) -> None:
        """`flink savepoint -d <path>`: the leader deletes the savepoint folder (refused, 400, if it is none)."""
        self._operation("/savepoint-disposal", {"savepoint-path": path}, "/savepoint-disposal/{trigger}",
                        f"the disposal of {path}", timeout)

    def cancel(self, job_id: str) -> None:
        if self.fixed_address:
            self._rest("PATCH", f"/jobs/{job_id}?mode=cancel")
        else:
            self._call("CancelJob", pb.JobId(job_id=job_id))

    def wait(self, job_id: str, timeout: float | None = None) -> pb.JobStatus:
        """Poll until the job is terminal; leader changes in between are followed."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            try:
                status = self.job_status(job_id)
                if status.state in GLOBALLY_TERMINAL:
                    return status
            except (ClusterUnavailableError, JobManagerError, grpc.RpcError):
                pass  # a leader change (a new leader may not have recovered the job yet): look again
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"job {job_id} did not end within {timeout} s")
            time.sleep(0.2)


def _runs_every_task(details: dict[str, Any]) -> bool:
    """A job's details (GET /jobs/<id>) say it is RUNNING with every task RUNNING."""
    counts = details.get("status-counts") or {}
    total = sum(int(n) for n in counts.values())
    return details.get("state") == "RUNNING" and total > 0 and int(counts.get("RUNNING", 0)) == total


def _terminal(job_id: str, state: str, base: str | None, body: dict[str, Any], then: str) -> JobManagerError:
    """The error for a savepoint asked for again of a job that has ended meanwhile."""
    done = {"cancel": "CANCELED", "stop": "FINISHED", "drain": "FINISHED"}.get(then)
    return JobManagerError(
        f"job {job_id} is {state} at {base}: "
        + (f"the {'cancel' if then == 'cancel' else 'stop'} with savepoint completed under the former leader, "
           f"whose answer was lost with it; the savepoint is in "
           f"{body.get('targetDirectory') or body.get('target-directory') or 'state.savepoints.dir'}"
           if state == done else "no savepoint can be taken"))
