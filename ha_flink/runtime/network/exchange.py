"""Both ends of a `ReadPartition` stream.

Serving side: send buffers of one subpartition while the consumer has credit; each PartitionRequest
message adds credit. Reading side: ask with an initial credit, hand each buffer to the task's input gate,
and give one credit back once the gate took it, so at most `credits` buffers are ever in flight or
waiting per channel (Flink's credit-based flow control)."""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import pickle
from typing import Any, AsyncIterator

import grpc

from ha_flink.rpc import flink_pb2 as pb
from ha_flink.rpc import flink_pb2_grpc as pb_grpc
from ha_flink.runtime.network.partition import END_MARKER, PartitionRegistry
from ha_flink.runtime.task.channels import END_OF_PARTITION, InputGate

logger = logging.getLogger(__name__)

INITIAL_CREDITS = 4
_GATE_WAITERS = concurrent.futures.ThreadPoolExecutor(max_workers=256, thread_name_prefix="gate-wait")
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
            data = await subpartition.next_buffer()
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

    loop = asyncio.get_running_loop()
    call = stub.ReadPartition(requests())
    try:
        async for buffer in call:
            item: Any = END_OF_PARTITION if buffer.end_of_partition else pickle.loads(buffer.data)
            # A full gate blocks: wait for it on a thread of our own pool (never the event loop, never the
            # default pool, whose few threads could all end up waiting), then hand the credit back.
            if not gate.try_put(channel_index, item):
                await loop.run_in_executor(_GATE_WAITERS, gate.put, channel_index, item)
            if buffer.end_of_partition:
                break
            await grants.put(pb.PartitionRequest(credits=1))
    finally:
        await grants.put(None)
        call.cancel()
