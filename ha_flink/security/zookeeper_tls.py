"""TLS to ZooKeeper's client port, configured as a Flink user configures it: Flink has no keys of its own for
this, its users pass ZooKeeper's client system properties in `env.java.opts.all` (DeploymentOptions.JAVA_OPTS,
fallback `env.java.opts`), ZooKeeper 3.8's names::

    -Dzookeeper.client.secure=true
    -Dzookeeper.clientCnxnSocket=org.apache.zookeeper.ClientCnxnSocketNetty
    -Dzookeeper.ssl.keyStore.location=/etc/flink/zk-client.p12  -Dzookeeper.ssl.keyStore.password=...
    -Dzookeeper.ssl.keyStore.type=PKCS12|PEM                    (default: from the file name, .p12 / .pem)
    -Dzookeeper.ssl.trustStore.location=/etc/flink/zk-ca.pem    -Dzookeeper.ssl.trustStore.password=...
    -Dzookeeper.ssl.trustStore.type=PKCS12|PEM
    -Dzookeeper.ssl.hostnameVerification=true|false             (default true)

This module owns: reading those properties out of the JVM options (`java_system_properties`, the last
`-D` of a name wins, as in the JVM), the decision whether and how the ZooKeeper client speaks TLS
(`zookeeper_tls`, a frozen `ZooKeeperTls`), and the `ssl.SSLContext` made from it (`ZooKeeperTls.ssl_context`).

As ZooKeeper's Java client does: without `zookeeper.client.secure=true` there is no TLS (whatever else is
set); without a keystore the client shows no certificate (a server with `ssl.clientAuth=need` refuses it);
without a truststore it trusts the system's CAs (the JVM's cacerts). With a truststore it trusts that alone.
`keyStore.passwordPath` / `trustStore.passwordPath` (a file holding the password, one trailing line break
dropped) win over the password properties. `protocol` / `enabledProtocols` are honoured (ZooKeeper 3.8's
default, TLSv1.2 only, too). A secure client needs `clientCnxnSocket=...ClientCnxnSocketNetty`: Java's
default NIO socket does no TLS, so that set-up is refused rather than silently meaning something else.
Properties that cannot be honoured (`ciphersuites`, which are Java's names, `crl`/`ocsp` when true,
`context.supplier.class`) are logged as not supported; server-side ones (`clientAuth`, `quorum.*`,
`authProvider`, `handshakeDetectionTimeoutMillis`) are ignored, as the Java client ignores them.

The stores are read by `ha_flink.security.keystores` (PKCS12 or PEM; JKS is refused with the keytool command
that converts it). Every error is a ConfigurationError with key `env.java.opts.all` naming the `-D` property
and the file. Python's `ssl` loads a client certificate only from files: `ssl_context` writes the chain and
the key, encrypted with a random one-time password, into a private temp dir (0700, files 0600), loads them
and removes the dir at once; the clear key never touches disk and nothing outlives the call."""

from __future__ import annotations

import logging
import os
import secrets
import shlex
import shutil
import ssl
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, TypeVar

from cryptography.hazmat.primitives import serialization

from ha_flink.config import Configuration, ConfigurationError, DeploymentOptions
from ha_flink.security.jaas import java_opts_key
from ha_flink.security.keystores import KeyMaterial, load_keystore, load_truststore

logger = logging.getLogger(__name__)
T = TypeVar("T")

SECURE_PROPERTY = "zookeeper.client.secure"
CNXN_SOCKET_PROPERTY = "zookeeper.clientCnxnSocket"
NETTY_CNXN_SOCKET = "org.apache.zookeeper.ClientCnxnSocketNetty"
SSL_PREFIX = "zookeeper.ssl."
KEYSTORE_LOCATION = "zookeeper.ssl.keyStore.location"
KEYSTORE_PASSWORD = "zookeeper.ssl.keyStore.password"
KEYSTORE_PASSWORD_PATH = "zookeeper.ssl.keyStore.passwordPath"
KEYSTORE_TYPE = "zookeeper.ssl.keyStore.type"
TRUSTSTORE_LOCATION = "zookeeper.ssl.trustStore.location"
TRUSTSTORE_PASSWORD = "zookeeper.ssl.trustStore.password"
TRUSTSTORE_PASSWORD_PATH = "zookeeper.ssl.trustStore.passwordPath"
TRUSTSTORE_TYPE = "zookeeper.ssl.trustStore.type"
HOSTNAME_VERIFICATION = "zookeeper.ssl.hostnameVerification"
PROTOCOL = "zookeeper.ssl.protocol"
ENABLED_PROTOCOLS = "zookeeper.ssl.enabledProtocols"
DEFAULT_PROTOCOL = "TLSv1.2"  # ZooKeeper 3.8's X509Util.DEFAULT_PROTOCOL

