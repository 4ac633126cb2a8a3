from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ha_flink.config.units import format_duration, parse_duration, parse_memory_size


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("500 ms", timedelta(milliseconds=500)),
        ("500ms", timedelta(milliseconds=500)),
        ("500", timedelta(milliseconds=500)),
        ("10 s", timedelta(seconds=10)),
        ("10 sec", timedelta(seconds=10)),
        ("10 seconds", timedelta(seconds=10)),
        ("1 min", timedelta(minutes=1)),
        ("1 m", timedelta(minutes=1)),
        ("3 minutes", timedelta(minutes=3)),
        ("2 h", timedelta(hours=2)),
        ("2 hours", timedelta(hours=2)),
        ("1 d", timedelta(days=1)),
        ("7 days", timedelta(days=7)),
        ("250 us", timedelta(microseconds=250)),
        ("1500 µs", timedelta(microseconds=1500)),
        ("2000000 ns", timedelta(milliseconds=2)),
        ("1.5 s", timedelta(milliseconds=1500)),
        ("  10 S  ", timedelta(seconds=10)),
        ("0", timedelta(0)),
    ],
)
def test_every_flink_duration_form(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "ms", "10 parsecs", "-5 s", "ten seconds", "1 s 2 ms", "1,5 s"])
def test_bad_durations_say_what_is_wrong(text: str) -> None:
    with pytest.raises(ValueError, match=repr(text).replace("(", r"\(")):
        parse_duration(text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1024", 1024),
        ("1024b", 1024),
        ("1 bytes", 1),
        ("64k", 64 << 10),
        ("64 kb", 64 << 10),
        ("1024m", 1 << 30),
        ("1024 mb", 1 << 30),
        ("1 gb", 1 << 30),
        ("1g", 1 << 30),
        ("2 GB", 2 << 30),
        ("1 tb", 1 << 40),
        ("1 mebibytes", 1 << 20),
        ("1.5 kb", 1536),
    ],
)
def test_every_flink_memory_size_form(text: str, expected: int) -> None:
    assert parse_memory_size(text) == expected


@pytest.mark.parametrize("text", ["", "1 xb", "lots", "0.5 b", "-1 mb"])
def test_bad_memory_sizes_are_refused(text: str) -> None:
    with pytest.raises(ValueError):
        parse_memory_size(text)


@given(st.integers(min_value=0, max_value=10**10))
def test_formatted_durations_parse_back(milliseconds: int) -> None:
    value = timedelta(milliseconds=milliseconds)
    assert parse_duration(format_duration(value)) == value
