"""Process entry points of the daemons: `standalonesession` (a JobManager) and `taskexecutor` (a
TaskManager). Each takes `--configDir DIR`, `-D key=value` overrides and, for the JobManager, an optional
`--host` and `--webui-port` (as Flink's `jobmanager.sh start <host> <webui-port>` passes them).

A bad config or a port in use stops the daemon at once with a clear message (exit 1). SIGTERM and SIGINT
stop it gracefully: a JobManager leaves the election at once, closing its ZooKeeper session."""

from __future__ import annotations

import argparse
import asyncio
import fcntl
import getpass
import logging
import os
import signal
import socket
import sys
from pathlib import Path
from typing import Any

from ha_flink.config import (
    ConfigurationError, DeploymentOptions, HighAvailabilityOptions, JobManagerOptions, RestOptions,
    TaskManagerOptions, WebOptions, install_dir, load_configuration,
)
from ha_flink.config.loader import split_dynamic_properties
from ha_flink.config.sensitive import masked
from ha_flink.deploy import memory_limit
from ha_flink.deploy.memory_limit import MemoryLimit
from ha_flink.deploy import guardian
from ha_flink.ha.services import ZooKeeperHaServices, create_ha_services
from ha_flink.rest.server import start_rest_endpoint
from ha_flink.runtime.jobmanager.jobmanager import JobManager
from ha_flink.runtime.metrics.prometheus import PrometheusReporter
from ha_flink.runtime.taskmanager.task_executor import TaskExecutor
from ha_flink.security.tls import internal_tls, rest_server_tls, unsupported_keys

logger = logging.getLogger("ha_flink.entrypoint")


