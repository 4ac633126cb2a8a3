"""Both ends of the data exchange between TaskManagers: one TCP connection from each consuming TaskManager
to each producing one, carrying every input channel between them as a stream with credit-based flow
control (Flink's netty shuffle, without netty: its PartitionRequestClient and PartitionRequestQueue).

Why a connection per pair of TaskManagers, each served by one thread: a connection per input channel (the
design before this) made a job at p=64 on 32 TaskManagers open about 4,000 connections and 8,000 threads
at each deploy, 4,000 TLS handshakes with internal TLS, and every checkpoint woke all those threads. Now
a TaskManager has a thread per peer on each side, and connections outlive jobs (a handshake per pair of
TaskManagers, not per channel and job). Why threads and plain sockets, not the event loop and gRPC: per
message, the gRPC stream this replaced cost about 330 µs of CPU at its two ends, this exchange about 125
µs (`bench/transport.py`). Each connection's one thread does all the I/O of its socket, so TLS is never
used from two threads; it sleeps in `select` on its socket and a pipe that other threads write to only
while it sleeps, so an idle connection costs nothing and a busy one costs its feeders no system call.

Serving side (`PartitionServer`, on `taskmanager.data.port`): a connection's thread reads the consumer's
requests, attaches each stream to its subpartition once registered, and sends buffers while the stream
has credit, one credit per buffer; what is queued goes in one frame (up to MAX_BUFFERS_PER_MESSAGE), and
what every ready stream has goes in one send. A subpartition tells its stream of new data, its end, its
abort and a newer reader (`Subpartition.notify_data`). Reading side (`DataConnections`, one per
TaskManager): a connection's thread puts each buffer into its channel's input gate without waiting
(`InputGate.put_credited`); the task's thread hands the credit back when it takes the buffer (in batches of
a quarter of the credit), so at most `credits` buffers of a channel are ever in flight or in its gate.

Why this cannot deadlock, though both ends' threads block in `sendall`: a consumer's thread never waits
for its gates, so it always reads; and what it sends is bounded (a request per channel, a credit frame
per quarter of a channel's credit), far below a socket's buffers, so its sends never wait on a producer
that is itself blocked sending.

The wire format (big-endian), one frame = kind (1 byte), payload length (4 bytes), payload; a stream is
a 4-byte id that the consumer chose, 0 (CONNECTION) meaning the whole connection:
- REQUEST (consumer): MAGIC, stream, subpartition and initial credits (4 bytes each), the length of the
  leader session (2 bytes), the leader session and the partition id (UTF-8): partitions are found by
  both, as partition ids repeat across leaders;
- CREDIT (consumer): stream, 4 bytes of credit; CANCEL (consumer): stream, whose consumer is gone;
- BUFFERS / END (producer): stream, then buffers, each a 4-byte length and the pickle (protocol 5) of one
  item; END says the subpartition ends after them;
- ERROR (producer): stream, "CODE: message" (UTF-8); the stream's last frame, or the connection's.
The serving side never unpickles anything: requests are parsed field by field and bounded in size, and
the first frame of a connection must be a request, else it is refused.

With `security.ssl.internal.enabled` every connection is mutual TLS with the internal keystore and
truststore, and pinned fingerprints (`security.ssl.internal.cert.fingerprint`) are checked on both ends,
as on the gRPC endpoints (rpc/peer_auth.py). A peer that fails the handshake or sends anything but a
request is logged and dropped before anything it sent is used."""

from __future__ import annotations

import dataclasses
import functools
import logging
import os
import pickle
import select
import socket
import ssl
import struct
import threading
import time
from typing import Callable, Iterator

from ha_flink.runtime.network.partition import (
    MAX_BUFFER_BYTES, PartitionAbortedError, PartitionRegistry, ReaderSupersededError, ResultPartition,
    Subpartition,
)
from ha_flink.runtime.task.channels import END_OF_PARTITION, InputGate
from ha_flink.security.keystores import fingerprint
from ha_flink.security.tls import TlsSettings

logger = logging.getLogger(__name__)

