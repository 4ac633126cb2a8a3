"""Result partitions: what one producing subtask writes for one job edge, one subpartition per consuming
subtask. A subpartition holds at most `capacity` serialized buffers; a producer that finds it full waits,
so a slow consumer back-pressures its producer through the network just as through a local gate.

Producers are task threads; consumers are coroutines on the TaskManager's event loop serving a
`ReadPartition` stream. The hand-over is a thread-safe deque plus a semaphore for capacity and an
asyncio event for "data arrived"."""

from __future__ import annotations

import asyncio
import collections
import pickle
import threading
from typing import Any

from ha_flink.runtime.task.channels import POLL_SECONDS, BackPressureClock, EndOfPartition, TaskCancelled

END_MARKER = b""  # an empty buffer marks the end of a subpartition


def partition_id(job_id: str, vertex_id: str, subtask_index: int, attempt: int, edge_index: int) -> str:
    return f"{job_id}/{vertex_id}/{subtask_index}/{attempt}/{edge_index}"


class PartitionAbortedError(RuntimeError):
    pass


class Subpartition:
    def __init__(self, loop: asyncio.AbstractEventLoop, capacity: int, cancelled: threading.Event) -> None:
        self.loop = loop
        self.buffers: collections.deque[bytes] = collections.deque()
        self.space = threading.Semaphore(capacity)
        self.data_available = asyncio.Event()
        self.cancelled = cancelled
        self.aborted = False

    # producer side (task thread)
    def add(self, data: bytes, clock: BackPressureClock | None = None) -> None:
        """Waits while the subpartition is full; `clock` (the producer's) runs meanwhile."""
        if not self.space.acquire(blocking=False):
            if clock is not None:
                clock.waiting()
            try:
                while not self.space.acquire(timeout=POLL_SECONDS):
                    if self.cancelled.is_set():
                        raise TaskCancelled()
            finally:
                if clock is not None:
                    clock.done()
        self.buffers.append(data)
        self.loop.call_soon_threadsafe(self.data_available.set)

    def abort(self) -> None:
        """The producer is gone (cancelled, failed): a waiting consumer stream ends with an error."""
        self.aborted = True
        self.data_available.set()

    # consumer side (event loop)
    async def next_buffer(self) -> bytes:
        while not self.buffers:
            if self.aborted:
                raise PartitionAbortedError("the producing task of this partition was cancelled or failed")
            self.data_available.clear()
            if self.buffers:
                break
            await self.data_available.wait()
        data = self.buffers.popleft()
        self.space.release()
        return data

    def take_queued(self) -> bytes | None:
        """The next buffer if one is queued now, without waiting."""
        if not self.buffers:
            return None
        data = self.buffers.popleft()
        self.space.release()
        return data


class ResultPartition:
    def __init__(self, pid: str, subpartitions: int, loop: asyncio.AbstractEventLoop, capacity: int,
                 cancelled: threading.Event) -> None:
        self.id = pid
        self.subpartitions = [Subpartition(loop, capacity, cancelled) for _ in range(subpartitions)]

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
            self.subpartition.add(pickle.dumps(item, protocol=5), clock)


class PartitionRegistry:
    """The result partitions of one TaskManager, by id; consumers may ask before the producer registered."""

    def __init__(self) -> None:
        self.partitions: dict[str, ResultPartition] = {}
        self.changed = asyncio.Condition()

    async def register(self, partition: ResultPartition) -> None:
        async with self.changed:
            self.partitions[partition.id] = partition
            self.changed.notify_all()

    async def wait_for(self, pid: str, timeout: float) -> ResultPartition:
        async with self.changed:
            await asyncio.wait_for(self.changed.wait_for(lambda: pid in self.partitions), timeout)
            return self.partitions[pid]

    def release_job(self, job_id: str) -> None:
        for pid in [p for p in self.partitions if p.startswith(f"{job_id}/")]:
            del self.partitions[pid]
