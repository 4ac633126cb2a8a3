"""Restart strategies, as Flink's RestartBackoffTimeStrategy: told of each failure (with the time),
they say whether the job may restart and after how long. Pure arithmetic on the times given.

- `none`: never.
- `fixed-delay`: up to `attempts` restarts, each after `delay`.
- `failure-rate`: restart unless `max-failures-per-interval` failures fell within `failure-rate-interval`;
  each restart after `delay`.
- `exponential-delay`: backoff from `initial-backoff`, times `backoff-multiplier` per failure, capped at
  `max-backoff`, randomized by `jitter-factor`; back to the initial backoff after `reset-backoff-threshold`
  without a failure; gives up after `attempts-before-reset-backoff` failures without a reset.

With nothing configured: `exponential-delay` when checkpointing is on, else `none` (Flink 1.19+)."""

from __future__ import annotations

import collections
import random
from dataclasses import dataclass, field
from typing import Callable, Protocol

from ha_flink.config import Configuration, RestartStrategyOptions


class RestartStrategy(Protocol):
    name: str

    def notify_failure(self, now_ms: int) -> None: ...

    def can_restart(self) -> bool: ...

    def backoff_ms(self) -> int: ...


@dataclass
class NoRestart:
    name: str = "none"

    def notify_failure(self, now_ms: int) -> None:
        pass

    def can_restart(self) -> bool:
        return False

    def backoff_ms(self) -> int:
        return 0


@dataclass
class FixedDelayRestart:
    attempts: int
    delay_ms: int
    name: str = "fixed-delay"
    failures: int = 0

    def notify_failure(self, now_ms: int) -> None:
        self.failures += 1

    def can_restart(self) -> bool:
        return self.failures <= self.attempts

    def backoff_ms(self) -> int:
        return self.delay_ms


@dataclass
class FailureRateRestart:
    max_failures_per_interval: int
    interval_ms: int
    delay_ms: int
    name: str = "failure-rate"
    timestamps: collections.deque[int] = field(default_factory=collections.deque)

    def notify_failure(self, now_ms: int) -> None:
        self.timestamps.append(now_ms)
        while self.timestamps and now_ms - self.timestamps[0] > self.interval_ms:
            self.timestamps.popleft()

    def can_restart(self) -> bool:
        return len(self.timestamps) <= self.max_failures_per_interval

    def backoff_ms(self) -> int:
        return self.delay_ms


@dataclass
class ExponentialDelayRestart:
    initial_backoff_ms: int
    max_backoff_ms: int
    multiplier: float
    reset_threshold_ms: int
    jitter_factor: float
    attempts_before_reset: int
    rng: Callable[[], float] = random.random
    name: str = "exponential-delay"
    current_backoff_ms: float = 0.0
    attempts: int = 0
    last_failure_ms: int | None = None

    def notify_failure(self, now_ms: int) -> None:
        if self.last_failure_ms is None or now_ms - self.last_failure_ms >= self.reset_threshold_ms:
            self.current_backoff_ms = self.initial_backoff_ms
            self.attempts = 1
        else:
            self.current_backoff_ms = min(self.current_backoff_ms * self.multiplier, self.max_backoff_ms)
            self.attempts += 1
        self.last_failure_ms = now_ms

    def can_restart(self) -> bool:
        return self.attempts <= self.attempts_before_reset

    def backoff_ms(self) -> int:
        jitter = self.current_backoff_ms * self.jitter_factor * (2 * self.rng() - 1)
        return max(0, round(min(self.current_backoff_ms + jitter, self.max_backoff_ms)))


def _ms(value: object) -> int:
    return int(value.total_seconds() * 1000)  # type: ignore[attr-defined]


def restart_strategy_from_config(config: Configuration, checkpointing_enabled: bool,
                                 rng: Callable[[], float] = random.random) -> RestartStrategy:
    name = config.get(RestartStrategyOptions.RESTART_STRATEGY)
    if name is None:
        name = "exponential-delay" if checkpointing_enabled else "none"
    if name == "none":
        return NoRestart()
    if name == "fixed-delay":
        return FixedDelayRestart(config.get(RestartStrategyOptions.FIXED_DELAY_ATTEMPTS),
                                 _ms(config.get(RestartStrategyOptions.FIXED_DELAY_DELAY)))
    if name == "failure-rate":
        return FailureRateRestart(config.get(RestartStrategyOptions.FAILURE_RATE_MAX_FAILURES),
                                  _ms(config.get(RestartStrategyOptions.FAILURE_RATE_INTERVAL)),
                                  _ms(config.get(RestartStrategyOptions.FAILURE_RATE_DELAY)))
    return ExponentialDelayRestart(
        _ms(config.get(RestartStrategyOptions.EXPONENTIAL_INITIAL_BACKOFF)),
        _ms(config.get(RestartStrategyOptions.EXPONENTIAL_MAX_BACKOFF)),
        config.get(RestartStrategyOptions.EXPONENTIAL_MULTIPLIER),
        _ms(config.get(RestartStrategyOptions.EXPONENTIAL_RESET_THRESHOLD)),
        config.get(RestartStrategyOptions.EXPONENTIAL_JITTER),
        config.get(RestartStrategyOptions.EXPONENTIAL_ATTEMPTS),
        rng,
    )
