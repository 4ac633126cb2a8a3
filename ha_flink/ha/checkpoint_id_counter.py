"""CheckpointIDCounter: `jobs/<jobid>/checkpoint_id_counter`, a versioned counter advanced by
compare-and-set inside a fenced transaction, so ids strictly increase across leader changes and a deposed
leader cannot hand out an id."""

from __future__ import annotations

from kazoo.client import KazooClient
from kazoo.exceptions import BadVersionError, NodeExistsError

from ha_flink.ha.fencing import Fence

INITIAL_CHECKPOINT_ID = 1


class CheckpointIDCounter:
    def __init__(self, client: KazooClient, path: str, fence: Fence) -> None:
        self.client = client
        self.path = path
        self.fence = fence

    def start(self) -> None:
        if self.client.exists(self.path) is None:
            self.client.ensure_path(self.path.rsplit("/", 1)[0])
            tx = self.fence.transaction()
            tx.create(self.path, str(INITIAL_CHECKPOINT_ID).encode())
            try:
                self.fence.commit(tx)
            except NodeExistsError:
                pass

    def get(self) -> int:
        data, _ = self.client.get(self.path)
        return int(data)

    def get_and_increment(self) -> int:
        """The next checkpoint id; the counter moves past it atomically."""
        while True:
            data, stat = self.client.get(self.path)
            current = int(data)
            tx = self.fence.transaction()
            tx.set_data(self.path, str(current + 1).encode(), version=stat.version)
            try:
                self.fence.commit(tx)
                return current
            except BadVersionError:
                continue  # another writer moved it: read again

    def set_count(self, count: int) -> None:
        """Move the counter (restoring from a savepoint); never backwards."""
        while True:
            data, stat = self.client.get(self.path)
            if int(data) >= count:
                return
            tx = self.fence.transaction()
            tx.set_data(self.path, str(count).encode(), version=stat.version)
            try:
                self.fence.commit(tx)
                return
            except BadVersionError:
                continue

    def shutdown(self, globally_terminal: bool) -> None:
        if globally_terminal and self.client.exists(self.path) is not None:
            tx = self.fence.transaction()
            tx.delete(self.path)
            self.fence.commit(tx)
