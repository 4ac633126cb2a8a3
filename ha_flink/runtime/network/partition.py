"""Result partitions: what one producing subtask writes for one job edge, one subpartition per consuming
subtask. A subpartition holds at most `capacity` serialized buffers; a producer that finds it full waits,
so a slow consumer back-pressures its producer through the network just as through a local gate.

Producers are task threads; the consumer of a subpartition is the thread that serves its connection
(runtime/network/exchange.py). The hand-over is a deque under one lock with two conditions, "data" and
"space". Neither side makes a system call per buffer: a notify only releases the waiter's lock. (When
every buffer woke an event loop instead, through its self-pipe, a busy producer spent half its time
taking the GIL back after that write: py-spy on a p=2 word count.)"""

from __future__ import annotations

import collections
import pickle
import threading
from typing import Any, Protocol

from ha_flink.runtime.task.channels import POLL_SECONDS, BackPressureClock, EndOfPartition, TaskCancelled

END_MARKER = b""  # an empty buffer marks the end of a subpartition
MAX_BUFFER_BYTES = 256 * 1024 * 1024  # one pickled item (a record batch), as gRPC's message limit was


def partition_id(job_id: str, vertex_id: str, subtask_index: int, attempt: int, edge_index: int) -> str:
    return f"{job_id}/{vertex_id}/{subtask_index}/{attempt}/{edge_index}"


class PartitionAbortedError(RuntimeError):
    pass


class ReaderSupersededError(RuntimeError):
    """A newer connection asked for the same subpartition: this one may take nothing more from it."""


class Interruptible(Protocol):
    """A connection serving a subpartition, as abort() and attach() wake it (exchange._Interrupter)."""

    def interrupt(self) -> None:
        """Shut the connection down: whatever its thread waits for on it ends."""

    def stop_reading(self) -> None:
        """Shut its reading side down: a thread waiting for credit wakes, and can still say why."""


class Subpartition:
    def __init__(self, capacity: int, cancelled: threading.Event) -> None:
        self.buffers: collections.deque[bytes] = collections.deque()
        self.capacity = capacity
        self.cancelled = cancelled
        self.aborted = False
        self._lock = threading.Lock()
        self._data = threading.Condition(self._lock)
        self._space = threading.Condition(self._lock)
        # The one connection that reads it: a subpartition has one consumer, and a buffer that a stale
        # second reader took would be lost to the real one (Flink: one read view per subpartition).
        self._reader: Interruptible | None = None
        self._reader_waiting = False  # in take(): a notify wakes it

    # producer side (task thread)
    def add(self, data: bytes, clock: BackPressureClock | None = None) -> None:
        """Waits while the subpartition is full; `clock` (the producer's) runs meanwhile."""
        with self._lock:
            if len(self.buffers) >= self.capacity:
                if clock is not None:
                    clock.waiting()
                try:
                    while len(self.buffers) >= self.capacity:
                        if self.cancelled.is_set():
                            raise TaskCancelled()
                        self._space.wait(POLL_SECONDS)
                finally:
                    if clock is not None:
                        clock.done()
            self.buffers.append(data)
            self._data.notify()

    def abort(self) -> None:
        """The producer is gone (cancelled, failed): the connection serving it ends with an error."""
        with self._lock:
            self.aborted = True
            self._data.notify_all()  # (a serving thread in take() says so to its consumer)
            busy = self._reader if not self._reader_waiting else None
        if busy is not None:  # (one waiting for credit wakes; its consumer, told ABORTED, ends the connection)
            busy.stop_reading()

    # consumer side (the serving thread)
    def attach(self, connection: Interruptible) -> Interruptible | None:
        """Makes `connection` the reader; the one it supersedes (closed here), if there was one."""
        with self._lock:
            previous, self._reader = self._reader, connection
            self._reader_waiting = False
            self._data.notify_all()
            aborted = self.aborted
        if previous is not None:
            previous.interrupt()
        if aborted:
            connection.interrupt()
        return previous

    def detach(self, connection: Interruptible) -> None:
        with self._lock:
            if self._reader is connection:
                self._reader = None

    def give_back(self, items: list[bytes], ended: bool) -> None:
        """Buffers that `take` returned but that never reached the consumer (the send failed): first in
        line again, for the next reader."""
        with self._lock:
            if ended:
                self.buffers.appendleft(END_MARKER)
            self.buffers.extendleft(reversed(items))

    def take(self, limit: int, connection: Interruptible) -> tuple[list[bytes], bool]:
        """Up to `limit` buffers, waiting for the first; and whether the subpartition ended after them.
        Raises PartitionAbortedError once the producer is gone."""
        items: list[bytes] = []
        with self._lock:
            while True:
                if self.aborted:
                    raise PartitionAbortedError("the producing task of this partition was cancelled or failed")
                if self._reader is not connection:
                    raise ReaderSupersededError("a newer connection reads this subpartition")
                if self.buffers:
                    break
                self._reader_waiting = True
                try:
                    self._data.wait()  # (no timeout: add, attach and abort notify; an idle channel costs nothing)
                finally:
                    self._reader_waiting = False
            ended = False
            while self.buffers and len(items) < limit:
                data = self.buffers.popleft()
                if data == END_MARKER:
                    ended = True
                    break
                items.append(data)
            self._space.notify()
        return items, ended


class ResultPartition:
    def __init__(self, pid: str, subpartitions: int, capacity: int, cancelled: threading.Event) -> None:
        self.id = pid
        self.subpartitions = [Subpartition(capacity, cancelled) for _ in range(subpartitions)]

    def abort(self) -> None:
        for subpartition in self.subpartitions:
            subpartition.abort()


class NetworkChannel:
    """The `send` side of one subpartition, as the task's RecordWriter sees it (like `LocalChannel`)."""

    def __init__(self, subpartition: Subpartition) -> None:
        self.subpartition = subpartition

    def send(self, item: Any, clock: BackPressureClock | None = None) -> None:
        if isinstance(item, EndOfPartition):
            self.subpartition.add(END_MARKER, clock)
        else:
            data = pickle.dumps(item, protocol=5)
            if len(data) > MAX_BUFFER_BYTES:
                raise ValueError(f"a record batch of {len(data)} bytes pickled is over the {MAX_BUFFER_BYTES} "
                                 "bytes a buffer of the data exchange may carry")
            self.subpartition.add(data, clock)


class PartitionRegistry:
    """The result partitions of one TaskManager, by id; a consumer may ask before the producer registered."""

    def __init__(self) -> None:
        self.partitions: dict[tuple[str, str], ResultPartition] = {}
        self._changed = threading.Condition()

    def register(self, session: str, partition: ResultPartition) -> None:
        """`session`: the leader session that deployed the producer. Partition ids repeat across leaders
        (each counts attempts from 0), so a consumer of a deposed leader never reads a new leader's
        partition, as for local channels (runtime/network/local.py)."""
        with self._changed:
            self.partitions[(session, partition.id)] = partition
            self._changed.notify_all()

    def wait_for(self, session: str, pid: str, timeout: float) -> ResultPartition | None:
        """The partition `pid` of `session` once registered; None if it is not within `timeout` seconds."""
        with self._changed:
            self._changed.wait_for(lambda: (session, pid) in self.partitions, timeout)
            return self.partitions.get((session, pid))

    def release_job(self, job_id: str) -> None:
        with self._changed:
            for key in [k for k in self.partitions if k[1].startswith(f"{job_id}/")]:
                del self.partitions[key]
