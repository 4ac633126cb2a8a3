"""How records leave a subtask: forward, rebalance, rescale, shuffle, broadcast, custom, or hash by key group.

Keys go to key groups (`max_parallelism` of them) by Flink's own hash, the same in every process (Python's
own `hash` of a str is salted per process, which would send one key to two subtasks), and key groups
go to subtasks by contiguous ranges, as in Flink's KeyGroupRangeAssignment (runtime/key_groups.py). Partitioners work on a whole
batch at once and return one list per channel."""

from __future__ import annotations

import random
from typing import Any, Callable

from ha_flink.common.typeinfo import TypeInformation
from ha_flink.core.functions import RuntimeContext
from ha_flink.runtime.key_groups import (
    DEFAULT_MAX_PARALLELISM, KeyGroupAssigner, KeyHash, key_group_assigner, operator_index_for_key_group,
)


class Partitioner:
    """Splits a batch over `channels` output channels. `is_pointwise`: subtask i feeds only channel i."""

    name = "partitioner"
    is_pointwise = False

    def setup(self, channels: int, subtask_index: int) -> None:
        self.channels = channels
        self.subtask_index = subtask_index

    def partition(self, batch: list[Any]) -> list[list[Any]]:
        raise NotImplementedError

    def partition_stamped(self, batch: list[Any], timestamps: list[int]) -> list[tuple[list[Any], list[int]]]:
        """`partition` for a batch with event-time timestamps: each record's timestamp goes with it.
        Partitioners that place whole batches pair the parts up; the per-record ones override this."""
        parts = self.partition(batch)
        return [(part, timestamps if part is batch else []) for part in parts]

    def __repr__(self) -> str:
        return self.name.upper()


class ForwardPartitioner(Partitioner):
    name = "forward"
    is_pointwise = True

    def partition(self, batch: list[Any]) -> list[list[Any]]:
        return [batch]


class RebalancePartitioner(Partitioner):
    """Round robin, starting at a random channel as Flink does, batch by batch (not record by record:
    cheaper, and as even over any long run)."""

    name = "rebalance"

    def setup(self, channels: int, subtask_index: int) -> None:
        super().setup(channels, subtask_index)
        self._next = random.randrange(channels)

    def partition(self, batch: list[Any]) -> list[list[Any]]:
        out: list[list[Any]] = [[] for _ in range(self.channels)]
        out[self._next] = batch
        self._next = (self._next + 1) % self.channels
        return out


