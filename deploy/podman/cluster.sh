#!/usr/bin/env bash
# A standalone HA session cluster in podman containers on a private network: 3 ZooKeeper servers, 3
# JobManagers that elect a leader, 2 TaskManagers, all of the ha-flink image (make image).
#
#   deploy/podman/cluster.sh up            start what is not running; wait for a leader with every TaskManager
#   deploy/podman/cluster.sh example       submit examples/streaming_word_count.py unless it runs
#   deploy/podman/cluster.sh status        the containers and the leader
#   deploy/podman/cluster.sh flink ARGS    the flink CLI in a client container on the network (finds the
#                                          leader through ZooKeeper): ... flink list
#   deploy/podman/cluster.sh podman ARGS   podman with this cluster's configuration: ... podman logs ha-flink-tm-1
#   deploy/podman/cluster.sh down [--volumes]   remove the containers and the network (and the data volume)
#
# `make cluster-up` is `up` then `example`; `make cluster-down` is `down`. Names: containers
# <cluster>-zk-N, <cluster>-jm-N, <cluster>-tm-N on the network <cluster>; every container carries the
# label ha-flink.cluster=<cluster>, so `down` removes exactly this cluster's.
#
# Settings (environment):
#   HA_FLINK_CLUSTER      the cluster's name (default ha-flink); also its high-availability.cluster-id
#   HA_FLINK_IMAGE        the image (default localhost/ha-flink:latest)
#   HA_FLINK_DATA         a host folder for HA storage, checkpoints, savepoints (and what a job writes there),
#                         shared by every JobManager and TaskManager; default: the named volume <cluster>-data
#   HA_FLINK_PROPERTIES   extra `key: value` lines for every JobManager and TaskManager (FLINK_PROPERTIES)
#   HA_FLINK_REST_PORT    the host port of the first JobManager's REST API and dashboard (127.0.0.1, the
#                         others on the next ports); default 18081, `none`: not published
#   HA_FLINK_ZOO_CFG      zoo.cfg settings for every ZooKeeper server ("tickTime=200 cnxTimeout=1000")
#   HA_FLINK_CLIENT_MOUNT a volume (host:container) for the client container of `flink`, e.g. a job's folder
#   HA_FLINK_JOBMANAGERS, HA_FLINK_TASKMANAGERS, HA_FLINK_ZOOKEEPERS   how many (3, 2, 3)
#
# podman is configured by files of its own (CONTAINERS_CONF, CONTAINERS_STORAGE_CONF): unset, they come from
# `python -m ha_flink.testing.containers env` (runc, explicit ulimits, images under ~/.cache/ha-flink/).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)"
REPO="$(cd "$HERE/../.." && pwd -P)"
PYTHON="${FLINK_PYTHON:-$REPO/.venv/bin/python}"
if [ -z "${CONTAINERS_CONF:-}" ]; then
    eval "$("$PYTHON" -m ha_flink.testing.containers env)"
fi

CLUSTER="${HA_FLINK_CLUSTER:-ha-flink}"
IMAGE="${HA_FLINK_IMAGE:-localhost/ha-flink:latest}"
REST_PORT="${HA_FLINK_REST_PORT:-18081}"
JOBMANAGERS="${HA_FLINK_JOBMANAGERS:-3}"
TASKMANAGERS="${HA_FLINK_TASKMANAGERS:-2}"
ZOOKEEPERS="${HA_FLINK_ZOOKEEPERS:-3}"
NETWORK="$CLUSTER"
LABEL="ha-flink.cluster=$CLUSTER"
if [ -n "${HA_FLINK_DATA:-}" ]; then
    DATA_MOUNT="$HA_FLINK_DATA:/opt/flink/data"
else
    DATA_MOUNT="$CLUSTER-data:/opt/flink/data"
fi

zookeeper_servers() {
    local servers="" i
    for i in $(seq 1 "$ZOOKEEPERS"); do servers+="server.$i=$CLUSTER-zk-$i:2888:3888;2181 "; done
    printf '%s\n' "${servers% }"
}

quorum() {
    local hosts="" i
    for i in $(seq 1 "$ZOOKEEPERS"); do hosts+="$CLUSTER-zk-$i:2181,"; done
    printf '%s\n' "${hosts%,}"
}

# The settings every JobManager, TaskManager and client gets, on top of the image's conf.
properties() {
    printf 'high-availability.zookeeper.quorum: %s\nhigh-availability.cluster-id: /%s\n%s\n' \
        "$(quorum)" "$CLUSTER" "${HA_FLINK_PROPERTIES:-}"
}

