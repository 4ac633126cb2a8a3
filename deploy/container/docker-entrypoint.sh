#!/usr/bin/env bash
# The ha-flink image's entry point, with the commands and settings of Flink's docker-entrypoint.sh:
#
#   jobmanager [host] [webui-port]   a JobManager in the foreground (bin/jobmanager.sh start-foreground)
#   taskmanager [-D key=value ...]   a TaskManager in the foreground (bin/taskmanager.sh start-foreground)
#   zookeeper [peer id]              ZooKeeper server <peer id> of conf/zoo.cfg (Debian's server), in the
#                                    foreground; the id defaults to $ZOO_MY_ID, else the ordinal of a
#                                    StatefulSet pod's host name plus one (zookeeper-0 is server 1)
#   help                             this text
#   anything else                    run as given (bin/flink run ..., bash)
#
# Settings: FLINK_PROPERTIES holds lines of `key: value` appended to the config file (the later value of a
# key wins; its earlier line is commented out), as in Flink's image; JOB_MANAGER_RPC_ADDRESS sets jobmanager.rpc.address. ZOO_SERVERS
# ("server.1=zk-1:2888:3888;2181 server.2=...") replaces the server lines of zoo.cfg, and ZOO_CFG_EXTRA
# ("tickTime=200 cnxTimeout=1000") sets those keys in it (as the zookeeper image's variables). The conf dir
# (/opt/flink/conf, or $FLINK_CONF_DIR) may be a read-only mount such as a ConfigMap: it is copied to a
# writable folder first, and the daemons read that copy.
#
# The address a daemon advertises (in ZooKeeper, to the TaskManagers and its peers): FLINK_ADVERTISED_HOST,
# where `ip` means the container's own IP (a Kubernetes pod's, whose host name no DNS resolves); unset, the
# host name (a container's name on a podman network: it resolves even after a restart changed the IP).
set -euo pipefail

FLINK_HOME="${FLINK_HOME:-/opt/flink}"
CONF_SOURCE="${FLINK_CONF_DIR:-$FLINK_HOME/conf}"
CONF_RUN="${FLINK_RUN_CONF_DIR:-/tmp/ha-flink-conf}"

usage() {
    sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'
}

prepare_configuration() {
    rm -rf "$CONF_RUN"
    mkdir -p "$CONF_RUN"
    cp -rL "$CONF_SOURCE"/. "$CONF_RUN"/ 2>/dev/null || cp -r "$CONF_SOURCE"/. "$CONF_RUN"/
    local conf_file="$CONF_RUN/config.yaml"
    [ -f "$conf_file" ] || conf_file="$CONF_RUN/flink-conf.yaml"
    # (JOB_MANAGER_RPC_ADDRESS first, so that FLINK_PROPERTIES can still override it)
    local properties="${JOB_MANAGER_RPC_ADDRESS:+jobmanager.rpc.address: $JOB_MANAGER_RPC_ADDRESS}"
    properties="${properties:+$properties
}${FLINK_PROPERTIES:-}"
    if [ -n "$properties" ]; then
        # The earlier line of a key given again is commented out (the later value wins either way; this
        # only spares every daemon and client the loader's "already set" warning for each such key).
        local line key
        while IFS= read -r line; do
            if [[ "$line" =~ ^[[:space:]]*([A-Za-z0-9_.-]+)[[:space:]]*: ]]; then
                key="${BASH_REMATCH[1]//./\\.}"
                sed -i "s/^\([[:space:]]*${key}[[:space:]]*:\)/# (replaced by FLINK_PROPERTIES) \1/" "$conf_file"
            fi
        done <<< "$properties"
        printf '\n%s\n' "$properties" >> "$conf_file"
    fi
    export FLINK_CONF_DIR="$CONF_RUN"
}

advertised_host() {
    case "${FLINK_ADVERTISED_HOST:-}" in
        "") hostname ;;
        ip) getent hosts "$(hostname)" | awk '{ print $1; exit }' ;;
        *) printf '%s\n' "$FLINK_ADVERTISED_HOST" ;;
    esac
}

zookeeper_id() {
    if [ -n "${1:-}" ]; then
        printf '%s\n' "$1"
    elif [ -n "${ZOO_MY_ID:-}" ]; then
        printf '%s\n' "$ZOO_MY_ID"
    elif [[ "$(hostname)" =~ -([0-9]+)$ ]]; then
        printf '%s\n' "$(( BASH_REMATCH[1] + 1 ))"
    else
        echo "zookeeper: no peer id: give one (zookeeper <id>), set ZOO_MY_ID, or run as a StatefulSet pod (name-N)" >&2
        exit 1
    fi
}

# Until every server of zoo.cfg has an address (at most ZOO_PEER_WAIT seconds, 60 by default). A peer
# whose name did not resolve when the server started stays unresolved in ZooKeeper 3.8's learner: on a
# podman network a pod's name resolves only once the pod exists, so the first server of a StatefulSet
# started alone never joined its ensemble. (Under Kubernetes the per-pod Services resolve from the start.)
wait_for_peers() {
    local deadline=$((SECONDS + ${ZOO_PEER_WAIT:-60})) host missing
    while :; do
        missing=""
        for host in $(sed -n 's/^[[:space:]]*server\.[0-9]*[[:space:]]*=[[:space:]]*\([^:;]*\).*/\1/p' "$1"); do
            getent hosts "$host" >/dev/null || missing="$missing $host"
        done
        if [ -z "$missing" ] || [ "$SECONDS" -ge "$deadline" ]; then
            [ -z "$missing" ] || echo "zookeeper: starting although these peers have no address yet:$missing" >&2
            return 0
        fi
        sleep 0.5
    done
}

command="${1:-help}"
[ $# -gt 0 ] && shift
case "$command" in
    jobmanager)
        prepare_configuration
        if [ $# -eq 0 ]; then
            set -- "$(advertised_host)"
        fi
        exec "$FLINK_HOME/bin/jobmanager.sh" start-foreground "$@"
        ;;
    taskmanager)
        prepare_configuration
        exec "$FLINK_HOME/bin/taskmanager.sh" start-foreground -D "taskmanager.host=$(advertised_host)" "$@"
        ;;
    zookeeper)
        prepare_configuration
        id="$(zookeeper_id "${1:-}")"
        if [ -n "${ZOO_SERVERS:-}" ]; then
            sed -i '/^[[:space:]]*server\.[0-9]*[[:space:]]*=/d' "$CONF_RUN/zoo.cfg"
            printf '%s\n' $ZOO_SERVERS >> "$CONF_RUN/zoo.cfg"
        fi
        for setting in ${ZOO_CFG_EXTRA:-}; do
            sed -i "/^[[:space:]]*${setting%%=*}[[:space:]]*=/d" "$CONF_RUN/zoo.cfg"
            printf '%s\n' "$setting" >> "$CONF_RUN/zoo.cfg"
        done
        wait_for_peers "$CONF_RUN/zoo.cfg"
        exec "$FLINK_HOME/bin/flink-daemon.sh" start-foreground zookeeper --zkConfigFile "$CONF_RUN/zoo.cfg" --peerId "$id"
        ;;
    help|--help|-h)
        usage
        ;;
    *)
        prepare_configuration
        exec "$command" "$@"
        ;;
esac
