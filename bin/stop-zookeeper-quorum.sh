#!/usr/bin/env bash
# Stops the ZooKeeper servers of conf/zoo.cfg.
# The logic is in ha_flink/deploy/ (see scripts.py); this script only finds the installation's Python.
. "$(dirname "${BASH_SOURCE[0]}")/config.sh"
run_deploy_script stop-zookeeper-quorum.sh "$@"
