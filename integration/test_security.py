"""A secured cluster of real processes (`security.ssl.internal.*` and `security.ssl.rest.*` with mutual
authentication, real certificates from a test CA): bin/flink runs, lists, savepoints and cancels a job with
the client keys; a standby forwards over TLS; and a stranger, without a certificate or with one from
another CA, gets a TLS error on REST and on every gRPC port, and no code of theirs runs. A keystore that
cannot be used stops the daemon at start with the key and the file named."""

from __future__ import annotations

import json
import os
import re
import ssl
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Callable

import grpc
import pytest
from kazoo.client import KazooClient
from kazoo.exceptions import NoAuthError, NoNodeError, NotEmptyError

from ha_flink.config import Configuration
from ha_flink.ha import paths
from ha_flink.rpc import flink_pb2 as pb
from ha_flink.rpc import flink_pb2_grpc as pb_grpc
from ha_flink.rpc.channels import blocking_channel
from ha_flink.security.tls import internal_tls, rest_client_tls, url_opener
from ha_flink.testing.certificates import CertificateSet, create_test_certificates
from ha_flink.testing.cluster import Cluster
from ha_flink.testing.processes import wait_for
from ha_flink.testing.zookeeper import ZooKeeperEnsemble, write_client_jaas

HERE = Path(__file__).resolve().parent


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> CertificateSet:
    return create_test_certificates(tmp_path_factory.mktemp("certs"))


