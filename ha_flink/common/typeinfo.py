"""`TypeInformation` and the `Types` factory: PyFlink's type descriptions of stream records, plus
`conform`, which turns a value a user function returned into a record of the declared type.

The runtime calls `conform` per record, so every type carries a precomputed `needs_conversion` flag:
when it is False, `conform` is the identity and the caller may skip the call altogether."""

from __future__ import annotations

import calendar
import datetime
import math
import struct
from enum import Enum
from typing import Any, Callable, List, Optional, Sequence

from ha_flink.common.types import Row, RowKind

__all__ = ["TypeInformation", "Types", "BasicType", "BasicTypeInfo", "RowTypeInfo", "TupleTypeInfo",
           "ListTypeInfo", "MapTypeInfo"]


class TypeInformation:
    """The description of a record type. Subclasses define equality, repr and `conform`."""

    #: False when `conform` returns its argument unchanged, so hot paths can skip it.
    needs_conversion: bool = False

    def conform(self, value: Any) -> Any:
        """The value as a record of this type (identity unless `needs_conversion`)."""
        return value

    # PyFlink's conversion to and from the internal form its Java runtime exchanges with Python (dates as
    # days since the epoch, timestamps as microseconds, rows as (row kind, *fields)); ha-flink's runtime
    # keeps Python objects, so nothing calls these on the record path: they are for user code that does.
    def need_conversion(self) -> bool:
        """Whether this type's Python objects differ from their internal form."""
        return False

    def to_internal_type(self, obj: Any) -> Any:
        return obj

    def from_internal_type(self, obj: Any) -> Any:
        return obj

    def __str__(self) -> str:
        return repr(self)


class _Singleton(TypeInformation):
    """A type with no parameters: all instances are equal. `_name` is PyFlink's repr."""

    _name = ""

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self)

    def __hash__(self) -> int:
        return hash(type(self).__name__)

    def __repr__(self) -> str:
        return self._name


class BasicType(Enum):
    STRING = "String"
    BYTE = "Byte"
    BOOLEAN = "Boolean"
    SHORT = "Short"
    INT = "Integer"
    LONG = "Long"
    FLOAT = "Float"
    DOUBLE = "Double"
    CHAR = "Char"
    BIG_INT = "BigInteger"
    BIG_DEC = "BigDecimal"
    INSTANT = "Instant"


def _wrapping(bits: int) -> Callable[[Any], Any]:
    """Java's narrowing of an integer to `bits` (two's complement: 128 as a BYTE is -128), which PyFlink's
    coders do when they write a declared BYTE, SHORT, INT or LONG field."""
    low, high, span = -(1 << (bits - 1)), (1 << (bits - 1)) - 1, 1 << bits

    def narrow(value: Any) -> Any:
        if type(value) is not int or low <= value <= high:
            return value  # (in range, None, or not an int: left as it is)
        return (value - low) % span + low

    narrow.__name__ = narrow.__qualname__ = f"_narrow_int{bits}"  # pickled by reference, as the names below
    return narrow


_narrow_int8, _narrow_int16, _narrow_int32, _narrow_int64 = (_wrapping(bits) for bits in (8, 16, 32, 64))


_FLOAT32 = struct.Struct("f")


def _to_float32(value: Any) -> Any:
    """A declared FLOAT is Java's 32-bit float: 163.3 reads back as 163.29999923706055, as in PyFlink."""
    if type(value) is not float and type(value) is not int:
        return value
    try:
        return _FLOAT32.unpack(_FLOAT32.pack(value))[0]
    except OverflowError:
        return math.copysign(math.inf, value)


_NARROWING = {BasicType.BYTE: _narrow_int8, BasicType.SHORT: _narrow_int16, BasicType.INT: _narrow_int32,
              BasicType.LONG: _narrow_int64, BasicType.FLOAT: _to_float32}


def _unchanged(before: Any, after: Any) -> bool:
    return after is before or (type(after) is type(before) and after == before)


