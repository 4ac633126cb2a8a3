"""`SlotSharingGroup` and `MemorySize`, as in `pyflink.datastream.slot_sharing_group`: a named group of
operators and the resources its slot asks for (Flink's fine-grained resource management).

ha-flink schedules every job in one slot sharing group with uniform slots (see
`DataStream.slot_sharing_group`), so a group's name is recorded and its resources cannot be granted: a job
whose groups ask for resources says so at submission (a warning naming the groups), rather than ignoring
them without a word."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import total_ordering
from typing import Dict, Optional

_UNITS = (("tb", 1 << 40), ("gb", 1 << 30), ("mb", 1 << 20), ("kb", 1 << 10))


@total_ordering
class MemorySize:
    """A number of bytes, viewable in different units (Flink's `MemorySize`)."""

    def __init__(self, j_memory_size: None = None, bytes_size: Optional[int] = None) -> None:
        if j_memory_size is not None:
            raise TypeError("MemorySize wraps no Java object in ha-flink: give bytes_size=")
        if bytes_size is None or bytes_size < 0:
            raise ValueError(f"bytes_size must be a number of bytes >= 0, got {bytes_size!r}")
        self._bytes = int(bytes_size)

    @staticmethod
    def of_mebi_bytes(mebi_bytes: int) -> MemorySize:
        return MemorySize(bytes_size=mebi_bytes << 20)

    def get_bytes(self) -> int:
        return self._bytes

    def get_kibi_bytes(self) -> int:
        return self._bytes >> 10

    def get_mebi_bytes(self) -> int:
        return self._bytes >> 20

    def get_gibi_bytes(self) -> int:
        return self._bytes >> 30

    def get_tebi_bytes(self) -> int:
        return self._bytes >> 40

    def __eq__(self, other: object) -> bool:
        return isinstance(other, MemorySize) and self._bytes == other._bytes

    def __hash__(self) -> int:
        return hash(self._bytes)

    def __lt__(self, other: MemorySize) -> bool:
        if not isinstance(other, MemorySize):
            raise Exception(f"Does not support comparison with non-MemorySize {other}")
        return self._bytes < other._bytes

    def __str__(self) -> str:
        """As Java's `MemorySize.toString()`: the largest unit that divides the size exactly (`1536 kb`)."""
        for unit, size in _UNITS:
            if self._bytes and self._bytes % size == 0:
                return f"{self._bytes // size} {unit}"
        return f"{self._bytes} bytes"

    __repr__ = __str__


@dataclass(frozen=True)
class _Resources:
    cpu_cores: Optional[float] = None
    task_heap_memory: Optional[MemorySize] = None
    task_off_heap_memory: Optional[MemorySize] = None
    managed_memory: Optional[MemorySize] = None
    external_resources: Dict[str, float] = field(default_factory=dict)

    def is_unknown(self) -> bool:
        return (self.cpu_cores is None and self.task_heap_memory is None and self.task_off_heap_memory is None
                and self.managed_memory is None and not self.external_resources)


class SlotSharingGroup:
    """The name and the resource components of a slot sharing group (built with `builder(name)`)."""

    def __init__(self, name: str, resources: Optional[_Resources] = None) -> None:
        self._name = name
        self._resources = resources or _Resources()

    def get_name(self) -> str:
        return self._name

    def get_managed_memory(self) -> Optional[MemorySize]:
        return self._resources.managed_memory

    def get_task_heap_memory(self) -> Optional[MemorySize]:
        return self._resources.task_heap_memory

    def get_task_off_heap_memory(self) -> Optional[MemorySize]:
        return self._resources.task_off_heap_memory

    def get_cpu_cores(self) -> Optional[float]:
        return self._resources.cpu_cores

    def get_external_resources(self) -> dict:
        return dict(self._resources.external_resources)

    def has_resources(self) -> bool:
        """Whether the group asks for resources (which ha-flink's uniform slots cannot grant)."""
        return not self._resources.is_unknown()

    @staticmethod
    def builder(name: str) -> SlotSharingGroup.Builder:
        return SlotSharingGroup.Builder(name)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SlotSharingGroup) and (self._name, self._resources) == (
            other._name, other._resources)

    def __hash__(self) -> int:
        return hash(self._name)

    def __repr__(self) -> str:
        return f"SlotSharingGroup(name={self._name!r})"

    class Builder:
        def __init__(self, name: str) -> None:
            self._name = name
            self._cpu: Optional[float] = None
            self._heap: Optional[MemorySize] = None
            self._off_heap: Optional[MemorySize] = None
            self._managed: Optional[MemorySize] = None
            self._external: Dict[str, float] = {}

        def set_cpu_cores(self, cpu_cores: float) -> SlotSharingGroup.Builder:
            if cpu_cores <= 0:
                raise ValueError(f"The cpu cores should be positive, got {cpu_cores}")
            self._cpu = cpu_cores
            return self

        def set_task_heap_memory(self, task_heap_memory: MemorySize) -> SlotSharingGroup.Builder:
            if task_heap_memory.get_bytes() <= 0:
                raise ValueError("The task heap memory should be positive")
            self._heap = task_heap_memory
            return self

        def set_task_heap_memory_mb(self, task_heap_memory_mb: int) -> SlotSharingGroup.Builder:
            return self.set_task_heap_memory(MemorySize.of_mebi_bytes(task_heap_memory_mb))

        def set_task_off_heap_memory(self, task_off_heap_memory: MemorySize) -> SlotSharingGroup.Builder:
            self._off_heap = task_off_heap_memory
            return self

        def set_task_off_heap_memory_mb(self, task_off_heap_memory_mb: int) -> SlotSharingGroup.Builder:
            return self.set_task_off_heap_memory(MemorySize.of_mebi_bytes(task_off_heap_memory_mb))

        def set_managed_memory(self, managed_memory: MemorySize) -> SlotSharingGroup.Builder:
            self._managed = managed_memory
            return self

        def set_managed_memory_mb(self, managed_memory_mb: int) -> SlotSharingGroup.Builder:
            return self.set_managed_memory(MemorySize.of_mebi_bytes(managed_memory_mb))

        def set_external_resource(self, name: str, value: float) -> SlotSharingGroup.Builder:
            self._external[name] = value
            return self

        def build(self) -> SlotSharingGroup:
            """As Flink: a group with resources needs at least its CPU cores and task heap memory."""
            resources = _Resources(self._cpu, self._heap, self._off_heap, self._managed, dict(self._external))
            if not resources.is_unknown() and (self._cpu is None or self._heap is None):
                raise ValueError(f"slot sharing group {self._name!r}: the cpu cores and task heap memory are "
                                 "required when specifying the resource of a slot sharing group")
            return SlotSharingGroup(self._name, resources)
