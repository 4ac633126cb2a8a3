"""Failover across containers (issue 19): the chaos run of ha_flink/testing/container_chaos.py, each fault
done to a whole container (the leader's container killed, paused, disconnected from the network; a
TaskManager's container killed; a ZooKeeper server's container killed), `--rounds` times, with the seconds
from the fault to the new leader, all tasks RUNNING and the next completed checkpoint, from the daemons' logs;
and the image's size and build times (`--cold` rebuilds the base image and the ha-flink image without any
cache first, which takes minutes). Figures go to BENCHMARKS.md through bench/common.py's report().

Run: `.venv/bin/python bench/containers.py [--rounds N] [--cold] [--no-record]`."""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import median_max, report  # noqa: E402
from ha_flink.testing import container_chaos as C  # noqa: E402
from ha_flink.testing.containers import BASE_IMAGE, IMAGE, Podman, build_image, podman_problem  # noqa: E402

# The process-level figures of the same faults, for the table's last column (BENCHMARKS.md, "Chaos").
PROCESS_LEVEL = {C.LEADER_KILL: "leader-sigkill", C.LEADER_PAUSE: "leader-sigstop",
                 C.LEADER_DISCONNECT: "leader-zookeeper-partition", C.TASKMANAGER_KILL: "taskmanager-sigkill",
                 C.ZOOKEEPER_KILL: "zookeeper-one-node"}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3, help="how many times each fault is done (default 3)")
    parser.add_argument("--rate", type=float, default=500.0, help="records per second of the job's source")
    parser.add_argument("--cold", action="store_true", help="first rebuild both images without any cache")
    parser.add_argument("--no-record", action="store_true", help="print only; leave BENCHMARKS.md alone")
    args = parser.parse_args()
    problem = podman_problem()
    if problem is not None:
        print(f"cannot run: {problem}", file=sys.stderr)
        return 1
    podman = Podman()
    builds = []
    if args.cold:
        for name in podman.run("images", "--format", "{{.Repository}}:{{.Tag}}").stdout.split():
            if name.startswith((f"{IMAGE}:", f"{BASE_IMAGE}:")):
                podman.run("rmi", "-f", name, check=False)
        podman.run("image", "prune", "-f", check=False, timeout=600)
        cold = build_image(podman, print)
        builds.append(f"cold (debootstrap + podman import of the base, then every layer): {cold.seconds:.0f} s")
    image = build_image(podman, print)
    cached_started = time.monotonic()
    cached = build_image(podman, print)
    builds.append(f"cached (same inputs: only the content hash is computed): {time.monotonic() - cached_started:.1f} s")
    size = f"{image.size_bytes / 1e6:.0f} MB"

    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="ha-flink-containers-") as tmp:
        result = C.run_container_chaos(Path(tmp), podman, cached.name, rounds=args.rounds, rate=args.rate,
                                       say=lambda line: print(line, flush=True))
        C.remove_tree(Path(tmp))
    took = time.monotonic() - started
    rows = []
    for fault in C.FAULTS:
        timings = [t for t in result.timings if t.fault == fault]
        rows.append(f"| {fault} (n={len(timings)}) | {median_max([t.new_leader_s for t in timings])} | "
                    f"{median_max([t.running_s for t in timings])} | {median_max([t.checkpoint_s for t in timings])} | "
                    f"{PROCESS_LEVEL[fault]} |")
    table = "\n".join(["| fault | new leader (median / max, s) | all tasks RUNNING (median / max, s) | next "
                       "checkpoint (median / max, s) | process-level counterpart (Chaos tables) |",
                       "|---|---|---|---|---|", *rows])
    output = result.output
    notes = (f"{len(result.timings)} faults in {took / 60:.1f} min; {result.checkpoints} checkpoints completed. "
             f"Output: {output.summary() if output else 'not checked'}. Checks (every record once, keyed counts "
             f"exact, checkpoint ids increasing, no act of a stale leader): "
             f"{'no problem' if not result.problems else '; '.join(result.problems)}.\n\n"
             f"The cluster of deploy/podman/cluster.sh: 3 ZooKeeper, 3 JobManager and 2 TaskManager containers "
             f"(2 slots each) of the image {image.name} ({size}; build {'; '.join(builds)}) on one podman network "
             "of this host (podman 4.3, runc, netavark); session timeout 3 s with tolerate-suspended-connections, "
             "fixed-delay restarts of 100 ms, heartbeats 500 ms / 5 s, checkpoints every 200 ms to a host folder "
             f"all containers mount; the chaos job at {args.rate:,.0f} numbers/s, p=2. A killed leader's container "
             "takes its guardian with it, so its ZooKeeper session lapses after the session timeout (where a "
             "process-level SIGKILL is answered by the guardian at once); a paused or disconnected leader is "
             "replaced the same way. Each killed, paused or cut-off container comes back afterwards (`podman "
             "start`, `unpause`, `network connect`, with a new IP: everything finds it by name). Times are from "
             "the podman command to the line in the daemons' logs.")
    report("Containers: failover per fault (podman)", "bench/containers.py" + (" --cold" if args.cold else ""),
           table, notes, keep=not args.no_record and result.ok)
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