class BasicTypeInfo(TypeInformation):
    """Strings, numbers, booleans, chars, big numbers and instants: single indivisible fields. BYTE, SHORT,
    INT, LONG and FLOAT narrow a value the Java way (`conform`)."""

    def __init__(self, basic_type: BasicType) -> None:
        self._basic_type = basic_type
        narrow = _NARROWING.get(basic_type)
        if narrow is not None:
            self.needs_conversion = True
            self.conform = narrow  # type: ignore[method-assign,assignment]  # (an instance attribute: one call per field)

    def __reduce__(self) -> tuple[Any, ...]:
        return BasicTypeInfo, (self._basic_type,)  # (rebuilt, so its narrowing function is not pickled)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, BasicTypeInfo) and self._basic_type == other._basic_type

    def __hash__(self) -> int:
        return hash(self._basic_type)

    def __repr__(self) -> str:
        return self._basic_type.value


_EPOCH_ORDINAL = datetime.datetime(1970, 1, 1).toordinal()


class DateTypeInfo(_Singleton):
    _name = "DateTypeInfo"

    def need_conversion(self) -> bool:
        return True

    def to_internal_type(self, d: datetime.date | None) -> int | None:
        return None if d is None else d.toordinal() - _EPOCH_ORDINAL  # days since the epoch

    def from_internal_type(self, v: int | None) -> datetime.date | None:
        return None if v is None else datetime.date.fromordinal(v + _EPOCH_ORDINAL)


class TimeTypeInfo(_Singleton):
    _name = "TimeTypeInfo"

    def need_conversion(self) -> bool:
        return True

    def to_internal_type(self, t: datetime.time | None) -> int | None:
        """Microseconds of the day (UTC, for a time with a zone)."""
        if t is None:
            return None
        offset = t.utcoffset() if t.tzinfo is not None else None
        offset_us = 0 if not offset else (offset.days * 86400 + offset.seconds) * 10 ** 6 + offset.microseconds
        return ((t.hour * 60 + t.minute) * 60 + t.second) * 10 ** 6 + t.microsecond - offset_us

    def from_internal_type(self, t: int | None) -> datetime.time | None:
        if t is None:
            return None
        seconds, microseconds = divmod(t, 10 ** 6)
        minutes, seconds = divmod(seconds, 60)
        hours, minutes = divmod(minutes, 60)
        return datetime.time(hours, minutes, seconds, microseconds)


class TimestampTypeInfo(_Singleton):
    _name = "TimestampTypeInfo"

    def need_conversion(self) -> bool:
        return True

    def to_internal_type(self, dt: datetime.datetime | None) -> int | None:
        """Microseconds since the epoch (a naive datetime is local time, as PyFlink's)."""
        if dt is None:
            return None
        seconds = calendar.timegm(dt.utctimetuple()) if dt.tzinfo else dt.replace(microsecond=0).timestamp()
        return int(seconds) * 10 ** 6 + dt.microsecond

    def from_internal_type(self, ts: int | None) -> datetime.datetime | None:
        if ts is None:
            return None
        return datetime.datetime.fromtimestamp(ts // 10 ** 6).replace(microsecond=ts % 10 ** 6)


class PickledBytesTypeInfo(_Singleton):
    _name = "PickledByteArrayTypeInfo"


class LocalTimeType(Enum):
    LOCAL_DATE = "LocalDate"
    LOCAL_TIME = "LocalTime"
    LOCAL_DATE_TIME = "LocalDateTime"


class LocalTimeTypeInfo(TypeInformation):
    """java.time LocalDate / LocalTime / LocalDateTime (Python date / time / datetime)."""

    def __init__(self, time_type: LocalTimeType) -> None:
        self._time_type = time_type

    def __eq__(self, other: object) -> bool:
        return isinstance(other, LocalTimeTypeInfo) and self._time_type == other._time_type

    def __hash__(self) -> int:
        return hash(self._time_type)

    def __repr__(self) -> str:
        return self._time_type.value


class _ElementTypeInfo(TypeInformation):
    """An array or list of one element type; `_label` is the PyFlink class name used in repr."""

    _label = ""

    def __init__(self, element_type: TypeInformation) -> None:
        self._element_type = element_type
        self.needs_conversion = element_type.needs_conversion

    def get_element_type(self) -> TypeInformation:
        return self._element_type

    def conform(self, value: Any) -> Any:
        if not self.needs_conversion or value is None:
            return value
        conform = self._element_type.conform
        return [conform(v) for v in value]

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and self._element_type == other._element_type

    def __hash__(self) -> int:
        return hash((type(self).__name__, self._element_type))

    def __repr__(self) -> str:
        return "%s<%s>" % (self._label, self._element_type)


class PrimitiveArrayTypeInfo(_ElementTypeInfo):
    _label = "PrimitiveArrayTypeInfo"


class BasicArrayTypeInfo(_ElementTypeInfo):
    _label = "BasicArrayTypeInfo"


class ObjectArrayTypeInfo(_ElementTypeInfo):
    _label = "ObjectArrayTypeInfo"


class ListTypeInfo(_ElementTypeInfo):
    _label = "ListTypeInfo"

    @property
    def elem_type(self) -> TypeInformation:  # PyFlink's attribute name
        return self._element_type


class MapTypeInfo(TypeInformation):
    """A map from one key type to one value type."""

    def __init__(self, key_type_info: TypeInformation, value_type_info: TypeInformation) -> None:
        self._key_type_info = key_type_info
        self._value_type_info = value_type_info
        self.needs_conversion = key_type_info.needs_conversion or value_type_info.needs_conversion

    def conform(self, value: Any) -> Any:
        if not self.needs_conversion or value is None:
            return value
        kc, vc = self._key_type_info.conform, self._value_type_info.conform
        return {kc(k): vc(v) for k, v in value.items()}

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, MapTypeInfo) and self._key_type_info == other._key_type_info
                and self._value_type_info == other._value_type_info)

    def __hash__(self) -> int:
        return hash((self._key_type_info, self._value_type_info))

    def __repr__(self) -> str:
        return "MapTypeInfo<{}, {}>".format(self._key_type_info, self._value_type_info)


