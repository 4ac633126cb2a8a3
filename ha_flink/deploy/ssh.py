"""Running a command on another host over SSH with paramiko, configured the way Flink's scripts configure
OpenSSH's `ssh`: `env.ssh.opts` (e.g. `-p 2222 -l flink -i ~/.ssh/flink -o StrictHostKeyChecking=no`) on
top of `~/.ssh/config` (or the file given with `-F`), options on the command line winning as with `ssh`.

`parse_ssh_opts` and `connect_parameters` are pure (tested without a server); `RemoteShell` does the I/O.
Every failure to reach a host is an `SshError` naming the host and the reason in words (refused, timed
out, unknown host name, authentication, host key)."""

from __future__ import annotations

import getpass
import os
import shlex
import socket
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:  # paramiko is imported where it is used: it costs ~80 ms, and local starts need none of it
    import paramiko

DEFAULT_CONNECT_TIMEOUT = 10.0
# ssh options without an argument: meaningful for an interactive ssh, not for paramiko; accepted and ignored.
_FLAGS_IGNORED = set("46AaCfGgKkMNnqsTtvXxY")
# Options ssh takes an argument for that we cannot honour: refused, since silently dropping them (a jump
# host, a forwarding) would connect somewhere else or do something else than the user asked.
_UNSUPPORTED_WITH_ARGUMENT = {"B", "b", "c", "D", "E", "e", "I", "J", "L", "m", "O", "Q", "R", "S", "W", "w"}
# -o keys we map onto paramiko; others are reported as ignored.
_IGNORED_OPTION_KEYS = {"batchmode", "loglevel", "requesttty", "forwardagent", "forwardx11", "controlmaster",
                        "controlpath", "controlpersist", "compression", "serveralivecountmax", "checkhostip",
                        "identitiesonly", "passwordauthentication", "pubkeyauthentication", "hashknownhosts",
                        "addkeystoagent", "tcpkeepalive", "visualhostkey", "updatehostkeys"}


class SshOptionsError(ValueError):
    """`env.ssh.opts` holds something we cannot use; the message names the option."""


class SshError(RuntimeError):
    """A host could not be reached or logged into. `reason` is short and readable."""

    def __init__(self, host: str, reason: str) -> None:
        self.host = host
        self.reason = reason
        super().__init__(f"{host}: {reason}")


@dataclass
class SshOptions:
    """What `env.ssh.opts` says, before `~/.ssh/config` fills the gaps. None: not given."""

    port: int | None = None
    user: str | None = None
    identity_files: list[str] = field(default_factory=list)
    config_file: str | None = None
    connect_timeout: float | None = None
    strict_host_key_checking: str | None = None  # yes, no, accept-new, ask
    known_hosts_files: list[str] = field(default_factory=list)
    server_alive_interval: float | None = None
    ignored: list[str] = field(default_factory=list)  # options accepted but without effect, for a warning


@dataclass(frozen=True)
class ConnectParameters:
    """Everything `paramiko.SSHClient.connect` and the host key policy need for one host."""

    hostname: str
    port: int
    username: str
    key_filenames: tuple[str, ...]
    timeout: float
    strict_host_key_checking: str
    known_hosts_files: tuple[str, ...]
    keepalive: float | None = None


def _apply_option(options: SshOptions, key: str, value: str, where: str) -> None:
    lowered = key.lower()
    try:
        if lowered == "port":
            options.port = _port(value, where)
        elif lowered == "user":
            options.user = value
        elif lowered == "identityfile":
            options.identity_files.append(value)
        elif lowered == "connecttimeout":
            options.connect_timeout = float(value)
        elif lowered == "stricthostkeychecking":
            choice = value.lower()
            if choice not in ("yes", "no", "accept-new", "ask", "off"):
                raise SshOptionsError(f"{where}: StrictHostKeyChecking={value!r}; accepted: yes, no, accept-new")
            options.strict_host_key_checking = "no" if choice == "off" else choice
        elif lowered in ("userknownhostsfile", "globalknownhostsfile"):
            options.known_hosts_files.extend(value.split())
        elif lowered == "serveraliveinterval":
            options.server_alive_interval = float(value)
        elif lowered in _IGNORED_OPTION_KEYS:
            options.ignored.append(f"-o {key}={value}")
        else:
            raise SshOptionsError(f"{where}: -o {key} is not supported by ha-flink's SSH client (paramiko); "
                                  "supported: Port, User, IdentityFile, ConnectTimeout, StrictHostKeyChecking, "
                                  "UserKnownHostsFile, ServerAliveInterval")
    except ValueError as error:
        if isinstance(error, SshOptionsError):
            raise
        raise SshOptionsError(f"{where}: -o {key}={value!r} is not a number") from None


