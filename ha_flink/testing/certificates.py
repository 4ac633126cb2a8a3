"""A test certificate authority and the keystores a secured cluster needs, as real files: what `make certs`
(and the TLS tests) write. Flink users make the same with keytool or openssl; these are PKCS12 keystores
(Flink's default type) and PEM files of the same keys.

    python -m ha_flink.testing.certificates DIR [--password PW] [--host NAME ...]

writes into DIR:
- `ca.pem`, `truststore.p12`: the CA certificate (the truststore of every daemon and client);
- `internal.p12`, `internal.pem`: the key and certificate every JobManager and TaskManager shares for
  internal TLS (one certificate for all, as Flink's documentation recommends);
- `rest.p12`, `rest.pem`: the REST endpoints' key and certificate;
- `client.p12`, `client.pem`: a client's key and certificate (bin/flink with mutual REST TLS);
- `stranger.p12`, `stranger.pem`, `stranger-ca.pem`: a key and certificate from another CA, which the
  cluster must refuse.
Certificates name localhost, 127.0.0.1, this host's name and every --host; EC P-256 keys, one year."""

from __future__ import annotations

import argparse
import datetime
import ipaddress
import socket
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

DEFAULT_PASSWORD = "changeit"


@dataclass(frozen=True)
class CertificateSet:
    folder: Path
    password: str

    def keystore(self, name: str) -> Path:
        return self.folder / f"{name}.p12"

    def pem(self, name: str) -> Path:
        return self.folder / f"{name}.pem"

    @property
    def truststore(self) -> Path:
        return self.folder / "truststore.p12"

    @property
    def ca_pem(self) -> Path:
        return self.folder / "ca.pem"

    def internal_config(self, name: str = "internal") -> dict[str, str]:
        """Flink's keys for mutual internal TLS with keystore `name` (internal, or stranger to be refused)."""
        return {
            "security.ssl.internal.enabled": "true",
            "security.ssl.internal.keystore": str(self.keystore(name)),
            "security.ssl.internal.keystore-password": self.password,
            "security.ssl.internal.key-password": self.password,
            "security.ssl.internal.truststore": str(self.truststore),
            "security.ssl.internal.truststore-password": self.password,
        }

    def rest_config(self, name: str = "rest", authentication: bool = True) -> dict[str, str]:
        return {
            "security.ssl.rest.enabled": "true",
            "security.ssl.rest.authentication-enabled": str(authentication).lower(),
            "security.ssl.rest.keystore": str(self.keystore(name)),
            "security.ssl.rest.keystore-password": self.password,
            "security.ssl.rest.key-password": self.password,
            "security.ssl.rest.truststore": str(self.truststore),
            "security.ssl.rest.truststore-password": self.password,
        }


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "ha-flink test"),
                      x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _certificate(subject: str, key: ec.EllipticCurvePrivateKey, issuer: x509.Name,
                 issuer_key: ec.EllipticCurvePrivateKey, *, ca: bool, hosts: list[str]) -> x509.Certificate:
    now = datetime.datetime.now(datetime.timezone.utc)
    builder = (x509.CertificateBuilder().subject_name(_name(subject)).issuer_name(issuer)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=365))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if ca:
        builder = builder.add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                                      content_commitment=False, key_encipherment=False,
                                                      data_encipherment=False, key_agreement=False,
                                                      encipher_only=False, decipher_only=False), critical=True)
    else:
        names: list[x509.GeneralName] = []
        for host in hosts:
            try:
                names.append(x509.IPAddress(ipaddress.ip_address(host)))
            except ValueError:
                names.append(x509.DNSName(host))
        builder = (builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
                   .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH,
                                                         ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False))
    return builder.sign(issuer_key, hashes.SHA256())


def _write_keystore(folder: Path, name: str, key: ec.EllipticCurvePrivateKey, chain: list[x509.Certificate],
                    password: str) -> None:
    encryption = serialization.BestAvailableEncryption(password.encode())
    (folder / f"{name}.p12").write_bytes(
        pkcs12.serialize_key_and_certificates(name.encode(), key, chain[0], chain[1:], encryption))
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)
    (folder / f"{name}.pem").write_bytes(pem + b"".join(c.public_bytes(serialization.Encoding.PEM) for c in chain))
    for suffix in (".p12", ".pem"):
        (folder / f"{name}{suffix}").chmod(0o600)


def create_test_certificates(folder: Path, password: str = DEFAULT_PASSWORD,
                             hosts: list[str] | None = None) -> CertificateSet:
    folder.mkdir(parents=True, exist_ok=True)
    names = list(dict.fromkeys(["localhost", "127.0.0.1", socket.gethostname(), *(hosts or [])]))
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = _certificate("ha-flink test CA", ca_key, _name("ha-flink test CA"), ca_key, ca=True, hosts=[])
    (folder / "ca.pem").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    (folder / "truststore.p12").write_bytes(pkcs12.serialize_key_and_certificates(
        b"ca", None, None, [ca], serialization.BestAvailableEncryption(password.encode())))
    for name in ("internal", "rest", "client"):
        key = ec.generate_private_key(ec.SECP256R1())
        _write_keystore(folder, name, key, [_certificate(f"ha-flink {name}", key, ca.subject, ca_key, ca=False,
                                                         hosts=names), ca], password)
    stranger_ca_key = ec.generate_private_key(ec.SECP256R1())
    stranger_ca = _certificate("stranger CA", stranger_ca_key, _name("stranger CA"), stranger_ca_key, ca=True,
                               hosts=[])
    (folder / "stranger-ca.pem").write_bytes(stranger_ca.public_bytes(serialization.Encoding.PEM))
    key = ec.generate_private_key(ec.SECP256R1())
    _write_keystore(folder, "stranger", key, [_certificate("stranger", key, stranger_ca.subject, stranger_ca_key,
                                                           ca=False, hosts=names), stranger_ca], password)
    return CertificateSet(folder, password)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ha_flink.testing.certificates",
                                     description="Write a test CA and the keystores of a secured ha-flink cluster.")
    parser.add_argument("folder", type=Path)
    parser.add_argument("--password", default=DEFAULT_PASSWORD, help="of every keystore (default: changeit)")
    parser.add_argument("--host", action="append", default=[], help="another host name the certificates name")
    args = parser.parse_args(argv)
    certificates = create_test_certificates(args.folder, args.password, args.host)
    print(f"wrote a test CA and keystores to {certificates.folder} (password {args.password!r})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
