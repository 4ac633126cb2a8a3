"""What the data exchange's transport costs per message (issue 18, items 2 and 3): one producer process and
one consumer process on loopback, one subpartition, the runtime's own ResultPartition, InputGate, credits
and protobuf messages (Buffer, PartitionRequest), and two transports under them:

- `grpc`: the runtime's exchange itself (runtime/network/exchange.py: `serve_partition` in a gRPC aio
  server, `read_channel` over a bidirectional stream), as TaskManagers run it;
- `tcp`: the same messages as length-prefixed frames on one asyncio TCP stream, with the same credit
  scheme (a sketch of a transport without gRPC; the runtime does not use it);
- `socket`: the same frames and credits on a blocking socket that the producing task thread writes and the
  consuming task thread reads itself: no event loop between them, so no hand-over between threads per
  message (a sketch too: the floor of what a message can cost here).

Each process reports its CPU time (every thread: event loop, the producing or consuming task thread)
over the run, divided by the buffers sent. At a low rate (`--rate`, the scale bench's case: at 32
TaskManagers a channel sees a few records a second) every buffer is a message of its own, so this is
the cost per message; flat out (`--rate 0`) queued buffers share messages, and the count of messages is
reported beside it. Ratios tcp / grpc come from one run.

Run: `.venv/bin/python bench/transport.py [--buffers N] [--rate R] [--no-record]`."""

from __future__ import annotations

import argparse
import asyncio
import json
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, AsyncIterator

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import grpc  # noqa: E402

from bench.common import report  # noqa: E402
from ha_flink.rpc import flink_pb2 as pb  # noqa: E402
from ha_flink.rpc import flink_pb2_grpc as pb_grpc  # noqa: E402
from ha_flink.rpc.channels import CHANNEL_OPTIONS, SERVER_OPTIONS  # noqa: E402
from ha_flink.runtime.network.exchange import INITIAL_CREDITS, read_channel, serve_partition, with_queued  # noqa: E402
from ha_flink.runtime.network.partition import (  # noqa: E402
    NetworkChannel, PartitionRegistry, ResultPartition, Subpartition,
)
from ha_flink.runtime.task.channels import END_OF_PARTITION, InputGate  # noqa: E402

PARTITION = "job/vertex/0/0/0"
CAPACITY = 32
TRANSPORTS = ("grpc", "tcp", "socket")
_LENGTH = struct.Struct(">I")


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


# -- the tcp sketch --------------------------------------------------------------------------------------

async def _write_frame(writer: asyncio.StreamWriter, message: Any) -> None:
    data = message.SerializeToString()
    writer.write(_LENGTH.pack(len(data)) + data)
    await writer.drain()


async def _read_frame(reader: asyncio.StreamReader, kind: Any) -> Any:
    (length,) = _LENGTH.unpack(await reader.readexactly(_LENGTH.size))
    return kind.FromString(await reader.readexactly(length))


async def _serve_tcp(subpartition: Subpartition, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                     counts: dict[str, int]) -> None:
    """serve_partition's loop, with frames instead of a gRPC stream."""
    first = await _read_frame(reader, pb.PartitionRequest)
    credits = asyncio.Semaphore(first.credits)

    async def read_credits() -> None:
        try:
            while True:
                request = await _read_frame(reader, pb.PartitionRequest)
                for _ in range(request.credits):
                    credits.release()
        except asyncio.IncompleteReadError:
            return

    credit_reader = asyncio.ensure_future(read_credits())
    try:
        while True:
            await credits.acquire()
            items, ended = await with_queued(subpartition, credits, await subpartition.next_buffer())
            counts["messages"] += 1
            await _write_frame(writer, pb.Buffer(items=items, end_of_partition=ended))
            if ended:
                return
    finally:
        credit_reader.cancel()
        writer.close()


