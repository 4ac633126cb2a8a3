"""The data exchange between TaskManagers (runtime/network/exchange.py) on a real loopback port: a producer
thread writes a result partition, a `RemoteInputChannel` reads it into an input gate. Order and the end
of the partition arrive intact, a stalled consumer bounds what its producer may queue (credit-based flow
control), a producer that is ahead ships its queued buffers in fewer frames than buffers, the channels
from one TaskManager share one connection and end or fail one by one on it; a producer that is gone, a
partition that is not there, a stranger that connects and a consumer without the internal certificate
each end in a named failure, and the port goes on serving."""

from __future__ import annotations

import pickle
import socket
import struct
import threading
import time
from typing import Any, Iterator

import pytest

from ha_flink.config import Configuration
from ha_flink.runtime.network import exchange as exchange_module
from ha_flink.runtime.network.exchange import (
    MAX_BUFFERS_PER_MESSAGE, DataConnections, PartitionRequest, PartitionServer, RemoteInputChannel,
)
from ha_flink.runtime.network.partition import NetworkChannel, PartitionRegistry, ResultPartition
from ha_flink.runtime.task.channels import END_OF_PARTITION, InputGate, TaskCancelled
from ha_flink.security.keystores import load_keystore
from ha_flink.security.tls import TlsSettings, internal_tls
from ha_flink.testing.certificates import CertificateSet, create_test_certificates
from ha_flink.testing.processes import wait_for

PARTITION = "job/vertex/0/0/0"
SESSION = "5d3e0c2a-0000-4000-8000-000000000001"


class _Exchange:
    """One partition (of one subpartition, unless told), served on a loopback port; its readers share the
    connections of one consumer per TLS setting, as one TaskManager's channels do."""

    def __init__(self, capacity: int, tls: TlsSettings | None = None, subpartitions: int = 1) -> None:
        self.cancelled = threading.Event()
        self.registry = PartitionRegistry()
        self.server = PartitionServer(self.registry, "127.0.0.1", 0, tls, "the test")
        self.server.start()
        self.partition = ResultPartition(PARTITION, subpartitions, capacity, self.cancelled)
        self.registry.register(SESSION, self.partition)
        self.channel = NetworkChannel(self.partition.subpartitions[0])
        self.readers: list[RemoteInputChannel] = []
        self.consumers: dict[TlsSettings | None, DataConnections] = {}
        self.failures: list[str] = []

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.server.port}"

    def read_into(self, gate: InputGate, credits: int, partition: str = PARTITION,
                  tls: TlsSettings | None = None, session: str = "", subpartition: int = 0,
                  channel_index: int = 0, failures: list[str] | None = None) -> RemoteInputChannel:
        session = session or SESSION
        consumer = self.consumers.setdefault(tls, DataConnections(tls))
        reader = RemoteInputChannel(consumer, self.address, PartitionRequest(session, partition, subpartition, credits),
                                    gate, channel_index, (self.failures if failures is None else failures).append)
        self.readers.append(reader)
        reader.start()
        return reader

    def close(self) -> None:
        self.cancelled.set()
        self.partition.abort()
        for reader in self.readers:
            reader.cancel()
        for consumer in self.consumers.values():
            consumer.close()
            assert consumer.open_connections == 0, "a closed consumer kept a connection"
        self.server.stop()
        wait_for(lambda: self.server.open_connections == 0, 10, what="the served connections to end")


@pytest.fixture
def make_exchange() -> Iterator[Any]:
    made: list[_Exchange] = []

    def make(capacity: int, tls: TlsSettings | None = None, subpartitions: int = 1) -> _Exchange:
        made.append(_Exchange(capacity, tls, subpartitions))
        return made[-1]

    yield make
    for exchange in made:
        exchange.close()


def _drain(gate: InputGate, deadline: float) -> list[Any]:
    items = []
    while time.monotonic() < deadline:
        item = gate.get(timeout=0.05)
        if item is None:
            continue
        items.append(item[1])
        if item[1] is END_OF_PARTITION:
            return items
    raise AssertionError(f"the partition did not end in time; {len(items)} items arrived")


def test_every_batch_arrives_in_order_and_then_the_end(make_exchange: Any) -> None:
    exchange = make_exchange(capacity=8)
    gate = InputGate(1, 4, exchange.cancelled)
    reader = exchange.read_into(gate, credits=4)
    batches = [[(f"word{i % 7}", i)] * (1 + i % 5) for i in range(500)]

    def produce() -> None:
        for batch in batches:
            exchange.channel.send(batch)
        exchange.channel.send(END_OF_PARTITION)

    producer = threading.Thread(target=produce)
    producer.start()
    received = _drain(gate, time.monotonic() + 60)
    producer.join(10)
    assert received == [*batches, END_OF_PARTITION]
    assert reader.ended.is_set() and exchange.failures == []


