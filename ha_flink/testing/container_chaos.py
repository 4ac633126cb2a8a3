"""Chaos across containers: the HA cluster of deploy/podman/cluster.sh (3 ZooKeeper servers, 3 JobManagers,
2 TaskManagers, each a container of the ha-flink image on a podman network of its own), the chaos suite's
exactly-once job (integration/chaos_job.py) submitted from a client container, and faults done to whole
containers, where a process-level run can only signal processes:

- the leader's container killed (`podman kill`: the machine is gone, with its guardian: the session lapses);
- the leader's container paused (`podman pause`: the cgroup freezer stops every process in it);
- the leader's container cut off (`podman network disconnect`: no packet in or out, no connection closes);
- a TaskManager's container killed, with tasks on it;
- a ZooKeeper server's container killed (a follower, the one the leader talks to: its clients move to
  another server, and nothing may restart or be re-elected).

Each is followed by a wait for the job to checkpoint again, then the killed or paused container comes back
(`podman start`, `unpause`, `network connect`: a restarted container has another IP; everything finds it by
name). At the end `flink stop --savepointPath` and the chaos suite's checks (ha_flink/testing/chaos/checker):
every number committed exactly once, keyed counts exact, checkpoint ids increasing, no act of a stale leader,
and the failover figures from the daemons' logs, which every container writes to the shared data folder.

`ContainerCluster.down` removes every container and the network the cluster had, whatever happened."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from ha_flink.deploy.zookeeper import server_mode
from ha_flink.testing.chaos.checker import (
    RUNNING, FailoverTiming, OutputCheck, check_output, checkpoint_order_problems, completed_checkpoints,
    failover_timings, leadership_problems,
)
from ha_flink.testing.chaos.logs import COMPLETED, RESTORES, Lifetime, first_after, parse_log
from ha_flink.testing.containers import IMAGE, REPO, Podman
from ha_flink.testing.processes import wait_for

CLUSTER_SCRIPT = REPO / "deploy" / "podman" / "cluster.sh"
JOB = REPO / "integration" / "chaos_job.py"
JOB_START, JOB_KEYS = 1, 17  # as in integration/chaos_job.py
FLINK_UID = 9999  # the image's user `flink`
TEST_CLUSTER_PREFIX = "hf-"  # the names of the clusters tests start (and their label ha-flink.cluster)

LEADER_KILL = "leader-container-kill"
LEADER_PAUSE = "leader-container-pause"
LEADER_DISCONNECT = "leader-network-disconnect"
TASKMANAGER_KILL = "taskmanager-container-kill"
ZOOKEEPER_KILL = "zookeeper-container-kill"
FAULTS = (LEADER_KILL, LEADER_PAUSE, LEADER_DISCONNECT, TASKMANAGER_KILL, ZOOKEEPER_KILL)
_LOG_NAME = re.compile(r"^flink-[^-]+-(\w+)-\d+-(.+)\.log$")
_GRANTED = re.compile(r"^Granted leadership with session id ")

# As the process-level chaos cluster (ha_flink/testing/chaos/harness.py ChaosCluster), in containers.
CHAOS_SETTINGS = {
    "high-availability.zookeeper.client.session-timeout": "3 s",
    "high-availability.zookeeper.client.tolerate-suspended-connections": "true",
    "restart-strategy.type": "fixed-delay",
    "restart-strategy.fixed-delay.attempts": "1000000",
    "restart-strategy.fixed-delay.delay": "100 ms",
    "execution.checkpointing.tolerable-failed-checkpoints": "5",
    "heartbeat.interval": "500 ms",
    "heartbeat.timeout": "5 s",
    "env.log.dir": "/opt/flink/data/log",
}
# ZooKeeper's ticks as the process-level chaos cluster's (200 ms), and a 1 s connect timeout between peers
# (`cnxTimeout`, ZooKeeper's default 5 s): a peer whose machine is gone does not refuse a connection, it
# never answers, and the ensemble's re-election after losing its leader waits that long per attempt.
CHAOS_ZOO_CFG = "tickTime=200 initLimit=20 syncLimit=10 cnxTimeout=1000"


class ContainerChaosFailure(AssertionError):
    """The cluster did not do what a fault should lead to."""


class ContainerCluster:
    """One cluster of deploy/podman/cluster.sh with a name of its own, its data (HA storage, checkpoints,
    logs, the job's output) in `directory/data` on this host."""

    def __init__(self, directory: Path, podman: Podman, image: str = f"{IMAGE}:latest",
                 settings: dict[str, str] | None = None, jobmanagers: int = 3, taskmanagers: int = 2,
                 zookeepers: int = 3, zoo_cfg: str = CHAOS_ZOO_CFG) -> None:
        self.zoo_cfg = zoo_cfg
        self.name = f"{TEST_CLUSTER_PREFIX}{uuid.uuid4().hex[:8]}"
        self.podman = podman
        self.image = image
        self.data = directory / "data"
        self.data.mkdir(parents=True, exist_ok=True)
        (self.data / "log").mkdir(exist_ok=True)
        for path in (self.data, self.data / "log"):  # written by the image's user from every container
            os.chown(path, FLINK_UID, FLINK_UID)
        self.settings = {**CHAOS_SETTINGS, **(settings or {})}
        self.jobmanagers = [f"{self.name}-jm-{i}" for i in range(1, jobmanagers + 1)]
        self.taskmanagers = [f"{self.name}-tm-{i}" for i in range(1, taskmanagers + 1)]
        self.zookeepers = [f"{self.name}-zk-{i}" for i in range(1, zookeepers + 1)]

    @property
    def network(self) -> str:
        return self.name

    def env(self, client_mount: str | None = None) -> dict[str, str]:
        env = {**self.podman.env, "HA_FLINK_CLUSTER": self.name, "HA_FLINK_IMAGE": self.image,
               "HA_FLINK_DATA": str(self.data), "HA_FLINK_REST_PORT": "none",
               "HA_FLINK_JOBMANAGERS": str(len(self.jobmanagers)), "HA_FLINK_TASKMANAGERS": str(len(self.taskmanagers)),
               "HA_FLINK_ZOOKEEPERS": str(len(self.zookeepers)), "HA_FLINK_ZOO_CFG": self.zoo_cfg,
               "HA_FLINK_PROPERTIES": "".join(f"{key}: {value}\n" for key, value in self.settings.items())}
        if client_mount:
            env["HA_FLINK_CLIENT_MOUNT"] = client_mount
        return env

    def script(self, *args: str, timeout: float = 300, client_mount: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(CLUSTER_SCRIPT), *args], env=self.env(client_mount), capture_output=True,
                              text=True, timeout=timeout, stdin=subprocess.DEVNULL)

    def up(self) -> None:
        done = self.script("up")
        if done.returncode != 0:
            raise ContainerChaosFailure(f"cluster.sh up exited with {done.returncode}:\n{done.stdout}{done.stderr}")

    def down(self) -> None:
        self.script("down", timeout=180)

    def flink(self, *args: str, job_dir: Path | None = None, timeout: float = 180) -> subprocess.CompletedProcess[str]:
        """The flink CLI in a client container (the job's folder mounted at /opt/flink/jobs)."""
        mount = f"{job_dir}:/opt/flink/jobs:ro" if job_dir else None
        return self.script("flink", *args, client_mount=mount, timeout=timeout)

    def containers(self) -> list[str]:
        done = self.podman.run("ps", "-a", "--filter", f"label=ha-flink.cluster={self.name}", "--format",
                               "{{.Names}}", check=False)
        return done.stdout.split()

    # -- what the cluster says ---------------------------------------------------------------------------

    def rest(self, container: str, path: str, timeout: float = 2.0) -> Any:
        """GET a JobManager container's REST path at its address on the network; None if it does not answer."""
        ip = self.podman.ip(container, self.network)
        if ip is None:
            return None
        try:
            with urllib.request.urlopen(f"http://{ip}:8081{path}", timeout=timeout) as answer:
                return json.loads(answer.read())
        except (OSError, ValueError):
            return None

    def lifetimes(self, daemon: str = "standalonesession") -> list[Lifetime]:
        found = []
        for path in sorted((self.data / "log").glob(f"flink-*-{daemon}-*.log")):
            found += parse_log(path.read_text(errors="replace"), path.name)
        return found

    @staticmethod
    def container_of(lifetime: Lifetime) -> str:
        match = _LOG_NAME.match(lifetime.log)
        if match is None:
            raise ValueError(f"not a daemon log name: {lifetime.log}")
        return match.group(2)

    def leader(self) -> tuple[Lifetime, str]:
        """The running JobManager container holding the latest-granted leadership it has not given up."""
        def find() -> tuple[Lifetime, str] | None:
            best: tuple[float, Lifetime] | None = None
            lifetimes = self.lifetimes()
            # (the last lifetime of a container's log is the one that may run)
            current = {lifetime.log: lifetime for lifetime in lifetimes}
            for lifetime in lifetimes:
                sessions = lifetime.sessions()
                if sessions and sessions[-1].revoked is None and current[lifetime.log] is lifetime and \
                        self.podman.state(self.container_of(lifetime)) == "running":
                    if best is None or sessions[-1].granted > best[0]:
                        best = (sessions[-1].granted, lifetime)
            return (best[1], self.container_of(best[1])) if best else None

        return wait_for(find, 60, 0.1, "a leading JobManager")

    def busy_taskmanagers(self) -> list[str]:
        """The TaskManager containers that run tasks, as the REST API tells."""
        for jobmanager in self.jobmanagers:
            answer = self.rest(jobmanager, "/taskmanagers")
            if isinstance(answer, dict):
                return [tm["path"].rsplit(":", 1)[0] for tm in answer.get("taskmanagers", [])
                        if tm["freeSlots"] < tm["slotsNumber"]]
        return []

    def zookeeper_modes(self) -> dict[str, str | None]:
        """Each ZooKeeper container's mode (leader, follower; None: not serving), asked at its address."""
        modes: dict[str, str | None] = {}
        for container in self.zookeepers:
            ip = self.podman.ip(container, self.network)
            modes[container] = server_mode(ip, 2181) if ip else None
        return modes

    def job_result(self, job_id: str) -> dict[str, Any] | None:
        for path in (self.data / "ha" / "job-result-store").rglob(f"{job_id}.json"):
            return json.loads(path.read_text())
        return None


