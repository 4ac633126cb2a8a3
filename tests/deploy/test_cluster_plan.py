"""From conf/masters and conf/slaves to per-host batches: what start-cluster.sh and stop-cluster.sh do
where, what goes over SSH, and how the summary reads."""

from __future__ import annotations

from pathlib import Path

from ha_flink.config.hosts import parse_masters, parse_slaves
from ha_flink.deploy.cluster import plan_start, plan_stop, summarize
from ha_flink.deploy.flink_daemon import (
    DaemonOperation, DaemonOutcome, decode_batch, decode_outcomes, encode_batch, encode_outcomes,
)
from ha_flink.deploy.runner import HostBatch, HostReport, remote_command

CONF = Path("/opt/flink/conf")
LOCAL = frozenset({"localhost", "127.0.0.1", "vm"})


def is_local(host: str) -> bool:
    return host.lower() in LOCAL


def test_ha_start_runs_a_jobmanager_per_master_line_then_a_taskmanager_per_slave_line() -> None:
    masters = parse_masters("localhost:8081\n127.0.0.1:8082\nnode-2:8081\nnode-3\n")
    workers = parse_slaves("localhost\nnode-2\nnode-2\n")
    batches = plan_start(True, masters, workers, CONF, is_local)
    assert [(b.host, b.local) for b in batches] == [("localhost", True), ("node-2", False), ("node-3", False)]
    local, node2, node3 = batches
    assert [(op.daemon, op.args, op.label) for op in local.operations] == [
        ("standalonesession", ("--configDir", str(CONF), "--host", "localhost", "--webui-port", "8081"),
         "localhost:8081"),
        ("standalonesession", ("--configDir", str(CONF), "--host", "127.0.0.1", "--webui-port", "8082"),
         "127.0.0.1:8082"),
        ("taskexecutor", ("--configDir", str(CONF)), "localhost"),
    ]
    assert [op.daemon for op in node2.operations] == ["standalonesession", "taskexecutor", "taskexecutor"]
    # a master line without a port leaves rest.port to the config
    assert node3.operations[0].args == ("--configDir", str(CONF), "--host", "node-3")


def test_without_ha_one_jobmanager_here_and_the_masters_file_unused() -> None:
    batches = plan_start(False, [], parse_slaves("node-1\n"), CONF, is_local)
    assert [(b.host, [op.daemon for op in b.operations]) for b in batches] == [
        ("localhost", ["standalonesession"]), ("node-1", ["taskexecutor"])]
    assert batches[0].operations[0].args == ("--configDir", str(CONF))


def test_stop_takes_one_taskmanager_per_line_then_all_jobmanagers_once_per_host() -> None:
    masters = parse_masters("localhost:8081\n127.0.0.1:8082\nnode-2:8081\n")
    workers = parse_slaves("localhost\nlocalhost\nnode-2\n")
    task_managers, job_managers = plan_stop(True, masters, workers, CONF, is_local)
    assert [(b.host, [(op.action, op.daemon, op.count) for op in b.operations]) for b in task_managers] == [
        ("localhost", [("stop", "taskexecutor", 2)]), ("node-2", [("stop", "taskexecutor", 1)])]
    assert [(b.host, [(op.action, op.daemon) for op in b.operations]) for b in job_managers] == [
        ("localhost", [("stop-all", "standalonesession")]), ("node-2", [("stop-all", "standalonesession")])]


def test_the_remote_command_checks_the_installation_and_passes_the_conf_dir() -> None:
    operations = [DaemonOperation("start", "taskexecutor", ("--configDir", "/my conf"), label="node-1")]
    command = remote_command(Path("/opt/flink"), Path("/my conf"), operations)
    assert command.startswith("if [ ! -x /opt/flink/bin/flink-daemon.sh ]; then echo 'ha-flink is not installed at "
                              "/opt/flink on this host")
    assert "if [ ! -d '/my conf' ]" in command
    assert command.endswith(f"FLINK_CONF_DIR='/my conf' exec /opt/flink/bin/flink-daemon.sh --batch "
                            f"{encode_batch(operations)}")
    assert decode_batch(encode_batch(operations)) == operations


def test_outcomes_travel_back_as_one_line() -> None:
    outcomes = [DaemonOutcome("start", "taskexecutor", "node-1", "node-1.example", True, [42], "running",
                              "/log/x.out", "node-1:6122", None)]
    line = encode_outcomes(outcomes)
    assert "\n" not in line and decode_outcomes(line) == outcomes


def test_summary_names_every_daemon_and_why_one_did_not_start() -> None:
    start = DaemonOperation("start", "taskexecutor", label="node-4")
    reports = [
        HostReport(HostBatch("localhost", True), [
            DaemonOutcome("start", "standalonesession", "localhost:8081", "vm", True, [11], "running, REST http://x"),
            DaemonOutcome("start", "standalonesession", "localhost:8082", "vm", False, [],
                          "exited at start with status 1: standalonesession: cannot start: port in use")]),
        HostReport(HostBatch("node-4", False, [start]), error="cannot reach node-4 over SSH: connection refused"),
    ]
    lines, good, bad = summarize(reports, "started")
    assert (good, bad) == (1, 2)
    assert lines == [
        "  standalonesession on localhost:8081: running, REST http://x (pid 11)",
        "  standalonesession on localhost:8082: FAILED: exited at start with status 1: standalonesession: cannot "
        "start: port in use",
        "  taskexecutor on node-4: NOT STARTED: cannot reach node-4 over SSH: connection refused",
    ]
