"""ZooKeeper SASL (DIGEST-MD5 from a JAAS file named in env.java.opts.all) and
`high-availability.zookeeper.client.acl: creator`: the JAAS parser and its errors, then real SASL
ZooKeeper servers: the HA services' znodes are the cluster identity's alone, creator ACL without
credentials is refused at start, wrong credentials fail fast, a JobManager process leads with them, and
bin/start-zookeeper-quorum.sh starts SASL servers from conf/."""

from __future__ import annotations

import threading
import time
import uuid
from pathlib import Path
from typing import Callable, Iterator

import pytest
from kazoo.client import KazooClient
from kazoo.exceptions import NoAuthError, NotEmptyError
from kazoo.security import ACL, Id

from ha_flink.config import Configuration, ConfigurationError
from ha_flink.deploy.zookeeper_quorum import parse_zoo_cfg, server_jvm_options
from ha_flink.ha.checkpoint_store import CompletedCheckpoint
from ha_flink.ha.services import ZooKeeperHaServices, create_ha_services
from ha_flink.ha.zookeeper_client import ZooKeeperAuthenticationError, start_zookeeper_client
from ha_flink.security.jaas import ZooKeeperSasl, jaas_file_from_java_opts, parse_jaas, zookeeper_sasl
from ha_flink.testing.cluster import Cluster
from ha_flink.testing.processes import free_ports, wait_for
from ha_flink.testing.script_cluster import ScriptCluster
from ha_flink.testing.zookeeper import ZooKeeperEnsemble, write_client_jaas

USER, PASSWORD = "flink", "s3cret-pw"
USERS = {USER: PASSWORD, "other": "other-pw"}
CREATOR = [ACL(31, Id("sasl", USER))]  # ALL for the cluster's SASL identity, nothing for anyone else


def java_opts(jaas: Path) -> str:
    return f"-Xmx512m -Djava.security.auth.login.config={jaas} -Dfoo=bar"


def config_with(**values: str) -> Configuration:
    return Configuration({key.replace("_", "."): value for key, value in values.items()})


# --- (a) the JAAS parser -------------------------------------------------------------------------------


def test_parses_sections_entries_options_and_comments() -> None:
    text = """// ZooKeeper's logins
    Server {
        org.apache.zookeeper.server.auth.DigestLoginModule required
        user_flink="s3cret" user_bob=plain;   /* two users */
    };
    /* a
       block comment */
    Client {
      org.apache.zookeeper.server.auth.DigestLoginModule Required username="fl\\"ink" password="p;w{}";
      com.example.Other optional;
    };
    """
    jaas = parse_jaas(text, "jaas.conf")
    assert list(jaas.sections) == ["Server", "Client"]
    server = jaas.sections["Server"]
    assert server.line == 2 and len(server.entries) == 1
    assert dict(server.entries[0].options) == {"user_flink": "s3cret", "user_bob": "plain"}
    client = jaas.sections["Client"].entries
    assert client[0].flag == "required" and client[0].line == 9
    assert dict(client[0].options) == {"username": 'fl"ink', "password": "p;w{}"}
    assert (client[1].module, client[1].flag, dict(client[1].options), client[1].line) == \
        ("com.example.Other", "optional", {}, 10)


@pytest.mark.parametrize(("text", "line", "message"), [
    ("Client {\n  a.B required x=\"1\"\n};\n", 3,
     "expected an option key=value or ';' to end the a.B entry of line 2, found '}'"),
    ("Client {\n  a.B mandatory;\n};\n", 2, "'mandatory' is not a login module flag"),
    ("Client {\n  a.B required;\n}\n", 3, "the file ends where ';' after the '}' of section Client was expected"),
    ("Client {\n  a.B required k=\"open\n};\n", 2, "a quoted value is not closed"),
    ("/* never closed\nClient {};\n", 1, "a /* comment is never closed"),
    ("Client {\n a.B required;\n};\n\nClient {\n a.B required;\n};\n", 5,
     "section Client is defined twice (first at line 1)"),
    ("Client {\n  a.B required key;\n};\n", 2, "expected '=' after the option key, found ';'"),
    ("= {\n};\n", 1, "expected a section name"),
])
def test_parse_errors_name_the_file_and_line(text: str, line: int, message: str) -> None:
    with pytest.raises(ConfigurationError) as error:
        parse_jaas(text, "/etc/flink/jaas.conf")
    assert error.value.source == f"/etc/flink/jaas.conf:{line}"
    assert message in str(error.value)


