"""ZooKeeper TLS on the client port, configured as a Flink user configures it: ZooKeeper's own
`-Dzookeeper.client.secure=true -Dzookeeper.ssl.*` properties in env.java.opts.all. First the reading of those
properties and its errors, then real ZooKeeper 3.8 servers with a TLS client port (Netty, `secureClientPort`,
`ssl.clientAuth=need`): the HA services connect, elect and store; plain TCP, a stranger's certificate, a
wrong CA and a plain port are refused fast with the quorum named; TLS goes with SASL and creator ACL."""

from __future__ import annotations

import logging
import ssl
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Callable

import pytest
from kazoo.client import KazooClient
from kazoo.exceptions import NoAuthError
from kazoo.handlers.threading import KazooTimeoutError
from kazoo.security import ACL, Id

from ha_flink.config import Configuration, ConfigurationError
from ha_flink.ha.services import ZooKeeperHaServices, create_ha_services
from ha_flink.ha.zookeeper_client import ZooKeeperTlsError, start_zookeeper_client
from ha_flink.security.zookeeper_tls import ZooKeeperTls, java_system_properties, zookeeper_tls
from ha_flink.testing.certificates import CertificateSet, create_test_certificates
from ha_flink.testing.processes import wait_for
from ha_flink.testing.zookeeper import ServerTls, ZooKeeperEnsemble, write_client_jaas

NETTY = "-Dzookeeper.clientCnxnSocket=org.apache.zookeeper.ClientCnxnSocketNetty"
USER, PASSWORD = "flink", "s3cret-pw"
CREATOR = [ACL(31, Id("sasl", USER))]


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> CertificateSet:
    return create_test_certificates(tmp_path_factory.mktemp("zk-certs"))


def tls_opts(certs: CertificateSet, keystore: str | None = "client", *, store_type: str = "PKCS12",
             truststore: Path | None = None, truststore_type: str | None = None, extra: str = "") -> str:
    """env.java.opts.all as a Flink user writes it for a TLS ZooKeeper."""
    parts = ["-Xmx512m", "-Dzookeeper.client.secure=true", NETTY]
    if keystore is not None:
        location = certs.keystore(keystore) if store_type == "PKCS12" else certs.pem(keystore)
        parts += [f"-Dzookeeper.ssl.keyStore.location={location}", f"-Dzookeeper.ssl.keyStore.password={certs.password}",
                  f"-Dzookeeper.ssl.keyStore.type={store_type}"]
    trust = truststore or (certs.truststore if store_type == "PKCS12" else certs.ca_pem)
    parts += [f"-Dzookeeper.ssl.trustStore.location={trust}", f"-Dzookeeper.ssl.trustStore.password={certs.password}",
              f"-Dzookeeper.ssl.trustStore.type={truststore_type or ('PEM' if trust.suffix == '.pem' else 'PKCS12')}",
              "-Dzookeeper.ssl.hostnameVerification=true"]
    return " ".join([*parts, extra]).strip()


def ha_config(quorum: str, java_opts: str | None, tmp_path: Path | None = None, root: str = "/flink",
              **extra: str) -> Configuration:
    values = {
        "high-availability": "zookeeper",
        "high-availability.zookeeper.quorum": quorum,
        "high-availability.zookeeper.path.root": root,
        "high-availability.cluster-id": "/cluster-tls",
        "high-availability.storageDir": f"file://{tmp_path or '/tmp'}/ha",
        "high-availability.zookeeper.client.session-timeout": "10 s",
        "high-availability.zookeeper.client.connection-timeout": "5 s",
        **extra,
    }
    if java_opts is not None:
        values["env.java.opts.all"] = java_opts
    return Configuration(values)


# --- the -D properties ---------------------------------------------------------------------------------


def test_system_properties_are_read_from_the_jvm_options_the_last_one_winning() -> None:
    assert java_system_properties(None) == {}
    assert java_system_properties("-Xmx1g -Da=1 -Db -Da=2 '-Dc=x y' -D") == {"a": "2", "b": "", "c": "x y"}
    with pytest.raises(ConfigurationError, match="env.java.opts.all: cannot be split"):
        java_system_properties("-Da='open")


def test_no_tls_without_client_secure_true(certs: CertificateSet) -> None:
    assert zookeeper_tls(Configuration()) is None
    # the ssl properties alone do nothing, as in ZooKeeper's Java client: not even the files are read
    opts = tls_opts(certs).replace("-Dzookeeper.client.secure=true", "-Dzookeeper.client.secure=false")
    opts += " -Dzookeeper.ssl.keyStore.location=/missing.p12"
    assert zookeeper_tls(Configuration({"env.java.opts.all": opts})) is None
    with pytest.raises(ConfigurationError, match="-Dzookeeper.client.secure=yes: give true or false"):
        zookeeper_tls(Configuration({"env.java.opts.all": "-Dzookeeper.client.secure=yes"}))


