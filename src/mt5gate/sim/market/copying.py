"""Selection rules of copy_rates_* and copy_ticks_* (semantics §6.1, §6.2; pitfalls B2, B3).

Failures: a timeframe that is not one of the 21 values, a non-positive count, a count or a range
of more than ``maxbars`` bars -> (-2) with no partial result; ``start_pos`` beyond the history
-> (-1). An empty match is an empty array of the right dtype.
"""

from __future__ import annotations

import numpy as np

from mt5gate.constants import CopyTicks, TickFlag
from mt5gate.sim.errors import CALL_FAILED, INVALID_PARAMS
from mt5gate.sim.market.bars import VALID_TIMEFRAMES
from mt5gate.sim.market.dtypes import RateArray

__all__ = [
    "check_count",
    "check_timeframe",
    "rates_from",
    "rates_from_pos",
    "rates_range",
    "tick_filter",
]

_FILTERS = {
    int(CopyTicks.ALL): 0,
    int(CopyTicks.INFO): int(TickFlag.BID | TickFlag.ASK),
    int(CopyTicks.TRADE): int(TickFlag.LAST | TickFlag.VOLUME),
}


def check_timeframe(timeframe: int) -> None:
    """(-2) unless ``timeframe`` is one of MT5's 21 bit-coded values."""
    if timeframe not in VALID_TIMEFRAMES:
        raise INVALID_PARAMS()


def check_count(count: int, maxbars: int) -> None:
    """(-2) for a count below 1 or above the terminal's maxbars."""
    if count < 1 or count > maxbars:
        raise INVALID_PARAMS()


def tick_filter(flags: int) -> int:
    """The tick-flag mask a COPY_TICKS value keeps (0 = everything); (-2) for other values."""
    try:
        return _FILTERS[flags]
    except KeyError:
        raise INVALID_PARAMS() from None


def rates_from(bars: RateArray, date_from: int, count: int, maxbars: int) -> RateArray:
    """The last ``count`` bars opening at or before ``date_from``."""
    check_count(count, maxbars)
    end = int(np.searchsorted(bars["time"], date_from, side="right"))
    return bars[max(0, end - count) : end].copy()


def rates_from_pos(bars: RateArray, start_pos: int, count: int, maxbars: int) -> RateArray:
    """``count`` bars ending ``start_pos`` bars before the current (forming) one, oldest first."""
    check_count(count, maxbars)
    if start_pos < 0:
        raise INVALID_PARAMS()
    if start_pos >= len(bars) or start_pos >= maxbars:
        raise CALL_FAILED()
    end = len(bars) - start_pos
    return bars[max(0, end - count) : end].copy()


def rates_range(bars: RateArray, date_from: int, date_to: int, maxbars: int) -> RateArray:
    """Bars with ``date_from <= time <= date_to``; (-2) if that is more than ``maxbars``."""
    lo = int(np.searchsorted(bars["time"], date_from, side="left"))
    hi = int(np.searchsorted(bars["time"], date_to, side="right"))
    if hi - lo > maxbars:
        raise INVALID_PARAMS()
    return bars[lo : max(lo, hi)].copy()
