#!/usr/bin/env bash
# Builds the ha-flink image (what `make image` runs): podman, buildah, runc and debootstrap installed with
# apt-get if missing, the base image debootstrapped and imported unless it exists, then this folder's
# Containerfile over a build context of the project's files, named localhost/ha-flink:<content hash> and
# tagged :latest. Nothing is built when an image of the same inputs exists. The logic is in
# ha_flink/testing/containers.py; podman's configuration: `python -m ha_flink.testing.containers env`.
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)"
cd "$REPO"
exec "${FLINK_PYTHON:-$REPO/.venv/bin/python}" -m ha_flink.testing.containers image "$@"