INITIAL_CREDITS = 32
MAX_BUFFERS_PER_MESSAGE = 16
PARTITION_WAIT_SECONDS = 30.0
REQUEST_SECONDS = 10.0  # for a connection's TLS handshake and first request, and a consumer's connect
IO_SECONDS = 60.0  # a send, or the rest of a TLS record, that takes longer: the peer is gone or stuck
MAX_REQUEST_BYTES = 4096
MAGIC = b"HAFX2"
MAX_FRAME_BYTES = MAX_BUFFERS_PER_MESSAGE * (MAX_BUFFER_BYTES + 4) + 4  # (what a producer may send in one frame)
CONNECTION = 0
RECEIVE_BYTES = 256 * 1024

REQUEST, CREDIT, CANCEL, BUFFERS, END, ERROR = range(1, 7)
_HEADER = struct.Struct(">BI")
_STREAM = struct.Struct(">I")
_CREDIT = struct.Struct(">II")
_LENGTH = struct.Struct(">I")
_REQUEST = struct.Struct(">IIIH")


class ExchangeError(Exception):
    """A named failure of a stream or connection: `code` is gRPC's status name for its kind (NOT_FOUND, ...)."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(f"{code}: {detail}")
        self.code = code
        self.detail = detail


@dataclasses.dataclass(frozen=True)
class PartitionRequest:
    session: str  # the leader session of the consumer (and so of the producer it wants)
    partition_id: str
    subpartition: int
    credits: int


# -- frames -------------------------------------------------------------------------------------------------

def _frame(kind: int, parts: list[bytes]) -> bytes:
    return b"".join([_HEADER.pack(kind, sum(map(len, parts))), *parts])


def request_frame(stream: int, request: PartitionRequest) -> bytes:
    session = request.session.encode()
    return _frame(REQUEST, [MAGIC, _REQUEST.pack(stream, request.subpartition, request.credits, len(session)),
                            session, request.partition_id.encode()])


def parse_request(kind: int, payload: bytes) -> tuple[int, PartitionRequest]:
    fixed = len(MAGIC) + _REQUEST.size
    if kind != REQUEST or not payload.startswith(MAGIC) or len(payload) < fixed:
        raise ExchangeError("INVALID_ARGUMENT", "not a partition request of this data exchange")
    stream, subpartition, credits, session_length = _REQUEST.unpack_from(payload, len(MAGIC))
    if len(payload) < fixed + session_length:
        raise ExchangeError("INVALID_ARGUMENT", "the request ends inside its leader session")
    if stream == CONNECTION:
        raise ExchangeError("INVALID_ARGUMENT", f"a request for stream {CONNECTION}, which means the connection")
    try:
        session = payload[fixed:fixed + session_length].decode()
        pid = payload[fixed + session_length:].decode()
    except UnicodeDecodeError:
        raise ExchangeError("INVALID_ARGUMENT", "the request's leader session or partition id is not UTF-8") from None
    return stream, PartitionRequest(session, pid, subpartition, credits)


def buffers_frame(stream: int, items: list[bytes], ended: bool) -> bytes:
    parts: list[bytes] = [_STREAM.pack(stream)]
    for data in items:
        parts.append(_LENGTH.pack(len(data)))
        parts.append(data)
    return _frame(END if ended else BUFFERS, parts)


def error_frame(stream: int, error: ExchangeError) -> bytes:
    return _frame(ERROR, [_STREAM.pack(stream), str(error).encode()])


def split_buffers(payload: bytes) -> list[memoryview]:
    """The buffers of a BUFFERS or END payload after its stream id."""
    view, items, at = memoryview(payload), [], _STREAM.size
    while at < len(view):
        if at + _LENGTH.size > len(view):
            raise ExchangeError("DATA_LOSS", "a buffer frame ends inside a buffer's length")
        (length,) = _LENGTH.unpack_from(view, at)
        at += _LENGTH.size
        if at + length > len(view):
            raise ExchangeError("DATA_LOSS", "a buffer frame ends inside a buffer")
        items.append(view[at:at + length])
        at += length
    return items


def _stream_of(kind: int, payload: bytes) -> int:
    if len(payload) < _STREAM.size:
        raise ExchangeError("INVALID_ARGUMENT", f"a frame of kind {kind} without a stream")
    return int(_STREAM.unpack_from(payload)[0])


class _Inbox:
    """Bytes received, cut into frames as they complete."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._data = bytearray()

    def frames(self, chunk: bytes) -> Iterator[tuple[int, bytes]]:
        data = self._data
        data += chunk
        at = 0
        try:
            while len(data) - at >= _HEADER.size:
                kind, length = _HEADER.unpack_from(data, at)
                if length > self.limit:
                    raise ExchangeError("INVALID_ARGUMENT", f"a frame of {length} bytes (kind {kind}) is over "
                                                            f"{self.limit} bytes")
                if len(data) - at - _HEADER.size < length:
                    break
                start = at + _HEADER.size
                at = start + length
                yield kind, bytes(data[start:at])
        finally:
            del data[:at]


