"""The command lines of the `bin/` scripts: each script runs `python -m ha_flink.deploy.scripts <name> ...`.
This module parses arguments, prints usage as Flink's scripts do and turns results into exit statuses; the
work is done by `cluster`, `flink_daemon` and `zookeeper_quorum`.

The conf dir is `$FLINK_CONF_DIR`, else `$FLINK_HOME/conf`, else the installation's `conf/`."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Callable

from ha_flink.config import default_conf_dir
from ha_flink.deploy import cluster, zookeeper_quorum
from ha_flink.deploy.flink_daemon import (
    DAEMONS, DaemonError, DaemonOperation, HostContext, context_for, decode_batch, encode_outcomes, run_batch,
    start_foreground,
)

JOBMANAGER_USAGE = "Usage: jobmanager.sh ((start|start-foreground) [host] [webui-port])|stop|stop-all"
TASKMANAGER_USAGE = "Usage: taskmanager.sh (start|start-foreground|stop|stop-all)"
DAEMON_USAGE = (f"Usage: flink-daemon.sh (start|start-foreground|stop|stop-all|status) ({'|'.join(DAEMONS)}) "
                "[args]")


def conf_dir() -> Path:
    return default_conf_dir().absolute()


def _err(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _out(line: str) -> None:
    print(line, flush=True)


def run_daemon_action(action: str, daemon: str, args: tuple[str, ...]) -> int:
    """One operation on this host, as `flink-daemon.sh <action> <daemon> [args]`."""
    try:
        context = context_for(args, _out)
        if action == "start-foreground":
            start_foreground(context, daemon, args)  # returns only by failing
            return 1
        outcomes = run_batch(context, [DaemonOperation(action, daemon, args, label=daemon)])
    except (DaemonError, OSError) as error:
        _err(f"[ERROR] {error}")
        return 1
    if action == "status":
        [outcome] = outcomes
        pids = ", ".join(map(str, outcome.pids))
        _out(f"{len(outcome.pids)} instance(s) of {daemon} running on {outcome.host}" + (f": {pids}" if pids else "."))
        return 0 if outcome.pids else 3
    return 0 if all(outcome.ok for outcome in outcomes) else 1


def flink_daemon(argv: list[str]) -> int:
    if argv[:1] == ["--batch"] and len(argv) == 2:
        # internal: the cluster scripts' per-host batch, run over SSH; outcomes come back as one JSON line
        try:
            context = HostContext.load(conf_dir(), _out)
            outcomes = run_batch(context, decode_batch(argv[1]))
        except (DaemonError, OSError) as error:
            _err(f"[ERROR] {error}")
            return 2
        _out(encode_outcomes(outcomes))
        return 0
    if len(argv) < 2 or argv[0] not in ("start", "start-foreground", "stop", "stop-all", "status") \
            or argv[1] not in DAEMONS:
        _err(DAEMON_USAGE)
        return 1
    return run_daemon_action(argv[0], argv[1], tuple(argv[2:]))


def jobmanager(argv: list[str]) -> int:
    """`jobmanager.sh start [host] [webui-port]`: a standalonesession with Flink's arguments."""
    if not argv or argv[0] not in ("start", "start-foreground", "stop", "stop-all"):
        _err(JOBMANAGER_USAGE)
        return 1
    action, rest = argv[0], argv[1:]
    args: tuple[str, ...] = ("--configDir", str(conf_dir()))
    if action.startswith("start"):
        if len(rest) > 2:
            _err(JOBMANAGER_USAGE)
            return 1
        if rest:
            args += ("--host", rest[0])
        if len(rest) > 1:
            if not rest[1].isdigit():
                _err(f"jobmanager.sh: the web UI port {rest[1]!r} is not a number\n{JOBMANAGER_USAGE}")
                return 1
            args += ("--webui-port", rest[1])
    return run_daemon_action(action, "standalonesession", args)


def taskmanager(argv: list[str]) -> int:
    if not argv or argv[0] not in ("start", "start-foreground", "stop", "stop-all"):
        _err(TASKMANAGER_USAGE)
        return 1
    extra = tuple(argv[1:]) if argv[0].startswith("start") else ()
    return run_daemon_action(argv[0], "taskexecutor", ("--configDir", str(conf_dir()), *extra))


def _whole_cluster(name: str, run: Callable[[Path, Callable[[str], None]], int],
                   failure: int = 1) -> Callable[[list[str]], int]:
    """A script that takes no arguments: its hosts come from the conf dir's files."""
    def command(argv: list[str]) -> int:
        if argv:
            _err(f"Usage: {name} (takes no arguments; the hosts come from the files in {conf_dir()})")
            return failure
        return run(conf_dir(), _out)

    return command


COMMANDS: dict[str, Callable[[list[str]], int]] = {
    "start-cluster.sh": _whole_cluster("start-cluster.sh", cluster.start_cluster),
    "stop-cluster.sh": _whole_cluster("stop-cluster.sh", cluster.stop_cluster),
    "cluster-status": _whole_cluster("cluster-status", cluster.cluster_status, failure=2),
    "start-zookeeper-quorum.sh": _whole_cluster("start-zookeeper-quorum.sh", zookeeper_quorum.start_quorum),
    "stop-zookeeper-quorum.sh": _whole_cluster("stop-zookeeper-quorum.sh", zookeeper_quorum.stop_quorum),
    "jobmanager.sh": jobmanager,
    "taskmanager.sh": taskmanager,
    "flink-daemon.sh": flink_daemon,
}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] not in COMMANDS:
        _err(f"usage: python -m ha_flink.deploy.scripts ({'|'.join(COMMANDS)}) [args]")
        return 2
    return COMMANDS[argv[0]](argv[1:])


if __name__ == "__main__":
    sys.exit(main())
