"""TLS material and mutual TLS on a real gRPC server on loopback: keystores as Flink users have them
(PKCS12, PEM), the errors a bad one gives at start, a peer without a trusted certificate refused in the
handshake, fingerprint pinning, and HTTPS with and without client certificates."""

from __future__ import annotations

import asyncio
import http.server
import ssl
import threading
import urllib.error
import urllib.request
from typing import Any, Iterator

import grpc
import pytest

from ha_flink.config import Configuration, ConfigurationError
from ha_flink.rpc import flink_pb2 as pb
from ha_flink.rpc import flink_pb2_grpc as pb_grpc
from ha_flink.rpc.channels import SERVER_OPTIONS, rpc_channel
from ha_flink.rpc.peer_auth import add_port, server_interceptors
from ha_flink.security.keystores import load_keystore, parse_fingerprints
from ha_flink.security.tls import internal_tls, rest_client_tls, rest_server_tls, unsupported_keys, url_opener
from ha_flink.testing.certificates import CertificateSet, create_test_certificates


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> CertificateSet:
    return create_test_certificates(tmp_path_factory.mktemp("certs"))


def internal(certs: CertificateSet, name: str = "internal", **extra: str) -> Configuration:
    return Configuration({**certs.internal_config(name), **extra})


def test_pkcs12_and_pem_keystores_hold_the_same_key(certs: CertificateSet) -> None:
    p12 = load_keystore(str(certs.keystore("internal")), "PKCS12", certs.password, None,
                        key="k", type_key="t")
    pem = load_keystore(str(certs.pem("internal")), "pem", None, certs.password, key="k", type_key="t")
    assert p12.private_key_pem == pem.private_key_pem and p12.certificate_chain_pem == pem.certificate_chain_pem
    assert "127.0.0.1" in p12.host_names() and "localhost" in p12.host_names()
    assert len(p12.fingerprint) == 59 and p12.fingerprint.count(":") == 19
    # keytool prints upper case with colons; without colons and in lower case is the same pin
    assert parse_fingerprints(p12.fingerprint.replace(":", "").lower(), "k") == {p12.fingerprint}


@pytest.mark.parametrize("change, key, words", [
    ({"security.ssl.internal.keystore-password": "wrong"}, "security.ssl.internal.keystore",
     ["internal.p12", "wrong security.ssl.internal.keystore-password"]),
    ({"security.ssl.internal.keystore": "/nonexistent/ks.p12"}, "security.ssl.internal.keystore",
     ["/nonexistent/ks.p12", "No such file"]),
    ({"security.ssl.internal.keystore-type": "JKS"}, "security.ssl.internal.keystore-type",
     ["keytool -importkeystore"]),
    ({"security.ssl.internal.truststore-type": "BKS"}, "security.ssl.internal.truststore-type",
     ["'BKS' is not a supported store type"]),
    ({"security.ssl.internal.truststore": ""}, "security.ssl.internal.truststore", ["truststore"]),
    ({"security.ssl.internal.cert.fingerprint": "12:34"}, "security.ssl.internal.cert.fingerprint",
     ["not a SHA-1 fingerprint"]),
])
def test_a_keystore_that_cannot_be_used_is_an_error_naming_key_and_file(
    certs: CertificateSet, change: dict[str, str], key: str, words: list[str],
) -> None:
    config = internal(certs, **change)
    if change.get("security.ssl.internal.truststore") == "":
        config.remove("security.ssl.internal.truststore")
    with pytest.raises(ConfigurationError) as raised:
        internal_tls(config)
    assert raised.value.key == key
    for word in words:
        assert word in str(raised.value)


def test_rest_tls_needs_a_truststore_only_for_mutual_authentication(certs: CertificateSet) -> None:
    server = rest_server_tls(Configuration(certs.rest_config(authentication=False)))
    assert server is not None and not server.mutual
    config = Configuration(certs.rest_config(authentication=True))
    config.remove("security.ssl.rest.truststore")
    with pytest.raises(ConfigurationError, match="security.ssl.rest.truststore"):
        rest_server_tls(config)
    assert rest_client_tls(Configuration()) is None and internal_tls(Configuration()) is None
    assert unsupported_keys(Configuration({"security.ssl.algorithms": "TLS_AES_128_GCM_SHA256"})) == [
        "security.ssl.algorithms: cipher suites are OpenSSL's (REST, data exchange) and BoringSSL's (gRPC) defaults "
        "for TLS 1.2+"]


class _Servicer(pb_grpc.TaskExecutorServicer):
    def __init__(self) -> None:
        self.calls = 0

    async def RequestTaskMetrics(self, request: Any, context: Any) -> Any:
        self.calls += 1
        return pb.TaskMetricsReport()


