"""Result partitions: what one producing subtask writes for one job edge, one subpartition per consuming
subtask. A subpartition holds at most `capacity` serialized buffers; a producer that finds it full waits,
so a slow consumer back-pressures its producer through the network just as through a local gate.

Producers are task threads; the consumer of a subpartition is the thread that serves the connection its
reader's stream is on (runtime/network/exchange.py), which polls it without waiting. The hand-over is a
deque under one lock: a producer tells the reader only of the first buffer of an empty queue, so a busy
producer makes no system call per buffer. (When every buffer woke an event loop instead, through its
self-pipe, a busy producer spent half its time taking the GIL back after that write: py-spy on a p=2
word count.)"""

from __future__ import annotations

import collections
import pickle
import threading
from typing import Any, Callable, Protocol

from ha_flink.runtime.task.channels import POLL_SECONDS, BackPressureClock, EndOfPartition, TaskCancelled

END_MARKER = b""  # an empty buffer marks the end of a subpartition
MAX_BUFFER_BYTES = 256 * 1024 * 1024  # one pickled item (a record batch), as gRPC's message limit was


def partition_id(job_id: str, vertex_id: str, subtask_index: int, attempt: int, edge_index: int) -> str:
    return f"{job_id}/{vertex_id}/{subtask_index}/{attempt}/{edge_index}"


class PartitionAbortedError(RuntimeError):
    pass


class ReaderSupersededError(RuntimeError):
    """A newer connection asked for the same subpartition: this one may take nothing more from it."""


class SubpartitionReader(Protocol):
    """The stream of a connection that serves a subpartition (exchange._ServedStream)."""

    def notify_data(self) -> None:
        """The subpartition has something new for its reader: a buffer where it had none, its end, an
        abort, or another reader. Called under the subpartition's lock, by any thread: must not block."""


class Subpartition:
    def __init__(self, capacity: int, cancelled: threading.Event) -> None:
        self.buffers: collections.deque[bytes] = collections.deque()
        self.capacity = capacity
        self.cancelled = cancelled
        self.aborted = False
        self._lock = threading.Lock()
        self._space = threading.Condition(self._lock)
        # The one stream that reads it: a subpartition has one consumer, and a buffer that a stale
        # second reader took would be lost to the real one (Flink: one read view per subpartition).
        self._reader: SubpartitionReader | None = None

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
            # Only the first buffer of an empty queue is news: a reader that left buffers here polls again
            # when it has credit for them.
            if len(self.buffers) == 1 and self._reader is not None:
                self._reader.notify_data()

    def abort(self) -> None:
        """The producer is gone (cancelled, failed): its reader's stream ends with an error."""
        with self._lock:
            self.aborted = True
            if self._reader is not None:
                self._reader.notify_data()

    # consumer side (the thread serving the reader's connection)
    def attach(self, reader: SubpartitionReader) -> SubpartitionReader | None:
        """Makes `reader` the reader; the one it supersedes (told so), if there was one."""
        with self._lock:
            previous, self._reader = self._reader, reader
            if previous is not None:
                previous.notify_data()  # (its next poll raises ReaderSupersededError)
        return previous

    def detach(self, reader: SubpartitionReader) -> None:
        with self._lock:
            if self._reader is reader:
                self._reader = None

    def give_back(self, items: list[bytes], ended: bool) -> None:
        """Buffers that `poll` returned but that never reached the consumer (the send failed): first in
        line again, for the next reader."""
        with self._lock:
            if ended:
                self.buffers.appendleft(END_MARKER)
            self.buffers.extendleft(reversed(items))

    def poll(self, limit: int, reader: SubpartitionReader) -> tuple[list[bytes], bool, bool]:
        """Up to `limit` buffers, without waiting; whether the subpartition ended after them; and whether
        more are queued (a reader that is not told of them otherwise). Raises PartitionAbortedError once
        the producer is gone, ReaderSupersededError once `reader` is not the reader any more."""
        items: list[bytes] = []
        with self._lock:
            if self.aborted:
                raise PartitionAbortedError("the producing task of this partition was cancelled or failed")
            if self._reader is not reader:
                raise ReaderSupersededError("a newer connection reads this subpartition")
            ended = False
            buffers = self.buffers
            while buffers and len(items) < limit:
                data = buffers.popleft()
                if data == END_MARKER:
                    ended = True
                    break
                items.append(data)
            if items:
                self._space.notify()
            return items, ended, bool(buffers) and not ended


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
        self._watchers: dict[tuple[str, str], list[Callable[[ResultPartition], None]]] = {}
        self._lock = threading.Lock()

    def register(self, session: str, partition: ResultPartition) -> None:
        """`session`: the leader session that deployed the producer. Partition ids repeat across leaders
        (each counts attempts from 0), so a consumer of a deposed leader never reads a new leader's
        partition, as for local channels (runtime/network/local.py)."""
        with self._lock:
            self.partitions[(session, partition.id)] = partition
            callbacks = self._watchers.pop((session, partition.id), [])
        for callback in callbacks:
            callback(partition)

    def watch(self, session: str, pid: str, callback: Callable[[ResultPartition], None]) -> ResultPartition | None:
        """The partition `pid` of `session` if registered; else None, and `callback` is called with it
        when it is (on the registering thread, so it must not block), unless `unwatch`ed first."""
        with self._lock:
            partition = self.partitions.get((session, pid))
            if partition is None:
                self._watchers.setdefault((session, pid), []).append(callback)
            return partition

    def unwatch(self, session: str, pid: str, callback: Callable[[ResultPartition], None]) -> None:
        with self._lock:
            callbacks = self._watchers.get((session, pid), [])
            if callback in callbacks:
                callbacks.remove(callback)
            if not callbacks:
                self._watchers.pop((session, pid), None)

    def release_job(self, job_id: str) -> None:
        with self._lock:
            for key in [k for k in self.partitions if k[1].startswith(f"{job_id}/")]:
                del self.partitions[key]
