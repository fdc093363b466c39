"""Bars of a date range, fetched in windows the terminal accepts (pitfalls B2).

MT5 refuses a ``copy_rates_range`` that spans more bars than its "Max bars in chart"
(``terminal_info().maxbars``) with ``(-2, 'Terminal: Invalid params')`` and no partial result,
which reads as if there were no data. :func:`rates_in_range` walks the range from its start in
windows that cannot hold more than ``maxbars`` bars (a span of ``n * timeframe_seconds(tf)``
seconds holds at most ``n`` bars) and stops as soon as it has ``count`` of them, so a request
for the first three bars of 1970..3000 costs a few calls, not the whole history:

* the first window holds at most ``count`` bars (``maxbars`` without a count);
* a window that comes back sparse (before the history starts, a weekend, a market holiday)
  doubles the next one, so years without bars are crossed in a few dozen calls;
* a window the terminal still refuses with -2 (only a grown one can be) is halved and asked
  again, and the walk grows no more past that size.

Each window is one ordinary read (the session's deadline, retries and breaker apply to each).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

import numpy as np
import numpy.typing as npt

from mt5gate.constants import timeframe_seconds
from mt5gate.errors import MT5ValidationError

__all__ = ["date_seconds", "rates_in_range"]

Array = npt.NDArray[np.void]
Read = Callable[..., Awaitable[Any]]

_INVALID_PARAMS = -2


def date_seconds(value: datetime | float) -> int:
    """A date argument as epoch seconds, read as the ``MetaTrader5`` module reads it: a
    ``datetime`` by ``timestamp()`` (a naive one is local time), a number as seconds."""
    return int(value.timestamp()) if isinstance(value, datetime) else int(value)


async def rates_in_range(
    read: Read,
    symbol: str,
    timeframe: int,
    span_s: tuple[int, int],
    *,
    count: int | None,
    maxbars: int,
) -> Array:
    """Bars of ``timeframe`` with ``from <= time <= to`` (``span_s``), oldest first; only the
    first ``count`` when ``count`` is given. See the module docstring for the walk."""
    lo, hi = span_s
    frame = timeframe_seconds(timeframe)
    per_window = max(1, min(maxbars, count if count is not None else maxbars))
    window, ceiling = frame * per_window, None
    parts: list[Array] = []
    got = 0
    while True:  # at least one read: an empty answer comes in the terminal's own dtype
        end = min(hi, lo + window - 1)
        try:
            rows = await read("copy_rates_range", symbol, timeframe, lo, end)
        except MT5ValidationError as error:
            if error.code != _INVALID_PARAMS or window <= frame:
                raise
            window = ceiling = max(frame, window // 2)
            continue
        parts.append(rows)
        got += len(rows)
        lo = end + 1
        if lo > hi or (count is not None and got >= count):
            break
        if len(rows) * 2 < per_window and (ceiling is None or window * 2 <= ceiling):
            window *= 2
    bars = parts[0] if len(parts) == 1 else np.concatenate(parts)
    return bars if count is None else bars[:count]
