"""Both ends of the data exchange between TaskManagers: a TCP connection per remote input channel,
served and read by threads, with credit-based flow control (Flink's netty shuffle, without netty).

Why threads and plain sockets, not the event loop and gRPC: per message, the gRPC stream this replaced cost
about 330 µs of CPU at its two ends, this exchange about 125 µs (`bench/transport.py`); at 32
TaskManagers every checkpoint sends a barrier down each of 4,096 channels, and an idle job's TaskManagers
spent most of their CPU in the exchange's event-loop hand-overs. So each connection has one thread on
each side, which does all the I/O of that socket (so TLS is never used from two threads) and blocks
without polling: an idle channel costs nothing.

Serving side (`PartitionServer`, listening on `taskmanager.data.port`): read the consumer's request,
wait for its partition to be registered, then send buffers while the consumer has credit, one credit per
buffer; what is queued when a frame goes out goes with it (up to MAX_BUFFERS_PER_MESSAGE). Reading side
(`RemoteInputChannel`): ask with an initial credit, hand each buffer to the task's input gate, and give
the credit back once the gate took it (in batches of a quarter of the credit), so at most `credits`
buffers are ever in flight or waiting per channel.

The wire format (big-endian), one frame = kind (1 byte), payload length (4 bytes), payload:
- REQUEST (consumer): MAGIC, subpartition and initial credits (4 bytes each), the length of the leader
  session (2 bytes), the leader session and the partition id (UTF-8): partitions are found by both, as
  partition ids repeat across leaders;
- CREDIT (consumer): 4 bytes of credit;
- BUFFERS / END (producer): buffers, each a 4-byte length and the pickle (protocol 5) of one item; END
  says the subpartition ends after them;
- ERROR (producer): "CODE: message" (UTF-8), the last frame of a connection.
The serving side never unpickles anything: a request is parsed field by field and its size is bounded.

With `security.ssl.internal.enabled` every connection is mutual TLS with the internal keystore and
truststore, and pinned fingerprints (`security.ssl.internal.cert.fingerprint`) are checked on both ends,
as on the gRPC endpoints (rpc/peer_auth.py). A peer that fails the handshake or sends anything but a
request is logged and dropped before anything it sent is used."""

from __future__ import annotations

import dataclasses
import functools
import io
import logging
import os
import pickle
import socket
import ssl
import struct
import threading
from typing import Callable

from ha_flink.runtime.network.partition import (
    MAX_BUFFER_BYTES, PartitionAbortedError, PartitionRegistry, ReaderSupersededError, Subpartition,
)
from ha_flink.runtime.task.channels import END_OF_PARTITION, InputGate, TaskCancelled
from ha_flink.security.keystores import fingerprint
from ha_flink.security.tls import TlsSettings

logger = logging.getLogger(__name__)

INITIAL_CREDITS = 32
MAX_BUFFERS_PER_MESSAGE = 16
PARTITION_WAIT_SECONDS = 30.0
REQUEST_SECONDS = 10.0  # for a connection's TLS handshake and request, and a consumer's connect
MAX_REQUEST_BYTES = 4096
MAGIC = b"HAFX1"
MAX_FRAME_BYTES = MAX_BUFFERS_PER_MESSAGE * (MAX_BUFFER_BYTES + 4)  # (what a producer may send in one frame)

REQUEST, CREDIT, BUFFERS, END, ERROR = range(1, 6)
_HEADER = struct.Struct(">BI")
_LENGTH = struct.Struct(">I")
_REQUEST = struct.Struct(">IIH")


