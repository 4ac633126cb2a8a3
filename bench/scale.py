"""Scale-out figures (issue 18, item 3): one cluster of real processes on this machine, a real ZooKeeper
server, 3 JobManagers (guarded, as the bin/ scripts start them: deploy/guardian.py) and N TaskManagers of 2
slots, for each N of `--tms`; a job at p = 2N filling every slot (bench/jobs/scale_job.py: source -> key_by ->
a count per key in keyed ValueState -> sink; 2 vertices, so 4N subtasks). For each N it measures:

- the start of the N TaskManager processes (one after another) to all N registered with the leader: the
  machine's process start, reported apart from the job figures;
- deploy: the leader's "Submitted job" to its "all K tasks RUNNING" (log stamps, as bench/runtime.py),
  for the job without checkpoints and again for the job with 1 s checkpoints (the two submissions);
- checkpoint duration with small state (1,000 keys): the leader's "Completed checkpoint ... (K tasks, D ms)"
  over the checkpointing window;
- leader SIGKILL -> all tasks RUNNING on the new leader (`--kills` times, a fresh guarded standby after each);
- the leader JobManager's CPU (utime + stime of /proc/<pid>/stat over a `--window` of seconds, % of one core)
  with no job, with the job running without checkpoints ("idle"), and while it checkpoints every second;
- ZooKeeper's request rate: packets received per second (`mntr`'s zk_packets_received, the ensemble
  whitelists mntr) over the same windows, and per checkpoint: (checkpointing rate - idle rate) / completed
  checkpoints per second.

The machine's load average (os.getloadavg) is printed beside each N; growth is given as ratios to the
smallest N. Goals (issue 18): deploy <= 2 s, checkpoint <= 0.5 s, failover within 0.5 s of the 8-TaskManager
figure, idle leader CPU <= 2% of a core, ZooKeeper requests per checkpoint constant.

Run: `.venv/bin/python bench/scale.py [--tms 4,8,16,32] [--window S] [--kills N] [--rate R]
[--heartbeat conf|test|flink] [--tls] [--workdir DIR] [--no-record]`
(about 15 minutes at the defaults on 2 cores)."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import signal
import socket
import statistics
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import bench_cluster, cpu_seconds, report  # noqa: E402
from bench.runtime import failover, log_time, stamp_of  # noqa: E402
from ha_flink.testing.cluster import Cluster, DaemonProcess  # noqa: E402
from ha_flink.testing.processes import wait_for  # noqa: E402
from ha_flink.testing.certificates import create_test_certificates  # noqa: E402

JOB = Path(__file__).resolve().parent / "jobs" / "scale_job.py"
COMPLETED = re.compile(r"Completed checkpoint (\d+) of job (\w+) \((\d+) tasks, (\d+) ms\)")
NAN = float("nan")
HEARTBEATS = {"conf": ("2 s", "20 s"), "test": ("500 ms", "5 s"), "flink": ("10 s", "50 s")}


@dataclass
class Figures:
    tms: int
    tm_start_s: float = 0.0  # N TaskManager processes started, to all N registered with the leader
    deploy_s: list[float] = field(default_factory=list)
    submit_s: list[float] = field(default_factory=list)  # `flink run -d` wall time
    deploy_attempts: list[int] = field(default_factory=list)  # the attempt that ran every task (0: no restart)
    checkpoint_ms: list[float] = field(default_factory=list)
    failed_checkpoints: int = 0
    failover_s: list[float] = field(default_factory=list)
    cpu: dict[str, float] = field(default_factory=dict)  # window -> % of a core
    tm_cpu: dict[str, float] = field(default_factory=dict)  # window -> all TaskManagers, % of a core
    busy: dict[str, float] = field(default_factory=dict)  # window -> % of the machine's cores busy
    restarts: int = 0  # job restarts (not leader failovers) seen in the leader logs: TaskManagers lost, tasks failed
    zk_rate: dict[str, float] = field(default_factory=dict)  # window -> packets received / s
    checkpoints_per_s: float = 0.0
    load: list[float] = field(default_factory=list)  # 1-min load average at each window
    leader_lost_at_deploy: int = 0  # submissions during which the leader lost leadership (its session expired)

    @property
    def zk_per_checkpoint(self) -> float:
        if not self.checkpoints_per_s:
            return float("nan")
        return (self.zk_rate["checkpointing"] - self.zk_rate["idle"]) / self.checkpoints_per_s


def zk_packets_received(quorum: str) -> int:
    host, port = quorum.split(",")[0].rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=5) as conn:
        conn.sendall(b"mntr")
        data = b""
        while chunk := conn.recv(65536):
            data += chunk
    for line in data.decode().splitlines():
        if line.startswith("zk_packets_received"):
            return int(line.split()[1])
    raise RuntimeError(f"ZooKeeper at {quorum} answered mntr without zk_packets_received: {data[:200]!r}")


def jobmanager_pid(daemon: DaemonProcess) -> int:
    """The JobManager process itself (a guarded one's `process` is its guardian)."""
    return daemon.guarded_pid or daemon.pid


def machine_busy() -> tuple[float, float]:
    """(busy, all) jiffies of every core since boot, from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]  # idle, iowait
    return sum(values) - idle, sum(values)


@dataclass
class Window:
    leader_cpu: float  # % of one core
    taskmanagers_cpu: float  # all TaskManager processes together, % of one core
    machine_busy: float  # % of all cores busy, whoever's
    zk_rate: float  # ZooKeeper packets received per second
    begin: float  # wall-clock
    end: float


def window(cluster: Cluster, leader: DaemonProcess, seconds: float) -> Window:
    """The leader's CPU, the TaskManagers', the machine's and ZooKeeper's packets received per second over
    `seconds`."""
    pid = jobmanager_pid(leader)
    tms = [d.pid for d in cluster.daemons if d.kind == "taskmanager" and d.process.poll() is None]
    packets, cpu, tm_cpu, busy = zk_packets_received(cluster.zookeeper_quorum), cpu_seconds(pid), \
        sum(cpu_seconds(t) for t in tms), machine_busy()
    started, wall = time.time(), time.monotonic()
    time.sleep(seconds)
    elapsed = time.monotonic() - wall
    cpu = cpu_seconds(pid) - cpu
    tm_cpu = sum(cpu_seconds(t) for t in tms) - tm_cpu
    busy_now = machine_busy()
    packets = zk_packets_received(cluster.zookeeper_quorum) - packets
    return Window(100 * cpu / elapsed, 100 * tm_cpu / elapsed,
                  100 * (busy_now[0] - busy[0]) / max(1, busy_now[1] - busy[1]), packets / elapsed, started,
                  started + elapsed)


def rest(leader: DaemonProcess, path: str) -> dict:
    with urllib.request.urlopen(f"{leader.rest_address()}{path}", timeout=10) as answer:
        return json.load(answer)


def submit(cluster: Cluster, leader: DaemonProcess, figures: Figures, parallelism: int, interval_ms: int,
           rate: float) -> tuple[str, DaemonProcess]:
    """`flink run -d` the job; its id once every task runs, and the JobManager that runs it, with the deploy
    time in `figures`. (The leader may lose its ZooKeeper session during a large deploy: a standby then
    recovers the job; the deploy time includes that failover and `leader_lost_at_deploy` counts it.)"""
    before = time.time()
    started = time.monotonic()
    submitted = cluster.flink("run", "-d", "-py", str(JOB), str(parallelism), str(interval_ms), str(rate))
    figures.submit_s.append(time.monotonic() - started)
    assert submitted.returncode == 0, submitted.stdout + submitted.stderr
    job_id = Cluster.job_id(submitted)
    pattern = re.compile(rf"\({job_id}\) attempt (\d+): all \d+ tasks RUNNING")

    def running_somewhere() -> tuple[DaemonProcess, tuple[float, re.Match[str]]] | None:
        for daemon in [leader] + [d for d in cluster.daemons if d.kind == "jobmanager" and d is not leader]:
            found = log_match(daemon, pattern, before)
            if found is not None:
                return daemon, found
        return None

    runner, running = wait_for(running_somewhere, 120, what=f"job {job_id} to run every task")
    if runner is not leader:
        figures.leader_lost_at_deploy += 1
        print(f"  the leader lost its leadership during the deploy; job {job_id} runs on another JobManager",
              flush=True)
    figures.deploy_s.append(running[0] - log_time(leader, f"Submitted job scale p={parallelism} ({job_id})", before))
    figures.deploy_attempts.append(int(running[1].group(1)))
    return job_id, runner


def log_match(daemon: DaemonProcess, pattern: re.Pattern[str], after: float) -> tuple[float, re.Match[str]] | None:
    """The stamp and match of the daemon's first log line matching `pattern` stamped at `after` or later."""
    for line in daemon.output().splitlines():
        match = pattern.search(line)
        stamp = stamp_of(line) if match else None
        if match and stamp is not None and stamp >= after:
            return stamp, match
    return None


def cancel(cluster: Cluster, leader: DaemonProcess, job_id: str, slots: int) -> None:
    result = cluster.flink("cancel", job_id)
    assert result.returncode == 0, result.stdout + result.stderr
    wait_for(lambda: rest(leader, "/overview")["slots-available"] == slots, 120, 0.2,
             what="every slot to be free after the cancel")


def measure(tms: int, args: argparse.Namespace) -> Figures:
    figures = Figures(tms)
    parallelism = 2 * tms
    with contextlib.ExitStack() as stack:
        if args.workdir:  # kept: the daemons' logs stay for a look afterwards
            tmp = str(Path(args.workdir).resolve() / f"tms-{tms}")
            Path(tmp).mkdir(parents=True, exist_ok=False)
        else:
            tmp = stack.enter_context(tempfile.TemporaryDirectory())
        settings = {"taskmanager.numberOfTaskSlots": "2", "state.checkpoints.dir": f"file://{tmp}/checkpoints"}
        if args.tls:  # internal TLS only: the bench's own REST calls stay plain HTTP
            settings.update(create_test_certificates(Path(tmp) / "certs").internal_config())
        interval, timeout = HEARTBEATS[args.heartbeat]
        settings.update({"heartbeat.interval": interval, "heartbeat.timeout": timeout})
        with bench_cluster(Path(tmp), settings) as cluster:
            return run(cluster, figures, parallelism, args)


def run(cluster: Cluster, figures: Figures, parallelism: int, args: argparse.Namespace) -> Figures:
    tms = figures.tms
    leader = cluster.start_leader(guardian=True)
    for _ in range(2):
        cluster.start_jobmanager(guardian=True)
    started = time.monotonic()
    for _ in range(tms):
        cluster.start_taskmanager()
    wait_for(lambda: rest(leader, "/overview")["taskmanagers"] == tms, 120, 0.2,
             what=f"{tms} TaskManagers to register")
    figures.tm_start_s = time.monotonic() - started
    print(f"  {tms} TaskManagers up and registered in {figures.tm_start_s:.1f} s", flush=True)
    time.sleep(args.settle)

    def timed(name: str) -> tuple[float, float]:
        figures.load.append(os.getloadavg()[0])
        w = window(cluster, leader, args.window)
        figures.cpu[name], figures.zk_rate[name] = w.leader_cpu, w.zk_rate
        figures.tm_cpu[name], figures.busy[name] = w.taskmanagers_cpu, w.machine_busy
        print(f"  {name}: leader CPU {w.leader_cpu:.1f}% of a core, TaskManagers {w.taskmanagers_cpu:.0f}%, "
              f"machine {w.machine_busy:.0f}% busy, ZooKeeper {w.zk_rate:.1f} packets/s "
              f"(load {figures.load[-1]:.2f})", flush=True)
        return w.begin, w.end

    timed("no job")
    job_id, leader = submit(cluster, leader, figures, parallelism, 0, args.rate)
    time.sleep(args.settle)
    timed("idle")
    cancel(cluster, leader, job_id, parallelism)

    job_id, leader = submit(cluster, leader, figures, parallelism, 1000, args.rate)
    wait_for(lambda: f"of job {job_id} (" in leader.output(), 60, what="the first checkpoint")
    time.sleep(args.settle)
    begin, end = timed("checkpointing")
    completed = 0
    for line in leader.output().splitlines():
        match = COMPLETED.search(line)
        stamp = stamp_of(line)
        if match and match.group(2) == job_id and stamp is not None and begin <= stamp <= end:
            completed += 1
            figures.checkpoint_ms.append(float(match.group(4)))
        elif "Checkpoint failure" in line and stamp is not None and begin <= stamp <= end:
            figures.failed_checkpoints += 1
    figures.checkpoints_per_s = completed / (end - begin)
    print(f"  deploy {figures.deploy_s}, checkpoints {len(figures.checkpoint_ms)} median "
          f"{median(figures.checkpoint_ms):.0f} ms", flush=True)

    for _ in range(args.kills):
        figures.load.append(os.getloadavg()[0])
        _, running, leader = failover(cluster, leader, signal.SIGKILL, patience=6)  # (the guardian may be slow under load)
        figures.failover_s.append(running)
        print(f"  leader SIGKILL -> all tasks RUNNING in {running:.2f} s", flush=True)
        cluster.start_jobmanager(guardian=True)  # a fresh standby for the next round
        time.sleep(args.settle)
    figures.load.append(os.getloadavg()[0])
    figures.restarts = sum(d.output().count(" restarts (attempt ") for d in cluster.daemons if d.kind == "jobmanager")
    return figures


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def table(results: list[Figures]) -> str:
    base = results[0]

    def growth(value: Callable[[Figures], float], fmt: str) -> Callable[[Figures], str]:
        """The figure, and its ratio to the smallest N's in brackets."""
        def cell(figures: Figures) -> str:
            v, b = value(figures), value(base)
            ratio = f" ({v / b:.1f}x)" if figures is not base and b and b == b else ""
            return format(v, fmt) + ratio
        return cell

    def plain(value: Callable[[Figures], str]) -> Callable[[Figures], str]:
        return value

    eight = next((f for f in results if f.tms == 8), None)
    rows: list[tuple[str, Callable[[Figures], str], str]] = [
        ("TaskManager processes started one by one, to all registered, s", growth(lambda f: f.tm_start_s, ".1f"),
         "(process start: record)"),
        ("deploy: submitted -> all tasks RUNNING, s (median of 2)", growth(lambda f: median(f.deploy_s), ".2f"),
         "<= 2 s"),
        ("`flink run -d` wall time, s (median of 2)", growth(lambda f: median(f.submit_s), ".2f"), "(record)"),
        ("checkpoint duration, ms: median", growth(lambda f: median(f.checkpoint_ms), ".0f"), "<= 500 ms"),
        ("checkpoint duration, ms: max", growth(lambda f: max(f.checkpoint_ms or [NAN]), ".0f"), ""),
        ("checkpoints completed per s (1 s interval); failed",
         plain(lambda f: f"{f.checkpoints_per_s:.2f}; {f.failed_checkpoints}"), ""),
        ("leader SIGKILL -> all tasks RUNNING, s: median", growth(lambda f: median(f.failover_s), ".2f"),
         "within 0.5 s of 8 TMs" + (f" ({median(eight.failover_s):.2f} s)" if eight else "")),
        ("leader SIGKILL -> all tasks RUNNING, s: min - max",
         plain(lambda f: f"{min(f.failover_s):.2f} - {max(f.failover_s):.2f}" if f.failover_s else "-"), ""),
        ("leader CPU, no job, % of a core", growth(lambda f: f.cpu["no job"], ".1f"), "(record)"),
        ("leader CPU, job running without checkpoints (idle), % of a core", growth(lambda f: f.cpu["idle"], ".1f"),
         "<= 2%"),
        ("leader CPU, checkpointing every second, % of a core", growth(lambda f: f.cpu["checkpointing"], ".1f"),
         "(record)"),
        ("all TaskManagers' CPU, idle job / checkpointing, % of a core",
         plain(lambda f: f"{f.tm_cpu['idle']:.0f} / {f.tm_cpu['checkpointing']:.0f}"), "(record)"),
        ("machine busy (2 cores, every process), no job / idle / checkpointing, %",
         plain(lambda f: " / ".join(f"{f.busy[w]:.0f}" for w in ("no job", "idle", "checkpointing"))), ""),
        ("job restarts seen (TaskManagers lost, tasks failed)", plain(lambda f: str(f.restarts)), "0"),
        ("deploys during which the leader lost leadership (of 2)", plain(lambda f: str(f.leader_lost_at_deploy)), "0"),
        ("ZooKeeper packets received/s, no job", growth(lambda f: f.zk_rate["no job"], ".1f"), "(record)"),
        ("ZooKeeper packets received/s, idle job", growth(lambda f: f.zk_rate["idle"], ".1f"), "(record)"),
        ("ZooKeeper packets received/s, checkpointing", growth(lambda f: f.zk_rate["checkpointing"], ".1f"),
         "(record)"),
        ("ZooKeeper packets per checkpoint", growth(lambda f: f.zk_per_checkpoint, ".1f"), "constant"),
        ("load average (1 min) during the figures, min - max",
         plain(lambda f: f"{min(f.load):.2f} - {max(f.load):.2f}"), ""),
    ]
    header = "| figure | " + " | ".join(f"{f.tms} TMs (p={2 * f.tms})" for f in results) + " | goal |"
    lines = [header, "|---|" + "---|" * len(results) + "---|"]
    lines += [f"| {name} | " + " | ".join(cell(f) for f in results) + f" | {goal} |" for name, cell, goal in rows]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tms", default="4,8,16,32", help="TaskManager counts, comma separated")
    parser.add_argument("--window", type=float, default=15.0, help="seconds of each CPU / ZooKeeper window")
    parser.add_argument("--settle", type=float, default=3.0, help="seconds to wait before each window")
    parser.add_argument("--kills", type=int, default=3, help="leader SIGKILLs per N")
    parser.add_argument("--rate", type=float, default=1000.0, help="records per second of the whole job")
    parser.add_argument("--heartbeat", choices=sorted(HEARTBEATS), default="conf",
                        help="heartbeat interval / timeout: the shipped conf/'s 2 s / 20 s (default), the test "
                             "cluster's 0.5 s / 5 s, or Flink's defaults 10 s / 50 s")
    parser.add_argument("--workdir", help="a folder to keep each cluster's files and logs in (default: a temporary "
                                          "folder, removed)")
    parser.add_argument("--tls", action="store_true", help="mutual internal TLS (security.ssl.internal.*, test "
                                                           "certificates): every RPC and data connection")
    parser.add_argument("--no-record", action="store_true")
    args = parser.parse_args()
    results = []
    for tms in (int(n) for n in args.tms.split(",")):
        print(f"{tms} TaskManagers:", flush=True)
        results.append(measure(tms, args))
    text = table(results)
    command = "bench/scale.py " + " ".join(a for a in sys.argv[1:] if a != "--no-record")
    notes = (f"One ZooKeeper 3.8 server (tickTime 200 ms), session timeout 3 s; 3 JobManagers, guarded; N "
             f"TaskManagers of 2 slots, heartbeat "
             f"{' / '.join(HEARTBEATS[args.heartbeat])} ({args.heartbeat}); "
             f"{'internal TLS on (mutual, test certificates); ' if args.tls else ''}all on this machine's loopback. The "
             f"job (bench/jobs/scale_job.py) at p = 2N, {args.rate:g} records/s in all, 1,000 keys. Windows of "
             f"{args.window:g} s; {args.kills} leader SIGKILLs per N. Times from the daemons' log stamps, CPU from "
             f"/proc/<pid>/stat of the leader JobManager, ZooKeeper packets from `mntr`. Ratios (in brackets) "
             f"are to {results[0].tms} TaskManagers; every process of the cluster shares the 2 cores, so the "
             f"load average is given beside the figures.")
    report("Scale-out: 3 JobManagers and N TaskManagers on one machine", command.strip(), text, notes,
           not args.no_record)


if __name__ == "__main__":
    main()
