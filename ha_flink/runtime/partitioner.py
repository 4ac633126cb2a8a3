"""How records leave a subtask: forward, rebalance, shuffle, broadcast, or hash by key group.

Keys go to key groups (`max_parallelism` of them) by a hash that is the same in every process (Python's
own `hash` of a str is salted per process, which would send one key to two subtasks), and key groups
go to subtasks by contiguous ranges, as in Flink's KeyGroupRangeAssignment. Partitioners work on a whole
batch at once and return one list per channel."""

from __future__ import annotations

import pickle
import random
import struct
import zlib
from typing import Any, Callable

DEFAULT_MAX_PARALLELISM = 128
_MASK64 = (1 << 64) - 1


def _mix32(h: int) -> int:
    """murmur3's finalizer: crc32's low bits are poorly spread for short keys, and key groups use them."""
    h ^= h >> 16
    h = (h * 0x85EBCA6B) & 0xFFFFFFFF
    h ^= h >> 13
    h = (h * 0xC2B2AE35) & 0xFFFFFFFF
    return h ^ (h >> 16)


def stable_hash(key: Any) -> int:
    """A process-independent hash: crc32 for text and bytes, the value itself (mixed) for ints, pickled
    bytes for anything else; then murmur3's finalizer."""
    if isinstance(key, str):
        return _mix32(zlib.crc32(key.encode("utf-8", "surrogatepass")))
    if isinstance(key, bool) or not isinstance(key, int):
        if isinstance(key, (bytes, bytearray)):
            return _mix32(zlib.crc32(key))
        if isinstance(key, float):
            return _mix32(zlib.crc32(struct.pack("<d", key)))
        if isinstance(key, tuple):
            h = 0x345678
            for item in key:
                h = (h * 1000003 ^ stable_hash(item)) & 0xFFFFFFFF
            return _mix32(h)
        return _mix32(zlib.crc32(pickle.dumps(key, protocol=5)))
    # Fibonacci hashing spreads consecutive ints over the groups.
    return ((key & _MASK64) * 0x9E3779B97F4A7C15 & _MASK64) >> 32


def assign_to_key_group(key: Any, max_parallelism: int) -> int:
    return stable_hash(key) % max_parallelism


def operator_index_for_key_group(max_parallelism: int, parallelism: int, key_group: int) -> int:
    return key_group * parallelism // max_parallelism


def key_group_range(max_parallelism: int, parallelism: int, index: int) -> range:
    """The key groups subtask `index` owns (Flink's computeKeyGroupRangeForOperatorIndex)."""
    start = (index * max_parallelism + parallelism - 1) // parallelism
    end = ((index + 1) * max_parallelism - 1) // parallelism
    return range(start, end + 1)


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


class KeyGroupStreamPartitioner(Partitioner):
    """`key_by`: each record goes to the subtask that owns its key's key group."""

    name = "hash"

    def __init__(self, key_selector: Callable[[Any], Any], max_parallelism: int = DEFAULT_MAX_PARALLELISM) -> None:
        self.key_selector = key_selector
        self.max_parallelism = max_parallelism

    def setup(self, channels: int, subtask_index: int) -> None:
        super().setup(channels, subtask_index)
        # key group -> channel, computed once: the per-record work is one hash and two lookups.
        self._channel_of_group = [operator_index_for_key_group(self.max_parallelism, channels, group)
                                  for group in range(self.max_parallelism)]

    def partition(self, batch: list[Any]) -> list[list[Any]]:
        if self.channels == 1:
            return [batch]
        out: list[list[Any]] = [[] for _ in range(self.channels)]
        appends = [channel.append for channel in out]
        select, groups, channel_of = self.key_selector, self.max_parallelism, self._channel_of_group
        for record in batch:
            key = select(record)
            h = _mix32(zlib.crc32(key.encode("utf-8", "surrogatepass"))) if type(key) is str else stable_hash(key)
            appends[channel_of[h % groups]](record)
        return out

    def partition_stamped(self, batch: list[Any], timestamps: list[int]) -> list[tuple[list[Any], list[int]]]:
        if self.channels == 1:
            return [(batch, timestamps)]
        out: list[tuple[list[Any], list[int]]] = [([], []) for _ in range(self.channels)]
        select, groups, channel_of = self.key_selector, self.max_parallelism, self._channel_of_group
        for record, timestamp in zip(batch, timestamps):
            key = select(record)
            h = _mix32(zlib.crc32(key.encode("utf-8", "surrogatepass"))) if type(key) is str else stable_hash(key)
            values, stamps = out[channel_of[h % groups]]
            values.append(record)
            stamps.append(timestamp)
        return out
