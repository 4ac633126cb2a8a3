"""`Configuration`: PyFlink's lightweight string key/value settings object (the one passed to
`StreamExecutionEnvironment.get_execution_environment(config)` and friends).

Values are kept as Flink renders them in text (ints as digits, booleans as "true"/"false"), so a
configuration converts losslessly to the str->str map daemons and `-D` flags use. This is the user
API object; the cluster's typed flink-conf.yaml view lives in `ha_flink.config`."""

from __future__ import annotations

import base64
from typing import Any, Dict, List, Optional, Set

import yaml

__all__ = ["Configuration"]


def _flink_text(value: Any) -> str:
    """A value as Flink's configuration renders it in text (booleans lower case)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _parse_bool(key: str, text: str) -> bool:
    lowered = text.strip().lower()
    if lowered == "true":
        return True
    if lowered == "false":
        return False
    raise ValueError("Could not parse value '%s' for key '%s' as a boolean." % (text, key))


class Configuration:
    """Key/value pairs, stored as strings."""

    def __init__(self, other: Optional["Configuration"] = None) -> None:
        self._data: Dict[str, str] = dict(other._data) if other is not None else {}

    @classmethod
    def from_dict(cls, map: Dict[str, str]) -> "Configuration":  # noqa: A002 - PyFlink's parameter name
        """A configuration of the dict's key/value pairs (values as their text)."""
        config = cls()
        for key, value in map.items():
            config.set_string(key, _flink_text(value))
        return config

    @staticmethod
    def parse_list_value(value: str) -> List[Any]:
        """A list option's value, as Flink writes one: a YAML list (`[a, b]`), else `;`-separated."""
        if not value:
            return []
        try:
            parsed = yaml.safe_load(value)
        except yaml.YAMLError:
            parsed = None
        return parsed if isinstance(parsed, list) else value.split(";")

    def get_string(self, key: str, default_value: Optional[str]) -> Optional[str]:
        return self._data.get(key, default_value)

    def set_string(self, key: str, value: str) -> None:
        self._data[key] = str(value)

    def get_integer(self, key: str, default_value: int) -> int:
        text = self._data.get(key)
        if text is None:
            return default_value
        try:
            return int(text.strip())
        except ValueError:
            raise ValueError("Could not parse value '%s' for key '%s' as an integer." % (text, key))

    def set_integer(self, key: str, value: int) -> None:
        self._data[key] = str(int(value))

    def get_boolean(self, key: str, default_value: bool) -> bool:
        text = self._data.get(key)
        return default_value if text is None else _parse_bool(key, text)

    def set_boolean(self, key: str, value: bool) -> None:
        self._data[key] = "true" if value else "false"

    def get_float(self, key: str, default_value: float) -> float:
        text = self._data.get(key)
        if text is None:
            return float(default_value)
        try:
            return float(text.strip())
        except ValueError:
            raise ValueError("Could not parse value '%s' for key '%s' as a float." % (text, key))

    def set_float(self, key: str, value: float) -> None:
        self._data[key] = repr(float(value))

    def get_bytes(self, key: str, default_value: Optional[bytes] = None) -> Optional[bytearray]:
        # Bytes are kept base64-encoded so the store stays str->str.
        text = self._data.get(key)
        if text is None:
            return None if default_value is None else bytearray(default_value)
        return bytearray(base64.b64decode(text))

    def set_bytes(self, key: str, value: bytes) -> None:
        self._data[key] = base64.b64encode(bytes(value)).decode("ascii")

    # PyFlink's names for the two above.
    get_bytearray = get_bytes
    set_bytearray = set_bytes

    def key_set(self) -> Set[str]:
        return set(self._data)

    def contains_key(self, key: str) -> bool:
        return key in self._data

    def to_dict(self) -> Dict[str, str]:
        return dict(self._data)

    def add_all_to_dict(self, target_dict: dict) -> None:
        target_dict.update(self._data)

    def add_all(self, other: "Configuration", prefix: Optional[str] = None) -> None:
        """Copies all of ``other``'s entries here, their keys prefixed with ``prefix`` if given."""
        if prefix is None:
            self._data.update(other._data)
        else:
            self._data.update((prefix + k, v) for k, v in other._data.items())

    def remove_config(self, key: str) -> bool:
        return self._data.pop(key, None) is not None

    def __deepcopy__(self, memodict: Optional[dict] = None) -> "Configuration":
        return Configuration(self)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Configuration) and self._data == other._data

    def __hash__(self) -> int:
        return hash(frozenset(self._data.items()))

    def __str__(self) -> str:
        # java.util.HashMap's rendering, which is what Flink's Configuration.toString shows.
        return "{%s}" % ", ".join("%s=%s" % kv for kv in self._data.items())

    def __repr__(self) -> str:
        return "Configuration(%r)" % self._data
