"""BreakerPolicy: defaults, validation naming field and rule, and the backoff arithmetic."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import pytest

from mt5gate.circuit_breaker import BreakerPolicy


def test_defaults() -> None:
    policy = BreakerPolicy()
    assert (policy.window_s, policy.minimum_calls, policy.failure_rate) == (60.0, 10, 0.5)
    assert (policy.slow_call_s, policy.slow_call_rate, policy.consecutive_failures) == (5.0, 1, 5)
    assert (policy.open_base_s, policy.open_max_s, policy.open_multiplier) == (1.0, 60.0, 2.0)
    assert (policy.jitter, policy.half_open_permits, policy.half_open_max_wait_s) == (0.2, 3, 30)
    assert policy.successes_to_close == 3
    assert not policy.slow_tripping
    assert not policy.half_open_probe_only


def test_policy_is_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        BreakerPolicy().window_s = 1.0  # type: ignore[misc]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"window_s": 0}, "BreakerPolicy.window_s must be > 0, got 0"),
        ({"window_s": math.nan}, "BreakerPolicy.window_s must be > 0, got nan"),
        ({"bucket_s": 0.0}, "BreakerPolicy.bucket_s must be > 0 and <= window_s, got 0.0"),
        ({"window_s": 1.0, "bucket_s": 2.0}, "BreakerPolicy.bucket_s must be > 0 and <= window_s"),
        ({"minimum_calls": 0}, "BreakerPolicy.minimum_calls must be >= 1, got 0"),
        ({"failure_rate": 0.0}, "BreakerPolicy.failure_rate must be within (0, 1], got 0.0"),
        ({"failure_rate": 1.5}, "BreakerPolicy.failure_rate must be within (0, 1], got 1.5"),
        ({"slow_call_s": -1.0}, "BreakerPolicy.slow_call_s must be > 0, got -1.0"),
        ({"slow_call_rate": 0.0}, "BreakerPolicy.slow_call_rate must be within (0, 1], got 0.0"),
        ({"consecutive_failures": 0}, "BreakerPolicy.consecutive_failures must be >= 1, got 0"),
        ({"open_base_s": 0.0}, "BreakerPolicy.open_base_s must be > 0, got 0.0"),
        ({"open_max_s": 0.5}, "BreakerPolicy.open_max_s must be >= open_base_s, got 0.5"),
        ({"open_multiplier": 0.9}, "BreakerPolicy.open_multiplier must be >= 1, got 0.9"),
        ({"jitter": 1.1}, "BreakerPolicy.jitter must be within [0, 1], got 1.1"),
        ({"jitter": -0.1}, "BreakerPolicy.jitter must be within [0, 1], got -0.1"),
        ({"half_open_permits": 0}, "BreakerPolicy.half_open_permits must be >= 1, got 0"),
        (
            {"half_open_successes": 4},
            "BreakerPolicy.half_open_successes must be None or 1..half_open_permits, got 4",
        ),
        ({"half_open_successes": 0}, "BreakerPolicy.half_open_successes must be None or 1.."),
        ({"half_open_max_wait_s": 0.0}, "BreakerPolicy.half_open_max_wait_s must be > 0, got 0.0"),
    ],
)
def test_invalid_values_name_the_field_and_rule(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError) as raised:
        BreakerPolicy(**changes)
    assert str(raised.value).startswith(message)


def test_successes_to_close_and_slow_tripping() -> None:
    policy = BreakerPolicy(half_open_permits=5, half_open_successes=2, slow_call_rate=0.8)
    assert policy.successes_to_close == 2
    assert policy.slow_tripping


def test_open_durations_grow_geometrically_to_the_cap() -> None:
    policy = BreakerPolicy(open_base_s=0.5, open_multiplier=3.0, open_max_s=10.0, jitter=0.0)
    assert [policy.open_s(n, 0.0) for n in range(5)] == [0.5, 1.5, 4.5, 10.0, 10.0]


def test_open_duration_never_overflows() -> None:
    policy = BreakerPolicy()
    assert policy.open_s(10**6, 0.0) == 60.0
    assert policy.open_s(10**6, 0.5) == pytest.approx(54.0)


def test_a_multiplier_of_one_keeps_the_base() -> None:
    policy = BreakerPolicy(open_multiplier=1.0, open_base_s=2.0, open_max_s=2.0, jitter=0.5)
    assert [policy.open_s(n, 1.0) for n in range(3)] == [1.0, 1.0, 1.0]
