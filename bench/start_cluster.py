"""Figures of the cluster scripts (issue: cluster scripts and SSH deployment), on real processes and a real
ZooKeeper, all on this host:

1. `bin/start-cluster.sh` with 3 masters and 2 workers (1 slot each) -> a leader elected and both slots
   registered, as the REST API's /overview shows it (goal <= 3 s);
2. `bin/stop-cluster.sh` -> every daemon process gone (goal <= 2 s).

Run: `.venv/bin/python bench/start_cluster.py [--runs N] [--no-record]`."""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import report, spread  # noqa: E402
from ha_flink.testing.processes import free_ports, wait_for  # noqa: E402
from ha_flink.testing.script_cluster import ScriptCluster  # noqa: E402
from ha_flink.testing.zookeeper import ZooKeeperEnsemble  # noqa: E402


def one_run(workdir: Path, quorum: str, run: int) -> tuple[float, float, float]:
    """Seconds to (start-cluster.sh returning, leader + all slots, every process gone after stop)."""
    ports = free_ports(3)
    cluster = ScriptCluster(workdir / f"run{run}", quorum, [f"localhost:{port}" for port in ports],
                            ["localhost", "localhost"])
    cluster.write_conf()  # a fresh cluster-id each run
    try:
        began = time.monotonic()
        started = cluster.run("start-cluster.sh")
        returned = time.monotonic() - began
        if started.returncode != 0:
            raise RuntimeError(f"start-cluster.sh failed:\n{started.stdout}{started.stderr}")

        def ready() -> bool:
            overview = cluster.rest(ports[0], "/overview", timeout=1)
            return isinstance(overview, dict) and bool(overview.get("leader")) and overview["slots-total"] == 2

        wait_for(ready, 30, 0.01, "a leader and 2 registered slots")
        up = time.monotonic() - began
        daemons = cluster.processes()
        began = time.monotonic()
        stopped = cluster.run("stop-cluster.sh")
        wait_for(lambda: not any(pid in cluster.processes() for pid in daemons), 30, 0.01, "every daemon to exit")
        down = time.monotonic() - began
        if stopped.returncode != 0:
            raise RuntimeError(f"stop-cluster.sh failed:\n{stopped.stdout}{stopped.stderr}")
        return returned, up, down
    finally:
        cluster.kill_all()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--no-record", action="store_true", help="print only, do not append to BENCHMARKS.md")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-scripts-") as tmp:
        workdir = Path(tmp)
        zookeeper = ZooKeeperEnsemble.create(workdir / "zk", 1)
        zookeeper.start()
        try:
            runs = [one_run(workdir, zookeeper.connect_string, i) for i in range(args.runs)]
        finally:
            zookeeper.stop()
    returned, up, down = ([r[i] for r in runs] for i in range(3))
    table = "\n".join([
        "| figure | measured | goal |",
        "|---|---|---|",
        f"| `start-cluster.sh` (3 masters, 2 workers, local) -> leader elected and all slots registered | "
        f"{spread(up)} | <= 3 s |",
        f"| `start-cluster.sh` returning (every daemon started and READY) | {spread(returned)} | |",
        f"| `stop-cluster.sh` -> every daemon process gone | {spread(down)} | <= 2 s |",
    ])
    notes = ("One ZooKeeper 3.8 server (tickTime 200 ms) on loopback, 3 JobManagers and 2 TaskManagers (1 slot each) "
             "on this host started by the bin/ scripts; readiness polled on a JobManager's REST /overview every 10 ms.")
    report("Cluster scripts: start-cluster.sh and stop-cluster.sh", "make bench (bench/start_cluster.py)", table, notes,
           not args.no_record)


if __name__ == "__main__":
    main()
