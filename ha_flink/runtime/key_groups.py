"""Keys to key groups, key groups to subtasks: Flink's KeyGroupRangeAssignment, with Flink's own hash.

A key goes to key group `murmurHash(Row.of(key).hashCode()) % max_parallelism`, computed here exactly as
the JVM computes it for a PyFlink job: PyFlink's `key_by` hands Java a one-field Row holding the key as
its declared `key_type` (without one, the key's cloudpickle bytes, a `byte[]`), and Flink hashes that Row
(RowUtils.deepHashCodeRow) and mixes it with MathUtils.murmurHash. So a key lands in the subtask where
PyFlink puts it, and programs print the same `N> ` prefixes. Key types whose Java hash is not rebuilt here
(BigInteger, BigDecimal, dates, times, instants) are hashed by their pickled bytes: the same in every
process, not PyFlink's subtask.

`KeyHash.HA_FLINK_1` is the hash ha-flink 0.1 used (crc32 / Fibonacci hashing). State is stored by key
group, so a job must route keys with the hash its restored snapshot was written with: checkpoints and
savepoints record theirs (`key_hash` in `_metadata`; none recorded: HA_FLINK_1), and the JobMaster adopts
it on restore (runtime/checkpoint/restore.py). New jobs use FLINK."""

from __future__ import annotations

import math
import operator
import pickle
import struct
import zlib
from enum import Enum
from typing import Any, Callable

import cloudpickle

from ha_flink.common.typeinfo import (
    BasicArrayTypeInfo, BasicType, BasicTypeInfo, ListTypeInfo, MapTypeInfo, ObjectArrayTypeInfo,
    PickledBytesTypeInfo, PrimitiveArrayTypeInfo, RowTypeInfo, TupleTypeInfo, TypeInformation,
)
from ha_flink.common.types import Row

DEFAULT_MAX_PARALLELISM = 128
_MASK32 = 0xFFFFFFFF
_MASK64 = (1 << 64) - 1
# a key cache bigger than this is dropped and refilled: bounded memory for jobs with many distinct keys
_CACHE_LIMIT = 1 << 16


class KeyHash(str, Enum):
    """How keys map to key groups: recorded in every checkpoint and savepoint of the job."""

    FLINK = "flink"
    HA_FLINK_1 = "ha-flink-1"


KeyGroupAssigner = Callable[[Any], int]  # key -> key group


def key_group_assigner(key_hash: KeyHash | str, key_type: TypeInformation | None,
                       max_parallelism: int) -> KeyGroupAssigner:
    """The key -> key group function of one keyed stream. Keys that are exact str or int, or tuples of
    them, are cached (the per-record cost of a repeated key is one dict lookup)."""
    if KeyHash(key_hash) is KeyHash.HA_FLINK_1:
        def compute(key: Any) -> int:
            return stable_hash(key) % max_parallelism
    else:
        java_hash = _java_key_hash(key_type)

        def compute(key: Any) -> int:
            return murmur_hash(java_hash(key)) % max_parallelism
    cache: dict[Any, int] = {}
    cached = cache.get

    def assign(key: Any) -> int:
        kind = type(key)
        # Only keys that equal each other only when they hash alike: exact str and int (never equal to each
        # other), and tuples of them (1 == True == 1.0, but they pickle apart, so bool and float stay out).
        if kind is str or kind is int or (kind is tuple and all(type(item) is str or type(item) is int
                                                                for item in key)):
            group = cached(key)
            if group is None:
                if len(cache) >= _CACHE_LIMIT:
                    cache.clear()
                group = cache[key] = compute(key)
            return group
        return compute(key)

    return assign


def assign_to_key_group(key: Any, max_parallelism: int, key_type: TypeInformation | None = None) -> int:
    """One key's group under Flink's hash (what a new job uses); for a stream, `key_group_assigner`."""
    return murmur_hash(_java_key_hash(key_type)(key)) % max_parallelism


def operator_index_for_key_group(max_parallelism: int, parallelism: int, key_group: int) -> int:
    return key_group * parallelism // max_parallelism


