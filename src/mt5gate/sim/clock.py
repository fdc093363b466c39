"""The simulator's server clock.

Every timestamp the simulator produces (ticks, bars, orders, deals, positions) is broker server
wall-clock time encoded as if it were UTC, as real MT5 does (semantics §4). A clock therefore
answers "server time now, in epoch milliseconds". ``RealClock`` follows the machine clock plus the
broker's UTC offset (for ``mt5gate serve``); ``VirtualClock`` only moves when a test moves it.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Protocol, runtime_checkable

__all__ = ["Clock", "RealClock", "VirtualClock", "server_ms"]


@runtime_checkable
class Clock(Protocol):
    """Source of broker server time."""

    def now_ms(self) -> int:
        """Server wall-clock time now, as epoch milliseconds on the UTC scale."""
        ...


def server_ms(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> int:
    """Epoch milliseconds of a server wall-clock time (handy for tests and configs)."""
    return int(datetime(year, month, day, hour, minute, tzinfo=UTC).timestamp() * 1000)


class RealClock:
    """Machine time shifted by the broker's UTC offset (e.g. +2 h or +3 h in summer)."""

    __slots__ = ("utc_offset_s",)

    def __init__(self, utc_offset_s: int = 7200) -> None:
        self.utc_offset_s = utc_offset_s

    def now_ms(self) -> int:
        return time.time_ns() // 1_000_000 + self.utc_offset_s * 1000

    def __repr__(self) -> str:
        return f"RealClock(utc_offset_s={self.utc_offset_s})"


class VirtualClock:
    """A clock that stands still until told to move; tests step it explicitly."""

    __slots__ = ("_now_ms", "utc_offset_s")

    def __init__(self, start_ms: int | None = None, utc_offset_s: int = 7200) -> None:
        self._now_ms = server_ms(2026, 1, 5, 8) if start_ms is None else start_ms
        self.utc_offset_s = utc_offset_s

    def now_ms(self) -> int:
        return self._now_ms

    def advance(self, seconds: float = 0.0, *, ms: int = 0) -> int:
        """Move forward by ``seconds`` plus ``ms``; returns the new time. Never moves back."""
        step = round(seconds * 1000) + ms
        if step < 0:
            raise ValueError(f"a clock never moves back (step {step} ms)")
        self._now_ms += step
        return self._now_ms

    def set(self, now_ms: int) -> None:
        """Jump to ``now_ms``, which must not be in the past."""
        if now_ms < self._now_ms:
            raise ValueError(f"a clock never moves back ({now_ms} < {self._now_ms})")
        self._now_ms = now_ms

    def __repr__(self) -> str:
        return f"VirtualClock(now_ms={self._now_ms}, utc_offset_s={self.utc_offset_s})"
