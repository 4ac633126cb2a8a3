"""What a JobMaster sends a TaskManager to run one subtask: the vertex, which subtask and attempt, which
slot, where each input channel's data comes from and what each output partition is called."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ha_flink.runtime.graph.job_graph import JobVertex
from ha_flink.runtime.key_groups import KeyHash
from ha_flink.runtime.python_artifacts import PythonDependencies
from ha_flink.runtime.state.backend import StateBackendSettings


@dataclass(frozen=True)
class InputChannelDescriptor:
    partition_id: str
    subpartition: int
    producer_address: str  # host:port of the producing TaskManager's TaskExecutor service
    producer_data_address: str = ""  # host:port of its data exchange (runtime/network/exchange.py)


@dataclass(frozen=True)
class OutputDescriptor:
    partition_id: str
    subpartitions: int  # consuming subtasks (1 for a forward edge)
    # the TaskManager address of each subpartition's consumer: one of this TaskManager is fed in-process
    consumer_addresses: tuple[str, ...] = ()


@dataclass
class TaskDeploymentDescriptor:
    job_id: str
    job_name: str
    vertex: JobVertex
    subtask_index: int
    attempt: int
    slot_index: int
    inputs: list[InputChannelDescriptor] = field(default_factory=list)
    outputs: list[OutputDescriptor] = field(default_factory=list)
    runtime_mode: str = "STREAMING"
    job_parameters: dict[str, str] = field(default_factory=dict)
    restored: Any = None  # a RestorePlan: which snapshot files this subtask restores (it reads them itself)
    checkpoint_dir: str | None = None  # where its snapshots go: <dir>/<jobid>/chk-<id>/
    exactly_once: bool = True  # False: AT_LEAST_ONCE, barriers are not aligned
    state_backend: StateBackendSettings = field(default_factory=StateBackendSettings)
    # the job's shipped Python files, requirements and archives (runtime/python_env.py makes them usable)
    python_dependencies: PythonDependencies | None = None
    key_hash: str = KeyHash.FLINK.value  # the job's (runtime/key_groups.py): partitioners and keyed state agree

    @property
    def execution_id(self) -> tuple[str, str, int, int]:
        return (self.job_id, self.vertex.id, self.subtask_index, self.attempt)
