"""`Configuration`: the typed view of one set of key/value pairs, each remembering where it came from.

Values of known keys are parsed when they are set, so a bad value fails at load time with its file and
line rather than later inside a daemon. Unknown keys are kept (and passed on to daemons) but only warned
about, as Flink does."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Iterator, Mapping, TypeVar, overload

from ha_flink.config.errors import ConfigurationError
from ha_flink.config.options import OPTIONS_BY_KEY, ConfigOption
from ha_flink.config.units import format_duration

if TYPE_CHECKING:
    from ha_flink.config.options import DefaultedConfigOption

logger = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(frozen=True)
class ConfigEntry:
    """One key as it was given: the raw value, its parsed value (None for unknown keys), its source."""

    key: str
    raw: Any
    value: Any
    source: str | None


def _raw_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, timedelta):
        return format_duration(value)
    if isinstance(value, (list, tuple)):
        return ",".join(str(v) for v in value)
    return str(value)


class Configuration:
    """A mutable set of configuration entries with typed access through `ConfigOption`s."""

    def __init__(self, values: Mapping[str, Any] | None = None, *, source: str | None = None) -> None:
        self._entries: dict[str, ConfigEntry] = {}
        for key, value in (values or {}).items():
            self.set(key, value, source=source)

    def set(self, key: str | ConfigOption[Any], value: Any, *, source: str | None = None) -> None:
        """Set a key from a raw text (as in a file) or an already typed value; known keys are validated."""
        key = key.key if isinstance(key, ConfigOption) else key
        option = OPTIONS_BY_KEY.get(key)
        parsed = None
        if option is not None:
            raw_for_parse = value if isinstance(value, (str, list)) else _raw_text(value)
            try:
                parsed = option.parse(raw_for_parse)
            except ValueError as exc:
                raise ConfigurationError(f"{exc}; accepted: {option.type.accepted}", source=source, key=key) from None
        self._entries[key] = ConfigEntry(key, value, parsed, source)

    @overload
    def get(self, option: DefaultedConfigOption[T], default: T | None = None) -> T: ...

    @overload
    def get(self, option: ConfigOption[T], default: T) -> T: ...

    @overload
    def get(self, option: ConfigOption[T], default: None = None) -> T | None: ...

    def get(self, option: ConfigOption[T], default: T | None = None) -> T | None:
        """The option's value: its own key first, then its deprecated keys, then `default` or its default."""
        entry = self.entry(option)
        if entry is not None:
            return entry.value
        return default if default is not None else option.default

    def require(self, option: ConfigOption[T], why: str) -> T:
        """The option's value, or an error saying which key is missing and why it is needed."""
        value = self.get(option)
        if value is None:
            raise ConfigurationError(f"is not set, but {why}", key=option.key)
        return value

    def entry(self, option: ConfigOption[Any]) -> ConfigEntry | None:
        for key in option.keys:
            if key in self._entries:
                return self._entries[key]
        return None

    def contains(self, option: ConfigOption[Any]) -> bool:
        return self.entry(option) is not None

    def get_raw(self, key: str) -> Any:
        entry = self._entries.get(key)
        return None if entry is None else entry.raw

    def source_of(self, key: str | ConfigOption[Any]) -> str | None:
        entry = self.entry(key) if isinstance(key, ConfigOption) else self._entries.get(key)
        return None if entry is None else entry.source

    def remove(self, key: str) -> None:
        self._entries.pop(key, None)

    def keys(self) -> Iterator[str]:
        return iter(self._entries)

    def unknown_keys(self) -> list[str]:
        return [key for key in self._entries if key not in OPTIONS_BY_KEY]

    def to_dict(self) -> dict[str, str]:
        """Every entry as Flink's flat `key -> text` form (what `-D` passes to a daemon)."""
        return {key: _raw_text(entry.raw) for key, entry in self._entries.items()}

    def copy(self) -> Configuration:
        clone = Configuration()
        clone._entries = dict(self._entries)
        return clone

    def __contains__(self, key: object) -> bool:
        return key in self._entries

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"Configuration({self.to_dict()!r})"
