"""Restart strategies as pure arithmetic on failure times."""

from __future__ import annotations

import pytest

from ha_flink.config import Configuration
from ha_flink.runtime.scheduler.restart_strategies import (
    ExponentialDelayRestart, FailureRateRestart, FixedDelayRestart, NoRestart, restart_strategy_from_config,
)


def test_defaults_follow_flink_none_without_checkpoints_exponential_with() -> None:
    assert isinstance(restart_strategy_from_config(Configuration(), checkpointing_enabled=False), NoRestart)
    strategy = restart_strategy_from_config(Configuration(), checkpointing_enabled=True)
    assert isinstance(strategy, ExponentialDelayRestart)
    assert (strategy.initial_backoff_ms, strategy.max_backoff_ms, strategy.multiplier) == (1000, 60_000, 1.5)
    assert (strategy.reset_threshold_ms, strategy.jitter_factor) == (3_600_000, 0.1)


def test_none_never_restarts() -> None:
    strategy = restart_strategy_from_config(Configuration({"restart-strategy": "none"}), True)
    strategy.notify_failure(0)
    assert not strategy.can_restart()


def test_fixed_delay_gives_up_after_the_attempts() -> None:
    config = Configuration({"restart-strategy.type": "fixed-delay", "restart-strategy.fixed-delay.attempts": "3",
                            "restart-strategy.fixed-delay.delay": "250 ms"})
    strategy = restart_strategy_from_config(config, False)
    assert isinstance(strategy, FixedDelayRestart)
    decisions = []
    for t in range(4):
        strategy.notify_failure(t * 1000)
        decisions.append((strategy.can_restart(), strategy.backoff_ms()))
    assert decisions == [(True, 250), (True, 250), (True, 250), (False, 250)]


def test_failure_rate_allows_n_failures_per_interval() -> None:
    config = Configuration({"restart-strategy.type": "failure-rate",
                            "restart-strategy.failure-rate.max-failures-per-interval": "2",
                            "restart-strategy.failure-rate.failure-rate-interval": "10 s",
                            "restart-strategy.failure-rate.delay": "1 s"})
    strategy = restart_strategy_from_config(config, False)
    assert isinstance(strategy, FailureRateRestart)
    strategy.notify_failure(0)
    assert strategy.can_restart()
    strategy.notify_failure(4_000)
    assert strategy.can_restart()
    strategy.notify_failure(8_000)  # a third within 10 s
    assert not strategy.can_restart()


def test_failure_rate_forgets_failures_older_than_the_interval() -> None:
    strategy = FailureRateRestart(max_failures_per_interval=2, interval_ms=10_000, delay_ms=0)
    for t in (0, 4_000, 15_000, 20_000):  # never more than two within any 10 s
        strategy.notify_failure(t)
        assert strategy.can_restart(), t
    assert strategy.backoff_ms() == 0


def test_exponential_delay_grows_caps_and_resets() -> None:
    strategy = ExponentialDelayRestart(initial_backoff_ms=1000, max_backoff_ms=5000, multiplier=2.0,
                                       reset_threshold_ms=60_000, jitter_factor=0.0, attempts_before_reset=100)
    backoffs = []
    for t in range(0, 5000, 1000):
        strategy.notify_failure(t)
        backoffs.append(strategy.backoff_ms())
    assert backoffs == [1000, 2000, 4000, 5000, 5000]
    strategy.notify_failure(5000 + 60_000)  # quiet for the reset threshold: back to the start
    assert strategy.backoff_ms() == 1000


def test_exponential_delay_jitter_stays_within_the_factor() -> None:
    for draw in (0.0, 0.5, 1.0):
        strategy = ExponentialDelayRestart(1000, 60_000, 1.5, 3_600_000, 0.1, 10, rng=lambda d=draw: d)
        strategy.notify_failure(0)
        assert strategy.backoff_ms() == {0.0: 900, 0.5: 1000, 1.0: 1100}[draw]


def test_exponential_delay_gives_up_after_attempts_without_reset() -> None:
    strategy = ExponentialDelayRestart(10, 100, 2.0, 60_000, 0.0, attempts_before_reset=2)
    strategy.notify_failure(0)
    strategy.notify_failure(10)
    assert strategy.can_restart()
    strategy.notify_failure(20)
    assert not strategy.can_restart()


@pytest.mark.parametrize("spelling", ["fixeddelay", "FIXED-DELAY", "fixed-delay"])
def test_flink_spellings_of_the_strategy(spelling: str) -> None:
    strategy = restart_strategy_from_config(Configuration({"restart-strategy": spelling}), False)
    assert strategy.name == "fixed-delay"
