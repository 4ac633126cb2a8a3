#!/usr/bin/env bash
# Usage: jobmanager.sh ((start|start-foreground) [host] [webui-port])|stop|stop-all
# The logic is in ha_flink/deploy/ (see scripts.py); this script only finds the installation's Python.
. "$(dirname "${BASH_SOURCE[0]}")/config.sh"
run_deploy_script jobmanager.sh "$@"
