"""The containerized HA cluster as a new user starts it: deploy/podman/cluster.sh up (what `make cluster-up`
runs: 3 ZooKeeper servers, 3 JobManagers, 2 TaskManagers on a private podman network) and the example job;
and the Kubernetes manifests of deploy/kubernetes/ under `podman kube play` (a real container runtime, no
Kubernetes API server): the same standalone HA session cluster, a bounded job run to its end on it."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import yaml

from ha_flink.testing import container_chaos as C
from ha_flink.testing.containers import REPO, BuiltImage, Podman, load_manifests, volumes_of, render_kube
from ha_flink.testing.processes import wait_for


def test_cluster_up_runs_the_example_job(tmp_path: Path, podman: Podman, image: BuiltImage) -> None:
    cluster = C.ContainerCluster(tmp_path / "cluster", podman, image.name, settings={})
    try:
        cluster.up()
        assert sorted(cluster.containers()) == sorted(cluster.zookeepers + cluster.jobmanagers + cluster.taskmanagers)
        done = cluster.script("example")
        assert done.returncode == 0 and "Job has been submitted with JobID" in done.stdout, done.stdout + done.stderr
        # the word count prints its counts on the TaskManagers' stdout (podman logs)
        wait_for(lambda: any(") " in line or line.endswith(")") for tm in cluster.taskmanagers
                             for line in podman.run("logs", tm).stdout.splitlines() if "> (" in line),
                 90, 0.5, "the example job's output in a TaskManager's log")
        # run again, it starts nothing and submits nothing twice
        again = cluster.script("up")
        assert again.returncode == 0 and "started" not in again.stdout, again.stdout
        assert "already running" in cluster.script("example").stdout
    finally:
        cluster.down()
        C.remove_tree(tmp_path / "cluster")
    assert cluster.containers() == []


def _ask(podman: Podman, network: str, image: str, url: str) -> object:
    """GET a URL from a throw-away container on `network` (pod names resolve only there)."""
    done = podman.run("run", "--rm", "--network", network, image, "python3", "-c",
                      "import sys, urllib.request\n"
                      "try:\n print(urllib.request.urlopen(sys.argv[1], timeout=2).read().decode())\n"
                      "except Exception as e:\n print('null')", url, check=False)
    try:
        return json.loads(done.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return None


def test_the_kubernetes_manifests_run_under_podman_kube_play(tmp_path: Path, podman: Podman,
                                                             image: BuiltImage) -> None:
    documents = render_kube(load_manifests(REPO / "deploy" / "kubernetes"), image.name)
    kinds = sorted({d["kind"] for d in documents})
    assert kinds == ["ConfigMap", "Deployment", "PersistentVolumeClaim", "Pod"], kinds
    rendered = tmp_path / "ha-flink.yaml"
    rendered.write_text(yaml.safe_dump_all(documents, sort_keys=False))
    network = f"hf-kube-{uuid.uuid4().hex[:8]}"
    for volume in volumes_of(documents):  # (left by an earlier run that was killed)
        podman.run("volume", "rm", "-f", volume, check=False)
    podman.run("network", "create", network)
    try:
        podman.run("kube", "play", "--network", network, str(rendered), timeout=300)
        # 3 ZooKeeper pods, 3 JobManager and 2 TaskManager replicas
        pods = podman.run("pod", "ps", "--format", "{{.Name}}").stdout.split()
        assert {"zookeeper-0", "zookeeper-1", "zookeeper-2", "jobmanager-pod-0", "jobmanager-pod-1",
                "jobmanager-pod-2", "taskmanager-pod-0", "taskmanager-pod-1"} <= set(pods), pods
        ready = wait_for(lambda: next((o for jm in ("jobmanager-pod-0", "jobmanager-pod-1", "jobmanager-pod-2")
                                       if isinstance(o := _ask(podman, network, image.name, f"http://{jm}:8081/overview"),
                                                     dict) and o.get("taskmanagers") == 2), None),
                         180, 1, "a leading JobManager with both TaskManagers")
        assert ready["slots-total"] == 4, ready
        config = next(d for d in documents if d["kind"] == "ConfigMap")["data"]["flink-conf.yaml"]
        quorum = next(line for line in config.splitlines() if "zookeeper.quorum" in line)
        cluster_id = next(line for line in config.splitlines() if "cluster-id" in line)
        done = podman.run("run", "--rm", "--network", network, "-e", f"FLINK_PROPERTIES={quorum}\n{cluster_id}",
                          image.name, "flink", "run", "-py", "examples/word_count.py", check=False, timeout=300)
        assert done.returncode == 0, done.stdout + done.stderr
        listed = podman.run("run", "--rm", "--network", network, "-e", f"FLINK_PROPERTIES={quorum}\n{cluster_id}",
                            image.name, "flink", "list", "-a", check=False).stdout
        assert " : word count (FINISHED)" in listed, listed
        # every JobManager replica takes part in the election (a standby may join after the leader led)
        wait_for(lambda: isinstance(ha := _ask(podman, network, image.name, "http://jobmanager-pod-1:8081/cluster/ha"),
                                    dict) and len(ha["masters"]) == 3, 60, 1, "three JobManagers in the election")
    finally:
        podman.run("kube", "down", str(rendered), check=False, timeout=300)
        for volume in volumes_of(documents):
            podman.run("volume", "rm", "-f", volume, check=False)
        podman.run("network", "rm", "-f", network, check=False)
    left = podman.run("pod", "ps", "--format", "{{.Name}}").stdout.split()
    assert not {"zookeeper-0", "jobmanager-pod-0", "taskmanager-pod-0"} & set(left), left
