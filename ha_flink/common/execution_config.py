"""`ExecutionConfig`, as in `pyflink.common.execution_config`: the job-wide settings of one environment
(`env.get_config()`), and `PipelineSettings`, what an environment, its ExecutionConfig and its
CheckpointConfig share: parallelism, global job parameters and the Flink keys set through the API.

Flink concepts that exist only for Java classes have nothing to configure here, and their switches say so
in their docstrings: the closure cleaner (cloudpickle takes a function with exactly what it refers to),
Kryo and Avro (records are pickled), POJO registration. Their flags are kept, so reading one back gives
what was set. Latency markers are not implemented: setting an interval logs that once."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Dict, List

logger = logging.getLogger(__name__)


@dataclass
class PipelineSettings:
    parallelism: int = 1
    parallelism_set: bool = False  # by set_parallelism, parallelism.default or the ExecutionConfig
    max_parallelism: int = -1  # -1: the runtime's default (Flink's 128-or-derived rule)
    job_parameters: dict[str, str] = field(default_factory=dict)
    values: dict[str, str] = field(default_factory=dict)  # Flink keys -> values, the job's own settings
    flags: dict[str, bool] = field(default_factory=dict)  # switches of Java-only concepts, kept for reading


class ExecutionConfig:
    # Flink's markers: the system's default parallelism, and a parallelism not known yet.
    PARALLELISM_DEFAULT = -1
    PARALLELISM_UNKNOWN = -2

    def __init__(self, settings: PipelineSettings) -> None:
        self._settings = settings

    def _flag(self, name: str, value: bool) -> ExecutionConfig:
        self._settings.flags[name] = value
        return self

    # -- Java-only concepts: kept, nothing to do --

    def enable_closure_cleaner(self) -> ExecutionConfig:
        """Python functions are pickled with what they refer to (cloudpickle); there is nothing to clean."""
        return self._flag("closure-cleaner", True)

    def disable_closure_cleaner(self) -> ExecutionConfig:
        return self._flag("closure-cleaner", False)

    def is_closure_cleaner_enabled(self) -> bool:
        return self._settings.flags.get("closure-cleaner", True)

    def enable_force_kryo(self) -> ExecutionConfig:
        """Records are pickled; Kryo is a Java serializer."""
        return self._flag("force-kryo", True)

    def disable_force_kryo(self) -> ExecutionConfig:
        return self._flag("force-kryo", False)

    def is_force_kryo_enabled(self) -> bool:
        return self._settings.flags.get("force-kryo", False)

    def enable_generic_types(self) -> ExecutionConfig:
        return self._flag("generic-types", True)

    def disable_generic_types(self) -> ExecutionConfig:
        """Java's generic types fall back to Kryo; Python records have no such fallback to forbid."""
        return self._flag("generic-types", False)

    def has_generic_types_disabled(self) -> bool:
        return not self._settings.flags.get("generic-types", True)

    def enable_force_avro(self) -> ExecutionConfig:
        """Records are pickled; Avro is for Java POJOs."""
        return self._flag("force-avro", True)

    def disable_force_avro(self) -> ExecutionConfig:
        return self._flag("force-avro", False)

    def is_force_avro_enabled(self) -> bool:
        return self._settings.flags.get("force-avro", False)

    def get_default_kryo_serializer_classes(self) -> Dict[str, str]:
        return {}

    def get_registered_kryo_types(self) -> List[str]:
        return []

    def get_registered_pojo_types(self) -> List[str]:
        return []

    # -- honoured --

    def enable_auto_generated_uids(self) -> ExecutionConfig:
        return self._flag("auto-generated-uids", True)

    def disable_auto_generated_uids(self) -> ExecutionConfig:
        """Every operator must then have a uid (`.uid(...)`): the job graph refuses one without, so a
        savepoint's state always maps to operators by a name the user chose."""
        return self._flag("auto-generated-uids", False)

    def has_auto_generated_uids_enabled(self) -> bool:
        return self._settings.flags.get("auto-generated-uids", True)

    def enable_object_reuse(self) -> ExecutionConfig:
        """Chained operators already hand records on without copying (as Flink with object reuse on); the
        switch is kept for reading."""
        return self._flag("object-reuse", True)

    def disable_object_reuse(self) -> ExecutionConfig:
        return self._flag("object-reuse", False)

    def is_object_reuse_enabled(self) -> bool:
        return self._settings.flags.get("object-reuse", False)

    def set_auto_watermark_interval(self, interval: int) -> ExecutionConfig:
        """`pipeline.auto-watermark-interval`, in ms: watermarks are emitted after every batch of records,
        which is at most this often for any interval above a batch's processing time."""
        self._settings.values["pipeline.auto-watermark-interval"] = f"{interval} ms"
        return self

    def get_auto_watermark_interval(self) -> int:
        text = self._settings.values.get("pipeline.auto-watermark-interval", "200 ms")
        return int(text.split()[0])

    def set_latency_tracking_interval(self, interval: int) -> ExecutionConfig:
        if interval > 0:
            logger.warning("set_latency_tracking_interval(%d): latency markers are not supported by ha-flink; "
                           "no latency metrics will be reported", interval)
        self._settings.values["metrics.latency.interval"] = f"{interval} ms"
        return self

    def get_latency_tracking_interval(self) -> int:
        return int(self._settings.values.get("metrics.latency.interval", "0 ms").split()[0])

    def get_parallelism(self) -> int:
        return self._settings.parallelism

    def set_parallelism(self, parallelism: int) -> ExecutionConfig:
        if parallelism < 1 and parallelism != -1:
            raise ValueError(f"Parallelism must be at least one, or -1 (use system default); got {parallelism}")
        self._settings.parallelism = parallelism if parallelism != -1 else 1
        self._settings.parallelism_set = parallelism != -1
        return self

    def get_max_parallelism(self) -> int:
        return self._settings.max_parallelism

    def set_max_parallelism(self, max_parallelism: int) -> ExecutionConfig:
        if not 0 < max_parallelism <= 32768:
            raise ValueError(f"max parallelism must be in 1..32768, got {max_parallelism}")
        self._settings.max_parallelism = max_parallelism
        return self

    def get_task_cancellation_interval(self) -> int:
        return int(self._settings.values.get("task.cancellation.interval", "30000"))

    def set_task_cancellation_interval(self, interval: int) -> ExecutionConfig:
        """How often a cancelled task's thread is interrupted again (ms). Python threads cannot be
        interrupted: a cancelled task stops at its next record or batch; the value is kept."""
        self._settings.values["task.cancellation.interval"] = str(interval)
        return self

    def get_task_cancellation_timeout(self) -> int:
        return int(self._settings.values.get("task.cancellation.timeout", "180000"))

    def set_task_cancellation_timeout(self, timeout: int) -> ExecutionConfig:
        """After this many ms Flink kills a TaskManager whose task does not stop; here a TaskManager waits
        for its tasks' threads at most its own stop timeout; the value is kept."""
        if timeout < 0:
            raise ValueError("Timeout value must be >= 0")
        self._settings.values["task.cancellation.timeout"] = str(timeout)
        return self

    def get_global_job_parameters(self) -> Dict[str, str]:
        return dict(self._settings.job_parameters)

    def set_global_job_parameters(self, global_job_parameters_dict: Dict) -> ExecutionConfig:
        self._settings.job_parameters.clear()
        self._settings.job_parameters.update({str(k): str(v) for k, v in global_job_parameters_dict.items()})
        return self

    def is_use_snapshot_compression(self) -> bool:
        return self._settings.values.get("execution.checkpointing.snapshot-compression", "false").lower() == "true"

    def set_use_snapshot_compression(self, use_snapshot_compression: bool) -> ExecutionConfig:
        """Compressed snapshots are not written (state files are pickles, RocksDB's own SST files are
        compressed by RocksDB): asking for it logs that once."""
        if use_snapshot_compression:
            logger.warning("set_use_snapshot_compression(True): snapshot compression is not supported by ha-flink; "
                           "state files are written uncompressed")
        self._settings.values["execution.checkpointing.snapshot-compression"] = str(use_snapshot_compression).lower()
        return self

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ExecutionConfig) and other._settings is self._settings

    def __hash__(self) -> int:
        return id(self._settings)
