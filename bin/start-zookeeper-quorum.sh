#!/usr/bin/env bash
# Starts a ZooKeeper server for every server.N line of conf/zoo.cfg (here or over SSH) and waits until they serve.
# Each server JVM gets env.java.opts.all; with SASL in zoo.cfg (authProvider) its JAAS file needs a Server section.
# The logic is in ha_flink/deploy/ (see scripts.py); this script only finds the installation's Python.
. "$(dirname "${BASH_SOURCE[0]}")/config.sh"
run_deploy_script start-zookeeper-quorum.sh "$@"
