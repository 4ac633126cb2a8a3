"""PyFlink 2.3's public API against ha-flink's: every public name of `pyflink.datastream`, `pyflink.common`,
`pyflink.metrics` and their modules (read from PyFlink's wheel by `ha_flink.testing.pyflink_wheel`, never
imported) must exist under `ha_flink.` with the same kind, methods, nested classes, parameters and Generic
parameters, or be listed in left_out.toml with the reason.

Until the API is complete, known_gaps.txt lists today's differences (one per line): they are allowed, and a
line that is no longer a difference fails, so fixing a gap forces deleting its line. Regenerate it with

    .venv/bin/python -m tests.pyflink_api.test_api_surface --write-known-gaps

and print the differences grouped by module (or the example programs and what they need) with

    .venv/bin/python -m tests.pyflink_api.test_api_surface [--examples]

The first run downloads the 2.8 MB wheel into ~/.cache/ha-flink/ (pip); without network and cache the
tests skip, saying why."""

from __future__ import annotations

import argparse
import collections
import fnmatch
import importlib.util
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest

from ha_flink.testing.pyflink_wheel import (
    Difference, PyFlinkUnavailable, Surface, compare, example_needs, ours, pyflink_examples, pyflink_source,
    read_surface,
)

HERE = Path(__file__).resolve().parent
LEFT_OUT = HERE / "left_out.toml"
KNOWN_GAPS = HERE / "known_gaps.txt"


@dataclass(frozen=True, slots=True)
class LeftOut:
    key: str
    reason: str

    @property
    def is_glob(self) -> bool:
        return any(c in self.key for c in "*?[")

    def covers(self, path: str, origin: str) -> bool:
        """Whether this entry covers a PyFlink path (or the path where PyFlink defines it)."""
        if self.is_glob:
            return fnmatch.fnmatchcase(path, self.key) or fnmatch.fnmatchcase(origin, self.key)
        return any(p == self.key or p.startswith(self.key + ".") for p in (path, origin))

    def names(self, path: str, origin: str) -> bool:
        """Whether this entry names the path itself (not only something beneath it)."""
        if self.is_glob:
            return self.covers(path, origin)
        return self.key in (path, origin)


def read_left_out(path: Path = LEFT_OUT) -> list[LeftOut]:
    table = tomllib.loads(path.read_text()).get("left_out", {})
    return [LeftOut(key, str(reason)) for key, reason in table.items()]


