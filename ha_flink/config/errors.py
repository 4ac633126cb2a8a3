"""The one error type of configuration: it names the place (file and line, or `-D`), the key and what
is accepted, so a user can fix the input without reading our code."""

from __future__ import annotations


class ConfigurationError(ValueError):
    """A configuration value, line or file that cannot be used.

    `source` is where the input came from: ``"conf/flink-conf.yaml:12"``, ``"-D"`` or ``None`` for a value
    set from code.
    """

    def __init__(self, message: str, *, source: str | None = None, key: str | None = None) -> None:
        self.source = source
        self.key = key
        self.reason = message
        parts = [p for p in (source, key) if p]
        super().__init__(": ".join([*parts, message]))
