"""What the data exchange's transport costs per message (issue 18, items 2 and 3): one producer process and
one consumer process on loopback, one subpartition, the runtime's own ResultPartition, InputGate and
credits, and under them:

- `threads`: the runtime's exchange (runtime/network/exchange.py): a thread per connection on each side,
  plain TCP;
- `threads, TLS`: the same with internal TLS (`security.ssl.internal.enabled`, test certificates);
- `grpc`: the exchange it replaced, a gRPC `ReadPartition` stream served and read on the event loop, run
  from a git worktree of `--baseline` (default 113af1a, the last tree with it) in the same invocation.

Each process reports its CPU time (every thread) over the run, divided by the buffers sent. At a low rate
(`--rate`, the scale bench's case: at 32 TaskManagers a channel sees a few records a second) every buffer
is a message of its own, so this is the cost per message; flat out (`--rate 0`) queued buffers share
messages, and the count of messages is reported beside it. The ratios to grpc come from one run.

Run: `.venv/bin/python bench/transport.py [--buffers N] [--rate R] [--baseline REV] [--no-record]`."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import report, worktree  # noqa: E402
from ha_flink.config import Configuration  # noqa: E402
from ha_flink.runtime.network.exchange import (  # noqa: E402
    INITIAL_CREDITS, DataConnections, PartitionRequest, PartitionServer, RemoteInputChannel,
)
from ha_flink.runtime.network.partition import NetworkChannel, PartitionRegistry, ResultPartition  # noqa: E402
from ha_flink.runtime.task.channels import END_OF_PARTITION, InputGate  # noqa: E402
from ha_flink.security.tls import TlsSettings, internal_tls  # noqa: E402
from ha_flink.testing.certificates import DEFAULT_PASSWORD, CertificateSet, create_test_certificates  # noqa: E402

PARTITION = "job/vertex/0/0/0"
CAPACITY = 32
BASELINE = "113af1a"  # the gRPC exchange
PREVIOUS = "0850b31"  # a connection and a thread on each side per input channel


def _pace(started: float, i: int, rate: float) -> None:
    """Sleep until buffer `i` is due at `rate` a second from `started` (0: flat out, no wait)."""
    if rate and (wait := started + i / rate - time.monotonic()) > 0:
        time.sleep(wait)


def _produce(channel: NetworkChannel, buffers: int, rate: float) -> None:
    """A source's task thread: one small record batch per buffer, `rate` a second (0: flat out)."""
    started = time.monotonic()
    for i in range(buffers):
        _pace(started, i, rate)
        channel.send([("word", i)])
    channel.send(END_OF_PARTITION)


def _tls(certs: str | None) -> TlsSettings | None:
    if certs is None:
        return None
    return internal_tls(Configuration(CertificateSet(Path(certs), DEFAULT_PASSWORD).internal_config()))


# -- the two processes (this tree's exchange; the baseline tree's bench runs its own) ---------------------

def _producer(buffers: int, rate: float, certs: str | None) -> dict[str, float]:
    cancelled = threading.Event()
    registry = PartitionRegistry()
    partition = ResultPartition(PARTITION, 1, CAPACITY, cancelled)
    registry.register("session", partition)
    server = PartitionServer(registry, "127.0.0.1", 0, _tls(certs), "the bench")
    server.start()
    print(json.dumps({"port": server.port}), flush=True)
    sys.stdin.readline()  # the consumer is connected and asking
    cpu, wall = time.process_time(), time.monotonic()
    _produce(NetworkChannel(partition.subpartitions[0]), buffers, rate)
    while server.open_connections:  # (until the consumer took the end and closed)
        time.sleep(0.001)
    figures = {"cpu": time.process_time() - cpu, "wall": time.monotonic() - wall, "messages": server.frames_sent}
    server.stop()
    return figures


def _consumer(port: int, certs: str | None) -> dict[str, float]:
    cancelled = threading.Event()
    gate = InputGate(1, 4, cancelled)
    failures: list[str] = []
    connections = DataConnections(_tls(certs))
    reader = RemoteInputChannel(connections, f"127.0.0.1:{port}",
                                PartitionRequest("session", PARTITION, 0, INITIAL_CREDITS), gate, 0, failures.append)
    reader.start()
    while not failures and not reader.connected:  # (the producer's first send waits for this)
        time.sleep(0.001)
    print("ready", flush=True)
    cpu, wall = time.process_time(), time.monotonic()
    received = 0
    while not failures:  # the consuming task thread
        item = gate.get(timeout=1)
        if item is None:
            continue
        if item[1] is END_OF_PARTITION:
            break
        received += 1
    connections.close()
    if failures:
        raise RuntimeError(failures[0])
    return {"cpu": time.process_time() - cpu, "wall": time.monotonic() - wall, "buffers": received}


