"""Carrying out validated requests and triggered events: fills, closes, pending orders.

Bookkeeping (semantics §7.5):

* hedging: every opening fill is a new position whose ticket and identifier are the order's
  ticket; a fill naming ``position`` reduces that position (partial closes keep the ticket);
* netting: one position per symbol; the same side adds (volume-weighted open price), the
  opposite side reduces it (entry OUT) or, when larger, reverses it (entry INOUT), keeping the
  ticket and identifier;
* every fill writes a FILLED history order and a deal; profit appears only on exits, rounded
  to the account's currency digits, and moves the balance;
* CLOSE_BY writes a CLOSE_BY history order and two OUT_BY deals: the first position closes at
  the second's open price (carrying the whole profit), the second at its own open price.

Swaps, commissions and fees stay 0.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from mt5gate.constants import (
    DealEntry,
    DealReason,
    OrderFilling,
    OrderReason,
    OrderState,
    OrderTime,
    OrderType,
    PositionType,
)
from mt5gate.records import TradeDeal
from mt5gate.sim.broker.ledger import Ledger
from mt5gate.sim.broker.model import Order, Position
from mt5gate.sim.broker.money import Pricer
from mt5gate.sim.broker.tickets import TicketSource
from mt5gate.sim.broker.triggers import ExpiryQueue, TriggerIndex
from mt5gate.sim.config import AccountConfig, BrokerOptions
from mt5gate.sim.symbols import SymbolSpec

__all__ = ["Engine", "Fill", "SpecSource"]


class SpecSource(Protocol):
    """Symbol specifications by name."""

    def spec(self, symbol: str) -> SymbolSpec | None: ...


@dataclass(slots=True)
class Fill:
    """One execution: ``order`` (already ticketed) fills ``volume`` at ``price``."""

    order: Order
    volume: float
    price: float
    time_msc: int
    target: int = 0  # position ticket the fill closes (hedging close / explicit close)
    deal_reason: int = DealReason.EXPERT
    deal_comment: str | None = None  # None: the order's comment


class Engine:
    """Mutates one account's books; every change also updates the trigger index."""

    def __init__(
        self,
        account: AccountConfig,
        options: BrokerOptions,
        specs: SpecSource,
        pricer: Pricer,
        tickets: TicketSource,
    ) -> None:
        self.account = account
        self.options = options
        self.specs = specs
        self.pricer = pricer
        self.tickets = tickets
        self.ledger = Ledger()
        self.triggers = TriggerIndex()
        self.expiry = ExpiryQueue()
        self.balance = 0.0

    @property
    def hedging(self) -> bool:
        """Retail hedging account."""
        return self.account.margin_mode == 2

    def spec(self, symbol: str) -> SymbolSpec:
        """The symbol's specification (it exists: requests were validated)."""
        spec = self.specs.spec(symbol)
        assert spec is not None, symbol
        return spec

    # money -----------------------------------------------------------------------------------
    def deposit(self, amount: float, time_msc: int, comment: str) -> int:
        """A BALANCE deal (type 2, no symbol/order/position) moving the balance."""
        deal = TradeDeal(
            (self.tickets.next(), 0, time_msc // 1000, time_msc, 2, int(DealEntry.IN), 0, 0,
             int(DealReason.CLIENT), 0.0, 0.0, 0.0, 0.0, amount, 0.0, "", comment, "")
        )  # fmt: skip
        self.ledger.add_deal(deal)
        self.balance += amount
        return deal.ticket

    def _deal(
        self, fill: Fill, buys: bool, entry: int, position_id: int, volume: float, profit: float
    ) -> int:
        order = fill.order
        comment = order.comment if fill.deal_comment is None else fill.deal_comment
        profit = round(profit, self.account.currency_digits)
        deal = TradeDeal(
            (self.tickets.next(), order.ticket, fill.time_msc // 1000, fill.time_msc,
             0 if buys else 1, int(entry), order.magic, position_id, int(fill.deal_reason), volume,
             fill.price, 0.0, 0.0, profit, 0.0, order.symbol,
             comment[: self.options.deal_comment_max], "")
        )  # fmt: skip
        self.ledger.add_deal(deal)
        self.balance += profit
        return deal.ticket

    # fills -----------------------------------------------------------------------------------
    def execute(self, fill: Fill) -> int:
        """Fill an order into the positions; archives it FILLED; returns the deal ticket."""
        if fill.target:
            deal, position_id = self._reduce(fill, self.ledger.positions[fill.target])
        elif self.hedging:
            deal, position_id = self._open(fill)
        else:
            deal, position_id = self._net(fill)
        order = fill.order
        order.volume_current, order.position_id = 0.0, position_id
        record = order.record(OrderState.FILLED, fill.price, fill.time_msc)
        self.ledger.archive_order(fill.time_msc, record)
        return deal

    def _open(self, fill: Fill) -> tuple[int, int]:
        order = fill.order
        position = Position(
            order.ticket, fill.time_msc, fill.time_msc, PositionType(0 if order.is_buy else 1),
            order.magic, order.ticket, OrderReason.EXPERT, fill.volume, fill.price, order.sl,
            order.tp, order.symbol, order.comment,
        )  # fmt: skip
        self.ledger.add_position(position)
        self.triggers.set_position(position)
        return self._deal(
            fill, order.is_buy, DealEntry.IN, position.identifier, fill.volume, 0.0
        ), position.identifier

    def _net(self, fill: Fill) -> tuple[int, int]:
        held = self.ledger.netting_position(fill.order.symbol)
        if held is None:
            return self._open(fill)
        if held.is_buy == fill.order.is_buy:
            return self._add(fill, held)
        if fill.volume <= held.volume + 1e-12:
            return self._reduce(fill, held)
        return self._reverse(fill, held)

    def _add(self, fill: Fill, held: Position) -> tuple[int, int]:
        total = held.volume + fill.volume
        held.price_open = (held.price_open * held.volume + fill.price * fill.volume) / total
        held.volume = round(total, 8)
        held.time_update_msc = fill.time_msc
        if fill.order.sl or fill.order.tp:
            held.sl, held.tp = fill.order.sl, fill.order.tp
        self.ledger.touch(held)
        self.triggers.set_position(held)
        return self._deal(
            fill, held.is_buy, DealEntry.IN, held.identifier, fill.volume, 0.0
        ), held.identifier

    def _reduce(self, fill: Fill, held: Position) -> tuple[int, int]:
        volume = min(fill.volume, held.volume)
        profit = self.pricer.profit(
            self.spec(held.symbol), held.is_buy, volume, held.price_open, fill.price
        )
        deal = self._deal(fill, not held.is_buy, DealEntry.OUT, held.identifier, volume, profit)
        self._shrink(held, volume, fill.time_msc)
        return deal, held.identifier

    def _shrink(self, held: Position, volume: float, time_msc: int) -> None:
        remaining = round(held.volume - volume, 8)
        if remaining <= 1e-9:
            self.ledger.remove_position(held.ticket)
            self.triggers.drop_position(held.ticket)
            return
        held.volume, held.time_update_msc = remaining, time_msc
        self.ledger.touch(held)

    def _reverse(self, fill: Fill, held: Position) -> tuple[int, int]:
        spec = self.spec(held.symbol)
        profit = self.pricer.profit(spec, held.is_buy, held.volume, held.price_open, fill.price)
        rest = round(fill.volume - held.volume, 8)
        deal = self._deal(
            fill, fill.order.is_buy, DealEntry.INOUT, held.identifier, fill.volume, profit
        )
        held.type = PositionType(0 if fill.order.is_buy else 1)
        held.volume, held.price_open, held.time_update_msc = rest, fill.price, fill.time_msc
        held.sl, held.tp = fill.order.sl, fill.order.tp
        self.ledger.touch(held)
        self.triggers.set_position(held)
        return deal, held.identifier

    # closes by the server --------------------------------------------------------------------
    def close_position(
        self, position: Position, price: float, time_msc: int, reason: int, comment: str
    ) -> int:
        """Close a whole position at ``price`` for SL (4), TP (5) or stop-out (6)."""
        order = Order(
            self.tickets.next(), time_msc, OrderType.SELL if position.is_buy else OrderType.BUY,
            OrderTime.GTC, OrderFilling.FOK, position.magic, reason, position.volume,
            position.volume, price, 0.0, 0.0, 0.0, position.symbol, position.comment,
        )  # fmt: skip
        fill = Fill(order, position.volume, price, time_msc, position.ticket, reason, comment)
        return self.execute(fill)

    def close_by(self, order: Order, first: Position, second: Position, time_msc: int) -> int:
        """Close two opposite positions against each other (two OUT_BY deals)."""
        volume = min(first.volume, second.volume)
        spec = self.spec(first.symbol)
        profit = self.pricer.profit(spec, first.is_buy, volume, first.price_open, second.price_open)
        fill = Fill(order, volume, second.price_open, time_msc)
        self._deal(fill, not first.is_buy, DealEntry.OUT_BY, first.identifier, volume, profit)
        self._deal(fill, first.is_buy, DealEntry.OUT_BY, second.identifier, volume, 0.0)
        self._shrink(first, volume, time_msc)
        self._shrink(second, volume, time_msc)
        order.volume_current, order.position_id = 0.0, first.identifier
        order.position_by_id, order.price_open = second.identifier, second.price_open
        self.ledger.archive_order(
            time_msc, order.record(OrderState.FILLED, second.price_open, time_msc)
        )
        return order.ticket

    # pending orders --------------------------------------------------------------------------
    def place(self, order: Order) -> None:
        """Make ``order`` an active pending order."""
        self.ledger.orders[order.ticket] = order
        self.triggers.set_order(order)
        self.expiry.set(order.ticket, order.expiration_msc)

    def finish(self, order: Order, state: int, time_msc: int, price_current: float) -> None:
        """Take a pending order off the books into history (canceled, expired)."""
        del self.ledger.orders[order.ticket]
        self.triggers.drop_order(order.ticket)
        self.expiry.drop(order.ticket)
        self.ledger.archive_order(time_msc, order.record(state, price_current, time_msc))

    def fill_pending(self, order: Order, price: float, time_msc: int) -> int:
        """A triggered pending order fills at ``price`` (the triggering tick's)."""
        del self.ledger.orders[order.ticket]
        self.triggers.drop_order(order.ticket)
        self.expiry.drop(order.ticket)
        return self.execute(Fill(order, order.volume_current, price, time_msc))

    def activate_stop_limit(self, order: Order) -> None:
        """A stop-limit reached its trigger: it becomes a limit order at its stoplimit price
        (same ticket; ``price_stoplimit`` is cleared)."""
        order.type = OrderType.BUY_LIMIT if order.is_buy else OrderType.SELL_LIMIT
        order.price_open, order.price_stoplimit = order.price_stoplimit, 0.0
        self.triggers.set_order(order)

    def set_levels(self, position: Position, sl: float, tp: float, time_msc: int) -> None:
        """Replace a position's SL and TP (0 removes a level)."""
        position.sl, position.tp, position.time_update_msc = sl, tp, time_msc
        self.triggers.set_position(position)
