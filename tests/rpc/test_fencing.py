"""Fencing over real gRPC: a server on a loopback port refuses stale, missing or leaderless session ids."""

from __future__ import annotations

import asyncio
import threading
import uuid
from typing import Any, Iterator

import grpc
import pytest

from ha_flink.rpc import flink_pb2 as pb
from ha_flink.rpc import flink_pb2_grpc as pb_grpc
from ha_flink.rpc.channels import SERVER_OPTIONS, blocking_channel
from ha_flink.rpc.fencing import FencingInterceptor, fencing_metadata


class _ResourceManager(pb_grpc.ResourceManagerServicer):
    async def Heartbeat(self, request: pb.TaskManagerHeartbeat, context: Any) -> pb.HeartbeatResponse:
        return pb.HeartbeatResponse(registered=True)


class _Dispatcher(pb_grpc.DispatcherServicer):
    async def ListJobs(self, request: pb.Empty, context: Any) -> pb.JobList:
        return pb.JobList(jobs=[pb.JobStatus(job_id="j1", state="RUNNING")])


class Server:
    def __init__(self) -> None:
        self.session: uuid.UUID | None = uuid.uuid4()
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        self.ready.wait(10)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_until_complete(self._serve())

    async def _serve(self) -> None:
        interceptor = FencingInterceptor(lambda: self.session, {"ResourceManager", "Dispatcher"}, {"ResourceManager"})
        self.server = grpc.aio.server(interceptors=[interceptor], options=SERVER_OPTIONS)
        pb_grpc.add_ResourceManagerServicer_to_server(_ResourceManager(), self.server)
        pb_grpc.add_DispatcherServicer_to_server(_Dispatcher(), self.server)
        self.port = self.server.add_insecure_port("127.0.0.1:0")
        await self.server.start()
        self.stopped = asyncio.Event()
        self.ready.set()
        await self.stopped.wait()
        await self.server.stop(0)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.stopped.set)
        self.thread.join(10)


@pytest.fixture
def server() -> Iterator[Server]:
    s = Server()
    yield s
    s.stop()


def heartbeat(server: Server, session: uuid.UUID | None) -> pb.HeartbeatResponse:
    with blocking_channel(f"127.0.0.1:{server.port}") as channel:
        stub = pb_grpc.ResourceManagerStub(channel)
        return stub.Heartbeat(pb.TaskManagerHeartbeat(resource_id="tm"), metadata=fencing_metadata(session),
                              timeout=5)


def test_the_current_session_id_is_accepted(server: Server) -> None:
    assert heartbeat(server, server.session).registered


def test_a_stale_session_id_is_refused_naming_both(server: Server) -> None:
    stale = uuid.uuid4()
    with pytest.raises(grpc.RpcError) as error:
        heartbeat(server, stale)
    assert error.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert f"stale leader session id {stale}; the current one is {server.session}" in error.value.details()


def test_a_missing_session_id_is_refused_where_required(server: Server) -> None:
    with pytest.raises(grpc.RpcError, match="carries no leader session id"):
        heartbeat(server, None)


def test_a_process_that_does_not_lead_refuses_everything(server: Server) -> None:
    old = server.session
    server.session = None
    with pytest.raises(grpc.RpcError, match="is not the leader"):
        heartbeat(server, old)


def test_clients_may_omit_the_token_on_unrequired_services_but_not_send_a_stale_one(server: Server) -> None:
    with blocking_channel(f"127.0.0.1:{server.port}") as channel:
        stub = pb_grpc.DispatcherStub(channel)
        assert stub.ListJobs(pb.Empty(), timeout=5).jobs[0].job_id == "j1"
        with pytest.raises(grpc.RpcError, match="stale leader session id"):
            stub.ListJobs(pb.Empty(), metadata=fencing_metadata(uuid.uuid4()), timeout=5)