def test_the_jaas_file_is_the_last_one_the_jvm_options_name(tmp_path: Path) -> None:
    assert jaas_file_from_java_opts(None) is None
    assert jaas_file_from_java_opts("-Xmx1g -Dother=1") is None
    assert jaas_file_from_java_opts("-Djava.security.auth.login.config=/a -Djava.security.auth.login.config=/b") \
        == Path("/b")
    assert jaas_file_from_java_opts("'-Djava.security.auth.login.config=/my dir/j.conf'") == Path("/my dir/j.conf")
    assert jaas_file_from_java_opts("-Djava.security.auth.login.config==/only.conf") == Path("/only.conf")
    assert jaas_file_from_java_opts("-Djava.security.auth.login.config=file:/u.conf") == Path("/u.conf")
    assert jaas_file_from_java_opts("-Djava.security.auth.login.config=rel.conf", working_dir=tmp_path) \
        == tmp_path / "rel.conf"
    with pytest.raises(ConfigurationError, match="env.java.opts.all: cannot be split into JVM options"):
        jaas_file_from_java_opts("-Dx='open")


def test_digest_credentials_from_the_client_section(tmp_path: Path) -> None:
    jaas = write_client_jaas(tmp_path / "jaas.conf", USER, PASSWORD)
    sasl = zookeeper_sasl(config_with(env_java_opts_all=java_opts(jaas)))
    assert sasl == ZooKeeperSasl("DIGEST-MD5", USER, PASSWORD, "zookeeper", jaas, "Client", 3)
    assert PASSWORD not in repr(sasl)
    assert sasl.kazoo_sasl_options() == {"mechanism": "DIGEST-MD5", "username": USER, "password": PASSWORD,
                                         "service": "zookeeper"}
    # the deprecated key, another login context name
    other = write_client_jaas(tmp_path / "other.conf", "bob", "pw", section="ZkClient")
    sasl = zookeeper_sasl(Configuration({"env.java.opts": java_opts(other),
                                         "zookeeper.sasl.login-context-name": "ZkClient"}))
    assert sasl is not None and (sasl.username, sasl.section) == ("bob", "ZkClient")


def test_no_sasl_when_disabled_or_no_jaas_file_is_named(tmp_path: Path) -> None:
    assert zookeeper_sasl(Configuration()) is None
    assert zookeeper_sasl(config_with(env_java_opts_all="-Xmx1g")) is None
    missing = tmp_path / "missing.conf"
    # disabled: the file is not even read
    assert zookeeper_sasl(Configuration({"env.java.opts.all": java_opts(missing),
                                         "zookeeper.sasl.disable": "true"})) is None


def sasl_error(config: Configuration) -> ConfigurationError:
    with pytest.raises(ConfigurationError) as error:
        zookeeper_sasl(config)
    return error.value


def test_a_named_jaas_file_that_is_missing_or_broken_is_an_error_naming_it(tmp_path: Path) -> None:
    missing = tmp_path / "missing.conf"
    error = sasl_error(config_with(env_java_opts_all=java_opts(missing)))
    assert str(error).startswith(f"{missing}: the JAAS file (named by -Djava.security.auth.login.config in "
                                 "env.java.opts.all) does not exist")
    broken = tmp_path / "broken.conf"
    broken.write_text("Client {\n  org.apache.zookeeper.server.auth.DigestLoginModule required\n")
    error = sasl_error(config_with(env_java_opts_all=java_opts(broken)))
    assert error.source == f"{broken}:2" and "env.java.opts.all" in str(error)
    unreadable = tmp_path / "dir.conf"
    unreadable.mkdir()
    assert "cannot be read" in str(sasl_error(config_with(env_java_opts_all=java_opts(unreadable))))