# -- sockets ------------------------------------------------------------------------------------------------

def _keepalive(sock: socket.socket) -> None:
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    for option, value in (("TCP_KEEPIDLE", 5), ("TCP_KEEPINTVL", 2), ("TCP_KEEPCNT", 3)):
        if hasattr(socket, option):  # (Linux; elsewhere the system's keepalive times apply)
            sock.setsockopt(socket.IPPROTO_TCP, getattr(socket, option), value)


@functools.lru_cache(maxsize=8)
def _client_context(tls: TlsSettings) -> ssl.SSLContext:
    """One client context per TLS settings, shared by every connection of the process: making one loads
    the key (2.8 ms here), more than a handshake."""
    return tls.client_context()


def _check_pins(sock: socket.socket, tls: TlsSettings, peer: str) -> None:
    if not tls.fingerprints or not isinstance(sock, ssl.SSLSocket):
        return
    der = sock.getpeercert(binary_form=True)
    found = fingerprint(der) if der else None
    if found not in tls.fingerprints:
        raise ExchangeError("UNAUTHENTICATED", f"the certificate of {peer} (SHA-1 {found or 'none'}) is not one pinned "
                                               "by security.ssl.internal.cert.fingerprint")


def _receive(sock: socket.socket) -> bytes | None:
    """What the peer sent, once `select` found its socket readable: b"" once it closed, None if what came
    was no data yet (a part of a TLS record, or a TLS message such as a session ticket)."""
    if not isinstance(sock, ssl.SSLSocket):
        return sock.recv(RECEIVE_BYTES)
    sock.settimeout(0.0)  # (else a session ticket alone would make recv wait for data that may not come)
    try:
        chunk = sock.recv(RECEIVE_BYTES)
        while chunk and (pending := sock.pending()):  # (in TLS's buffer, not the socket's: select misses it)
            chunk += sock.recv(pending)
        return chunk
    except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
        return None
    finally:
        sock.settimeout(IO_SECONDS)


def _drain_until_closed(sock: socket.socket) -> None:
    """After the last frame: read (and drop) what the peer still sends until it closes, so closing here
    sends no reset that could cost the peer that last frame."""
    try:
        sock.settimeout(REQUEST_SECONDS)
        while sock.recv(65536):
            pass
    except (OSError, ValueError):
        pass


class _Connection:
    """One socket and the thread that does all its I/O. Other threads hand it work under `lock` and
    `wake` it; it sleeps in `select` on the socket and a pipe, which is written only while it sleeps.
    `close` (any thread) makes it end: the socket is shut down through a duplicate of its descriptor,
    which wakes a thread blocked in a send, and never touches a TLS socket's state from a second thread."""

    def __init__(self, raw: socket.socket) -> None:
        self.raw = raw
        self.sock: socket.socket = raw  # (the TLS socket once wrapped)
        self.lock = threading.Lock()
        self.closing = False
        self._sleeping = False
        self._woken = False
        self._wake_read, self._wake_write = os.pipe()
        os.set_blocking(self._wake_read, False)
        os.set_blocking(self._wake_write, False)
        self._dup: socket.socket | None = socket.socket(fileno=os.dup(raw.fileno()))
        self._poll: select.poll | None = None
        self._fileno = -1

    def wake_locked(self) -> None:
        """(Under `lock`.) There is work for the thread: wake it if it sleeps."""
        if self._sleeping and not self._woken:
            self._woken = True
            os.write(self._wake_write, b"w")

    def has_work_locked(self) -> bool:
        return self.closing

    def wait(self, timeout: float | None) -> bool:
        """Sleeps until the socket is readable, work comes, or `timeout` passes; True if readable."""
        if self._poll is None:  # (on `sock`: wrapping a socket in TLS detaches `raw` from its descriptor)
            self._poll = select.poll()
            self._poll.register(self.sock.fileno(), select.POLLIN)
            self._poll.register(self._wake_read, select.POLLIN)
            self._fileno = self.sock.fileno()
        with self.lock:
            if self.has_work_locked():
                timeout = 0
            self._sleeping = timeout != 0
        try:
            events = self._poll.poll(None if timeout is None else timeout * 1000)
        finally:
            if self._sleeping:
                with self.lock:
                    self._sleeping = False
                    if self._woken:
                        self._woken = False
                        try:
                            os.read(self._wake_read, 64)
                        except BlockingIOError:
                            pass
        fileno = self._fileno
        return any(fd == fileno for fd, _ in events)

    def close(self) -> None:
        with self.lock:
            self.closing = True
            self.wake_locked()
            if self._dup is not None:
                try:
                    self._dup.shutdown(socket.SHUT_RDWR)
                except OSError:  # (not connected any more)
                    pass

    def release(self) -> None:
        """(The connection's thread, at its end.)"""
        with self.lock:
            self.closing = True
            if self._dup is not None:
                self._dup.close()
                self._dup = None
        os.close(self._wake_read)
        os.close(self._wake_write)
        self.sock.close()
        if self.sock is not self.raw:
            self.raw.close()


