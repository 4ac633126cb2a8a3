"""The job record: the data of a job's own node `jobs/<jobid>`, what a new leader needs when the job's other
nodes were damaged behind the cluster's back.

- `job-graph`: a copy of the job graph's pointer (`jobgraphs/<jobid>`), written in the same transaction as
  the pointer at submission. A job whose pointer was deleted is re-adopted from it; the file it names is
  never collected as an orphan.
- `checkpointed`: set in the transaction that commits the job's first completed checkpoint. A job with it
  set never starts from empty state, even if every checkpoint node was deleted.

Nodes of older versions hold no data: an empty record."""

from __future__ import annotations

import json
from dataclasses import dataclass

from kazoo.client import KazooClient, TransactionRequest
from kazoo.exceptions import NoNodeError


@dataclass(frozen=True)
class JobRecord:
    job_graph_pointer: bytes | None = None
    checkpointed: bool = False
    readable: bool = True  # False: the node held data that is not a record (shown, never overwritten blindly)

    def to_bytes(self) -> bytes:
        fields: dict[str, object] = {"checkpointed": self.checkpointed}
        if self.job_graph_pointer is not None:
            fields["job-graph"] = json.loads(self.job_graph_pointer.decode())
        return json.dumps(fields).encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> JobRecord:
        if not data:
            return cls()
        try:
            fields = json.loads(data.decode())
            pointer = fields.get("job-graph")
            return cls(json.dumps(pointer).encode() if isinstance(pointer, dict) else None,
                       bool(fields.get("checkpointed", False)))
        except (ValueError, AttributeError, UnicodeDecodeError):
            return cls(readable=False)


def read(client: KazooClient, path: str) -> JobRecord | None:
    """The record at `path`, or None if the node does not exist."""
    try:
        data, _ = client.get(path)
    except NoNodeError:
        return None
    return JobRecord.from_bytes(data)


def write(tx: TransactionRequest, client: KazooClient, path: str, record: JobRecord) -> None:
    """Add the write of `record` to `tx` (a create if the node is new). Its parent must exist."""
    if client.exists(path) is None:
        tx.create(path, record.to_bytes())
    else:
        tx.set_data(path, record.to_bytes())
