from __future__ import annotations

import re
from pathlib import Path

import pytest

from ha_flink.config import ConfigurationError, read_masters, read_slaves
from ha_flink.config.hosts import parse_masters, parse_slaves


def test_masters_with_and_without_webui_port(tmp_path: Path) -> None:
    (tmp_path / "masters").write_text("# JobManagers\nlocalhost:8081\n\n  node-2.example.com:8082  # second\n"
                                      "10.0.0.3\n[::1]:8083\n")
    masters = read_masters(tmp_path)
    assert [(m.host, m.webui_port) for m in masters] == [
        ("localhost", 8081), ("node-2.example.com", 8082), ("10.0.0.3", None), ("[::1]", 8083)
    ]
    assert masters[1].source == f"{tmp_path / 'masters'}:4"


def test_missing_masters_file_gets_flinks_message(tmp_path: Path) -> None:
    expected = f"No masters file. Please specify masters in '{tmp_path / 'masters'}'."
    with pytest.raises(ConfigurationError, match=re.escape(expected)):
        read_masters(tmp_path)


def test_masters_file_without_hosts_is_refused(tmp_path: Path) -> None:
    (tmp_path / "masters").write_text("# nothing\n\n")
    with pytest.raises(ConfigurationError, match="names no host"):
        read_masters(tmp_path)


@pytest.mark.parametrize(
    ("line", "fragment"),
    [
        ("localhost:http", "'http' in 'localhost:http' is not a web UI port"),
        ("localhost:0", "'0' in 'localhost:0' is not a web UI port"),
        ("localhost:99999", "is not a web UI port; accepted: a port number from 1 to 65535"),
        ("host one:8081", "malformed line 'host one:8081'"),
        ("localhost:8081:9", "malformed line"),
    ],
)
def test_malformed_master_lines_name_file_and_line(line: str, fragment: str) -> None:
    with pytest.raises(ConfigurationError) as error:
        parse_masters(f"localhost:8081\n{line}\n", "conf/masters")
    assert str(error.value).startswith("conf/masters:2: ")
    assert fragment in str(error.value)


def test_slaves_keep_repeats_skip_comments(tmp_path: Path) -> None:
    (tmp_path / "slaves").write_text("localhost\n# a comment\n\n127.0.0.2\n127.0.0.2  # two TaskManagers here\n")
    assert [w.host for w in read_slaves(tmp_path)] == ["localhost", "127.0.0.2", "127.0.0.2"]


def test_workers_file_is_accepted_too(tmp_path: Path) -> None:
    (tmp_path / "workers").write_text("worker-1\nworker-2\n")
    assert [w.host for w in read_slaves(tmp_path)] == ["worker-1", "worker-2"]


def test_slaves_wins_over_workers(tmp_path: Path) -> None:
    (tmp_path / "workers").write_text("from-workers\n")
    (tmp_path / "slaves").write_text("from-slaves\n")
    assert [w.host for w in read_slaves(tmp_path)] == ["from-slaves"]


def test_missing_slaves_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="No slaves file. Please specify slaves in"):
        read_slaves(tmp_path)


def test_malformed_slave_line() -> None:
    with pytest.raises(ConfigurationError, match=r"^conf/slaves:3: malformed line 'host-a host-b'; expected one host"):
        parse_slaves("ok-1\n\nhost-a host-b\n", "conf/slaves")
