"""TLS settings from Flink's `security.ssl.*` keys, read and checked once when a daemon or client starts.

Two scopes, as in Flink: `internal` (all JobManager/TaskManager RPC and the data exchange, always mutual:
every peer presents a certificate from the internal truststore) and `rest` (HTTPS on the REST endpoints
and the dashboard, mutual with `security.ssl.rest.authentication-enabled`). The same keys configure both
sides: a daemon's server and its client calls, `bin/flink`, a standby forwarding to the leader.

A scope that is enabled but cannot be provided (no keystore, wrong password, unknown type) raises a
ConfigurationError naming the key and the file; nothing falls back to plaintext. Keys that Flink has but
that ha-flink cannot honour (the JVM's cipher names, netty's session cache, ...) are named in
`unsupported_keys` so the daemon says so at start."""

from __future__ import annotations

import http.client
import os
import ssl
import tempfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ha_flink.config import Configuration, ConfigurationError, SecurityOptions
from ha_flink.config.options import ConfigOption

if TYPE_CHECKING:
    from ha_flink.config.options import DefaultedConfigOption
from ha_flink.security.keystores import KeyMaterial, fingerprint, load_keystore, load_truststore, parse_fingerprints

# Flink keys of the SSL group that have no effect here, and why.
UNSUPPORTED = {
    "security.ssl.algorithms": "cipher suites are OpenSSL's (REST, data exchange) and BoringSSL's (gRPC) defaults "
                               "for TLS 1.2+",
    "security.ssl.provider": "TLS is OpenSSL (REST, data exchange) and BoringSSL (gRPC)",
    "security.ssl.internal.session-cache-size": "gRPC manages its TLS sessions; a data connection lives as long as "
                                                "its channel",
    "security.ssl.internal.session-timeout": "gRPC manages its TLS sessions; a data connection lives as long as "
                                             "its channel",
    "security.ssl.internal.handshake-timeout": "a handshake is bounded by the call's deadline (gRPC) or by 10 s "
                                               "(data exchange)",
    "security.ssl.internal.close-notify-flush-timeout": "gRPC closes its TLS connections itself",
    "security.ssl.reload": "certificates are read once at start; restart a daemon to take new ones",
}


@dataclass(frozen=True)
class TlsSettings:
    """One scope's TLS: our key and chain (None for a REST client that need not authenticate), the CA
    certificates we trust, the pinned peer fingerprints, and whether the peer must present a certificate."""

    scope: str  # "internal" or "rest"
    key: KeyMaterial | None
    trusted_pem: bytes | None  # None: a REST server that does not ask clients for certificates
    fingerprints: frozenset[str]
    mutual: bool
    verify_hostname: bool
    minimum_version: str  # "TLSv1.2" or "TLSv1.3"

    def target_name_override(self) -> str | None:
        """With `security.ssl.verify-hostname: false`, the name gRPC checks a server's certificate against
        instead of the address it dialled: the first name of our own certificate. That suits the set-up
        Flink's documentation recommends for internal TLS, one certificate shared by every daemon; the
        chain is verified against the truststore either way."""
        if self.verify_hostname or self.key is None:
            return None
        names = self.key.host_names()
        return names[0] if names else None

    # -- ssl (REST) --

    def server_context(self) -> ssl.SSLContext:
        """An `ssl` context for an HTTPS server of this scope."""
        assert self.key is not None
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = _VERSIONS[self.minimum_version]
        _load_key(context, self.key)
        if self.mutual:
            assert self.trusted_pem is not None
            context.load_verify_locations(cadata=self.trusted_pem.decode())
            context.verify_mode = ssl.CERT_REQUIRED
        return context

    def client_context(self) -> ssl.SSLContext:
        """An `ssl` context for calls to servers of this scope (bin/flink, a standby forwarding)."""
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.minimum_version = _VERSIONS[self.minimum_version]
        context.check_hostname = self.verify_hostname
        context.verify_mode = ssl.CERT_REQUIRED
        if self.trusted_pem is not None:
            context.load_verify_locations(cadata=self.trusted_pem.decode())
        else:
            context.load_default_certs()
        if self.key is not None:
            _load_key(context, self.key)
        return context


_VERSIONS = {"TLSv1.2": ssl.TLSVersion.TLSv1_2, "TLSv1.3": ssl.TLSVersion.TLSv1_3}


def _load_key(context: ssl.SSLContext, key: KeyMaterial) -> None:
    # `ssl` reads a key only from a file. The file holds the key encrypted with a one-time password and is
    # removed at once, so the clear key never touches the disk.
    from cryptography.hazmat.primitives import serialization

    password = os.urandom(24).hex().encode()
    private = serialization.load_pem_private_key(key.private_key_pem, None)
    encrypted = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                      serialization.BestAvailableEncryption(password))
    with tempfile.TemporaryDirectory(prefix="ha-flink-tls-") as folder:
        path = Path(folder) / "key.pem"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(key.certificate_chain_pem + encrypted)
        context.load_cert_chain(str(path), password=password)


@dataclass(frozen=True)
class _ScopeKeys:
    keystore: ConfigOption[str]
    keystore_password: ConfigOption[str]
    key_password: ConfigOption[str]
    keystore_type: DefaultedConfigOption[str]
    truststore: ConfigOption[str]
    truststore_password: ConfigOption[str]
    truststore_type: DefaultedConfigOption[str]
    fingerprint: ConfigOption[str]


