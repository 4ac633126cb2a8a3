"""The async wait operator (Flink's AsyncWaitOperator, PyFlink's AsyncOperation): runs an AsyncFunction's
`async_invoke` for each input on an asyncio event loop of its own, with at most `capacity` inputs in
flight, and emits each input's results on the task's thread.

Threads. The operator's event loop runs in a background thread (`async <task>`), started in `open` and
stopped in `close`; it owns the invocations (their asyncio tasks, timeout timers and retry back-offs). The
task thread owns the queue of inputs and everything that is emitted: the loop only appends finished
invocations to a mailbox under a lock, which the task thread takes when it next looks — after each batch,
while it waits for space (back-pressure) or for the end of input, and from a processing-time timer that
polls while inputs are in flight (the task loop fires timers between batches and sleeps at most until
the next one, so no record waits for new input to be emitted).

Order. ORDERED emits in input order (a finished input waits for the ones before it, and still counts
against the capacity, as in Flink). UNORDERED emits as inputs finish, but never across a watermark: the
watermarks split the queue into segments, emitted one after the other, so watermarks keep their place.

Checkpoints. The snapshot holds every input not yet emitted, finished or not, as operator list state (so
a rescaled restore deals them out); the restored operator invokes them again after `open`. Output emitted
before the barrier is not in the snapshot, output after it comes from inputs that are: exactly once.

Timeout and retry as PyFlink's: the timeout covers all attempts of one input; when it passes, the running
attempt is cancelled and `timeout(value)`'s results are emitted (its exception fails the task). A retry
strategy whose predicate accepts a result or an exception sleeps its back-off and invokes again while
`can_retry(attempts)`."""

from __future__ import annotations

import asyncio
import collections
import functools
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Iterator

from ha_flink.aio.tasks import TaskGroup
from ha_flink.common.time import to_milliseconds
from ha_flink.common.typeinfo import Types
from ha_flink.core.async_functions import AsyncFunction, AsyncFunctionDescriptor, AsyncRetryStrategy
from ha_flink.core.state import ListStateDescriptor
from ha_flink.runtime.operators.base import OperatorContext, Output, StreamOperator
from ha_flink.runtime.state.operator_state import OperatorStateBackend

STATE_NAME = "_async_wait_operator_state_"  # Flink's name of the operator's list state
POLL_MIN_MS, POLL_MAX_MS = 1, 8  # while inputs are in flight; doubling while nothing finishes
WAIT_S = 0.05  # one wait of the task thread for a finished input (back-pressure, end of input)
STOP_S = 5.0  # how long close() waits for the loop to cancel what is in flight


class AsyncFunctionError(RuntimeError):
    """An input's async_invoke (or timeout) raised, or gave no list: fails the task, naming the input."""


@dataclass(eq=False, slots=True)
class _Entry:
    """One input in the operator's queue (task thread). `results` is set when its invocation finished."""

    value: Any
    timestamp: int | None
    results: list[Any] | None = None
    segment: _Segment | None = None  # UNORDERED: the watermark segment it belongs to


@dataclass(frozen=True, slots=True)
class _Mark:
    """A watermark in the queue: it goes out once every input before it went out."""

    timestamp: int


@dataclass(eq=False, slots=True)
class _Segment:
    """UNORDERED: the inputs between two watermarks, and the watermark that closes them (None: still open)."""

    incomplete: dict[_Entry, None] = field(default_factory=dict)  # (a dict keeps the input order for snapshots)
    completed: collections.deque[_Entry] = field(default_factory=collections.deque)
    watermark: int | None = None


class _OrderedQueue:
    def __init__(self) -> None:
        self.items: collections.deque[_Entry | _Mark] = collections.deque()

    def add(self, entry: _Entry) -> None:
        self.items.append(entry)

    def add_watermark(self, watermark: int) -> None:
        self.items.append(_Mark(watermark))

    def completed(self, entry: _Entry) -> None:
        pass  # (its results are set; it goes out when it reaches the head)

    def pop_ready(self) -> Iterator[_Entry | _Mark]:
        items = self.items
        while items:
            head = items[0]
            if type(head) is _Entry and head.results is None:
                return
            yield items.popleft()

    def elements(self) -> list[_Entry | _Mark]:
        return list(self.items)


