"""What the server does when prices move: pending orders and SL/TP fire, orders expire, and a
margin level at or below ``margin_so_so`` triggers stop-out.

Within one batch of ticks, events are handled in time order: the earliest expiry or trigger
first (an expiry before a trigger on the same tick; triggers on the same tick by ticket), each
at its own tick. Fills and closes use that tick's price (ask for buys, bid for sells; a stop
never fills better than the tick) and its ``time_msc``. Stop-out is evaluated once a batch has
been handled, on the resulting state, closing the biggest loser first until the level recovers.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from mt5gate.constants import AccountStopoutMode, DealReason, OrderState
from mt5gate.sim.broker.account import Books, Figures
from mt5gate.sim.broker.context import STOP_LIMIT_TYPES
from mt5gate.sim.broker.execution import Engine
from mt5gate.sim.broker.model import Position
from mt5gate.sim.broker.triggers import Hit

__all__ = ["Reactor"]

TickArray = npt.NDArray[Any]


class Reactor:
    """Applies ticks and the passage of time to one account's books."""

    def __init__(self, engine: Engine, books: Books) -> None:
        self.engine = engine
        self.books = books

    def expire_until(self, now_ms: int) -> None:
        """Expire every pending order whose expiry instant is at or before ``now_ms``."""
        head = self.engine.expiry.head()
        while head is not None and head[0] <= now_ms:
            self._expire(head[1], head[0])
            head = self.engine.expiry.head()

    def _expire(self, ticket: int, when_ms: int) -> None:
        order = self.engine.ledger.orders[ticket]
        bid, ask = self.books.quote(order.symbol)  # may sync the market, which may expire it
        if ticket in self.engine.ledger.orders:
            price = ask if order.is_buy else bid
            self.engine.finish(order, OrderState.EXPIRED, when_ms, price)

    def on_ticks(self, symbol: str, ticks: TickArray) -> None:
        """Handle a chronological batch of ``symbol``'s ticks."""
        if len(ticks) == 0:
            return
        times = ticks["time_msc"]
        if not self.engine.triggers.watches(symbol):  # no level to reach: only expiries
            self.expire_until(int(times[-1]))
            return
        start = 0
        while start < len(ticks):
            due = self._due_expiry(times, start)
            hit = self.engine.triggers.next_hit(symbol, ticks, start)
            if due is not None and (hit is None or due[0] <= hit.index):
                self._expire(due[1], due[2])
                start = due[0]
            elif hit is not None:
                self._fire(hit, ticks[hit.index])
                start = hit.index
            else:
                break
        self.expire_until(int(times[-1]))

    def _due_expiry(self, times: npt.NDArray[np.int64], start: int) -> tuple[int, int, int] | None:
        """(tick index, ticket, expiry ms) of an expiry falling inside the batch."""
        head = self.engine.expiry.head()
        if head is None or head[0] > times[-1]:
            return None
        index = start + int(np.searchsorted(times[start:], head[0], side="left"))
        return (index, head[1], head[0])

    def _fire(self, hit: Hit, tick: Any) -> None:
        level, engine = hit.level, self.engine
        bid, ask, time_msc = float(tick["bid"]), float(tick["ask"]), int(tick["time_msc"])
        if level.kind == "order":
            order = engine.ledger.orders[level.ticket]
            if order.type in STOP_LIMIT_TYPES:
                engine.activate_stop_limit(order)
            else:
                engine.fill_pending(order, ask if order.is_buy else bid, time_msc)
            return
        position = engine.ledger.positions[level.ticket]
        price = bid if position.is_buy else ask
        reason = DealReason.SL if level.kind == "sl" else DealReason.TP
        comment = self._comment(level.kind, level.level, position)
        engine.close_position(position, price, time_msc, reason, comment)

    def _comment(self, kind: str, level: float, position: Position) -> str:
        """The close deal's comment: the position's, or '[sl 1.08123]' when brokers write it."""
        if not self.engine.options.overwrite_sltp_comment:
            return position.comment
        digits = self.engine.spec(position.symbol).digits
        return f"[{kind} {level:.{digits}f}]"

    # stop-out -------------------------------------------------------------------------------
    def stopped_out(self, figures: Figures) -> bool:
        """Whether the account is at or beyond its stop-out level."""
        account = self.engine.account
        if figures.margin <= 0:
            return False
        if account.margin_so_mode == AccountStopoutMode.MONEY:
            return figures.equity <= account.margin_so_so
        return figures.margin_level <= account.margin_so_so

    def stop_out(self, time_msc: int) -> int:
        """Close the biggest losers while stopped out; returns how many were closed."""
        closed = 0
        engine = self.engine
        # without positions there is nothing to close, and no margin to call
        while engine.ledger.positions and self.stopped_out(
            self.books.figures(engine.balance, engine.account.credit)
        ):
            position = min(engine.ledger.positions.values(), key=self._profit)
            bid, ask = self.books.quote(position.symbol)
            price = bid if position.is_buy else ask
            engine.close_position(position, price, time_msc, DealReason.SO, position.comment)
            closed += 1
        return closed

    def _profit(self, position: Position) -> tuple[float, int]:
        bid, ask = self.books.quote(position.symbol)
        price = bid if position.is_buy else ask
        spec = self.engine.spec(position.symbol)
        profit = self.engine.pricer.profit(
            spec, position.is_buy, position.volume, position.price_open, price
        )
        return (profit, position.ticket)
