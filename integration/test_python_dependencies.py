"""Python dependencies on a real HA cluster: `flink run -py job.py -pyfs mod.py` ships a module that neither
the TaskManagers nor the job's folder have; the job's functions import it on the TaskManagers, and after the
leader is killed (SIGKILL) the standby's recovered job still finds it (it was stored with the job graph).
The TaskManagers' per-job folders go when the job ends."""

from __future__ import annotations

import signal
import textwrap
from pathlib import Path
from typing import Callable

from ha_flink.testing.cluster import Cluster
from ha_flink.testing.processes import wait_for
from ha_flink.testing.sinks import read_collected

JOB = textwrap.dedent("""\
    import sys

    import hf_cluster_mod  # shipped with -pyfs: not next to this script, not on the TaskManagers

    from ha_flink.common import WatermarkStrategy
    from ha_flink.datastream import StreamExecutionEnvironment
    from ha_flink.datastream.connectors.number_seq import RateLimitedNumberSequenceSource
    from ha_flink.testing.sinks import CollectSink

    if __name__ == "__main__":
        out, mode = sys.argv[1], sys.argv[2]
        env = StreamExecutionEnvironment.get_execution_environment()
        env.set_parallelism(2)
        if mode == "keyed":  # the key selector and the reduce come from the shipped module too
            (env.from_collection(list(range(100))).key_by(hf_cluster_mod.parity)
                .reduce(hf_cluster_mod.larger).map(hf_cluster_mod.tag).add_sink(CollectSink(out)))
            env.execute("shipped module keyed")
            sys.exit(0)
        if mode == "bounded":
            numbers = env.from_collection(list(range(100)))
        else:
            numbers = env.from_source(RateLimitedNumberSequenceSource(records_per_second=200),
                                      WatermarkStrategy.no_watermarks(), "numbers")
        numbers.rebalance().map(hf_cluster_mod.tag).add_sink(CollectSink(out))
        env.execute(f"shipped module {mode}")
    """)


def write_job(tmp_path: Path) -> tuple[Path, Path]:
    (tmp_path / "job").mkdir()
    (tmp_path / "mods").mkdir()
    (tmp_path / "job" / "job.py").write_text(JOB)
    (tmp_path / "mods" / "hf_cluster_mod.py").write_text(
        "def tag(n):\n    return f'shipped-{n}'\n\n\ndef parity(n):\n    return n % 2\n\n\n"
        "def larger(a, b):\n    return max(a, b)\n")
    return tmp_path / "job" / "job.py", tmp_path / "mods" / "hf_cluster_mod.py"


def job_folders(tmp: Path) -> list[Path]:
    return list(tmp.glob("ha-flink-python-*-*"))


def test_flink_run_ships_a_module_with_pyfs(cluster_factory: Callable[..., Cluster], tmp_path: Path) -> None:
    tm_tmp = tmp_path / "tm-tmp"
    cluster = cluster_factory(**{"io.tmp.dirs": str(tm_tmp)})
    cluster.start_jobmanager()
    cluster.start_taskmanager()
    cluster.start_taskmanager()
    job, module = write_job(tmp_path)
    out = tmp_path / "out"
    result = cluster.flink("run", "-py", str(job), "-pyfs", str(module), str(out), "bounded")
    assert result.returncode == 0, result.stdout + result.stderr
    assert sorted(read_collected(out)) == sorted(f"shipped-{n}" for n in range(100))
    assert job_folders(tm_tmp) == []  # each TaskManager's per-job folder went with the job


def test_a_key_selector_and_reduce_from_a_shipped_module(cluster_factory: Callable[..., Cluster],
                                                         tmp_path: Path) -> None:
    cluster = cluster_factory()
    cluster.start_jobmanager()
    cluster.start_taskmanager()
    cluster.start_taskmanager()
    job, module = write_job(tmp_path)
    out = tmp_path / "out"
    result = cluster.flink("run", "-py", str(job), "-pyfs", str(module), str(out), "keyed")
    assert result.returncode == 0, result.stdout + result.stderr
    finals: dict[int, int] = {}
    for tagged in read_collected(out):
        n = int(tagged.removeprefix("shipped-"))
        finals[n % 2] = max(finals.get(n % 2, -1), n)
    assert finals == {0: 98, 1: 99}  # each key's running maximum ends at its largest number


def test_the_recovered_job_still_finds_its_module_after_a_leader_sigkill(
    cluster_factory: Callable[..., Cluster], tmp_path: Path,
) -> None:
    tm_tmp = tmp_path / "tm-tmp"
    cluster = cluster_factory(**{"io.tmp.dirs": str(tm_tmp)})
    first = cluster.start_leader()
    standby = cluster.start_jobmanager()
    cluster.start_taskmanager()
    cluster.start_taskmanager()
    job, module = write_job(tmp_path)
    out = tmp_path / "out"
    submitted = cluster.flink("run", "-d", "-py", str(job), "--pyFiles", str(module), str(out), "unbounded")
    assert submitted.returncode == 0, submitted.stdout + submitted.stderr
    job_id = cluster.job_id(submitted)
    wait_for(lambda: len(read_collected(out)) > 20, 30, what="records of the first attempt")
    before = {p.name for p in out.glob("*.records")}

    first.kill(signal.SIGKILL)
    wait_for(lambda: f"Recovered job shipped module unbounded ({job_id})" in standby.output(), 40,
             what="the standby to recover the job")

    def recovered_records() -> list[str]:
        return [record for path in out.glob("*.records") if path.name not in before
                for record in read_collected_file(path)]

    wait_for(lambda: len(recovered_records()) > 20, 40, what="records of the recovered job")
    assert all(str(record).startswith("shipped-") for record in recovered_records())
    assert "No module named" not in "".join(log.read_text() for log in cluster.logs())

    assert cluster.flink("cancel", job_id).returncode == 0
    wait_for(lambda: '"status": "CANCELED"' in cluster.job_result(job_id), 30, what="the job to be cancelled")
    wait_for(lambda: job_folders(tm_tmp) == [], 20, what="the TaskManagers' per-job folders to go")


def read_collected_file(path: Path) -> list[object]:
    """The records of one sink file (read_collected reads a whole folder)."""
    import pickle
    import struct

    data, records, position = path.read_bytes(), [], 0
    while position + 4 <= len(data):
        (length,) = struct.unpack_from("<I", data, position)
        if position + 4 + length > len(data):
            break
        records.append(pickle.loads(data[position + 4:position + 4 + length]))
        position += 4 + length
    return records
