"""The state of one execution (one attempt of one subtask), as Flink's `ExecutionState`.

A `StrEnum`, so a state reported over gRPC (a string field) converts with `ExecutionState(text)` and
compares equal to its name. FINISHING is ours: a source's input has ended and the subtask waits for its
final checkpoint before it finishes (Flink shows it as RUNNING; the REST views map it so)."""

from __future__ import annotations

import enum


class ExecutionState(enum.StrEnum):
    CREATED = "CREATED"
    SCHEDULED = "SCHEDULED"
    DEPLOYING = "DEPLOYING"
    INITIALIZING = "INITIALIZING"
    RUNNING = "RUNNING"
    FINISHING = "FINISHING"
    FINISHED = "FINISHED"
    CANCELING = "CANCELING"
    CANCELED = "CANCELED"
    FAILED = "FAILED"
    RECONCILING = "RECONCILING"

    def is_terminal(self) -> bool:
        return self in TERMINAL_EXECUTION_STATES


TERMINAL_EXECUTION_STATES = frozenset({ExecutionState.FINISHED, ExecutionState.CANCELED, ExecutionState.FAILED})
