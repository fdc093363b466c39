"""Storage of one account's positions, pending orders, history orders and deals, with the
lookups the API's queries need (semantics §10).

Queries return tuples ascending by ticket (positions, orders) or in ledger order (history,
which is chronological). The ledger records which symbols' positions changed so the account
arithmetic can refresh its per-symbol sums lazily instead of rescanning on every tick.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

from mt5gate.records import TradeDeal, TradeOrder
from mt5gate.sim.broker.model import Order, Position
from mt5gate.sim.groups import matches_group

__all__ = ["Ledger", "select"]

T = TypeVar("T", Position, Order)


def select(
    items: Iterable[T], symbol: str | None, group: str | None, ticket: int | None
) -> list[T]:
    """Filter live objects like positions_get/orders_get: symbol wins over ticket (docs)."""
    chosen = sorted(items, key=lambda item: item.ticket)
    if symbol is not None:
        return [item for item in chosen if item.symbol == symbol]
    if group is not None:
        chosen = [item for item in chosen if matches_group(item.symbol, group)]
    if ticket is not None:
        chosen = [item for item in chosen if item.ticket == ticket]
    return chosen


class Ledger:
    """Positions, pending orders and the append-only history of one account."""

    def __init__(self) -> None:
        self.positions: dict[int, Position] = {}
        self.orders: dict[int, Order] = {}
        self.history_orders: list[tuple[int, TradeOrder]] = []  # (time_done_msc, order)
        self.deals: list[TradeDeal] = []
        self._orders_by_ticket: dict[int, list[TradeOrder]] = defaultdict(list)
        self._orders_by_position: dict[int, list[TradeOrder]] = defaultdict(list)
        self._deals_by_order: dict[int, list[TradeDeal]] = defaultdict(list)
        self._deals_by_position: dict[int, list[TradeDeal]] = defaultdict(list)
        self._by_symbol: dict[str, set[int]] = defaultdict(set)
        self.changed: set[str] = set()
        self.closed: set[int] = set()  # tickets of positions that no longer exist

    # positions -----------------------------------------------------------------------------
    def add_position(self, position: Position) -> None:
        """Open ``position``."""
        self.positions[position.ticket] = position
        self._by_symbol[position.symbol].add(position.ticket)
        self.changed.add(position.symbol)

    def remove_position(self, ticket: int) -> Position:
        """Close a position for good."""
        position = self.positions.pop(ticket)
        self._by_symbol[position.symbol].discard(ticket)
        self.changed.add(position.symbol)
        self.closed.add(ticket)
        return position

    def touch(self, position: Position) -> None:
        """Note that ``position``'s volume, side or price changed."""
        self.changed.add(position.symbol)

    def symbol_positions(self, symbol: str) -> list[Position]:
        """Open positions of ``symbol``, ascending by ticket."""
        return [self.positions[t] for t in sorted(self._by_symbol.get(symbol, ()))]

    def position_symbols(self) -> list[str]:
        """Symbols with at least one open position."""
        return [s for s, tickets in self._by_symbol.items() if tickets]

    def netting_position(self, symbol: str) -> Position | None:
        """The one position of ``symbol`` on a netting account, if any."""
        tickets = self._by_symbol.get(symbol)
        return self.positions[min(tickets)] if tickets else None

    # orders --------------------------------------------------------------------------------
    def archive_order(self, done_msc: int, record: TradeOrder) -> None:
        """Append a finished order to the history."""
        self.history_orders.append((done_msc, record))
        self._orders_by_ticket[record.ticket].append(record)
        if record.position_id:
            self._orders_by_position[record.position_id].append(record)

    def add_deal(self, deal: TradeDeal) -> None:
        """Append a deal to the history."""
        self.deals.append(deal)
        self._deals_by_order[deal.order].append(deal)
        if deal.position_id:
            self._deals_by_position[deal.position_id].append(deal)

    # history queries -----------------------------------------------------------------------
    def orders_in(self, from_s: int, to_s: int, visible_ms: int) -> Iterator[TradeOrder]:
        """History orders set up in ``[from_s, to_s]`` and done by ``visible_ms``."""
        for done_msc, order in self.history_orders:
            if done_msc <= visible_ms and from_s <= order.time_setup <= to_s:
                yield order

    def deals_in(self, from_s: int, to_s: int, visible_ms: int) -> Iterator[TradeDeal]:
        """Deals with ``from_s <= time <= to_s`` made by ``visible_ms``."""
        for deal in self.deals:
            if deal.time_msc <= visible_ms and from_s <= deal.time <= to_s:
                yield deal

    def orders_of(self, key: str, value: int, visible_ms: int) -> list[TradeOrder]:
        """History orders by ``ticket`` or ``position``."""
        table = self._orders_by_ticket if key == "ticket" else self._orders_by_position
        return _visible(table.get(value, []), visible_ms, lambda o: o.time_done_msc)

    def deals_of(self, key: str, value: int, visible_ms: int) -> list[TradeDeal]:
        """Deals by ``order`` ticket or ``position``."""
        table = self._deals_by_order if key == "order" else self._deals_by_position
        return _visible(table.get(value, []), visible_ms, lambda d: d.time_msc)


R = TypeVar("R", TradeOrder, TradeDeal)


def _visible(records: list[R], visible_ms: int, when: Callable[[R], int]) -> list[R]:
    return [r for r in records if when(r) <= visible_ms]