class _Marker:
    """A pickle that, once unpickled, creates a file: proof that a stranger's bytes ran as code."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self) -> tuple[object, ...]:
        return (os.system, (f"touch {self.path}",))


def _grpc_call(address: str, config: Configuration | None, call: Callable[[grpc.Channel], object]) -> grpc.StatusCode:
    with blocking_channel(address, internal_tls(config) if config is not None else None) as channel:
        try:
            call(channel)
            return grpc.StatusCode.OK
        except grpc.RpcError as error:
            return error.code()


def _https(url: str, config: Configuration | None) -> int:
    tls = rest_client_tls(config) if config is not None else None
    opener = url_opener(tls) if tls is not None else urllib.request.build_opener(
        urllib.request.HTTPSHandler(context=ssl.create_default_context()))
    with opener.open(url, timeout=10) as answer:
        return answer.status


def _get_json(url: str, config: Configuration) -> Any:
    with url_opener(rest_client_tls(config)).open(url, timeout=10) as answer:
        return json.loads(answer.read())


def test_a_secured_cluster_serves_its_clients_and_refuses_strangers(
    cluster_factory: Callable[..., Cluster], certs: CertificateSet, tmp_path: Path,
) -> None:
    cluster = cluster_factory(**certs.internal_config(), **certs.rest_config())
    leader = cluster.start_leader()
    standby = cluster.start_jobmanager()
    taskmanager = cluster.start_taskmanager()
    leader_rest, standby_rest = leader.rest_address() or "", standby.rest_address() or ""
    assert leader_rest.startswith("https://") and standby_rest.startswith("https://")
    assert "TLS: internal RPC mutual; REST mutual" in leader.output()

    # bin/flink with the client keys of conf/: run, list, savepoint, cancel
    submitted = cluster.flink("run", "-d", "-py", str(HERE / "checkpointed_count_job.py"), str(tmp_path / "out"),
                              "100000000", "200", "-1", "1")
    assert submitted.returncode == 0, submitted.stdout + submitted.stderr
    job_id = cluster.job_id(submitted)
    wait_for(lambda: re.search(rf"{job_id}.*RUNNING", cluster.flink("list").stdout) is not None, 60,
             what="bin/flink list to show the job RUNNING")
    savepoint = cluster.flink("savepoint", job_id, str(tmp_path / "savepoints"))
    assert savepoint.returncode == 0 and "Savepoint completed" in savepoint.stdout, savepoint.stdout + savepoint.stderr
    assert list((tmp_path / "savepoints").glob("savepoint-*/_metadata"))
    # a standby forwards to the leader over mutual TLS
    client = Configuration(certs.rest_config("client"))
    assert _https(f"{standby_rest}/jobs/overview", client) == 200
    assert _https(f"{leader_rest}/overview", client) == 200
    assert _https(f"{standby_rest}/", client) == 200  # the dashboard
    # secrets are hidden in REST (and so in the dashboard) and in every daemon's log
    shown = {e["key"]: e["value"] for e in _get_json(f"{standby_rest}/jobmanager/config", client)}
    assert shown["security.ssl.internal.keystore-password"] == "******"
    assert shown["security.ssl.rest.truststore-password"] == "******"
    assert shown["high-availability.type"] == "zookeeper"
    for daemon in (leader, standby, taskmanager):
        assert "Loading configuration property: security.ssl.internal.key-password, ******" in daemon.output()
        assert certs.password not in daemon.output()

    # REST: no certificate, or one from another CA, ends in the handshake
    truststore_only = Configuration(certs.rest_config("client", authentication=False))
    truststore_only.remove("security.ssl.rest.keystore")
    stranger = Configuration({**certs.rest_config("stranger")})
    for config in (truststore_only, stranger):
        with pytest.raises((ssl.SSLError, urllib.error.URLError, ConnectionResetError)):
            _https(f"{leader_rest}/jobs/overview", config)
    with pytest.raises(urllib.error.URLError):  # and the server is not trusted without the truststore
        _https(f"{leader_rest}/overview", None)
    plain = leader_rest.replace("https://", "http://")
    with pytest.raises((urllib.error.URLError, ConnectionResetError, OSError)):
        urllib.request.urlopen(f"{plain}/jobs", data=b"x", timeout=10)

    # gRPC: the Dispatcher, the ResourceManager and the TaskExecutor refuse plaintext and strangers before
    # reading a request; the marker pickle never runs
    marker = tmp_path / "ran-a-strangers-code"
    evil = pb.SubmitJobRequest(job_graph=__import__("cloudpickle").dumps(_Marker(marker)))
    deploy = pb.DeployTaskRequest(job_id=job_id, deployment=__import__("cloudpickle").dumps(_Marker(marker)))
    stranger_internal = Configuration(certs.internal_config("stranger"))
    for config in (None, stranger_internal):
        for address, call in (
            (leader.address() or "", lambda ch: pb_grpc.DispatcherStub(ch).SubmitJob(evil, timeout=5)),
            (leader.address() or "", lambda ch: pb_grpc.DispatcherStub(ch).ListJobs(pb.Empty(), timeout=5)),
            (leader.address() or "", lambda ch: pb_grpc.ResourceManagerStub(ch).RegisterTaskManager(
                pb.RegisterTaskManagerRequest(resource_id="fake", address="127.0.0.1:1", slots=8), timeout=5)),
            (taskmanager.address() or "", lambda ch: pb_grpc.TaskExecutorStub(ch).DeployTask(deploy, timeout=5)),
        ):
            assert _grpc_call(address, config, call) == grpc.StatusCode.UNAVAILABLE
    # an authenticated peer's job graph is shape-checked before it is unpickled
    internal = Configuration(certs.internal_config())
    assert _grpc_call(leader.address() or "", internal,
                      lambda ch: pb_grpc.DispatcherStub(ch).SubmitJob(evil, timeout=5)) == grpc.StatusCode.INVALID_ARGUMENT
    assert not marker.exists()
    assert "fake" not in leader.output()

    cancelled = cluster.flink("cancel", job_id)
    assert cancelled.returncode == 0, cancelled.stdout + cancelled.stderr


@pytest.mark.parametrize("change, words", [
    ({"security.ssl.internal.keystore-password": "wrong"}, ["security.ssl.internal.keystore", "internal.p12"]),
    ({"security.ssl.rest.keystore": "/nonexistent/rest.p12"}, ["security.ssl.rest.keystore", "/nonexistent/rest.p12"]),
    ({"security.ssl.rest.truststore-type": "JKS"}, ["security.ssl.rest.truststore-type", "keytool"]),
])
def test_a_jobmanager_with_an_unusable_keystore_does_not_start(
    cluster_factory: Callable[..., Cluster], certs: CertificateSet, change: dict[str, str], words: list[str],
) -> None:
    cluster = cluster_factory(**{**certs.internal_config(), **certs.rest_config(), **change})
    with pytest.raises(RuntimeError) as raised:
        cluster.start_jobmanager()
    message = str(raised.value)
    assert "exited with 1" in message and "cannot start" in message
    for word in words:
        assert word in message


def _walk(client: KazooClient, path: str) -> list[str]:
    found = [path]
    for child in client.get_children(path):
        found += _walk(client, f"{path.rstrip('/')}/{child}")
    return found


def test_with_everything_on_a_strangers_zookeeper_client_is_refused_every_cluster_znode(
    zookeeper_factory: Callable[..., ZooKeeperEnsemble], certs: CertificateSet, tmp_path: Path,
) -> None:
    """TLS on RPC and REST, ZooKeeper with SASL and creator ACL: the job runs and checkpoints, bin/flink works
    with the conf's keys, and a ZooKeeper client without the cluster's credentials gets NoAuth reading,
    listing, writing or deleting any node the cluster made, while the cluster's identity may."""
    password = "zk-" + os.urandom(6).hex()
    zookeeper = zookeeper_factory(1, sasl_users={"flink": password})
    jaas = write_client_jaas(tmp_path / "jaas.conf", "flink", password)
    cluster = Cluster(tmp_path / "cluster", zookeeper.connect_string, {
        **certs.internal_config(), **certs.rest_config(), "high-availability.zookeeper.client.acl": "creator",
        "env.java.opts.all": f"-Djava.security.auth.login.config={jaas}"})
    cluster.write_conf()
    owner = zookeeper.client(sasl_options={"mechanism": "DIGEST-MD5", "username": "flink", "password": password})
    stranger = zookeeper.client()
    try:
        cluster.start_leader()
        cluster.start_jobmanager()
        cluster.start_taskmanager()
        submitted = cluster.flink("run", "-d", "-py", str(HERE / "checkpointed_count_job.py"), str(tmp_path / "out"),
                                  "100000000", "200", "-1", "1")
        assert submitted.returncode == 0, submitted.stdout + submitted.stderr
        job_id = cluster.job_id(submitted)
        checkpoints = paths.checkpoints(cluster.zookeeper_base, job_id)
        wait_for(lambda: owner.exists(checkpoints) and owner.get_children(checkpoints), 60,
                 what="a completed checkpoint's node")
        nodes = _walk(owner, "/flink")
        assert len(nodes) > 10 and any("latch" in n for n in nodes) and any("jobgraphs" in n for n in nodes)
        for node in nodes:
            owner.get(node)  # the cluster's identity may
            for attempt in (lambda: stranger.get(node), lambda: stranger.get_children(node),
                            lambda: stranger.set(node, b"x"), lambda: stranger.delete(node)):
                try:
                    attempt()
                except NoNodeError:
                    pass  # an ephemeral node that went meanwhile
                except NoAuthError:
                    continue
                except NotEmptyError:
                    # "/" is open (not the cluster's): a delete of its child /flink is judged by that ACL,
                    # and refused only because /flink has children the stranger cannot delete
                    assert node == "/flink"
                    continue
                else:
                    raise AssertionError(f"a stranger was allowed on {node}")
        assert re.search(rf"{job_id}.*RUNNING", cluster.flink("list").stdout)
        cancelled = cluster.flink("cancel", job_id)
        assert cancelled.returncode == 0, cancelled.stdout + cancelled.stderr
    finally:
        for client in (owner, stranger):
            client.stop()
            client.close()
        cluster.close()
