# ha-flink: every target installs what it needs first (Debian packages, then .venv/), so a fresh machine
# needs only `make run` or `make test`.

PYTHON ?= python3
VENV := .venv
VPY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
DEBIAN_PACKAGES := zookeeper openssh-server default-jre-headless chromium
SUDO := $(shell [ "$$(id -u)" -eq 0 ] || echo sudo)
PYTEST_ARGS ?=

.PHONY: install system-packages lint test test-fast run chaos bench proto certs clean

install: system-packages $(STAMP)

# Installs only what is missing, so a second run costs a dpkg query.
system-packages:
	@command -v apt-get >/dev/null || { echo "make install: apt-get not found; install $(DEBIAN_PACKAGES) and python3-venv by hand" >&2; exit 1; }
	@missing=""; \
	for p in $(DEBIAN_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	$(PYTHON) -c 'import ensurepip' 2>/dev/null || missing="$$missing python3-venv"; \
	if [ -n "$$missing" ]; then \
	  echo "Installing Debian packages:$$missing"; \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "ha-flink needs Python >= 3.11, $(PYTHON) is " + sys.version.split()[0])'
	@[ -x $(VPY) ] || $(PYTHON) -m venv $(VENV)
	$(VPY) -m pip install -q --upgrade pip
	$(VPY) -m pip install -q -e '.[test,dev]'
	@touch $(STAMP)

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports
	$(VENV)/bin/mypy ha_flink

test: install
	$(VPY) -m pytest $(PYTEST_ARGS)

# The pure cores and single-component tests, for the edit-test loop (about 50 s here): everything but the
# `servers` (ZooKeeper ensemble, sshd: tests/ha, tests/deploy), `integration` and `chaos` tests (conftest.py).
test-fast: install
	$(VPY) -m pytest tests -m "not servers and not integration and not chaos" $(PYTEST_ARGS)

# A local HA cluster from conf/ with the bin/ scripts: ZooKeeper (conf/zoo.cfg), the JobManagers of
# conf/masters, the TaskManagers of conf/slaves, and an unbounded example job. Run again, it starts only
# what is not running (a half-running cluster is restarted; its jobs recover from ZooKeeper).
run: install
	@bin/start-zookeeper-quorum.sh
	@state=0; $(VPY) -m ha_flink.deploy.scripts cluster-status >/dev/null 2>&1 || state=$$?; \
	if [ $$state -eq 0 ]; then \
	  echo "The cluster of conf/ is already running:"; $(VPY) -m ha_flink.deploy.scripts cluster-status; \
	else \
	  if [ $$state -eq 2 ]; then echo "Only part of the cluster of conf/ runs; restarting it."; bin/stop-cluster.sh; fi; \
	  bin/start-cluster.sh; \
	fi
	@if bin/flink list 2>/dev/null | grep -qE ' : streaming word count \([A-Z]+\)$$'; then \
	  echo "The example job is already running:"; bin/flink list; \
	else \
	  bin/flink run -d -py examples/streaming_word_count.py; \
	fi
	@echo
	@echo "A local HA cluster runs (ZooKeeper on localhost:2181, conf/ has the rest), with the example job."
	@for master in $$(sed 's/#.*//' conf/masters); do \
	  echo "  dashboard and REST API of a JobManager (any one; /openapi.json lists the paths): http://$$master"; done
	@echo "  Prometheus metrics: each daemon on the first free port of 9249-9260 (metrics.reporter.prom.port)"
	@echo "  jobs: bin/flink list; the job's output: log/flink-$$(id -un)-taskexecutor-*.out; logs: log/"
	@echo "  stop everything: bin/stop-cluster.sh && bin/stop-zookeeper-quorum.sh"

# The long chaos run: 100 leader kills and every other fault kind on a cluster of the bin/ scripts, checked
# for exactly-once output; failover figures go to BENCHMARKS.md. CHAOS_ARGS="--seed N" repeats a run.
CHAOS_ARGS ?=
chaos: install
	$(VPY) bench/chaos.py $(CHAOS_ARGS)

# Benchmarks print their figures and append them to BENCHMARKS.md. Longer ones are run by hand:
# bench/scale.py (3 JobManagers and up to 32 TaskManagers, about 15 min), bench/containers.py, bench/peers.py.
bench: install
	$(VPY) bench/ha_election.py
	$(VPY) bench/runtime.py
	$(VPY) bench/checkpoints.py
	$(VPY) bench/start_cluster.py
	$(VPY) bench/state_backends.py
	$(VPY) bench/windows.py
	$(VPY) bench/rest.py
	$(VPY) bench/sealed_files.py
	$(VPY) bench/parallelism.py
	$(VPY) bench/transport.py

# The generated modules and their mypy stubs (.pyi, from mypy-protobuf) are committed; regenerate them after
# editing ha_flink/rpc/flink.proto.
proto: install
	$(VPY) -m grpc_tools.protoc -I . --python_out=. --grpc_python_out=. \
	  --plugin=protoc-gen-mypy=$(VENV)/bin/protoc-gen-mypy --plugin=protoc-gen-mypy_grpc=$(VENV)/bin/protoc-gen-mypy_grpc \
	  --mypy_out=. --mypy_grpc_out=. ha_flink/rpc/flink.proto

# A test CA and the keystores of a secured cluster (README, "Security"), in CERTS_DIR.
CERTS_DIR ?= conf/ssl
certs: install
	$(VPY) -m ha_flink.testing.certificates $(CERTS_DIR)

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis *.egg-info

# PyFlink's API against ha-flink's (tests/pyflink_api/, which `make test` runs): `make pyflink-api` prints
# today's differences by module; `make pyflink-gaps` rewrites tests/pyflink_api/known_gaps.txt after a change
# closes (or opens) some. The first run downloads PyFlink's wheel into ~/.cache/ha-flink/ (never installed).
.PHONY: pyflink-api pyflink-gaps
pyflink-api: install
	$(VPY) -m tests.pyflink_api.test_api_surface

pyflink-gaps: install
	$(VPY) -m tests.pyflink_api.test_api_surface --write-known-gaps

# Containers (README, "Containers"): `make image` builds the ha-flink image with podman (installing podman,
# buildah, runc and debootstrap first if missing; the base image is a debootstrap of this machine's Debian,
# no registry needed), named by a content hash of its inputs, so an unchanged tree builds nothing.
# `make cluster-up` starts 3 ZooKeeper servers, 3 JobManagers and 2 TaskManagers in containers on a private
# podman network (deploy/podman/cluster.sh) and runs the example job; `make cluster-down` removes them.
.PHONY: image cluster-up cluster-down
image: install
	deploy/container/build-image.sh

cluster-up: image
	deploy/podman/cluster.sh up
	deploy/podman/cluster.sh example

cluster-down:
	deploy/podman/cluster.sh down
