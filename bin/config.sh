#!/usr/bin/env bash
# Sourced by every bin/ script: finds the installation (FLINK_HOME: the folder above bin/) and the Python
# that runs ha-flink (the installation's .venv/, made by `make install`). Everything else is Python:
# the scripts only hand their arguments to `python -m ha_flink.deploy.scripts <script> ...`.

FLINK_BIN_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)"
FLINK_HOME="$(cd "$FLINK_BIN_DIR/.." && pwd -P)"
export FLINK_HOME

if [ -z "$FLINK_PYTHON" ]; then
    FLINK_PYTHON="$FLINK_HOME/.venv/bin/python"
fi
if [ ! -x "$FLINK_PYTHON" ]; then
    echo "[ERROR] ha-flink is not installed in $FLINK_HOME: $FLINK_PYTHON is missing. Run 'make install' there (or set FLINK_PYTHON)." >&2
    exit 1
fi

# this installation's own modules come first, whatever else the environment has on its path
export PYTHONPATH="$FLINK_HOME${PYTHONPATH:+:$PYTHONPATH}"

# Runs one of the deploy commands with this script's arguments.
run_deploy_script() {
    exec "$FLINK_PYTHON" -m ha_flink.deploy.scripts "$@"
}
