"""Reading MetaTrader 5's own tick and bar exports (tab-separated, ``<DATE>``-style headers).

Ticks: ``<DATE> <TIME> <BID> <ASK> <LAST> <VOLUME> <FLAGS>``; an empty price cell means "did not
change" and repeats the previous value. Bars: ``<DATE> <TIME> <OPEN> <HIGH> <LOW> <CLOSE>
<TICKVOL> <VOL> <SPREAD>``; daily and longer exports have no ``<TIME>``. Dates look like
``2020.01.10``, times like ``00:00:00.987``. A bad row raises ValueError naming line and column.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import TypeVar

import numpy as np

from mt5gate.constants import TickFlag
from mt5gate.sim.market.dtypes import RATES_DTYPE, TICKS_DTYPE, RateArray, TickArray

__all__ = ["read_bars_csv", "read_ticks_csv"]

_TICK_COLUMNS = ("<DATE>", "<TIME>", "<BID>", "<ASK>", "<LAST>", "<VOLUME>", "<FLAGS>")
_BAR_COLUMNS = ("<OPEN>", "<HIGH>", "<LOW>", "<CLOSE>", "<TICKVOL>", "<VOL>", "<SPREAD>")
_T = TypeVar("_T")


def _rows(path: str | os.PathLike[str]) -> Iterator[tuple[int, dict[str, str]]]:
    """(line number, cells by header name) for each non-blank data line."""
    with open(path, encoding="utf-8-sig") as fh:
        header = fh.readline().rstrip("\r\n").split("\t")
        for number, line in enumerate(fh, start=2):
            text = line.rstrip("\r\n")
            if text.strip():
                cells = text.split("\t")
                yield (
                    number,
                    dict(zip(header, cells + [""] * (len(header) - len(cells)), strict=False)),
                )


def _require(path: str | os.PathLike[str], needed: tuple[str, ...]) -> None:
    with open(path, encoding="utf-8-sig") as fh:
        header = fh.readline().rstrip("\r\n").split("\t")
    missing = [c for c in needed if c not in header]
    if missing:
        raise ValueError(f"{os.fspath(path)}: line 1: missing column(s) {', '.join(missing)}")


def _cell(row: dict[str, str], column: str, line: int, parse: Callable[[str], _T]) -> _T:
    try:
        return parse(row.get(column, "").strip())
    except (ValueError, KeyError) as exc:
        raise ValueError(f"line {line}: column {column}: bad value {row.get(column)!r}") from exc


def _epoch_ms(date: str, time: str) -> int:
    """Epoch ms of a server date ``2020.01.10`` and time ``00:00:00.987`` (or ``00:00``)."""
    fmt = (
        "%Y.%m.%d %H:%M:%S.%f"
        if "." in time
        else ("%Y.%m.%d %H:%M:%S" if time.count(":") == 2 else "%Y.%m.%d %H:%M")
    )
    moment = datetime.strptime(f"{date} {time}", fmt).replace(tzinfo=UTC)
    return round(moment.timestamp() * 1000)


def _carry(previous: float) -> Callable[[str], float]:
    """Parse a price cell; an empty one keeps ``previous``."""
    return lambda text: float(text) if text else previous


def _tick_row(
    row: dict[str, str], line: int, prev: tuple[float, float, float]
) -> tuple[object, ...]:
    when = _cell(row, "<TIME>", line, lambda t: _epoch_ms(row["<DATE>"].strip(), t))
    bid = _cell(row, "<BID>", line, _carry(prev[0]))
    ask = _cell(row, "<ASK>", line, _carry(prev[1]))
    last = _cell(row, "<LAST>", line, _carry(prev[2]))
    volume = _cell(row, "<VOLUME>", line, lambda t: float(t) if t else 0.0)
    flags = _cell(row, "<FLAGS>", line, lambda t: int(t) if t else _derived_flags(row))
    if volume < 0 or flags < 0:
        raise ValueError(f"line {line}: column {'<VOLUME>' if volume < 0 else '<FLAGS>'}: negative")
    return (when // 1000, bid, ask, last, int(volume), when, flags, volume)


def _derived_flags(row: dict[str, str]) -> int:
    """Flags of a row without a <FLAGS> value: one bit per non-empty cell."""
    bits = {
        "<BID>": TickFlag.BID,
        "<ASK>": TickFlag.ASK,
        "<LAST>": TickFlag.LAST,
        "<VOLUME>": TickFlag.VOLUME,
    }
    return sum(int(b) for c, b in bits.items() if row.get(c, "").strip())


def read_ticks_csv(path: str | os.PathLike[str]) -> TickArray:
    """Ticks of an MT5 tick export, oldest first (ValueError if the times go backwards)."""
    _require(path, _TICK_COLUMNS[:4])
    out: list[tuple[object, ...]] = []
    prev = (0.0, 0.0, 0.0)
    for line, row in _rows(path):
        tick = _tick_row(row, line, prev)
        if out and int(tick[5]) < int(out[-1][5]):  # type: ignore[call-overload]
            raise ValueError(f"line {line}: column <TIME>: earlier than the previous row")
        prev = (float(tick[1]), float(tick[2]), float(tick[3]))  # type: ignore[arg-type]
        out.append(tick)
    return np.array(out, dtype=TICKS_DTYPE)


def _bar_row(row: dict[str, str], line: int) -> tuple[object, ...]:
    stamp = row.get("<TIME>", "").strip() or "00:00"
    when = _cell(row, "<DATE>", line, lambda d: _epoch_ms(d, stamp) // 1000)
    prices = [_cell(row, c, line, float) for c in _BAR_COLUMNS[:4]]
    tickvol, vol, spread = (_cell(row, c, line, lambda t: int(t or 0)) for c in _BAR_COLUMNS[4:])
    if not max(prices[0], prices[3]) <= prices[1] or not min(prices[0], prices[3]) >= prices[2]:
        raise ValueError(f"line {line}: column <HIGH>/<LOW>: outside open/close")
    return (when, *prices, tickvol, spread, vol)


def read_bars_csv(path: str | os.PathLike[str]) -> RateArray:
    """Bars of an MT5 bar export, oldest first."""
    _require(path, ("<DATE>", *_BAR_COLUMNS[:4]))
    out = [_bar_row(row, line) for line, row in _rows(path)]
    return np.array(out, dtype=RATES_DTYPE)