# -- the serving side ---------------------------------------------------------------------------------------

@dataclasses.dataclass(eq=False)
class _ServedStream:
    """One input channel of the consumer, as served: the subpartition it reads once registered."""

    id: int
    request: PartitionRequest
    connection: _ServedConnection
    deadline: float  # for its partition to be registered
    credits: int
    subpartition: Subpartition | None = None

    def notify_data(self) -> None:  # (Subpartition's reader interface)
        self.connection.notify(self)

    def arrive(self, partition: ResultPartition) -> None:  # (PartitionRegistry.watch's callback)
        self.connection.arrive(self, partition)


class _ServedConnection(_Connection):
    """A consumer TaskManager's connection, as its producer serves it."""

    def __init__(self, server: PartitionServer, raw: socket.socket, peer: str) -> None:
        super().__init__(raw)
        self.server = server
        self.peer = peer
        self.streams: dict[int, _ServedStream] = {}  # (its thread's alone)
        self._ready: set[_ServedStream] = set()  # streams that may have something to send (its thread's)
        self._notified: list[_ServedStream] = []  # from other threads, under lock
        self._arrived: list[tuple[_ServedStream, ResultPartition]] = []

    def notify(self, stream: _ServedStream) -> None:
        with self.lock:
            self._notified.append(stream)
            self.wake_locked()

    def arrive(self, stream: _ServedStream, partition: ResultPartition) -> None:
        with self.lock:
            self._arrived.append((stream, partition))
            self.wake_locked()

    def has_work_locked(self) -> bool:
        return self.closing or bool(self._notified or self._arrived)

    def serve(self, inbox: _Inbox, first: tuple[int, bytes]) -> None:
        self._on_frame(*first)
        for kind, payload in inbox.frames(b""):  # (what came with the first)
            self._on_frame(kind, payload)
        while True:
            with self.lock:
                if self.closing:
                    return
                notified, self._notified = self._notified, []
                arrived, self._arrived = self._arrived, []
            for stream, partition in arrived:
                if self.streams.get(stream.id) is stream:
                    self._attach(stream, partition)
            self._ready.update(stream for stream in notified if self.streams.get(stream.id) is stream)
            frames: list[bytes] = []
            sent: list[tuple[Subpartition, list[bytes], bool]] = []
            for stream in list(self._ready):
                self._collect(stream, frames, sent)
            now = time.monotonic()
            waiting = [s for s in self.streams.values() if s.subpartition is None]
            for stream in waiting:
                if stream.deadline <= now:
                    self._drop(stream, ExchangeError("NOT_FOUND", f"no result partition {stream.request.partition_id} "
                                                                  f"of leader session {stream.request.session} here"),
                               frames)
            if frames:
                self._send(frames, sent)
            if self._ready:
                timeout: float | None = 0
            elif waiting:
                timeout = max(0.0, min(s.deadline for s in waiting) - now)
            else:
                timeout = None
            if self.wait(timeout):
                chunk = _receive(self.sock)
                if chunk is None:
                    continue
                if not chunk:
                    return  # (the consumer closed: its TaskManager is gone or stopping)
                for kind, payload in inbox.frames(chunk):
                    self._on_frame(kind, payload)

    def _on_frame(self, kind: int, payload: bytes) -> None:
        if kind == REQUEST:
            stream_id, request = parse_request(kind, payload)
            if stream_id in self.streams:
                raise ExchangeError("INVALID_ARGUMENT", f"a second request for stream {stream_id}")
            stream = _ServedStream(stream_id, request, self, time.monotonic() + PARTITION_WAIT_SECONDS,
                                   request.credits)
            self.streams[stream_id] = stream
            partition = self.server.registry.watch(request.session, request.partition_id, stream.arrive)
            if partition is not None:
                self._attach(stream, partition)
        elif kind == CREDIT:
            if len(payload) != _CREDIT.size:
                raise ExchangeError("INVALID_ARGUMENT", f"a credit frame of {len(payload)} bytes")
            stream_id, credit = _CREDIT.unpack(payload)
            credited = self.streams.get(stream_id)
            if credited is not None:  # (else it ended meanwhile)
                credited.credits += credit
                if credited.subpartition is not None:
                    self._ready.add(credited)
        elif kind == CANCEL:
            cancelled = self.streams.get(_stream_of(kind, payload))
            if cancelled is not None:
                self._drop(cancelled, None, [])
        else:
            raise ExchangeError("INVALID_ARGUMENT", f"a frame of kind {kind} from a consumer")

    def _attach(self, stream: _ServedStream, partition: ResultPartition) -> None:
        request = stream.request
        if not 0 <= request.subpartition < len(partition.subpartitions):
            error = ExchangeError("INVALID_ARGUMENT", f"{request.partition_id} has no subpartition {request.subpartition}")
            frames: list[bytes] = []
            self._drop(stream, error, frames)
            self._send(frames, [])
            return
        stream.subpartition = partition.subpartitions[request.subpartition]
        if stream.subpartition.attach(stream) is not None:
            logger.warning("%s[%d]: a new stream from %s takes over from the one reading it", request.partition_id,
                           request.subpartition, self.peer)
        self.server.streams_served += 1
        self._ready.add(stream)

    def _collect(self, stream: _ServedStream, frames: list[bytes],
                 sent: list[tuple[Subpartition, list[bytes], bool]]) -> None:
        self._ready.discard(stream)
        subpartition = stream.subpartition
        assert subpartition is not None  # (only attached streams are ready)
        try:
            items, ended, more = subpartition.poll(min(stream.credits, MAX_BUFFERS_PER_MESSAGE), stream)
        except PartitionAbortedError as error:
            self._drop(stream, ExchangeError("ABORTED", f"{stream.request.partition_id}: {error}"), frames)
            return
        except ReaderSupersededError as error:
            self._drop(stream, ExchangeError("UNAVAILABLE", f"{stream.request.partition_id}: {error}"), frames)
            return
        if items or ended:
            frames.append(buffers_frame(stream.id, items, ended))
            sent.append((subpartition, items, ended))
            stream.credits -= len(items)
        if ended:
            self._drop(stream, None, frames)
        elif more and stream.credits > 0:
            self._ready.add(stream)

    def _drop(self, stream: _ServedStream, error: ExchangeError | None, frames: list[bytes]) -> None:
        """The stream ends: with `error` said to the consumer (appended to `frames`), if given."""
        del self.streams[stream.id]
        self._ready.discard(stream)
        if stream.subpartition is not None:
            stream.subpartition.detach(stream)
        else:
            self.server.registry.unwatch(stream.request.session, stream.request.partition_id, stream.arrive)
        if error is not None:
            (logger.info if error.code in ("NOT_FOUND", "ABORTED") else logger.warning)(
                "Data stream %d to %s: %s", stream.id, self.peer, error)
            frames.append(error_frame(stream.id, error))

    def _send(self, frames: list[bytes], sent: list[tuple[Subpartition, list[bytes], bool]]) -> None:
        try:
            self.sock.sendall(frames[0] if len(frames) == 1 else b"".join(frames))
        except OSError:  # (not all of it left: the consumer cannot have taken any of it for sure)
            for subpartition, items, ended in sent:
                subpartition.give_back(items, ended)
            raise
        self.server.frames_sent += len(sent)

    def end(self) -> None:
        """(Its thread, at its end.) Every stream lets go of its subpartition, for the consumer's next try."""
        for stream in list(self.streams.values()):
            self._drop(stream, None, [])