_HONOURED = {KEYSTORE_LOCATION, KEYSTORE_PASSWORD, KEYSTORE_PASSWORD_PATH, KEYSTORE_TYPE, TRUSTSTORE_LOCATION,
             TRUSTSTORE_PASSWORD, TRUSTSTORE_PASSWORD_PATH, TRUSTSTORE_TYPE, HOSTNAME_VERIFICATION, PROTOCOL,
             ENABLED_PROTOCOLS}
# read by ZooKeeper's servers, not by its client
_SERVER_SIDE = ("zookeeper.ssl.clientAuth", "zookeeper.ssl.authProvider", "zookeeper.ssl.handshakeDetectionTimeoutMillis",
                "zookeeper.ssl.quorum.")
# a true value asks for a check this client does not make
_CHECKS = ("zookeeper.ssl.crl", "zookeeper.ssl.ocsp")
# the file name endings ZooKeeper's KeyStoreFileType.fromFilename knows
_TYPE_BY_SUFFIX = {".p12": "PKCS12", ".pem": "PEM", ".jks": "JKS", ".bcfks": "BCFKS"}
_TLS_VERSIONS = {"TLSv1": ssl.TLSVersion.TLSv1, "TLSv1.1": ssl.TLSVersion.TLSv1_1,
                 "TLSv1.2": ssl.TLSVersion.TLSv1_2, "TLSv1.3": ssl.TLSVersion.TLSv1_3}


def java_system_properties(java_opts: str | None, key: str = DeploymentOptions.JAVA_OPTS.key) -> dict[str, str]:
    """The `-Dname=value` system properties of JVM options (a bare `-Dname` is the empty string); the last of
    a name wins, as in the JVM."""
    if not java_opts:
        return {}
    try:
        words = shlex.split(java_opts)
    except ValueError as error:
        raise ConfigurationError(f"cannot be split into JVM options: {error}", key=key) from None
    properties: dict[str, str] = {}
    for word in words:
        if word.startswith("-D") and len(word) > 2:
            name, _, value = word[2:].partition("=")
            properties[name] = value
    return properties


@dataclass(frozen=True)
class ZooKeeperTls:
    """How the ZooKeeper client speaks TLS: its certificate and key (None: it shows none), the CAs it
    trusts (None: the system's), whether the server's certificate must name the host connected to, and
    the TLS versions allowed. `keystore` and `truststore` are the files, for messages."""

    key_material: KeyMaterial | None = field(repr=False)  # the clear key, in memory only
    trusted_ca_pem: bytes | None = field(repr=False)
    hostname_verification: bool
    minimum_version: ssl.TLSVersion
    maximum_version: ssl.TLSVersion
    keystore: str | None = None
    truststore: str | None = None

    def describe(self) -> str:
        cert = f"certificate from {self.keystore}" if self.keystore else "no client certificate"
        trust = f"trusting {self.truststore}" if self.truststore else "trusting the system's CAs"
        versions = (self.minimum_version.name if self.minimum_version == self.maximum_version
                    else f"{self.minimum_version.name} to {self.maximum_version.name}")
        return (f"TLS ({versions}, {cert}, {trust}, hostname verification "
                f"{'on' if self.hostname_verification else 'off'})")

    def ssl_context(self) -> ssl.SSLContext:
        """A client context: only the truststore's CAs (as the JVM with a truststore), the client certificate
        if there is a keystore."""
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.minimum_version = self.minimum_version
        context.maximum_version = self.maximum_version
        context.check_hostname = self.hostname_verification
        context.verify_mode = ssl.CERT_REQUIRED
        if self.trusted_ca_pem is not None:
            context.load_verify_locations(cadata=self.trusted_ca_pem.decode("ascii"))
        else:
            context.load_default_certs(ssl.Purpose.SERVER_AUTH)
        if self.key_material is not None:
            _load_client_certificate(context, self.key_material)
        return context