class ExchangeError(Exception):
    """A named failure of one connection: `code` is gRPC's status name for its kind (NOT_FOUND, ...)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code


@dataclasses.dataclass(frozen=True)
class PartitionRequest:
    session: str  # the leader session of the consumer (and so of the producer it wants)
    partition_id: str
    subpartition: int
    credits: int


# -- frames -------------------------------------------------------------------------------------------------

def _frame(kind: int, parts: list[bytes]) -> bytes:
    return b"".join([_HEADER.pack(kind, sum(map(len, parts))), *parts])


def _read_exactly(reader: io.BufferedReader, size: int) -> bytes:
    data = reader.read(size)
    if data is None or len(data) < size:
        raise ConnectionError("the peer closed the connection")
    return data


def _read_frame(reader: io.BufferedReader, limit: int) -> tuple[int, bytes]:
    kind, length = _HEADER.unpack(_read_exactly(reader, _HEADER.size))
    if length > limit:
        raise ExchangeError("INVALID_ARGUMENT", f"a frame of {length} bytes (kind {kind}) is over {limit} bytes")
    return kind, _read_exactly(reader, length)


def request_frame(request: PartitionRequest) -> bytes:
    session = request.session.encode()
    return _frame(REQUEST, [MAGIC, _REQUEST.pack(request.subpartition, request.credits, len(session)), session,
                            request.partition_id.encode()])


def parse_request(kind: int, payload: bytes) -> PartitionRequest:
    fixed = len(MAGIC) + _REQUEST.size
    if kind != REQUEST or not payload.startswith(MAGIC) or len(payload) < fixed:
        raise ExchangeError("INVALID_ARGUMENT", "not a partition request of this data exchange")
    subpartition, credits, session_length = _REQUEST.unpack_from(payload, len(MAGIC))
    if len(payload) < fixed + session_length:
        raise ExchangeError("INVALID_ARGUMENT", "the request ends inside its leader session")
    try:
        session = payload[fixed:fixed + session_length].decode()
        pid = payload[fixed + session_length:].decode()
    except UnicodeDecodeError:
        raise ExchangeError("INVALID_ARGUMENT", "the request's leader session or partition id is not UTF-8") from None
    return PartitionRequest(session, pid, subpartition, credits)


def buffers_frame(items: list[bytes], ended: bool) -> bytes:
    parts: list[bytes] = []
    for data in items:
        parts.append(_LENGTH.pack(len(data)))
        parts.append(data)
    return _frame(END if ended else BUFFERS, parts)


def split_buffers(payload: bytes) -> list[memoryview]:
    view, items, at = memoryview(payload), [], 0
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


# -- sockets ------------------------------------------------------------------------------------------------

def _keepalive(sock: socket.socket) -> None:
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    for option, value in (("TCP_KEEPIDLE", 5), ("TCP_KEEPINTVL", 2), ("TCP_KEEPCNT", 3)):
        if hasattr(socket, option):  # (Linux; elsewhere the system's keepalive times apply)
            sock.setsockopt(socket.IPPROTO_TCP, getattr(socket, option), value)


@functools.lru_cache(maxsize=8)
def _client_context(tls: TlsSettings) -> ssl.SSLContext:
    """One client context per TLS settings, shared by every input channel of the process: making one loads
    the key (2.8 ms here), which per channel was more than the handshake itself."""
    return tls.client_context()


def _check_pins(sock: socket.socket, tls: TlsSettings, peer: str) -> None:
    if not tls.fingerprints or not isinstance(sock, ssl.SSLSocket):
        return
    der = sock.getpeercert(binary_form=True)
    found = fingerprint(der) if der else None
    if found not in tls.fingerprints:
        raise ExchangeError("UNAUTHENTICATED", f"the certificate of {peer} (SHA-1 {found or 'none'}) is not one pinned "
                                               "by security.ssl.internal.cert.fingerprint")


class _Interrupter:
    """Wakes the thread blocked on a socket from another thread: a shutdown through a duplicate of its
    descriptor, so a socket that its thread closed meanwhile (its number maybe reused) is never touched,
    and a TLS socket's state is never touched from a second thread."""

    def __init__(self, sock: socket.socket) -> None:
        self._dup: socket.socket | None = socket.socket(fileno=os.dup(sock.fileno()))
        self._lock = threading.Lock()

    def interrupt(self) -> None:
        with self._lock:
            if self._dup is not None:
                try:
                    self._dup.shutdown(socket.SHUT_RDWR)
                except OSError:  # (not connected any more)
                    pass

    def stop_reading(self) -> None:
        with self._lock:
            if self._dup is not None:
                try:
                    self._dup.shutdown(socket.SHUT_RD)
                except OSError:
                    pass

    def close(self) -> None:
        with self._lock:
            if self._dup is not None:
                self._dup.close()
                self._dup = None


def _drain_until_closed(sock: socket.socket, reader: io.BufferedReader) -> None:
    """After the last frame: read (and drop) what the peer still sends until it closes, so closing here
    sends no reset that could cost the peer that last frame."""
    try:
        sock.settimeout(REQUEST_SECONDS)
        while reader.read1(65536):
            pass
    except (OSError, ValueError):
        pass