@dataclass
class ContainerChaosReport:
    job_id: str = ""
    timings: list[FailoverTiming] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    output: OutputCheck | None = None
    checkpoints: int = 0
    said: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems and self.output is not None and self.output.ok


class ContainerChaosRun:
    """The job, the faults (in order, `rounds` times), the final checks."""

    def __init__(self, cluster: ContainerCluster, faults: tuple[str, ...] = FAULTS, rounds: int = 1,
                 rate: float = 500.0, parallelism: int = 2, say: Callable[[str], None] = print) -> None:
        self.cluster = cluster
        self.faults = [fault for _ in range(rounds) for fault in faults]
        self.rate = rate
        self.parallelism = parallelism
        self.report = ContainerChaosReport()
        self._say = say
        self.job_id = ""

    def say(self, line: str) -> None:
        self.report.said.append(line)
        self._say(line)

    def _problem(self, text: str) -> None:
        self.say(f"PROBLEM: {text}")
        self.report.problems.append(text)

    # -- helpers -----------------------------------------------------------------------------------------

    def _wait_checkpoint_after(self, since: float, timeout: float = 150, after_running: bool = True) -> None:
        """Until the job's tasks all run again (if a restart was expected) and a checkpoint completed after.
        (150 s: a TaskManager may dial a restarted JobManager's old IP for up to a minute, ARCHITECTURE.md.)"""
        def done() -> bool:
            lifetimes = self.cluster.lifetimes()
            start = since
            if after_running:
                running = first_after(lifetimes, RUNNING, since, self.job_id)
                if running is None:
                    return False
                start = running.time
            return first_after(lifetimes, COMPLETED, start, self.job_id) is not None

        wait_for(done, timeout, 0.1, f"job {self.job_id} to run and checkpoint again")

    def _wait_gave_up(self, lifetime: Lifetime, session: str, timeout: float = 60) -> None:
        def gave_up() -> bool:
            for other in self.cluster.lifetimes():
                if other.log == lifetime.log and other.started == lifetime.started:
                    return any(s.session_id == session and s.revoked is not None for s in other.sessions())
            return False

        wait_for(gave_up, timeout, 0.1, f"the former leader {lifetime.label} to give up leadership {session}")

    def _timing(self, fault: str, at: float, expect_new_leader: bool) -> None:
        self.report.timings.append(failover_timings(fault, at, self.cluster.lifetimes(), self.job_id,
                                                    expect_new_leader))

    def _last_completed(self) -> int:
        completed = completed_checkpoints(self.cluster.lifetimes(), self.job_id)
        return completed[-1][1] if completed else 0

    def _check_restored(self, since: float, expected: int, fault: str) -> None:
        line = first_after(self.cluster.lifetimes(), RESTORES, since, self.job_id)
        match = RESTORES.search(line.message) if line else None
        restored = int(match.group(1)) if match else None
        if restored is None or restored < expected:
            self._problem(f"{fault}: restored checkpoint {restored}, expected {expected} (the latest completed "
                          "before the fault) or later")

    def _podman(self, *args: str) -> None:
        self.cluster.podman.run(*args, timeout=120)

    # -- faults ------------------------------------------------------------------------------------------

    def _kill(self, container: str, fault: str, expect_new_leader: bool) -> None:
        """`podman kill`, the job running and checkpointing again from the latest checkpoint, then the
        container started again (the machine back; a JobManager as a standby)."""
        last = self._last_completed()
        at = time.time()
        self._podman("kill", container)
        self._wait_checkpoint_after(at)
        self._timing(fault, at, expect_new_leader=expect_new_leader)
        self._check_restored(at, last, fault)
        self._podman("start", container)

    def _leader_kill(self) -> None:
        self._kill(self.cluster.leader()[1], LEADER_KILL, expect_new_leader=True)

    def _leader_pause(self) -> None:
        lifetime, container = self.cluster.leader()
        session = lifetime.sessions()[-1].session_id
        at = time.time()
        self._podman("pause", container)
        try:
            self._wait_checkpoint_after(at)  # a new leader runs the job meanwhile
            self._timing(LEADER_PAUSE, at, expect_new_leader=True)
        finally:
            resumed = time.time()
            self._podman("unpause", container)
        self._wait_gave_up(lifetime, session)
        self._wait_checkpoint_after(resumed, after_running=False)

    def _leader_disconnect(self) -> None:
        lifetime, container = self.cluster.leader()
        session = lifetime.sessions()[-1].session_id
        at = time.time()
        self._podman("network", "disconnect", self.cluster.network, container)
        try:
            self._wait_checkpoint_after(at)
            self._timing(LEADER_DISCONNECT, at, expect_new_leader=True)
            self._wait_gave_up(lifetime, session)  # (its log is on the shared folder: still written)
        finally:
            self._podman("network", "connect", self.cluster.network, container)
        healed = time.time()
        self._wait_checkpoint_after(healed, after_running=False)

    def _taskmanager_kill(self) -> None:
        busy = wait_for(self.cluster.busy_taskmanagers, 30, 0.1, "a TaskManager running tasks")
        self._kill(busy[0], TASKMANAGER_KILL, expect_new_leader=False)

    def _zookeeper_kill(self) -> None:
        """A follower of the ensemble killed, the one the leading JobManager talks to where it can be: its
        clients move to another server; nothing may restart. First the whole ensemble must serve: a server
        (re)started while its peers' addresses answered nothing can take 10-55 s to join, and killing one
        of the two that serve meanwhile would be a quorum loss, another fault. (Killing the ensemble's
        leader instead makes the two left elect another, in 0.2-0.6 s here; a JobManager's client did not
        always reconnect within the 3 s session timeout after that, see the report in BENCHMARKS.md.)"""
        def all_serving() -> dict[str, str | None] | None:
            found = self.cluster.zookeeper_modes()
            return found if None not in found.values() else None

        modes = wait_for(all_serving, 120, 0.2, "every ZooKeeper server to serve")
        followers = [name for name, mode in modes.items() if mode == "follower"]
        lifetime, _ = self.cluster.leader()
        connected = [line.message.split("Connecting to ", 1)[1].split("(", 1)[0] for line in lifetime.lines
                     if line.message.startswith("Connecting to ")]
        container = connected[-1] if connected and connected[-1] in followers else followers[0]
        at = time.time()
        self._podman("kill", container)
        # the job goes on: two more checkpoints, and nothing restarted or re-elected meanwhile
        wait_for(lambda: [c for c in completed_checkpoints(self.cluster.lifetimes(), self.job_id) if c[0] > at][1:],
                 60, 0.1, f"two checkpoints with ZooKeeper server {container} down")
        lifetimes = self.cluster.lifetimes()
        for what, pattern in (("a restore", RESTORES), ("a leader election", _GRANTED)):
            line = first_after(lifetimes, pattern, at)
            if line is not None:
                self._problem(f"{ZOOKEEPER_KILL}: {what} followed the loss of one ZooKeeper server: {line.message}")
        completed = [c for c in completed_checkpoints(lifetimes, self.job_id) if c[0] > at]
        self.report.timings.append(FailoverTiming(ZOOKEEPER_KILL, at, None, None,
                                                  completed[0][0] - at if completed else None))
        self._podman("start", container)

    # -- the run -----------------------------------------------------------------------------------------

    def run(self) -> ContainerChaosReport:
        actions = {LEADER_KILL: self._leader_kill, LEADER_PAUSE: self._leader_pause,
                   LEADER_DISCONNECT: self._leader_disconnect, TASKMANAGER_KILL: self._taskmanager_kill,
                   ZOOKEEPER_KILL: self._zookeeper_kill}
        started = time.time()
        self.cluster.up()
        self.say(f"cluster {self.cluster.name} up in {time.time() - started:.1f} s")
        done = self.cluster.flink("run", "-d", "-py", f"/opt/flink/jobs/{JOB.name}", "/opt/flink/data/out",
                                  str(self.rate), str(self.parallelism), job_dir=JOB.parent)
        if done.returncode != 0 or "JobID " not in done.stdout:
            raise ContainerChaosFailure(f"flink run failed:\n{done.stdout}{done.stderr}")
        self.job_id = self.report.job_id = done.stdout.split("JobID ")[1].split()[0]
        self._wait_checkpoint_after(time.time() - 120)
        for number, fault in enumerate(self.faults, 1):
            began = time.time()
            try:
                actions[fault]()
            except TimeoutError as error:
                raise ContainerChaosFailure(f"fault {number} {fault}: {error}\n" + "\n".join(self.report.said)) from None
            timing = self.report.timings[-1] if self.report.timings and self.report.timings[-1].at >= began else None
            figures = "" if timing is None else " (" + ", ".join(
                f"{label} {value:.2f} s" for label, value in (("new leader", timing.new_leader_s),
                                                              ("all tasks RUNNING", timing.running_s),
                                                              ("next checkpoint", timing.checkpoint_s))
                if value is not None) + ")"
            self.say(f"  fault {number}/{len(self.faults)} {fault}: done in {time.time() - began:.2f} s{figures}")
        self._finish()
        return self.report

    def _finish(self) -> None:
        report = self.report
        stopped_at = time.time()
        done = self.cluster.flink("stop", "--savepointPath", "/opt/flink/data/savepoints", self.job_id)
        if done.returncode != 0:
            raise ContainerChaosFailure(f"flink stop failed:\n{done.stdout}{done.stderr}")
        result = wait_for(lambda: self.cluster.job_result(self.job_id), 60, 0.1, "the stopped job's clean result")
        if result.get("status") != "FINISHED":
            self._problem(f"the stopped job ended {result.get('status')}, expected FINISHED")
        for lifetime in self.cluster.lifetimes():
            for line in lifetime.lines:
                if line.time > stopped_at + 5 and self.job_id in line.message and "deployed" in line.message:
                    self._problem(f"the finished job ran again: {lifetime.label}: {line.message}")
        lifetimes = self.cluster.lifetimes()
        for problem in checkpoint_order_problems(lifetimes, self.job_id) + leadership_problems(lifetimes):
            self._problem(problem)
        report.checkpoints = len(completed_checkpoints(lifetimes, self.job_id))
        lines: list[str] = []
        for path in sorted((self.cluster.data / "out").rglob("part-*")):
            lines += path.read_text().splitlines()
        report.output = check_output(lines, self.parallelism, JOB_START, JOB_KEYS)
        self.say(f"output: {report.output.summary()}; {report.checkpoints} checkpoints")


def run_container_chaos(directory: Path, podman: Podman, image: str, faults: tuple[str, ...] = FAULTS,
                        rounds: int = 1, rate: float = 500.0, say: Callable[[str], None] = print) -> ContainerChaosReport:
    """A cluster in `directory`, the faults, the checks; every container and the network removed at the end."""
    cluster = ContainerCluster(directory, podman, image)
    try:
        return ContainerChaosRun(cluster, faults, rounds, rate, say=say).run()
    finally:
        cluster.down()
        left = cluster.containers()
        if left:
            say(f"containers left after cluster.sh down: {left}")


def remove_tree(path: Path) -> None:
    """A test's data folder (written by the image's user; this process is root)."""
    shutil.rmtree(path, ignore_errors=True)