def _load_client_certificate(context: ssl.SSLContext, material: KeyMaterial) -> None:
    """`ssl` reads a certificate chain and key from files only: write them to a private dir for as long as
    the load takes, the key encrypted with a password used once."""
    one_time = secrets.token_urlsafe(32)
    key = serialization.load_pem_private_key(material.private_key_pem, None)
    encrypted = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.BestAvailableEncryption(one_time.encode()))
    directory = tempfile.mkdtemp(prefix="ha-flink-zk-tls-")  # mode 0700
    try:
        chain_file = _write_private(Path(directory) / "chain.pem", material.certificate_chain_pem)
        key_file = _write_private(Path(directory) / "key.pem", encrypted)
        context.load_cert_chain(certfile=str(chain_file), keyfile=str(key_file), password=one_time)
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def _write_private(path: Path, data: bytes) -> Path:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
    return path


def zookeeper_tls(config: Configuration) -> ZooKeeperTls | None:
    """The ZooKeeper client's TLS from the `-D` properties of `env.java.opts.all`; None without
    `-Dzookeeper.client.secure=true`. Stores that cannot be used are errors naming property and file."""
    key = java_opts_key(config)
    properties = java_system_properties(config.get(DeploymentOptions.JAVA_OPTS), key)
    secure = _boolean(properties, SECURE_PROPERTY, False, key)
    if not secure:
        if any(name.startswith(SSL_PREFIX) for name in properties):
            logger.debug("zookeeper.ssl.* properties are set but %s is not true: no TLS to ZooKeeper", SECURE_PROPERTY)
        return None
    socket_class = properties.get(CNXN_SOCKET_PROPERTY, "")
    if socket_class not in (NETTY_CNXN_SOCKET, NETTY_CNXN_SOCKET.rsplit(".", 1)[1]):
        given = f"-D{CNXN_SOCKET_PROPERTY}={socket_class}" if socket_class else f"no -D{CNXN_SOCKET_PROPERTY}"
        raise ConfigurationError(
            f"-D{SECURE_PROPERTY}=true, but {given}: ZooKeeper's client does TLS only on Netty (its default NIO "
            f"socket would talk plain TCP to the secure port); add -D{CNXN_SOCKET_PROPERTY}={NETTY_CNXN_SOCKET}",
            key=key)
    _warn_unsupported(properties)
    minimum, maximum = _versions(properties, key)
    material: KeyMaterial | None = None
    keystore = properties.get(KEYSTORE_LOCATION) or None
    if keystore is not None:
        keystore = _absolute(keystore)
        password = _password(properties, KEYSTORE_PASSWORD, KEYSTORE_PASSWORD_PATH, key)
        store_type = _store_type(properties, KEYSTORE_TYPE, KEYSTORE_LOCATION, keystore, key)
        material = _load(lambda: load_keystore(keystore, store_type, password, password, key=key, type_key=key),
                         KEYSTORE_LOCATION, keystore, "keystore", key)
    ca_pem: bytes | None = None
    truststore = properties.get(TRUSTSTORE_LOCATION) or None
    if truststore is not None:
        truststore = _absolute(truststore)
        password = _password(properties, TRUSTSTORE_PASSWORD, TRUSTSTORE_PASSWORD_PATH, key)
        store_type = _store_type(properties, TRUSTSTORE_TYPE, TRUSTSTORE_LOCATION, truststore, key)
        ca_pem = _load(lambda: load_truststore(truststore, store_type, password, key=key, type_key=key),
                       TRUSTSTORE_LOCATION, truststore, "truststore", key)
    tls = ZooKeeperTls(material, ca_pem, _boolean(properties, HOSTNAME_VERIFICATION, True, key), minimum, maximum,
                       keystore, truststore)
    try:
        tls.ssl_context()  # a key or CA that ssl cannot use fails here, at configuration time
    except ssl.SSLError as error:
        raise ConfigurationError(f"-D{KEYSTORE_LOCATION}={keystore} / -D{TRUSTSTORE_LOCATION}={truststore}: the "
                                 f"TLS context cannot be made from them: {error}", key=key) from None
    return tls


