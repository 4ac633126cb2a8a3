"""The user API's common vocabulary, named as in `pyflink.common`: record types (`Row`, `Types`),
time amounts, serialization (and the JSON, CSV and Avro row schemas PyFlink re-exports here), watermark
strategies, `Configuration` and its typed `ConfigOption`s, and restart strategy descriptions."""

from __future__ import annotations

from ha_flink.common.avro_rows import AvroRowDeserializationSchema, AvroRowSerializationSchema
from ha_flink.common.completable_future import CompletableFuture
from ha_flink.common.config_options import ConfigOption, ConfigOptions
from ha_flink.common.configuration import Configuration
from ha_flink.common.execution_config import ExecutionConfig
from ha_flink.common.input_dependency_constraint import InputDependencyConstraint
from ha_flink.common.job_client import JobClient
from ha_flink.common.job_execution_result import JobExecutionResult
from ha_flink.common.job_id import JobID
from ha_flink.common.job_status import JobStatus
from ha_flink.common.restart_strategy import RestartStrategies, RestartStrategyConfiguration
from ha_flink.common.row_schemas import (
    CsvRowDeserializationSchema,
    CsvRowSerializationSchema,
    JsonRowDeserializationSchema,
    JsonRowSerializationSchema,
)
from ha_flink.common.serialization import (
    ByteArraySchema,
    DeserializationSchema,
    Encoder,
    SerializationSchema,
    SimpleStringEncoder,
    SimpleStringSchema,
)
from ha_flink.common.serializer import TypeSerializer
from ha_flink.common.time import Duration, Instant, Time
from ha_flink.common.typeinfo import RowTypeInfo, TupleTypeInfo, TypeInformation, Types
from ha_flink.common.types import Row, RowKind
from ha_flink.common.watermark_strategy import TimestampAssigner, WatermarkStrategy

__all__ = [
    "AvroRowDeserializationSchema",
    "AvroRowSerializationSchema",
    "ByteArraySchema",
    "CompletableFuture",
    "ConfigOption",
    "ConfigOptions",
    "Configuration",
    "CsvRowDeserializationSchema",
    "CsvRowSerializationSchema",
    "DeserializationSchema",
    "Duration",
    "Encoder",
    "ExecutionConfig",
    "InputDependencyConstraint",
    "Instant",
    "JobClient",
    "JobExecutionResult",
    "JobID",
    "JobStatus",
    "JsonRowDeserializationSchema",
    "JsonRowSerializationSchema",
    "RestartStrategies",
    "RestartStrategyConfiguration",
    "Row",
    "RowKind",
    "RowTypeInfo",
    "SerializationSchema",
    "SimpleStringEncoder",
    "SimpleStringSchema",
    "Time",
    "TimestampAssigner",
    "TupleTypeInfo",
    "TypeInformation",
    "TypeSerializer",
    "Types",
    "WatermarkStrategy",
]
