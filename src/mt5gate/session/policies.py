"""Session policies as data: deadlines, reconnection, read retries, and the clock they run on.

``ReconcilePolicy`` lives with the orders (``mt5gate.orders.policies``) and is re-exported here.

All frozen, validated on construction (an error names the field and the rule), and injected:
tests build a policy with tiny numbers and a manual clock instead of sleeping.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Protocol

from mt5gate.orders.policies import ReconcilePolicy

__all__ = [
    "AsyncClock",
    "ReadRetryPolicy",
    "RealAsyncClock",
    "ReconcilePolicy",
    "ReconnectPolicy",
    "Timeouts",
]


def _positive(owner: object) -> None:
    for f in fields(owner):  # type: ignore[arg-type]
        value = getattr(owner, f.name)
        if isinstance(value, float | int) and not isinstance(value, bool) and value < 0:
            raise ValueError(f"{type(owner).__name__}.{f.name} must be >= 0, got {value}")


@dataclass(frozen=True, slots=True)
class Timeouts:
    """Deadlines of terminal calls, in seconds (real time: they guard blocking calls)."""

    call_s: float = 10.0  # reads
    connect_s: float = 65.0  # initialize / login (the terminal's own timeout is 60 s)
    order_s: float = 15.0  # order_send / order_check
    probe_s: float = 2.0  # health probe calls

    def __post_init__(self) -> None:
        _positive(self)
        if min(self.call_s, self.connect_s, self.order_s, self.probe_s) <= 0:
            raise ValueError("Timeouts: every deadline must be > 0 seconds")


@dataclass(frozen=True, slots=True)
class ReconnectPolicy:
    """Automatic reconnection: capped exponential backoff with full jitter."""

    enabled: bool = True
    base_s: float = 0.5
    max_s: float = 30.0
    multiplier: float = 2.0
    max_attempts: int | None = None  # None: keep trying until closed
    after_failures: int = 3  # consecutive connection failures that mean "lost" (-10004: at once)

    def __post_init__(self) -> None:
        _positive(self)
        if self.after_failures < 1:
            raise ValueError(
                f"ReconnectPolicy.after_failures must be >= 1, got {self.after_failures}"
            )
        if self.multiplier < 1:
            raise ValueError(f"ReconnectPolicy.multiplier must be >= 1, got {self.multiplier}")
        if self.max_attempts is not None and self.max_attempts < 1:
            raise ValueError("ReconnectPolicy.max_attempts must be >= 1 or None")

    def delay_s(self, attempt: int, random: Callable[[], float]) -> float:
        """Wait before attempt ``attempt`` (1-based): uniform in [0, min(max, base*mult^(n-1))]."""
        cap = min(self.max_s, self.base_s * self.multiplier ** max(attempt - 1, 0))
        return cap * random()


@dataclass(frozen=True, slots=True)
class ReadRetryPolicy:
    """Retries of idempotent reads after transient IPC failures (never of order_send).

    Only send/receive failures (-10000, -10001, -10002) are retried: a timeout means the
    terminal is hung and a retry would only queue behind it, and -10004 means the connection is
    gone, which reconnection (not a retry) fixes.
    """

    attempts: int = 3
    base_s: float = 0.05
    max_s: float = 1.0
    deadline_s: float = 5.0  # total time budget across attempts

    def __post_init__(self) -> None:
        _positive(self)
        if self.attempts < 1:
            raise ValueError(f"ReadRetryPolicy.attempts must be >= 1, got {self.attempts}")

    def delay_s(self, attempt: int, random: Callable[[], float]) -> float:
        """Full-jitter backoff before retry ``attempt`` (1-based)."""
        return min(self.max_s, self.base_s * 2.0 ** max(attempt - 1, 0)) * random()


class AsyncClock(Protocol):
    """Monotonic time and sleeping, injectable so tests drive time instead of waiting."""

    def monotonic(self) -> float:
        """Seconds on a monotonic scale."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds``."""
        ...


class RealAsyncClock:
    """``time.monotonic`` and ``asyncio.sleep``."""

    def monotonic(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)
