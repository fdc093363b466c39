"""Trading hours as a minute-of-week mask, so "is this time open?" is one array lookup.

Times are server time on the UTC scale (semantics §4). The epoch, 1970-01-01, was a Thursday,
which is day 4 in MT5's Sunday-first numbering.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

from mt5gate.sim.symbols import SessionWindow

__all__ = ["MINUTES_PER_WEEK", "SessionMask"]

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
