"""Who may call: mutual TLS on the gRPC servers and the channels to them (`security.ssl.internal.*`), and
the pinning of peer certificates by fingerprint (`security.ssl.internal.cert.fingerprint`).

TLS authenticates; fencing (rpc/fencing.py) only orders leaders and is no secret. With internal TLS on, a
peer without a certificate from the internal truststore is refused in the handshake, before any request
is read, so nothing it sends is ever deserialized. A pinned fingerprint is checked before the servicer
sees the call: gRPC's Python API verifies chains but offers no verification callback, so the check runs
on the certificate the handshake recorded (the call's auth context)."""

from __future__ import annotations

from typing import Any, Awaitable, Callable

import grpc
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from ha_flink.security.keystores import fingerprint
from ha_flink.security.tls import TlsSettings


def server_credentials(tls: TlsSettings) -> grpc.ServerCredentials:
    assert tls.key is not None and tls.trusted_pem is not None
    return grpc.ssl_server_credentials([(tls.key.private_key_pem, tls.key.certificate_chain_pem)],
                                       root_certificates=tls.trusted_pem, require_client_auth=True)


def channel_credentials(tls: TlsSettings) -> grpc.ChannelCredentials:
    assert tls.key is not None
    return grpc.ssl_channel_credentials(root_certificates=tls.trusted_pem, private_key=tls.key.private_key_pem,
                                        certificate_chain=tls.key.certificate_chain_pem)


def add_port(server: grpc.aio.Server, address: str, tls: TlsSettings | None) -> int:
    """Binds `address` on `server`, with mutual TLS when `tls` is given; the port, or 0 if it cannot bind."""
    if tls is None:
        return server.add_insecure_port(address)
    return server.add_secure_port(address, server_credentials(tls))


def peer_fingerprint(context: grpc.aio.ServicerContext) -> str | None:
    pems = context.auth_context().get("x509_pem_cert") or []
    if not pems:
        return None
    return fingerprint(x509.load_pem_x509_certificate(pems[0]).public_bytes(serialization.Encoding.DER))


class PinnedPeerInterceptor(grpc.aio.ServerInterceptor):
    """Refuses (UNAUTHENTICATED) every call whose client certificate is not one of the pinned ones."""

    def __init__(self, pins: frozenset[str]) -> None:
        self.pins = pins

    def refusal(self, context: grpc.aio.ServicerContext) -> str | None:
        found = peer_fingerprint(context)
        if found in self.pins:
            return None
        return (f"the peer's certificate (SHA-1 {found or 'none'}) is not one pinned by "
                "security.ssl.internal.cert.fingerprint")

    async def intercept_service(
        self, continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        if handler is None:
            return handler
        kwargs = dict(request_deserializer=handler.request_deserializer,
                      response_serializer=handler.response_serializer)
        if handler.unary_unary or handler.stream_unary:
            behaviour = handler.unary_unary or handler.stream_unary

            async def unary(request: Any, context: grpc.aio.ServicerContext) -> Any:
                if (reason := self.refusal(context)) is not None:
                    await context.abort(grpc.StatusCode.UNAUTHENTICATED, reason)
                return await behaviour(request, context)

            make = grpc.unary_unary_rpc_method_handler if handler.unary_unary else grpc.stream_unary_rpc_method_handler
            return make(unary, **kwargs)
        streaming = handler.unary_stream or handler.stream_stream

        async def stream(request: Any, context: grpc.aio.ServicerContext) -> Any:
            if (reason := self.refusal(context)) is not None:
                await context.abort(grpc.StatusCode.UNAUTHENTICATED, reason)
            async for item in streaming(request, context):
                yield item

        make_stream = grpc.unary_stream_rpc_method_handler if handler.unary_stream else grpc.stream_stream_rpc_method_handler
        return make_stream(stream, **kwargs)


def server_interceptors(tls: TlsSettings | None) -> list[grpc.aio.ServerInterceptor]:
    """The interceptors `tls` asks for, to run before any other (fencing included)."""
    return [PinnedPeerInterceptor(tls.fingerprints)] if tls is not None and tls.fingerprints else []
