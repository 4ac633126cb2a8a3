"""`CheckpointConfig`, as in `pyflink.datastream.checkpoint_config`: the checkpoint settings of one
environment's jobs. Every setter writes Flink's configuration key into the job's settings (the same keys
`flink-conf.yaml` and `-D` take, so the job's value wins over the cluster's), and every getter reads the
effective value back, Flink's default when unset.

Unaligned checkpoints are not implemented (barriers are always aligned, which keeps exactly-once); asking
for them logs a warning once per job and the checkpoints stay aligned."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import TYPE_CHECKING, Optional

from ha_flink.common.time import Duration
from ha_flink.config import CheckpointingOptions, Configuration
from ha_flink.datastream.checkpointing_mode import CheckpointingMode
from ha_flink.datastream.externalized_checkpoint_retention import ExternalizedCheckpointRetention

if TYPE_CHECKING:
    from ha_flink.common.execution_config import PipelineSettings

logger = logging.getLogger(__name__)

MINIMAL_CHECKPOINT_TIME_MS = 10  # Flink's CheckpointConfig.MINIMAL_CHECKPOINT_TIME
UNALIGNED = "execution.checkpointing.unaligned.enabled"
FORCE_UNALIGNED = "execution.checkpointing.unaligned.forced"
ALIGNED_TIMEOUT = "execution.checkpointing.aligned-checkpoint-timeout"
_MAX_INT = 2147483647


def _ms(value: timedelta) -> int:
    return int(value.total_seconds() * 1000)


class CheckpointConfig:
    def __init__(self, settings: PipelineSettings) -> None:
        self._settings = settings

    def _config(self) -> Configuration:
        return Configuration(self._settings.values)

    def _set(self, key: str, value: str) -> CheckpointConfig:
        Configuration({key: value})  # a value Flink would refuse is refused here, at the call, with the key
        self._settings.values[key] = value
        return self

    def is_checkpointing_enabled(self) -> bool:
        return self.get_checkpoint_interval() > 0

    def get_checkpointing_mode(self) -> CheckpointingMode:
        return CheckpointingMode[self._config().get(CheckpointingOptions.CHECKPOINTING_MODE)]

    def set_checkpointing_mode(self, checkpointing_mode: CheckpointingMode) -> CheckpointConfig:
        return self._set(CheckpointingOptions.CHECKPOINTING_MODE.key, checkpointing_mode.name)

    def get_checkpoint_interval(self) -> int:
        """The interval in milliseconds; -1 when checkpointing is off (as PyFlink)."""
        interval = self._config().get(CheckpointingOptions.CHECKPOINTING_INTERVAL)
        return _ms(interval) if interval is not None and interval.total_seconds() > 0 else -1

    def set_checkpoint_interval(self, checkpoint_interval: int) -> CheckpointConfig:
        if checkpoint_interval < MINIMAL_CHECKPOINT_TIME_MS:
            raise ValueError(f"Checkpoint interval must be larger than or equal to {MINIMAL_CHECKPOINT_TIME_MS} ms "
                             f"(got {checkpoint_interval})")
        return self._set(CheckpointingOptions.CHECKPOINTING_INTERVAL.key, f"{checkpoint_interval} ms")

    def get_checkpoint_timeout(self) -> int:
        return _ms(self._config().get(CheckpointingOptions.CHECKPOINTING_TIMEOUT))

    def set_checkpoint_timeout(self, checkpoint_timeout: int) -> CheckpointConfig:
        if checkpoint_timeout < 1:
            raise ValueError(f"Checkpoint timeout must be larger than {MINIMAL_CHECKPOINT_TIME_MS} ms "
                             f"(got {checkpoint_timeout})")
        return self._set(CheckpointingOptions.CHECKPOINTING_TIMEOUT.key, f"{checkpoint_timeout} ms")

    def get_min_pause_between_checkpoints(self) -> int:
        return _ms(self._config().get(CheckpointingOptions.MIN_PAUSE_BETWEEN_CHECKPOINTS))

    def set_min_pause_between_checkpoints(self, min_pause_between_checkpoints: int) -> CheckpointConfig:
        if min_pause_between_checkpoints < 0:
            raise ValueError("Pause value must be zero or positive")
        return self._set(CheckpointingOptions.MIN_PAUSE_BETWEEN_CHECKPOINTS.key, f"{min_pause_between_checkpoints} ms")

    def get_max_concurrent_checkpoints(self) -> int:
        return self._config().get(CheckpointingOptions.MAX_CONCURRENT_CHECKPOINTS)

    def set_max_concurrent_checkpoints(self, max_concurrent_checkpoints: int) -> CheckpointConfig:
        if max_concurrent_checkpoints < 1:
            raise ValueError("The maximum number of concurrent attempts must be at least one.")
        return self._set(CheckpointingOptions.MAX_CONCURRENT_CHECKPOINTS.key, str(max_concurrent_checkpoints))

    def is_fail_on_checkpointing_errors(self) -> bool:
        return self.get_tolerable_checkpoint_failure_number() == 0

    def set_fail_on_checkpointing_errors(self, fail_on_checkpointing_errors: bool) -> CheckpointConfig:
        return self.set_tolerable_checkpoint_failure_number(0 if fail_on_checkpointing_errors else _MAX_INT)

    def get_tolerable_checkpoint_failure_number(self) -> int:
        return self._config().get(CheckpointingOptions.TOLERABLE_FAILED_CHECKPOINTS)

    def set_tolerable_checkpoint_failure_number(self, tolerable_checkpoint_failure_number: int) -> CheckpointConfig:
        if tolerable_checkpoint_failure_number < 0:
            raise ValueError("The tolerable failure checkpoint number must be non-negative.")
        return self._set(CheckpointingOptions.TOLERABLE_FAILED_CHECKPOINTS.key, str(tolerable_checkpoint_failure_number))

    def set_externalized_checkpoint_retention(self, retention_mode: ExternalizedCheckpointRetention) -> CheckpointConfig:
        return self._set(CheckpointingOptions.EXTERNALIZED_CHECKPOINT_RETENTION.key, retention_mode.name)

    def is_externalized_checkpoints_enabled(self) -> bool:
        return self.get_externalized_checkpoint_retention() != ExternalizedCheckpointRetention.NO_EXTERNALIZED_CHECKPOINTS

    def get_externalized_checkpoint_retention(self) -> Optional[ExternalizedCheckpointRetention]:
        return ExternalizedCheckpointRetention[self._config().get(CheckpointingOptions.EXTERNALIZED_CHECKPOINT_RETENTION)]

    # -- unaligned checkpoints: recorded, refused at run time with a warning (barriers stay aligned) --

    def is_unaligned_checkpoints_enabled(self) -> bool:
        return self._settings.values.get(UNALIGNED, "false").lower() == "true"

    def enable_unaligned_checkpoints(self, enabled: bool = True) -> CheckpointConfig:
        self._settings.values[UNALIGNED] = str(enabled).lower()
        return self

    def disable_unaligned_checkpoints(self) -> CheckpointConfig:
        return self.enable_unaligned_checkpoints(False)

    def set_aligned_checkpoint_timeout(self, alignment_timeout: Duration) -> CheckpointConfig:
        self._settings.values[ALIGNED_TIMEOUT] = f"{alignment_timeout.to_milliseconds()} ms"
        return self

    def get_aligned_checkpoint_timeout(self) -> Duration:
        text = self._settings.values.get(ALIGNED_TIMEOUT, "0 ms")
        return Duration.of_millis(int(text.split()[0]))

    def set_alignment_timeout(self, alignment_timeout: Duration) -> CheckpointConfig:
        return self.set_aligned_checkpoint_timeout(alignment_timeout)

    def get_alignment_timeout(self) -> Duration:
        return self.get_aligned_checkpoint_timeout()

    def set_force_unaligned_checkpoints(self, force_unaligned_checkpoints: bool = True) -> CheckpointConfig:
        self._settings.values[FORCE_UNALIGNED] = str(force_unaligned_checkpoints).lower()
        return self

    def is_force_unaligned_checkpoints(self) -> bool:
        return self._settings.values.get(FORCE_UNALIGNED, "false").lower() == "true"


def warn_unsupported(values: dict[str, str], job_name: str) -> None:
    """Say, when a job starts, which checkpoint settings it asked for that are not provided."""
    if values.get(UNALIGNED, "false").lower() == "true" or values.get(FORCE_UNALIGNED, "false").lower() == "true":
        logger.warning("Job %s asks for unaligned checkpoints (%s): not supported by ha-flink; its checkpoints "
                       "stay aligned (exactly-once holds, barrier alignment may take longer under "
                       "backpressure)", job_name, UNALIGNED)