def key_group_range(max_parallelism: int, parallelism: int, index: int) -> range:
    """The key groups subtask `index` owns (Flink's computeKeyGroupRangeForOperatorIndex)."""
    start = (index * max_parallelism + parallelism - 1) // parallelism
    end = ((index + 1) * max_parallelism - 1) // parallelism
    return range(start, end + 1)


# -- Flink's MathUtils.murmurHash ------------------------------------------------------------------------

def _rotl32(value: int, bits: int) -> int:
    return ((value << bits) | (value >> (32 - bits))) & _MASK32


def _mix32(h: int) -> int:
    """murmur3's finalizer (Flink's MathUtils.bitMix)."""
    h ^= h >> 16
    h = (h * 0x85EBCA6B) & _MASK32
    h ^= h >> 13
    h = (h * 0xC2B2AE35) & _MASK32
    return h ^ (h >> 16)


def murmur_hash(code: int) -> int:
    """MathUtils.murmurHash of a Java int (given as any int; its low 32 bits count): non-negative."""
    code = (code * 0xCC9E2D51) & _MASK32
    code = _rotl32(code, 15)
    code = (code * 0x1B873593) & _MASK32
    code = _rotl32(code, 13)
    code = (code * 5 + 0xE6546B64) & _MASK32
    code = _mix32(code ^ 4)
    if code < 0x80000000:
        return code
    return 0 if code == 0x80000000 else (1 << 32) - code


# -- Java's hashCode of what PyFlink hands the JVM -------------------------------------------------------

_POWERS = [1]  # 31 ** i mod 2**32


def _powers(n: int) -> list[int]:
    while len(_POWERS) <= n:
        _POWERS.append(_POWERS[-1] * 31 & _MASK32)
    return _POWERS


def _polynomial(units: Any, n: int, start: int) -> int:
    """Java's `h = start; for (x : units) h = 31 * h + x` mod 2**32, with C-speed multiplications."""
    powers = _powers(n)
    return (start * powers[n] + sum(map(operator.mul, units, reversed(powers[:n])))) & _MASK32


_HIGH_BIT = bytes(1 if b >= 128 else 0 for b in range(256))


def _bytes_hash(data: bytes) -> int:
    """Arrays.hashCode(byte[]): Java's bytes are signed (a byte >= 128 counts as itself - 256)."""
    n = len(data)
    unsigned = _polynomial(data, n, 1)
    high = data.translate(_HIGH_BIT)
    return (unsigned - 256 * _polynomial(high, n, 0)) & _MASK32 if 1 in high else unsigned


def _string_hash(text: str) -> int:
    """String.hashCode: over UTF-16 code units (a character beyond the BMP counts as its two surrogates)."""
    if text.isascii():
        return _polynomial(text.encode("ascii"), len(text), 0)
    units = memoryview(text.encode("utf-16-le", "surrogatepass")).cast("H")
    return _polynomial(units, len(units), 0)


def _long_hash(value: int) -> int:
    value &= _MASK64
    return (value ^ (value >> 32)) & _MASK32


def _narrow(value: int, bits: int) -> int:
    span = 1 << bits
    return ((value + (span >> 1)) % span) - (span >> 1)


_DOUBLE, _LONG, _FLOAT, _INT = struct.Struct(">d"), struct.Struct(">q"), struct.Struct(">f"), struct.Struct(">i")


def _double_hash(value: float) -> int:
    if math.isnan(value):
        return 0x7FF80000  # doubleToLongBits' canonical NaN, folded
    return _long_hash(_LONG.unpack(_DOUBLE.pack(value))[0])


def _float_hash(value: float) -> int:
    if math.isnan(value):
        return 0x7FC00000
    try:
        return _INT.unpack(_FLOAT.pack(value))[0] & _MASK32
    except OverflowError:
        return _INT.unpack(_FLOAT.pack(math.copysign(math.inf, value)))[0] & _MASK32


def _checked(expected: tuple[type, ...], what: str, hash_of: Callable[[Any], int]) -> Callable[[Any], int]:
    def hashed(value: Any) -> int:
        if not isinstance(value, expected):
            raise TypeError(f"key field {value!r} ({type(value).__name__}) is not of the key type {what} "
                            "given to key_by")
        return hash_of(value)
    return hashed


