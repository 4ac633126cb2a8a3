"""The CheckpointCoordinator of one job, inside its JobMaster (ARCHITECTURE.md, "Checkpoints").

Every interval, while all tasks run: take the next id from the ZooKeeper CheckpointIDCounter, ask the
TaskManagers to trigger it at the job's sources, and collect one acknowledgement per subtask (each names
the file its TaskManager wrote under `<checkpoints dir>/<jobid>/chk-<id>/`). With every acknowledgement
in: write `_metadata`, add the checkpoint to the CompletedCheckpointStore (the commit point), delete the
folders of subsumed checkpoints, then notify the tasks. A restart or a new leader restores the latest
checkpoint in the store.

A subtask that cannot take its part declines (DeclineCheckpoint): the checkpoint is given up at once and
counts as a failure, as one that times out.

Incremental state (rocksdb) references files of `<jobid>/shared/` from several checkpoints: the shared
state registry here counts, per file, the retained checkpoints that reference it, and deletes a file when
the last of them is subsumed (or when the checkpoint that uploaded it failed). The references travel with
each CompletedCheckpoint in ZooKeeper, so a new leader rebuilds the registry from the store. Nothing
outside the job's own folder is ever deleted (a job started from another job's retained checkpoint
references that job's files).

Recovery never starts a job that had checkpoints from empty state, and never gives up on one silently
(`initialize`, `restored_state`): it runs on every attempt until it succeeds; a store whose entry is
damaged (pointer or handle file) gets the checkpoint rebuilt from its own sealed `_metadata` and the entry
repaired; a checkpoint whose `_metadata` or state files are damaged is passed over for the next older
retained one (`state.checkpoints.num-retained`); an outage (storage or ZooKeeper unreachable) fails the
attempt, to be retried under the restart strategy. Each such decision is a `RecoveryNote` the JobMaster
shows in the log and the exception history."""

from __future__ import annotations

import asyncio
import logging
import pickle
import secrets
import time
import zlib
from dataclasses import dataclass
from typing import Any

from ha_flink.aio.owner import LoopOwner
from ha_flink.aio.tasks import TaskGroup
from ha_flink.fs import Storage, StorageError, is_damage, join_url, unseal
from ha_flink.ha.checkpoint_store import CompletedCheckpoint
from ha_flink.ha.fencing import Fence, FencingError
from ha_flink.ha.services import HaServices
from ha_flink.runtime.checkpoint.restore import (
    CheckpointDamagedError, CheckpointRestoreError, RestorePlan, plan_restore,
)
from ha_flink.runtime.checkpoint.stats import HISTORY_SIZE, CheckpointStatsTracker
from ha_flink.runtime.checkpoint.storage import is_absolute_location
from ha_flink.runtime.checkpoint.tracker import CheckpointTracker, PendingCheckpoint
from ha_flink.runtime.graph.job_graph import JobGraph
from ha_flink.runtime.key_groups import KeyHash

logger = logging.getLogger(__name__)

METADATA = "_metadata"


class SavepointError(RuntimeError):
    pass


class CheckpointTriggerError(RuntimeError):
    """A checkpoint asked for (REST, `flink checkpoint`) did not complete: why."""


class CheckpointFallbackNeeded(CheckpointRestoreError):
    """The latest checkpoint cannot be restored and the caller asked not to fall back on its own (a region
    restore: falling back is for the whole job, so that every region restores the same checkpoint)."""


@dataclass(frozen=True)
class RecoveryNote:
    """A decision of the checkpoint recovery that the user must hear of (log, exception history)."""

    kind: str  # "CheckpointHandleRepaired", "CheckpointRestoreFallback", "CheckpointNotRestorable"
    message: str


def read_metadata(storage: Storage, folder: str, what: str) -> dict[str, Any]:
    """The `_metadata` of a checkpoint or savepoint folder, checked (seal, shape). Damage is a
    CheckpointDamagedError naming the file; a storage that cannot be reached raises its StorageError."""
    url = join_url(folder, METADATA)
    try:
        data = unseal(storage.read(url), url)
    except StorageError as error:
        if is_damage(error):
            raise CheckpointDamagedError(f"{what}: {url} cannot be used: {error.reason}") from None
        raise
    try:
        metadata = pickle.loads(data)
        metadata["tasks"]
    except Exception as error:
        raise CheckpointDamagedError(f"{what}: {url} is not a readable _metadata file "
                                     f"({type(error).__name__}: {error})") from None
    return metadata


