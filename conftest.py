"""Root conftest: the real-server fixtures shared by tests/ and integration/, and the markers each test
gets from where it lives (so `-m "not chaos"`, `-m "not integration"` select what they say):

- `integration`: everything under integration/ (whole-cluster processes: bin/ scripts, daemons, sshd);
- `chaos`: integration/test_chaos.py, the short fault-injection runs (the long ones are `make chaos`);
- `servers`: tests/ha and tests/deploy, which start a ZooKeeper ensemble or an sshd per test."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

pytest_plugins = ["ha_flink.testing.fixtures"]

# The runtime's records reach pytest's log capture (caplog, the report) through the root logger: a handler
# of the suite's own tells local runs not to route them into a log file (ha_flink/datastream/local_logging.py).
logging.getLogger("ha_flink").addHandler(logging.NullHandler())

ROOT = Path(__file__).resolve().parent
_BY_FOLDER = {"integration": "integration", "tests/ha": "servers", "tests/deploy": "servers"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        try:
            relative = Path(item.fspath).resolve().relative_to(ROOT).as_posix()
        except ValueError:
            continue
        for folder, marker in _BY_FOLDER.items():
            if relative.startswith(folder + "/"):
                item.add_marker(marker)
        if relative == "integration/test_chaos.py":
            item.add_marker("chaos")
