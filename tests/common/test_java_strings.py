"""PyFlink's print() of declared types writes Java's toString: the texts here are Java's."""

from __future__ import annotations

import pytest

from ha_flink.common import Row, RowKind, Types
from ha_flink.common.java_strings import java_string


@pytest.mark.parametrize("value, expected", [
    (1.0, "1.0"), (163.3, "163.3"), (0.001, "0.001"), (0.0001, "1.0E-4"), (1e7, "1.0E7"), (1234567.0, "1234567.0"),
    (-2.5, "-2.5"), (1.5e-10, "1.5E-10"), (123456789.0, "1.23456789E8"), (0.0, "0.0"), (-0.0, "-0.0"),
    (float("inf"), "Infinity"), (float("nan"), "NaN"), (3, "3.0"),
])
def test_doubles_print_as_java_does(value: float, expected: str) -> None:
    assert java_string(value, Types.DOUBLE()) == expected


def test_floats_print_their_shortest_32_bit_digits() -> None:
    assert java_string(Types.FLOAT().conform(163.3), Types.FLOAT()) == "163.3"
    assert java_string(Types.FLOAT().conform(0.1), Types.FLOAT()) == "0.1"
    assert java_string(Types.FLOAT().conform(1e10), Types.FLOAT()) == "1.0E10"


def test_composites_print_as_java_tuples_rows_lists_and_maps() -> None:
    assert java_string(("hi", 0, 5, 4), Types.TUPLE([Types.STRING(), Types.INT(), Types.INT(), Types.INT()])) == \
        "(hi,0,5,4)"
    assert java_string(Row("a", 1, True), Types.ROW([Types.STRING(), Types.INT(), Types.BOOLEAN()])) == "+I[a, 1, true]"
    row = Row("a", None)
    row.set_row_kind(RowKind.UPDATE_BEFORE)
    assert java_string(row, Types.ROW([Types.STRING(), Types.LONG()])) == "-U[a, null]"
    assert java_string([1, 2], Types.LIST(Types.INT())) == "[1, 2]"
    assert java_string({"k": 1.5}, Types.MAP(Types.STRING(), Types.DOUBLE())) == "{k=1.5}"
    assert java_string(True, Types.BOOLEAN()) == "true" and java_string("x", Types.STRING()) == "x"


def test_pickled_and_undeclared_records_print_as_python_str() -> None:
    assert java_string(("hi", 1), None) == "('hi', 1)"
    assert java_string(("hi", 1), Types.PICKLED_BYTE_ARRAY()) == "('hi', 1)"
    assert java_string("plain", None) == "plain"
