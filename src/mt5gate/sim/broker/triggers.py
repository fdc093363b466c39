"""Trigger index: which pending orders and SL/TP levels a batch of ticks can fire, without
looking at the others.

Every level is filed under (symbol, price side, direction): a BUY_LIMIT fires when the ask falls
to its price ("ask", down), a BUY position's stop loss when the bid falls to it ("bid", down),
and so on. Each file is a list sorted by level, so for a batch the candidates are found by
bisecting with the batch's extremes: "up" levels <= the batch maximum, "down" levels >= the
batch minimum. Levels the batch does not reach are never looked at; ``examined`` counts the
candidates that were, which tests use as the structural cost measure.

Expirations live in a queue sorted by expiry instant.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right, insort
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from mt5gate.constants import OrderType
from mt5gate.sim.broker.model import Order, Position

__all__ = ["ExpiryQueue", "Hit", "Level", "TriggerIndex", "first_hit"]

TickArray = npt.NDArray[Any]
Key = tuple[str, str, bool]  # symbol, "bid" | "ask", fires upwards
Entry = tuple[float, int, str]  # level, ticket, kind: "order" | "sl" | "tp"

_ORDER_SIDES: dict[int, tuple[str, bool]] = {
    OrderType.BUY_LIMIT: ("ask", False),
    OrderType.BUY_STOP: ("ask", True),
    OrderType.BUY_STOP_LIMIT: ("ask", True),
    OrderType.SELL_LIMIT: ("bid", True),
    OrderType.SELL_STOP: ("bid", False),
    OrderType.SELL_STOP_LIMIT: ("bid", False),
}


@dataclass(frozen=True, slots=True)
class Level:
    """A filed trigger level."""

    symbol: str
    side: str
    up: bool
    level: float
    ticket: int
    kind: str


@dataclass(frozen=True, slots=True)
class Hit:
    """A level that fires at tick ``index`` of a batch."""

    index: int
    level: Level


def first_hit(ticks: TickArray, start: int, level: Level) -> int:
    """Index of the first tick from ``start`` on that reaches ``level``, or -1."""
    prices = ticks[level.side][start:]
    reached = prices >= level.level if level.up else prices <= level.level
    index = int(np.argmax(reached)) if len(reached) else 0
    return start + index if len(reached) and reached[index] else -1


class TriggerIndex:
    """Sorted trigger levels per symbol, side and direction."""

    def __init__(self) -> None:
        self._files: dict[Key, list[Entry]] = defaultdict(list)
        self._owned: dict[tuple[str, int], list[tuple[Key, Entry]]] = {}
        self.examined = 0

    def _file(self, owner: tuple[str, int], key: Key, entry: Entry) -> None:
        insort(self._files[key], entry)
        self._owned.setdefault(owner, []).append((key, entry))

    def _drop(self, owner: tuple[str, int]) -> None:
        for key, entry in self._owned.pop(owner, []):
            entries = self._files[key]
            del entries[bisect_left(entries, entry)]

    def set_order(self, order: Order) -> None:
        """File (or re-file) a pending order's trigger price."""
        self.drop_order(order.ticket)
        side, up = _ORDER_SIDES[order.type]
        self._file(
            ("o", order.ticket), (order.symbol, side, up), (order.price_open, order.ticket, "order")
        )

    def drop_order(self, ticket: int) -> None:
        """Forget a pending order."""
        self._drop(("o", ticket))

    def set_position(self, position: Position) -> None:
        """File (or re-file) a position's SL and TP."""
        self.drop_position(position.ticket)
        side = "bid" if position.is_buy else "ask"
        owner = ("p", position.ticket)
        if position.sl:
            self._file(
                owner,
                (position.symbol, side, not position.is_buy),
                (position.sl, position.ticket, "sl"),
            )
        if position.tp:
            self._file(
                owner,
                (position.symbol, side, position.is_buy),
                (position.tp, position.ticket, "tp"),
            )

    def drop_position(self, ticket: int) -> None:
        """Forget a position's levels."""
        self._drop(("p", ticket))

    def watches(self, symbol: str) -> bool:
        """Whether any level of ``symbol`` is filed (a batch of its ticks may reach one)."""
        files = self._files
        return any(files.get((symbol, side, up)) for side in ("bid", "ask") for up in (True, False))

    def candidates(self, symbol: str, ticks: TickArray) -> list[Level]:
        """Levels of ``symbol`` the batch's price range reaches."""
        found: list[Level] = []
        for side in ("bid", "ask"):
            up = self._files.get((symbol, side, True), [])
            down = self._files.get((symbol, side, False), [])
            if not (up or down):  # most symbols have no levels: skip the price range
                continue
            prices = ticks[side]
            low, high = float(prices.min()), float(prices.max())
            found += _levels(symbol, side, True, up[: bisect_right(up, (high, 1 << 62, "~"))])
            found += _levels(symbol, side, False, down[bisect_left(down, (low, -1, "")) :])
        self.examined += len(found)
        return found

    def next_hit(self, symbol: str, ticks: TickArray, start: int) -> Hit | None:
        """The earliest level reached from tick ``start`` on (ties: lowest ticket)."""
        best: Hit | None = None
        for level in self.candidates(symbol, ticks[start:]):
            index = first_hit(ticks, start, level)
            if index >= 0 and (
                best is None or (index, level.ticket) < (best.index, best.level.ticket)
            ):
                best = Hit(index, level)
        return best

    def size(self) -> int:
        """Number of filed levels."""
        return sum(len(entries) for entries in self._files.values())


def _levels(symbol: str, side: str, up: bool, entries: list[Entry]) -> list[Level]:
    return [Level(symbol, side, up, level, ticket, kind) for level, ticket, kind in entries]


class ExpiryQueue:
    """Pending orders by expiry instant (ms), earliest first."""

    def __init__(self) -> None:
        self._queue: list[tuple[int, int]] = []
        self._when: dict[int, int] = {}

    def set(self, ticket: int, expiry_ms: int) -> None:
        """Schedule (or reschedule, or with 0 unschedule) an order's expiry."""
        self.drop(ticket)
        if expiry_ms:
            insort(self._queue, (expiry_ms, ticket))
            self._when[ticket] = expiry_ms

    def drop(self, ticket: int) -> None:
        """Unschedule an order."""
        when = self._when.pop(ticket, None)
        if when is not None:
            del self._queue[bisect_left(self._queue, (when, ticket))]

    def head(self) -> tuple[int, int] | None:
        """(expiry_ms, ticket) of the next order to expire."""
        return self._queue[0] if self._queue else None
