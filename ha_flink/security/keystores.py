"""Keystores and truststores as Flink users have them: PKCS12 files (the JVM's default type, so what
`keytool -genkeypair` writes) and PEM files, read into PEM bytes in memory for gRPC and `ssl`.

A keystore holds one private key and its certificate chain (a PEM keystore: the key and the certificates in
one file, in any order); a truststore holds the CA certificates a peer's certificate must chain to.
Every failure is a ConfigurationError naming the key and the file: a wrong password, a missing file, an
unknown type or a JKS file (which Python cannot read; the message gives the keytool command that converts
it)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs12

from ha_flink.config import ConfigurationError

STORE_TYPES = ("PKCS12", "PEM")
_JKS_MAGIC = b"\xfe\xed\xfe\xed"


@dataclass(frozen=True)
class KeyMaterial:
    """A private key (PEM, unencrypted, in memory only) and its certificate chain (PEM, leaf first)."""

    private_key_pem: bytes
    certificate_chain_pem: bytes
    leaf: x509.Certificate
    source: str  # the keystore file, for messages

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.leaf.public_bytes(serialization.Encoding.DER))

    def host_names(self) -> list[str]:
        """The DNS names and IP addresses the leaf certificate is issued for (its SAN, else its CN)."""
        try:
            san = self.leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
            names = [*san.get_values_for_type(x509.DNSName), *map(str, san.get_values_for_type(x509.IPAddress))]
        except x509.ExtensionNotFound:
            names = []
        if not names:
            names = [str(a.value) for a in self.leaf.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)]
        return names


def fingerprint(der: bytes) -> str:
    """A certificate's SHA-1 fingerprint as keytool and Flink print it: `AB:CD:...`."""
    return ":".join(f"{b:02X}" for b in hashlib.sha1(der).digest())


def parse_fingerprints(text: str | None, key: str) -> frozenset[str]:
    """Flink's `security.ssl.*.cert.fingerprint`: one or more SHA-1 fingerprints, comma-separated, with or
    without colons, in any case."""
    if not text:
        return frozenset()
    pins = set()
    for part in text.split(","):
        hexdigits = part.strip().replace(":", "").upper()
        if len(hexdigits) != 40 or any(c not in "0123456789ABCDEF" for c in hexdigits):
            raise ConfigurationError(f"{part.strip()!r} is not a SHA-1 fingerprint (40 hex digits, colons "
                                     "allowed, as `keytool -list` prints it)", key=key)
        pins.add(":".join(hexdigits[i:i + 2] for i in range(0, 40, 2)))
    return frozenset(pins)


def _store_type(value: str, key: str) -> str:
    normalized = value.strip().upper()
    if normalized == "JKS":
        raise ConfigurationError("JKS keystores cannot be read by ha-flink; convert the file to PKCS12 with "
                                 "`keytool -importkeystore -srckeystore F.jks -destkeystore F.p12 "
                                 "-deststoretype PKCS12` and set the type to PKCS12", key=key)
    if normalized not in STORE_TYPES:
        raise ConfigurationError(f"{value!r} is not a supported store type; accepted: {', '.join(STORE_TYPES)}",
                                 key=key)
    return normalized


def _read(path: str, key: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as error:
        raise ConfigurationError(f"cannot read {path}: {error.strerror or error}", key=key) from None


def _open_pkcs12(data: bytes, path: str, password: str | None, what: str, *, key: str,
                 type_key: str) -> pkcs12.PKCS12KeyAndCertificates:
    if data.startswith(_JKS_MAGIC):
        _store_type("JKS", type_key)  # (refused with the keytool command that converts it)
    try:
        return pkcs12.load_pkcs12(data, password.encode() if password else None)
    except ValueError as error:
        raise ConfigurationError(f"cannot open PKCS12 {what} {path}: {error} (wrong {key}-password, or not a "
                                 "PKCS12 file?)", key=key) from None


def load_keystore(path: str, store_type: str, password: str | None, key_password: str | None, *,
                  key: str, type_key: str) -> KeyMaterial:
    """The key and chain of keystore `path` (`key` names the config key of the path, for messages)."""
    kind = _store_type(store_type, type_key)
    data = _read(path, key)
    if kind == "PKCS12":
        store = _open_pkcs12(data, path, password, "keystore", key=key, type_key=type_key)
        if store.key is None or store.cert is None:
            raise ConfigurationError(f"keystore {path} holds no private key with a certificate", key=key)
        private_key = store.key
        chain = [store.cert.certificate, *(c.certificate for c in store.additional_certs)]
    else:
        try:
            chain = x509.load_pem_x509_certificates(data) if b"-----BEGIN CERTIFICATE" in data else []
        except ValueError as error:
            raise ConfigurationError(f"keystore {path}: a certificate cannot be read: {error}", key=key) from None
        if not chain:
            raise ConfigurationError(f"PEM keystore {path} holds no certificate", key=key)
        secret = key_password or password
        try:
            loaded = serialization.load_pem_private_key(data, secret.encode() if secret else None)
        except (ValueError, TypeError) as error:
            raise ConfigurationError(f"PEM keystore {path}: its private key cannot be read: {error} (a "
                                     "missing or wrong key-password?)", key=key) from None
        private_key = loaded
    leaf_public = chain[0].public_key().public_bytes(serialization.Encoding.DER,
                                                    serialization.PublicFormat.SubjectPublicKeyInfo)
    if private_key.public_key().public_bytes(serialization.Encoding.DER,
                                             serialization.PublicFormat.SubjectPublicKeyInfo) != leaf_public:
        raise ConfigurationError(f"keystore {path}: the private key does not belong to the first certificate",
                                 key=key)
    key_pem = private_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                        serialization.NoEncryption())
    chain_pem = b"".join(c.public_bytes(serialization.Encoding.PEM) for c in chain)
    return KeyMaterial(key_pem, chain_pem, chain[0], path)


def load_truststore(path: str, store_type: str, password: str | None, *, key: str, type_key: str) -> bytes:
    """The CA certificates of truststore `path`, as concatenated PEM."""
    kind = _store_type(store_type, type_key)
    data = _read(path, key)
    certificates: list[x509.Certificate]
    if kind == "PKCS12":
        store = _open_pkcs12(data, path, password, "truststore", key=key, type_key=type_key)
        certificates = [c.certificate for c in ([store.cert] if store.cert else []) + list(store.additional_certs)]
    else:
        try:
            certificates = x509.load_pem_x509_certificates(data)
        except ValueError as error:
            raise ConfigurationError(f"PEM truststore {path}: {error}", key=key) from None
    if not certificates:
        raise ConfigurationError(f"truststore {path} holds no certificate", key=key)
    return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certificates)