# -- the serving side ---------------------------------------------------------------------------------------

class PartitionServer:
    """The data port of one TaskManager: serves its result partitions, one thread per connection."""

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
        self._open: set[_Interrupter] = set()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self.connections_served = 0  # (for tests and benches: connections that reached a partition)
        self.frames_sent = 0
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
            for interrupter in list(self._open):
                interrupter.interrupt()
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
        sock, subpartition, request = raw, None, None
        interrupter = _Interrupter(raw)
        with self._lock:
            self._open.add(interrupter)
        reader: io.BufferedReader | None = None
        try:
            _keepalive(raw)
            raw.settimeout(REQUEST_SECONDS)  # (a stranger may not hold a thread with a silent connection)
            if self._context is not None:
                sock = self._context.wrap_socket(raw, server_side=True)
                assert self.tls is not None
                _check_pins(sock, self.tls, peer)
            reader = sock.makefile("rb")
            request = parse_request(*_read_frame(reader, MAX_REQUEST_BYTES))
            partition = self.registry.wait_for(request.session, request.partition_id, PARTITION_WAIT_SECONDS)
            if partition is None:
                raise ExchangeError("NOT_FOUND", f"no result partition {request.partition_id} of leader session "
                                                 f"{request.session} here")
            if not 0 <= request.subpartition < len(partition.subpartitions):
                raise ExchangeError("INVALID_ARGUMENT", f"{request.partition_id} has no subpartition "
                                                        f"{request.subpartition}")
            subpartition = partition.subpartitions[request.subpartition]
            if subpartition.attach(interrupter) is not None:
                logger.warning("%s[%d]: a new connection from %s takes over from the one reading it", request.partition_id,
                               request.subpartition, peer)
            sock.settimeout(None)  # (from here a wait is back-pressure, however long)
            with self._lock:
                self.connections_served += 1
            self._send(sock, reader, subpartition, request.credits, interrupter)
            _drain_until_closed(sock, reader)
        except ReaderSupersededError:
            logger.info("The data connection to %s ended: a newer one reads its subpartition", peer)
        except PartitionAbortedError as error:
            assert request is not None
            self._refuse(sock, reader, ExchangeError("ABORTED", f"{request.partition_id}: {error}"), peer, quiet=True)
        except ExchangeError as error:
            self._refuse(sock, reader, error, peer, quiet=error.code == "NOT_FOUND")
        except (OSError, ValueError, struct.error) as error:  # (ssl.SSLError is an OSError)
            if request is None and not self._stopping.is_set():
                logger.warning("Refused a data connection from %s: %s", peer, error)
            else:
                logger.debug("The data connection to %s ended: %s", peer, error)
        except Exception:
            logger.exception("Serving the data connection from %s failed", peer)
        finally:
            if subpartition is not None:
                subpartition.detach(interrupter)
            with self._lock:
                self._open.discard(interrupter)
            interrupter.close()
            if reader is not None:
                reader.close()  # (a socket with a file open on it stays open)
            sock.close()

    def _send(self, sock: socket.socket, reader: io.BufferedReader, subpartition: Subpartition, credits: int,
              interrupter: _Interrupter) -> None:
        while True:
            while credits <= 0:  # (credit comes back in quarters; it waits in the socket until needed)
                try:
                    kind, payload = _read_frame(reader, MAX_REQUEST_BYTES)
                except OSError:
                    if subpartition.aborted:  # (abort stopped the reading side to wake us)
                        raise PartitionAbortedError("the producing task of this partition was cancelled or "
                                                    "failed") from None
                    raise
                if kind != CREDIT or len(payload) != _LENGTH.size:
                    raise ExchangeError("INVALID_ARGUMENT", f"a frame of kind {kind} where credit was expected")
                credits += _LENGTH.unpack(payload)[0]
            items, ended = subpartition.take(min(credits, MAX_BUFFERS_PER_MESSAGE), interrupter)
            credits -= len(items)
            try:
                sock.sendall(buffers_frame(items, ended))
            except OSError:  # (not all of the frame left: the consumer cannot have taken any of it)
                subpartition.give_back(items, ended)
                raise
            self.frames_sent += 1
            if ended:
                return

    def _refuse(self, sock: socket.socket, reader: io.BufferedReader | None, error: ExchangeError, peer: str,
                quiet: bool) -> None:
        (logger.info if quiet else logger.warning)("Data connection from %s: %s", peer, error)
        try:
            sock.settimeout(REQUEST_SECONDS)
            sock.sendall(_frame(ERROR, [str(error).encode()]))
            sock.shutdown(socket.SHUT_WR)  # (a stranger that waits for the end sees it)
        except OSError:
            return
        if reader is not None:
            _drain_until_closed(sock, reader)


