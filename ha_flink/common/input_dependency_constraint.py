"""`InputDependencyConstraint`, as PyFlink's: when a task with several inputs may be scheduled."""

from __future__ import annotations

from enum import Enum

__all__ = ["InputDependencyConstraint"]


class InputDependencyConstraint(Enum):
    """`ANY`: once any input is consumable; `ALL`: once all are. (Flink 2 schedules every task of a
    streaming job at once, so neither changes a streaming job; it is kept for PyFlink's API.)"""

    ANY = 0
    ALL = 1
