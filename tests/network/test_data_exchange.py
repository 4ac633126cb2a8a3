"""The data exchange between TaskManagers (runtime/network/exchange.py) over a real gRPC server on a loopback
port: a producer thread writes a result partition, a consumer reads it through `read_channel` into an input
gate. Order and the end of the partition arrive intact, a stalled consumer bounds what its producer may
queue (credit-based flow control), and a producer that is ahead ships its queued buffers in fewer messages
than buffers."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any, AsyncIterator

import grpc

from ha_flink.rpc import flink_pb2 as pb
from ha_flink.rpc import flink_pb2_grpc as pb_grpc
from ha_flink.rpc.channels import SERVER_OPTIONS
from ha_flink.runtime.network.exchange import MAX_BUFFERS_PER_MESSAGE, read_channel, serve_partition
from ha_flink.runtime.network.partition import NetworkChannel, PartitionRegistry, ResultPartition
from ha_flink.runtime.task.channels import END_OF_PARTITION, InputGate, TaskCancelled

PARTITION = "job/vertex/0/0/0"


class _Partitions(pb_grpc.TaskExecutorServicer):  # (only ReadPartition is called)
    """A TaskExecutor that only serves result partitions, counting the messages it sends."""

    def __init__(self, registry: PartitionRegistry) -> None:
        self.registry = registry
        self.messages = 0
        self.buffers = 0

    async def ReadPartition(self, request_iterator: Any, context: Any) -> AsyncIterator[pb.Buffer]:
        async for buffer in serve_partition(self.registry, request_iterator, context):
            self.messages += 1
            self.buffers += len(buffer.items)
            yield buffer


class _Exchange:
    """One partition of one subpartition, served on a loopback port from an event loop of its own."""

    def __init__(self, capacity: int) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.cancelled = threading.Event()
        self.readers: list[asyncio.Task[None]] = []
        self.registry = PartitionRegistry()
        self.servicer = _Partitions(self.registry)
        self.partition = ResultPartition(PARTITION, 1, self.loop, capacity, self.cancelled)
        self.port = self._run(self._start())
        self.channel = NetworkChannel(self.partition.subpartitions[0])

    def _run(self, coroutine: Any, timeout: float = 30) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    async def _start(self) -> int:
        self.server = grpc.aio.server(options=SERVER_OPTIONS)
        pb_grpc.add_TaskExecutorServicer_to_server(self.servicer, self.server)
        port = self.server.add_insecure_port("127.0.0.1:0")
        await self.server.start()
        await self.registry.register(self.partition)
        return port

    def read_into(self, gate: InputGate, credits: int) -> Any:
        async def read() -> None:
            channel = grpc.aio.insecure_channel(f"127.0.0.1:{self.port}")
            try:
                await read_channel(pb_grpc.TaskExecutorStub(channel), PARTITION, 0, gate, 0, credits)
            finally:
                await channel.close()

        async def spawn() -> asyncio.Task[None]:
            task = asyncio.ensure_future(read())
            self.readers.append(task)
            return task

        task = self._run(spawn())

        async def finished() -> None:
            await task
        return asyncio.run_coroutine_threadsafe(finished(), self.loop)

    def close(self) -> None:
        self.cancelled.set()
        self.partition.abort()
        self._run(self._stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()

    async def _stop(self) -> None:
        for task in self.readers:
            task.cancel()
        await asyncio.gather(*self.readers, return_exceptions=True)
        await self.server.stop(0)


def _drain(gate: InputGate, deadline: float) -> list[Any]:
    items = []
    while time.monotonic() < deadline:
        item = gate.get(timeout=0.05)
        if item is None:
            continue
        items.append(item[1])
        if item[1] is END_OF_PARTITION:
            return items
    raise AssertionError(f"the partition did not end in time; {len(items)} items arrived")


def test_every_batch_arrives_in_order_and_then_the_end() -> None:
    exchange = _Exchange(capacity=8)
    try:
        gate = InputGate(1, 4, exchange.cancelled)
        reading = exchange.read_into(gate, credits=4)
        batches = [[(f"word{i % 7}", i)] * (1 + i % 5) for i in range(500)]

        def produce() -> None:
            for batch in batches:
                exchange.channel.send(batch)
            exchange.channel.send(END_OF_PARTITION)

        producer = threading.Thread(target=produce)
        producer.start()
        received = _drain(gate, time.monotonic() + 60)
        producer.join(10)
        reading.result(10)
        assert received == [*batches, END_OF_PARTITION]
    finally:
        exchange.close()


def test_a_stalled_consumer_bounds_what_its_producer_queues() -> None:
    capacity, credits, gate_capacity = 8, 4, 2
    exchange = _Exchange(capacity)
    try:
        gate = InputGate(1, gate_capacity, exchange.cancelled)
        exchange.read_into(gate, credits)
        sent = []

        def produce() -> None:
            try:
                for i in range(1000):
                    exchange.channel.send([i])
                    sent.append(i)
            except TaskCancelled:  # (the exchange closed under it, at the end of the test)
                pass

        producer = threading.Thread(target=produce, daemon=True)
        producer.start()
        # Nobody takes from the gate: the producer stops once the subpartition, the credits in flight, the
        # full gate and the one item the reader holds are used up.
        bound = capacity + credits + gate_capacity + 1
        previous, deadline = -1, time.monotonic() + 30
        while (len(sent) != previous or not sent) and time.monotonic() < deadline:  # until it stops growing
            previous = len(sent)
            for _ in range(10):
                time.sleep(0.05)  # (a poll: the producer is observed from outside)
        assert 0 < len(sent) <= bound, f"{len(sent)} queued with a bound of {bound}"
        taken = _take(gate, 50, time.monotonic() + 30)  # draining lets it go on
        assert taken == list(range(50))
    finally:
        exchange.close()
        producer.join(10)


def _take(gate: InputGate, count: int, deadline: float) -> list[int]:
    values: list[int] = []
    while len(values) < count and time.monotonic() < deadline:
        item = gate.get(timeout=0.05)
        if item is not None:
            values.extend(item[1])
    return values


def test_a_producer_ahead_of_its_consumer_sends_its_queued_buffers_together() -> None:
    exchange = _Exchange(capacity=64)
    try:
        for i in range(48):  # all queued before anyone reads
            exchange.channel.send([i])
        exchange.channel.send(END_OF_PARTITION)
        gate = InputGate(1, 64, exchange.cancelled)
        exchange.read_into(gate, credits=64).result(30)
        received = _drain(gate, time.monotonic() + 30)
        assert received == [*([i] for i in range(48)), END_OF_PARTITION]
        assert exchange.servicer.buffers == 48
        assert exchange.servicer.messages <= -(-48 // MAX_BUFFERS_PER_MESSAGE) + 1
    finally:
        exchange.close()


def test_a_reader_that_leaves_before_asking_ends_its_stream_quietly() -> None:
    """(Seen at scale: a cancelled reader's empty request stream raised 'async generator raised
    StopAsyncIteration' on the serving side, as an error of the call.)"""
    exchange = _Exchange(capacity=8)
    try:
        async def read_nothing() -> tuple[list[pb.Buffer], grpc.StatusCode]:
            async def no_requests() -> AsyncIterator[pb.PartitionRequest]:
                return
                yield  # (an async generator that ends at once)
            channel = grpc.aio.insecure_channel(f"127.0.0.1:{exchange.port}")
            try:
                call = pb_grpc.TaskExecutorStub(channel).ReadPartition(no_requests())
                buffers = [buffer async for buffer in call]
                return buffers, await call.code()
            finally:
                await channel.close()

        buffers, code = asyncio.run_coroutine_threadsafe(read_nothing(), exchange.loop).result(30)
        assert (buffers, code) == ([], grpc.StatusCode.OK)
    finally:
        exchange.close()