exists() { podman container exists "$1"; }

# Start a container unless it runs: a stopped one is started again (it keeps its name and file system).
ensure() {
    local name="$1"; shift
    if exists "$name"; then
        if [ "$(podman inspect --format '{{.State.Status}}' "$name")" != running ]; then
            podman start "$name" >/dev/null
            echo "started $name again"
        fi
        return
    fi
    # (--tz=local: the daemons' log lines carry the host's local time, as every other log here)
    podman run -d --name "$name" --hostname "$name" --network "$NETWORK" --label "$LABEL" --tz=local "$@" >/dev/null
    echo "started $name"
}

# What the dashboard's /overview says on one JobManager, asked from inside its container.
overview() {
    podman exec "$1" python3 -c '
import json, sys, urllib.request
try:
    print(json.load(urllib.request.urlopen("http://127.0.0.1:8081/overview", timeout=2))["taskmanagers"])
except Exception:
    print(-1)' 2>/dev/null || echo -1
}

# A ZooKeeper server's mode (leader, follower, standalone; "none": it does not serve), asked inside its container.
zookeeper_mode() {
    podman exec "$1" python3 -c '
from ha_flink.deploy.zookeeper import server_mode
print(server_mode("127.0.0.1", 2181) or "none")' 2>/dev/null || echo none
}

# Fails, naming the container and showing the end of its log, when one of the given containers has exited:
# a daemon that gave up (a JobManager without ZooKeeper for its connection-timeout) does not come back by
# itself, and waiting out the start timeout would only hide why.
none_exited() {
    local name state
    for name in "$@"; do
        state="$(podman inspect --format '{{.State.Status}} {{.State.ExitCode}}' "$name" 2>/dev/null || echo missing)"
        case "$state" in
            running*) ;;
            *)
                echo "[ERROR] the container $name is not running ($state); the end of its log (podman logs $name):" >&2
                podman logs --tail 15 "$name" 2>&1 | sed 's/^/    /' >&2
                return 1
                ;;
        esac
    done
}

# Until a majority of the ZooKeeper servers serve. The JobManagers and TaskManagers start only then: each
# gives up after high-availability.zookeeper.client.connection-timeout (15 s) without a quorum, and a
# server's JVM took 20 s to start on a loaded machine here (resolving its peers' names).
wait_zookeeper() {
    local deadline=$((SECONDS + ${HA_FLINK_START_TIMEOUT:-180})) i serving modes mode
    local needed=$((ZOOKEEPERS / 2 + 1))
    while [ "$SECONDS" -lt "$deadline" ]; do
        serving=0 modes=""
        for i in $(seq 1 "$ZOOKEEPERS"); do
            mode="$(zookeeper_mode "$CLUSTER-zk-$i")"
            modes+=" $CLUSTER-zk-$i:$mode"
            [ "$mode" = none ] || serving=$((serving + 1))
        done
        if [ "$serving" -ge "$needed" ]; then
            return 0
        fi
        none_exited $(for i in $(seq 1 "$ZOOKEEPERS"); do echo "$CLUSTER-zk-$i"; done) || return 1
        sleep 0.5
    done
    echo "[ERROR] fewer than $needed of $ZOOKEEPERS ZooKeeper servers serve after ${HA_FLINK_START_TIMEOUT:-180} s:$modes; see podman logs $CLUSTER-zk-1" >&2
    return 1
}

wait_ready() {
    local deadline=$((SECONDS + ${HA_FLINK_START_TIMEOUT:-180})) i daemons=()
    for i in $(seq 1 "$JOBMANAGERS"); do daemons+=("$CLUSTER-jm-$i"); done
    for i in $(seq 1 "$TASKMANAGERS"); do daemons+=("$CLUSTER-tm-$i"); done
    while [ "$SECONDS" -lt "$deadline" ]; do
        for i in $(seq 1 "$JOBMANAGERS"); do
            if [ "$(overview "$CLUSTER-jm-$i")" = "$TASKMANAGERS" ]; then
                echo "The cluster $CLUSTER runs: a leader and $TASKMANAGERS TaskManagers."
                return 0
            fi
        done
        none_exited "${daemons[@]}" || return 1
        sleep 1
    done
    echo "[ERROR] no leader with $TASKMANAGERS TaskManagers after ${HA_FLINK_START_TIMEOUT:-180} s; see podman logs $CLUSTER-jm-1" >&2
    return 1
}

