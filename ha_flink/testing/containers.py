"""Containers for tests and for `make image` / `make cluster-up`: podman set up for this machine, the base
image, the ha-flink image, and Kubernetes manifests made playable by `podman kube play`.

- `Podman`: the podman of a run, configured only through files of its own (`CONTAINERS_CONF`,
  `CONTAINERS_STORAGE_CONF` in a per-run folder; the machine's /etc/containers is never read or changed):
  runtime runc (crun refuses this machine's hybrid cgroups), explicit ulimits (a container otherwise gets
  none it can use here), netavark networks configured in that folder, images and layers kept in
  ~/.cache/ha-flink/containers/ so that every run shares them.
- `ensure_podman`: installs podman, buildah, runc, debootstrap (and the helpers kube play and user networks
  need) with apt-get when missing; `podman_problem` says why podman cannot run here, or None.
- `base_image`: `debootstrap --variant=minbase` of the host's Debian suite through the host's apt sources,
  imported with `podman import` (no registry is reachable), named by a hash of its recipe.
- `build_image`: deploy/container/Containerfile over a build context assembled here (the project's files,
  the host's extra CA certificates and pip index settings), named by a content hash of all of it, so a
  second run with nothing changed builds nothing.
- `render_kube`: the manifests of deploy/kubernetes/ with what podman 4.3's kube play lacks done as
  Kubernetes' controllers would: a StatefulSet becomes its pods `<name>-<ordinal>` with their claims
  `<template>-<name>-<ordinal>`; Services are dropped (a pod's name resolves on the podman network), and
  so are containers' ports (podman would publish each on the host).

`python -m ha_flink.testing.containers (image|base|env|render-kube DIR)`: what the Makefile and deploy/ call."""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import yaml

REPO = Path(__file__).resolve().parents[2]
CACHE = Path(os.environ.get("HA_FLINK_CACHE", Path.home() / ".cache" / "ha-flink"))
HOME = CACHE / "containers"
IMAGE = "localhost/ha-flink"
BASE_IMAGE = "localhost/ha-flink-base"
CONTAINERFILE = REPO / "deploy" / "container" / "Containerfile"
# What the image is built from (below REPO): the content hash covers every file of these.
IMAGE_INPUTS = ("pyproject.toml", "setup.cfg", "README.md", "ha_flink", "bin", "daemons", "examples",
                "deploy/container")
DEBIAN_PACKAGES = ("podman", "buildah", "runc", "debootstrap", "catatonit", "netavark", "aardvark-dns",
                   "containernetworking-plugins", "iptables", "uidmap")
# Bump when the base recipe below changes in a way its inputs do not show.
BASE_RECIPE = 4
PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

Say = Callable[[str], None]


class ContainerError(RuntimeError):
    """A podman command failed: the command, its exit status and what it said."""


def _quiet(_: str) -> None:
    pass


