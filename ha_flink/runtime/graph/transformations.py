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
    parallelism_of_input: bool = False  # unless set: the parallelism of its (first) input, as Flink's watermark op
    non_parallel: bool = False  # force_non_parallel(): parallelism and max parallelism stay 1
    description: str | None = None  # set_description(): recorded (Flink shows it in the JSON plan and web UI)
    buffer_timeout: int = -1  # set_buffer_timeout(), ms; -1: the environment's (execution.buffer-timeout.interval)
    slot_sharing_group: str | None = None  # recorded only: every subtask of a job shares the slots (see DataStream)
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
class TwoInputTransformation(Transformation):
    """`inputs[0]` feeds the operator's `process_batch`, `inputs[1]` its `process_batch2`."""

    operator: Any = None


@dataclass(eq=False)
class SideOutputTransformation(Transformation):
    """`get_side_output(tag)`: the records its input's operator emitted under the OutputTag `tag_id`."""

    tag_id: str = ""

    @property
    def is_virtual(self) -> bool:
        return True


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