async def _serve(config: Configuration, host: str = "127.0.0.1") -> tuple[grpc.aio.Server, int, _Servicer]:
    tls = internal_tls(config)
    server = grpc.aio.server(interceptors=server_interceptors(tls), options=SERVER_OPTIONS)
    servicer = _Servicer()
    pb_grpc.add_TaskExecutorServicer_to_server(servicer, server)
    port = add_port(server, f"{host}:0", tls)
    await server.start()
    return server, port, servicer


async def _ask(port: int, config: Configuration | None, host: str = "127.0.0.1") -> grpc.StatusCode:
    channel = rpc_channel(f"{host}:{port}", internal_tls(config) if config is not None else None)
    try:
        await pb_grpc.TaskExecutorStub(channel).RequestTaskMetrics(pb.Empty(), timeout=5)
        return grpc.StatusCode.OK
    except grpc.RpcError as error:
        return error.code()
    finally:
        await channel.close()


def test_internal_tls_refuses_peers_without_a_trusted_certificate(certs: CertificateSet) -> None:
    async def scenario() -> None:
        server, port, servicer = await _serve(internal(certs))
        try:
            assert await _ask(port, internal(certs)) == grpc.StatusCode.OK
            assert await _ask(port, internal(certs, "client")) == grpc.StatusCode.OK  # same CA
            assert servicer.calls == 2
            assert await _ask(port, None) == grpc.StatusCode.UNAVAILABLE  # plaintext: no handshake
            assert await _ask(port, internal(certs, "stranger")) == grpc.StatusCode.UNAVAILABLE  # other CA
            assert servicer.calls == 2  # neither reached the servicer
        finally:
            await server.stop(None)

    asyncio.run(scenario())


def test_a_pinned_fingerprint_refuses_other_certificates_of_the_same_ca(certs: CertificateSet) -> None:
    pin = load_keystore(str(certs.keystore("internal")), "PKCS12", certs.password, None, key="k",
                        type_key="t").fingerprint

    async def scenario() -> None:
        server, port, servicer = await _serve(internal(certs, **{"security.ssl.internal.cert.fingerprint": pin}))
        try:
            assert await _ask(port, internal(certs)) == grpc.StatusCode.OK
            assert await _ask(port, internal(certs, "client")) == grpc.StatusCode.UNAUTHENTICATED
            assert servicer.calls == 1
        finally:
            await server.stop(None)

    asyncio.run(scenario())


def test_without_hostname_verification_a_server_is_checked_against_the_shared_certificate(
    certs: CertificateSet,
) -> None:
    """127.0.0.2 is not a name in the test certificates: refused with verify-hostname (Flink's default),
    accepted without it, the chain still verified (a stranger's certificate is refused either way)."""
    async def scenario() -> None:
        server, port, servicer = await _serve(internal(certs), host="127.0.0.2")
        try:
            assert await _ask(port, internal(certs), host="127.0.0.2") == grpc.StatusCode.UNAVAILABLE
            lax = {"security.ssl.verify-hostname": "false"}
            assert await _ask(port, internal(certs, **lax), host="127.0.0.2") == grpc.StatusCode.OK
            assert await _ask(port, internal(certs, "stranger", **lax), host="127.0.0.2") == grpc.StatusCode.UNAVAILABLE
            assert servicer.calls == 1
        finally:
            await server.stop(None)

    asyncio.run(scenario())


class _Hello(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"hello")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def https_server(certs: CertificateSet) -> Iterator[int]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Hello)
    tls = rest_server_tls(Configuration(certs.rest_config(authentication=True)))
    assert tls is not None
    server.socket = tls.server_context().wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def _get(port: int, config: Configuration | None) -> str:
    with url_opener(rest_client_tls(config) if config else None).open(
            f"https://localhost:{port}/", timeout=5) as answer:
        return answer.read().decode()


def test_rest_mutual_tls_and_server_pinning(certs: CertificateSet, https_server: int) -> None:
    client = Configuration(certs.rest_config("client"))
    assert _get(https_server, client) == "hello"
    no_certificate = Configuration(certs.rest_config("client", authentication=False))
    no_certificate.remove("security.ssl.rest.keystore")  # a client with the truststore only
    with pytest.raises((ssl.SSLError, urllib.error.URLError, ConnectionResetError)):
        _get(https_server, no_certificate)  # the server wants a client certificate
    with pytest.raises((ssl.SSLError, urllib.error.URLError)):
        _get(https_server, None)  # the system CAs do not know the test CA
    rest = load_keystore(str(certs.keystore("rest")), "PKCS12", certs.password, None, key="k", type_key="t")
    pinned = Configuration({**certs.rest_config("client"), "security.ssl.rest.cert.fingerprint": rest.fingerprint})
    assert _get(https_server, pinned) == "hello"
    wrong = Configuration({**certs.rest_config("client"), "security.ssl.rest.cert.fingerprint": "AB" * 20})
    with pytest.raises((ssl.SSLError, urllib.error.URLError), match="does not pin"):
        _get(https_server, wrong)