async def restored_from_savepoint(graph: JobGraph, storage: Storage, path: str, allow_non_restored: bool,
                                  loop: asyncio.AbstractEventLoop) -> tuple[int, dict[tuple[str, int], RestorePlan]]:
    """A savepoint's checkpoint id and state for `graph`, matched by vertex state keys (uids); state without
    a matching vertex is an error naming it, unless `allow_non_restored` (--allowNonRestoredState)."""
    metadata = await loop.run_in_executor(None, read_metadata, storage, path, f"the savepoint {path}")
    if not metadata.get("savepoint"):
        metadata = _as_savepoint(metadata, path)  # a retained checkpoint (flink run -s <its chk-N folder>)
    tasks = metadata["tasks"]
    by_key = {v.state_key: v for v in graph.vertices.values()}
    unmatched = sorted({key for key, _ in tasks} - by_key.keys())
    if unmatched and not allow_non_restored:
        raise CheckpointRestoreError(
            f"the savepoint {path} holds state for operators this job does not have: {', '.join(unmatched)}; "
            "give them the same uid() as before, or pass --allowNonRestoredState to skip that state")
    refs = {(by_key[key].id, subtask): url for (key, subtask), url in tasks.items() if key in by_key}
    adopt_key_hash(graph, metadata)
    parallelism = {by_key[k].id: p for k, p in metadata["parallelism"].items() if k in by_key}
    restore_from_all = {by_key[k].id for k in metadata.get("restore_from_all", ()) if k in by_key}
    return int(metadata.get("checkpoint_id", -1)), plan_restore(graph, refs, parallelism, restore_from_all)


def adopt_key_hash(graph: JobGraph, metadata: dict[str, Any]) -> None:
    """The restored job maps keys to key groups as the snapshot's writer did (its state is stored by key
    group): the hash its `_metadata` records, or ha-flink 0.1's where it records none."""
    key_hash = metadata.get("key_hash", KeyHash.HA_FLINK_1.value)
    if key_hash not in {known.value for known in KeyHash}:
        raise CheckpointRestoreError(f"the state of job {graph.job_id} was written with the key hash {key_hash!r}, "
                                     "which this version of ha-flink does not know: restore it with the version "
                                     "that wrote it")
    if key_hash != graph.key_hash:
        logger.info("Job %s keeps the key hash %s of the state it restores (new jobs use %s)", graph.job_id,
                    key_hash, graph.key_hash)
        graph.key_hash = key_hash


def dispose_savepoint(storage: Storage, path: str) -> None:
    """Flink's savepoint disposal (`flink savepoint -d <path>`): deletes a savepoint folder, whose state
    files are all inside it, once `check_savepoint_folder` found it is one."""
    check_savepoint_folder(storage, path)
    storage.delete(path, recursive=True)


def check_savepoint_folder(storage: Storage, path: str) -> None:
    """Whether `path` is a savepoint folder (`savepoint-...` with a sealed, intact `_metadata`, read without
    unpickling anything); SavepointError says why not. A retained checkpoint (`chk-N`) is not: it is its
    job's to delete, and later checkpoints may share its files."""
    if not is_absolute_location(path):
        raise SavepointError(f"savepoint path {path!r} is neither an absolute path nor a URL")
    name = path.rstrip("/").rsplit("/", 1)[-1]
    if not name.startswith("savepoint-"):
        raise SavepointError(f"{path} is not a savepoint folder (savepoint-<job>-<id>); nothing was deleted"
                             + (": a retained checkpoint is deleted by its job" if name.startswith("chk-") else ""))
    url = join_url(path, METADATA)
    if not storage.exists(url):
        raise SavepointError(f"{path} holds no {METADATA}: it is not a savepoint (or was disposed already); "
                             "nothing was deleted")
    try:
        storage.read_sealed(url)
    except StorageError as error:
        if is_damage(error):
            raise SavepointError(f"{url} is damaged ({error.reason}); nothing was deleted: remove the folder by "
                                 "hand if it is no longer wanted") from None
        raise


def _as_savepoint(metadata: dict[str, Any], path: str) -> dict[str, Any]:
    """A checkpoint's `_metadata` (keyed by the vertex ids of the job that wrote it) keyed by state keys, as
    a savepoint's is, so another job can start from it."""
    keys = metadata.get("state_keys")
    if not keys:
        raise CheckpointRestoreError(f"{join_url(path, METADATA)} is a checkpoint written by an older version, "
                                     "without its operators' state keys; take a savepoint to move it to another job")
    return {**metadata, "tasks": {(keys[vertex], subtask): url for (vertex, subtask), url in metadata["tasks"].items()},
            "parallelism": {keys[v]: p for v, p in metadata.get("parallelism", {}).items() if v in keys},
            "restore_from_all": sorted(keys[v] for v in metadata.get("restore_from_all", ()) if v in keys)}


