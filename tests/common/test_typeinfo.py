"""Types: PyFlink's factories, equality and repr, and `conform` turning values into records."""

from __future__ import annotations

import pickle

import cloudpickle
import pytest

from ha_flink.common import Row, RowKind, Types
from ha_flink.common.typeinfo import RowTypeInfo, TupleTypeInfo

BASIC = ["STRING", "BYTE", "BOOLEAN", "SHORT", "INT", "LONG", "FLOAT", "DOUBLE", "CHAR", "BIG_INT",
         "BIG_DEC", "INSTANT", "SQL_DATE", "SQL_TIME", "SQL_TIMESTAMP", "LOCAL_DATE", "LOCAL_TIME",
         "LOCAL_DATE_TIME", "PICKLED_BYTE_ARRAY"]


NARROWED = {"BYTE", "SHORT", "INT", "LONG", "FLOAT"}  # Java's fixed-size numbers


@pytest.mark.parametrize("name", BASIC)
def test_simple_types_are_equal_by_kind_and_identity_conform(name: str) -> None:
    t = getattr(Types, name)()
    assert t == getattr(Types, name)() and hash(t) == hash(getattr(Types, name)())
    assert t.needs_conversion is (name in NARROWED)
    value = object()
    assert t.conform(value) is value  # (a value that is no number is left as it is)
    assert pickle.loads(pickle.dumps(t)) == t


def test_fixed_size_numbers_are_narrowed_the_java_way() -> None:
    """As PyFlink's coders write them: two's complement wrap-around, FLOAT rounded to 32 bits."""
    assert [Types.BYTE().conform(v) for v in (127, 128, -129, 255)] == [127, -128, 127, -1]
    assert Types.SHORT().conform(40000) == -25536 and Types.INT().conform(2 ** 31) == -2 ** 31
    assert Types.LONG().conform(2 ** 63 + 5) == -2 ** 63 + 5 and Types.INT().conform(None) is None
    assert Types.FLOAT().conform(163.3) == 163.3000030517578 and Types.DOUBLE().conform(163.3) == 163.3
    assert Types.FLOAT().conform(1e39) == float("inf")
    assert Types.TUPLE([Types.STRING(), Types.FLOAT()]).conform(("Alice", 110.1)) == ("Alice", 110.0999984741211)
    restored = pickle.loads(pickle.dumps(Types.BYTE()))
    assert restored.conform(200) == -56


def test_reprs_match_pyflink() -> None:
    assert [repr(Types.STRING()), repr(Types.INT()), repr(Types.LONG())] == ["String", "Integer", "Long"]
    assert Types.STRING() != Types.INT()
    assert str(Types.ROW_NAMED(["a", "b"], [Types.STRING(), Types.STRING()])) == \
        "RowTypeInfo(a: String, b: String)"
    assert str(Types.ROW([Types.STRING(), Types.INT()])) == "RowTypeInfo(String, Integer)"
    assert str(Types.TUPLE([Types.STRING(), Types.INT()])) == "TupleTypeInfo(String, Integer)"
    assert repr(Types.PRIMITIVE_ARRAY(Types.INT())) == "PrimitiveArrayTypeInfo<Integer>"
    assert repr(Types.BASIC_ARRAY(Types.STRING())) == "BasicArrayTypeInfo<String>"
    assert repr(Types.OBJECT_ARRAY(Types.SQL_DATE())) == "ObjectArrayTypeInfo<DateTypeInfo>"
    assert repr(Types.MAP(Types.INT(), Types.STRING())) == "MapTypeInfo<Integer, String>"
    assert repr(Types.LIST(Types.INT())) == "ListTypeInfo<Integer>"
    assert repr(Types.PICKLED_BYTE_ARRAY()) == "PickledByteArrayTypeInfo"
    with pytest.raises(TypeError):
        Types.PRIMITIVE_ARRAY(Types.STRING())