def _arity_error(type_info: TypeInformation, expected: int, value: Any) -> TypeError:
    return TypeError("%r expects a record of arity %d but got arity %d: %r"
                     % (type_info, expected, len(value), value))


class _CompositeTypeInfo(TypeInformation):
    """Shared by Row and Tuple types: field types, and which of them need converting."""

    needs_conversion = True

    def __init__(self, field_types: List[TypeInformation]) -> None:
        self._field_types = list(field_types)
        self._arity = len(self._field_types)
        # Indices of nested fields to convert, so flat records cost no per-field calls.
        self._nested = [(i, t.conform) for i, t in enumerate(self._field_types) if t.needs_conversion]

    def get_field_types(self) -> List[TypeInformation]:
        return self._field_types

    def get_field_type(self, index: int) -> TypeInformation:
        return self._field_types[index]

    def get_arity(self) -> int:
        return self._arity

    def need_conversion(self) -> bool:
        return True

    def _internal_fields(self, values: Sequence[Any]) -> tuple[Any, ...]:
        return tuple(t.to_internal_type(v) for t, v in zip(self._field_types, values))

    def from_internal_type(self, obj: Any) -> Any:
        if obj is None or isinstance(obj, (tuple, list)):
            return obj  # (as PyFlink's: a tuple is already the Python form)
        return tuple(t.from_internal_type(v) for t, v in zip(self._field_types, obj))

    def _keeps(self, value: Sequence[Any] | Row) -> bool:
        """Whether converting `value`'s fields changes none of them (then the record is kept as it is:
        no copy per record for an INT field that is in range)."""
        return all(_unchanged(value[i], conform(value[i])) for i, conform in self._nested)

    def _values(self, value: Sequence[Any] | Row) -> List[Any]:
        if len(value) != self._arity:
            raise _arity_error(self, self._arity, value)
        values = list(value)
        for i, conform in self._nested:
            values[i] = conform(values[i])
        return values


