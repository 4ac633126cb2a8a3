#!/usr/bin/env bash
# Usage: flink-daemon.sh (start|start-foreground|stop|stop-all|status) (standalonesession|taskexecutor|zookeeper) [args]
# The logic is in ha_flink/deploy/ (see scripts.py); this script only finds the installation's Python.
. "$(dirname "${BASH_SOURCE[0]}")/config.sh"
run_deploy_script flink-daemon.sh "$@"
