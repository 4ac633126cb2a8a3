"""Configuration: typed setters and getters over Flink's text values, and the map operations."""

from __future__ import annotations

import copy

import pytest

from ha_flink.common import Configuration


def test_typed_round_trips_store_flink_text() -> None:
    conf = Configuration()
    conf.set_string("a.string", "x")
    conf.set_integer("a.int", 42)
    conf.set_boolean("a.bool", False)
    conf.set_float("a.float", 1.5)
    conf.set_bytes("a.bytes", b"\x00\xff")
    assert conf.get_string("a.string", None) == "x"
    assert conf.get_integer("a.int", 0) == 42
    assert conf.get_boolean("a.bool", True) is False
    assert conf.get_float("a.float", 0.0) == 1.5
    assert conf.get_bytes("a.bytes") == bytearray(b"\x00\xff")
    assert conf.to_dict()["a.int"] == "42" and conf.to_dict()["a.bool"] == "false"
    assert conf.key_set() == {"a.string", "a.int", "a.bool", "a.float", "a.bytes"}


def test_defaults_and_parsing_of_string_values() -> None:
    conf = Configuration()
    assert conf.get_string("missing", "d") == "d"
    assert conf.get_integer("missing", 7) == 7
    assert conf.get_boolean("missing", True) is True
    conf.set_string("flag", "TRUE")
    conf.set_string("n", " 12 ")
    assert conf.get_boolean("flag", False) is True
    assert conf.get_integer("n", 0) == 12
    with pytest.raises(ValueError, match="'flag'"):
        conf.get_integer("flag", 0)


def test_add_all_remove_copy_and_equality() -> None:
    base = Configuration()
    base.set_string("k", "v")
    other = Configuration()
    other.set_integer("p", 4)
    base.add_all(other)
    base.add_all(other, prefix="x.")
    assert base.to_dict() == {"k": "v", "p": "4", "x.p": "4"}
    assert base.contains_key("x.p")
    assert base.remove_config("p") is True and base.remove_config("p") is False
    clone = Configuration(base)
    assert clone == base == copy.deepcopy(base)
    clone.set_string("k", "changed")
    assert clone != base and base.get_string("k", None) == "v"
    target: dict = {}
    base.add_all_to_dict(target)
    assert target == {"k": "v", "x.p": "4"}
    assert str(base) == "{k=v, x.p=4}"
