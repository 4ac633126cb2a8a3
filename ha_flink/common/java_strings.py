"""How PyFlink prints a record of a declared type: `print()` of a stream whose output type is not
PICKLED_BYTE_ARRAY writes the Java object's `toString()` (PyFlink converts the record to Java first), so
`Types.TUPLE([Types.STRING(), Types.INT()])` prints `(hi,1)`, a Row `+I[hi, 1]`, a boolean `true`. An
undeclared (pickled) record prints as Python's `str()`. `java_string(value, type_info)` gives the Java text.

Floating-point numbers follow Java's `Float.toString`/`Double.toString` layout (decimal between 10^-3 and
10^7, else `1.0E10`) with the shortest digits that read back to the same value (Java 19+'s rule)."""

from __future__ import annotations

import datetime
import math
import struct
from typing import Any

from ha_flink.common.typeinfo import (
    BasicType, BasicTypeInfo, ListTypeInfo, MapTypeInfo, PickledBytesTypeInfo, RowTypeInfo, TupleTypeInfo,
    TypeInformation, _ElementTypeInfo,
)
from ha_flink.common.types import Row, RowKind

_SHORT_KINDS = {RowKind.INSERT: "+I", RowKind.UPDATE_BEFORE: "-U", RowKind.UPDATE_AFTER: "+U", RowKind.DELETE: "-D"}

_FLOAT32 = struct.Struct("f")


def _shortest_float32(value: float) -> str:
    for digits in range(1, 10):
        text = f"{value:.{digits}g}"
        if _FLOAT32.unpack(_FLOAT32.pack(float(text)))[0] == value:
            return text
    return repr(value)


def _java_floating(value: float, single: bool) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    if value == 0:
        return "-0.0" if math.copysign(1.0, value) < 0 else "0.0"
    digits = _shortest_float32(value) if single else repr(value)
    mantissa, _, exponent = digits.lower().partition("e")
    sign = "-" if mantissa.startswith("-") else ""
    mantissa = mantissa.lstrip("-")
    whole, _, fraction = mantissa.partition(".")
    significant = (whole + fraction).lstrip("0") or "0"
    # decimal exponent of the first significant digit
    point = len(whole) + (int(exponent) if exponent else 0)
    leading_zeros = len(whole + fraction) - len((whole + fraction).lstrip("0"))
    magnitude = point - leading_zeros - 1
    significant = significant.rstrip("0") or "0"
    if -3 <= magnitude < 7:
        if magnitude >= 0:
            integer = significant[:magnitude + 1].ljust(magnitude + 1, "0")
            rest = significant[magnitude + 1:] or "0"
            return f"{sign}{integer}.{rest}"
        return f"{sign}0.{'0' * (-magnitude - 1)}{significant}"
    return f"{sign}{significant[0]}.{significant[1:] or '0'}E{magnitude}"


def java_string(value: Any, type_info: TypeInformation | None) -> str:
    """`value`'s text as PyFlink's print() shows a record of `type_info` (None or pickled: `str(value)`)."""
    if type_info is None or isinstance(type_info, PickledBytesTypeInfo):
        return value if isinstance(value, (str, bytes)) else str(value)  # type: ignore[return-value]
    return _java(value, type_info)


def _java(value: Any, type_info: TypeInformation | None) -> str:
    if value is None:
        return "null"
    if isinstance(type_info, BasicTypeInfo):
        kind = type_info._basic_type
        if kind == BasicType.BOOLEAN:
            return "true" if value else "false"
        if kind in (BasicType.FLOAT, BasicType.DOUBLE) and isinstance(value, (int, float)):
            return _java_floating(float(value), kind == BasicType.FLOAT)
        return str(value)
    if isinstance(type_info, TupleTypeInfo):
        types = type_info.get_field_types()
        return "(" + ",".join(_java(v, t) for v, t in zip(value, types)) + ")"
    if isinstance(type_info, RowTypeInfo):
        types = type_info.get_field_types()
        row_kind = _SHORT_KINDS[value.get_row_kind()] if isinstance(value, Row) else "+I"
        return row_kind + "[" + ", ".join(_java(v, t) for v, t in zip(value, types)) + "]"
    if isinstance(type_info, MapTypeInfo):
        return "{" + ", ".join(f"{_java(k, type_info._key_type_info)}={_java(v, type_info._value_type_info)}"
                               for k, v in value.items()) + "}"
    if isinstance(type_info, (ListTypeInfo, _ElementTypeInfo)):
        element = type_info.get_element_type()
        return "[" + ", ".join(_java(v, element) for v in value) + "]"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return _java_floating(value, False)
    if isinstance(value, datetime.datetime):
        return value.isoformat()
    return str(value)