def test_client_section_errors_name_file_section_and_key(tmp_path: Path) -> None:
    path = tmp_path / "jaas.conf"
    config = config_with(env_java_opts_all=java_opts(path))

    path.write_text('Server {\n  org.apache.zookeeper.server.auth.DigestLoginModule required user_a="b";\n};\n')
    error = sasl_error(config)
    assert error.source == str(path)
    assert "has no section Client (zookeeper.sasl.login-context-name)" in str(error)
    assert "its sections: Server" in str(error)

    path.write_text('Client {\n  org.apache.zookeeper.server.auth.DigestLoginModule required username="a";\n};\n')
    error = sasl_error(config)
    assert error.source == f"{path}:2" and "has no password" in str(error)

    path.write_text("Client {\n  com.example.PlainLoginModule required;\n};\n")
    error = sasl_error(config)
    assert error.source == f"{path}:1" and "has com.example.PlainLoginModule" in str(error)


def test_kerberos_is_refused_naming_the_file_and_section_or_the_key(tmp_path: Path) -> None:
    path = tmp_path / "jaas.conf"
    path.write_text("Client {\n  com.sun.security.auth.module.Krb5LoginModule required\n"
                    '  useKeyTab=true keyTab="/etc/zk.keytab" principal="flink@EXAMPLE.COM";\n};\n')
    error = sasl_error(config_with(env_java_opts_all=java_opts(path)))
    assert error.source == f"{path}:2"
    assert "section Client uses com.sun.security.auth.module.Krb5LoginModule: Kerberos (GSSAPI) is not " \
           "supported by ha-flink" in str(error)
    assert "use DIGEST-MD5" in str(error)

    digest = write_client_jaas(tmp_path / "digest.conf", USER, PASSWORD)
    error = sasl_error(Configuration({"env.java.opts.all": java_opts(digest),
                                      "security.kerberos.login.contexts": "Client,KafkaClient",
                                      "security.kerberos.login.keytab": "/etc/flink.keytab",
                                      "security.kerberos.login.principal": "flink@EXAMPLE.COM"}))
    assert error.key == "security.kerberos.login.contexts"
    assert "Kerberos (GSSAPI) is not supported" in str(error) and "security.kerberos.login.keytab" in str(error)
    # Kerberos for other contexts only (e.g. Kafka's) leaves ZooKeeper's DIGEST-MD5 alone
    assert zookeeper_sasl(Configuration({"env.java.opts.all": java_opts(digest),
                                         "security.kerberos.login.contexts": "KafkaClient",
                                         "security.kerberos.login.keytab": "/etc/flink.keytab"})) is not None


def test_the_quorum_servers_get_the_jvm_options_and_sasl_needs_their_server_section(tmp_path: Path) -> None:
    plain = parse_zoo_cfg("server.1=localhost:2888:3888\n", "conf/zoo.cfg", tmp_path)
    assert server_jvm_options(plain, config_with(env_java_opts_all="-Xmx1g -Da=b"), tmp_path) == ("-Xmx1g", "-Da=b")

    sasl = parse_zoo_cfg("authProvider.1=org.apache.zookeeper.server.auth.SASLAuthenticationProvider\n"
                         "server.1=localhost:2888:3888\n", "conf/zoo.cfg", tmp_path)
    with pytest.raises(ConfigurationError) as error:
        server_jvm_options(sasl, Configuration(), tmp_path)
    assert str(error.value).startswith("conf/zoo.cfg: sets authProvider.1=org.apache.zookeeper.server.auth."
                                       "SASLAuthenticationProvider, but env.java.opts.all names no JAAS file")
    client_only = write_client_jaas(tmp_path / "client.conf", USER, PASSWORD)
    with pytest.raises(ConfigurationError, match="has no Server section, which authProvider.1="):
        server_jvm_options(sasl, config_with(env_java_opts_all=java_opts(client_only)), tmp_path)
    both = tmp_path / "jaas.conf"
    both.write_text(client_only.read_text() + 'Server {\n  org.apache.zookeeper.server.auth.DigestLoginModule '
                    f'required user_{USER}="{PASSWORD}";\n}};\n')
    assert server_jvm_options(sasl, config_with(env_java_opts_all="-Djava.security.auth.login.config=jaas.conf"),
                              tmp_path) == ("-Djava.security.auth.login.config=jaas.conf",)


# --- (b) to (d): real SASL ZooKeeper servers --------------------------------------------------------------


@pytest.fixture
def sasl_zookeeper(zookeeper_factory: Callable[..., ZooKeeperEnsemble]) -> ZooKeeperEnsemble:
    return zookeeper_factory(1, sasl_users=USERS)


