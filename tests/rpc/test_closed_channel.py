"""A call in flight when the JobManager closes a lost TaskManager's channel fails as a call, not as the
cancellation of whoever awaited it. (A chaos run saw a REST request to the leader end with "No response
returned." when a TaskManager was lost during its metrics fetch.) Real gRPC server on a loopback port."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any, Awaitable, Callable

import grpc
import pytest

from ha_flink.rpc import flink_pb2 as pb
from ha_flink.rpc import flink_pb2_grpc as pb_grpc
from ha_flink.rpc.channels import SERVER_OPTIONS, ChannelClosedError, complete, rpc_channel
from ha_flink.runtime.jobmanager.metric_fetcher import MetricFetcher
from ha_flink.runtime.jobmanager.resource_manager import ResourceManager


class _SlowTaskExecutor(pb_grpc.TaskExecutorServicer):
    """Holds every metrics request until released."""

    def __init__(self) -> None:
        self.received = asyncio.Event()
        self.release = asyncio.Event()

    async def RequestTaskMetrics(self, request: pb.Empty, context: Any) -> pb.TaskMetricsReport:
        self.received.set()
        await self.release.wait()
        return pb.TaskMetricsReport(tasks=[pb.TaskMetrics(job_id="j", vertex_id="v", subtask_index=0)])


def _with_server(scenario: Callable[[_SlowTaskExecutor, str], Awaitable[None]]) -> None:
    async def main() -> None:
        servicer = _SlowTaskExecutor()
        server = grpc.aio.server(options=SERVER_OPTIONS)
        pb_grpc.add_TaskExecutorServicer_to_server(servicer, server)
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        try:
            await scenario(servicer, f"127.0.0.1:{port}")
        finally:
            servicer.release.set()
            await server.stop(0)

    asyncio.run(main())


def test_a_metrics_fetch_during_which_the_taskmanager_is_lost_answers_without_it() -> None:
    async def scenario(servicer: _SlowTaskExecutor, address: str) -> None:
        rm = ResourceManager(heartbeat_interval=1.0, heartbeat_timeout=30.0)
        try:
            rm.register(pb.RegisterTaskManagerRequest(resource_id="tm-1", address=address, slots=1))
            fetcher = MetricFetcher(rm, uuid.uuid4(), update_interval_s=0.0)
            fetch = asyncio.ensure_future(fetcher.task_metrics())
            await asyncio.wait_for(servicer.received.wait(), 10)
            rm.lose("tm-1", "heartbeat timed out")  # closes its channel under the call
            assert await asyncio.wait_for(fetch, 10) == {}
            assert not fetch.cancelled()
        finally:
            rm.close()

    _with_server(scenario)


def test_a_call_cut_short_by_its_closed_channel_is_a_channel_closed_error() -> None:
    async def scenario(servicer: _SlowTaskExecutor, address: str) -> None:
        channel = rpc_channel(address, None)
        call = asyncio.ensure_future(complete(pb_grpc.TaskExecutorStub(channel).RequestTaskMetrics(pb.Empty()),
                                              address))
        await asyncio.wait_for(servicer.received.wait(), 10)
        await channel.close()
        with pytest.raises(ChannelClosedError, match=address):
            await asyncio.wait_for(call, 10)

    _with_server(scenario)


def test_cancelling_the_caller_still_cancels_it() -> None:
    async def scenario(servicer: _SlowTaskExecutor, address: str) -> None:
        channel = rpc_channel(address, None)
        try:
            call = asyncio.ensure_future(complete(pb_grpc.TaskExecutorStub(channel).RequestTaskMetrics(pb.Empty()),
                                                  address))
            await asyncio.wait_for(servicer.received.wait(), 10)
            call.cancel()
            with pytest.raises(asyncio.CancelledError):
                await call
        finally:
            await channel.close()

    _with_server(scenario)


def test_an_answered_call_returns_its_answer() -> None:
    async def scenario(servicer: _SlowTaskExecutor, address: str) -> None:
        channel = rpc_channel(address, None)
        try:
            servicer.release.set()
            report = await complete(pb_grpc.TaskExecutorStub(channel).RequestTaskMetrics(pb.Empty(), timeout=10),
                                    address)
            assert [t.vertex_id for t in report.tasks] == ["v"]
        finally:
            await channel.close()

    _with_server(scenario)
