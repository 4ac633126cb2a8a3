"""The container tests' set-up: podman installed and configured for this run (ha_flink/testing/containers.py:
runc, explicit ulimits, CONTAINERS_CONF and CONTAINERS_STORAGE_CONF in the run's own folder), the base image
and the ha-flink image built unless images of the same inputs exist (~/.cache/ha-flink/containers/).

The tests skip, saying why, only where podman cannot run containers on this machine; a failing image build
is a failure, not a skip."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest

from ha_flink.testing.container_chaos import TEST_CLUSTER_PREFIX
from ha_flink.testing.containers import BuiltImage, Podman, build_image, podman_problem


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "containers: runs podman containers of the ha-flink image (integration/containers)")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).resolve().parent
    for item in items:
        if here in Path(item.fspath).resolve().parents:
            item.add_marker("containers")
            # the first build on a fresh machine (base image, Debian packages, PyPI wheels) takes minutes
            item.add_marker(pytest.mark.timeout(1500))


@pytest.fixture(scope="session")
def podman(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Podman]:
    engine = Podman(tmp_path_factory.mktemp("podman-conf"))
    problem = podman_problem(engine)
    if problem is not None:
        pytest.skip(f"podman cannot run containers here: {problem}")
    yield engine
    # every test removes what it started; this catches what a test killed by its timeout could not
    listed = engine.run("ps", "-a", "--format", "{{.ID}} {{index .Labels \"ha-flink.cluster\"}}", check=False)
    leftovers = [line.split()[0] for line in listed.stdout.splitlines()
                 if len(line.split()) > 1 and line.split()[1].startswith(TEST_CLUSTER_PREFIX)]
    if leftovers:
        engine.run("rm", "-f", "-t", "0", *leftovers, check=False)


@pytest.fixture(scope="session")
def image(podman: Podman) -> BuiltImage:
    return build_image(podman, print)