@pytest.mark.parametrize("store_type", ["PKCS12", "PEM"])
def test_keystore_and_truststore_are_loaded_pkcs12_or_pem(certs: CertificateSet, store_type: str,
                                                           tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # where the key is written for ssl to load it
    tls = zookeeper_tls(Configuration({"env.java.opts": tls_opts(certs, store_type=store_type)}))  # deprecated key
    assert isinstance(tls, ZooKeeperTls)
    assert tls.key_material is not None and tls.key_material.leaf.subject.rfc4514_string().startswith("CN=ha-flink client")
    assert tls.trusted_ca_pem == certs.ca_pem.read_bytes()
    assert tls.hostname_verification
    assert (tls.minimum_version, tls.maximum_version) == (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_2)
    assert "PRIVATE KEY" not in repr(tls) and certs.password not in repr(tls)
    context = tls.ssl_context()
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    assert len(context.get_ca_certs()) == 1  # the truststore alone, not the system's CAs too
    assert list(tmp_path.iterdir()) == []  # the key files are gone once loaded


def test_types_from_file_names_password_files_protocols_and_no_keystore(certs: CertificateSet, tmp_path: Path) -> None:
    password_file = tmp_path / "pw"
    password_file.write_text(certs.password + "\n")
    opts = ("-Dzookeeper.client.secure=true -Dzookeeper.clientCnxnSocket=ClientCnxnSocketNetty "
            f"-Dzookeeper.ssl.keyStore.location={certs.keystore('client')} "
            f"-Dzookeeper.ssl.keyStore.password=wrong -Dzookeeper.ssl.keyStore.passwordPath={password_file} "
            f"-Dzookeeper.ssl.trustStore.location={certs.ca_pem} "
            "-Dzookeeper.ssl.enabledProtocols=TLSv1.2,TLSv1.3 -Dzookeeper.ssl.hostnameVerification=false")
    tls = zookeeper_tls(Configuration({"env.java.opts.all": opts}))
    assert tls is not None and tls.key_material is not None and not tls.hostname_verification
    assert (tls.minimum_version, tls.maximum_version) == (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3)
    # no keystore: no client certificate; no truststore: the system's CAs
    bare = zookeeper_tls(Configuration({"env.java.opts.all": f"-Dzookeeper.client.secure=true {NETTY}"}))
    assert bare is not None and bare.key_material is None and bare.trusted_ca_pem is None
    assert "no client certificate, trusting the system's CAs" in bare.describe()


def tls_error(opts: str) -> ConfigurationError:
    with pytest.raises(ConfigurationError) as error:
        zookeeper_tls(Configuration({"env.java.opts.all": opts}))
    assert error.value.key == "env.java.opts.all"
    return error.value


def test_unusable_stores_are_errors_naming_the_property_and_the_file(certs: CertificateSet, tmp_path: Path) -> None:
    missing = tmp_path / "missing.p12"
    error = tls_error(tls_opts(certs).replace(str(certs.keystore("client")), str(missing)))
    assert f"-Dzookeeper.ssl.keyStore.location={missing}: the ZooKeeper client's keystore cannot be used: " \
           f"cannot read {missing}" in str(error)

    error = tls_error(tls_opts(certs).replace(f"keyStore.password={certs.password}", "keyStore.password=wrong"))
    assert f"-Dzookeeper.ssl.keyStore.location={certs.keystore('client')}" in str(error)
    assert "wrong -Dzookeeper.ssl.keyStore.password" in str(error)

    error = tls_error(tls_opts(certs).replace(f"trustStore.password={certs.password}", "trustStore.password=bad"))
    assert f"-Dzookeeper.ssl.trustStore.location={certs.truststore}: the ZooKeeper client's truststore" in str(error)

    error = tls_error(tls_opts(certs, store_type="PEM").replace(f"keyStore.password={certs.password}",
                                                                "keyStore.password=bad"))
    assert f"-Dzookeeper.ssl.keyStore.location={certs.pem('client')}" in str(error) and "private key" in str(error)

    error = tls_error(tls_opts(certs).replace("keyStore.type=PKCS12", "keyStore.type=JKS"))
    assert "JKS keystores cannot be read" in str(error) and "keytool -importkeystore" in str(error)

    odd = tmp_path / "client.keystore"
    odd.write_bytes(certs.keystore("client").read_bytes())
    error = tls_error(f"-Dzookeeper.client.secure=true {NETTY} -Dzookeeper.ssl.keyStore.location={odd}")
    assert f"-Dzookeeper.ssl.keyStore.location={odd}: its type cannot be told from the file name" in str(error)
    assert "-Dzookeeper.ssl.keyStore.type=PKCS12 or PEM" in str(error)

    error = tls_error(tls_opts(certs, extra=f"-Dzookeeper.ssl.trustStore.passwordPath={tmp_path}/none"))
    assert f"-Dzookeeper.ssl.trustStore.passwordPath={tmp_path}/none: the password file cannot be read" in str(error)

    error = tls_error(tls_opts(certs, extra="-Dzookeeper.ssl.protocol=SSLv3"))
    assert "-Dzookeeper.ssl.protocol=SSLv3: 'SSLv3' is not a TLS protocol version" in str(error)


def test_secure_without_netty_is_refused_naming_the_property(certs: CertificateSet) -> None:
    error = tls_error(tls_opts(certs).replace(NETTY, ""))
    assert "-Dzookeeper.client.secure=true, but no -Dzookeeper.clientCnxnSocket" in str(error)
    assert f"add {NETTY}" in str(error)


def test_properties_that_cannot_be_honoured_are_warned_about(certs: CertificateSet,
                                                             caplog: pytest.LogCaptureFixture) -> None:
    extra = ("-Dzookeeper.ssl.ciphersuites=TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256 -Dzookeeper.ssl.ocsp=true "
             "-Dzookeeper.ssl.crl=false -Dzookeeper.ssl.clientAuth=need -Dzookeeper.ssl.quorum.keyStore.location=/q")
    with caplog.at_level(logging.WARNING, logger="ha_flink.security.zookeeper_tls"):
        assert zookeeper_tls(Configuration({"env.java.opts.all": tls_opts(certs, extra=extra)})) is not None
    warned = " ".join(record.getMessage() for record in caplog.records)
    assert "-Dzookeeper.ssl.ciphersuites is not supported" in warned
    assert "-Dzookeeper.ssl.ocsp=true is not supported" in warned
    assert "crl" not in warned and "clientAuth" not in warned and "quorum" not in warned


# --- real TLS ZooKeeper servers ---------------------------------------------------------------------------


@pytest.fixture
def tls_zookeeper(zookeeper_factory: Callable[..., ZooKeeperEnsemble], certs: CertificateSet) -> ZooKeeperEnsemble:
    """One server whose only client port in use is TLS with `ssl.clientAuth=need`."""
    return zookeeper_factory(1, tls=ServerTls.from_certificates(certs, client_auth="need"))


class Contender:
    def __init__(self) -> None:
        self.leading: uuid.UUID | None = None
        self.lock = threading.Lock()

    def grant(self, session_id: uuid.UUID) -> None:
        with self.lock:
            self.leading = session_id

    def revoke(self) -> None:
        with self.lock:
            self.leading = None


@pytest.mark.parametrize("store_type", ["PKCS12", "PEM"])
def test_ha_services_connect_over_tls_store_and_elect(tls_zookeeper: ZooKeeperEnsemble, certs: CertificateSet,
                                                      tmp_path: Path, zk_root: str, store_type: str) -> None:
    started = time.monotonic()
    services = create_ha_services(ha_config(tls_zookeeper.connect_string, tls_opts(certs, store_type=store_type),
                                            tmp_path, f"{zk_root}/flink"))
    assert isinstance(services, ZooKeeperHaServices)
    assert time.monotonic() - started < 5
    try:
        client = services.client
        client.create(f"{zk_root}/tls-node", b"over tls", makepath=True)
        assert client.get(f"{zk_root}/tls-node")[0] == b"over tls"
        election = services.leader_election("jobmanager", {"address": "127.0.0.1:6123"})
        contender = Contender()
        election.start(contender)
        try:
            session = wait_for(lambda: contender.leading, 15, what="the leader election to grant")
            election.publish("dispatcher", "127.0.0.1:6123", session)
            assert services.contenders()[0]["address"] == "127.0.0.1:6123"
        finally:
            election.close()
    finally:
        services.close()
    # the server saw the client's certificate (ZooKeeper's x509 auth logs the identity it authenticated)
    assert "Authenticated Id 'CN=ha-flink client" in tls_zookeeper.servers[0].log_path.read_text()


def test_a_plain_tcp_client_on_the_secure_port_fails(tls_zookeeper: ZooKeeperEnsemble, tmp_path: Path) -> None:
    plain = KazooClient(hosts=tls_zookeeper.connect_string)
    try:
        with pytest.raises(KazooTimeoutError):
            plain.start(timeout=2)
    finally:
        plain.stop()
        plain.close()
    config = ha_config(tls_zookeeper.connect_string, None, tmp_path)
    config.set("high-availability.zookeeper.client.connection-timeout", "2 s")
    started = time.monotonic()
    with pytest.raises(ConnectionError, match=f"cannot reach ZooKeeper at {tls_zookeeper.connect_string} within 2 s"):
        start_zookeeper_client(config)
    assert time.monotonic() - started < 2 + 3


def assert_tls_refused(config: Configuration, quorum: str, *reasons: str) -> None:
    started = time.monotonic()
    with pytest.raises(ZooKeeperTlsError) as error:
        start_zookeeper_client(config)
    assert time.monotonic() - started < 5  # fails fast, within the connection timeout at the latest
    assert isinstance(error.value, ConnectionError)
    message = str(error.value)
    assert message.startswith(f"no ZooKeeper server at {quorum} completed a TLS handshake: {quorum}: ")
    assert any(reason in message for reason in reasons), message


def test_a_certificate_from_another_ca_is_refused_when_the_server_needs_client_auth(
    tls_zookeeper: ZooKeeperEnsemble, certs: CertificateSet, tmp_path: Path,
) -> None:
    quorum = tls_zookeeper.connect_string
    assert_tls_refused(ha_config(quorum, tls_opts(certs, "stranger"), tmp_path), quorum,
                       "did the server refuse the client's certificate?")
    # no certificate at all: refused too, as ssl.clientAuth=need says
    assert_tls_refused(ha_config(quorum, tls_opts(certs, None), tmp_path), quorum,
                       "did the server refuse the client's certificate?", "refused the client's certificate")


def test_a_server_certificate_from_another_ca_or_a_plain_port_is_refused(
    tls_zookeeper: ZooKeeperEnsemble, certs: CertificateSet, tmp_path: Path,
) -> None:
    quorum = tls_zookeeper.connect_string
    wrong_ca = tls_opts(certs, truststore=certs.folder / "stranger-ca.pem")
    assert_tls_refused(ha_config(quorum, wrong_ca, tmp_path), quorum, "the server's certificate is not accepted")
    server = tls_zookeeper.servers[0]
    plain_port = f"{server.host}:{server.client_port}"
    assert_tls_refused(ha_config(plain_port, tls_opts(certs), tmp_path), plain_port,
                       "not a TLS port (secureClientPort)", "does not speak TLS there")


def test_client_auth_want_lets_a_client_without_certificate_in(
    zookeeper_factory: Callable[..., ZooKeeperEnsemble], certs: CertificateSet, tmp_path: Path, zk_root: str,
) -> None:
    want = zookeeper_factory(1, tls=ServerTls.from_certificates(certs, client_auth="want"))
    client = start_zookeeper_client(ha_config(want.connect_string, tls_opts(certs, None), tmp_path))
    try:
        client.create(zk_root, b"no client certificate")
        assert client.get(zk_root)[0] == b"no client certificate"
    finally:
        client.stop()
        client.close()


def test_tls_sasl_and_creator_acl_together(
    zookeeper_factory: Callable[..., ZooKeeperEnsemble], certs: CertificateSet, tmp_path: Path, zk_root: str,
    kazoo_factory: Callable[..., KazooClient],
) -> None:
    ensemble = zookeeper_factory(1, sasl_users={USER: PASSWORD}, tls=ServerTls.from_certificates(certs))
    jaas = write_client_jaas(tmp_path / "jaas.conf", USER, PASSWORD)
    opts = tls_opts(certs, extra=f"-Djava.security.auth.login.config={jaas}")
    services = create_ha_services(ha_config(ensemble.connect_string, opts, tmp_path, f"{zk_root}/flink",
                                            **{"high-availability.zookeeper.client.acl": "creator"}))
    assert isinstance(services, ZooKeeperHaServices)
    try:
        node = f"{services.base_path}/secret"
        services.client.create(node, b"x", makepath=True)
        # creator ACL is ZooKeeper's "auth" scheme: every identity the session authenticated as, so over
        # TLS with client certificates both the SASL user and the certificate's subject (scheme x509)
        x509 = ACL(31, Id("x509", "CN=ha-flink client,O=ha-flink test"))
        for path in (node, zk_root, services.base_path):
            assert sorted(services.client.get_acls(path)[0]) == sorted([x509, *CREATOR])
        # a TLS client with another certificate of the same CA and no SASL credentials is refused
        other_pem = str(certs.pem("rest"))
        stranger = kazoo_factory(ensemble, certfile=other_pem, keyfile=other_pem, keyfile_password=certs.password)
        with pytest.raises(NoAuthError):
            stranger.get(node)
        # the SASL identity alone (with another certificate) is let in
        owner = kazoo_factory(ensemble, certfile=other_pem, keyfile=other_pem, keyfile_password=certs.password,
                              sasl_options={"mechanism": "DIGEST-MD5", "username": USER, "password": PASSWORD})
        assert owner.get(node)[0] == b"x"
        # so does the same client certificate without SASL: ZooKeeper's semantics, worth knowing when every
        # daemon shares one certificate
        pem = str(certs.pem("client"))
        same_certificate = kazoo_factory(ensemble, certfile=pem, keyfile=pem, keyfile_password=certs.password)
        assert same_certificate.get(node)[0] == b"x"
    finally:
        services.close()