@dataclass
class Podman:
    """podman with the configuration files of one run in `conf_dir` (images shared through `HOME`)."""

    conf_dir: Path = HOME / "conf"
    storage_dir: Path = HOME / "storage"
    run_dir: Path = field(default_factory=lambda: _run_dir())

    def __post_init__(self) -> None:
        self.conf_dir.mkdir(parents=True, exist_ok=True)
        (self.conf_dir / "networks").mkdir(exist_ok=True)
        nofile = _hard_nofile()
        # (a rootful podman's own default_ulimits would pass the host's limits, which runc refuses here)
        (self.conf_dir / "containers.conf").write_text(
            "# Written by ha_flink/testing/containers.py for this run.\n"
            "[containers]\n"
            f'default_ulimits = ["nofile={nofile}:{nofile}", "nproc=32768:32768"]\n'
            'log_driver = "k8s-file"\n'
            "[engine]\n"
            'runtime = "runc"\n'
            'cgroup_manager = "cgroupfs"\n'
            'events_logger = "file"\n'
            f'tmp_dir = "{self.run_dir}/libpod"\n'
            "[network]\n"
            'network_backend = "netavark"\n'
            f'network_config_dir = "{self.conf_dir}/networks"\n')
        (self.conf_dir / "storage.conf").write_text(
            "# Written by ha_flink/testing/containers.py for this run.\n"
            "[storage]\n"
            'driver = "overlay"\n'
            f'graphroot = "{self.storage_dir}"\n'
            f'runroot = "{self.run_dir}/storage"\n')

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, "CONTAINERS_CONF": str(self.conf_dir / "containers.conf"),
                "CONTAINERS_STORAGE_CONF": str(self.conf_dir / "storage.conf")}

    def exports(self) -> str:
        """Shell lines that give a shell this podman."""
        env = self.env
        return "".join(f"export {key}={env[key]}\n" for key in ("CONTAINERS_CONF", "CONTAINERS_STORAGE_CONF"))

    def run(self, *args: str, check: bool = True, timeout: float = 120, input: bytes | None = None,
            stdout: Any = subprocess.PIPE) -> subprocess.CompletedProcess[str]:
        try:
            done = subprocess.run(["podman", *args], env=self.env, stdout=stdout, stderr=subprocess.PIPE,
                                  timeout=timeout, input=input.decode() if input is not None else None, text=True)
        except subprocess.TimeoutExpired as error:
            raise ContainerError(f"podman {' '.join(args)} did not end within {timeout} s") from error
        if check and done.returncode != 0:
            raise ContainerError(f"podman {' '.join(args)} exited with {done.returncode}: "
                                 f"{(done.stderr or '').strip()[-2000:]}")
        return done

    def image_exists(self, name: str) -> bool:
        return self.run("image", "exists", name, check=False).returncode == 0

    def image_size(self, name: str) -> int:
        return int(self.run("image", "inspect", "--format", "{{.Size}}", name).stdout.strip())

    def ip(self, container: str, network: str) -> str | None:
        """The container's address on `network` (None: not attached, or not running)."""
        done = self.run("inspect", "--format", "{{json .NetworkSettings.Networks}}", container, check=False)
        if done.returncode != 0:
            return None
        try:
            networks = json.loads(done.stdout) or {}
        except ValueError:
            return None
        return (networks.get(network) or {}).get("IPAddress") or None

    def state(self, container: str) -> str | None:
        """running, paused, exited, ... (None: no such container)."""
        done = self.run("inspect", "--format", "{{.State.Status}}", container, check=False)
        return done.stdout.strip() if done.returncode == 0 else None


def _run_dir() -> Path:
    # runtime state belongs on a tmpfs, where a reboot clears it (stale state after a reboot confuses podman)
    base = Path("/run") if os.geteuid() == 0 else Path(os.environ.get("XDG_RUNTIME_DIR") or tempfile.gettempdir())
    return base / f"ha-flink-containers-{os.geteuid()}"


def _hard_nofile() -> int:
    import resource

    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    return 1048576 if hard == resource.RLIM_INFINITY else int(hard)


# -- the machine ------------------------------------------------------------------------------------------

def ensure_podman(say: Say = print) -> None:
    """Install the Debian packages podman needs here (only the missing ones)."""
    missing = [p for p in DEBIAN_PACKAGES
               if subprocess.run(["dpkg", "-s", p], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode]
    if not missing:
        return
    if not shutil.which("apt-get"):
        raise ContainerError(f"apt-get not found: install {' '.join(missing)} by hand")
    sudo = [] if os.geteuid() == 0 else ["sudo", "-n"]
    say(f"Installing Debian packages: {' '.join(missing)}")
    for command in (["apt-get", "update", "-qq"],
                    ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing]):
        done = subprocess.run([*sudo, *command], env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=900)
        if done.returncode != 0:
            raise ContainerError(f"{' '.join(command)} failed: {done.stdout[-2000:]}")