_BASIC_HASHES: dict[BasicType, Callable[[Any], int]] = {
    BasicType.STRING: _checked((str,), "String", _string_hash),
    BasicType.BOOLEAN: _checked((bool,), "Boolean", lambda v: 1231 if v else 1237),
    BasicType.BYTE: _checked((int,), "Byte", lambda v: _narrow(v, 8) & _MASK32),
    BasicType.SHORT: _checked((int,), "Short", lambda v: _narrow(v, 16) & _MASK32),
    BasicType.INT: _checked((int,), "Integer", lambda v: v & _MASK32),
    BasicType.LONG: _checked((int,), "Long", _long_hash),
    BasicType.FLOAT: _checked((int, float), "Float", lambda v: _float_hash(float(v))),
    BasicType.DOUBLE: _checked((int, float), "Double", lambda v: _double_hash(float(v))),
    BasicType.CHAR: _checked((str,), "Char", lambda v: _string_hash(v[:1]) if v else 0),
}

# Arrays.hashCode of the primitive arrays: each element's own hash, combined by 31
_PRIMITIVE_ELEMENT: dict[BasicType, Callable[[Any], int]] = {
    BasicType.BOOLEAN: lambda v: 1231 if v else 1237,
    BasicType.SHORT: lambda v: _narrow(v, 16) & _MASK32,
    BasicType.INT: lambda v: v & _MASK32,
    BasicType.LONG: _long_hash,
    BasicType.FLOAT: lambda v: _float_hash(float(v)),
    BasicType.DOUBLE: lambda v: _double_hash(float(v)),
    BasicType.CHAR: lambda v: _string_hash(v[:1]) if v else 0,
}

# Python values whose pickle is the same as cloudpickle's (cloudpickle's reducer is never asked for them)
_ATOMIC = frozenset({str, int, float, bytes, bool, type(None)})


def _pickled_bytes(value: Any) -> bytes:
    """What PyFlink's PICKLED_BYTE_ARRAY coder writes: cloudpickle.dumps(value), of a tuple whose equal
    strings (and bytes) are one object. Pickle writes a string seen before in the same pickle as a
    reference to it, by identity: ("ab", "ab") from literals (one interned object) and the same key
    built at run time (two objects) would hash apart, and one key's state would split over two groups."""
    kind = type(value)
    if kind is tuple:
        value = _shared_equal_items(value)
        if all(type(item) in _ATOMIC for item in value):
            return pickle.dumps(value, protocol=cloudpickle.DEFAULT_PROTOCOL)  # (C pickler: the same bytes)
    elif kind in _ATOMIC:
        return pickle.dumps(value, protocol=cloudpickle.DEFAULT_PROTOCOL)
    return bytes(cloudpickle.dumps(value))


def _shared_equal_items(items: tuple[Any, ...], shared: dict[Any, Any] | None = None) -> tuple[Any, ...]:
    shared = {} if shared is None else shared  # (one for the whole key: pickle's memo spans nested tuples)
    return tuple(shared.setdefault(item, item) if type(item) is str or type(item) is bytes
                 else _shared_equal_items(item, shared) if type(item) is tuple else item for item in items)


def _pickled_hash(value: Any) -> int:
    return _bytes_hash(_pickled_bytes(value))


def _hash_code(type_info: TypeInformation | None) -> Callable[[Any], int]:
    """Java's `value.hashCode()` of a value of `type_info` as PyFlink's coders hand it to the JVM."""
    if type_info is None or isinstance(type_info, PickledBytesTypeInfo):
        return _pickled_hash
    if isinstance(type_info, BasicTypeInfo):
        return _BASIC_HASHES.get(type_info._basic_type, _pickled_hash)
    if isinstance(type_info, PrimitiveArrayTypeInfo):
        element = type_info.get_element_type()
        if isinstance(element, BasicTypeInfo) and element._basic_type is BasicType.BYTE:
            return _checked((bytes, bytearray), "byte[]", _bytes_hash)
        if isinstance(element, BasicTypeInfo) and element._basic_type in _PRIMITIVE_ELEMENT:
            each = _PRIMITIVE_ELEMENT[element._basic_type]
            return lambda values: _polynomial([each(v) for v in values], len(values), 1)
        return _pickled_hash
    if isinstance(type_info, RowTypeInfo):
        return _row_hash(type_info.get_field_types())
    if isinstance(type_info, TupleTypeInfo):
        fields = [_hash_code(t) for t in type_info.get_field_types()]

        def tuple_hash(value: Any) -> int:  # Flink's TupleN.hashCode: fields' plain hashCode, by 31
            result = 0
            for hash_of, item in zip(fields, value):
                result = 31 * result + (0 if item is None else hash_of(item))
            return result & _MASK32
        return tuple_hash
    deep = _deep_hash(type_info)
    if deep is not None:
        return deep
    return _pickled_hash


