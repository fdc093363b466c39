"""Real parts for breaker tests: a clock the test moves, and a terminal function that counts."""

from __future__ import annotations

import threading
from typing import Any

from mt5gate.circuit_breaker import BreakerPolicy, BreakerState, CircuitBreaker


class FakeClock:
    """A monotonic clock that only moves when the test says so."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now
        self._lock = threading.Lock()  # threads may advance it concurrently

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> float:
        """Move forward by ``seconds``; returns the new time."""
        assert seconds >= 0, "a monotonic clock never moves back"
        with self._lock:
            self.now += seconds
            return self.now


class CountingTerminal:
    """Stands in for a terminal function: counts the calls that reach it, thread-safely."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.calls = 0

    def order_send(self, *args: Any) -> int:
        with self._lock:
            self.calls += 1
        return 10009


def make(clock: FakeClock, draw: float = 0.0, **policy: Any) -> CircuitBreaker:
    """A breaker on ``clock`` with a fixed jitter draw (0.0: no shortening)."""
    return CircuitBreaker(BreakerPolicy(**policy), clock=clock, random=lambda: draw)


def trip(breaker: CircuitBreaker) -> None:
    """Open a closed breaker with consecutive infrastructure failures."""
    for _ in range(breaker.policy.consecutive_failures):
        breaker.acquire().failure(0.01)
    assert breaker.state is BreakerState.OPEN


def to_half_open(breaker: CircuitBreaker, clock: FakeClock) -> None:
    """Trip, then let the open duration pass (HALF_OPEN begins at the next acquire)."""
    trip(breaker)
    clock.advance(breaker.policy.open_max_s)