class _UnorderedQueue:
    def __init__(self) -> None:
        self.segments: collections.deque[_Segment] = collections.deque([_Segment()])

    def add(self, entry: _Entry) -> None:
        segment = self.segments[-1]
        entry.segment = segment
        segment.incomplete[entry] = None

    def add_watermark(self, watermark: int) -> None:
        self.segments[-1].watermark = watermark
        self.segments.append(_Segment())

    def completed(self, entry: _Entry) -> None:
        segment = entry.segment
        assert segment is not None  # (set by add)
        del segment.incomplete[entry]
        segment.completed.append(entry)

    def pop_ready(self) -> Iterator[_Entry | _Mark]:
        segments = self.segments
        while True:
            segment = segments[0]
            while segment.completed:
                yield segment.completed.popleft()
            if segment.incomplete or segment.watermark is None:
                return
            segments.popleft()  # closed and drained: its watermark may pass
            yield _Mark(segment.watermark)

    def elements(self) -> list[_Entry | _Mark]:
        out: list[_Entry | _Mark] = []
        for segment in self.segments:
            out.extend(segment.completed)
            out.extend(segment.incomplete)
            if segment.watermark is not None:
                out.append(_Mark(segment.watermark))
        return out


@dataclass(eq=False, slots=True)
class _Invocation:
    """One input's invocation (the loop thread's): its attempts' task and its timeout timer."""

    entry: _Entry
    task: asyncio.Task[None] | None = None
    timer: asyncio.TimerHandle | None = None
    finished: bool = False