@pytest.fixture
def client_jaas(tmp_path: Path) -> Path:
    return write_client_jaas(tmp_path / "client-jaas.conf", USER, PASSWORD)


def ha_config(quorum: str, tmp_path: Path, root: str, jaas: Path | None, acl: str = "creator") -> Configuration:
    values = {
        "high-availability": "zookeeper",
        "high-availability.zookeeper.quorum": quorum,
        "high-availability.zookeeper.path.root": root,
        "high-availability.cluster-id": "/cluster-a",
        "high-availability.storageDir": f"file://{tmp_path}/ha",
        "high-availability.zookeeper.client.session-timeout": "10 s",
        "high-availability.zookeeper.client.connection-timeout": "5 s",
        "high-availability.zookeeper.client.acl": acl,
    }
    if jaas is not None:
        values["env.java.opts.all"] = java_opts(jaas)
    return Configuration(values)


@pytest.fixture
def services(sasl_zookeeper: ZooKeeperEnsemble, client_jaas: Path, tmp_path: Path,
             zk_root: str) -> Iterator[ZooKeeperHaServices]:
    made = create_ha_services(ha_config(sasl_zookeeper.connect_string, tmp_path, f"{zk_root}/flink", client_jaas))
    assert isinstance(made, ZooKeeperHaServices)
    try:
        yield made
    finally:
        made.close()


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


def tree(client: KazooClient, path: str) -> list[str]:
    """`path` and every znode below it, parents first."""
    return [path, *(node for child in sorted(client.get_children(path)) for node in tree(client, f"{path}/{child}"))]


def ancestors_below_root(path: str) -> list[str]:
    parts = path.strip("/").split("/")
    return ["/" + "/".join(parts[:i]) for i in range(1, len(parts))]


def assert_stranger_is_refused(stranger: KazooClient, nodes: list[str]) -> None:
    for node in nodes:
        for operation, call in (("get", lambda: stranger.get(node)),
                                ("get_children", lambda: stranger.get_children(node)),
                                ("set", lambda: stranger.set(node, b"taken over")),
                                ("delete", lambda: stranger.delete(node))):
            if operation == "delete" and node.count("/") == 1:
                # deleting is governed by the parent's ACL: the parent of the topmost node is ZooKeeper's
                # open "/", so only its children (all refused) keep it from being deleted
                with pytest.raises(NotEmptyError):
                    call()
                continue
            with pytest.raises(NoAuthError):
                call()
                pytest.fail(f"a stranger's {operation} of {node} was not refused")


def test_every_znode_the_ha_services_create_is_the_cluster_identitys_alone(
    services: ZooKeeperHaServices, sasl_zookeeper: ZooKeeperEnsemble, kazoo_factory: Callable[..., KazooClient],
    zk_root: str,
) -> None:
    election = services.leader_election("jobmanager", {"address": "127.0.0.1:6123"})
    contender = Contender()
    election.start(contender)
    try:
        session = wait_for(lambda: contender.leading, 15, what="the leader election to grant")
        fence = election.fence(session)
        election.publish("dispatcher", "127.0.0.1:6123", session)
        job = uuid.uuid4().hex
        services.job_graph_store(fence).put_job_graph(job, {"graph": 1})
        checkpoints = services.checkpoint_store(job, fence)
        checkpoints.add_checkpoint_and_subsume_old_ones(CompletedCheckpoint(job, 1, 0.0, "file:///chk-1"))
        counter = services.checkpoint_id_counter(job, fence)
        counter.start()
        assert counter.get_and_increment() == 1

        client = services.client
        nodes = tree(client, zk_root)
        created = ancestors_below_root(services.base_path)
        assert created == [zk_root, f"{zk_root}/flink"]
        for expected in (*created, services.base_path, f"{services.base_path}/leader/latch",
                         election.latch_path, f"{services.base_path}/leader/dispatcher/connection_info",
                         f"{services.base_path}/jobgraphs/{job}/locks/{services.owner}",
                         f"{services.base_path}/jobs/{job}/checkpoint_id_counter",
                         f"{services.base_path}/jobs/{job}/checkpoints/{'0' * 18}1"):
            assert expected in nodes, f"{expected} not created; the tree: {nodes}"
        wrong = {node: acl for node in nodes if (acl := client.get_acls(node)[0]) != CREATOR}
        assert wrong == {}, "znodes without the creator ACL"

        stranger = kazoo_factory(sasl_zookeeper)  # no credentials
        assert_stranger_is_refused(stranger, nodes)
        other_user = kazoo_factory(sasl_zookeeper, sasl_options={"mechanism": "DIGEST-MD5", "username": "other",
                                                                 "password": "other-pw"})
        assert_stranger_is_refused(other_user, [services.base_path, election.latch_path])

        same = kazoo_factory(sasl_zookeeper, sasl_options={"mechanism": "DIGEST-MD5", "username": USER,
                                                           "password": PASSWORD})
        for node in nodes:
            assert same.get(node)[0] == client.get(node)[0]
            assert sorted(same.get_children(node)) == sorted(client.get_children(node))
        assert election.latch_path is not None and contender.leading == session  # still leading
    finally:
        election.close()