def test_a_stalled_consumer_bounds_what_its_producer_queues(make_exchange: Any) -> None:
    capacity, credits = 8, 4
    exchange = make_exchange(capacity)
    gate = InputGate(1, 2, exchange.cancelled)
    exchange.read_into(gate, credits)
    sent = []

    def produce() -> None:
        try:
            for i in range(1000):
                exchange.channel.send([i])
                sent.append(i)
        except TaskCancelled:  # (the exchange closed under it, at the end of the test)
            pass

    producer = threading.Thread(target=produce, daemon=True)
    producer.start()
    # Nobody takes from the gate: the producer stops once the subpartition and the credits are used up
    # (a remote channel's items in the gate hold their credit; the gate's capacity bounds local senders).
    bound = capacity + credits
    previous, deadline = -1, time.monotonic() + 30
    while (len(sent) != previous or not sent) and time.monotonic() < deadline:  # until it stops growing
        previous = len(sent)
        for _ in range(10):
            time.sleep(0.05)  # (a poll: the producer is observed from outside)
    assert 0 < len(sent) <= bound, f"{len(sent)} queued with a bound of {bound}"
    taken = _take(gate, 50, time.monotonic() + 30)  # draining lets it go on
    assert taken == list(range(50))
    exchange.cancelled.set()
    producer.join(10)


def _take(gate: InputGate, count: int, deadline: float) -> list[int]:
    values: list[int] = []
    while len(values) < count and time.monotonic() < deadline:
        item = gate.get(timeout=0.05)
        if item is not None:
            values.extend(item[1])
    return values


