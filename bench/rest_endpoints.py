"""REST latency of Flink's endpoints (issue: Flink's own tools), on real processes and a real ZooKeeper,
with the checkpointed count job running: each endpoint asked of the leader and of a standby (which forwards
it), one request at a time, alternating, so both see the same machine; the standby / leader ratio is the
cost of forwarding. The TaskManager routes (logs, thread dump, metrics) include the leader's gRPC call to
the TaskManager.

Run: `.venv/bin/python bench/rest_endpoints.py [--requests N] [--no-record]`."""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import bench_cluster, report  # noqa: E402
from ha_flink.testing.processes import wait_for  # noqa: E402

INTEGRATION = Path(__file__).resolve().parents[1] / "integration"

# what each row asks (`{job}`, `{vertex}`, `{checkpoint}`, `{tm}` filled in from the running job)
PATHS = (
    "/jobs/{job}", "/jobs/{job}/status", "/jobs/{job}/metrics?get=numRestarts,uptime",
    "/jobs/{job}/vertices/{vertex}", "/jobs/{job}/vertices/{vertex}/subtasktimes",
    "/jobs/{job}/vertices/{vertex}/taskmanagers", "/jobs/{job}/vertices/{vertex}/backpressure",
    "/jobs/{job}/checkpoints", "/jobs/{job}/checkpoints/details/{checkpoint}",
    "/jobs/{job}/checkpoints/details/{checkpoint}/subtasks/{vertex}", "/jobs/{job}/execution-result",
    "/jobmanager/environment", "/jobmanager/logs", "/jobmanager/thread-dump",
    "/taskmanagers/{tm}", "/taskmanagers/{tm}/metrics", "/taskmanagers/{tm}/logs", "/taskmanagers/{tm}/thread-dump",
    "/taskmanagers/{tm}/log",
)


def get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as answer:
        body = answer.read()
    try:
        return json.loads(body)
    except ValueError:
        return body


def timed_ms(url: str) -> float:
    started = time.perf_counter()
    get(url)
    return (time.perf_counter() - started) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=100)
    parser.add_argument("--no-record", action="store_true")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp, bench_cluster(Path(tmp), {"taskmanager.numberOfTaskSlots": "2"}) as cluster:
        leader = cluster.start_leader()
        standby = cluster.start_jobmanager()
        cluster.start_taskmanager()
        result = cluster.flink("run", "-d", "-py", str(INTEGRATION / "checkpointed_count_job.py"),
                               str(Path(tmp) / "out"), "100000000", "2000", "-1")
        if result.returncode != 0:
            raise RuntimeError(result.stdout + result.stderr)
        job = cluster.job_id(result)
        base = leader.rest_address() or ""
        wait_for(lambda: get(f"{base}/jobs/{job}/checkpoints")["counts"]["completed"] >= 1, 60,
                 what="a completed checkpoint")
        values = {"job": job, "vertex": get(f"{base}/jobs/{job}")["vertices"][-1]["id"],
                  "checkpoint": get(f"{base}/jobs/{job}/checkpoints")["latest"]["completed"]["id"],
                  "tm": get(f"{base}/taskmanagers")["taskmanagers"][0]["id"]}
        # (the history keeps the last 10 checkpoints, one every 200 ms: each round asks for the newest)
        for template in PATHS:
            leader_ms, standby_ms = [], []
            for _ in range(args.requests):
                if "{checkpoint}" in template:
                    values["checkpoint"] = get(f"{base}/jobs/{job}/checkpoints")["latest"]["completed"]["id"]
                path = template.format(**values)
                leader_ms.append(timed_ms((leader.rest_address() or "") + path))
                standby_ms.append(timed_ms((standby.rest_address() or "") + path))
            lead, stand = statistics.median(leader_ms), statistics.median(standby_ms)
            shown = template.replace("{", "<").replace("}", ">")
            rows.append(f"| GET {shown} | {lead:.1f} | {stand:.1f} | {stand / lead:.2f} |")
    table = "\n".join(["| request | leader, median ms | standby (forwarded), median ms | standby / leader |",
                       "|---|---|---|---|", *rows])
    notes = (f"{args.requests} requests per row and JobManager, one at a time, leader and standby alternating, with "
             "the checkpointed count job at 2,000 records/s and checkpoints every 200 ms. The TaskManager rows "
             "include the leader's gRPC call to the TaskManager; `/log` returns the whole (small) log file.")
    report("REST latency of Flink's endpoints, leader vs standby", "bench/rest_endpoints.py", table, notes,
           not args.no_record)


if __name__ == "__main__":
    main()
