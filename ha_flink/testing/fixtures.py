"""pytest fixtures that start real servers; loaded by the root conftest.py for tests/ and integration/.

- `zookeeper`: one ZooKeeper server for the whole run; tests keep apart by using their own paths
  (`zk_root` gives each test a fresh one). Never stop or kill it in a test.
- `zookeeper_factory`: servers and ensembles of a test's own, for tests that stop, kill or restart them.
- `s3_server`: one moto S3 server for the whole run; `s3_bucket` gives each test a fresh bucket.
When a test fails, the tail of each server log it used is printed with the failure (the files stay in
pytest's temp dir)."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Callable, Generator, Iterator

import pytest
from kazoo.client import KazooClient

from ha_flink.testing.cluster import Cluster
from ha_flink.testing.processes import log_tail
from ha_flink.testing.s3 import MotoS3Server
from ha_flink.testing.zookeeper import ServerTls, ZooKeeperEnsemble

_LOGS_KEY = pytest.StashKey[list[Path]]()
_CLUSTERS_KEY = pytest.StashKey[list[Cluster]]()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item,
                              call: pytest.CallInfo[None]) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if report.failed and report.when in ("call", "setup"):
        daemon_logs = [path for cluster in item.stash.get(_CLUSTERS_KEY, []) for path in cluster.logs()]
        for path in item.stash.get(_LOGS_KEY, []) + daemon_logs:
            report.sections.append((f"server log {path}", log_tail(path, 60)))
    return report


def _remember_logs(request: pytest.FixtureRequest, paths: list[Path]) -> None:
    request.node.stash.setdefault(_LOGS_KEY, []).extend(paths)


@pytest.fixture(scope="session")
def zookeeper_session_ensemble(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ZooKeeperEnsemble]:
    ensemble = ZooKeeperEnsemble.create(tmp_path_factory.mktemp("zookeeper"), size=1)
    ensemble.start()
    try:
        yield ensemble
    finally:
        ensemble.stop()


@pytest.fixture
def zookeeper(zookeeper_session_ensemble: ZooKeeperEnsemble, request: pytest.FixtureRequest) -> ZooKeeperEnsemble:
    """The shared single-node ZooKeeper (read-only use: do not stop it)."""
    _remember_logs(request, zookeeper_session_ensemble.log_paths())
    return zookeeper_session_ensemble


@pytest.fixture
def zookeeper_factory(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Callable[..., ZooKeeperEnsemble]]:
    """`zookeeper_factory(size, sasl_users=None, tls=None)` starts a ZooKeeper of this test's own (1 node, or
    an ensemble of `size`); `sasl_users` ({name: password}) makes it authenticate clients with SASL
    DIGEST-MD5; `tls` (a `ServerTls`) gives it TLS client ports, which its `connect_string` names."""
    started: list[ZooKeeperEnsemble] = []

    def create(size: int = 1, sasl_users: dict[str, str] | None = None,
               tls: ServerTls | None = None) -> ZooKeeperEnsemble:
        ensemble = ZooKeeperEnsemble.create(tmp_path / f"zookeeper-{len(started)}", size, sasl_users=sasl_users,
                                            tls=tls)
        started.append(ensemble)
        _remember_logs(request, ensemble.log_paths())
        ensemble.start()
        return ensemble

    try:
        yield create
    finally:
        for ensemble in started:
            ensemble.stop()


@pytest.fixture
def zk_root() -> str:
    """A znode path no other test uses."""
    return f"/test-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def kazoo_factory() -> Iterator[Callable[..., KazooClient]]:
    """`kazoo_factory(ensemble, **kwargs)`: a started kazoo client, stopped and closed after the test."""
    clients: list[KazooClient] = []

    def create(ensemble: ZooKeeperEnsemble, **kwargs: object) -> KazooClient:
        client = ensemble.client(**kwargs)
        clients.append(client)
        return client

    try:
        yield create
    finally:
        for client in clients:
            client.stop()
            client.close()


@pytest.fixture(scope="session")
def s3_server_session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoS3Server]:
    server = MotoS3Server(tmp_path_factory.mktemp("moto"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def s3_server(s3_server_session: MotoS3Server, request: pytest.FixtureRequest) -> MotoS3Server:
    _remember_logs(request, [s3_server_session.log_path])
    return s3_server_session


@pytest.fixture
def s3_bucket(s3_server: MotoS3Server) -> str:
    """A fresh, empty bucket on the moto server; returns its `s3://` URL."""
    from ha_flink.fs import filesystem_for

    name = f"test-{uuid.uuid4().hex[:12]}"
    fs, _ = filesystem_for(f"s3://{name}", s3_server.configuration())
    fs.mkdir(name)
    return f"s3://{name}"


@pytest.fixture
def cluster_factory(zookeeper: ZooKeeperEnsemble, tmp_path: Path,
                    request: pytest.FixtureRequest) -> Iterator[Callable[..., Cluster]]:
    """`cluster_factory(**settings)`: an HA cluster's conf dir on the shared ZooKeeper (a cluster-id of its
    own); start its daemons with `start_jobmanager()` / `start_taskmanager()`. All stopped by pid after."""
    made: list[Cluster] = []

    def create(**settings: str) -> Cluster:
        cluster = Cluster(tmp_path / f"cluster{len(made)}", zookeeper.connect_string, dict(settings))
        cluster.write_conf()
        made.append(cluster)
        request.node.stash.setdefault(_CLUSTERS_KEY, []).append(cluster)  # its daemons' logs go with a failure
        return cluster

    yield create
    for cluster in made:
        cluster.close()


# The sshd fixture's import sits with it (this section was added after the others).
from ha_flink.testing.sshd import SSHD, SshServer  # noqa: E402


@pytest.fixture
def sshd(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[SshServer]:
    """A real OpenSSH sshd of this test's own on a free port of 127.0.0.1, .2 and .3 (three "hosts"),
    accepting a key generated for the test; `sshd.ssh_opts` is the `env.ssh.opts` that reaches it.
    Skipped with the reason where openssh-server is not installed; stopped by pid after the test."""
    if not Path(SSHD).exists():
        pytest.skip(f"{SSHD} is missing: install the Debian package openssh-server (`make install` does)")
    server = SshServer(tmp_path / "sshd")
    _remember_logs(request, [server.log_path])
    server.start()
    try:
        yield server
    finally:
        server.stop()
