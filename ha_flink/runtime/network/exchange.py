"""Both ends of a `ReadPartition` stream.

Serving side: send buffers of one subpartition while the consumer has credit, one credit per buffer; each
PartitionRequest message adds credit. What is queued when a message goes out goes with it (up to
MAX_BUFFERS_PER_MESSAGE), since gRPC's cost is per message, not per byte. Reading side: ask with an initial
credit, hand each buffer to the task's input gate, and give the credit back once the gate took it (in
batches of a quarter of the credit), so at most `credits` buffers are ever in flight or waiting per channel
(Flink's credit-based flow control).

Sizes: 32 credits and 32 buffers per subpartition keep a producer busy while the consumer's event loop
waits its turn for the GIL (with 4 and 8, a p=2 word count on two TaskManagers ran at half the p=1 rate:
its sources waited for credit)."""

from __future__ import annotations

import asyncio
import logging
import pickle
from typing import AsyncIterator

import grpc

from ha_flink.rpc import flink_pb2 as pb
from ha_flink.rpc import flink_pb2_grpc as pb_grpc
from ha_flink.runtime.network.partition import END_MARKER, PartitionAbortedError, PartitionRegistry, Subpartition
from ha_flink.runtime.task.channels import END_OF_PARTITION, InputGate, TaskCancelled

logger = logging.getLogger(__name__)

INITIAL_CREDITS = 32
MAX_BUFFERS_PER_MESSAGE = 16
PARTITION_WAIT_SECONDS = 30.0


async def serve_partition(registry: PartitionRegistry, requests: AsyncIterator[pb.PartitionRequest],
                          context: grpc.aio.ServicerContext) -> AsyncIterator[pb.Buffer]:
    try:
        first = await requests.__anext__()
    except StopAsyncIteration:  # the reader went away before it asked (its task was cancelled)
        return
    try:
        partition = await registry.wait_for(first.partition_id, PARTITION_WAIT_SECONDS)
    except asyncio.TimeoutError:
        await context.abort(grpc.StatusCode.NOT_FOUND, f"no result partition {first.partition_id} here")
        return
    subpartition = partition.subpartitions[first.subpartition]
    credits = asyncio.Semaphore(first.credits)

    async def read_credits() -> None:
        async for request in requests:
            for _ in range(request.credits):
                credits.release()

    reader = asyncio.ensure_future(read_credits())
    try:
        while True:
            await credits.acquire()
            try:
                data = await subpartition.next_buffer()
            except PartitionAbortedError as error:
                await context.abort(grpc.StatusCode.ABORTED, f"{first.partition_id}: {error}")
                return
            items, ended = await with_queued(subpartition, credits, data)
            if ended:
                yield pb.Buffer(items=items, end_of_partition=True)
                return
            yield pb.Buffer(items=items)
    finally:
        reader.cancel()


async def with_queued(subpartition: Subpartition, credits: asyncio.Semaphore, data: bytes) -> tuple[list[bytes], bool]:
    """The buffers of one message: `data` (its credit taken) and what else is queued and has credit, one
    credit per buffer, up to MAX_BUFFERS_PER_MESSAGE; and whether the subpartition ended after them."""
    items: list[bytes] = []
    while data != END_MARKER:
        items.append(data)
        if len(items) == MAX_BUFFERS_PER_MESSAGE or credits.locked():
            return items, False
        queued = subpartition.take_queued()
        if queued is None:
            return items, False
        await credits.acquire()  # (free: not locked)
        data = queued
    return items, True


async def read_channel(stub: pb_grpc.TaskExecutorStub, partition_id: str, subpartition: int, gate: InputGate,
                       channel_index: int, credits: int = INITIAL_CREDITS) -> None:
    """Feed one input channel of `gate` from a remote (or local) result partition until its end."""
    grants: asyncio.Queue[pb.PartitionRequest | None] = asyncio.Queue()
    await grants.put(pb.PartitionRequest(partition_id=partition_id, subpartition=subpartition, credits=credits))

    async def requests() -> AsyncIterator[pb.PartitionRequest]:
        while True:
            request = await grants.get()
            if request is None:
                return
            yield request

    call = stub.ReadPartition(requests())
    # Credit goes back in batches, as a message costs more than its content; fewer than `credits` are ever
    # held back, so the producer always has some.
    grant_every, taken = max(1, credits // 4), 0
    try:
        async for buffer in call:
            # A full gate: wait on the event loop without holding a thread (a pool of waiting threads can
            # run dry and deadlock); the task wakes us when it takes an item.
            try:
                for data in buffer.items:
                    await gate.put_async(channel_index, pickle.loads(data))
                if buffer.end_of_partition:
                    await gate.put_async(channel_index, END_OF_PARTITION)
                    break
            except TaskCancelled:
                return
            taken += len(buffer.items)
            if taken >= grant_every:
                await grants.put(pb.PartitionRequest(credits=taken))
                taken = 0
    finally:
        await grants.put(None)
        call.cancel()