def podman_problem(podman: Podman | None = None) -> str | None:
    """Why podman cannot run containers on this machine (None: it can): what was tried and what it said."""
    if os.geteuid() != 0:
        return "the container tests need root (a rootful podman: rootless podman has no bridge networks here)"
    try:
        ensure_podman(_quiet)
    except (ContainerError, OSError, subprocess.TimeoutExpired) as error:
        return f"podman is not installed and could not be: {error}"
    podman = podman or Podman()
    try:
        podman.run("info", "--format", "{{.Host.OCIRuntime.Name}}", timeout=60)
    except ContainerError as error:
        return f"podman cannot run here: {error}"
    return None


# -- the base image ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class AptSource:
    """The host's Debian suite and mirror, and its deb822 sources file (copied into the image as is)."""

    suite: str
    mirror: str
    sources: str  # the text of a sources file for the image ('' if the host has none to copy)


def host_apt_source() -> AptSource:
    """The Debian suite and mirror the host's apt uses (its codename, from /etc/os-release)."""
    release = _os_release()
    if release.get("ID") != "debian":
        return AptSource("stable", "http://deb.debian.org/debian", "")
    suite = release.get("VERSION_CODENAME") or "stable"
    deb822 = Path("/etc/apt/sources.list.d/debian.sources")
    if deb822.is_file():
        text = deb822.read_text()
        for stanza in text.split("\n\n"):
            fields = dict(line.split(":", 1) for line in stanza.splitlines() if ":" in line and not line.startswith("#"))
            if suite in fields.get("Suites", "").split() and fields.get("URIs"):
                return AptSource(suite, fields["URIs"].split()[0].strip(), text)
    legacy = Path("/etc/apt/sources.list")
    if legacy.is_file():
        for line in legacy.read_text().splitlines():
            words = line.split("#", 1)[0].split()
            if len(words) >= 3 and words[0] == "deb" and words[2] == suite:
                mirror = next(w for w in words[1:] if not w.startswith("["))
                return AptSource(suite, mirror, "")
    return AptSource(suite, "http://deb.debian.org/debian", "")


def _os_release() -> dict[str, str]:
    try:
        lines = Path("/etc/os-release").read_text().splitlines()
    except OSError:
        return {}
    return {key: value.strip('"') for key, _, value in (line.partition("=") for line in lines) if key}


def base_image(podman: Podman, say: Say = print) -> str:
    """`localhost/ha-flink-base:<hash>`, made by debootstrap + podman import unless it exists."""
    source = host_apt_source()
    recipe = {"recipe": BASE_RECIPE, "suite": source.suite, "mirror": source.mirror, "sources": source.sources,
              "variant": "minbase"}
    name = f"{BASE_IMAGE}:{_digest(json.dumps(recipe, sort_keys=True).encode())[:16]}"
    if podman.image_exists(name):
        return name
    ensure_podman(say)
    say(f"Building the base image {name}: debootstrap --variant=minbase {source.suite} {source.mirror}")
    started = time.monotonic()
    scratch = HOME / "tmp"
    scratch.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=scratch) as work:
        root = Path(work) / "rootfs"
        done = subprocess.run(["debootstrap", "--variant=minbase", source.suite, str(root), source.mirror],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=1800)
        if done.returncode != 0:
            raise ContainerError(f"debootstrap failed: {done.stdout[-3000:]}")
        if source.sources:  # the host's sources (updates and security too), instead of debootstrap's one line
            (root / "etc/apt/sources.list").unlink(missing_ok=True)
            (root / "etc/apt/sources.list.d/debian.sources").write_text(source.sources)
        for conf in ("99artifact-registry", "99farm-no-dep11"):  # the host's apt settings for its sources
            if (Path("/etc/apt/apt.conf.d") / conf).is_file():
                shutil.copy(Path("/etc/apt/apt.conf.d") / conf, root / "etc/apt/apt.conf.d" / conf)
        _slim(root)
        tar = subprocess.Popen(["tar", "-C", str(root), "--numeric-owner", "-c", "."], stdout=subprocess.PIPE)
        try:
            imported = subprocess.run(["podman", "import", "--change", f"ENV={PATH_ENV}", "--change",
                                       'CMD=["/bin/bash"]', "-", name], stdin=tar.stdout, env=podman.env,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=600)
        finally:
            assert tar.stdout is not None
            tar.stdout.close()
            tar.wait()
        if imported.returncode != 0:
            raise ContainerError(f"podman import failed: {imported.stderr[-2000:]}")
    podman.run("tag", name, f"{BASE_IMAGE}:latest")
    _remove_older_tags(podman, BASE_IMAGE, name)
    say(f"Base image {name} built in {time.monotonic() - started:.0f} s")
    return name


