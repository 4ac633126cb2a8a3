"""`JobID`, as in `pyflink.common.job_id`: a job's id, printed as its 32 hex digits. A str, so it compares
equal to the id as text (what REST, the CLI and the logs show)."""

from __future__ import annotations


class JobID(str):
    __slots__ = ()

    def to_hex_string(self) -> str:
        return str(self)
