"""Channels between subtasks in one process: a bounded queue per receiving subtask (its input gate).
A full gate blocks the sender, so a slow task back-pressures its producers instead of growing memory:
the in-process counterpart of credit-based flow control. Every blocking call wakes up regularly to
notice cancellation."""

from __future__ import annotations

import asyncio
import queue
import threading
import time
from typing import Any, Callable, Protocol, Sequence

from ha_flink.runtime.partitioner import Partitioner
from ha_flink.runtime.streamrecord import StampedBatch

POLL_SECONDS = 0.05


class EndOfPartition:
    """The last item a channel carries."""

    def __repr__(self) -> str:
        return "EndOfPartition"


END_OF_PARTITION = EndOfPartition()


class EndOfData:
    """No more records on this channel, but the producer stays for the final checkpoint (with
    checkpointing on, so that what the records produced is committed before the job ends)."""

    def __repr__(self) -> str:
        return "EndOfData"


END_OF_DATA = EndOfData()


class TaskCancelled(Exception):
    pass


class BackPressureClock:
    """The seconds one task output has waited for room in a full channel (Flink's back-pressured time),
    a wait in progress included, so a producer stuck behind a stalled consumer shows as back-pressured
    while it is stuck. Written by the task's thread, read by the metrics sampler."""

    def __init__(self) -> None:
        self.total = 0.0
        self.since: float | None = None

    def waiting(self) -> None:
        self.since = time.monotonic()

    def done(self) -> None:
        since, self.since = self.since, None
        if since is not None:
            self.total += time.monotonic() - since

    def seconds(self) -> float:
        since = self.since  # (read once: the task thread may end the wait meanwhile)
        return self.total + (time.monotonic() - since if since is not None else 0.0)


class InputGate:
    def __init__(self, channels: int, capacity: int, cancelled: threading.Event) -> None:
        self.channels = channels
        self.queue: queue.Queue[tuple[int, Any]] = queue.Queue(capacity)
        self.cancelled = cancelled
        self._space_waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = []
        self._waiters_lock = threading.Lock()

    def put(self, channel: int, item: Any, clock: BackPressureClock | None = None,
            cancelled: threading.Event | None = None) -> None:
        """Waits while the gate is full; `clock` (the sender's) runs meanwhile. The wait ends with
        TaskCancelled once `cancelled` is set: the sender's own flag where sender and receiver are
        separate tasks (the receiver's, by default, where one job shares one flag)."""
        try:
            self.queue.put_nowait((channel, item))
            return
        except queue.Full:
            if clock is not None:
                clock.waiting()
        try:
            while True:
                try:
                    self.queue.put((channel, item), timeout=POLL_SECONDS)
                    return
                except queue.Full:
                    if (cancelled or self.cancelled).is_set():
                        raise TaskCancelled() from None
        finally:
            if clock is not None:
                clock.done()

    def try_put(self, channel: int, item: Any) -> bool:
        try:
            self.queue.put_nowait((channel, item))
            return True
        except queue.Full:
            return False

    async def put_async(self, channel: int, item: Any) -> None:
        """For network readers on an event loop: wait for space without holding a thread; the task's next
        `get` wakes the waiter."""
        loop = asyncio.get_running_loop()
        while not self.try_put(channel, item):
            if self.cancelled.is_set():
                raise TaskCancelled()
            space = asyncio.Event()
            with self._waiters_lock:
                self._space_waiters.append((loop, space))
            if self.try_put(channel, item):  # space came between the first try and registering
                return
            try:
                await asyncio.wait_for(space.wait(), POLL_SECONDS)
            except asyncio.TimeoutError:
                pass

    def get(self, timeout: float) -> tuple[int, Any] | None:
        try:
            item = self.queue.get(timeout=timeout)
        except queue.Empty:
            return None
        if self._space_waiters:
            with self._waiters_lock:
                waiters, self._space_waiters = self._space_waiters, []
            for loop, space in waiters:
                loop.call_soon_threadsafe(space.set)
        return item


class OutputChannel(Protocol):
    """The `send` side of one channel as a RecordWriter sees it: LocalChannel here, the TaskManager's
    LocalOutputChannel and NetworkChannel."""

    def send(self, item: Any, clock: BackPressureClock | None = None) -> None: ...


class LocalChannel:
    def __init__(self, gate: InputGate, channel_index: int) -> None:
        self.gate = gate
        self.channel_index = channel_index

    def send(self, item: Any, clock: BackPressureClock | None = None) -> None:
        self.gate.put(self.channel_index, item, clock)


class _NotOpened(Partitioner):
    name = "not opened"

    def partition(self, batch: list[Any]) -> list[list[Any]]:
        raise RuntimeError("RecordWriter.open() was not called: its partitioner is not instantiated yet")

    def partition_stamped(self, batch: list[Any], timestamps: list[int]) -> list[tuple[list[Any], list[int]]]:
        return self.partition(batch)  # type: ignore[return-value]


_NOT_OPENED = _NotOpened()


class RecordWriter:
    """The output of one task toward one job edge: partitions each batch over the edge's channels.
    Counts what it sends (numRecordsOut) and the seconds it waited for a full channel (back-pressure)."""

    def __init__(self, make_partitioner: Callable[[], Partitioner], channels: Sequence[OutputChannel],
                 subtask_index: int) -> None:
        """`make_partitioner` is called by `open()`, on the task's thread (it unpickles user code)."""
        self._make_partitioner = make_partitioner
        self._subtask_index = subtask_index
        self.partitioner: Partitioner = _NOT_OPENED
        self.channels = channels
        self.records_out = 0
        self.clock = BackPressureClock()

    def open(self) -> None:
        partitioner = self.partitioner = self._make_partitioner()
        partitioner.setup(len(self.channels), self._subtask_index)

    def emit(self, batch: list[Any], timestamps: list[int] | None = None) -> None:
        self.records_out += len(batch)
        if timestamps is not None:
            self._emit_stamped(batch, timestamps)
            return
        if len(self.channels) == 1:
            self.channels[0].send(batch, self.clock)
            return
        for channel, part in zip(self.channels, self.partitioner.partition(batch)):
            if part:
                channel.send(part, self.clock)

    def _emit_stamped(self, batch: list[Any], timestamps: list[int]) -> None:
        if not batch:
            return
        if len(self.channels) == 1:
            self.channels[0].send(StampedBatch(batch, timestamps), self.clock)
            return
        for channel, (values, stamps) in zip(self.channels, self.partitioner.partition_stamped(batch, timestamps)):
            if values:
                channel.send(StampedBatch(values, stamps), self.clock)

    def end(self) -> None:
        self.broadcast(END_OF_PARTITION)

    def broadcast(self, event: Any) -> None:
        """An event every consumer must see (end of partition, checkpoint barrier), on every channel."""
        for channel in self.channels:
            channel.send(event)
