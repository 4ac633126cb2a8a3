"""Time amounts of the user API: `Duration` (java.time.Duration's factories), `Time` (Flink's
millisecond interval used by windows) and `Instant` (a point in time)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["Duration", "Instant", "Time", "to_milliseconds"]

_NANOS_PER_MILLI = 1_000_000
_NANOS_PER_SECOND = 1_000_000_000


@dataclass(frozen=True, order=True)
class Duration:
    """An amount of time, held exactly in nanoseconds like java.time.Duration."""

    nanos: int

    @staticmethod
    def of_nanos(nanos: int) -> "Duration":
        return Duration(int(nanos))

    @staticmethod
    def of_millis(millis: int) -> "Duration":
        return Duration(int(millis) * _NANOS_PER_MILLI)

    @staticmethod
    def of_seconds(seconds: int) -> "Duration":
        return Duration(int(seconds) * _NANOS_PER_SECOND)

    @staticmethod
    def of_minutes(minutes: int) -> "Duration":
        return Duration(int(minutes) * 60 * _NANOS_PER_SECOND)

    @staticmethod
    def of_hours(hours: int) -> "Duration":
        return Duration(int(hours) * 3600 * _NANOS_PER_SECOND)

    @staticmethod
    def of_days(days: int) -> "Duration":
        return Duration(int(days) * 86400 * _NANOS_PER_SECOND)

    def to_nanos(self) -> int:
        return self.nanos

    # Floor division, as Java's Duration normalises to (seconds, positive nanos) before truncating.
    def to_milliseconds(self) -> int:
        return self.nanos // _NANOS_PER_MILLI

    to_millis = to_milliseconds

    def to_seconds(self) -> int:
        return self.nanos // _NANOS_PER_SECOND


class Time:
    """A time interval in milliseconds, the window size/slide type of Flink's DataStream API."""

    __slots__ = ("_milliseconds",)

    def __init__(self, milliseconds: int) -> None:
        self._milliseconds = int(milliseconds)

    def to_milliseconds(self) -> int:
        return self._milliseconds

    @staticmethod
    def milliseconds(milliseconds: int) -> "Time":
        return Time(milliseconds)

    @staticmethod
    def seconds(seconds: int) -> "Time":
        return Time.milliseconds(seconds * 1000)

    @staticmethod
    def minutes(minutes: int) -> "Time":
        return Time.seconds(minutes * 60)

    @staticmethod
    def hours(hours: int) -> "Time":
        return Time.minutes(hours * 60)

    @staticmethod
    def days(days: int) -> "Time":
        return Time.hours(days * 24)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Time) and self._milliseconds == other._milliseconds

    def __hash__(self) -> int:
        return hash(self._milliseconds)

    def __str__(self) -> str:
        return "{} ms".format(self._milliseconds)

    def __repr__(self) -> str:
        return "Time.milliseconds(%d)" % self._milliseconds


class Instant:
    """An instantaneous point on the time-line, as epoch seconds plus nanoseconds."""

    def __init__(self, seconds: int, nanos: int) -> None:
        self.seconds = seconds
        self.nanos = nanos

    def to_epoch_milli(self) -> int:
        return self.seconds * 1000 + self.nanos // _NANOS_PER_MILLI

    @staticmethod
    def of_epoch_milli(epoch_milli: int) -> "Instant":
        secs, millis = divmod(epoch_milli, 1000)
        return Instant(secs, millis * _NANOS_PER_MILLI)

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, Instant) and self.seconds == other.seconds
                and self.nanos == other.nanos)

    def __hash__(self) -> int:
        return hash((self.seconds, self.nanos))

    def __repr__(self) -> str:
        return "Instant<{}, {}>".format(self.seconds, self.nanos)


def to_milliseconds(amount: Any, what: str) -> int:
    """A `Duration`, a `Time` or a number of milliseconds (what PyFlink's APIs take for an amount of time),
    in milliseconds; anything else is a TypeError naming `what`."""
    if hasattr(amount, "to_milliseconds"):
        return int(amount.to_milliseconds())
    if isinstance(amount, int) and not isinstance(amount, bool):
        return amount
    raise TypeError(f"{what} must be a Duration, a Time or milliseconds (int), got {amount!r}")
