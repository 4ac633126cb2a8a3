"""PyFlink's own DataStream example programs (from its wheel), run with only `pyflink.` changed to
`ha_flink.`, must print what real PyFlink printed (recorded by record_examples.py, stored in examples/).
Lines are compared as a multiset (parallel subtasks interleave), without the lines PyFlink's own Python
side prints about itself (Beam and Cython notices).

KNOWN_DIFFERENCES lists the examples that do not match yet, with why; the test fails when one of them
matches (delete its line then), as known_gaps.txt does for names."""

from __future__ import annotations

import collections
import re
import subprocess
import sys
from pathlib import Path

import pytest

from ha_flink.testing.pyflink_wheel import PyFlinkUnavailable, pyflink_source
from tests.pyflink_api.record_examples import RECORDED, recorded_name, runnable_examples

PYFLINK_NOTICES = ("Using Any for unsupported type", "No module named google.cloud", "PYFLINK_CYTHON_ENABLED")

KNOWN_DIFFERENCES: dict[str, str] = {}  # none left: keys land where PyFlink's JVM puts them (runtime/key_groups.py)

# Examples whose records reach a subtask that Flink itself picks at random: a rebalance (here, as in
# Flink's RebalancePartitioner) starts its round robin at a random channel, so PyFlink's own `N> ` prefixes
# change from run to run. Their lines are compared without the prefix (each line must still have one).
RANDOM_SUBTASKS = {"process_json_data"}
_PREFIX = re.compile(r"^\d+> ")


def _lines(text: str, strip_prefix: bool = False) -> collections.Counter[str]:
    lines = [line for line in text.splitlines() if line.strip() and not line.startswith(PYFLINK_NOTICES)]
    if strip_prefix:
        assert all(_PREFIX.match(line) for line in lines), f"a line without its subtask prefix in {lines}"
        lines = [_PREFIX.sub("", line) for line in lines]
    return collections.Counter(lines)


def _examples() -> list[Path]:
    try:
        return runnable_examples()
    except PyFlinkUnavailable as error:
        pytest.skip(f"PyFlink's wheel is not available: {error}")


def _run_ported(example: Path, folder: Path) -> subprocess.CompletedProcess[str]:
    source = example.read_text().replace("from pyflink.", "from ha_flink.").replace("import pyflink.", "import ha_flink.")
    assert "pyflink" not in source.replace("PyFlink", "").replace("pyflink_", ""), f"{example}: more than the import root"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / example.name).write_text(source)
    return subprocess.run([sys.executable, example.name], cwd=folder, capture_output=True, text=True, timeout=300)


def test_every_runnable_example_has_a_recording() -> None:
    examples = _examples()
    root = pyflink_source() / "examples" / "datastream"
    names = {recorded_name(example, root) for example in examples}
    assert names == {path.stem for path in RECORDED.glob("*.out")}
    assert set(KNOWN_DIFFERENCES) <= names


def test_pyflinks_examples_print_what_pyflink_prints(tmp_path: Path) -> None:
    root = pyflink_source() / "examples" / "datastream"
    problems = []
    for example in _examples():
        name = recorded_name(example, root)
        done = _run_ported(example, tmp_path / name)
        if done.returncode != 0:
            problems.append(f"{name}: exit {done.returncode}\n{done.stderr[-1500:]}")
            continue
        strip = name in RANDOM_SUBTASKS
        expected, got = _lines((RECORDED / f"{name}.out").read_text(), strip), _lines(done.stdout, strip)
        same = expected == got
        if same and name in KNOWN_DIFFERENCES:
            problems.append(f"{name}: matches PyFlink now; delete it from KNOWN_DIFFERENCES")
        elif not same and name not in KNOWN_DIFFERENCES:
            problems.append(f"{name}: differs from PyFlink's output:\n  missing {sorted((expected - got).elements())[:10]}"
                            f"\n  extra {sorted((got - expected).elements())[:10]}")
    assert not problems, "\n".join(problems)