async def _read_tcp(port: int, gate: InputGate) -> None:
    """read_channel's loop, with frames instead of a gRPC stream."""
    import pickle

    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    await _write_frame(writer, pb.PartitionRequest(partition_id=PARTITION, subpartition=0, credits=INITIAL_CREDITS))
    grant_every, taken = max(1, INITIAL_CREDITS // 4), 0
    try:
        while True:
            buffer = await _read_frame(reader, pb.Buffer)
            for data in buffer.items:
                await gate.put_async(0, pickle.loads(data))
            if buffer.end_of_partition:
                await gate.put_async(0, END_OF_PARTITION)
                return
            taken += len(buffer.items)
            if taken >= grant_every:
                await _write_frame(writer, pb.PartitionRequest(credits=taken))
                taken = 0
    finally:
        writer.close()


# -- the socket sketch: task threads on blocking sockets ---------------------------------------------------

def _recv_exactly(sock: Any, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise ConnectionError("the peer closed the connection")
        data += chunk
    return data


def _recv_frame(sock: Any, kind: Any) -> Any:
    (length,) = _LENGTH.unpack(_recv_exactly(sock, _LENGTH.size))
    return kind.FromString(_recv_exactly(sock, length))


def _send_frame(sock: Any, message: Any) -> None:
    data = message.SerializeToString()
    sock.sendall(_LENGTH.pack(len(data)) + data)


def _produce_on_socket(sock: Any, buffers: int, rate: float) -> int:
    """The producing task thread writes each buffer to the socket itself, waiting for credit when it has none."""
    import pickle

    credits = _recv_frame(sock, pb.PartitionRequest).credits
    started = time.monotonic()
    for i in range(buffers):
        _pace(started, i, rate)
        while credits == 0:
            credits += _recv_frame(sock, pb.PartitionRequest).credits
        credits -= 1
        _send_frame(sock, pb.Buffer(items=[pickle.dumps([("word", i)], protocol=5)]))
    _send_frame(sock, pb.Buffer(end_of_partition=True))
    while sock.recv(4096):  # the consumer's last credits, until it closes
        pass
    return buffers + 1


def _consume_from_socket(port: int, ready: Any) -> int:
    import pickle
    import socket

    sock = socket.create_connection(("127.0.0.1", port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    _send_frame(sock, pb.PartitionRequest(partition_id=PARTITION, subpartition=0, credits=INITIAL_CREDITS))
    ready()
    grant_every, taken, received = max(1, INITIAL_CREDITS // 4), 0, 0
    while True:
        buffer = _recv_frame(sock, pb.Buffer)
        for data in buffer.items:
            pickle.loads(data)
            received += 1
        if buffer.end_of_partition:
            sock.close()
            return received
        taken += len(buffer.items)
        if taken >= grant_every:
            _send_frame(sock, pb.PartitionRequest(credits=taken))
            taken = 0


# -- the two processes -----------------------------------------------------------------------------------

class _Partitions(pb_grpc.TaskExecutorServicer):  # (only ReadPartition is served)
    def __init__(self, registry: PartitionRegistry, counts: dict[str, int], done: asyncio.Event) -> None:
        self.registry, self.counts, self.done = registry, counts, done

    async def ReadPartition(self, request_iterator: Any, context: Any) -> AsyncIterator[pb.Buffer]:
        async for buffer in serve_partition(self.registry, request_iterator, context):
            self.counts["messages"] += 1
            yield buffer
        self.done.set()


async def _producer(transport: str, buffers: int, rate: float) -> dict[str, float]:
    loop = asyncio.get_running_loop()
    cancelled = threading.Event()
    partition = ResultPartition(PARTITION, 1, loop, CAPACITY, cancelled)
    counts = {"messages": 0}
    done = asyncio.Event()
    if transport == "socket":
        import socket

        listener = socket.create_server(("127.0.0.1", 0))
        print(json.dumps({"port": listener.getsockname()[1]}), flush=True)
        sock, _ = listener.accept()
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        await loop.run_in_executor(None, sys.stdin.readline)
        cpu, wall = time.process_time(), time.monotonic()
        messages = await loop.run_in_executor(None, _produce_on_socket, sock, buffers, rate)
        figures = {"cpu": time.process_time() - cpu, "wall": time.monotonic() - wall, "messages": messages}
        sock.close()
        listener.close()
        return figures
    if transport == "grpc":
        registry = PartitionRegistry()
        await registry.register(partition)
        server = grpc.aio.server(options=SERVER_OPTIONS)
        pb_grpc.add_TaskExecutorServicer_to_server(_Partitions(registry, counts, done), server)
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
    else:
        async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await _serve_tcp(partition.subpartitions[0], reader, writer, counts)
            done.set()

        tcp = await asyncio.start_server(accept, "127.0.0.1", 0)
        port = tcp.sockets[0].getsockname()[1]
    print(json.dumps({"port": port}), flush=True)
    await loop.run_in_executor(None, sys.stdin.readline)  # the consumer is connected and asking
    cpu, wall = time.process_time(), time.monotonic()
    await loop.run_in_executor(None, _produce, NetworkChannel(partition.subpartitions[0]), buffers, rate)
    await done.wait()
    figures = {"cpu": time.process_time() - cpu, "wall": time.monotonic() - wall, "messages": counts["messages"]}
    if transport == "grpc":
        await server.stop(1)
    else:
        tcp.close()
    return figures


async def _consumer(transport: str, port: int) -> dict[str, float]:
    if transport == "socket":
        marks: dict[str, float] = {}

        def ready() -> None:
            print("ready", flush=True)
            marks["cpu"], marks["wall"] = time.process_time(), time.monotonic()

        received = await asyncio.get_running_loop().run_in_executor(None, _consume_from_socket, port, ready)
        return {"cpu": time.process_time() - marks["cpu"], "wall": time.monotonic() - marks["wall"],
                "buffers": received}
    cancelled = threading.Event()
    gate = InputGate(1, 4, cancelled)
    received = {"buffers": 0}

    def drain() -> None:  # the consuming task thread
        while True:
            item = gate.get(timeout=1)
            if item is None:
                continue
            if item[1] is END_OF_PARTITION:
                return
            received["buffers"] += 1

    loop = asyncio.get_running_loop()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}", options=CHANNEL_OPTIONS) if transport == "grpc" else None
    if channel is not None:
        reading = asyncio.ensure_future(read_channel(pb_grpc.TaskExecutorStub(channel), PARTITION, 0, gate, 0))
    else:
        reading = asyncio.ensure_future(_read_tcp(port, gate))
    await asyncio.sleep(0.5)  # connected and asked (the producer's first send waits for this)
    print("ready", flush=True)
    cpu, wall = time.process_time(), time.monotonic()
    await loop.run_in_executor(None, drain)
    await reading
    figures = {"cpu": time.process_time() - cpu, "wall": time.monotonic() - wall, "buffers": received["buffers"]}
    if channel is not None:
        await channel.close()
    return figures


def _child(role: str, transport: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, __file__, "--role", role, "--transport", transport, *args],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)


def run_pair(transport: str, buffers: int, rate: float) -> dict[str, float]:
    producer = _child("producer", transport, "--buffers", str(buffers), "--rate", str(rate))
    consumer = None
    try:
        assert producer.stdout is not None and producer.stdin is not None
        port = json.loads(producer.stdout.readline())["port"]
        consumer = _child("consumer", transport, "--port", str(port))
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
    parser.add_argument("--role", choices=("producer", "consumer"), help=argparse.SUPPRESS)
    parser.add_argument("--transport", choices=TRANSPORTS, help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--no-record", action="store_true")
    args = parser.parse_args()
    if args.role == "producer":
        print(json.dumps(asyncio.run(_producer(args.transport, args.buffers, args.rate))), flush=True)
        return
    if args.role == "consumer":
        print(json.dumps(asyncio.run(_consumer(args.transport, args.port))), flush=True)
        return
    rows = []
    for rate in (args.rate, 0.0):
        results = {transport: run_pair(transport, args.buffers, rate) for transport in TRANSPORTS}
        label = f"{rate:g} buffers/s" if rate else "flat out"
        for transport, r in results.items():
            rows.append(f"| {label} | {transport} | {r['producer_us']:.0f} | {r['consumer_us']:.0f} | "
                        f"{r['messages']:.0f} | {r['rate']:,.0f} |")
        g = results["grpc"]
        for transport in TRANSPORTS[1:]:
            t = results[transport]
            rows.append(f"| {label} | {transport} / grpc | {t['producer_us'] / g['producer_us']:.2f} | "
                        f"{t['consumer_us'] / g['consumer_us']:.2f} | | {t['rate'] / g['rate']:.2f} |")
    table = "\n".join(["| rate | transport | producer CPU µs / buffer | consumer CPU µs / buffer | messages | "
                       "buffers/s |", "|---|---|---|---|---|---|", *rows])
    notes = (f"{args.buffers:,} buffers of one small record batch each, one subpartition, {CAPACITY} buffers and "
             f"{INITIAL_CREDITS} credits; each side its own process on loopback, CPU of every thread of it. "
             "`grpc` is the runtime's exchange; `tcp` the same protobuf messages as length-prefixed frames on "
             "an asyncio stream; `socket` those frames written and read by the task threads themselves on "
             "blocking sockets (both sketches, not used by the runtime; `socket` has no gate: its consumer "
             "unpickles and counts).")
    command = "bench/transport.py " + " ".join(a for a in sys.argv[1:] if a != "--no-record")
    report("Data exchange: cost per message of the transport", command.strip(), table, notes, not args.no_record)


if __name__ == "__main__":
    main()