_SHORT_FOR = {"p": "Port", "l": "User", "i": "IdentityFile"}


def _port(value: str, where: str) -> int:
    if not value.isdigit() or not 0 < int(value) <= 65535:
        raise SshOptionsError(f"{where}: {value!r} is not a port number (1 to 65535)")
    return int(value)


def parse_ssh_opts(text: str | None, where: str = "env.ssh.opts") -> SshOptions:
    """The options of an OpenSSH command line (`-p PORT`, `-l USER`, `-i KEY`, `-F FILE`, `-o Key=Value`,
    `-o 'Key Value'`, flags like `-q`); an option we cannot honour is an error naming it."""
    options = SshOptions()
    try:
        words = shlex.split(text or "")
    except ValueError as error:
        raise SshOptionsError(f"{where}: {text!r} cannot be split into words: {error}") from None
    index = 0
    while index < len(words):
        word = words[index]
        index += 1
        if not word.startswith("-") or word == "-":
            raise SshOptionsError(f"{where}: {word!r} is not an ssh option (host names come from conf/masters "
                                  "and conf/slaves, not from env.ssh.opts)")
        flags = word[1:]
        while flags:
            letter, flags = flags[0], flags[1:]
            if letter in _FLAGS_IGNORED:
                continue
            if letter in "plioF" or letter in _UNSUPPORTED_WITH_ARGUMENT:
                if flags:
                    value, flags = flags, ""
                elif index < len(words):
                    value, index = words[index], index + 1
                else:
                    raise SshOptionsError(f"{where}: -{letter} is missing its argument")
                if letter in _SHORT_FOR:  # -p, -l, -i: the same as -o Port=, User=, IdentityFile=
                    _apply_option(options, _SHORT_FOR[letter], value, where)
                elif letter == "F":
                    options.config_file = value
                elif letter == "o":
                    key, sep, rest = value.partition("=")
                    if not sep:
                        key, _, rest = value.strip().partition(" ")
                    if not key.strip() or not rest.strip():
                        raise SshOptionsError(f"{where}: -o {value!r}; expected -o Key=Value")
                    _apply_option(options, key.strip(), rest.strip(), where)
                else:
                    raise SshOptionsError(f"{where}: -{letter} is not supported by ha-flink's SSH client "
                                          "(paramiko): no jump hosts, forwardings or ciphers; "
                                          "supported: -p, -l, -i, -F, -o and flags such as -q")
            else:
                raise SshOptionsError(f"{where}: -{letter} is not an ssh option we know")
    return options


def load_ssh_config(path: str | None) -> paramiko.SSHConfig:
    """`path` (ssh's -F), else ~/.ssh/config if it exists, else an empty config."""
    import paramiko

    candidate = Path(os.path.expanduser(path or "~/.ssh/config"))
    if path and not candidate.is_file():
        raise SshOptionsError(f"env.ssh.opts: -F {path}: no such file")
    return paramiko.SSHConfig.from_path(str(candidate)) if candidate.is_file() else paramiko.SSHConfig()


def connect_parameters(host: str, options: SshOptions,
                       ssh_config: paramiko.SSHConfig | None = None) -> ConnectParameters:
    """Command-line options first, then the ssh config's `Host` entries, then ssh's defaults."""
    entry = ssh_config.lookup(host) if ssh_config is not None else {}
    port = options.port or int(entry.get("port", 22))
    identity = list(options.identity_files) + list(entry.get("identityfile", []))
    timeout = options.connect_timeout
    if timeout is None and "connecttimeout" in entry:
        timeout = float(entry["connecttimeout"])
    strict = options.strict_host_key_checking or str(entry.get("stricthostkeychecking", "yes")).lower()
    known = list(options.known_hosts_files) or str(entry.get("userknownhostsfile", "")).split()
    keepalive = options.server_alive_interval
    if keepalive is None and "serveraliveinterval" in entry:
        keepalive = float(entry["serveraliveinterval"])
    return ConnectParameters(
        hostname=entry.get("hostname", host),
        port=port,
        username=options.user or entry.get("user") or getpass.getuser(),
        key_filenames=tuple(os.path.expanduser(path) for path in identity),
        timeout=timeout if timeout is not None else DEFAULT_CONNECT_TIMEOUT,
        strict_host_key_checking="no" if strict == "off" else strict,
        known_hosts_files=tuple(os.path.expanduser(path) for path in known) or ("~/.ssh/known_hosts",),
        keepalive=keepalive,
    )