def _slim(root: Path) -> None:
    """What an image never needs, as Debian's own slim images leave it out: debootstrap's downloaded
    packages and package lists (80 MB that no later layer can take back), and (through dpkg's path
    excludes, for every package installed later too) manuals, docs and translations."""
    for folder in (root / "var/cache/apt/archives", root / "var/lib/apt/lists"):
        for path in folder.glob("*"):
            if path.is_file():
                path.unlink()
    (root / "etc/dpkg/dpkg.cfg.d").mkdir(parents=True, exist_ok=True)
    (root / "etc/dpkg/dpkg.cfg.d/ha-flink-slim").write_text(
        "# Written by ha_flink/testing/containers.py: an image needs no manuals, docs or translations.\n"
        "path-exclude /usr/share/doc/*\npath-include /usr/share/doc/*/copyright\n"
        "path-exclude /usr/share/man/*\npath-exclude /usr/share/info/*\n"
        "path-exclude /usr/share/locale/*\npath-include /usr/share/locale/locale.alias\n")
    for share in ("usr/share/man", "usr/share/info", "usr/share/locale"):
        for path in sorted((root / share).glob("*")):
            if path.is_dir():
                shutil.rmtree(path)
            elif path.name != "locale.alias":
                path.unlink()
    # (the JRE's postinst links its manual page there with update-alternatives, and fails without the folder)
    (root / "usr/share/man/man1").mkdir(parents=True, exist_ok=True)


# -- the ha-flink image ------------------------------------------------------------------------------------

def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _input_files() -> list[Path]:
    """Every file the image is built from, relative to REPO, sorted (caches and bytecode left out)."""
    files: list[Path] = []
    for entry in IMAGE_INPUTS:
        path = REPO / entry
        if path.is_file():
            files.append(Path(entry))
            continue
        for file in path.rglob("*"):
            if file.is_file() and "__pycache__" not in file.parts and not file.name.endswith((".pyc", ".pyo")):
                files.append(file.relative_to(REPO))
    return sorted(files)


def host_ca_certificates() -> dict[str, bytes]:
    """The extra CA certificates the host's update-ca-certificates installed (name -> PEM)."""
    folder = Path("/usr/local/share/ca-certificates")
    if not folder.is_dir():
        return {}
    return {path.relative_to(folder).as_posix().replace("/", "_"): path.read_bytes()
            for path in sorted(folder.rglob("*.crt")) if path.is_file()}


def pip_conf_for_image() -> str:
    """pip.conf for inside the image: the system CA bundle (with the host's CAs), and the host's package
    indexes and timeout where they are reachable from a container (http(s), not file:// folders of the host)."""
    settings: dict[str, str] = {}
    try:
        done = subprocess.run([sys.executable, "-m", "pip", "config", "list"], stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL, text=True, timeout=60)
        listed = done.stdout.splitlines()
    except (OSError, subprocess.TimeoutExpired):
        listed = []
    for line in listed:
        key, _, value = line.partition("=")
        name = key.split(".", 1)[-1]
        value = value.strip().strip("'\"")
        if name in ("index-url", "extra-index-url", "trusted-host", "default-timeout", "timeout"):
            settings[name] = value
    for variable, name in (("PIP_INDEX_URL", "index-url"), ("PIP_EXTRA_INDEX_URL", "extra-index-url"),
                           ("PIP_TRUSTED_HOST", "trusted-host"), ("PIP_DEFAULT_TIMEOUT", "default-timeout")):
        if os.environ.get(variable):
            settings[name] = os.environ[variable]
    lines = ["[global]", "cert = /etc/ssl/certs/ca-certificates.crt", "disable-pip-version-check = true"]
    for name in ("index-url", "extra-index-url"):
        urls = [url for url in settings.get(name, "").split() if url.startswith(("http://", "https://"))]
        if urls:
            lines.append(f"{name} = {' '.join(urls)}")
    for name in ("trusted-host", "default-timeout"):
        if settings.get(name):
            lines.append(f"{name} = {settings[name]}")
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class BuiltImage:
    name: str  # localhost/ha-flink:<hash>
    built: bool  # False: it existed (a cache hit)
    seconds: float
    size_bytes: int


