"""`RestartStrategies`, as PyFlink's: descriptions of a restart strategy (no restart, fixed delay, failure
rate, the cluster's default).

PyFlink 2 keeps these classes but no longer takes them anywhere (`set_restart_strategy` went with
Flink 2.0; the strategy is the `restart-strategy.*` configuration). Here each also gives that
configuration, so `env.configure(RestartStrategies.fixed_delay_restart(3, 1000).to_configuration())` sets
it. Descriptions are Flink's."""

from __future__ import annotations

from abc import ABC, abstractmethod
from datetime import timedelta

from ha_flink.common.configuration import Configuration

__all__ = ["RestartStrategies", "RestartStrategyConfiguration"]


def _delay(value: int | timedelta, parameter: str) -> timedelta:
    if isinstance(value, bool) or not isinstance(value, (timedelta, int)):
        raise TypeError("The parameter '%s' only supports integer and datetime.timedelta, current input type "
                        "is %s." % (parameter, type(value)))
    return value if isinstance(value, timedelta) else timedelta(milliseconds=value)


def _ms(delta: timedelta) -> str:
    return "%d ms" % (delta // timedelta(milliseconds=1))


def _flink_duration(delta: timedelta) -> str:
    """As Java's Duration in Flink's descriptions: whole seconds as `10 s`, else milliseconds."""
    ms = delta // timedelta(milliseconds=1)
    return "%d s" % (ms // 1000) if ms % 1000 == 0 else "%d ms" % ms


class RestartStrategyConfiguration(ABC):
    """A restart strategy's description and settings."""

    @abstractmethod
    def get_description(self) -> str:
        """What the web interface shows for it."""

    @abstractmethod
    def to_configuration(self) -> Configuration:
        """The `restart-strategy.*` settings that select it."""

    def __eq__(self, other: object) -> bool:
        return isinstance(other, self.__class__) and self.__dict__ == other.__dict__

    def __hash__(self) -> int:
        return hash(self.get_description())

    def __repr__(self) -> str:
        return "%s(%s)" % (type(self).__name__, self.get_description())


class RestartStrategies:
    """Makes RestartStrategyConfigurations."""

    class NoRestartStrategyConfiguration(RestartStrategyConfiguration):
        def get_description(self) -> str:
            return "Restart deactivated."

        def to_configuration(self) -> Configuration:
            return Configuration.from_dict({"restart-strategy.type": "none"})

    class FixedDelayRestartStrategyConfiguration(RestartStrategyConfiguration):
        def __init__(self, restart_attempts: int, delay_between_attempts_interval: int | timedelta) -> None:
            if isinstance(restart_attempts, bool) or not isinstance(restart_attempts, int) or restart_attempts < 0:
                raise ValueError(f"restart_attempts must be a non-negative int, got {restart_attempts!r}")
            self._restart_attempts = restart_attempts
            self._delay = _delay(delay_between_attempts_interval, "delay_between_attempts_interval")

        def get_restart_attempts(self) -> int:
            return self._restart_attempts

        def get_delay_between_attempts_interval(self) -> timedelta:
            return self._delay

        def get_description(self) -> str:
            return "Restart with fixed delay (%s). #%d restart attempts." % (
                _flink_duration(self._delay), self._restart_attempts)

        def to_configuration(self) -> Configuration:
            return Configuration.from_dict({
                "restart-strategy.type": "fixed-delay",
                "restart-strategy.fixed-delay.attempts": str(self._restart_attempts),
                "restart-strategy.fixed-delay.delay": _ms(self._delay)})

    class FailureRateRestartStrategyConfiguration(RestartStrategyConfiguration):
        def __init__(self, max_failure_rate: int, failure_interval: int | timedelta,
                     delay_between_attempts_interval: int | timedelta) -> None:
            if isinstance(max_failure_rate, bool) or not isinstance(max_failure_rate, int) or max_failure_rate < 1:
                raise ValueError(f"max_failure_rate must be a positive int, got {max_failure_rate!r}")
            self._max_failure_rate = max_failure_rate
            self._failure_interval = _delay(failure_interval, "failure_interval")
            self._delay = _delay(delay_between_attempts_interval, "delay_between_attempts_interval")

        def get_max_failure_rate(self) -> int:
            return self._max_failure_rate

        def get_failure_interval(self) -> timedelta:
            return self._failure_interval

        def get_delay_between_attempts_interval(self) -> timedelta:
            return self._delay

        def get_description(self) -> str:
            return "Failure rate restart with maximum of %d failures within interval %s and fixed delay %s." % (
                self._max_failure_rate, _flink_duration(self._failure_interval), _flink_duration(self._delay))

        def to_configuration(self) -> Configuration:
            return Configuration.from_dict({
                "restart-strategy.type": "failure-rate",
                "restart-strategy.failure-rate.max-failures-per-interval": str(self._max_failure_rate),
                "restart-strategy.failure-rate.failure-rate-interval": _ms(self._failure_interval),
                "restart-strategy.failure-rate.delay": _ms(self._delay)})

    class FallbackRestartStrategyConfiguration(RestartStrategyConfiguration):
        """The cluster's restart strategy (its configuration decides)."""

        def get_description(self) -> str:
            return "Cluster level default restart strategy"

        def to_configuration(self) -> Configuration:
            return Configuration()

    @staticmethod
    def no_restart() -> RestartStrategies.NoRestartStrategyConfiguration:
        return RestartStrategies.NoRestartStrategyConfiguration()

    @staticmethod
    def fall_back_restart() -> RestartStrategies.FallbackRestartStrategyConfiguration:
        return RestartStrategies.FallbackRestartStrategyConfiguration()

    @staticmethod
    def fixed_delay_restart(restart_attempts: int, delay_between_attempts: int | timedelta) \
            -> RestartStrategies.FixedDelayRestartStrategyConfiguration:
        """`delay_between_attempts`: milliseconds, or a timedelta."""
        return RestartStrategies.FixedDelayRestartStrategyConfiguration(restart_attempts, delay_between_attempts)

    @staticmethod
    def failure_rate_restart(failure_rate: int, failure_interval: int | timedelta,
                             delay_interval: int | timedelta) \
            -> RestartStrategies.FailureRateRestartStrategyConfiguration:
        """At most `failure_rate` failures within `failure_interval`, `delay_interval` between restarts
        (milliseconds, or timedeltas)."""
        return RestartStrategies.FailureRateRestartStrategyConfiguration(failure_rate, failure_interval,
                                                                         delay_interval)
