"""The simulator's server clock.

Every timestamp the simulator produces (ticks, bars, orders, deals, positions) is broker server
wall-clock time encoded as if it were UTC, as real MT5 does (semantics §4). A clock therefore
answers "server time now, in epoch milliseconds". ``RealClock`` follows the machine clock plus the
broker's UTC offset (for ``mt5gate serve``), optionally pinned to start at a chosen server time
(``start_ms``: replay a Tuesday 10:00 market on a Saturday); ``VirtualClock`` only moves when a
test moves it. Both tell the UTC time of the world they simulate (``utc_ms``), which is what
health checks of a simulated account must judge it by.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Protocol, runtime_checkable

__all__ = ["Clock", "RealClock", "VirtualClock", "server_ms", "server_ms_of"]


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
    """Machine time shifted by the broker's UTC offset (e.g. +2 h or +3 h in summer).

    With ``start_ms`` the clock is pinned: it shows that server time when it is made and runs in
    real time from there, so a simulator can trade a weekday market on any day (``sim_start``
    of a simulated account, ``mt5gate bridge --sim-start``). The pin shifts the machine clock
    by whole seconds, rounded up (it starts less than a second after ``start_ms``, never
    before): simulated times keep the machine clock's milliseconds, so a reader that sees a
    timestamp soon after it was made can tell the shift exactly (the service benchmark does).
    """

    __slots__ = ("shift_ms", "start_ms", "utc_offset_s")

    def __init__(self, utc_offset_s: int = 7200, *, start_ms: int | None = None) -> None:
        self.utc_offset_s = utc_offset_s
        self.start_ms = start_ms
        self.shift_ms = 0
        if start_ms is not None:
            self.shift_ms = _whole_seconds_up(start_ms - self.now_ms())

    @property
    def pinned(self) -> bool:
        """Whether the clock was pinned to a start time rather than following the machine."""
        return self.start_ms is not None

    def now_ms(self) -> int:
        return time.time_ns() // 1_000_000 + self.utc_offset_s * 1000 + self.shift_ms

    def utc_ms(self) -> int:
        """UTC now in the simulated world (the machine's UTC unless the clock is pinned)."""
        return self.now_ms() - self.utc_offset_s * 1000

    def resume(self, saved_ms: int) -> None:
        """A pinned clock behind ``saved_ms`` (a state file's time) continues from there, so the
        simulated broker never sees time move back; a clock on machine time is left alone."""
        behind = saved_ms - self.now_ms()
        if self.pinned and behind > 0:
            self.shift_ms += _whole_seconds_up(behind)

    def __repr__(self) -> str:
        if self.start_ms is None:
            return f"RealClock(utc_offset_s={self.utc_offset_s})"
        return (
            f"RealClock(utc_offset_s={self.utc_offset_s}, start_ms={self.start_ms}, "
            f"shift_ms={self.shift_ms})"
        )


def server_ms_of(moment: datetime, utc_offset_s: int = 7200) -> int:
    """Epoch milliseconds on the server scale of ``moment``: a naive datetime is server
    wall-clock time (as the terminal shows it), an aware one is that instant at a broker
    ``utc_offset_s`` ahead of UTC."""
    if moment.tzinfo is None:
        return int(moment.replace(tzinfo=UTC).timestamp() * 1000)
    shown = moment.astimezone(UTC) + timedelta(seconds=utc_offset_s)
    return int(shown.timestamp() * 1000)


def _whole_seconds_up(ms: int) -> int:
    """``ms`` rounded up to a whole second, in milliseconds."""
    return -(-ms // 1000) * 1000


class VirtualClock:
    """A clock that stands still until told to move; tests step it explicitly."""

    __slots__ = ("_now_ms", "utc_offset_s")

    def __init__(self, start_ms: int | None = None, utc_offset_s: int = 7200) -> None:
        self._now_ms = server_ms(2026, 1, 5, 8) if start_ms is None else start_ms
        self.utc_offset_s = utc_offset_s

    def now_ms(self) -> int:
        return self._now_ms

    def utc_ms(self) -> int:
        """UTC now in the simulated world: server time minus the broker's offset."""
        return self._now_ms - self.utc_offset_s * 1000

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