class CheckpointCoordinator:
    """The I/O driver of the job's CheckpointTracker (tracker.py, where the rules are): ids from the
    counter, triggers to the tasks, files and handles written, discarded ones deleted, statistics."""

    def __init__(self, graph: JobGraph, ha: HaServices, fence: Fence | None, storage: Storage, checkpoints_dir: str,
                 interval_s: float, max_retained: int, timeout_s: float = 600.0, min_pause_s: float = 0.0,
                 max_concurrent: int = 1, tolerable_failures: int = 0, history_size: int = HISTORY_SIZE) -> None:
        self.graph = graph
        self.storage = storage
        self.job_dir = join_url(checkpoints_dir, graph.job_id)
        self.interval_s = interval_s
        self.store = ha.checkpoint_store(graph.job_id, fence, max_retained)
        self.counter = ha.checkpoint_id_counter(graph.job_id, fence)
        self.timeout_s = timeout_s
        self.tracker = CheckpointTracker(timeout_s * 1000, min_pause_s, max_concurrent, tolerable_failures)
        self._loop_task: asyncio.Task[None] | None = None  # the periodic trigger: cancelled by stop()
        # deletions of checkpoints that will not complete: left to finish after stop (nothing else removes them)
        self._deletes = TaskGroup(f"checkpoints of job {graph.job_id}")
        self._owner = LoopOwner(f"the checkpoint coordinator of job {graph.job_id}")
        self._savepoints_to_notify: dict[int, PendingCheckpoint] = {}
        self._savepoint_callers: dict[int, asyncio.Future[str]] = {}  # savepoint id -> its caller's answer
        # checkpoints asked for (trigger_checkpoint): waiting for the next one to begin, then by its id
        self._requested: list[asyncio.Future[int]] = []
        self._requested_by_id: dict[int, list[asyncio.Future[int]]] = {}
        self._on_too_many_failures: Any = None  # set by start()
        self.stats = CheckpointStatsTracker(history_size)  # web.checkpoints.history
        self.periodic_paused = False  # a stop-with-savepoint is under way (trigger_savepoint)
        self.stopped = False
        # checkpoints whose last ack came in and whose _metadata / commit is under way: the job's cleanup
        # waits for them (`settled`), or a late `_metadata` or handle would outlive the job's folder
        self._completing: set[int] = set()
        self._settled = asyncio.Event()
        self._settled.set()
        self.initialized = False  # the store was read (recovery is tried again on every attempt until then)
        self.unrestorable: dict[int, str] = {}  # checkpoint id -> why it cannot be restored (this JobMaster)
        self.notes: list[RecoveryNote] = []  # for the JobMaster to show (take_notes)
        self._fallbacks_noted: set[tuple[int, tuple[int, ...]]] = set()  # (a region restore repeats none)

    @property
    def pending(self) -> dict[int, PendingCheckpoint]:
        return self.tracker.pending

    async def _blocking(self, function: Any, *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(None, function, *args)

    async def initialize(self) -> None:
        """Create the counter if new, read (and lock) the checkpoints a former leader completed, and rebuild
        each damaged entry from its own folder. Raises on an outage (ZooKeeper or storage unreachable): the
        next attempt calls it again."""
        await self._blocking(self.counter.start)
        await self._blocking(self.store.recover)
        for damaged in list(self.store.damaged):
            folder = self.checkpoint_url(damaged.checkpoint_id)
            try:
                metadata = await self._blocking(read_metadata, self.storage, folder,
                                                f"checkpoint {damaged.checkpoint_id} of job {self.graph.job_id}")
                self._check_owner(metadata, damaged.checkpoint_id, folder)
            except CheckpointDamagedError as error:
                self._note("CheckpointNotRestorable", f"Checkpoint {damaged.checkpoint_id} of job {self.graph.job_id} "
                           f"cannot be restored: {damaged.error}; and its own _metadata neither: {error}")
                self.unrestorable[damaged.checkpoint_id] = str(error)
                continue
            checkpoint = CompletedCheckpoint(self.graph.job_id, damaged.checkpoint_id, metadata.get("timestamp", 0),
                                             folder, {"shared": sorted(metadata.get("shared", ()))})
            repaired = await self._blocking(self.store.adopt, checkpoint)
            self._note("CheckpointHandleRepaired", f"Checkpoint {damaged.checkpoint_id} of job {self.graph.job_id}: "
                       f"{damaged.error}; rebuilt from its own {join_url(folder, METADATA)}"
                       + ("; its handle is repaired" if repaired else " (its handle could not be repaired)"))
        retained = self.store.all()
        if retained:  # ids go on after the latest, even if the counter node was lost
            await self._blocking(self.counter.set_count, retained[-1].checkpoint_id + 1)
        self.tracker.recovered({c.checkpoint_id: set(c.properties.get("shared", ())) for c in retained})
        self.initialized = True

    def _check_owner(self, metadata: dict[str, Any], checkpoint_id: int, folder: str) -> None:
        if metadata.get("job_id") != self.graph.job_id or metadata.get("checkpoint_id") != checkpoint_id:
            raise CheckpointDamagedError(f"{join_url(folder, METADATA)} belongs to checkpoint "
                                         f"{metadata.get('checkpoint_id')} of job {metadata.get('job_id')}, not to "
                                         f"checkpoint {checkpoint_id} of job {self.graph.job_id}")

    def _note(self, kind: str, message: str) -> None:
        self.notes.append(RecoveryNote(kind, message))

    def take_notes(self) -> list[RecoveryNote]:
        notes, self.notes = self.notes, []
        return notes

    def mark_unrestorable(self, checkpoint_id: int, reason: str) -> None:
        """A subtask could not restore its state of `checkpoint_id` (a state file damaged): the next
        restore takes an older retained checkpoint."""
        if checkpoint_id not in self.unrestorable:
            self.unrestorable[checkpoint_id] = reason
            self._note("CheckpointNotRestorable", f"Checkpoint {checkpoint_id} of job {self.graph.job_id} cannot be "
                       f"restored: {reason}")

    def start(self, can_trigger: Any, trigger: Any, on_too_many_failures: Any = None) -> None:
        """Trigger every interval, keeping Flink's rules: at most `max_concurrent` in flight, at least
        `min_pause` after the last completion; a checkpoint older than `timeout` is given up and counted,
        and more than `tolerable_failures` in a row call `on_too_many_failures` (a failover)."""

        async def periodic() -> None:
            while True:
                try:
                    await one_round()
                except asyncio.CancelledError:
                    raise
                except Exception:  # a dead loop would silently stop every later checkpoint of the job
                    logger.exception("Checkpoint scheduling of job %s failed; trying again next interval",
                                     self.graph.job_id)

        async def one_round() -> None:
            try:
                await asyncio.wait_for(self._soon.wait(), self.interval_s)
            except asyncio.TimeoutError:
                pass
            self._soon.clear()
            self._expire(on_too_many_failures)
            if self.periodic_paused or not self.tracker.may_trigger(time.monotonic()):
                return
            expected = can_trigger()
            if expected:
                try:
                    checkpoint_id = await self._blocking(self.counter.get_and_increment)
                except Exception as error:
                    logger.warning("Checkpoint of job %s not triggered: %s", self.graph.job_id, error)
                    return
                if can_trigger() != expected:
                    # a failover (or a task's end) while the id was fetched: a checkpoint waiting for the
                    # subtasks seen before it would wait for acks that never come, blocking every later one
                    logger.info("Checkpoint %d of job %s not triggered: the job's tasks changed meanwhile",
                                checkpoint_id, self.graph.job_id)
                    self._soon.set()
                    return
                now = int(time.time() * 1000)
                self.tracker.begin(checkpoint_id, now, expected)
                self.stats.triggered(checkpoint_id, now, len(expected), expected=expected)
                if self._requested:  # this is the checkpoint they asked for: it began after their request
                    self._requested_by_id[checkpoint_id], self._requested = self._requested, []
                await trigger(checkpoint_id, now)

        self._on_too_many_failures = on_too_many_failures
        self._soon = asyncio.Event()
        self._loop_task = asyncio.ensure_future(periodic())

    def trigger_soon(self) -> None:
        """Take the next checkpoint now rather than at the next interval (e.g. the final one)."""
        if self._loop_task is not None:
            self._soon.set()

    async def trigger_checkpoint(self, timeout: float = 120.0) -> int:
        """A checkpoint now (Flink's REST checkpoint trigger): the next one the periodic loop begins, under
        its rules (at most `max_concurrent` in flight, the minimum pause); returns its id once complete, or
        raises CheckpointTriggerError saying why it did not complete."""
        if self.stopped or self._loop_task is None:
            raise CheckpointTriggerError(f"job {self.graph.job_id} is not running here: no checkpoint can be taken")
        answer: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._requested.append(answer)
        self.trigger_soon()
        try:
            return await asyncio.wait_for(asyncio.shield(answer), timeout)
        except asyncio.TimeoutError:
            raise CheckpointTriggerError(f"no checkpoint of job {self.graph.job_id} completed within {timeout:g} s "
                                         "of the request") from None
        finally:
            if answer in self._requested:
                self._requested.remove(answer)

    def _answer_requested(self, checkpoint_id: int, error: str | None) -> None:
        for answer in self._requested_by_id.pop(checkpoint_id, []):
            if answer.done():
                continue
            if error is None:
                answer.set_result(checkpoint_id)
            else:
                answer.set_exception(CheckpointTriggerError(f"checkpoint {checkpoint_id} of job "
                                                            f"{self.graph.job_id} did not complete: {error}"))

    def _expire(self, on_too_many_failures: Any) -> None:
        for pending in self.tracker.expire(int(time.time() * 1000)):
            self._discard(pending, f"expired after {self.timeout_s:g} s")
            self.record_failure(f"checkpoint {pending.checkpoint_id} expired after {self.timeout_s:g} s",
                                on_too_many_failures)

    def decline(self, checkpoint_id: int, reason: str, on_too_many_failures: Any = None) -> None:
        """A subtask could not take its part: give the checkpoint up now, counted as a failure."""
        self._give_up(checkpoint_id, "declined", reason, on_too_many_failures)

    def abort(self, checkpoint_id: int, reason: str) -> None:
        """Give up a checkpoint that never reached its tasks: not counted as a failure (as Flink leaves
        trigger failures out of the tolerable count)."""
        self._give_up(checkpoint_id, "aborted", reason, None, counted=False)

    def _give_up(self, checkpoint_id: int, verb: str, reason: str, on_too_many_failures: Any,
                 counted: bool = True) -> None:
        pending = self.tracker.take(checkpoint_id)
        if pending is None:
            return
        self._discard(pending, f"{verb}: {reason}")
        if pending.savepoint_dir is not None:  # a savepoint's caller gets the reason
            self._answer_savepoint(checkpoint_id, SavepointError(f"savepoint {checkpoint_id} {verb}: {reason}"))
        elif counted:
            self.record_failure(f"checkpoint {checkpoint_id} {verb}: {reason}", on_too_many_failures)
        else:
            logger.info("Checkpoint %d of job %s %s: %s", checkpoint_id, self.graph.job_id, verb, reason)

    def _discard(self, pending: PendingCheckpoint, reason: str) -> None:
        """A checkpoint that will not complete: its folder, and the shared files no completed checkpoint
        references (the backends reuse only files of confirmed checkpoints, so nobody else will)."""
        self.stats.failed_checkpoint(pending.checkpoint_id, int(time.time() * 1000), reason)
        self._answer_requested(pending.checkpoint_id, reason)
        garbage = [*self.tracker.garbage_of(pending), self.checkpoint_url(pending.checkpoint_id)]
        self._deletes.spawn(self._delete_all(garbage), f"delete checkpoint {pending.checkpoint_id}")

    def _owned(self, url: str) -> bool:
        """Whether `url` lies in this job's own checkpoint folder: nothing else is ever deleted here (a job
        restored from another job's retained checkpoint references that job's shared files)."""
        return url.startswith(self.job_dir.rstrip("/") + "/")

    async def _delete_all(self, urls: list[str]) -> None:
        for url in urls:
            if not self._owned(url):
                continue
            try:
                await self._blocking(self.storage.delete, url)
            except Exception as error:  # left behind: removed with the job's folder at the latest
                logger.warning("Could not delete %s of job %s: %s", url, self.graph.job_id, error)

    def record_failure(self, reason: str, on_too_many_failures: Any = None) -> None:
        tracker = self.tracker
        logger.warning("Checkpoint failure of job %s (%d in a row, %d tolerated): %s", self.graph.job_id,
                       tracker.consecutive_failures + 1, tracker.tolerable_failures, reason)
        if tracker.failed() and on_too_many_failures is not None:
            on_too_many_failures(f"Exceeded checkpoint tolerable failure threshold ({reason})")

    def stop(self) -> None:
        """The job ended or left this leader: nothing triggers or completes any more. A completion whose
        `_metadata` is being written gives up before its commit; `settled` waits for it."""
        self.stopped = True
        if self._loop_task is not None:
            self._loop_task.cancel()
        for checkpoint_id in list(self._savepoints_to_notify):  # written: done, told or not
            self.notified(checkpoint_id)
        self.tracker.take_all()
        self.stats.fail_all_pending(int(time.time() * 1000), "the job stopped running here", keep=self._completing)
        for checkpoint_id in list(self._requested_by_id):
            if checkpoint_id not in self._completing:
                self._answer_requested(checkpoint_id, "the job stopped running here")
        for answer in self._requested:
            if not answer.done():
                answer.set_exception(CheckpointTriggerError(f"job {self.graph.job_id} stopped running here "
                                                            "before the checkpoint began"))
        self._requested = []

    async def settled(self) -> None:
        """Returns once no checkpoint completion is under way (its files and handle are where they stay)."""
        await self._settled.wait()

    def abort_pending(self) -> None:
        """A failover: checkpoints in flight cannot complete (their tasks are gone). A savepoint already
        written stays done, whether or not its notification reached the tasks."""
        self._owner.check()
        for checkpoint_id in list(self._savepoints_to_notify):
            self.notified(checkpoint_id)
        for pending in self.tracker.take_all():
            if pending.savepoint_dir is not None and self._awaits_answer(pending.checkpoint_id):
                self.stats.failed_checkpoint(pending.checkpoint_id, int(time.time() * 1000), "aborted by a failover")
                self._answer_savepoint(pending.checkpoint_id, SavepointError(
                    f"savepoint {pending.checkpoint_id} of job {self.graph.job_id} aborted by a failover"))
            else:
                self._discard(pending, "aborted by a failover")

    def task_finished(self, execution: tuple[str, int], name: str) -> None:
        """A subtask finished: a checkpoint in flight that still waits for its snapshot never gets it (the
        task ended after its own final checkpoint, before this one's trigger reached it). Drop such
        checkpoints, not counted as failures, and take the next one now without it."""
        for pending in self.tracker.task_finished(execution):
            logger.info("Checkpoint %d of job %s dropped: %s finished before taking part; the next one "
                        "follows now", pending.checkpoint_id, self.graph.job_id, name)
            self._discard(pending, f"{name} finished before taking part")
            self.trigger_soon()

    def notified(self, checkpoint_id: int) -> None:
        """The tasks have been told that `checkpoint_id` completed. A savepoint's caller learns only now
        that it is done, so a stop or cancel that follows cannot overtake the commit of its sinks."""
        pending = self._savepoints_to_notify.pop(checkpoint_id, None)
        if pending is not None:
            self._answer_savepoint(checkpoint_id, pending.savepoint_path or "")

    def _awaits_answer(self, checkpoint_id: int) -> bool:
        caller = self._savepoint_callers.get(checkpoint_id)
        return caller is not None and not caller.done()

    def _answer_savepoint(self, checkpoint_id: int, answer: str | SavepointError) -> None:
        """Tell a savepoint's caller its path, or why there is none (once; later answers are dropped)."""
        caller = self._savepoint_callers.pop(checkpoint_id, None)
        if caller is None or caller.done():
            return
        if isinstance(answer, SavepointError):
            caller.set_exception(answer)
        else:
            caller.set_result(answer)

    def checkpoint_url(self, checkpoint_id: int) -> str:
        return join_url(self.job_dir, f"chk-{checkpoint_id}")

    async def trigger_savepoint(self, target_dir: str, expected: set[tuple[str, int]], trigger: Any,
                                timeout: float = 120.0, stop: bool = False) -> str:
        """Take a savepoint into `target_dir`; returns its folder once complete. `stop`: a stop-with-savepoint
        (its sources emit nothing after the barrier): no periodic checkpoint is triggered from now on, as
        Flink's synchronous savepoint, since a later checkpoint would let the sources read on; only a
        failed savepoint resumes them (else the job ends; `resume_periodic` if it does not)."""
        if not expected:
            raise SavepointError(f"job {self.graph.job_id} is not running every task; no savepoint now")
        if stop:
            self.periodic_paused = True
        try:
            return await self._take_savepoint(target_dir, expected, trigger, timeout)
        except BaseException:
            if stop:
                self.resume_periodic()
            raise

    def resume_periodic(self) -> None:
        """Periodic checkpoints again, after a stop-with-savepoint that did not end the job."""
        self.periodic_paused = False
        self._soon.set()

    async def _take_savepoint(self, target_dir: str, expected: set[tuple[str, int]], trigger: Any,
                              timeout: float) -> str:
        checkpoint_id = await self._blocking(self.counter.get_and_increment)
        now = int(time.time() * 1000)
        done: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._savepoint_callers[checkpoint_id] = done
        self.tracker.begin(checkpoint_id, now, expected, savepoint_dir=target_dir)
        self.stats.triggered(checkpoint_id, now, len(expected), is_savepoint=True, expected=expected)
        try:
            await trigger(checkpoint_id, now, True)
            return await asyncio.wait_for(done, timeout)
        except asyncio.TimeoutError:
            self.tracker.take(checkpoint_id)
            self.stats.failed_checkpoint(checkpoint_id, int(time.time() * 1000), f"not complete within {timeout:g} s")
            raise SavepointError(f"savepoint {checkpoint_id} of job {self.graph.job_id} did not complete within "
                                 f"{timeout:g} s") from None
        finally:
            self._savepoint_callers.pop(checkpoint_id, None)

    async def _write_savepoint(self, pending: PendingCheckpoint) -> str:
        """Copy the tasks' files into a self-contained savepoint folder, keyed by vertex state keys."""
        assert pending.savepoint_dir is not None  # (a savepoint's pending checkpoint has its folder)
        folder = join_url(pending.savepoint_dir, f"savepoint-{self.graph.job_id[:6]}-{secrets.token_hex(6)}")
        tasks = {}
        for (vertex_id, subtask), url in pending.acks.items():
            key = self.graph.vertices[vertex_id].state_key
            target = join_url(folder, f"{zlib.crc32(key.encode()):08x}-{subtask}")
            await self._blocking(self.storage.write, target, await self._blocking(self.storage.read, url))
            tasks[(key, subtask)] = target
        metadata = {"savepoint": True, "job_id": self.graph.job_id, "checkpoint_id": pending.checkpoint_id,
                    "key_hash": self.graph.key_hash, "tasks": tasks, "parallelism": {v.state_key: v.parallelism for v in self.graph.vertices.values()},
                    "restore_from_all": sorted(self.graph.vertices[v].state_key for v in pending.restore_from_all)}
        await self._blocking(self.storage.write_sealed, join_url(folder, METADATA), pickle.dumps(metadata, protocol=5))
        await self._blocking(self.storage.delete, self.checkpoint_url(pending.checkpoint_id))
        return folder

    async def acknowledge(self, execution: tuple[str, int], checkpoint_id: int, state_url: str,
                          shared_urls: list[str] | None = None, restore_from_all: bool = False,
                          state_size: int = 0, checkpointed_size: int = 0) -> int | None:
        """Record one subtask's acknowledgement; returns the id once the checkpoint is complete and
        committed (the caller then notifies the tasks)."""
        self._owner.check()
        outcome = self.tracker.acknowledge(execution, checkpoint_id, state_url, shared_urls or (), restore_from_all)
        if outcome.first:
            self.stats.acknowledged(checkpoint_id, int(time.time() * 1000), state_size, checkpointed_size, execution)
        pending = outcome.complete
        if pending is None:
            return None
        self._completing.add(checkpoint_id)
        self._settled.clear()
        try:
            return await self._complete(pending)
        finally:
            self._completing.discard(checkpoint_id)
            if not self._completing:
                self._settled.set()

    async def _complete(self, pending: PendingCheckpoint) -> int | None:
        """Write a fully acknowledged checkpoint's `_metadata` and commit its handle (or write the savepoint)."""
        checkpoint_id = pending.checkpoint_id
        if pending.savepoint_dir is not None:
            try:
                path = await self._write_savepoint(pending)
            except Exception as error:
                self.stats.failed_checkpoint(checkpoint_id, int(time.time() * 1000), f"not written: {error}")
                self._answer_savepoint(checkpoint_id, SavepointError(f"savepoint {checkpoint_id} not written: {error}"))
                return None
            self.stats.completed_checkpoint(checkpoint_id, int(time.time() * 1000), path)
            logger.info("Completed savepoint %d of job %s at %s", checkpoint_id, self.graph.job_id, path)
            pending.savepoint_path = path
            self._savepoints_to_notify[checkpoint_id] = pending
            return checkpoint_id  # tasks are notified (sinks commit what it covers), then `notified`
        metadata = pickle.dumps({"job_id": self.graph.job_id, "checkpoint_id": checkpoint_id,
                                 "timestamp": pending.timestamp_ms, "key_hash": self.graph.key_hash,
                                 "tasks": dict(pending.acks),
                                 "shared": sorted(pending.shared), "restore_from_all": sorted(pending.restore_from_all),
                                 "parallelism": {v.id: v.parallelism for v in self.graph.vertices.values()},
                                 # what `flink run -s <this folder>` of another job matches its operators by
                                 "state_keys": {v.id: v.state_key for v in self.graph.vertices.values()}},
                                protocol=5)
        folder = self.checkpoint_url(checkpoint_id)
        try:
            await self._blocking(self.storage.write_sealed, join_url(folder, METADATA), metadata)
        except Exception as error:  # storage trouble: this checkpoint fails (counted), the job runs on
            self._discard(pending, f"its _metadata could not be written: {error}")
            self.record_failure(f"checkpoint {checkpoint_id}: its _metadata could not be written: {error}",
                                self._on_too_many_failures)
            return None
        if self.stopped:  # cancelled or suspended while the _metadata was written: never commit it
            logger.info("Checkpoint %d of job %s not committed: the job stopped running here", checkpoint_id,
                        self.graph.job_id)
            self._discard(pending, "the job stopped running here")
            return None
        checkpoint = CompletedCheckpoint(self.graph.job_id, checkpoint_id, pending.timestamp_ms, folder,
                                         {"shared": sorted(pending.shared)})
        try:
            removed = await self._blocking(self.store.add_checkpoint_and_subsume_old_ones, checkpoint)
        except FencingError as error:  # refused, nothing written: this leader's checkpoint is garbage
            logger.warning("Checkpoint %d of job %s not committed: %s", checkpoint_id, self.graph.job_id, error)
            self._discard(pending, f"not committed: {error}")
            return None
        except StorageError as error:  # the handle was not written: nothing went to ZooKeeper
            reason = f"its handle could not be written to the HA storage dir ({error}); nothing was committed"
            self._discard(pending, f"declined: {reason}")
            self.record_failure(f"checkpoint {checkpoint_id} declined: {reason}", self._on_too_many_failures)
            return None
        except Exception as error:  # outcome unknown: its files stay (a committed one is a later leader's)
            self.stats.failed_checkpoint(checkpoint_id, int(time.time() * 1000), f"commit outcome unknown: {error}")
            self._answer_requested(checkpoint_id, f"its commit's outcome is unknown: {error}")
            logger.warning("Checkpoint %d of job %s: commit outcome unknown (%s); its files are kept",
                           checkpoint_id, self.graph.job_id, error)
            return None
        committed = self.tracker.committed(pending, [old.checkpoint_id for old in removed], time.monotonic())
        self.stats.completed_checkpoint(checkpoint_id, int(time.time() * 1000), folder)
        self._answer_requested(checkpoint_id, None)
        logger.info("Completed checkpoint %d of job %s (%d tasks, %d ms)", checkpoint_id, self.graph.job_id,
                    len(pending.acks), int(time.time() * 1000) - pending.timestamp_ms)  # right after the commit
        for old in removed:
            if self._owned(old.external_pointer):
                await self._blocking(self.storage.delete, old.external_pointer)
        if committed.unreferenced_shared:
            await self._delete_all(committed.unreferenced_shared)
        for older in committed.subsumed:
            self._discard(older, f"subsumed by checkpoint {checkpoint_id}")
        return checkpoint_id

    async def restored_state(self, fall_back: bool = True) -> tuple[int, dict[tuple[str, int], RestorePlan]] | None:
        """The latest restorable retained checkpoint as each subtask's restored state, or None when the job
        never completed one (start fresh). A checkpoint whose `_metadata` is damaged is passed over for the
        next older one (said in a RecoveryNote), unless `fall_back` is False (CheckpointFallbackNeeded). With
        none left it raises CheckpointRestoreError naming each: a job that had checkpoints never starts empty.
        An unreachable storage raises its StorageError."""
        retained = self.store.all()
        passed_over = []
        for checkpoint in reversed(retained):
            checkpoint_id = checkpoint.checkpoint_id
            if checkpoint_id in self.unrestorable:
                passed_over.append(checkpoint_id)
                continue
            what = f"checkpoint {checkpoint_id} of job {self.graph.job_id}"
            try:
                metadata = await self._blocking(read_metadata, self.storage, checkpoint.external_pointer, what)
            except CheckpointDamagedError as error:  # (said by the fallback's note, or by the error below)
                self.unrestorable[checkpoint_id] = str(error)
                if not fall_back:
                    raise CheckpointFallbackNeeded(str(error)) from None
                passed_over.append(checkpoint_id)
                continue
            if passed_over and (checkpoint_id, tuple(passed_over)) not in self._fallbacks_noted:
                self._fallbacks_noted.add((checkpoint_id, tuple(passed_over)))
                self._note("CheckpointRestoreFallback", f"Job {self.graph.job_id} restores checkpoint {checkpoint_id}, "
                           f"the latest of the {len(retained)} retained that can be restored (passed over: "
                           + "; ".join(f"{i}: {self.unrestorable[i]}" for i in passed_over) + ")")
            tasks = {tuple(execution): url for execution, url in metadata["tasks"].items()}
            adopt_key_hash(self.graph, metadata)
            self.stats.restored(checkpoint_id, int(time.time() * 1000), False, checkpoint.external_pointer)
            return checkpoint_id, plan_restore(self.graph, tasks, metadata.get("parallelism"),
                                               set(metadata.get("restore_from_all", ())))
        if not retained and not self.unrestorable and not self.store.damaged and not self.store.had_checkpoints:
            return None
        reasons = "; ".join(f"checkpoint {i}: {why}" for i, why in sorted(self.unrestorable.items(), reverse=True))
        # the next attempt reads the store again and looks at every checkpoint anew (files may be back)
        self.unrestorable.clear()
        self.initialized = False
        if not reasons:
            reasons = f"the job record says checkpoints were completed, but none is left in {self.store.location}"
        raise CheckpointRestoreError(f"no retained checkpoint of job {self.graph.job_id} can be restored ({reasons}); "
                                     f"the job is not started from empty state, and its checkpoint folder "
                                     f"{self.job_dir} is kept")