def _child(tree: Path, role: str, transport: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, str(tree / "bench" / "transport.py"), "--role", role,
                             "--transport", transport, *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True, cwd=tree)


def run_pair(tree: Path, transport: str, buffers: int, rate: float, extra: list[str]) -> dict[str, float]:
    producer = _child(tree, "producer", transport, "--buffers", str(buffers), "--rate", str(rate), *extra)
    consumer = None
    try:
        assert producer.stdout is not None and producer.stdin is not None
        port = json.loads(producer.stdout.readline())["port"]
        consumer = _child(tree, "consumer", transport, "--port", str(port), *extra)
        assert consumer.stdout is not None
        assert consumer.stdout.readline().strip() == "ready"
        producer.stdin.write("go\n")
        producer.stdin.flush()
        sent = json.loads(producer.stdout.readline())
        got = json.loads(consumer.stdout.readline())
        if got["buffers"] != buffers:
            raise RuntimeError(f"{transport}: {got['buffers']} of {buffers} buffers arrived")
        return {"producer_us": 1e6 * sent["cpu"] / buffers, "consumer_us": 1e6 * got["cpu"] / buffers,
                "messages": sent["messages"], "rate": buffers / got["wall"]}
    finally:
        for child in (producer, consumer):
            if child is not None:
                child.kill()
                child.wait(10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--buffers", type=int, default=10000)
    parser.add_argument("--rate", type=float, default=2000.0, help="buffers per second (0: flat out)")
    parser.add_argument("--baseline", default=BASELINE, help="the git revision whose grpc exchange is measured")
    parser.add_argument("--previous", default=PREVIOUS,
                        help="the git revision whose exchange of a connection per channel is measured")
    parser.add_argument("--role", choices=("producer", "consumer"), help=argparse.SUPPRESS)
    parser.add_argument("--transport", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--certs", help=argparse.SUPPRESS)
    parser.add_argument("--no-record", action="store_true")
    args = parser.parse_args()
    if args.role == "producer":
        print(json.dumps(_producer(args.buffers, args.rate, args.certs)), flush=True)
        return
    if args.role == "consumer":
        print(json.dumps(_consumer(args.port, args.certs)), flush=True)
        return
    root = Path(__file__).resolve().parents[1]
    rows = []
    with (tempfile.TemporaryDirectory() as tmp, worktree(args.baseline) as (base, commit),
          worktree(args.previous) as (previous, previous_commit)):
        certs = create_test_certificates(Path(tmp))
        runs = {"grpc": (base, "grpc", []), "per channel": (previous, "threads", []),
                "threads": (root, "threads", []), "threads, TLS": (root, "threads", ["--certs", str(certs.folder)])}
        for rate in (args.rate, 0.0):
            results = {name: run_pair(tree, transport, args.buffers, rate, extra)
                       for name, (tree, transport, extra) in runs.items()}
            label = f"{rate:g} buffers/s" if rate else "flat out"
            for name, r in results.items():
                rows.append(f"| {label} | {name} | {r['producer_us']:.0f} | {r['consumer_us']:.0f} | "
                            f"{r['messages']:.0f} | {r['rate']:,.0f} |")
            g = results["grpc"]
            for name in list(runs)[1:]:
                t = results[name]
                rows.append(f"| {label} | {name} / grpc | {t['producer_us'] / g['producer_us']:.2f} | "
                            f"{t['consumer_us'] / g['consumer_us']:.2f} | | {t['rate'] / g['rate']:.2f} |")
    table = "\n".join(["| rate | transport | producer CPU µs / buffer | consumer CPU µs / buffer | messages | "
                       "buffers/s |", "|---|---|---|---|---|---|", *rows])
    notes = (f"{args.buffers:,} buffers of one small record batch each, one subpartition, {CAPACITY} buffers and "
             f"{INITIAL_CREDITS} credits; each side its own process on loopback, CPU of every thread of it. "
             "`threads` is the runtime's exchange (a connection per pair of TaskManagers carrying all their "
             "channels, a thread per connection on each side, runtime/network/exchange.py); `per channel` the "
             f"exchange of a connection and two threads per input channel, run from a worktree of {previous_commit}; "
             f"`grpc` the gRPC stream before it, from a worktree of {commit}.")
    command = "bench/transport.py " + " ".join(a for a in sys.argv[1:] if a != "--no-record")
    report("Data exchange: cost per message of the transport", command.strip(), table, notes, not args.no_record)


if __name__ == "__main__":
    main()