def _deep_hash(type_info: TypeInformation | None) -> Callable[[Any], int] | None:
    """RowUtils' deepHashCodeInternal for the composite types it descends into (Object[] arrays, lists,
    maps); None for the others, a nested Row among them (Flink 2.3 hashes it as any object)."""
    if isinstance(type_info, (BasicArrayTypeInfo, ObjectArrayTypeInfo, ListTypeInfo)):
        element = _deep_field(type_info.get_element_type())
        return lambda values: _polynomial([element(v) for v in values], len(values), 1)
    if isinstance(type_info, MapTypeInfo):
        key, value = _deep_field(type_info._key_type_info), _deep_field(type_info._value_type_info)
        return lambda mapping: (1 + sum(key(k) ^ value(v) for k, v in mapping.items())) & _MASK32
    return None


def _deep_field(type_info: TypeInformation | None) -> Callable[[Any], int]:
    """deepHashCodeInternal of one field: 0 for null (PyFlink's row coder writes a None field as null,
    whatever its type), the nested rule for composites, and otherwise Arrays.deepHashCode(new
    Object[]{value}) = 31 + value.hashCode()."""
    nested = _deep_hash(type_info)
    if nested is not None:
        return lambda value: 0 if value is None else nested(value)
    plain = _hash_code(type_info)
    return lambda value: 0 if value is None else (31 + plain(value)) & _MASK32


def _row_hash(field_types: list[TypeInformation]) -> Callable[[Any], int]:
    """RowUtils.deepHashCodeRow: the row kind's byte, then its fields as an Object[] (deepHashCodeArray)."""
    fields = [_deep_field(t) for t in field_types]

    def row_hash(row: Any) -> int:
        kind = row.get_row_kind().value if isinstance(row, Row) else 0
        result = 1
        for hash_of, item in zip(fields, row):
            result = 31 * result + hash_of(item)
        return (31 * kind + result) & _MASK32
    return row_hash


def _java_key_hash(key_type: TypeInformation | None) -> Callable[[Any], int]:
    """Row.of(key).hashCode(), the key being of `key_type` (PyFlink's KeyByKeySelector's output)."""
    field = _deep_field(key_type)
    return lambda key: (31 + field(key)) & _MASK32


# -- ha-flink 0.1's hash ---------------------------------------------------------------------------------

def stable_hash(key: Any) -> int:
    """A process-independent hash: crc32 for text and bytes, the value itself (mixed) for ints, pickled
    bytes for anything else; then murmur3's finalizer. ha-flink 0.1's key hash (KeyHash.HA_FLINK_1), and
    what spreads files over a FileSource's subtasks."""
    if isinstance(key, str):
        return _mix32(zlib.crc32(key.encode("utf-8", "surrogatepass")))
    if isinstance(key, bool) or not isinstance(key, int):
        if isinstance(key, (bytes, bytearray)):
            return _mix32(zlib.crc32(key))
        if isinstance(key, float):
            return _mix32(zlib.crc32(struct.pack("<d", key)))
        if isinstance(key, tuple):
            h = 0x345678
            for item in key:
                h = (h * 1000003 ^ stable_hash(item)) & _MASK32
            return _mix32(h)
        return _mix32(zlib.crc32(pickle.dumps(key, protocol=5)))
    # Fibonacci hashing spreads consecutive ints over the groups.
    return ((key & _MASK64) * 0x9E3779B97F4A7C15 & _MASK64) >> 32