def image_inputs_digest(base: str) -> str:
    """The content hash the image is named by: base image, Containerfile, every input file, certs, pip.conf."""
    digest = hashlib.sha256()
    for part in (base.encode(), pip_conf_for_image().encode()):
        digest.update(part + b"\0")
    for name, pem in host_ca_certificates().items():
        digest.update(name.encode() + b"\0" + pem + b"\0")
    for relative in _input_files():
        digest.update(relative.as_posix().encode() + b"\0" + (REPO / relative).read_bytes() + b"\0")
    return digest.hexdigest()


def build_image(podman: Podman | None = None, say: Say = print) -> BuiltImage:
    """The ha-flink image for the project as it is now, built unless one of the same inputs exists."""
    podman = podman or Podman()
    started = time.monotonic()
    base = base_image(podman, say)
    name = f"{IMAGE}:{image_inputs_digest(base)[:16]}"
    if podman.image_exists(name):
        podman.run("tag", name, f"{IMAGE}:latest")
        return BuiltImage(name, False, time.monotonic() - started, podman.image_size(name))
    say(f"Building {name} from {CONTAINERFILE.relative_to(REPO)}")
    scratch = HOME / "tmp"
    scratch.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=scratch) as work:
        context = Path(work)
        for relative in _input_files():
            (context / relative).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / relative, context / relative)
        (context / "certs").mkdir()
        for cert_name, pem in host_ca_certificates().items():
            (context / "certs" / cert_name).write_bytes(pem)
        (context / "pip.conf").write_text(pip_conf_for_image())
        done = podman.run("build", "--layers", "--build-arg", f"BASE={base}", "-f",
                          str(context / "deploy/container/Containerfile"), "-t", name, str(context),
                          timeout=3600, stdout=None)
        del done
    podman.run("tag", name, f"{IMAGE}:latest")
    _remove_older_tags(podman, IMAGE, name)
    seconds = time.monotonic() - started
    size = podman.image_size(name)
    say(f"Image {name} built in {seconds:.0f} s, {size / 1e6:.0f} MB")
    return BuiltImage(name, True, seconds, size)


def _remove_older_tags(podman: Podman, repository: str, current: str) -> None:
    """Untag the images of earlier inputs (their layers that the current image shares stay); one a container
    or another image still uses is kept (podman refuses without -f)."""
    listed = podman.run("images", "--format", "{{.Repository}}:{{.Tag}}", check=False).stdout.split()
    for name in listed:
        if name.startswith(f"{repository}:") and name not in (current, f"{repository}:latest"):
            podman.run("rmi", name, check=False)


# -- Kubernetes manifests for podman kube play -------------------------------------------------------------

def render_kube(documents: Iterable[dict[str, Any]], image: str | None = None) -> list[dict[str, Any]]:
    """The manifests as podman 4.3's kube play can run them (it knows Pod, Deployment, ConfigMap and
    PersistentVolumeClaim): each StatefulSet becomes its pods, named and with claims as Kubernetes' controller
    names them; Services go (on a podman network every pod's name resolves, which the per-pod Services give
    in Kubernetes); containers' `ports` go (podman would publish each on the host); `image` (if given)
    replaces the ha-flink image everywhere."""
    rendered: list[dict[str, Any]] = []
    for document in documents:
        if not document:
            continue
        kind = document.get("kind")
        if kind == "Service":
            continue
        if kind == "StatefulSet":
            rendered += _statefulset_pods(document)
        else:
            rendered.append(document)
    for document in rendered:
        for container in _containers(document):
            # podman publishes a containerPort on the host's same port (Kubernetes never does): three
            # JobManagers could not start, and no port needs publishing on the pods' own network
            container.pop("ports", None)
            if image is not None and str(container.get("image", "")).startswith(IMAGE):
                container["image"] = image
    return rendered


