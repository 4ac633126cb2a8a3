"""Jobs on a real HA cluster: JobManager and TaskManager processes, ZooKeeper, `flink run`."""

from __future__ import annotations

import collections
from pathlib import Path
from typing import Callable

from ha_flink.testing.cluster import Cluster
from ha_flink.testing.sinks import read_collected

HERE = Path(__file__).resolve().parent


def expected_counts(copies: int) -> dict[str, int]:
    words = ["apple", "banana", "cherry", "date", "elder", "fig", "grape"]
    counter: collections.Counter[str] = collections.Counter()
    for i in range(copies):
        counter.update(words[: i % len(words) + 1])
    return dict(counter)


def test_keyed_word_count_on_two_taskmanagers_is_exact_and_cleans_up(
    cluster_factory: Callable[..., Cluster], tmp_path: Path
) -> None:
    cluster = cluster_factory()
    cluster.start_jobmanager()
    tm1, tm2 = cluster.start_taskmanager(), cluster.start_taskmanager()
    out = tmp_path / "out"
    result = cluster.flink("run", "-py", str(HERE / "word_count_job.py"), str(out), "500")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Job has been submitted with JobID" in result.stdout
    final: dict[str, int] = {}
    for word, count in read_collected(out):
        final[word] = max(final.get(word, 0), count)
    assert final == expected_counts(500)
    # both TaskManagers ran a share of the work (p=2, one slot each)
    assert "RUNNING" in tm1.output() or "FINISHED" in tm1.output()
    assert "FINISHED" in tm1.output() and "FINISHED" in tm2.output()
    # a bounded job's HA data is gone once it FINISHED: no job graph file remains
    ha_files = [p for p in (cluster.directory / "ha").rglob("*") if p.is_file() and "job-result-store" not in str(p)]
    assert ha_files == []
    results = list((cluster.directory / "ha" / "job-result-store").rglob("*.json"))
    assert len(results) == 1 and not results[0].name.endswith("_DIRTY.json")