class RowTypeInfo(_CompositeTypeInfo):
    """Records as `Row`s; named when built with field names (`Types.ROW_NAMED`)."""

    def __init__(self, field_types: List[TypeInformation], field_names: Optional[List[str]] = None) -> None:
        super().__init__(field_types)
        if field_names is not None and len(field_names) != len(self._field_types):
            raise ValueError("Row has %d field names but %d field types"
                             % (len(field_names), len(self._field_types)))
        self._field_names = list(field_names) if field_names is not None else None

    def get_field_names(self) -> List[str]:
        # Flink names unnamed row fields f0, f1, ...
        if self._field_names is None:
            return ["f%d" % i for i in range(self._arity)]
        return self._field_names

    def get_field_index(self, field_name: str) -> int:
        names = self.get_field_names()
        return names.index(field_name) if field_name in names else -1

    def to_internal_type(self, obj: Any) -> tuple[Any, ...] | None:
        """(row kind value, *fields), each field in its internal form, as PyFlink's."""
        if obj is None:
            return None
        names = self.get_field_names()
        if isinstance(obj, dict):
            return (RowKind.INSERT.value,) + self._internal_fields([obj.get(n) for n in names])
        if isinstance(obj, Row):
            values = [obj[n] for n in names] if hasattr(obj, "_fields") else list(obj)
            return (obj.get_row_kind().value,) + self._internal_fields(values)
        if isinstance(obj, (tuple, list)):
            return (RowKind.INSERT.value,) + self._internal_fields(list(obj))
        if hasattr(obj, "__dict__"):
            return (RowKind.INSERT.value,) + self._internal_fields([obj.__dict__.get(n) for n in names])
        raise ValueError("Unexpected tuple %r with RowTypeInfo" % (obj,))

    def conform(self, value: Any) -> Row:
        names = self._field_names
        kind = None
        if isinstance(value, Row):
            fields = getattr(value, "_fields", None)
            if fields == names and len(value) == self._arity and (not self._nested or self._keeps(value)):
                return value  # already a record of this type: keep it, and its RowKind, as is
            kind = value._row_kind
            if (fields is not None and names is not None and fields != names
                    and len(fields) == self._arity and set(fields) == set(names)):
                # Row(**kwargs) sorts its names, so a keyword-built row is matched by name.
                value = [value[n] for n in names]
        elif isinstance(value, dict) and names is not None:
            if len(value) != self._arity or not all(n in value for n in names):
                raise TypeError("%r expects a dict with keys %r but got %r" % (self, names, value))
            value = [value[n] for n in names]
        elif not isinstance(value, (tuple, list)):
            raise TypeError("%r expects a Row, tuple or list of arity %d but got %s: %r"
                            % (self, self._arity, type(value).__name__, value))
        row = Row(*self._values(value))
        if names is not None:
            row._fields = names  # shared, not copied: per-record copies would cost; Row never edits it
        if kind is not None:
            row._row_kind = kind
        return row

    def __eq__(self, other: object) -> bool:
        # PyFlink compares field types only, not names.
        return isinstance(other, RowTypeInfo) and self._field_types == other._field_types

    def __hash__(self) -> int:
        return hash(("Row", tuple(self._field_types)))

    def __repr__(self) -> str:
        if self._field_names:
            return "RowTypeInfo(%s)" % ", ".join(
                "%s: %s" % (n, t) for n, t in zip(self._field_names, self._field_types))
        return "RowTypeInfo(%s)" % ", ".join(str(t) for t in self._field_types)


class TupleTypeInfo(_CompositeTypeInfo):
    """Records as Python tuples."""

    def to_internal_type(self, obj: Any) -> tuple[Any, ...] | None:
        if obj is None:
            return None
        if not isinstance(obj, (list, tuple, Row)):
            raise ValueError("Unexpected tuple %r with TupleTypeInfo" % (obj,))
        return self._internal_fields(list(obj))

    def conform(self, value: Any) -> tuple:
        if isinstance(value, tuple):
            if len(value) != self._arity:
                raise _arity_error(self, self._arity, value)
            if not self._nested or self._keeps(value):
                return value
        if not isinstance(value, (tuple, list, Row)):
            raise TypeError("%r expects a tuple, list or Row of arity %d but got %s: %r"
                            % (self, self._arity, type(value).__name__, value))
        return tuple(self._values(value))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, TupleTypeInfo) and self._field_types == other._field_types

    def __hash__(self) -> int:
        return hash(("Tuple", tuple(self._field_types)))

    def __repr__(self) -> str:
        return "TupleTypeInfo(%s)" % ", ".join(str(t) for t in self._field_types)


# Basic types are immutable, so the factories hand out shared instances.
_BASIC = {b: BasicTypeInfo(b) for b in BasicType}
_LOCAL = {t: LocalTimeTypeInfo(t) for t in LocalTimeType}