def describe_connect_error(error: BaseException, params: ConnectParameters) -> str:
    """A connect failure in words a user can act on."""
    import paramiko

    where = f"{params.hostname} port {params.port}"
    if isinstance(error, paramiko.ssh_exception.NoValidConnectionsError):
        inner = next(iter(error.errors.values()), None)
        if isinstance(inner, ConnectionRefusedError) or inner is None:
            return f"connection refused at {where} (no SSH server listening there?)"
        return describe_connect_error(inner, params)
    if isinstance(error, ConnectionRefusedError):
        return f"connection refused at {where} (no SSH server listening there?)"
    if isinstance(error, (socket.timeout, TimeoutError)):
        return f"connection to {where} timed out after {params.timeout:g} s (host down or filtered?)"
    if isinstance(error, socket.gaierror):
        return f"unknown host name {params.hostname!r} ({error.strerror})"
    if isinstance(error, paramiko.BadHostKeyException):
        return (f"the host key of {params.hostname} does not match the one in known_hosts "
                "(possible man-in-the-middle; fix known_hosts if the host was reinstalled)")
    if isinstance(error, paramiko.AuthenticationException):
        keys = ", ".join(params.key_filenames) or "the default keys and the agent"
        return f"authentication as {params.username!r} failed (tried {keys}); check the key and authorized_keys"
    if isinstance(error, paramiko.SSHException) and "not found in known_hosts" in str(error):
        return (f"the host key of {params.hostname} is unknown: add it to known_hosts "
                f"(ssh-keyscan -p {params.port} {params.hostname} >> ~/.ssh/known_hosts) or set "
                "-o StrictHostKeyChecking=no in env.ssh.opts")
    if isinstance(error, OSError) and error.strerror:
        return f"cannot connect to {where}: {error.strerror}"
    return f"SSH to {where} failed: {error or type(error).__name__}"


@dataclass
class RemoteResult:
    exit_status: int
    stdout: str
    stderr: str


class RemoteShell:
    """One SSH connection to a host; `run` executes shell commands on it (several may run at once)."""

    def __init__(self, host: str, params: ConnectParameters) -> None:
        import paramiko

        self.host = host
        self.params = params
        self.client = paramiko.SSHClient()

    def connect(self) -> RemoteShell:
        import paramiko

        params = self.params
        if params.strict_host_key_checking in ("no", "accept-new"):
            self.client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
        else:
            self.client.set_missing_host_key_policy(paramiko.RejectPolicy())
        for path in params.known_hosts_files:
            expanded = os.path.expanduser(path)
            if os.path.isfile(expanded):
                try:
                    self.client.load_host_keys(expanded)
                except (OSError, paramiko.SSHException) as error:
                    raise SshError(self.host, f"cannot read the known hosts file {expanded}: {error}") from None
        try:
            self.client.connect(
                params.hostname, params.port, username=params.username,
                key_filename=list(params.key_filenames) or None,
                timeout=params.timeout, banner_timeout=params.timeout, auth_timeout=params.timeout,
                # with keys named, use just those (as ssh -i with IdentitiesOnly); else what ssh would try
                allow_agent=not params.key_filenames, look_for_keys=not params.key_filenames,
            )
        except Exception as error:  # paramiko raises many types; each becomes one readable reason
            self.client.close()
            raise SshError(self.host, describe_connect_error(error, params)) from None
        if params.keepalive:
            transport = self.client.get_transport()
            if transport is not None:
                transport.set_keepalive(int(params.keepalive))
        return self

    def run(self, command: str, on_line: Callable[[str], None] | None = None,
            timeout: float | None = None) -> RemoteResult:
        """Run `command` in the remote login shell; `on_line` sees each stdout line as it arrives."""
        import paramiko

        try:
            stdin, stdout, stderr = self.client.exec_command(command, timeout=timeout)
            stdin.close()
            # stderr is read by a thread so that neither stream can fill up and stall the other
            err_chunks: list[bytes] = []
            reader = threading.Thread(target=lambda: err_chunks.append(stderr.read()), daemon=True)
            reader.start()
            out_lines = []
            for line in stdout:
                line = line.rstrip("\n")
                out_lines.append(line)
                if on_line is not None:
                    on_line(line)
            reader.join(timeout)
            status = stdout.channel.recv_exit_status()
        except (paramiko.SSHException, OSError) as error:
            raise SshError(self.host, f"the SSH session broke off: {error or type(error).__name__}") from None
        return RemoteResult(status, "\n".join(out_lines), b"".join(err_chunks).decode("utf-8", "replace"))

    def close(self) -> None:
        self.client.close()

    def __enter__(self) -> RemoteShell:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_shell(host: str, options: SshOptions) -> RemoteShell:
    """A connected `RemoteShell` to `host`, or an `SshError` saying why not."""
    return RemoteShell(host, connect_parameters(host, options, load_ssh_config(options.config_file))).connect()
