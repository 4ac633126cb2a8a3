"""What never losing state silently costs (issue: never lose a job or its state silently), measured as ratios
within one run:

1. sealed files (a SHA-256 over every handle, `_metadata` and task state file): writing (with fsync) and
   reading a state file sealed against plain, at 1, 10 and 100 MB of incompressible state;
2. a new leader's checkpoint recovery (`initialize` + `restored_state`, real ZooKeeper, local files) with the
   latest handle intact against deleted (the checkpoint rebuilt from its own `_metadata` and the handle
   repaired).

Run: `.venv/bin/python bench/sealed_files.py [--runs N] [--no-record]`."""

from __future__ import annotations

import argparse
import asyncio
import os
import pickle
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import report  # noqa: E402
from ha_flink.config import Configuration  # noqa: E402
from ha_flink.datastream import StreamExecutionEnvironment  # noqa: E402
from ha_flink.fs import Storage  # noqa: E402
from ha_flink.ha.fencing import Fence  # noqa: E402
from ha_flink.ha.services import ZooKeeperHaServices  # noqa: E402
from ha_flink.ha.state_handle_store import ZooKeeperStateHandleStore  # noqa: E402
from ha_flink.runtime.checkpoint.coordinator import CheckpointCoordinator, PendingCheckpoint  # noqa: E402
from ha_flink.testing.zookeeper import ZooKeeperEnsemble  # noqa: E402


def timed(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def file_rows(folder: Path, runs: int) -> list[str]:
    storage = Storage()
    rows = []
    for mb in (1, 10, 100):
        payload = os.urandom(mb << 20)
        times: dict[str, list[float]] = {"plain write": [], "sealed write": [], "plain read": [], "sealed read": []}
        for run in range(runs):  # alternating, so that the machine's noise falls on both alike
            plain, sealed = folder / f"plain-{run}", folder / f"sealed-{run}"
            times["plain write"].append(timed(lambda: storage.write(str(plain), payload)))
            times["sealed write"].append(timed(lambda: storage.write_sealed(str(sealed), payload)))
            times["plain read"].append(timed(lambda: storage.read(str(plain))))
            times["sealed read"].append(timed(lambda: storage.read_sealed(str(sealed))))
            plain.unlink()
            sealed.unlink()
        m = {kind: statistics.median(values) * 1000 for kind, values in times.items()}
        rows.append(f"| {mb} MB state file: write (fsync) / read | {m['plain write']:.1f} / {m['plain read']:.1f} ms | "
                    f"{m['sealed write']:.1f} / {m['sealed read']:.1f} ms | {m['sealed write'] / m['plain write']:.2f}x"
                    f" / {m['sealed read'] / m['plain read']:.2f}x |")
    return rows


def recovery_row(folder: Path, runs: int) -> str:
    zookeeper = ZooKeeperEnsemble.create(folder / "zk", 1)
    zookeeper.start()
    made: list[ZooKeeperHaServices] = []
    config = Configuration({"high-availability": "zookeeper", "high-availability.zookeeper.quorum":
                            zookeeper.connect_string, "high-availability.storageDir": f"file://{folder}/ha"})
    env = StreamExecutionEnvironment.get_execution_environment().set_parallelism(2)
    env.from_collection([1, 2]).map(lambda v: v).print()
    graph = env.get_job_graph()
    tasks = {(v, i) for v in graph.vertices for i in range(2)}

    def coordinator() -> CheckpointCoordinator:
        services = ZooKeeperHaServices(config)
        made.append(services)
        return CheckpointCoordinator(graph, services, Fence.unfenced(services.client), Storage(),
                                     f"file://{folder}/checkpoints", interval_s=3600, max_retained=1)

    async def recover() -> float:
        started = time.perf_counter()
        fresh = coordinator()
        await fresh.initialize()
        assert (await fresh.restored_state()) is not None
        return time.perf_counter() - started

    async def scenario() -> tuple[float, float]:
        first = coordinator()
        await first.initialize()
        for number in (1, 2):
            first.pending[number] = PendingCheckpoint(number, 0, set(tasks))
            for vertex, subtask in sorted(tasks):
                url = f"{first.checkpoint_url(number)}/{vertex}-{subtask}"
                first.storage.write_sealed(url, pickle.dumps({"source": None, "operators": [[b"x" * 1000]]}))
                await first.acknowledge((vertex, subtask), number, url)
        node = f"{first.store.handles.root}/{2:019d}"
        intact, damaged = [], []
        for _ in range(runs):
            intact.append(await recover())
            url = ZooKeeperStateHandleStore.pointer_url(first.store.handles.client.get(node)[0])
            Path(url.removeprefix("file://")).unlink()  # the handle gone: the next leader rebuilds and repairs it
            damaged.append(await recover())
        return statistics.median(intact), statistics.median(damaged)

    try:
        intact, damaged = asyncio.run(scenario())
    finally:
        for services in made:
            services.close()
        zookeeper.stop()
    return (f"| a new leader's checkpoint recovery: handle intact / deleted (rebuilt from `_metadata`, repaired) | "
            f"{intact * 1000:.1f} ms | {damaged * 1000:.1f} ms | {damaged / intact:.2f}x |")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--no-record", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="ha-flink-sealed-") as work:
        folder = Path(work)
        (folder / "files").mkdir()
        rows = file_rows(folder / "files", args.runs) + [recovery_row(folder, args.runs)]
    table = "\n".join(["| figure | plain / intact (median) | sealed / damaged (median) | ratio |",
                       "|---|---|---|---|", *rows])
    notes = (f"Medians of {args.runs} runs each, alternating within one run. Local disk (ext4), SHA-256 in "
             "Python's hashlib; the recovery is one ZooKeeper server on this host, a 2-subtask job with one "
             "retained checkpoint.")
    report("Sealed files and damaged-handle recovery", "bench/sealed_files.py", table, notes, not args.no_record)
    return 0


if __name__ == "__main__":
    sys.exit(main())
