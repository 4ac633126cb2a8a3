"""`ConfigOption` and `ConfigOptions`, as PyFlink's (Flink's typed configuration keys): a key, its value
type and an optional default, built with `ConfigOptions.key("k").int_type().default_value(1)`.

An option parses its value from a configuration's text (`option.parse(config.get_string(option.key(),
...))`) and renders one (`option.to_text(value)`), checked against its type: a value that is not of it
fails naming the key."""

from __future__ import annotations

from typing import Any, Callable, Generic, TypeVar

T = TypeVar("T")

__all__ = ["ConfigOption", "ConfigOptions"]


def _parse_bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered not in ("true", "false"):
        raise ValueError(f"not a boolean: {text!r}")
    return lowered == "true"


def _int_of(low: int, high: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        value = int(text.strip())
        if not low <= value <= high:
            raise ValueError(f"{value} is out of range [{low}, {high}]")
        return value
    return parse


class ConfigOptions:
    """Builds `ConfigOption`s."""

    @staticmethod
    def key(key: str) -> ConfigOptions.OptionBuilder:
        if not isinstance(key, str) or not key.strip():
            raise ValueError(f"a config option's key must be a non-empty string, got {key!r}")
        return ConfigOptions.OptionBuilder(key)

    class OptionBuilder:
        def __init__(self, key: str) -> None:
            self._key = key

        def _typed(self, type_name: str, parse: Callable[[str], Any]) -> ConfigOptions.TypedConfigOptionBuilder[Any]:
            return ConfigOptions.TypedConfigOptionBuilder(self._key, type_name, parse)

        def boolean_type(self) -> ConfigOptions.TypedConfigOptionBuilder[bool]:
            return self._typed("Boolean", _parse_bool)

        def int_type(self) -> ConfigOptions.TypedConfigOptionBuilder[int]:
            """32-bit integers, as Java's int."""
            return self._typed("Integer", _int_of(-2 ** 31, 2 ** 31 - 1))

        def long_type(self) -> ConfigOptions.TypedConfigOptionBuilder[int]:
            """64-bit integers, as Java's long."""
            return self._typed("Long", _int_of(-2 ** 63, 2 ** 63 - 1))

        def float_type(self) -> ConfigOptions.TypedConfigOptionBuilder[float]:
            return self._typed("Float", float)

        def double_type(self) -> ConfigOptions.TypedConfigOptionBuilder[float]:
            return self._typed("Double", float)

        def string_type(self) -> ConfigOptions.TypedConfigOptionBuilder[str]:
            return self._typed("String", str)

    class TypedConfigOptionBuilder(Generic[T]):
        def __init__(self, key: str, type_name: str, parse: Callable[[str], T]) -> None:
            self._key = key
            self._type_name = type_name
            self._parse = parse

        def default_value(self, value: T) -> ConfigOption[T]:
            option = ConfigOption(self._key, self._type_name, self._parse, value)
            option.to_text(value)  # a default of the wrong type fails here, naming the key
            return option

        def no_default_value(self) -> ConfigOption[T]:
            return ConfigOption(self._key, self._type_name, self._parse, None)


class ConfigOption(Generic[T]):
    """A configuration key with its value type and default value; immutable."""

    def __init__(self, key: str, type_name: str, parse: Callable[[str], T], default: T | None) -> None:
        self._key = key
        self._type_name = type_name
        self._parse = parse
        self._default = default

    def key(self) -> str:
        return self._key

    def default_value(self) -> T | None:
        return self._default

    def has_default_value(self) -> bool:
        return self._default is not None

    def parse(self, text: str) -> T:
        """The option's value from its text; a text that is not of its type fails naming the key."""
        try:
            return self._parse(text)
        except (ValueError, TypeError) as error:
            raise ValueError(f"Could not parse value '{text}' for key '{self._key}' as {self._type_name}: "
                             f"{error}") from error

    def to_text(self, value: T) -> str:
        """The value as Flink's configuration writes it (booleans lower case), checked against the type."""
        if isinstance(value, bool):
            text = "true" if value else "false"
        elif self._type_name in ("Float", "Double") and isinstance(value, (int, float)):
            text = repr(float(value))
        else:
            text = str(value)
        if self._type_name == "Boolean" and not isinstance(value, bool):
            raise ValueError(f"config option '{self._key}' takes a bool, got {value!r}")
        if self._type_name in ("Integer", "Long") and (isinstance(value, bool) or not isinstance(value, int)):
            raise ValueError(f"config option '{self._key}' takes an int, got {value!r}")
        self.parse(text)
        return text

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ConfigOption) and (self._key, self._type_name, self._default) == (
            other._key, other._type_name, other._default)

    def __hash__(self) -> int:
        return hash((self._key, self._type_name))

    def __repr__(self) -> str:
        return f"Key: '{self._key}' , default: {self._default} (fallback keys: [])"
