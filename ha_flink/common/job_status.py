"""The status of a job, as PyFlink's `pyflink.common.JobStatus` (Flink's `JobStatus`).

A `StrEnum`: each member equals its name as a string, so it travels unchanged through JSON (the REST
API), protobuf string fields and `flink list`, and a status read back from any of them compares equal."""

from __future__ import annotations

import enum


class JobStatus(enum.StrEnum):
    INITIALIZING = "INITIALIZING"
    CREATED = "CREATED"
    RUNNING = "RUNNING"
    FAILING = "FAILING"
    FAILED = "FAILED"
    CANCELLING = "CANCELLING"
    CANCELED = "CANCELED"
    FINISHED = "FINISHED"
    RESTARTING = "RESTARTING"
    SUSPENDED = "SUSPENDED"
    RECONCILING = "RECONCILING"

    def is_globally_terminal_state(self) -> bool:
        """The job ended for good: the cluster's record of it is final (PyFlink's name)."""
        return self in GLOBALLY_TERMINAL

    def is_terminal_state(self) -> bool:
        """This JobManager is done with the job: ended, or suspended by a lost leadership (PyFlink's name)."""
        return self in GLOBALLY_TERMINAL or self is JobStatus.SUSPENDED


GLOBALLY_TERMINAL = frozenset({JobStatus.FINISHED, JobStatus.CANCELED, JobStatus.FAILED})
