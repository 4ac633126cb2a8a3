"""Row behaves like PyFlink's: access, equality, repr, row "classes", kinds and pickling."""

from __future__ import annotations

import pickle

import cloudpickle
import pytest

from ha_flink.common import Row, RowKind


def test_named_row_sorts_kwargs_and_allows_access_by_name_position_and_attribute() -> None:
    row = Row(name="Alice", age=11)
    assert repr(row) == str(row) == "Row(age=11, name='Alice')"
    assert (row[0], row[1]) == (11, "Alice")
    assert (row["name"], row.name, row.age) == ("Alice", "Alice", 11)
    assert row._fields == ["age", "name"]
    assert row.as_dict() == {"name": "Alice", "age": 11}
    assert list(row) == [11, "Alice"] and len(row) == 2


def test_positional_row_repr_and_missing_names() -> None:
    row = Row(1, "a", None)
    assert repr(row) == "<Row(1, 'a', None)>"
    assert row[1:] == ["a", None]
    with pytest.raises(AttributeError):
        row.name
    with pytest.raises(TypeError, match="Cannot convert a Row class into dict"):
        row.as_dict()
    with pytest.raises(ValueError):
        Row(1, a=2)


def test_row_class_creates_named_rows() -> None:
    person = Row("name", "age")
    assert repr(person) == "<Row('name', 'age')>"
    assert "name" in person
    alice = person("Alice", 11)
    assert repr(alice) == "Row(name='Alice', age=11)"
    assert alice.name == "Alice"
    with pytest.raises(ValueError, match="expected 2 values"):
        person(1, 2, 3)


def test_set_field_names_setitem_and_recursive_as_dict() -> None:
    row = Row(1, Row(x=2))
    row.set_field_names(["a", "b"])
    row["a"] = 5
    assert row.a == 5
    assert row.as_dict(recursive=True) == {"a": 5, "b": {"x": 2}}
    with pytest.raises(AttributeError):
        row.other = 1


def test_equality_considers_names_and_kind_and_hash_follows_values() -> None:
    assert Row(1, 2) == Row(1, 2)
    assert Row(a=1) == Row(a=1)
    assert Row(a=1) != Row(b=1)
    assert Row(1) != Row(a=1)
    assert Row(1, 2) != (1, 2)
    deleted = Row(1, 2)
    deleted.set_row_kind(RowKind.DELETE)
    assert deleted.get_row_kind() is RowKind.DELETE
    assert deleted != Row(1, 2)
    assert hash(Row(1, 2)) == hash((1, 2)) == hash(Row(a=1, b=2))
    assert [k.value for k in RowKind] == [0, 1, 2, 3]


@pytest.mark.parametrize("dumps", [pickle.dumps, cloudpickle.dumps])
def test_pickling_keeps_names_values_and_kind(dumps) -> None:
    row = Row(name="a", n=1)
    row.set_row_kind(RowKind.UPDATE_AFTER)
    back = pickle.loads(dumps(row))
    assert back == row and back.name == "a" and back.get_row_kind() is RowKind.UPDATE_AFTER
    assert pickle.loads(dumps(Row(1, 2))) == Row(1, 2)
