"""conf/zoo.cfg: server lines, defaults, per-server config files, and the errors for bad lines."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from ha_flink.config import ConfigurationError
from ha_flink.deploy.zookeeper_quorum import (
    parse_zoo_cfg, read_zoo_cfg, server_config_path, server_config_text, write_server_files,
)

INSTALL = Path("/opt/ha-flink")


def test_flinks_default_zoo_cfg() -> None:
    quorum = parse_zoo_cfg("# comment\ntickTime=2000\ndataDir=data/zookeeper\nclientPort=2181\n"
                           "server.1=localhost:2888:3888\n", "conf/zoo.cfg", INSTALL)
    [server] = quorum.servers
    assert (server.server_id, server.host, server.peer_port, server.leader_port, server.client_port) == \
        (1, "localhost", 2888, 3888, 2181)
    assert quorum.data_dir == INSTALL / "data/zookeeper"  # relative: from the install dir
    assert quorum.connect_string == "localhost:2181"
    assert server.source == "conf/zoo.cfg:5"
    text = server_config_text(quorum, server)
    # one server runs standalone: no server lines, its own data dir
    assert "server.1=" not in text and "dataDir=/opt/ha-flink/data/zookeeper/server-1\n" in text
    assert "tickTime=2000\n" in text and "clientPort=2181\n" in text


def test_an_ensemble_on_one_host_with_client_ports_of_its_own() -> None:
    quorum = parse_zoo_cfg("dataDir=/var/zk\nclientPort=2181\n"
                           "server.1=127.0.0.1:2888:3888;2181\nserver.2=127.0.0.1:2889:3889;127.0.0.1:2182\n"
                           "server.3=127.0.0.1:2890:3890:observer;2183\n", "zoo.cfg", INSTALL)
    assert [s.client_port for s in quorum.servers] == [2181, 2182, 2183]
    assert quorum.connect_string == "127.0.0.1:2181,127.0.0.1:2182,127.0.0.1:2183"
    text = server_config_text(quorum, quorum.server(2))
    assert "dataDir=/var/zk/server-2\nclientPort=2182\nclientPortAddress=127.0.0.1\n" in text
    assert "server.3=127.0.0.1:2890:3890:observer;2183\n" in text  # every server line, client port included
    assert quorum.server(2).client_probe_address == ("127.0.0.1", 2182)


def test_missing_ports_get_the_defaults_as_in_flink() -> None:
    quorum = parse_zoo_cfg("server.1=zk-a\nserver.2=zk-b\n", "zoo.cfg", INSTALL)
    assert [(s.host, s.peer_port, s.leader_port, s.client_port) for s in quorum.servers] == \
        [("zk-a", 2888, 3888, 2181), ("zk-b", 2888, 3888, 2181)]


def test_a_bad_server_line_is_skipped_with_flinks_warning_and_its_place() -> None:
    quorum = parse_zoo_cfg("server.1=localhost:2888:3888\nserver.x=localhost\nserver.2=a b\n", "conf/zoo.cfg", INSTALL)
    assert [s.server_id for s in quorum.servers] == [1]
    assert quorum.warnings[0].startswith("[WARN] Parse error. Skipping config entry 'server.x=localhost' "
                                         "(conf/zoo.cfg:2: expected server.<id>=<host>")
    assert "'server.2=a b' (conf/zoo.cfg:3" in quorum.warnings[1]


@pytest.mark.parametrize(("text", "message"), [
    ("tickTime=2000\n", "conf/zoo.cfg: names no ZooKeeper server; add one line per server"),
    ("server.1=a:1:2\nserver.1=b:1:2\n", "conf/zoo.cfg:2: server.1 is defined twice (also at conf/zoo.cfg:1)"),
    ("server.1=h:2888:3888;2181\nserver.2=h:2889:3889;2181\n",
     "conf/zoo.cfg:2: server.2 would use port 2181 on h as its client port, but server.1 (conf/zoo.cfg:1) uses it"),
    ("server.1=h:2888:2888\n", "conf/zoo.cfg:1: server.1 uses port 2888 twice (peer port and leader port)"),
    ("server.1=h:99999:3888\n", "conf/zoo.cfg:1: peer port 99999 is not a port number"),
    ("just words\n", "conf/zoo.cfg:1: malformed line 'just words'; expected key=value"),
    ("clientPort=abc\nserver.1=h\n", "clientPort='abc' is not a port number"),
])
def test_errors_name_the_line(text: str, message: str) -> None:
    with pytest.raises(ConfigurationError, match=re.escape(message)):
        parse_zoo_cfg(text, "conf/zoo.cfg", INSTALL)


def test_missing_zoo_cfg_gets_flinks_message(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match=re.escape(
            f"[ERROR] No ZooKeeper configuration file found in '{tmp_path / 'zoo.cfg'}'.")):
        read_zoo_cfg(tmp_path / "zoo.cfg", INSTALL)


def test_server_files_are_written_beside_the_data(tmp_path: Path) -> None:
    (tmp_path / "zoo.cfg").write_text("dataDir=zk\nserver.1=127.0.0.1:1:2;3\nserver.7=127.0.0.1:4:5;6\n")
    quorum = read_zoo_cfg(tmp_path / "zoo.cfg", tmp_path)
    path = write_server_files(quorum, quorum.server(7))
    assert path == server_config_path(quorum, quorum.server(7)) == tmp_path / "zk" / "server-7" / "zoo.cfg"
    assert (tmp_path / "zk" / "server-7" / "myid").read_text() == "7\n"
    with pytest.raises(ConfigurationError, match=r"has no line server.2=...; its servers: 1, 7"):
        quorum.server(2)


def test_client_port_address_applies_to_servers_without_their_own() -> None:
    quorum = parse_zoo_cfg("clientPort=2181\nclientPortAddress=127.0.0.1\nserver.1=localhost:2888:3888\n",
                           "zoo.cfg", INSTALL)
    [server] = quorum.servers
    assert server.client_probe_address == ("127.0.0.1", 2181)
    assert "clientPortAddress=127.0.0.1\n" in server_config_text(quorum, server)
