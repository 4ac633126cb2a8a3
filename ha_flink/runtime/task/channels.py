"""Channels between subtasks in one process: a bounded queue per receiving subtask (its input gate).
A full gate blocks the sender, so a slow task back-pressures its producers instead of growing memory:
the in-process counterpart of credit-based flow control. Every blocking call wakes up regularly to
notice cancellation."""

from __future__ import annotations

import collections
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
    """What one task reads, from all its input channels, in arrival order. `capacity` bounds what local
    senders (threads of this process) may put: a full gate blocks them. Remote channels put with
    `put_credited`, which never blocks, as the thread of their connection also feeds other tasks' gates:
    a remote channel is bounded by its credit instead, and a buffer's credit goes back to its producer
    (the channel's `credit_return`) when the task takes the buffer."""

    def __init__(self, channels: int, capacity: int, cancelled: threading.Event) -> None:
        self.channels = channels
        self.capacity = capacity
        self.cancelled = cancelled
        self._items: collections.deque[tuple[int, Any]] = collections.deque()
        self._bounded = 0  # items that `put` put, which `capacity` bounds
        self._lock = threading.Lock()
        self._not_empty = threading.Condition(self._lock)
        self._not_full = threading.Condition(self._lock)
        self._credit_returns: list[Callable[[], None] | None] = [None] * channels

    def set_credit_return(self, channel: int, credit_return: Callable[[], None]) -> None:
        """`channel` is remote: each of its items taken calls `credit_return` (on the task's thread)."""
        self._credit_returns[channel] = credit_return

    def put(self, channel: int, item: Any, clock: BackPressureClock | None = None,
            cancelled: threading.Event | None = None) -> None:
        """Waits while the gate is full; `clock` (the sender's) runs meanwhile. The wait ends with
        TaskCancelled once `cancelled` is set: the sender's own flag where sender and receiver are
        separate tasks (the receiver's, by default, where one job shares one flag)."""
        with self._lock:
            if self._bounded >= self.capacity:
                if clock is not None:
                    clock.waiting()
                try:
                    while self._bounded >= self.capacity:
                        if (cancelled or self.cancelled).is_set():
                            raise TaskCancelled()
                        self._not_full.wait(POLL_SECONDS)
                finally:
                    if clock is not None:
                        clock.done()
            self._bounded += 1
            self._items.append((channel, item))
            self._not_empty.notify()

    def put_credited(self, channel: int, item: Any) -> None:
        """An item of a remote channel, which its producer sent on credit: never waits."""
        with self._lock:
            self._items.append((channel, item))
            self._not_empty.notify()

    def get(self, timeout: float) -> tuple[int, Any] | None:
        with self._lock:
            if not self._items:
                self._not_empty.wait(timeout)
                if not self._items:
                    return None
            entry = self._items.popleft()
            credit_return = self._credit_returns[entry[0]]
            if credit_return is None:
                self._bounded -= 1
                self._not_full.notify()
        if credit_return is not None:
            credit_return()
        return entry


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