# -- the reading side ---------------------------------------------------------------------------------------

class RemoteInputChannel:
    """Feeds one input channel of `gate` from a result partition of another TaskManager, on a thread of
    its own, until its end. `on_failure` is called (on that thread) with the reason when the channel
    fails; never after `cancel()`."""

    def __init__(self, address: str, request: PartitionRequest, gate: InputGate, channel_index: int,
                 tls: TlsSettings | None, on_failure: Callable[[str], None]) -> None:
        self.address = address
        self.request = request
        self.gate = gate
        self.channel_index = channel_index
        self.tls = tls
        self.on_failure = on_failure
        self._cancelled = threading.Event()
        self._interrupter: _Interrupter | None = None
        self._lock = threading.Lock()
        self.connected = False  # (the request is sent)
        self.thread = threading.Thread(target=self._run, daemon=True,
                                       name=f"read {request.partition_id}[{request.subpartition}] from {address}")

    def start(self) -> None:
        self.thread.start()

    def cancel(self) -> None:
        self._cancelled.set()
        with self._lock:
            if self._interrupter is not None:
                self._interrupter.interrupt()

    def _run(self) -> None:
        what = f"{self.request.partition_id}[{self.request.subpartition}]"
        try:
            self._read()
        except TaskCancelled:
            pass
        except ExchangeError as error:
            if not self._cancelled.is_set():
                self.on_failure(str(error))
        except (OSError, ValueError) as error:
            if not self._cancelled.is_set() and not self.gate.cancelled.is_set():
                self.on_failure(f"UNAVAILABLE: reading {what} from TaskManager {self.address}: {error}")
        except Exception as error:  # (a buffer that does not unpickle, say: the task fails, it never hangs)
            if not self._cancelled.is_set():
                self.on_failure(f"DATA_LOSS: reading {what} from TaskManager {self.address}: "
                                f"{type(error).__name__}: {error}")

    def _read(self) -> None:
        host, _, port = self.address.rpartition(":")
        raw = socket.create_connection((host.strip("[]"), int(port)), timeout=REQUEST_SECONDS)
        sock = raw
        interrupter = _Interrupter(raw)
        with self._lock:
            self._interrupter = interrupter
        if self._cancelled.is_set():  # (cancelled while connecting)
            interrupter.interrupt()
        try:
            _keepalive(raw)
            if self.tls is not None:
                sock = _client_context(self.tls).wrap_socket(raw, server_hostname=host.strip("[]"))
                _check_pins(sock, self.tls, f"TaskManager {self.address}")
            sock.sendall(request_frame(self.request))
            self.connected = True
            sock.settimeout(None)
            with sock.makefile("rb") as reader:
                self._receive(sock, reader)
        finally:
            with self._lock:
                self._interrupter = None
            interrupter.close()
            sock.close()

    def _receive(self, sock: socket.socket, reader: io.BufferedReader) -> None:
        credits = self.request.credits
        # Credit goes back in batches, as a frame costs more than its content; fewer than `credits` are ever
        # held back, so the producer always has some.
        grant_every, taken = max(1, credits // 4), 0
        put, index = self.gate.put, self.channel_index
        while True:
            kind, payload = _read_frame(reader, MAX_FRAME_BYTES)
            if kind == ERROR:
                text = payload.decode(errors="replace")
                code, _, message = text.partition(": ")
                raise ExchangeError(code or "UNKNOWN", message)
            if kind not in (BUFFERS, END):
                raise ExchangeError("INVALID_ARGUMENT", f"TaskManager {self.address} sent a frame of kind {kind}")
            items = split_buffers(payload)
            for data in items:
                put(index, pickle.loads(data))
            if kind == END:
                put(index, END_OF_PARTITION)
                return
            taken += len(items)
            if taken >= grant_every:
                sock.sendall(_frame(CREDIT, [_LENGTH.pack(taken)]))
                taken = 0
