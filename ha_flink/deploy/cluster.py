"""`start-cluster.sh`, `stop-cluster.sh` and a status check for a whole cluster, as Flink's scripts do it:

- start: with `high-availability: zookeeper`, `Starting HA cluster with N masters.` and a JobManager
  (`standalonesession`) for every line of conf/masters with its host and web UI port; without HA,
  `Starting cluster.` and one JobManager here. Then a TaskManager (`taskexecutor`) for every line of
  conf/slaves. This machine's daemons start directly, other hosts' over SSH, all hosts in parallel.
- stop: the TaskManagers of conf/slaves (one per line), then every JobManager of the conf/masters hosts.
- status: which of the daemons the files ask for run (exit 0: all, 1: none, 2: some).

Each ends with a summary of what runs (or failed) where; the exit status is non-zero when anything failed.
`plan_start` / `plan_stop` are pure: they turn the files into per-host batches."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ha_flink.config import (
    ConfigurationError, DeploymentOptions, HighAvailabilityOptions, MasterAddress, WorkerHost, read_masters,
    read_slaves,
)
from ha_flink.deploy.flink_daemon import DaemonError, DaemonOperation, Emit, HostContext
from ha_flink.deploy.hosts import is_local_host
from ha_flink.deploy.runner import HostBatch, HostReport, Runner, group_by_host
from ha_flink.deploy.ssh import SshOptionsError, parse_ssh_opts

JOBMANAGER = "standalonesession"
TASKMANAGER = "taskexecutor"


def master_label(master: MasterAddress) -> str:
    return master.host if master.webui_port is None else f"{master.host}:{master.webui_port}"


def jobmanager_args(conf_dir: Path, master: MasterAddress | None) -> tuple[str, ...]:
    """What Flink's `jobmanager.sh start <host> <webui-port>` passes to the JobManager."""
    args: tuple[str, ...] = ("--configDir", str(conf_dir))
    if master is not None:
        args += ("--host", master.host.strip("[]"))
        if master.webui_port is not None:
            args += ("--webui-port", str(master.webui_port))
    return args


def plan_start(ha: bool, masters: list[MasterAddress], workers: list[WorkerHost], conf_dir: Path,
               is_local: Callable[[str], bool] = is_local_host) -> list[HostBatch]:
    items: list[tuple[str, DaemonOperation]] = []
    if ha:
        for master in masters:
            items.append((master.host, DaemonOperation("start", JOBMANAGER, jobmanager_args(conf_dir, master),
                                                       label=master_label(master))))
    else:
        items.append(("localhost", DaemonOperation("start", JOBMANAGER, jobmanager_args(conf_dir, None),
                                                   label="localhost")))
    for worker in workers:
        items.append((worker.host, DaemonOperation("start", TASKMANAGER, ("--configDir", str(conf_dir)),
                                                   label=worker.host)))
    return group_by_host(items, is_local)


def plan_stop(ha: bool, masters: list[MasterAddress], workers: list[WorkerHost], conf_dir: Path,
              is_local: Callable[[str], bool] = is_local_host) -> list[list[HostBatch]]:
    """Two phases, as Flink's stop-cluster.sh: TaskManagers (one per conf/slaves line), then JobManagers
    (all instances on every conf/masters host, once per host)."""
    counts: dict[str, tuple[str, int]] = {}
    for worker in workers:
        host, count = counts.get(worker.host.lower(), (worker.host, 0))
        counts[worker.host.lower()] = (host, count + 1)
    task_managers = [(host, DaemonOperation("stop", TASKMANAGER, ("--configDir", str(conf_dir)), count, host))
                     for host, count in counts.values()]
    master_hosts = [m.host for m in masters] if ha else ["localhost"]
    job_managers: list[tuple[str, DaemonOperation]] = []
    seen: set[str] = set()
    for host in master_hosts:
        key = "" if is_local(host) else host.lower()
        if key not in seen:
            seen.add(key)
            job_managers.append((host, DaemonOperation("stop-all", JOBMANAGER, ("--configDir", str(conf_dir)),
                                                       label=host)))
    return [group_by_host(task_managers, is_local), group_by_host(job_managers, is_local)]


@dataclass
class ClusterFiles:
    ha: bool
    masters: list[MasterAddress]
    workers: list[WorkerHost]


def read_cluster_files(context: HostContext) -> ClusterFiles:
    ha = context.config.get(HighAvailabilityOptions.HA_MODE) == "zookeeper"
    masters = read_masters(context.conf_dir) if ha else []
    return ClusterFiles(ha, masters, read_slaves(context.conf_dir))


