"""The cost of security (issue: security): the same cluster with internal TLS (and REST TLS) off and on, in
one run, on real processes, a real ZooKeeper and real certificates from a test CA:

1. throughput of the bounded map -> key_by -> reduce job (bench/jobs/throughput_job.py) at p=2 on two
   TaskManagers: records between them cross a TLS data connection when it is on; rounds alternate off/on so
   drift in the machine's speed falls on both;
2. leader SIGKILL -> all tasks RUNNING on the new leader (session timeout 3 s), where every RPC of the
   takeover (TaskManagers re-registering, deployments) opens new TLS connections.

Run: `.venv/bin/python bench/tls.py [--records N] [--rounds N] [--kills N] [--no-record]`."""

from __future__ import annotations

import argparse
import signal
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import bench_cluster, report, spread  # noqa: E402
from bench.runtime import INTEGRATION, failover, log_time, throughput  # noqa: E402
from ha_flink.testing.certificates import create_test_certificates  # noqa: E402
from ha_flink.testing.cluster import Cluster, DaemonProcess  # noqa: E402
from ha_flink.testing.processes import wait_for  # noqa: E402


def start(cluster: Cluster) -> DaemonProcess:
    leader = cluster.start_leader()
    cluster.start_jobmanager()
    cluster.start_taskmanager()
    cluster.start_taskmanager()
    return leader


def kills(cluster: Cluster, leader: DaemonProcess, runs: int, workdir: Path) -> list[float]:
    submitted = cluster.flink("run", "-d", "-py", str(INTEGRATION / "unbounded_job.py"), str(workdir / "out"))
    assert submitted.returncode == 0, submitted.stdout + submitted.stderr
    wait_for(lambda: log_time(leader, "tasks RUNNING", 0), 30, what="the job to run")
    times = []
    for _ in range(runs):
        _, running, leader = failover(cluster, leader, signal.SIGKILL)
        times.append(running)
        cluster.start_jobmanager()
    cancelled = cluster.flink("cancel", cluster.job_id(submitted))
    assert cancelled.returncode == 0, cancelled.stdout + cancelled.stderr
    wait_for(lambda: "No running jobs." in cluster.flink("list").stdout, 30, what="the cancel")
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--kills", type=int, default=5)
    parser.add_argument("--no-record", action="store_true")
    args = parser.parse_args()
    settings = {"taskmanager.numberOfTaskSlots": "1"}
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        certs = create_test_certificates(workdir / "certs")
        secured = {**settings, **certs.internal_config(), **certs.rest_config()}
        with bench_cluster(workdir / "off", settings) as plain, bench_cluster(workdir / "on", secured) as tls:
            leaders = {"off": start(plain), "on": start(tls)}
            clusters = {"off": plain, "on": tls}
            rates: dict[str, list[float]] = {"off": [], "on": []}
            for _ in range(args.rounds):
                for mode in ("off", "on"):
                    rates[mode].append(throughput(clusters[mode], args.records, 2))
            failovers = {mode: kills(clusters[mode], leaders[mode], args.kills, workdir / mode)
                         for mode in ("off", "on")}

    ratio = statistics.median(rates["on"]) / statistics.median(rates["off"])
    table = "\n".join([
        "| figure | internal TLS off | internal TLS on (mutual, + REST TLS) | on / off |",
        "|---|---|---|---|",
        f"| bounded word count, {args.records:,} records, p=2 on two TaskManagers | "
        f"{spread(rates['off'], unit='records/s', digits=0)} | {spread(rates['on'], unit='records/s', digits=0)} | "
        f"{ratio:.2f} |",
        f"| leader SIGKILL -> all tasks RUNNING, session timeout 3 s | {spread(failovers['off'])} | "
        f"{spread(failovers['on'])} | "
        f"{statistics.median(failovers['on']) / statistics.median(failovers['off']):.2f} |",
    ])
    report("Security: the cost of internal TLS", "python bench/tls.py", table,
           "Two clusters side by side, each one ZooKeeper 3.8 server, 2 JobManagers and 2 TaskManagers with 1 "
           "slot, on loopback; throughput rounds alternate between them; EC P-256 certificates from a test CA "
           "(ha_flink.testing.certificates).", not args.no_record)


if __name__ == "__main__":
    main()
