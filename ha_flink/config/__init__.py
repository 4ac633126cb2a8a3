"""Configuration: `flink-conf.yaml` / `config.yaml`, `-D` overrides, `conf/masters` and `conf/slaves`,
as typed options with Flink's keys and defaults."""

from __future__ import annotations

from ha_flink.config.configuration import Configuration, ConfigEntry
from ha_flink.config.errors import ConfigurationError
from ha_flink.config.hosts import MasterAddress, WorkerHost, read_masters, read_slaves
from ha_flink.config.loader import default_conf_dir, install_dir, load_configuration
from ha_flink.config.options import (
    CheckpointingOptions,
    ConfigOption,
    CoreOptions,
    DeploymentOptions,
    HeartbeatManagerOptions,
    HighAvailabilityOptions,
    JobManagerOptions,
    MetricOptions,
    RestartStrategyOptions,
    RestOptions,
    WebOptions,
    S3Options,
    SecurityOptions,
    StateBackendOptions,
    TaskManagerOptions,
)

__all__ = [
    "CheckpointingOptions", "ConfigEntry", "ConfigOption", "Configuration", "ConfigurationError", "CoreOptions",
    "DeploymentOptions", "HeartbeatManagerOptions", "HighAvailabilityOptions", "JobManagerOptions",
    "MasterAddress", "MetricOptions", "RestOptions", "RestartStrategyOptions", "S3Options", "SecurityOptions", "WebOptions",
    "StateBackendOptions",
    "TaskManagerOptions", "WorkerHost", "default_conf_dir", "install_dir", "load_configuration",
    "read_masters", "read_slaves",
]