_o = SecurityOptions
_KEYS = {
    "internal": _ScopeKeys(_o.SSL_INTERNAL_KEYSTORE, _o.SSL_INTERNAL_KEYSTORE_PASSWORD, _o.SSL_INTERNAL_KEY_PASSWORD,
                           _o.SSL_INTERNAL_KEYSTORE_TYPE, _o.SSL_INTERNAL_TRUSTSTORE,
                           _o.SSL_INTERNAL_TRUSTSTORE_PASSWORD, _o.SSL_INTERNAL_TRUSTSTORE_TYPE,
                           _o.SSL_INTERNAL_CERT_FINGERPRINT),
    "rest": _ScopeKeys(_o.SSL_REST_KEYSTORE, _o.SSL_REST_KEYSTORE_PASSWORD, _o.SSL_REST_KEY_PASSWORD,
                       _o.SSL_REST_KEYSTORE_TYPE, _o.SSL_REST_TRUSTSTORE, _o.SSL_REST_TRUSTSTORE_PASSWORD,
                       _o.SSL_REST_TRUSTSTORE_TYPE, _o.SSL_REST_CERT_FINGERPRINT),
}


def _settings(config: Configuration, scope: str, need_key: bool, need_trust: bool, mutual: bool) -> TlsSettings:
    keys = _KEYS[scope]
    why = f"security.ssl.{scope} is enabled"
    key = None
    if need_key or config.get(keys.keystore) is not None:
        path = config.require(keys.keystore, f"{why}, so a keystore with this process's key and certificate is needed")
        key = load_keystore(path, config.get(keys.keystore_type), config.get(keys.keystore_password),
                            config.get(keys.key_password), key=keys.keystore.key, type_key=keys.keystore_type.key)
    trusted = None
    if need_trust or config.get(keys.truststore) is not None:
        path = config.require(keys.truststore, f"{why}, so a truststore with the CA certificates of its peers is needed")
        trusted = load_truststore(path, config.get(keys.truststore_type), config.get(keys.truststore_password),
                                  key=keys.truststore.key, type_key=keys.truststore_type.key)
    return TlsSettings(scope, key, trusted, parse_fingerprints(config.get(keys.fingerprint), keys.fingerprint.key),
                       mutual, config.get(SecurityOptions.SSL_VERIFY_HOSTNAME), config.get(SecurityOptions.SSL_PROTOCOL))


def internal_tls(config: Configuration) -> TlsSettings | None:
    """Mutual TLS for all RPC and data exchange (`security.ssl.internal.enabled`), or None."""
    if not config.get(SecurityOptions.SSL_INTERNAL_ENABLED):
        return None
    if config.get(SecurityOptions.SSL_PROTOCOL) != "TLSv1.2":
        raise ConfigurationError("gRPC (the internal RPC) cannot be limited to TLS 1.3 from Python; it accepts "
                                 "TLS 1.2 and 1.3. Set TLSv1.2 (Flink's default)", key=SecurityOptions.SSL_PROTOCOL.key)
    return _settings(config, "internal", need_key=True, need_trust=True, mutual=True)


def rest_server_tls(config: Configuration) -> TlsSettings | None:
    """HTTPS for a REST endpoint (`security.ssl.rest.enabled`), mutual with `authentication-enabled`."""
    if not config.get(SecurityOptions.SSL_REST_ENABLED):
        return None
    mutual = config.get(SecurityOptions.SSL_REST_AUTHENTICATION_ENABLED)
    return _settings(config, "rest", need_key=True, need_trust=mutual, mutual=mutual)


def rest_client_tls(config: Configuration) -> TlsSettings | None:
    """How a REST client (bin/flink, a forwarding standby) talks to an HTTPS endpoint: the truststore (else
    the system's CAs), and its own keystore when the endpoint wants a client certificate."""
    if not config.get(SecurityOptions.SSL_REST_ENABLED):
        return None
    mutual = config.get(SecurityOptions.SSL_REST_AUTHENTICATION_ENABLED)
    return _settings(config, "rest", need_key=mutual, need_trust=False, mutual=mutual)


def unsupported_keys(config: Configuration) -> list[str]:
    """'key: why' for each Flink SSL key set in `config` that ha-flink does not honour."""
    return [f"{key}: {why}" for key, why in UNSUPPORTED.items() if key in config]


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    """Refuses a server whose certificate is not pinned (`security.ssl.rest.cert.fingerprint`)."""

    pins: frozenset[str] = frozenset()

    def connect(self) -> None:
        super().connect()
        der = self.sock.getpeercert(binary_form=True) if isinstance(self.sock, ssl.SSLSocket) else None
        found = fingerprint(der) if der else "none"
        if found not in self.pins:
            self.close()
            raise ssl.SSLCertVerificationError(
                f"{self.host}:{self.port} presented a certificate (SHA-1 {found}) that "
                "security.ssl.rest.cert.fingerprint does not pin")


class _HTTPSHandler(urllib.request.HTTPSHandler):
    def __init__(self, tls: TlsSettings) -> None:
        super().__init__(context=tls.client_context())
        self.pins = tls.fingerprints

    def https_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        if not self.pins:
            return super().https_open(req)
        connection = type("PinnedHTTPSConnection", (_PinnedHTTPSConnection,), {"pins": self.pins})
        return self.do_open(connection, req, context=self._context)  # type: ignore[attr-defined,arg-type]


def url_opener(tls: TlsSettings | None) -> urllib.request.OpenerDirector:
    """A urllib opener for REST calls under `tls` (plain HTTP when None); build it once and reuse it."""
    if tls is None:
        return urllib.request.build_opener()
    return urllib.request.build_opener(_HTTPSHandler(tls))