def test_row_type_info_accessors_and_equality() -> None:
    named = Types.ROW_NAMED(["a", "b"], [Types.STRING(), Types.INT()])
    assert isinstance(named, RowTypeInfo)
    assert named.get_field_names() == ["a", "b"]
    assert named.get_field_types() == [Types.STRING(), Types.INT()]
    assert named.get_field_index("b") == 1 and named.get_field_index("zz") == -1
    assert named.get_field_type(1) == Types.INT()
    assert Types.ROW([Types.STRING(), Types.STRING()]).get_field_names() == ["f0", "f1"]
    assert Types.ROW([Types.STRING()]) == RowTypeInfo([Types.STRING()])
    assert named != Types.ROW_NAMED(["a", "b"], [Types.STRING(), Types.STRING()])
    assert Types.TUPLE([Types.INT()]) == TupleTypeInfo([Types.INT()]) != Types.TUPLE([Types.LONG()])
    assert Types.MAP(Types.INT(), Types.LIST(Types.INT())) == Types.MAP(Types.INT(), Types.LIST(Types.INT()))


def test_conform_row_named_from_tuple_list_and_rows() -> None:
    t = Types.ROW_NAMED(["word", "count"], [Types.STRING(), Types.INT()])
    assert t.needs_conversion is True
    row = t.conform(("hi", 2))
    assert repr(row) == "Row(word='hi', count=2)"
    assert (row.word, row["count"], row[0]) == ("hi", 2, "hi")
    assert t.conform(["hi", 2]) == row
    assert t.conform(Row("hi", 2)) == row
    # Keyword rows sort their names; conform matches them by name instead of by position.
    assert t.conform(Row(word="hi", count=2)) == row
    assert t.conform({"count": 2, "word": "hi"}) == row
    same = t.conform(row)
    assert same is row


def test_conform_row_keeps_row_kind_and_positional_for_unnamed() -> None:
    t = Types.ROW([Types.INT(), Types.STRING()])
    row = t.conform((1, "a"))
    assert repr(row) == "<Row(1, 'a')>" and row[1] == "a"
    retract = Row(1, "a")
    retract.set_row_kind(RowKind.DELETE)
    assert Types.ROW_NAMED(["n", "s"], [Types.INT(), Types.STRING()]).conform(retract) \
        .get_row_kind() is RowKind.DELETE


def test_conform_nested_row_and_tuple_fields() -> None:
    inner = Types.ROW_NAMED(["x"], [Types.INT()])
    t = Types.TUPLE([Types.STRING(), inner, Types.LIST(inner)])
    assert t.conform(["k", (1,), [(2,), (3,)]]) == ("k", Row(x=1), [Row(x=2), Row(x=3)])


@pytest.mark.parametrize("value", [(1, 2, 3), [1], Row(1, 2, 3)])
def test_conform_wrong_arity_names_expected_actual_and_value(value) -> None:
    t = Types.ROW_NAMED(["a", "b"], [Types.INT(), Types.INT()])
    with pytest.raises(TypeError) as info:
        t.conform(value)
    message = str(info.value)
    assert "arity 2" in message and "arity %d" % len(value) in message and repr(value) in message


def test_conform_rejects_non_records() -> None:
    with pytest.raises(TypeError, match="arity 2 but got int: 5"):
        Types.ROW([Types.INT(), Types.INT()]).conform(5)
    with pytest.raises(TypeError, match="arity 1 but got str"):
        Types.TUPLE([Types.INT()]).conform("x")


@pytest.mark.parametrize("dumps", [pickle.dumps, cloudpickle.dumps])
def test_composite_types_survive_pickling_and_still_conform(dumps) -> None:
    t = Types.ROW_NAMED(["k", "v"], [Types.STRING(), Types.TUPLE([Types.INT(), Types.INT()])])
    back = pickle.loads(dumps(t))
    assert back == t and repr(back) == repr(t)
    assert back.conform(("a", [1, 2])) == Row(k="a", v=(1, 2))


def test_conform_tuple() -> None:
    t = Types.TUPLE([Types.STRING(), Types.INT()])
    assert t.conform(["a", 1]) == ("a", 1)
    assert t.conform(Row("a", 1)) == ("a", 1)
    value = ("a", 1)
    assert t.conform(value) is value
    with pytest.raises(TypeError, match=r"arity 2 but got arity 3: \('a', 1, 2\)"):
        t.conform(("a", 1, 2))