def parse_args(daemon: str, argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
    overrides, rest = split_dynamic_properties(argv)
    parser = argparse.ArgumentParser(prog=daemon)
    parser.add_argument("--configDir", "-c", dest="conf_dir", default=None, help="the conf dir (default: conf/)")
    parser.add_argument("--host", default=None, help="host name this daemon advertises")
    parser.add_argument("--webui-port", type=int, default=None, help="REST/web UI port of a JobManager")
    parser.add_argument("--guardian", action="store_true",
                        help="(ours) a JobManager: run it in a child guarded by this process, which closes its "
                             "ZooKeeper session the moment it dies (deploy/guardian.py); flink-daemon.sh passes it")
    parser.add_argument("positional", nargs="*", help="jobmanager.sh style: [host] [webui-port]")
    args = parser.parse_args(rest)
    if args.positional:
        args.host = args.host or args.positional[0]
        if len(args.positional) > 1:
            args.webui_port = args.webui_port or int(args.positional[1])
    return args, overrides


async def _run(component: Any, limit: MemoryLimit | None) -> bool:
    """Runs the daemon until SIGTERM/SIGINT (or its memory limit is exceeded: returns True)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    reporter = PrometheusReporter(
        component.config,
        # scraped on the reporter's HTTP thread; read on the event loop, where the daemon's state changes
        lambda: asyncio.run_coroutine_threadsafe(_on_loop(component.metric_samples), loop).result(10),
        component.bind_host)
    # first: with no free port the daemon stops before it joins the election or takes tasks
    await loop.run_in_executor(None, reporter.start)
    await component.start()
    rest = getattr(component, "rest_address", "")
    print(f"READY {component.address}{' ' + rest if rest else ''}", flush=True)
    watcher = asyncio.create_task(memory_limit.watch(limit, stop)) if limit is not None else None
    await stop.wait()
    exceeded = watcher is not None and await watcher
    logger.info("Shutting down")
    reporter.stop()
    await component.stop()
    return exceeded


async def _on_loop(function: Any) -> Any:
    return function()


LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s - %(message)s"


def open_log_file(log_dir: Path, daemon: str, host: str) -> tuple[Path, Any]:
    """`flink-<user>-<daemon>-<n>-<host>.log` with the lowest n no running daemon holds (an flock on the
    file marks it taken for the daemon's life), as Flink's scripts number daemon instances."""
    log_dir.mkdir(parents=True, exist_ok=True)
    user = getpass.getuser()
    for n in range(1000):
        path = log_dir / f"flink-{user}-{daemon}-{n}-{host}.log"
        handle = open(path, "a", encoding="utf-8")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return path, handle
        except OSError:
            handle.close()
    raise OSError(f"no free log file name in {log_dir}")


def setup_logging(config: Any, daemon: str) -> Path:
    log_dir = Path(config.get(DeploymentOptions.LOG_DIR) or install_dir() / "log")
    path, handle = open_log_file(log_dir, daemon, socket.gethostname())
    file_handler = logging.StreamHandler(handle)
    file_handler.setFormatter(logging.Formatter(LOG_FORMAT))
    logging.getLogger().addHandler(file_handler)
    return path


def check_security(config: Any, daemon: str) -> None:
    """Reads every keystore and truststore the config asks for before the daemon contacts anyone: one that
    cannot be used stops the start with its key and file named (never a fallback to plaintext)."""
    internal = internal_tls(config)
    rest = rest_server_tls(config) if daemon == "standalonesession" else None  # (a TaskManager serves no REST)
    for line in unsupported_keys(config):
        logger.warning("%s (the key is not supported and has no effect)", line)
    if daemon == "standalonesession" and config.get(WebOptions.SUBMIT_ENABLE):
        logger.warning("web.submit.enable: true is not supported: the dashboard has no program upload (a Java "
                       "jar upload); submit Python programs with bin/flink run -py")
    if internal is not None or rest is not None:
        logger.info("TLS: internal RPC %s%s", "mutual" if internal else "plaintext",
                    "" if daemon != "standalonesession" else
                    "; REST plaintext" if rest is None else "; REST mutual" if rest.mutual else
                    "; REST server-authenticated")


def main(daemon: str, argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT, stream=sys.stderr)
    args, overrides = parse_args(daemon, sys.argv[1:] if argv is None else argv)
    try:
        config = load_configuration(args.conf_dir, overrides)
        log_path = setup_logging(config, daemon)
        logger.info("Starting %s (pid %d); logging to %s", daemon, os.getpid(), log_path)
        for key, value in sorted(config.to_dict().items()):  # as Flink logs them, secrets hidden
            logger.info("Loading configuration property: %s, %s", key, masked(key, value))
        if args.webui_port is not None:
            config.set(RestOptions.PORT, args.webui_port, source="--webui-port")
        check_security(config, daemon)
    except (ConfigurationError, ConnectionError, OSError) as error:
        print(f"{daemon}: cannot start: {error}", file=sys.stderr)
        return 1
    if args.guardian and daemon == "standalonesession" \
            and config.get(HighAvailabilityOptions.HA_MODE) == "zookeeper":
        # (forked before any thread starts: kazoo's, gRPC's and the loop's are the child's alone)
        return guardian.run_guarded(config, lambda session_fd: _serve(daemon, args, config, session_fd))
    return _serve(daemon, args, config, None)


def _serve(daemon: str, args: argparse.Namespace, config: Any, session_fd: int | None) -> int:
    """Run the daemon; `session_fd`: where a guarded JobManager hands its ZooKeeper sessions."""
    if session_fd is not None:  # (its own pid: the process that acts, which the guardian's log line names)
        logger.info("JobManager process pid %d, guarded by pid %d", os.getpid(), os.getppid())
    try:
        ha = create_ha_services(config)
    except (ConfigurationError, ConnectionError, OSError) as error:
        print(f"{daemon}: cannot start: {error}", file=sys.stderr)
        return 1
    if session_fd is not None and isinstance(ha, ZooKeeperHaServices):
        guardian.publish_sessions(ha.client, session_fd)
    try:
        if daemon == "standalonesession":
            zookeeper = config.get(HighAvailabilityOptions.HA_MODE) == "zookeeper"
            port = config.get(HighAvailabilityOptions.HA_JOB_MANAGER_PORT) if zookeeper \
                else config.get(JobManagerOptions.RPC_PORT)
            host = args.host or config.get(JobManagerOptions.RPC_ADDRESS)
            bind_host = config.get(JobManagerOptions.BIND_HOST) or "0.0.0.0"
            component: JobManager | TaskExecutor = JobManager(config, ha, host, port, bind_host=bind_host,
                                                              rest=start_rest_endpoint)
        elif daemon == "taskexecutor":
            component = TaskExecutor(config, ha, args.host, config.get(TaskManagerOptions.RPC_PORT),
                                     bind_host=config.get(TaskManagerOptions.BIND_HOST) or "0.0.0.0",
                                     data_port=config.get(TaskManagerOptions.DATA_PORT))
        else:
            print(f"unknown daemon {daemon!r}; known: standalonesession, taskexecutor", file=sys.stderr)
            return 2
        if asyncio.run(_run(component, memory_limit.memory_limit(config, daemon))):
            print(f"{daemon}: stopped: over its memory limit (see its log)", file=sys.stderr)
            return 1
    except (ConfigurationError, OSError) as error:
        print(f"{daemon}: cannot start: {error}", file=sys.stderr)
        return 1
    finally:
        ha.close()
    return 0