up() {
    if ! podman image exists "$IMAGE"; then
        echo "[ERROR] no image $IMAGE: run 'make image' first" >&2
        exit 1
    fi
    podman network exists "$NETWORK" || podman network create --label "$LABEL" "$NETWORK" >/dev/null
    local i publish subnet fixed
    # A ZooKeeper server keeps its address across a restart, as a Kubernetes Service gives it: ZooKeeper 3.8
    # resolves a peer's name once for its connection to the ensemble's leader, so a leader that came back
    # with another IP was never reached again (the two left re-elected every initLimit). The other
    # containers take any address: everything finds them by name.
    subnet="$(podman network inspect "$NETWORK" --format '{{range .Subnets}}{{.Subnet}}{{end}}')"
    for i in $(seq 1 "$ZOOKEEPERS"); do
        fixed=()
        if [[ "$subnet" =~ ^([0-9]+\.[0-9]+\.[0-9]+)\.0/24$ ]]; then fixed=(--ip "${BASH_REMATCH[1]}.$((250 + i))"); fi
        ensure "$CLUSTER-zk-$i" "${fixed[@]}" -e "ZOO_MY_ID=$i" -e "ZOO_SERVERS=$(zookeeper_servers)" \
            -e "ZOO_CFG_EXTRA=${HA_FLINK_ZOO_CFG:-}" "$IMAGE" zookeeper
    done
    wait_zookeeper
    for i in $(seq 1 "$JOBMANAGERS"); do
        publish=()
        if [ "$REST_PORT" != none ]; then publish=(-p "127.0.0.1:$((REST_PORT + i - 1)):8081"); fi
        ensure "$CLUSTER-jm-$i" "${publish[@]}" -v "$DATA_MOUNT" -e "FLINK_PROPERTIES=$(properties)" "$IMAGE" jobmanager
    done
    for i in $(seq 1 "$TASKMANAGERS"); do
        ensure "$CLUSTER-tm-$i" -v "$DATA_MOUNT" -e "FLINK_PROPERTIES=$(properties)" "$IMAGE" taskmanager
    done
    wait_ready
    if [ "$REST_PORT" != none ]; then
        for i in $(seq 1 "$JOBMANAGERS"); do
            echo "  dashboard and REST API of $CLUSTER-jm-$i: http://127.0.0.1:$((REST_PORT + i - 1))/"
        done
    fi
}

# The flink CLI in a throw-away client container on the cluster's network.
flink() {
    podman run --rm --network "$NETWORK" --label "$LABEL" --tz=local -v "$DATA_MOUNT" ${HA_FLINK_CLIENT_MOUNT:+-v "$HA_FLINK_CLIENT_MOUNT"} \
        -e "FLINK_PROPERTIES=$(properties)" "$IMAGE" flink "$@"
}

example() {
    local listed errors
    errors="$(mktemp)"
    # (a list that failed says nothing about the job: submitting then could run it twice)
    if ! listed="$(flink list 2>"$errors")"; then
        echo "[ERROR] cannot tell whether the example job runs: flink list failed:" >&2
        sed 's/^/    /' "$errors" "-" <<<"$listed" >&2
        rm -f "$errors"
        return 1
    fi
    rm -f "$errors"
    if printf '%s\n' "$listed" | grep -qE ' : streaming word count \([A-Z]+\)$'; then
        echo "The example job is already running:"
        printf '%s\n' "$listed"
    else
        flink run -d -py examples/streaming_word_count.py
    fi
    echo "  its output: podman logs $CLUSTER-tm-1 (and -tm-2); jobs: deploy/podman/cluster.sh flink list"
    echo "  stop everything: make cluster-down (the data volume stays: deploy/podman/cluster.sh down --volumes)"
}

status() {
    podman ps -a --filter "label=$LABEL" --format '{{.Names}}\t{{.Status}}'
}

down() {
    local ids
    ids="$(podman ps -a -q --filter "label=$LABEL")"
    if [ -n "$ids" ]; then
        # shellcheck disable=SC2086
        podman rm -f -t 0 $ids >/dev/null
    fi
    podman network exists "$NETWORK" && podman network rm -f "$NETWORK" >/dev/null
    if [ "${1:-}" = "--volumes" ] && [ -z "${HA_FLINK_DATA:-}" ]; then
        podman volume rm -f "$CLUSTER-data" >/dev/null 2>&1 || true
    fi
    echo "The cluster $CLUSTER is removed."
}

command="${1:-}"
[ $# -gt 0 ] && shift
case "$command" in
    up) up ;;
    example) example ;;
    status) status ;;
    flink) flink "$@" ;;
    down) down "$@" ;;
    podman) podman "$@" ;;
    *) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
esac