def test_a_producer_ahead_of_its_consumer_sends_its_queued_buffers_together(make_exchange: Any) -> None:
    exchange = make_exchange(capacity=64)
    for i in range(48):  # all queued before anyone reads
        exchange.channel.send([i])
    exchange.channel.send(END_OF_PARTITION)
    gate = InputGate(1, 64, exchange.cancelled)
    exchange.read_into(gate, credits=64)
    received = _drain(gate, time.monotonic() + 30)
    assert received == [*([i] for i in range(48)), END_OF_PARTITION]
    assert exchange.server.frames_sent <= -(-48 // MAX_BUFFERS_PER_MESSAGE) + 1


def test_a_producer_that_is_gone_fails_its_reader_with_a_named_error(make_exchange: Any) -> None:
    exchange = make_exchange(capacity=8)
    gate = InputGate(1, 8, threading.Event())
    exchange.read_into(gate, credits=4)
    exchange.channel.send([1])
    assert _take(gate, 1, time.monotonic() + 30) == [1]
    exchange.partition.abort()  # (what a cancelled or failed producing task does)
    wait_for(lambda: exchange.failures, 30, what="the reader to fail")
    assert exchange.failures == [f"ABORTED: {PARTITION}: the producing task of this partition was cancelled or failed"]


def _read_frames(sock: socket.socket, until_kind: int) -> list[tuple[int, int, bytes]]:
    """(kind, stream, rest) of each frame `sock` receives, up to the first of `until_kind`."""
    frames: list[tuple[int, int, bytes]] = []
    data = b""
    while not frames or frames[-1][0] != until_kind:
        chunk = sock.recv(4096)
        assert chunk, f"the connection closed after {frames}"
        data += chunk
        while len(data) >= 5 and len(data) >= 5 + struct.unpack_from(">I", data, 1)[0]:
            kind, length = struct.unpack_from(">BI", data)
            frames.append((kind, struct.unpack_from(">I", data, 5)[0], data[9:5 + length]))
            data = data[5 + length:]
    return frames


def _items(frames: list[tuple[int, int, bytes]]) -> list[Any]:
    """The items of the BUFFERS frames among `frames`, as a consumer reads them."""
    return [pickle.loads(item) for kind, stream, rest in frames if kind == exchange_module.BUFFERS
            for item in exchange_module.split_buffers(struct.pack(">I", stream) + rest)]


def test_a_producer_gone_while_its_consumer_has_no_credit_says_so(make_exchange: Any) -> None:
    """A stream without credit is still told: abort reaches the consumer as ABORTED, on that stream."""
    exchange = make_exchange(capacity=8)
    host, port = exchange.address.split(":")
    consumer = socket.create_connection((host, int(port)), timeout=30)
    try:
        consumer.sendall(exchange_module.request_frame(7, PartitionRequest(SESSION, PARTITION, 0, 1)))
        exchange.channel.send([0])
        exchange.channel.send([1])
        wait_for(lambda: exchange.server.frames_sent == 1, 30, what="the one credited buffer to go out")
        exchange.partition.abort()
        frames = _read_frames(consumer, exchange_module.ERROR)
    finally:
        consumer.close()
    assert [(kind, stream) for kind, stream, _ in frames] == [(exchange_module.BUFFERS, 7), (exchange_module.ERROR, 7)]
    assert _items(frames) == [[0]]
    assert frames[-1][2].decode() == f"ABORTED: {PARTITION}: the producing task of this partition was cancelled or failed"


def test_a_partition_that_never_comes_is_not_found(make_exchange: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(exchange_module, "PARTITION_WAIT_SECONDS", 0.2)
    exchange = make_exchange(capacity=8)
    exchange.read_into(InputGate(1, 8, threading.Event()), credits=4, partition="job/other/0/0/0")
    wait_for(lambda: exchange.failures, 30, what="the reader to fail")
    assert exchange.failures == [f"NOT_FOUND: no result partition job/other/0/0/0 of leader session {SESSION} here"]


def test_a_cancelled_reader_of_a_silent_partition_ends_without_a_failure(make_exchange: Any) -> None:
    exchange = make_exchange(capacity=8)
    cancelled = threading.Event()
    reader = exchange.read_into(InputGate(1, 8, cancelled), credits=4)
    wait_for(lambda: exchange.server.streams_served == 1, 30, what="the stream to be served")
    cancelled.set()
    reader.cancel()
    subpartition = exchange.partition.subpartitions[0]
    wait_for(lambda: subpartition._reader is None, 30, what="the server to drop the cancelled stream")
    exchange.channel.send([1])  # (nobody reads it now: nothing fails)
    assert reader.ended.is_set() and exchange.failures == []


def test_a_consumer_of_another_leader_session_does_not_find_the_partition(
    make_exchange: Any, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Partition ids repeat across leaders (each counts attempts from 0): the session tells them apart."""
    monkeypatch.setattr(exchange_module, "PARTITION_WAIT_SECONDS", 0.2)
    exchange = make_exchange(capacity=8)
    exchange.channel.send(["the new leader's"])
    stale = "5d3e0c2a-0000-4000-8000-0000000000ff"
    exchange.read_into(InputGate(1, 8, threading.Event()), credits=4, session=stale)
    wait_for(lambda: exchange.failures, 30, what="the stale reader to fail")
    assert exchange.failures == [f"NOT_FOUND: no result partition {PARTITION} of leader session {stale} here"]
    exchange.channel.send(END_OF_PARTITION)
    gate = InputGate(1, 8, exchange.cancelled)
    exchange.read_into(gate, credits=4)
    assert _drain(gate, time.monotonic() + 30) == [["the new leader's"], END_OF_PARTITION]


def test_a_new_reader_of_a_subpartition_takes_over_and_loses_nothing_queued(make_exchange: Any) -> None:
    """A reader that went quiet (its consumer gone without a word) has what it was sent; everything after
    goes to the reader that asks next, in order, and the quiet one is told it lost the subpartition."""
    exchange = make_exchange(capacity=8)
    host, port = exchange.address.split(":")
    quiet = socket.create_connection((host, int(port)), timeout=30)
    try:
        quiet.sendall(exchange_module.request_frame(1, PartitionRequest(SESSION, PARTITION, 0, 2)))
        wait_for(lambda: exchange.server.streams_served == 1, 30, what="the quiet reader to be served")
        for i in range(4):
            exchange.channel.send([i])
        wait_for(lambda: exchange.server.frames_sent >= 1 and len(exchange.partition.subpartitions[0].buffers) == 2,
                 30, what="two buffers to go to the quiet reader")
        exchange.channel.send(END_OF_PARTITION)
        gate = InputGate(1, 8, exchange.cancelled)
        exchange.read_into(gate, credits=4)
        assert _drain(gate, time.monotonic() + 30) == [[2], [3], END_OF_PARTITION]
        frames = _read_frames(quiet, exchange_module.ERROR)
        assert _items(frames) == [[0], [1]]
        assert frames[-1][2].decode() == f"UNAVAILABLE: {PARTITION}: a newer connection reads this subpartition"
    finally:
        quiet.close()


class _Unpicklable:
    def __reduce__(self) -> Any:
        return (_refuse_to_unpickle, ())


def _refuse_to_unpickle() -> None:
    raise RuntimeError("this record cannot be unpickled here")


def test_a_buffer_that_cannot_be_unpickled_fails_the_reader_by_name(make_exchange: Any) -> None:
    """(Not a reader thread that dies and leaves its task waiting for input forever.)"""
    exchange = make_exchange(capacity=8)
    exchange.channel.send([_Unpicklable()])
    exchange.read_into(InputGate(1, 8, threading.Event()), credits=4)
    wait_for(lambda: exchange.failures, 30, what="the reader to fail")
    assert exchange.failures[0].startswith(f"DATA_LOSS: reading {PARTITION}[0] from TaskManager 127.0.0.1:")
    assert exchange.failures[0].endswith("RuntimeError: this record cannot be unpickled here")


@pytest.mark.parametrize("garbage", [b"", b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", b"\x01\x7f\xff\xff\xff" + b"x" * 64])
def test_a_stranger_on_the_data_port_is_dropped_and_the_port_serves_on(make_exchange: Any, garbage: bytes) -> None:
    """Nothing, an HTTP request, a request frame that claims 2 GB: each connection is closed by the
    server (the last one at once, without reading 2 GB), and a real reader is served afterwards."""
    exchange = make_exchange(capacity=8)
    host, port = exchange.address.split(":")
    stranger = socket.create_connection((host, int(port)), timeout=30)
    try:
        stranger.sendall(garbage)
        if not garbage:
            stranger.shutdown(socket.SHUT_WR)
        answer = b""
        while chunk := stranger.recv(4096):
            answer += chunk
    finally:
        stranger.close()
    if garbage:
        assert b"INVALID_ARGUMENT" in answer
    exchange.channel.send(["after"])
    exchange.channel.send(END_OF_PARTITION)
    gate = InputGate(1, 8, exchange.cancelled)
    exchange.read_into(gate, credits=4)
    assert _drain(gate, time.monotonic() + 30) == [["after"], END_OF_PARTITION]


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> CertificateSet:
    return create_test_certificates(tmp_path_factory.mktemp("certs"))


def _tls(certs: CertificateSet, name: str = "internal", **extra: str) -> TlsSettings:
    tls = internal_tls(Configuration({**certs.internal_config(name), **extra}))
    assert tls is not None
    return tls


def test_with_internal_tls_only_a_peer_with_a_trusted_certificate_reads(make_exchange: Any,
                                                                        certs: CertificateSet) -> None:
    exchange = make_exchange(capacity=8, tls=_tls(certs))
    for i in range(3):
        exchange.channel.send([i])
    for stranger in (None, _tls(certs, "stranger")):  # plaintext; a certificate of another CA
        exchange.failures.clear()
        exchange.read_into(InputGate(1, 8, threading.Event()), credits=4, tls=stranger)
        wait_for(lambda: exchange.failures, 30, what="the untrusted reader to fail")
        assert exchange.failures[0].startswith("UNAVAILABLE: reading job/vertex/0/0/0[0] from TaskManager 127.0.0.1:")
    assert exchange.server.streams_served == 0
    exchange.channel.send(END_OF_PARTITION)
    gate = InputGate(1, 8, exchange.cancelled)
    exchange.read_into(gate, credits=4, tls=_tls(certs, "client"))  # same CA: trusted
    assert _drain(gate, time.monotonic() + 30) == [[0], [1], [2], END_OF_PARTITION]


def test_a_pinned_fingerprint_refuses_another_certificate_of_the_same_ca(make_exchange: Any,
                                                                         certs: CertificateSet) -> None:
    pin = load_keystore(str(certs.keystore("internal")), "PKCS12", certs.password, None, key="k",
                        type_key="t").fingerprint
    exchange = make_exchange(capacity=8, tls=_tls(certs, **{"security.ssl.internal.cert.fingerprint": pin}))
    exchange.channel.send(END_OF_PARTITION)
    exchange.read_into(InputGate(1, 8, threading.Event()), credits=4, tls=_tls(certs, "client"))
    wait_for(lambda: exchange.failures, 30, what="the reader with an unpinned certificate to fail")
    assert exchange.server.streams_served == 0
    gate = InputGate(1, 8, exchange.cancelled)
    exchange.read_into(gate, credits=4, tls=_tls(certs, **{"security.ssl.internal.cert.fingerprint": pin}))
    assert _drain(gate, time.monotonic() + 30) == [END_OF_PARTITION]


def test_the_channels_from_one_taskmanager_share_one_connection(make_exchange: Any) -> None:
    """Three channels of two gates from one producing TaskManager: one connection carries them all, each
    channel gets its own subpartition's batches in order, and the connection stays for the next job."""
    exchange = make_exchange(capacity=8, subpartitions=3)
    gates = [InputGate(2, 4, exchange.cancelled), InputGate(1, 4, exchange.cancelled)]
    for subpartition, (gate, index) in enumerate([(gates[0], 0), (gates[0], 1), (gates[1], 0)]):
        exchange.read_into(gate, credits=4, subpartition=subpartition, channel_index=index)
    channels = [NetworkChannel(subpartition) for subpartition in exchange.partition.subpartitions]

    def produce() -> None:
        for i in range(200):
            for number, channel in enumerate(channels):
                channel.send([(number, i)])
        for channel in channels:
            channel.send(END_OF_PARTITION)

    producer = threading.Thread(target=produce)
    producer.start()
    received: dict[tuple[int, int], list[Any]] = {}
    deadline = time.monotonic() + 60
    ended = 0
    while ended < 3 and time.monotonic() < deadline:
        for number, gate in enumerate(gates):
            item = gate.get(timeout=0.01)
            if item is not None:
                received.setdefault((number, item[0]), []).append(item[1])
                ended += item[1] is END_OF_PARTITION
    producer.join(10)
    for key, subpartition in (((0, 0), 0), ((0, 1), 1), ((1, 0), 2)):
        assert received[key] == [*([(subpartition, i)] for i in range(200)), END_OF_PARTITION]
    assert exchange.server.open_connections == 1 and exchange.server.streams_served == 3
    assert exchange.consumers[None].open_connections == 1 and exchange.failures == []


def test_one_channel_that_fails_or_is_cancelled_leaves_the_others_on_its_connection(make_exchange: Any) -> None:
    exchange = make_exchange(capacity=8)
    other = ResultPartition("job/other/0/0/0", 2, 8, exchange.cancelled)
    exchange.registry.register(SESSION, other)
    gate = InputGate(3, 8, exchange.cancelled)
    failed: list[str] = []
    exchange.read_into(gate, credits=4, channel_index=0, failures=failed)
    cancelled = exchange.read_into(gate, credits=4, partition=other.id, subpartition=0, channel_index=1)
    exchange.read_into(gate, credits=4, partition=other.id, subpartition=1, channel_index=2)
    wait_for(lambda: exchange.server.streams_served == 3, 30, what="the three streams to be served")
    exchange.partition.abort()
    wait_for(lambda: failed, 30, what="the channel of the aborted partition to fail")
    assert failed == [f"ABORTED: {PARTITION}: the producing task of this partition was cancelled or failed"]
    cancelled.cancel()
    wait_for(lambda: other.subpartitions[0]._reader is None, 30, what="the server to drop the cancelled stream")
    survivor = NetworkChannel(other.subpartitions[1])
    for i in range(10):  # (within the subpartition's room and the credit: nobody reads yet)
        survivor.send([i])
    survivor.send(END_OF_PARTITION)
    assert _drain(gate, time.monotonic() + 30) == [*([i] for i in range(10)), END_OF_PARTITION]
    assert exchange.failures == [] and exchange.server.open_connections == 1


def test_a_producing_taskmanager_that_stops_fails_every_channel_from_it(make_exchange: Any) -> None:
    exchange = make_exchange(capacity=8, subpartitions=2)
    gate = InputGate(2, 8, threading.Event())
    readers = [exchange.read_into(gate, credits=4, subpartition=i, channel_index=i) for i in range(2)]
    wait_for(lambda: exchange.server.streams_served == 2, 30, what="both streams to be served")
    exchange.server.stop()  # (what its process's death does to the connection)
    wait_for(lambda: len(exchange.failures) == 2, 30, what="both channels to fail")
    for failure, i in zip(sorted(exchange.failures), range(2)):
        assert failure.startswith(f"UNAVAILABLE: reading {PARTITION}[{i}] from TaskManager {exchange.address}: ")
    assert all(reader.ended.is_set() for reader in readers)
    wait_for(lambda: exchange.consumers[None].open_connections == 0, 30, what="the dead connection to be forgotten")
