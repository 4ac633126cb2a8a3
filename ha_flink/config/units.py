"""Flink's textual forms of durations (`500 ms`, `10 s`, `1 min`, `2 h`, bare milliseconds) and memory
sizes (`1024m`, `1 gb`, bare bytes), parsed into `timedelta` and a byte count."""

from __future__ import annotations

import re
from datetime import timedelta

# Flink's TimeUtils accepts these labels (case-insensitive); a bare number means milliseconds.
_DURATION_UNITS: dict[str, float] = {}
_labels: tuple[str, ...]  # (both tables' loops: their label tuples differ in length)
for _labels, _seconds in (
    (("d", "day", "days"), 86400.0),
    (("h", "hour", "hours"), 3600.0),
    (("min", "m", "minute", "minutes", "mins"), 60.0),
    (("s", "sec", "secs", "second", "seconds"), 1.0),
    (("ms", "milli", "millis", "millisecond", "milliseconds"), 1e-3),
    (("µs", "us", "micro", "micros", "microsecond", "microseconds"), 1e-6),
    (("ns", "nano", "nanos", "nanosecond", "nanoseconds"), 1e-9),
):
    for _label in _labels:
        _DURATION_UNITS[_label] = _seconds

# Flink's MemorySize units are binary (1 kb = 1024 bytes); a bare number means bytes.
_MEMORY_UNITS: dict[str, int] = {}
for _labels, _factor in (
    (("b", "bytes"), 1),
    (("k", "kb", "kibibytes"), 1 << 10),
    (("m", "mb", "mebibytes"), 1 << 20),
    (("g", "gb", "gibibytes"), 1 << 30),
    (("t", "tb", "tebibytes"), 1 << 40),
):
    for _label in _labels:
        _MEMORY_UNITS[_label] = _factor

_NUMBER_AND_UNIT = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([^\d\s.][^\s]*)?\s*$")

DURATION_FORMS = "a number with a unit (ms, s, min, h, d), e.g. '500 ms', '10 s', '1 min', or bare milliseconds"
MEMORY_FORMS = "a number with a unit (b, kb, mb, gb, tb), e.g. '1024m', '1 gb', or bare bytes"


def parse_duration(text: str) -> timedelta:
    """Parse one of Flink's duration forms (DURATION_FORMS); raise ValueError saying what is wrong."""
    match = _NUMBER_AND_UNIT.match(str(text))
    if not match:
        raise ValueError(f"{text!r} is not a duration")
    number, unit = match.groups()
    if unit is None:
        return timedelta(milliseconds=float(number))
    factor = _DURATION_UNITS.get(unit.lower())
    if factor is None:
        raise ValueError(f"{text!r} has an unknown time unit {unit!r}")
    return timedelta(seconds=float(number) * factor)


def parse_memory_size(text: str) -> int:
    """Parse one of Flink's memory-size forms (MEMORY_FORMS) into bytes; raise ValueError saying what is wrong."""
    match = _NUMBER_AND_UNIT.match(str(text))
    if not match:
        raise ValueError(f"{text!r} is not a memory size")
    number, unit = match.groups()
    factor = 1 if unit is None else _MEMORY_UNITS.get(unit.lower())
    if factor is None:
        raise ValueError(f"{text!r} has an unknown memory unit {unit!r}")
    size = float(number) * factor
    if size != int(size):
        raise ValueError(f"{text!r} is not a whole number of bytes")
    return int(size)


def format_duration(value: timedelta) -> str:
    """The shortest exact Flink form of a duration, e.g. ``timedelta(seconds=90)`` -> ``'90 s'``."""
    ms = value / timedelta(milliseconds=1)
    for label, unit_ms in (("d", 86_400_000), ("h", 3_600_000), ("min", 60_000), ("s", 1000)):
        if ms and ms % unit_ms == 0:
            return f"{int(ms // unit_ms)} {label}"
    return f"{int(ms)} ms" if ms == int(ms) else f"{ms:f}".rstrip("0") + " ms"
