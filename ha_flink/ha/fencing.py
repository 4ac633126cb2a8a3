"""Fenced writes: every HA write a leader makes is one ZooKeeper transaction that first checks that the
leader's own latch node still exists. A leader whose session expired (its ephemeral latch is gone), or
that was revoked, cannot write: the transaction is refused whole and nothing changes. A write refused
because the latch node is gone tells the election (`on_lost`), which revokes at once: a leader whose latch
vanished stops acting instead of going on with every write refused."""

from __future__ import annotations

from typing import Any, Callable

from kazoo.client import KazooClient, KazooState, TransactionRequest
from kazoo.exceptions import NoNodeError, RolledBackError, RuntimeInconsistency


class FencingError(RuntimeError):
    """The writer is no longer the leader it was; nothing was written."""


class Fence:
    """Makes transactions that commit only while `latch_path` exists and `is_valid()` holds.

    `latch_path` None gives an unfenced writer: for HA data written outside an election (tools, tests
    of a store on its own)."""

    def __init__(self, client: KazooClient, latch_path: str | None = None,
                 is_valid: Callable[[], bool] = lambda: True, description: str = "this leader",
                 on_lost: Callable[[], None] | None = None) -> None:
        self.client = client
        self.latch_path = latch_path
        self._is_valid = is_valid
        self.description = description
        self._on_lost = on_lost

    @classmethod
    def unfenced(cls, client: KazooClient) -> Fence:
        return cls(client, None, description="an unfenced writer")

    def is_valid(self) -> bool:
        """Whether the leadership behind this fence still holds (as far as this process knows)."""
        return self._is_valid()

    def transaction(self) -> TransactionRequest:
        tx = self.client.transaction()
        if self.latch_path is not None:
            tx.check(self.latch_path, -1)  # version -1: the node exists, whatever its version
        return tx

    def commit(self, tx: TransactionRequest) -> list[Any]:
        """Commit; return the results of the caller's own operations. Raises FencingError when the fence
        failed, else the first real error of a refused transaction (NodeExistsError, BadVersionError...)."""
        if not self._is_valid():
            raise FencingError(f"{self.description} has lost its leadership; the write was refused and nothing changed")
        if self.latch_path is not None and self.client.state != KazooState.CONNECTED:
            # kazoo would queue it until a reconnect, and send it then, however much later: by that time this
            # process may have given up the leadership (a tolerated suspension that lasted too long)
            raise FencingError(f"{self.description} is not connected to ZooKeeper; the write was not sent and "
                               "nothing changed")
        results = tx.commit()
        if self.latch_path is not None:
            if isinstance(results[0], NoNodeError):
                if self._on_lost is not None:
                    self._on_lost()
                raise FencingError(
                    f"{self.description} has lost its leadership: its latch node {self.latch_path} is gone "
                    "(session expired or closed); the write was refused and nothing changed"
                )
            results = results[1:]
        for result in results:
            if isinstance(result, Exception) and not isinstance(result, (RolledBackError, RuntimeInconsistency)):
                raise result
        return results