def rescale_targets(upstream_parallelism: int, downstream_parallelism: int, upstream_index: int) -> range:
    """The downstream subtasks upstream subtask `upstream_index` feeds over a rescale (POINTWISE) edge, as
    Flink's EdgeManagerBuildUtil.connectPointwise: equal parallelism one to one; more producers than
    consumers: consumer t reads producers [t*up/down, (t+1)*up/down); fewer: producer i feeds consumers
    [ceil(i*down/up), ceil((i+1)*down/up))."""
    up, down, i = upstream_parallelism, downstream_parallelism, upstream_index
    if up == down:
        return range(i, i + 1)
    if up > down:
        target = next(t for t in range(down) if t * up // down <= i < (t + 1) * up // down)
        return range(target, target + 1)
    return range((i * down + up - 1) // up, ((i + 1) * down + up - 1) // up)


class RescalePartitioner(Partitioner):
    """`rescale()`: round robin, record by record, over the downstream subtasks in this subtask's range
    (`rescale_targets`), starting at the first of them as Flink's RescalePartitioner does.

    Flink makes the edge POINTWISE. Here `is_pointwise` means one to one (subtask i feeds only subtask i),
    so the job graph marks the edge pointwise only when both sides have the same parallelism; otherwise the
    edge is all-to-all (every producer has a channel to every consumer, and failover treats the two sides
    as one region) and the selection is restricted to the range. The job graph sets `upstream_parallelism`
    (the writer only learns the number of channels, the downstream parallelism)."""

    name = "rescale"

    def __init__(self, upstream_parallelism: int | None = None) -> None:
        self.upstream_parallelism = upstream_parallelism

    def for_edge(self, upstream_parallelism: int, downstream_parallelism: int) -> RescalePartitioner:
        bound = RescalePartitioner(upstream_parallelism)
        bound.is_pointwise = upstream_parallelism == downstream_parallelism
        return bound

    def setup(self, channels: int, subtask_index: int) -> None:
        super().setup(channels, subtask_index)
        if self.is_pointwise or channels == 1:
            self._targets = range(0, 1)  # (a pointwise writer has the one channel of its own consumer)
        else:
            self._targets = rescale_targets(self.upstream_parallelism or channels, channels, subtask_index)
        self._next = -1  # Flink's nextChannelToSendTo: the first record goes to the range's first subtask

    def _split(self, count: int) -> list[tuple[int, slice]]:
        """(channel, slice of the batch) pairs: record k of the batch goes to target (next + 1 + k) % n."""
        targets, n = self._targets, len(self._targets)
        first = self._next + 1
        self._next = (self._next + count) % n
        return [(targets[(first + r) % n], slice(r, None, n)) for r in range(min(n, count))]

    def partition(self, batch: list[Any]) -> list[list[Any]]:
        out: list[list[Any]] = [[] for _ in range(self.channels)]
        for channel, part in self._split(len(batch)):
            out[channel] = batch[part]
        return out

    def partition_stamped(self, batch: list[Any], timestamps: list[int]) -> list[tuple[list[Any], list[int]]]:
        out: list[tuple[list[Any], list[int]]] = [([], []) for _ in range(self.channels)]
        for channel, part in self._split(len(batch)):
            out[channel] = (batch[part], timestamps[part])
        return out


class _PartitionerContext(RuntimeContext):
    """What a custom Partitioner's `open` gets: the producing subtask's identity. It runs in the record
    writer, outside any operator, so it has no keyed state."""

    def __init__(self, task_name: str, parallelism: int, max_parallelism: int, index: int,
                 job_parameters: dict[str, str]) -> None:
        self._task_name, self._parallelism, self._max_parallelism = task_name, parallelism, max_parallelism
        self._index, self._job_parameters = index, job_parameters

    def get_task_name(self) -> str:
        return self._task_name

    def get_number_of_parallel_subtasks(self) -> int:
        return self._parallelism

    def get_max_number_of_parallel_subtasks(self) -> int:
        return self._max_parallelism

    def get_index_of_this_subtask(self) -> int:
        return self._index

    def get_attempt_number(self) -> int:
        return 0

    def get_job_parameter(self, key: str, default_value: str) -> str:
        return self._job_parameters.get(key, default_value)

    def _no_state(self) -> Any:
        raise RuntimeError(f"{self._task_name}: a Partitioner has no keyed state (it runs outside any operator)")

    def get_state(self, state_descriptor: Any) -> Any:
        return self._no_state()

    def get_list_state(self, state_descriptor: Any) -> Any:
        return self._no_state()

    def get_map_state(self, state_descriptor: Any) -> Any:
        return self._no_state()

    def get_reducing_state(self, state_descriptor: Any) -> Any:
        return self._no_state()

    def get_aggregating_state(self, state_descriptor: Any) -> Any:
        return self._no_state()


class CustomPartitioner(Partitioner):
    """`partition_custom(partitioner, key_selector)`: each record goes to channel
    `partitioner.partition(key_selector(record), channels)` (Flink's CustomPartitionerWrapper). The
    partitioner is a `Partitioner` (its `open` is called once per producing subtask, with that subtask's
    runtime context; the record writer has no end, so `close` is not called) or a callable
    `(key, num_partitions) -> int`; the key selector a `KeySelector` or a callable."""

    name = "custom"

    def __init__(self, partitioner: Any, key_selector: Any) -> None:
        self.partitioner = partitioner
        self.key_selector = key_selector
        # (name, parallelism, max parallelism, job parameters) of the producing vertex, set by the job graph
        self.producer: tuple[str, int, int, dict[str, str]] = ("", 1, DEFAULT_MAX_PARALLELISM, {})

    def for_edge(self, producer_name: str, parallelism: int, max_parallelism: int,
                 job_parameters: dict[str, str]) -> CustomPartitioner:
        bound = CustomPartitioner(self.partitioner, self.key_selector)
        bound.producer = (producer_name, parallelism, max_parallelism, dict(job_parameters))
        return bound

    def setup(self, channels: int, subtask_index: int) -> None:
        super().setup(channels, subtask_index)
        name, parallelism, max_parallelism, parameters = self.producer
        context = _PartitionerContext(name, parallelism, max_parallelism, subtask_index, parameters)
        for function in (self.partitioner, self.key_selector):
            if hasattr(function, "open") and not isinstance(function, type):
                function.open(context)
        self._partition = getattr(self.partitioner, "partition", self.partitioner)
        self._key = getattr(self.key_selector, "get_key", self.key_selector)

    def _channel(self, record: Any) -> int:
        channel = self._partition(self._key(record), self.channels)
        if not isinstance(channel, int) or isinstance(channel, bool) or not 0 <= channel < self.channels:
            raise ValueError(f"partition_custom: the partitioner returned {channel!r} for the record {record!r}; "
                             f"it must return a partition in 0..{self.channels - 1} (num_partitions is "
                             f"{self.channels})")
        return channel

    def partition(self, batch: list[Any]) -> list[list[Any]]:
        out: list[list[Any]] = [[] for _ in range(self.channels)]
        for record in batch:
            out[self._channel(record)].append(record)
        return out

    def partition_stamped(self, batch: list[Any], timestamps: list[int]) -> list[tuple[list[Any], list[int]]]:
        out: list[tuple[list[Any], list[int]]] = [([], []) for _ in range(self.channels)]
        for record, timestamp in zip(batch, timestamps):
            values, stamps = out[self._channel(record)]
            values.append(record)
            stamps.append(timestamp)
        return out


class ShufflePartitioner(Partitioner):
    name = "shuffle"

    def partition(self, batch: list[Any]) -> list[list[Any]]:
        out: list[list[Any]] = [[] for _ in range(self.channels)]
        channels = random.choices(range(self.channels), k=len(batch))
        for record, channel in zip(batch, channels):
            out[channel].append(record)
        return out


    def partition_stamped(self, batch: list[Any], timestamps: list[int]) -> list[tuple[list[Any], list[int]]]:
        out: list[tuple[list[Any], list[int]]] = [([], []) for _ in range(self.channels)]
        for record, timestamp, channel in zip(batch, timestamps, random.choices(range(self.channels), k=len(batch))):
            out[channel][0].append(record)
            out[channel][1].append(timestamp)
        return out


class BroadcastPartitioner(Partitioner):
    name = "broadcast"

    def partition(self, batch: list[Any]) -> list[list[Any]]:
        return [batch] * self.channels


CHANNEL_CACHE_LIMIT = 1 << 16


class KeyGroupStreamPartitioner(Partitioner):
    """`key_by`: each record goes to the subtask that owns its key's key group. `key_type` is key_by's (it
    decides the key's Java hash); `key_hash` is set by the task from its deployment (the restored
    snapshot's hash, runtime/key_groups.py)."""

    name = "hash"
    key_hash: KeyHash = KeyHash.FLINK

    def __init__(self, key_selector: Callable[[Any], Any], max_parallelism: int = DEFAULT_MAX_PARALLELISM,
                 key_type: TypeInformation | None = None) -> None:
        self.key_selector = key_selector
        self.max_parallelism = max_parallelism
        self.key_type = key_type

    def setup(self, channels: int, subtask_index: int) -> None:
        super().setup(channels, subtask_index)
        self._group_of: KeyGroupAssigner = key_group_assigner(self.key_hash, self.key_type, self.max_parallelism)
        # key group -> channel, computed once: the per-record work is one (cached) hash and two lookups.
        self._channel_of_group = [operator_index_for_key_group(self.max_parallelism, channels, group)
                                  for group in range(self.max_parallelism)]
        self._channel_of_key: dict[str | int, int] = {}

    def partition(self, batch: list[Any]) -> list[list[Any]]:
        if self.channels == 1:
            return [batch]
        out: list[list[Any]] = [[] for _ in range(self.channels)]
        appends = [channel.append for channel in out]
        select, group_of, channel_of = self.key_selector, self._group_of, self._channel_of_group
        # The channel of an exact str or int key, cached here: one call per record fewer than asking
        # group_of (the hot loop of every key_by; other keys go through group_of's own rules and cache).
        cache = self._channel_of_key
        cached = cache.get
        for record in batch:
            key = select(record)
            kind = type(key)
            if kind is str or kind is int:
                channel = cached(key)
                if channel is None:
                    if len(cache) >= CHANNEL_CACHE_LIMIT:
                        cache.clear()
                    channel = cache[key] = channel_of[group_of(key)]
            else:
                channel = channel_of[group_of(key)]
            appends[channel](record)
        return out

    def partition_stamped(self, batch: list[Any], timestamps: list[int]) -> list[tuple[list[Any], list[int]]]:
        if self.channels == 1:
            return [(batch, timestamps)]
        out: list[tuple[list[Any], list[int]]] = [([], []) for _ in range(self.channels)]
        select, group_of, channel_of = self.key_selector, self._group_of, self._channel_of_group
        for record, timestamp in zip(batch, timestamps):
            values, stamps = out[channel_of[group_of(select(record))]]
            values.append(record)
            stamps.append(timestamp)
        return out
