"""Running a ZooKeeper server from the Debian `zookeeper` package's jars with `java ... QuorumPeerMain`,
and asking a running one what it is doing through the four-letter-word commands (`srvr`, `ruok`)."""

from __future__ import annotations

import os
import shutil
import socket
from pathlib import Path

QUORUM_PEER_MAIN = "org.apache.zookeeper.server.quorum.QuorumPeerMain"
# Debian's zookeeper.jar names its dependencies in its manifest's Class-Path; slf4j-simple makes the
# server log to stderr (without a binding it logs nothing at all).
# Debian's zookeeper.jar names netty-buffer, -common, -handler and -transport in its Class-Path but not the
# jars Netty's server pipeline also needs: with `serverCnxnFactory=...NettyServerCnxnFactory` (a TLS client
# port, `secureClientPort`) every connection failed with NoClassDefFoundError: io/netty/handler/codec/
# ByteToMessageDecoder. So they are on the classpath of every server (those installed).
DEBIAN_JARS = ("/usr/share/java/zookeeper.jar", "/usr/share/java/slf4j-simple.jar",
               "/usr/share/java/netty-codec.jar", "/usr/share/java/netty-resolver.jar",
               "/usr/share/java/netty-transport-native-unix-common.jar")
JVM_OPTIONS = ("-Xms32m", "-Xmx256m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
               "-Dorg.slf4j.simpleLogger.showDateTime=true", "-Dzookeeper.admin.enableServer=false")


class ZooKeeperNotInstalledError(RuntimeError):
    pass


def zookeeper_classpath() -> str:
    """`$ZOOKEEPER_CLASSPATH`, else the Debian package's jars."""
    if os.environ.get("ZOOKEEPER_CLASSPATH"):
        return os.environ["ZOOKEEPER_CLASSPATH"]
    if not Path(DEBIAN_JARS[0]).is_file():
        raise ZooKeeperNotInstalledError(
            f"ZooKeeper is not installed: {DEBIAN_JARS[0]} is missing. Install the Debian package "
            "`zookeeper` (`make install` does) or set ZOOKEEPER_CLASSPATH to the server's jars."
        )
    return ":".join(jar for jar in DEBIAN_JARS if Path(jar).is_file())


def java_executable() -> str:
    java = os.path.join(os.environ["JAVA_HOME"], "bin", "java") if os.environ.get("JAVA_HOME") else shutil.which("java")
    if not java or not os.path.exists(java):
        raise ZooKeeperNotInstalledError(
            "no Java runtime found (java not on PATH, JAVA_HOME unset): install default-jre-headless "
            "(`make install` does)"
        )
    return java


def zookeeper_server_command(config_file: str | os.PathLike[str], jvm_options: tuple[str, ...] = ()) -> list[str]:
    return [java_executable(), *JVM_OPTIONS, *jvm_options, "-cp", zookeeper_classpath(), QUORUM_PEER_MAIN,
            str(config_file)]


def four_letter_word(host: str, port: int, command: str, timeout: float = 2.0) -> str:
    """Send a four-letter-word command and return the whole answer ('' if the server closed at once)."""
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.sendall(command.encode("ascii"))
        chunks = []
        while True:
            chunk = sock.recv(4096)
            if not chunk:
                break
            chunks.append(chunk)
    return b"".join(chunks).decode("utf-8", "replace")


def server_mode(host: str, port: int) -> str | None:
    """'standalone', 'leader' or 'follower' for a serving server; None when it does not answer or does
    not serve (an ensemble member without quorum answers 'This ZooKeeper instance is not currently
    serving requests')."""
    try:
        answer = four_letter_word(host, port, "srvr")
    except OSError:
        return None
    for line in answer.splitlines():
        if line.startswith("Mode:"):
            return line.split(":", 1)[1].strip()
    return None