def _runner(context: HostContext) -> Runner:
    return Runner(context, parse_ssh_opts(context.config.get(DeploymentOptions.SSH_OPTS)))


def summarize(reports: list[HostReport], verb: str) -> tuple[list[str], int, int]:
    """Summary lines, how many operations succeeded and how many failed."""
    lines, good, bad = [], 0, 0
    for report in reports:
        if report.error is not None and not report.outcomes:
            for operation in report.batch.operations:
                bad += 1
                lines.append(f"  {operation.daemon} on {operation.label}: NOT {verb.upper()}: {report.error}")
            continue
        for outcome in report.outcomes:
            pids = ", ".join(map(str, outcome.pids))
            where = f"{outcome.daemon} on {outcome.label or outcome.host}"
            if outcome.ok:
                good += 1
                lines.append(f"  {where}: {outcome.detail}" + (f" (pid {pids})" if pids else ""))
            else:
                bad += 1
                lines.append(f"  {where}: FAILED: {outcome.detail}")
        if report.error is not None:
            bad += 1
            lines.append(f"  {report.batch.host}: FAILED: {report.error}")
    return lines, good, bad


def _load(conf_dir: Path, emit: Emit) -> tuple[HostContext, ClusterFiles, Runner] | None:
    """The conf dir's hosts, cluster files and runner; None after reporting what is wrong with them."""
    try:
        context = HostContext.load(conf_dir, emit)
        return context, read_cluster_files(context), _runner(context)
    except (ConfigurationError, SshOptionsError, DaemonError) as error:
        emit(f"[ERROR] {error}")
        return None


def start_cluster(conf_dir: Path, emit: Emit = print) -> int:
    loaded = _load(conf_dir, emit)
    if loaded is None:
        return 1
    context, files, runner = loaded
    emit(f"Starting HA cluster with {len(files.masters)} masters." if files.ha else "Starting cluster.")
    reports = runner.run(plan_start(files.ha, files.masters, files.workers, context.conf_dir))
    lines, good, bad = summarize(reports, "started")
    runner.emit("Summary:")
    for line in lines:
        runner.emit(line)
    if bad:
        runner.emit(f"{good} of {good + bad} daemons are running; {bad} did not start (reasons above). "
                    "bin/stop-cluster.sh stops the ones that run.")
        return 1
    runner.emit(f"All {good} daemons are running.")
    return 0


def stop_cluster(conf_dir: Path, emit: Emit = print) -> int:
    loaded = _load(conf_dir, emit)
    if loaded is None:
        return 1
    context, files, runner = loaded
    reports: list[HostReport] = []
    for phase in plan_stop(files.ha, files.masters, files.workers, context.conf_dir):
        reports += runner.run(phase)
    lines, good, bad = summarize(reports, "stopped")
    stopped = sum(len(o.pids) for r in reports for o in r.outcomes if o.ok)
    if bad:
        runner.emit("Summary:")
        for line in lines:
            runner.emit(line)
        runner.emit(f"Stopped {stopped} daemon(s); {bad} host(s) or daemon(s) could not be stopped (above).")
        return 1
    runner.emit(f"Stopped {stopped} daemon(s).")
    return 0


def cluster_status(conf_dir: Path, emit: Emit = print) -> int:
    """Which daemons of this conf dir run where: exit 0 when all that the files ask for run, 1 when none
    does, 2 when only some do (or a host cannot be asked)."""
    loaded = _load(conf_dir, emit)
    if loaded is None:
        return 2
    context, files, runner = loaded
    wanted = plan_start(files.ha, files.masters, files.workers, context.conf_dir)
    status_batches = []
    for batch in wanted:
        kinds: dict[str, int] = {}
        for operation in batch.operations:
            kinds[operation.daemon] = kinds.get(operation.daemon, 0) + 1
        operations = [DaemonOperation("status", daemon, ("--configDir", str(context.conf_dir)), count, batch.host)
                      for daemon, count in kinds.items()]
        status_batches.append(HostBatch(batch.host, batch.local, operations))
    running = missing = 0
    for report in runner.run(status_batches):
        if report.error is not None:
            missing += len(report.batch.operations)
            runner.emit(f"  {report.batch.host}: cannot tell: {report.error}")
            continue
        for outcome, operation in zip(report.outcomes, report.batch.operations):
            have = min(len(outcome.pids), operation.count)
            running += have
            missing += operation.count - have
            pids = ", ".join(map(str, outcome.pids)) or "none"
            runner.emit(f"  {operation.daemon} on {report.batch.host}: {len(outcome.pids)} of {operation.count} "
                        f"running (pids: {pids})")
    if missing == 0:
        return 0
    return 1 if running == 0 else 2