class PartitionServer:
    """The data port of one TaskManager: serves its result partitions, one thread per consumer's connection."""

    def __init__(self, registry: PartitionRegistry, bind_host: str, port: int, tls: TlsSettings | None,
                 name: str) -> None:
        self.registry = registry
        self.tls = tls
        self._context = tls.server_context() if tls is not None else None
        family = socket.AF_INET6 if ":" in bind_host else socket.AF_INET
        self._listener = socket.socket(family, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            self._listener.bind((bind_host, port))
        except OSError as error:
            self._listener.close()
            raise OSError(f"cannot bind the TaskManager's data port {bind_host}:{port} "
                          f"(taskmanager.data.port): {error}") from error
        self._listener.listen(socket.SOMAXCONN)
        self.port: int = self._listener.getsockname()[1]
        self._name = name
        self._open: set[_ServedConnection] = set()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self.streams_served = 0  # (for tests and benches: streams that reached a subpartition)
        self.frames_sent = 0  # (buffer frames)
        self._thread = threading.Thread(target=self._accept, name=f"data port {self.port} of {name}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    @property
    def open_connections(self) -> int:
        with self._lock:
            return len(self._open)

    def stop(self) -> None:
        self._stopping.set()
        try:
            self._listener.shutdown(socket.SHUT_RDWR)  # (wakes the accept; a close alone does not on Linux)
        except OSError:
            pass
        self._listener.close()
        with self._lock:
            for connection in list(self._open):
                connection.close()
        self._thread.join(5)

    def _accept(self) -> None:
        while not self._stopping.is_set():
            try:
                sock, address = self._listener.accept()
            except OSError:
                if self._stopping.is_set():
                    return
                logger.exception("The data port of %s cannot accept", self._name)
                self._stopping.wait(0.1)  # (out of descriptors, say: not a hot loop of the same error)
                continue
            peer = f"{address[0]}:{address[1]}"
            threading.Thread(target=self._serve, args=(sock, peer), name=f"serve data to {peer}", daemon=True).start()

    def _serve(self, raw: socket.socket, peer: str) -> None:
        connection = _ServedConnection(self, raw, peer)
        with self._lock:
            self._open.add(connection)
            if self._stopping.is_set():
                connection.close()
        inbox = _Inbox(MAX_REQUEST_BYTES)
        accepted = False
        try:
            _keepalive(raw)
            raw.settimeout(REQUEST_SECONDS)  # (a stranger may not hold a thread with a silent connection)
            if self._context is not None:
                connection.sock = self._context.wrap_socket(raw, server_side=True)
                assert self.tls is not None
                _check_pins(connection.sock, self.tls, peer)
            first = self._first_frame(connection.sock, inbox)
            parse_request(*first)  # (a stranger is refused before anything it sent is used)
            accepted = True
            connection.sock.settimeout(IO_SECONDS)
            connection.serve(inbox, first)
        except ExchangeError as error:
            self._refuse(connection.sock, error, peer, quiet=accepted)
        except (OSError, ValueError, struct.error) as error:  # (ssl.SSLError is an OSError)
            if not accepted and not self._stopping.is_set():
                logger.warning("Refused a data connection from %s: %s", peer, error)
            else:
                logger.debug("The data connection to %s ended: %s", peer, error)
        except Exception:
            logger.exception("Serving the data connection from %s failed", peer)
        finally:
            connection.end()
            with self._lock:
                self._open.discard(connection)
            connection.release()

    @staticmethod
    def _first_frame(sock: socket.socket, inbox: _Inbox) -> tuple[int, bytes]:
        deadline = time.monotonic() + REQUEST_SECONDS
        while True:
            sock.settimeout(max(0.001, deadline - time.monotonic()))
            chunk = sock.recv(MAX_REQUEST_BYTES)
            if not chunk:
                raise ConnectionError("the peer closed the connection before its request")
            for frame in inbox.frames(chunk):
                return frame

    def _refuse(self, sock: socket.socket, error: ExchangeError, peer: str, quiet: bool) -> None:
        (logger.info if quiet else logger.warning)("Data connection from %s: %s", peer, error)
        try:
            sock.settimeout(REQUEST_SECONDS)
            sock.sendall(error_frame(CONNECTION, error))
            sock.shutdown(socket.SHUT_WR)  # (a stranger that waits for the end sees it)
        except OSError:
            return
        _drain_until_closed(sock)


# -- the reading side ---------------------------------------------------------------------------------------

class RemoteInputChannel:
    """One input channel of `gate`, fed from a result partition of another TaskManager over the connection
    of `connections` to it. `on_failure` is called (on that connection's thread) with the reason when the
    channel fails; never after `cancel()`. `ended` is set once it delivered its end, failed or was cancelled."""

    def __init__(self, connections: DataConnections, address: str, request: PartitionRequest, gate: InputGate,
                 channel_index: int, on_failure: Callable[[str], None]) -> None:
        self.connections = connections
        self.address = address
        self.request = request
        self.gate = gate
        self.channel_index = channel_index
        self.on_failure = on_failure
        self.ended = threading.Event()
        self.stream = 0  # (its id on the connection, once started)
        self._connection: _ClientConnection | None = None
        self._grant_every = max(1, request.credits // 4)
        self._taken = 0

    @property
    def connected(self) -> bool:
        """(For benches.) Its request went out."""
        return self._connection is not None and self._connection.connected and self.stream in self._connection.channels

    @property
    def what(self) -> str:
        return f"{self.request.partition_id}[{self.request.subpartition}]"

    def start(self) -> None:
        # Credit goes back in batches, as a frame costs more than its content; fewer than `credits` are
        # ever held back, so the producer always has some.
        self.gate.set_credit_return(self.channel_index, self._taken_one)
        self._connection = self.connections.open(self)

    def cancel(self) -> None:
        if self._connection is not None:
            self._connection.cancel(self)
        self.ended.set()

    def _taken_one(self) -> None:  # (the task's thread)
        self._taken += 1
        if self._taken >= self._grant_every and self._connection is not None:
            self._connection.grant(self, self._taken)
            self._taken = 0


class _ClientConnection(_Connection):
    """This TaskManager's connection to one producing TaskManager, carrying all channels from it."""

    def __init__(self, owner: DataConnections, address: str) -> None:
        host, _, port = address.rpartition(":")
        super().__init__(socket.socket(socket.AF_INET6 if ":" in host.strip("[]") else socket.AF_INET))
        self.owner = owner
        self.address = address
        self._host, self._port = host.strip("[]"), int(port)
        self.channels: dict[int, RemoteInputChannel] = {}  # under lock
        self._outbox: list[bytes] = []  # under lock
        self._next_stream = 1
        self.connected = False  # (for benches: the requests so far are sent)
        self.thread = threading.Thread(target=self._run, name=f"read data from {address}", daemon=True)

    def has_work_locked(self) -> bool:
        return self.closing or bool(self._outbox)

    def add(self, channel: RemoteInputChannel) -> bool:
        """Carries `channel` from now on; False if this connection is closing (take a new one)."""
        with self.lock:
            if self.closing:
                return False
            channel.stream = self._next_stream
            self._next_stream += 1
            self.channels[channel.stream] = channel
            self._outbox.append(request_frame(channel.stream, channel.request))
            self.wake_locked()
            return True

    def cancel(self, channel: RemoteInputChannel) -> None:
        with self.lock:
            if self.channels.get(channel.stream) is channel:
                del self.channels[channel.stream]
                self._outbox.append(_frame(CANCEL, [_STREAM.pack(channel.stream)]))
                self.wake_locked()

    def grant(self, channel: RemoteInputChannel, credit: int) -> None:
        with self.lock:
            if self.channels.get(channel.stream) is channel:
                self._outbox.append(_frame(CREDIT, [_CREDIT.pack(channel.stream, credit)]))
                self.wake_locked()

    def _run(self) -> None:
        code, detail = "UNAVAILABLE", "the connection ended"
        try:
            self._connect()
            self._exchange()
        except ExchangeError as error:
            code, detail = error.code, error.detail
        except (OSError, ValueError) as error:
            detail = str(error) or type(error).__name__
        except Exception as error:  # (a bug: the channels fail by name, they never hang)
            logger.exception("The data connection to %s failed", self.address)
            code, detail = "INTERNAL", f"{type(error).__name__}: {error}"
        finally:
            with self.lock:
                stopping, self.closing = self.closing, True
                channels, self.channels = list(self.channels.values()), {}
            self.owner.forget(self)
            for channel in channels:
                channel.ended.set()
                if not stopping:
                    channel.on_failure(f"{code}: reading {channel.what} from TaskManager {self.address}: {detail}")
            self.release()

    def _connect(self) -> None:
        self.raw.settimeout(REQUEST_SECONDS)
        self.raw.connect((self._host, self._port))
        _keepalive(self.raw)
        tls = self.owner.tls
        if tls is not None:
            self.sock = _client_context(tls).wrap_socket(self.raw, server_hostname=self._host)
            _check_pins(self.sock, tls, f"TaskManager {self.address}")
        self.sock.settimeout(IO_SECONDS)

    def _exchange(self) -> None:
        inbox = _Inbox(MAX_FRAME_BYTES)
        while True:
            with self.lock:
                if self.closing:
                    return
                outbox, self._outbox = self._outbox, []
            if outbox:
                self.sock.sendall(b"".join(outbox))
                self.connected = True
            if self.wait(None):
                chunk = _receive(self.sock)
                if chunk is None:
                    continue
                if not chunk:
                    raise ConnectionError("the producer closed the connection")
                for kind, payload in inbox.frames(chunk):
                    self._on_frame(kind, payload)

    def _on_frame(self, kind: int, payload: bytes) -> None:
        stream = _stream_of(kind, payload)
        if kind == ERROR:
            code, _, message = payload[_STREAM.size:].decode(errors="replace").partition(": ")
            if stream == CONNECTION:
                raise ExchangeError(code or "UNKNOWN", message)
            self._end(stream, f"{code or 'UNKNOWN'}: {message}")
            return
        if kind not in (BUFFERS, END):
            raise ExchangeError("INVALID_ARGUMENT", f"TaskManager {self.address} sent a frame of kind {kind}")
        with self.lock:
            channel = self.channels.get(stream)
        if channel is None:
            return  # (cancelled: what was on the way is dropped)
        try:
            items = [pickle.loads(data) for data in split_buffers(payload)]
        except Exception as error:  # (a buffer that does not unpickle: the task fails, it never hangs)
            self._end(stream, f"DATA_LOSS: reading {channel.what} from TaskManager {self.address}: "
                              f"{type(error).__name__}: {error}", cancel=True)
            return
        put, index = channel.gate.put_credited, channel.channel_index
        for item in items:
            put(index, item)
        if kind == END:
            put(index, END_OF_PARTITION)
            self._end(stream, None)

    def _end(self, stream: int, failure: str | None, cancel: bool = False) -> None:
        with self.lock:
            channel = self.channels.pop(stream, None)
            if channel is not None and cancel:  # (the producer may go on sending: tell it to stop)
                self._outbox.append(_frame(CANCEL, [_STREAM.pack(stream)]))
        if channel is None:
            return
        channel.ended.set()
        if failure is not None:
            channel.on_failure(failure)


class DataConnections:
    """The reading side of one TaskManager's data exchange: a connection per producing TaskManager, made at
    the first channel from it and kept (idle, it costs nothing) until it fails or `close()`."""

    def __init__(self, tls: TlsSettings | None) -> None:
        self.tls = tls
        self._by_address: dict[str, _ClientConnection] = {}
        self._lock = threading.Lock()
        self._closed = False

    def open(self, channel: RemoteInputChannel) -> _ClientConnection:
        with self._lock:
            if self._closed:
                raise RuntimeError("the data connections of this TaskManager are closed")
            while True:
                connection = self._by_address.get(channel.address)
                if connection is None:
                    connection = self._by_address[channel.address] = _ClientConnection(self, channel.address)
                    connection.thread.start()
                if connection.add(channel):
                    return connection
                del self._by_address[channel.address]  # (it is ending: the channel takes a new one)

    def forget(self, connection: _ClientConnection) -> None:
        with self._lock:
            if self._by_address.get(connection.address) is connection:
                del self._by_address[connection.address]

    @property
    def open_connections(self) -> int:
        with self._lock:
            return len(self._by_address)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            connections = list(self._by_address.values())
        for connection in connections:
            connection.close()
        for connection in connections:
            connection.thread.join(5)