def test_sasl_with_open_acl_authenticates_and_leaves_nodes_open(
    sasl_zookeeper: ZooKeeperEnsemble, client_jaas: Path, tmp_path: Path, zk_root: str,
) -> None:
    client = start_zookeeper_client(ha_config(sasl_zookeeper.connect_string, tmp_path, zk_root, client_jaas, "open"))
    try:
        client.create(f"{zk_root}/open", b"x", makepath=True)
        assert client.get_acls(f"{zk_root}/open")[0] == [ACL(31, Id("world", "anyone"))]
    finally:
        client.stop()
        client.close()


def test_creator_acl_without_sasl_credentials_is_refused_at_start_naming_the_key(
    sasl_zookeeper: ZooKeeperEnsemble, client_jaas: Path, tmp_path: Path, zk_root: str,
) -> None:
    with pytest.raises(ConfigurationError) as error:
        create_ha_services(ha_config(sasl_zookeeper.connect_string, tmp_path, zk_root, None))
    assert error.value.key == "high-availability.zookeeper.client.acl"
    assert "no JAAS file is named" in str(error.value)
    assert "Client section (zookeeper.sasl.login-context-name) has org.apache.zookeeper.server.auth." \
           "DigestLoginModule" in str(error.value)

    disabled = ha_config(sasl_zookeeper.connect_string, tmp_path, zk_root, client_jaas)
    disabled.set("zookeeper.sasl.disable", "true")
    with pytest.raises(ConfigurationError, match="zookeeper.sasl.disable is true"):
        create_ha_services(disabled)


@pytest.mark.parametrize(("username", "password"), [(USER, "bad-pw-123"), ("nobody", PASSWORD)])
def test_refused_credentials_fail_at_once_naming_the_quorum_and_the_jaas_file(
    sasl_zookeeper: ZooKeeperEnsemble, tmp_path: Path, zk_root: str, username: str, password: str,
) -> None:
    jaas = write_client_jaas(tmp_path / "bad-jaas.conf", username, password)
    config = ha_config(sasl_zookeeper.connect_string, tmp_path, zk_root, jaas)
    started = time.monotonic()
    with pytest.raises(ZooKeeperAuthenticationError) as error:
        create_ha_services(config)
    assert time.monotonic() - started < 5  # the connection timeout
    assert isinstance(error.value, ConnectionError)
    assert f"ZooKeeper at {sasl_zookeeper.connect_string} refused the client's authentication" in str(error.value)
    assert f"section Client of {jaas}:3" in str(error.value)
    assert password not in str(error.value)


def test_credentials_against_a_server_without_sasl_fail_within_the_connection_timeout(
    zookeeper_factory: Callable[..., ZooKeeperEnsemble], client_jaas: Path, tmp_path: Path, zk_root: str,
) -> None:
    plain = zookeeper_factory(1)
    config = ha_config(plain.connect_string, tmp_path, zk_root, client_jaas)
    config.set("high-availability.zookeeper.client.connection-timeout", "2 s")
    started = time.monotonic()
    with pytest.raises(ZooKeeperAuthenticationError, match="did not complete the SASL authentication"):
        create_ha_services(config)
    assert time.monotonic() - started < 2 + 5  # the timeout, and a prompt close after it