def _absolute(location: str) -> str:
    # the JVM takes a relative path from its working directory, as we take it from ours
    return str(Path(location.removeprefix("file:")).expanduser().absolute())


def _load(loader: Callable[[], T], prop: str, path: str, what: str, key: str) -> T:
    try:
        return loader()
    except ConfigurationError as error:
        reason = error.reason.replace(f"{key}-password", f"-D{prop.replace('location', 'password')}")
        raise ConfigurationError(f"-D{prop}={path}: the ZooKeeper client's {what} cannot be used: {reason}",
                                 key=key) from None


def _store_type(properties: dict[str, str], type_property: str, location_property: str, path: str, key: str) -> str:
    """The type property, else the type ZooKeeper infers from the file name."""
    given = properties.get(type_property)
    if given:
        if given.strip().upper() == "JKS":
            return "JKS"  # refused by keystores, with the keytool command
        if given.strip().upper() not in ("PKCS12", "PEM"):
            raise ConfigurationError(f"-D{type_property}={given}: accepted are PKCS12 and PEM (for "
                                     f"-D{location_property}={path})", key=key)
        return given
    suffix = Path(path).suffix.lower()
    if suffix in _TYPE_BY_SUFFIX and _TYPE_BY_SUFFIX[suffix] != "BCFKS":
        return _TYPE_BY_SUFFIX[suffix]
    raise ConfigurationError(f"-D{location_property}={path}: its type cannot be told from the file name (.p12 or "
                             f".pem); set -D{type_property}=PKCS12 or PEM", key=key)


def _password(properties: dict[str, str], prop: str, path_prop: str, key: str) -> str | None:
    """ZooKeeper's X509Util: a password file, when named, wins over the password property."""
    path = properties.get(path_prop)
    if path:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as error:
            raise ConfigurationError(f"-D{path_prop}={path}: the password file cannot be read: "
                                     f"{error.strerror or error}", key=key) from None
        # ZooKeeper's SecretUtils.readSecret drops one trailing line separator
        return text.removesuffix(os.linesep)
    return properties.get(prop) or None


def _boolean(properties: dict[str, str], prop: str, default: bool, key: str) -> bool:
    value = properties.get(prop)
    if value is None:
        return default
    # Java's Boolean.parseBoolean: "true" in any case is true, anything else false; a typo would silently
    # turn TLS off, so only true/false are accepted
    if value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise ConfigurationError(f"-D{prop}={value}: give true or false", key=key)


def _versions(properties: dict[str, str], key: str) -> tuple[ssl.TLSVersion, ssl.TLSVersion]:
    enabled = properties.get(ENABLED_PROTOCOLS)
    prop = ENABLED_PROTOCOLS if enabled else PROTOCOL
    names = [name.strip() for name in (enabled or properties.get(PROTOCOL) or DEFAULT_PROTOCOL).split(",")
             if name.strip()]
    versions: list[ssl.TLSVersion] = []
    for name in names:
        if name == "TLS":  # Java's "any TLS version"
            versions += [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3]
        elif name in _TLS_VERSIONS:
            versions.append(_TLS_VERSIONS[name])
        else:
            raise ConfigurationError(f"-D{prop}={','.join(names)}: {name!r} is not a TLS protocol version "
                                     f"(accepted: {', '.join(_TLS_VERSIONS)}, TLS)", key=key)
    return min(versions), max(versions)


def _warn_unsupported(properties: dict[str, str]) -> None:
    for name, value in properties.items():
        if not name.startswith(SSL_PREFIX) or name in _HONOURED or name.startswith(_SERVER_SIDE):
            continue
        if name in _CHECKS:
            if value.strip().lower() == "true":
                logger.warning("-D%s=true is not supported by ha-flink's ZooKeeper client: certificates are "
                               "not checked for revocation", name)
            continue
        logger.warning("-D%s is not supported by ha-flink's ZooKeeper client and is ignored", name)
