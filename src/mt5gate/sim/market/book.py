"""Depth of market around the current quote (semantics §6.3).

Sell levels come first, highest price first, then buy levels, highest price first. Levels are
one tick size apart starting at the ask and the bid; volumes grow away from the touch and vary
with a hash of the quote time, so the same quote always shows the same book.
"""

from __future__ import annotations

import numpy as np

from mt5gate.constants import BookType
from mt5gate.records import BookInfo
from mt5gate.sim.market.rand import hash_uniform
from mt5gate.sim.symbols import SymbolSpec

__all__ = ["build_book"]


def _volumes(key: int, time_msc: int, depth: int, side: int) -> list[int]:
    """Whole-number volumes for levels 0..depth-1 away from the touch."""
    level = np.arange(depth, dtype=np.int64)
    u = hash_uniform(key, np.full(depth, time_msc, dtype=np.int64), level, 10 + side)
    return [int(v) for v in np.ceil((level + 1) * 5 * (0.5 + u))]


def build_book(
    spec: SymbolSpec, key: int, bid: float, ask: float, time_msc: int
) -> tuple[BookInfo, ...]:
    """``ticks_bookdepth`` sell and buy levels around ``bid``/``ask``."""
    depth, step = spec.ticks_bookdepth, spec.tick_size
    sells = [round(ask + i * step, spec.digits) for i in range(depth)]
    buys = [round(bid - i * step, spec.digits) for i in range(depth)]
    sell_vol, buy_vol = _volumes(key, time_msc, depth, 0), _volumes(key, time_msc, depth, 1)
    book = [
        BookInfo((int(BookType.SELL), p, v, float(v))) for p, v in zip(sells, sell_vol, strict=True)
    ]
    book.reverse()  # highest sell price first
    book += [
        BookInfo((int(BookType.BUY), p, v, float(v))) for p, v in zip(buys, buy_vol, strict=True)
    ]
    return tuple(book)
