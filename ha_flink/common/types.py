"""`Row` and `RowKind`: the record type of PyFlink's Row-typed streams, with PyFlink's exact behaviour
(access by position, name and attribute; repr; equality; pickling that keeps field names and kind)."""

from __future__ import annotations

from enum import Enum
from typing import Any, Iterator, List, Optional

__all__ = ["Row", "RowKind"]


class RowKind(Enum):
    """The change a row stands for in a changelog stream."""

    INSERT = 0
    UPDATE_BEFORE = 1
    UPDATE_AFTER = 2
    DELETE = 3


def _create_row(fields: Optional[List[str]], values: Any, row_kind: Optional[RowKind] = None) -> "Row":
    # Module-level so pickle can find it by name: it is what Row.__reduce__ points at.
    row = Row(*values)
    if fields is not None:
        row._fields = fields
    if row_kind is not None:
        row._row_kind = row_kind
    return row


class Row:
    """A row of values, optionally named.

    ``Row(1, 'a')`` is positional; ``Row(name='Alice', age=11)`` is named with the names sorted (as
    PyFlink does); ``Row('name', 'age')`` is a row "class" whose call makes named rows:
    ``Row('name', 'age')('Alice', 11) == Row(name='Alice', age=11)`` (up to field order).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        if args and kwargs:
            raise ValueError("Can not use both args and kwargs to create Row")
        if kwargs:
            names = sorted(kwargs.keys())
            self._fields = names
            self._values = [kwargs[n] for n in names]
            self._from_dict = True
        else:
            self._values = list(args)
        self._row_kind = RowKind.INSERT

    def as_dict(self, recursive: bool = False) -> dict:
        """The named fields as a dict; ``recursive`` also turns nested Rows into dicts."""
        if not hasattr(self, "_fields"):
            raise TypeError("Cannot convert a Row class into dict")
        if recursive:
            def conv(obj: Any) -> Any:
                if isinstance(obj, Row):
                    return obj.as_dict(True)
                if isinstance(obj, list):
                    return [conv(o) for o in obj]
                if isinstance(obj, dict):
                    return {k: conv(v) for k, v in obj.items()}
                return obj
            return dict(zip(self._fields, (conv(o) for o in self)))
        return dict(zip(self._fields, self))

    @staticmethod
    def of_kind(row_kind: RowKind, *args: Any, **kwargs: Any) -> "Row":
        """A row of the given kind: `Row.of_kind(RowKind.DELETE, 1, "a")`."""
        row = Row(*args, **kwargs)
        row.set_row_kind(row_kind)
        return row

    def get_fields_by_names(self, names: List[str]) -> List[Any]:
        """The values of the named fields, in that order (all values for an unnamed row or the row's own
        names)."""
        fields = getattr(self, "_fields", None)
        if fields is None or names == fields:
            return self._values
        missing = [name for name in names if name not in fields]
        if missing:
            raise KeyError("Field names %s not exist in %s." % (missing, fields))
        return [self._values[fields.index(name)] for name in names]

    def get_row_kind(self) -> RowKind:
        return self._row_kind

    def set_row_kind(self, row_kind: RowKind) -> None:
        self._row_kind = row_kind

    def set_field_names(self, field_names: List) -> None:
        self._fields = field_names

    def _is_retract_msg(self) -> bool:
        return self._row_kind in (RowKind.UPDATE_BEFORE, RowKind.DELETE)

    def _is_accumulate_msg(self) -> bool:
        return self._row_kind in (RowKind.UPDATE_AFTER, RowKind.INSERT)

    def __contains__(self, item: Any) -> bool:
        # PyFlink searches the values (for a Row "class" those are the field names).
        return item in self._values

    def __call__(self, *args: Any) -> "Row":
        """Creates a row whose field names are this row's values."""
        if len(args) > len(self):
            raise ValueError("Can not create Row with fields %s, expected %d values but got %s"
                             % (self, len(self), args))
        return _create_row(self._values, args, self._row_kind)

    def __getitem__(self, item: Any) -> Any:
        if isinstance(item, (int, slice)):
            return self._values[item]
        try:
            idx = self._fields.index(item)
            return self._values[idx]
        except IndexError:
            raise KeyError(item)
        except ValueError:
            raise ValueError(item)

    def __setitem__(self, key: Any, value: Any) -> None:
        if isinstance(key, (int, slice)):
            self._values[key] = value
            return
        try:
            idx = self._fields.index(key)
            self._values[idx] = value
        except (IndexError, AttributeError):
            raise KeyError(key)
        except ValueError:
            raise ValueError(value)

    def __getattr__(self, item: str) -> Any:
        # Only reached when normal lookup fails, i.e. for field names.
        if item.startswith("_"):
            raise AttributeError(item)
        try:
            idx = self._fields.index(item)
            return self[idx]
        except (IndexError, ValueError):
            raise AttributeError(item)

    def __setattr__(self, key: str, value: Any) -> None:
        if key not in ("_fields", "_from_dict", "_row_kind", "_values"):
            raise AttributeError(key)
        self.__dict__[key] = value

    def __reduce__(self) -> tuple:
        return _create_row, (getattr(self, "_fields", None), tuple(self), self._row_kind)

    def __repr__(self) -> str:
        if hasattr(self, "_fields"):
            return "Row(%s)" % ", ".join("%s=%r" % (k, v) for k, v in zip(self._fields, tuple(self)))
        return "<Row(%s)>" % ", ".join("%r" % field for field in self)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Row):
            return False
        if hasattr(self, "_fields"):
            if not hasattr(other, "_fields") or self._fields != other._fields:
                return False
        elif hasattr(other, "_fields"):
            return False
        return (self.__class__ == other.__class__ and self._row_kind == other._row_kind
                and self._values == other._values)

    def __hash__(self) -> int:
        return hash(tuple(self))

    def __iter__(self) -> Iterator[Any]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)
