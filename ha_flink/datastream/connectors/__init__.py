"""Sources and sinks, named as in `pyflink.datastream.connectors`: the module paths
(`ha_flink.datastream.connectors.file_system`, `.number_seq`, and `.datagen` for Flink's DataGeneratorSource)
and the names PyFlink re-exports here.

Names are resolved on first use (PEP 562): the runtime imports `connectors.base`, and the connector modules
import the runtime, so importing them eagerly here would be circular."""

from __future__ import annotations

import importlib
from typing import Any

from ha_flink.datastream.connectors.base import Boundedness, DeliveryGuarantee, Sink, Source

_EXPORTS = {
    "NumberSequenceSource": "number_seq",
    "BucketAssigner": "file_system", "FileEnumeratorProvider": "file_system", "FileSink": "file_system",
    "FileSplitAssignerProvider": "file_system", "FileSource": "file_system", "FileSourceBuilder": "file_system",
    "OutputFileConfig": "file_system", "RollingPolicy": "file_system", "StreamFormat": "file_system",
    "StreamingFileSink": "file_system",
    "DataGeneratorSource": "datagen", "GeneratorFunction": "datagen", "RateLimiterStrategy": "datagen",
}

__all__ = [
    "Boundedness", "BucketAssigner", "DataGeneratorSource", "DeliveryGuarantee", "FileEnumeratorProvider", "FileSink",
    "FileSourceBuilder", "FileSource", "FileSplitAssignerProvider", "GeneratorFunction", "NumberSequenceSource",
    "OutputFileConfig", "RateLimiterStrategy", "RollingPolicy", "Sink", "Source", "StreamFormat",
    "StreamingFileSink",
]
assert set(__all__) == {"Boundedness", "DeliveryGuarantee", "Sink", "Source", *_EXPORTS}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'ha_flink.datastream.connectors' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"ha_flink.datastream.connectors.{module}"), name)
    globals()[name] = value
    return value