class Types:
    """Factories for the type information of the common types, named as in PyFlink."""

    @staticmethod
    def STRING() -> TypeInformation:
        return _BASIC[BasicType.STRING]

    @staticmethod
    def BYTE() -> TypeInformation:
        return _BASIC[BasicType.BYTE]

    @staticmethod
    def BOOLEAN() -> TypeInformation:
        return _BASIC[BasicType.BOOLEAN]

    @staticmethod
    def SHORT() -> TypeInformation:
        return _BASIC[BasicType.SHORT]

    @staticmethod
    def INT() -> TypeInformation:
        return _BASIC[BasicType.INT]

    @staticmethod
    def LONG() -> TypeInformation:
        return _BASIC[BasicType.LONG]

    @staticmethod
    def FLOAT() -> TypeInformation:
        return _BASIC[BasicType.FLOAT]

    @staticmethod
    def DOUBLE() -> TypeInformation:
        return _BASIC[BasicType.DOUBLE]

    @staticmethod
    def CHAR() -> TypeInformation:
        return _BASIC[BasicType.CHAR]

    @staticmethod
    def BIG_INT() -> TypeInformation:
        return _BASIC[BasicType.BIG_INT]

    @staticmethod
    def BIG_DEC() -> TypeInformation:
        return _BASIC[BasicType.BIG_DEC]

    @staticmethod
    def INSTANT() -> TypeInformation:
        return _BASIC[BasicType.INSTANT]

    @staticmethod
    def SQL_DATE() -> TypeInformation:
        return DateTypeInfo()

    @staticmethod
    def SQL_TIME() -> TypeInformation:
        return TimeTypeInfo()

    @staticmethod
    def SQL_TIMESTAMP() -> TypeInformation:
        return TimestampTypeInfo()

    @staticmethod
    def LOCAL_DATE() -> TypeInformation:
        return _LOCAL[LocalTimeType.LOCAL_DATE]

    @staticmethod
    def LOCAL_TIME() -> TypeInformation:
        return _LOCAL[LocalTimeType.LOCAL_TIME]

    @staticmethod
    def LOCAL_DATE_TIME() -> TypeInformation:
        return _LOCAL[LocalTimeType.LOCAL_DATE_TIME]

    @staticmethod
    def PICKLED_BYTE_ARRAY() -> TypeInformation:
        return PickledBytesTypeInfo()

    @staticmethod
    def ROW(field_types: List[TypeInformation]) -> RowTypeInfo:
        return RowTypeInfo(field_types)

    @staticmethod
    def ROW_NAMED(field_names: List[str], field_types: List[TypeInformation]) -> RowTypeInfo:
        return RowTypeInfo(field_types, field_names)

    @staticmethod
    def TUPLE(field_types: List[TypeInformation]) -> TupleTypeInfo:
        return TupleTypeInfo(field_types)

    @staticmethod
    def PRIMITIVE_ARRAY(element_type: TypeInformation) -> TypeInformation:
        if not (isinstance(element_type, BasicTypeInfo) and element_type._basic_type in _PRIMITIVES):
            raise TypeError("Invalid element type for a primitive array: %s" % element_type)
        return PrimitiveArrayTypeInfo(element_type)

    @staticmethod
    def BASIC_ARRAY(element_type: TypeInformation) -> TypeInformation:
        if not (isinstance(element_type, BasicTypeInfo)
                and element_type._basic_type in _PRIMITIVES + (BasicType.STRING,)):
            raise TypeError("Invalid element type for a boxed primitive array: %s" % element_type)
        return BasicArrayTypeInfo(element_type)

    @staticmethod
    def OBJECT_ARRAY(element_type: TypeInformation) -> TypeInformation:
        return ObjectArrayTypeInfo(element_type)

    @staticmethod
    def MAP(key_type_info: TypeInformation, value_type_info: TypeInformation) -> TypeInformation:
        return MapTypeInfo(key_type_info, value_type_info)

    @staticmethod
    def LIST(element_type_info: TypeInformation) -> TypeInformation:
        return ListTypeInfo(element_type_info)


_PRIMITIVES = (BasicType.BOOLEAN, BasicType.BYTE, BasicType.SHORT, BasicType.INT, BasicType.LONG,
               BasicType.FLOAT, BasicType.DOUBLE, BasicType.CHAR)
