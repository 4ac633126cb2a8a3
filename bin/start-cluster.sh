#!/usr/bin/env bash
# Starts a JobManager for every line of conf/masters (HA) or one here, then a TaskManager for every line of conf/slaves; other hosts over SSH.
# The logic is in ha_flink/deploy/ (see scripts.py); this script only finds the installation's Python.
. "$(dirname "${BASH_SOURCE[0]}")/config.sh"
run_deploy_script start-cluster.sh "$@"
