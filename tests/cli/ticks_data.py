"""A recorded morning of EURUSD ticks with many ties, for the paging and export tests.

Real feeds put several ticks on one millisecond; the simulator's own ticks never do. These
3,000 ticks (the same every run) come up to a dozen to a millisecond and several dozen to a
second, a fifth of them trades, and are written as MetaTrader 5's own tab-separated tick
export, which a simulator replays (``SimMarket.load_ticks_csv``): its history then holds exactly
:func:`recorded_ticks`. They fall on Monday 2026-01-05 from 10:00, the past of the test
simulators, whose clocks stand at Tuesday 2026-01-06 10:00.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Final

import numpy as np

from mt5gate.cli.port import Array
from mt5gate.records import TICKS_DTYPE

#: Monday 2026-01-05 00:00 (server time, epoch seconds).
DAY: Final = int(datetime(2026, 1, 5, tzinfo=UTC).timestamp())
_START_MS: Final = (DAY + 10 * 3600) * 1000
#: From 10:00 to 12:00 that day (epoch seconds): every recorded tick, and no other.
SPAN: Final = (DAY + 10 * 3600, DAY + 12 * 3600)
_COUNT: Final = 3000
_INFO: Final = 2 | 4  # TICK_FLAG_BID | TICK_FLAG_ASK
_TRADE: Final = _INFO | 8 | 16  # and TICK_FLAG_LAST | TICK_FLAG_VOLUME


@cache
def recorded_ticks() -> Array:
    """The ticks, as the simulator returns them once the file is loaded."""
    draw = random.Random(2105)
    rows = []
    when, bid = _START_MS, 1.1
    for _ in range(_COUNT):
        when += draw.choice([0, 0, 0, 0, 1, 7, 250, 999, 1000])
        bid = round(bid + draw.choice([-1, 1]) * 0.00001, 5)
        trade = draw.random() < 0.2
        rows.append((when // 1000, bid, round(bid + 0.0001, 5), bid if trade else 0.0,
                     1 if trade else 0, when, _TRADE if trade else _INFO,
                     1.0 if trade else 0.0))  # fmt: skip
    return np.array(rows, dtype=TICKS_DTYPE)


def _most_in_one_second() -> int:
    return int(np.unique(recorded_ticks()["time"], return_counts=True)[1].max())


#: The most ticks in one second: a page must hold more to get past it.
SECOND_MOST: Final = _most_in_one_second()


def write_tick_file(path: Path) -> Path:
    """:func:`recorded_ticks` as MT5's tick export (every cell written: none carried over)."""
    lines = ["<DATE>\t<TIME>\t<BID>\t<ASK>\t<LAST>\t<VOLUME>\t<FLAGS>"]
    for _, bid, ask, last, volume, when, flags, _ in recorded_ticks().tolist():
        moment = datetime.fromtimestamp(when / 1000, UTC)
        stamp = f"{moment:%H:%M:%S}.{when % 1000:03d}"
        lines.append(f"{moment:%Y.%m.%d}\t{stamp}\t{bid!r}\t{ask!r}\t{last!r}\t{volume}\t{flags}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path