def _containers(document: dict[str, Any]) -> list[dict[str, Any]]:
    spec = document.get("spec") or {}
    pod_spec = (spec.get("template") or {}).get("spec") if document.get("kind") == "Deployment" else spec
    return list((pod_spec or {}).get("containers") or []) + list((pod_spec or {}).get("initContainers") or [])


def _statefulset_pods(statefulset: dict[str, Any]) -> list[dict[str, Any]]:
    name = statefulset["metadata"]["name"]
    spec = statefulset["spec"]
    template = spec["template"]
    documents: list[dict[str, Any]] = []
    for ordinal in range(int(spec.get("replicas", 1))):
        pod_name = f"{name}-{ordinal}"
        pod_spec = json.loads(json.dumps(template["spec"]))
        pod_spec["hostname"] = pod_name
        volumes = pod_spec.setdefault("volumes", [])
        for claim in spec.get("volumeClaimTemplates") or []:
            claim_name = f"{claim['metadata']['name']}-{pod_name}"
            volumes.append({"name": claim["metadata"]["name"], "persistentVolumeClaim": {"claimName": claim_name}})
            documents.append({"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                              "metadata": {"name": claim_name}, "spec": claim.get("spec", {})})
        labels = {**(template.get("metadata") or {}).get("labels", {}),
                  "statefulset.kubernetes.io/pod-name": pod_name}
        documents.append({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": pod_name, "labels": labels},
                          "spec": pod_spec})
    return documents


def load_manifests(directory: Path) -> list[dict[str, Any]]:
    documents: list[dict[str, Any]] = []
    for path in sorted(directory.glob("*.yaml")):
        documents += [d for d in yaml.safe_load_all(path.read_text()) if d]
    return documents


def write_rendered(directory: Path, out: Path, image: str | None = None) -> Path:
    out.write_text(yaml.safe_dump_all(render_kube(load_manifests(directory), image), sort_keys=False))
    return out


def volumes_of(documents: Sequence[dict[str, Any]]) -> list[str]:
    """The named volumes podman makes for the rendered manifests: one per PersistentVolumeClaim and one per
    ConfigMap a pod mounts (`podman kube down` leaves both behind; a ConfigMap's stale volume would even be
    mounted again by the next play instead of the changed ConfigMap)."""
    return [d["metadata"]["name"] for d in documents if d.get("kind") in ("PersistentVolumeClaim", "ConfigMap")]


# -- command line -----------------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ha_flink.testing.containers")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("image", help="build the ha-flink image unless it exists; prints its name")
    commands.add_parser("base", help="build the base image unless it exists; prints its name")
    commands.add_parser("env", help="print the shell exports of this machine's podman configuration")
    render = commands.add_parser("render-kube", help="deploy/kubernetes/ as podman kube play runs it, on stdout")
    render.add_argument("directory", type=Path)
    render.add_argument("--image", default=None)
    args = parser.parse_args(argv)
    try:
        if args.command == "env":
            print(Podman().exports(), end="")
            return 0
        if args.command == "render-kube":
            print(yaml.safe_dump_all(render_kube(load_manifests(args.directory), args.image), sort_keys=False), end="")
            return 0
        problem = podman_problem()
        if problem is not None:
            print(f"cannot build: {problem}", file=sys.stderr)
            return 1
        podman = Podman()
        if args.command == "base":
            print(base_image(podman, lambda line: print(line, file=sys.stderr)))
            return 0
        built = build_image(podman, lambda line: print(line, file=sys.stderr, flush=True))
        state = "built" if built.built else "up to date"
        print(f"{built.name} ({state}, {built.seconds:.0f} s, {built.size_bytes / 1e6:.0f} MB; also {IMAGE}:latest)")
        return 0
    except ContainerError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
