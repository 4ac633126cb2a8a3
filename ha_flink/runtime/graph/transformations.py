"""Transformations: the nodes a job script declares through the DataStream API. Physical ones run an
operator (or a source); virtual ones only say how records travel (partitioning, union)."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

from ha_flink.runtime.partitioner import Partitioner

_ids = itertools.count(1)


@dataclass(eq=False)
class Transformation:
    name: str
    inputs: list[Transformation] = field(default_factory=list)
    parallelism: int | None = None
    max_parallelism: int | None = None
    uid: str | None = None
    output_type: Any = None
    chaining: str = "always"  # "always", "never" (disable_chaining) or "head" (start_new_chain)
    id: int = field(default_factory=lambda: next(_ids))

    @property
    def is_virtual(self) -> bool:
        return False


@dataclass(eq=False)
class SourceTransformation(Transformation):
    source: Any = None  # a connectors.base.Source


@dataclass(eq=False)
class OneInputTransformation(Transformation):
    operator: Any = None  # a StreamOperator, copied for every subtask


@dataclass(eq=False)
class PartitionTransformation(Transformation):
    partitioner: Partitioner | None = None

    @property
    def is_virtual(self) -> bool:
        return True


@dataclass(eq=False)
class UnionTransformation(Transformation):
    @property
    def is_virtual(self) -> bool:
        return True
