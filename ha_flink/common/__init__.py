"""The user API's common vocabulary, named as in `pyflink.common`: record types (`Row`, `Types`),
time amounts, serialization, watermark strategies and `Configuration`."""

from __future__ import annotations

from ha_flink.common.completable_future import CompletableFuture
from ha_flink.common.configuration import Configuration
from ha_flink.common.execution_config import ExecutionConfig
from ha_flink.common.job_client import JobClient
from ha_flink.common.job_execution_result import JobExecutionResult
from ha_flink.common.job_id import JobID
from ha_flink.common.job_status import JobStatus
from ha_flink.common.serialization import (
    DeserializationSchema,
    Encoder,
    SerializationSchema,
    SimpleStringEncoder,
    SimpleStringSchema,
)
from ha_flink.common.time import Duration, Instant, Time
from ha_flink.common.typeinfo import RowTypeInfo, TupleTypeInfo, TypeInformation, Types
from ha_flink.common.types import Row, RowKind
from ha_flink.common.watermark_strategy import TimestampAssigner, WatermarkStrategy

__all__ = [
    "CompletableFuture",
    "Configuration",
    "DeserializationSchema",
    "Duration",
    "Encoder",
    "ExecutionConfig",
    "Instant",
    "JobClient",
    "JobExecutionResult",
    "JobID",
    "JobStatus",
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
    "Types",
    "WatermarkStrategy",
]