# --- a real JobManager process, and the quorum script ------------------------------------------------


def test_a_jobmanager_process_leads_with_sasl_and_creator_acl(
    sasl_zookeeper: ZooKeeperEnsemble, client_jaas: Path, tmp_path: Path,
    kazoo_factory: Callable[..., KazooClient],
) -> None:
    cluster = Cluster(tmp_path / "cluster", sasl_zookeeper.connect_string, {
        "high-availability.zookeeper.client.acl": "creator",
        "env.java.opts.all": java_opts(client_jaas),
    })
    cluster.write_conf()
    try:
        jobmanager = cluster.start_jobmanager()
        owner = kazoo_factory(sasl_zookeeper, sasl_options={"mechanism": "DIGEST-MD5", "username": USER,
                                                            "password": PASSWORD})
        leader_node = f"{cluster.zookeeper_base}/leader/dispatcher/connection_info"
        wait_for(lambda: owner.exists(leader_node), 30, 0.05, f"JobManager (pid {jobmanager.pid}) to lead")
        assert jobmanager.address() is not None and jobmanager.address().split(":")[1] in owner.get(leader_node)[0].decode()
        nodes = tree(owner, "/flink")
        assert all(owner.get_acls(node)[0] == CREATOR for node in tree(owner, cluster.zookeeper_base))
        stranger = kazoo_factory(sasl_zookeeper)
        assert_stranger_is_refused(stranger, [node for node in nodes if node.startswith(cluster.zookeeper_base)])
    finally:
        cluster.close()
    assert all(daemon.process.poll() is not None for daemon in cluster.daemons)


def test_start_zookeeper_quorum_starts_sasl_servers_from_conf(tmp_path: Path) -> None:
    client_port, peer, leader = free_ports(3)
    jaas = tmp_path / "conf-jaas.conf"
    jaas.write_text(write_client_jaas(tmp_path / "c.conf", USER, PASSWORD).read_text()
                    + 'Server {\n  org.apache.zookeeper.server.auth.DigestLoginModule required\n'
                    f'    user_{USER}="{PASSWORD}";\n}};\n')
    zoo_cfg = (f"tickTime=200\ndataDir={tmp_path}/zk\nclientPort={client_port}\nclientPortAddress=127.0.0.1\n"
               "4lw.commands.whitelist=srvr,ruok\n"
               "authProvider.1=org.apache.zookeeper.server.auth.SASLAuthenticationProvider\n"
               f"server.1=127.0.0.1:{peer}:{leader}\n")
    cluster = ScriptCluster(tmp_path / "scripts", f"127.0.0.1:{client_port}", zoo_cfg=zoo_cfg)
    cluster.write_conf()
    try:
        refused = cluster.run("start-zookeeper-quorum.sh")  # no JAAS file named: not started, the reason said
        assert refused.returncode == 1
        assert "env.java.opts.all names no JAAS file (-Djava.security.auth.login.config=<file>)" in refused.stdout

        cluster.settings["env.java.opts.all"] = f"-Djava.security.auth.login.config={jaas}"
        cluster.write_conf()
        started = cluster.run("start-zookeeper-quorum.sh")
        assert started.returncode == 0, started.stdout + started.stderr
        owner = KazooClient(hosts=f"127.0.0.1:{client_port}", sasl_options={
            "mechanism": "DIGEST-MD5", "username": USER, "password": PASSWORD})
        owner.start(timeout=15)
        try:
            owner.create("/sasl-quorum", b"x", acl=[ACL(31, Id("auth", ""))])
            assert owner.get_acls("/sasl-quorum")[0] == CREATOR
        finally:
            owner.stop()
            owner.close()
        config = Configuration({"high-availability.zookeeper.quorum": f"127.0.0.1:{client_port}",
                                "high-availability.zookeeper.client.acl": "creator",
                                "env.java.opts.all": f"-Djava.security.auth.login.config={jaas}"})
        client = start_zookeeper_client(config)
        client.stop()
        client.close()
        stopped = cluster.run("stop-zookeeper-quorum.sh")
        assert stopped.returncode == 0 and "Stopped 1 ZooKeeper server(s)." in stopped.stdout
    finally:
        cluster.kill_all()
    assert cluster.processes() == []

