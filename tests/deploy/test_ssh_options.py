"""`env.ssh.opts` and ~/.ssh/config into paramiko's connect arguments, and connect errors into words."""

from __future__ import annotations

import getpass
import socket

import paramiko
import pytest

from ha_flink.deploy.ssh import (
    DEFAULT_CONNECT_TIMEOUT, SshOptionsError, connect_parameters, describe_connect_error, parse_ssh_opts,
)


def test_the_usual_options_in_each_spelling() -> None:
    options = parse_ssh_opts("-p 2222 -l flink -i ~/.ssh/flink_key -o StrictHostKeyChecking=no "
                             "-oConnectTimeout=3 -o 'UserKnownHostsFile /tmp/kh' -qn -p2223")
    assert options.port == 2223  # the later one wins, as with ssh
    assert options.user == "flink"
    assert options.identity_files == ["~/.ssh/flink_key"]
    assert options.strict_host_key_checking == "no"
    assert options.connect_timeout == 3.0
    assert options.known_hosts_files == ["/tmp/kh"]


def test_empty_or_unset_options_mean_ssh_defaults() -> None:
    params = connect_parameters("node-1", parse_ssh_opts(None))
    assert (params.hostname, params.port, params.username) == ("node-1", 22, getpass.getuser())
    assert params.key_filenames == () and params.timeout == DEFAULT_CONNECT_TIMEOUT
    assert params.strict_host_key_checking == "yes"


@pytest.mark.parametrize(("text", "message"), [
    ("-J jump", "-J is not supported by ha-flink's SSH client (paramiko)"),
    ("-L 8080:localhost:80", "-L is not supported"),
    ("-p", "-p is missing its argument"),
    ("-p 70000", "'70000' is not a port number"),
    ("-o ProxyCommand=nc", "-o ProxyCommand is not supported"),
    ("-o StrictHostKeyChecking=maybe", "StrictHostKeyChecking='maybe'; accepted: yes, no, accept-new"),
    ("-o ConnectTimeout=soon", "-o ConnectTimeout='soon' is not a number"),
    ("node-1", "'node-1' is not an ssh option"),
    ("-p '22", "cannot be split into words"),
    ("-Z", "-Z is not an ssh option we know"),
])
def test_options_we_cannot_honour_are_named(text: str, message: str) -> None:
    with pytest.raises(SshOptionsError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_ssh_opts(text)


def test_harmless_options_are_accepted_and_remembered_as_ignored() -> None:
    options = parse_ssh_opts("-o BatchMode=yes -o LogLevel=ERROR -T")
    assert options.ignored == ["-o BatchMode=yes", "-o LogLevel=ERROR"]


def test_command_line_wins_over_ssh_config_which_wins_over_defaults() -> None:
    config = paramiko.SSHConfig.from_text(
        "Host worker-*\n  HostName 10.0.0.7\n  Port 2200\n  User deploy\n  IdentityFile ~/.ssh/deploy\n"
        "  ConnectTimeout 4\n  StrictHostKeyChecking no\n"
    )
    from_config = connect_parameters("worker-1", parse_ssh_opts(""), config)
    assert (from_config.hostname, from_config.port, from_config.username) == ("10.0.0.7", 2200, "deploy")
    assert from_config.key_filenames[0].endswith("/.ssh/deploy") and from_config.timeout == 4.0
    assert from_config.strict_host_key_checking == "no"
    overridden = connect_parameters("worker-1", parse_ssh_opts("-p 22 -l flink -i /k"), config)
    assert (overridden.port, overridden.username) == (22, "flink")
    assert overridden.key_filenames[0] == "/k"  # ssh tries -i keys first, then the config's
    other = connect_parameters("master", parse_ssh_opts(""), config)
    assert (other.hostname, other.port) == ("master", 22)


def test_connect_errors_in_words() -> None:
    params = connect_parameters("node-9", parse_ssh_opts("-p 2222 -l flink -i /keys/id"))
    refused = paramiko.ssh_exception.NoValidConnectionsError({("10.0.0.9", 2222): ConnectionRefusedError(111, "x")})
    assert describe_connect_error(refused, params) == \
        "connection refused at node-9 port 2222 (no SSH server listening there?)"
    assert "timed out after 10 s" in describe_connect_error(socket.timeout(), params)
    assert "unknown host name 'node-9'" in describe_connect_error(socket.gaierror(-2, "Name or service not known"),
                                                                  params)
    assert describe_connect_error(paramiko.AuthenticationException(), params) == \
        "authentication as 'flink' failed (tried /keys/id); check the key and authorized_keys"
    unknown = paramiko.SSHException("Server 'node-9' not found in known_hosts")
    assert "ssh-keyscan -p 2222 node-9 >> ~/.ssh/known_hosts" in describe_connect_error(unknown, params)
    assert "No route to host" in describe_connect_error(OSError(113, "No route to host"), params)