def read_known_gaps(path: Path = KNOWN_GAPS) -> list[str]:
    if not path.exists():
        return []
    lines = (line.strip() for line in path.read_text().splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def unexplained(differences: list[Difference], left_out: list[LeftOut]) -> list[Difference]:
    """The differences no left-out entry covers."""
    return [d for d in differences if not any(entry.covers(d.path, d.origin) for entry in left_out)]


def module_of(difference: Difference) -> str:
    """The PyFlink module a difference is in (`pyflink.datastream.DataStream.x` -> `pyflink.datastream`)."""
    parts = difference.path.split(".")
    for i, part in enumerate(parts):
        if part[:1].isupper() or i == len(parts) - 1:
            return ".".join(parts[:i])
    return difference.path


def write_known_gaps(differences: list[Difference], path: Path = KNOWN_GAPS) -> int:
    by_module: dict[str, list[str]] = collections.defaultdict(list)
    for difference in differences:
        by_module[module_of(difference)].append(str(difference))
    lines = [
        "# Today's differences of ha-flink from PyFlink's API that are neither fixed nor left out",
        "# (tests/pyflink_api/test_api_surface.py). Fixing one fails the test until its line is deleted;",
        "# regenerate: .venv/bin/python -m tests.pyflink_api.test_api_surface --write-known-gaps",
    ]
    for module in sorted(by_module):
        lines += ["", f"# {module} ({len(by_module[module])})", *sorted(by_module[module])]
    path.write_text("\n".join(lines) + "\n")
    return len(differences)


# --- the tests ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def surface() -> Surface:
    try:
        return read_surface()
    except PyFlinkUnavailable as exc:
        pytest.skip(f"PyFlink's source is unavailable: {exc}")


@pytest.fixture(scope="module")
def differences(surface: Surface) -> list[Difference]:
    return compare(surface)


@pytest.fixture(scope="module")
def left_out() -> list[LeftOut]:
    return read_left_out()


def test_every_pyflink_name_exists_or_is_listed_as_left_out(
        differences: list[Difference], left_out: list[LeftOut]) -> None:
    allowed = set(read_known_gaps())
    new = [str(d) for d in unexplained(differences, left_out) if str(d) not in allowed]
    assert not new, (
        f"{len(new)} difference(s) from PyFlink's API: implement them, or list them in "
        f"{LEFT_OUT.name} with the reason (only if they need a JVM):\n  " + "\n  ".join(new))


def test_known_gaps_are_still_differences(differences: list[Difference], left_out: list[LeftOut]) -> None:
    current = {str(d) for d in unexplained(differences, left_out)}
    stale = [line for line in read_known_gaps() if line not in current]
    assert not stale, (
        f"{len(stale)} line(s) of {KNOWN_GAPS.name} are no longer differences (fixed, changed or now left "
        "out): delete them, or regenerate with `.venv/bin/python -m tests.pyflink_api.test_api_surface "
        "--write-known-gaps`:\n  " + "\n  ".join(stale))


def test_left_out_names_are_really_missing(
        surface: Surface, differences: list[Difference], left_out: list[LeftOut]) -> None:
    missing = {d.path for d in differences if d.message.startswith("missing")}

    def is_missing(path: str) -> bool:  # it, or the class or nested class it belongs to
        parts = path.split(".")
        return any(".".join(parts[:i]) in missing for i in range(2, len(parts) + 1))

    paths = surface.paths()
    present: list[str] = []
    for entry in left_out:
        named = [p for p, origin in paths.items() if entry.names(p, origin)]
        if named:
            present += [f"{entry.key}: {ours(p)} exists" for p in named if not is_missing(p)]
        elif _has_module(ours(entry.key)):  # a module entry (`...connectors.kafka`): no ha-flink module of that name
            present.append(f"{entry.key}: module {ours(entry.key)} exists")
    assert not present, f"left out in {LEFT_OUT.name} but present in ha-flink now (delete the entry):\n  " + \
        "\n  ".join(present)


def test_left_out_entries_name_something_pyflink_has(surface: Surface, left_out: list[LeftOut]) -> None:
    paths = surface.paths()
    unknown = [entry.key for entry in left_out
               if not any(entry.covers(p, origin) for p, origin in paths.items())]
    assert not unknown, f"entries of {LEFT_OUT.name} that name nothing in PyFlink {surface.version}'s API:\n  " + \
        "\n  ".join(unknown)
    assert all(entry.reason.strip() for entry in left_out), "every left-out entry needs a reason"


def test_the_examples_need_no_external_systems() -> None:
    try:
        examples = pyflink_examples()
    except PyFlinkUnavailable as exc:
        pytest.skip(f"PyFlink's source is unavailable: {exc}")
    assert examples, "PyFlink's wheel has no DataStream examples"
    for path in examples:
        needs = example_needs(path)
        assert not any(s in c for c in needs.connectors for s in ("kafka", "elasticsearch", "pulsar")), path


def _has_module(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:  # a parent package is missing
        return False


# --- the command line ---------------------------------------------------------------------------------------


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.pyflink_api.test_api_surface",
                                     description="ha-flink's differences from PyFlink's API")
    parser.add_argument("--write-known-gaps", action="store_true", help=f"rewrite {KNOWN_GAPS.name}")
    parser.add_argument("--examples", action="store_true", help="list PyFlink's example programs and their needs")
    args = parser.parse_args(argv)
    if args.examples:
        source = pyflink_source()
        for path in pyflink_examples(source):
            needs = example_needs(path)
            print(f"{path.relative_to(source)}: connectors {', '.join(needs.connectors) or '-'}; "
                  f"Table API {'yes' if needs.table_api else 'no'}; options {' '.join(needs.options) or '-'}")
        return 0
    surface = read_surface()
    gaps = unexplained(compare(surface), read_left_out())
    if args.write_known_gaps:
        print(f"wrote {write_known_gaps(gaps)} differences to {KNOWN_GAPS}")
        return 0
    counts = collections.Counter(module_of(d) for d in gaps)
    for module in sorted(counts):
        print(f"{counts[module]:4d}  {module}")
    print(f"{len(gaps):4d}  differences not left out (PyFlink {surface.version}, {len(surface.names)} public names)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
