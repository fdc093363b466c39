"""Trading hours as a minute-of-week mask, so "is this time open?" is one array lookup.

Times are server time on the UTC scale (semantics §4). The epoch, 1970-01-01, was a Thursday,
which is day 4 in MT5's Sunday-first numbering.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import MappingProxyType

import numpy as np
from numpy.typing import NDArray

from mt5gate.sim.symbols import SessionWindow

__all__ = ["MINUTES_PER_WEEK", "SessionMask", "TradingNow"]

MINUTES_PER_WEEK = 7 * 1440
_EPOCH_WEEKDAY = 4  # Thursday, Sunday = 0


class SessionMask:
    """Open or closed for each of the 10080 minutes of the server week."""

    __slots__ = ("_open",)

    def __init__(self, windows: Sequence[SessionWindow]) -> None:
        self._open: NDArray[np.bool_] = np.zeros(MINUTES_PER_WEEK, dtype=np.bool_)
        for w in windows:
            base = w.day * 1440
            self._open[base + w.start_min : base + w.end_min] = True

    @staticmethod
    def week_minute(minutes: NDArray[np.int64]) -> NDArray[np.int64]:
        """Minute of the week (Sunday 00:00 = 0) of epoch minutes."""
        return (minutes + _EPOCH_WEEKDAY * 1440) % MINUTES_PER_WEEK

    def open_minutes(self, minutes: NDArray[np.int64]) -> NDArray[np.bool_]:
        """Whether each epoch minute lies inside a session."""
        return self._open[self.week_minute(minutes)]

    def open_ms(self, times_ms: NDArray[np.int64]) -> NDArray[np.bool_]:
        """Whether each epoch-millisecond time lies inside a session."""
        return self.open_minutes(times_ms // 60_000)

    def is_open(self, time_ms: int) -> bool:
        """Whether one time lies inside a session."""
        return bool(self._open[(time_ms // 60_000 + _EPOCH_WEEKDAY * 1440) % MINUTES_PER_WEEK])

    def next_open(self, time_ms: int) -> int | None:
        """The first time at or after ``time_ms`` inside a session (``time_ms`` itself while
        open, else the start of the minute a session opens); None when the week has none."""
        minute = time_ms // 60_000
        ahead = np.roll(self._open, -int((minute + _EPOCH_WEEKDAY * 1440) % MINUTES_PER_WEEK))
        found = np.flatnonzero(ahead)
        if len(found) == 0:
            return None
        step = int(found[0])
        return time_ms if step == 0 else (minute + step) * 60_000


@dataclass(frozen=True, slots=True)
class TradingNow:
    """Which symbols trade at server time ``server_ms``, and when each closed one next opens
    (None: it never does), from the simulator's own session schedule."""

    server_ms: int
    open: tuple[str, ...]
    opens_at: Mapping[str, int | None] = field(default_factory=lambda: MappingProxyType({}))

    @property
    def closed(self) -> tuple[str, ...]:
        """The symbols not trading now, in catalogue order."""
        return tuple(self.opens_at)

    def describe(self) -> str:
        """One line: ``server time Sat 2026-12-19 14:00; open now: BTCUSD; closed: EURUSD,
        GBPUSD until Mon 00:05; AAPL until Mon 16:30``."""
        groups: dict[int | None, list[str]] = {}
        for symbol, opens in self.opens_at.items():
            groups.setdefault(opens, []).append(symbol)
        closed = [
            ", ".join(names) + ("" if opens is None else f" until {_shown(opens, '%a %H:%M')}")
            for opens, names in sorted(groups.items(), key=lambda g: (g[0] is None, g[0] or 0))
        ]
        return (
            f"server time {_shown(self.server_ms, '%a %Y-%m-%d %H:%M')}; "
            f"open now: {', '.join(self.open) or 'none'}; closed: {'; '.join(closed) or 'none'}"
        )


def _shown(server_ms: int, form: str) -> str:
    return datetime.fromtimestamp(server_ms / 1000, UTC).strftime(form)
