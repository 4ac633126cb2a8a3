"""Fencing of RPC: calls into a leader component carry the leader session id in gRPC metadata, and a
server interceptor refuses a stale one (FAILED_PRECONDITION, naming both ids) before the servicer sees
the call. So a deposed leader's JobMaster cannot command TaskManagers, and a TaskManager still talking
to an old leader learns it at its next call.

`required` services refuse calls without a token too (TaskManager <-> ResourceManager); other services
(the Dispatcher, which clients call after looking the leader up) refuse only a wrong one."""

from __future__ import annotations

import uuid
from typing import Any, Awaitable, Callable

import grpc

LEADER_SESSION_KEY = "x-flink-leader-session-id"


def fencing_metadata(session_id: uuid.UUID | None) -> tuple[tuple[str, str], ...]:
    return () if session_id is None else ((LEADER_SESSION_KEY, str(session_id)),)


def _session_of(metadata: Any) -> str | None:
    for key, value in metadata or ():
        if key == LEADER_SESSION_KEY:
            return value
    return None


class FencingInterceptor(grpc.aio.ServerInterceptor):
    """Refuses calls whose leader session id is not `current_session()`.

    `current_session` returns this process's leader session id, or None when it does not lead (then every
    call to a fenced service is refused)."""

    def __init__(self, current_session: Callable[[], uuid.UUID | None], fenced_services: set[str],
                 required_services: set[str] | None = None, role: str = "JobManager") -> None:
        self.current_session = current_session
        self.fenced_services = fenced_services
        self.required_services = required_services or set()
        self.role = role

    async def intercept_service(
        self, continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        service = handler_call_details.method.rsplit("/", 2)[-2].rsplit(".", 1)[-1]
        if handler is None or service not in self.fenced_services:
            return handler
        offered = _session_of(handler_call_details.invocation_metadata)
        current = self.current_session()
        if offered is None and service not in self.required_services and current is not None:
            return handler
        if current is not None and offered == str(current):
            return handler
        if current is None:
            reason = f"this {self.role} is not the leader (no leader session); look the leader up again"
        elif offered is None:
            reason = f"the call carries no leader session id; the current one is {current}"
        else:
            reason = f"stale leader session id {offered}; the current one is {current}"
        return _refusing(handler, f"{handler_call_details.method}: {reason}")


def _refusing(handler: grpc.RpcMethodHandler, message: str) -> grpc.RpcMethodHandler:
    async def refuse(request: Any, context: grpc.aio.ServicerContext) -> Any:
        await context.abort(grpc.StatusCode.FAILED_PRECONDITION, message)

    async def refuse_stream(request: Any, context: grpc.aio.ServicerContext) -> Any:
        await context.abort(grpc.StatusCode.FAILED_PRECONDITION, message)
        yield  # pragma: no cover - makes this an async generator, as a streaming handler must be

    kwargs = dict(request_deserializer=handler.request_deserializer, response_serializer=handler.response_serializer)
    if handler.unary_unary:
        return grpc.unary_unary_rpc_method_handler(refuse, **kwargs)
    if handler.unary_stream:
        return grpc.unary_stream_rpc_method_handler(refuse_stream, **kwargs)
    if handler.stream_unary:
        return grpc.stream_unary_rpc_method_handler(refuse, **kwargs)
    return grpc.stream_stream_rpc_method_handler(refuse_stream, **kwargs)
