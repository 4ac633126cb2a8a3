"""Both ends of a `ReadPartition` stream.

Serving side: send buffers of one subpartition while the consumer has credit; each PartitionRequest
message adds credit. Reading side: ask with an initial credit, hand each buffer to the task's input gate,
and give one credit back once the gate took it, so at most `credits` buffers are ever in flight or
waiting per channel (Flink's credit-based flow control)."""

from __future__ import annotations

import asyncio
import logging
import pickle
from typing import Any, AsyncIterator

import grpc

from ha_flink.rpc import flink_pb2 as pb
from ha_flink.rpc import flink_pb2_grpc as pb_grpc
from ha_flink.runtime.network.partition import END_MARKER, PartitionAbortedError, PartitionRegistry
from ha_flink.runtime.task.channels import END_OF_PARTITION, InputGate, TaskCancelled

logger = logging.getLogger(__name__)

INITIAL_CREDITS = 4
PARTITION_WAIT_SECONDS = 30.0


async def serve_partition(registry: PartitionRegistry, requests: AsyncIterator[pb.PartitionRequest],
                          context: grpc.aio.ServicerContext) -> AsyncIterator[pb.Buffer]:
    first = await requests.__anext__()
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
            if data == END_MARKER:
                yield pb.Buffer(end_of_partition=True)
                return
            yield pb.Buffer(data=data)
    finally:
        reader.cancel()


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
    try:
        async for buffer in call:
            item: Any = END_OF_PARTITION if buffer.end_of_partition else pickle.loads(buffer.data)
            # A full gate: wait on the event loop without holding a thread (a pool of waiting threads can
            # run dry and deadlock); the task wakes us when it takes an item. Then hand the credit back.
            try:
                await gate.put_async(channel_index, item)
            except TaskCancelled:
                return
            if buffer.end_of_partition:
                break
            await grants.put(pb.PartitionRequest(credits=1))
    finally:
        await grants.put(None)
        call.cancel()