class AsyncWaitOperator(StreamOperator):
    def __init__(self, descriptor: AsyncFunctionDescriptor, name: str = "async wait operator") -> None:
        self.name = name
        self.function: AsyncFunction[Any, Any] = descriptor.async_function
        self.timeout_ms = to_milliseconds(descriptor.timeout, "timeout")
        self.capacity = descriptor.capacity
        self.strategy: AsyncRetryStrategy[Any] = descriptor.async_retry_strategy
        self.ordered = descriptor.output_mode == AsyncFunctionDescriptor.OutputMode.ORDERED

    # -- lifecycle (task thread) -------------------------------------------------------------------------

    def setup(self, context: OperatorContext, output: Output) -> None:
        super().setup(context, output)
        self.queue: _OrderedQueue | _UnorderedQueue = _OrderedQueue() if self.ordered else _UnorderedQueue()
        self.in_flight = 0  # inputs in the queue, not yet emitted (bounded by the capacity)
        # (its list state is registered in open(), after a restore replaced the backend's lists)
        self.operator_state = OperatorStateBackend(context.info.subtask_index, context.info.parallelism)
        self.mailbox = threading.Condition()
        self.done: list[tuple[_Entry, list[Any] | None, BaseException | None]] = []  # under the mailbox's lock
        self.to_start: list[_Entry] = []
        self.poll_armed = False
        self.poll_ms = POLL_MIN_MS
        self.closed = False
        self.loop: asyncio.AbstractEventLoop | None = None
        self.thread: threading.Thread | None = None
        predicate = self.strategy.get_retry_predicate()
        self.result_predicate = predicate.result_predicate()
        self.exception_predicate = predicate.exception_predicate()
        self.retry_enabled = self.result_predicate is not None or self.exception_predicate is not None
        self.class_name = type(self.function).__name__

    def initialize_state(self, states: list[dict[str, Any]]) -> None:
        super().initialize_state(states)
        self.operator_state.restore([s["operator"] for s in states if "operator" in s])

    def open(self) -> None:
        self.pending_state = self.operator_state.get_list_state(
            ListStateDescriptor(STATE_NAME, Types.PICKLED_BYTE_ARRAY()))
        restored = self.pending_state.get()  # the inputs in flight at the restored checkpoint, in their order
        self.pending_state.clear()
        if hasattr(self.function, "open"):
            self.function.open(self.runtime_context)
        self.loop = asyncio.new_event_loop()
        self.tasks = TaskGroup(f"{self.name} ({self.context.info.subtask_index + 1})")
        self.thread = threading.Thread(target=self._run_loop, args=(self.loop,), daemon=True,
                                       name=f"async {self.context.info.task_name} "
                                            f"({self.context.info.subtask_index + 1}/{self.context.info.parallelism})")
        self.thread.start()
        try:
            for element in restored:
                if element[0] == "record":
                    self._add(element[1], element[2])
                else:
                    self._watermark(element[1])
        except BaseException:
            self.close()  # (the task closes only operators that opened: the loop must not outlive this one)
            raise
        self._flush_starts()
        self._arm_poll()

    def process_batch(self, batch: list[Any], timestamps: list[int] | None = None) -> None:
        if timestamps is None:
            for value in batch:
                self._add(value, None)
        else:
            for value, timestamp in zip(batch, timestamps):
                self._add(value, timestamp)
        self._flush_starts()
        self._take()
        self._emit_ready()
        self._arm_poll()

    def process_watermark(self, watermark: int) -> None:
        self._watermark(watermark)
        self._arm_poll()

    def end_input(self) -> None:
        """Every input in flight finishes and goes out before the operator does (and the watermarks)."""
        self._flush_starts()
        while self.in_flight:
            self._wait()
            self._take()
            self._emit_ready()
        self._emit_ready()

    def snapshot_state(self, checkpoint_id: int) -> dict[str, Any]:
        state = super().snapshot_state(checkpoint_id)
        # Nothing is emitted here: what goes out now would follow the barrier without being in the snapshot.
        self.pending_state.update([("record", item.value, item.timestamp) if type(item) is _Entry
                                   else ("watermark", item.timestamp) for item in self.queue.elements()])
        state["operator"] = self.operator_state.snapshot()
        return state

    def close(self) -> None:
        self.closed = True
        loop, thread = self.loop, self.thread
        self.loop = self.thread = None
        try:
            if loop is not None and thread is not None:
                try:
                    asyncio.run_coroutine_threadsafe(self._shutdown(), loop).result(STOP_S)
                except Exception:  # (timed out, or the loop is gone): stop it all the same
                    pass
                loop.call_soon_threadsafe(loop.stop)
                thread.join(STOP_S)
        finally:
            if hasattr(self.function, "close"):
                self.function.close()

    # -- the queue (task thread) -------------------------------------------------------------------------

    def _add(self, value: Any, timestamp: int | None) -> None:
        while self.in_flight >= self.capacity:  # back-pressure: wait for space, emitting what finished
            self._flush_starts()
            self._wait()
            self._take()
            self._emit_ready()
        entry = _Entry(value, timestamp)
        self.queue.add(entry)
        self.in_flight += 1
        self.to_start.append(entry)

    def _watermark(self, watermark: int) -> None:
        self.queue.add_watermark(watermark)
        self._take()
        self._emit_ready()

    def _flush_starts(self) -> None:
        """Hand the new inputs to the loop, all at once (one wake-up of the loop per batch)."""
        if self.to_start and self.loop is not None:
            entries, self.to_start = self.to_start, []
            self.loop.call_soon_threadsafe(self._start, entries)

    def _wait(self) -> None:
        with self.mailbox:
            if not self.done:
                self.mailbox.wait(WAIT_S)

    def _take(self) -> int:
        """Move finished invocations from the mailbox into the queue; a failed one fails the task here."""
        with self.mailbox:
            if not self.done:
                return 0
            finished, self.done = self.done, []
        for entry, results, error in finished:
            if error is not None:
                raise error
            entry.results = results
            self.queue.completed(entry)
        return len(finished)

    def _emit_ready(self) -> None:
        out: list[Any] = []
        stamps: list[int] = []
        stamped: bool | None = None  # whether `out` has timestamps (a stream has them or not)
        for item in self.queue.pop_ready():
            if type(item) is _Mark:
                self._collect(out, stamps, stamped)
                out, stamps, stamped = [], [], None
                self.output.emit_watermark(item.timestamp)
                continue
            assert type(item) is _Entry and item.results is not None  # (pop_ready yields finished ones)
            self.in_flight -= 1
            if not item.results:
                continue
            has_stamp = item.timestamp is not None
            if stamped is not None and stamped != has_stamp:
                self._collect(out, stamps, stamped)
                out, stamps = [], []
            stamped = has_stamp
            out.extend(item.results)
            if item.timestamp is not None:
                stamps.extend([item.timestamp] * len(item.results))
        self._collect(out, stamps, stamped)

    def _collect(self, out: list[Any], stamps: list[int], stamped: bool | None) -> None:
        if out:
            self.output.collect_batch(out, stamps if stamped else None)

    def _arm_poll(self) -> None:
        """While inputs are in flight, a processing-time timer brings the task thread back to emit them."""
        if self.poll_armed or self.closed or not self.in_flight:
            return
        self.poll_armed = True
        timers = self.context.processing_time
        timers.register(timers.now_ms() + self.poll_ms, self._poll)

    def _poll(self, _timestamp: int) -> None:
        self.poll_armed = False
        if self.closed:
            return
        self._flush_starts()
        taken = self._take()
        self.poll_ms = POLL_MIN_MS if taken else min(POLL_MAX_MS, self.poll_ms * 2)
        self._emit_ready()
        self._arm_poll()

    # -- the event loop (its own thread) ------------------------------------------------------------------

    @staticmethod
    def _run_loop(loop: asyncio.AbstractEventLoop) -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_forever()
        finally:
            try:
                loop.run_until_complete(loop.shutdown_asyncgens())
            finally:
                loop.close()

    async def _shutdown(self) -> None:
        await self.tasks.close(STOP_S)

    def _start(self, entries: list[_Entry]) -> None:
        loop = asyncio.get_running_loop()
        timeout_s = self.timeout_ms / 1000
        for entry in entries:
            invocation = _Invocation(entry)
            try:
                invocation.task = self.tasks.spawn(self._invoke(invocation), name=f"input {entry.value!r:.80}")
            except RuntimeError:
                return  # the group is closed: the operator is closing, nothing more runs
            invocation.task.add_done_callback(functools.partial(self._ended, invocation))
            if self.timeout_ms > 0:
                invocation.timer = loop.call_later(timeout_s, self._timed_out, invocation)

    async def _invoke(self, invocation: _Invocation) -> None:
        value = invocation.entry.value
        attempts = 1
        while True:
            result: Any = None
            error: Exception | None = None
            try:
                result = await self.function.async_invoke(value)
            except Exception as raised:
                error = raised
            if self.retry_enabled:
                try:
                    again = self._should_retry(result, error) and self.strategy.can_retry(attempts)
                except Exception as raised:
                    self._finish(invocation, None, AsyncFunctionError(
                        f"{self.name}: the retry strategy of {self.class_name} raised "
                        f"{type(raised).__name__}: {raised} for input {value!r}"), "retry")
                    return
                if again:
                    backoff_ms = self.strategy.get_backoff_time_millis(attempts)
                    await asyncio.sleep(max(0, backoff_ms) / 1000)
                    attempts += 1
                    continue
            self._finish(invocation, result, error, "async_invoke")
            return

    def _ended(self, invocation: _Invocation, task: asyncio.Task[None]) -> None:
        """An invocation's task ended without an outcome (cancelled by someone else than this operator, or
        a BaseException): the input would never go out, so it fails the task rather than hang it."""
        if invocation.finished or self.closed:
            return
        error = asyncio.CancelledError("cancelled") if task.cancelled() else task.exception()
        self._finish(invocation, None, AsyncFunctionError(
            f"{self.name}: async_invoke of class '{self.class_name}' ended without a result for input "
            f"{invocation.entry.value!r}: {type(error).__name__}: {error}"), "async_invoke")

    def _should_retry(self, result: Any, error: Exception | None) -> bool:
        # PyFlink's condition: a result the result predicate accepts, or an error the exception predicate does
        if result is not None and self.result_predicate is not None and self.result_predicate(result):
            return True
        return error is not None and self.exception_predicate is not None and bool(self.exception_predicate(error))

    def _timed_out(self, invocation: _Invocation) -> None:
        if invocation.finished:
            return
        if invocation.task is not None:
            invocation.task.cancel()  # its result (or a retry) would come too late: nobody waits for it
        result: Any = None
        error: Exception | None = None
        try:
            result = self.function.timeout(invocation.entry.value)
        except Exception as raised:
            error = raised
        self._finish(invocation, result, error, "timeout")

    def _finish(self, invocation: _Invocation, result: Any, error: BaseException | None, method: str) -> None:
        """The input's outcome, once (a late attempt after a timeout is dropped): into the mailbox."""
        if invocation.finished:
            return
        invocation.finished = True
        if invocation.timer is not None:
            invocation.timer.cancel()
        value = invocation.entry.value
        results: list[Any] | None = None
        if error is not None and not isinstance(error, AsyncFunctionError):
            failure: BaseException | None = AsyncFunctionError(
                f"Error happens inside the class '{self.class_name}' during handling input {value!r}: "
                f"{method} raised {type(error).__name__}: {error}")
            failure.__cause__ = error  # type: ignore[union-attr]
        elif error is not None:
            failure = error
        else:
            results, failure = self._results(result, method, value)
        with self.mailbox:
            self.done.append((invocation.entry, results, failure))
            self.mailbox.notify()

    def _results(self, result: Any, method: str, value: Any) -> tuple[list[Any] | None, BaseException | None]:
        if result is None:
            problem = "cannot be None"
        elif isinstance(result, (str, bytes)) or not isinstance(result, Iterable):
            # (a str is iterable, but emitting its characters one by one is never what was meant)
            problem = f"should be a list, got {type(result).__name__} {result!r:.100}"
        else:
            try:
                return list(result), None
            except Exception as error:
                failure = AsyncFunctionError(f"{self.name}: iterating the results of {self.class_name}.{method} "
                                             f"for input {value!r} raised {type(error).__name__}: {error}")
                failure.__cause__ = error
                return None, failure
        return None, AsyncFunctionError(
            f"The result of AsyncFunction {problem} (input {value!r}): please check the methods 'async_invoke' "
            f"and 'timeout' of class '{self.class_name}'; they return a list of results")
