"""Saving and restoring one account's books as plain JSON-compatible data.

The shared :class:`~mt5gate.sim.broker.tickets.TicketSource` is not part of an account's
snapshot (its owner saves it); restoring only makes sure it never reissues a restored ticket.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mt5gate.records import TradeDeal, TradeOrder
from mt5gate.sim.broker.execution import Engine
from mt5gate.sim.broker.ledger import Ledger
from mt5gate.sim.broker.model import Order, Position
from mt5gate.sim.broker.triggers import ExpiryQueue, TriggerIndex

__all__ = ["dump", "load"]

VERSION = 1


def dump(engine: Engine, request_id: int) -> dict[str, Any]:
    """The engine's state as a dict of lists, numbers and strings."""
    ledger = engine.ledger
    return {
        "version": VERSION,
        "balance": engine.balance,
        "request_id": request_id,
        "positions": [p.to_dict() for p in ledger.positions.values()],
        "orders": [o.to_dict() for o in ledger.orders.values()],
        "history_orders": [[done, list(order)] for done, order in ledger.history_orders],
        "deals": [list(deal) for deal in ledger.deals],
        "closed": sorted(ledger.closed),
    }


def load(engine: Engine, data: Mapping[str, Any]) -> int:
    """Rebuild the engine from :func:`dump` output; returns the request-id counter."""
    engine.ledger, engine.triggers, engine.expiry = Ledger(), TriggerIndex(), ExpiryQueue()
    engine.balance = float(data["balance"])
    for fields in data["positions"]:
        position = Position(**fields)
        engine.ledger.add_position(position)
        engine.triggers.set_position(position)
    for fields in data["orders"]:
        engine.place(Order(**fields))
    for done, values in data["history_orders"]:
        engine.ledger.archive_order(int(done), TradeOrder(values))
    for values in data["deals"]:
        engine.ledger.add_deal(TradeDeal(values))
    engine.ledger.closed = set(data["closed"])
    engine.tickets.ensure_above(_highest_ticket(engine.ledger))
    return int(data["request_id"])


def _highest_ticket(ledger: Ledger) -> int:
    tickets = [0, *ledger.positions, *ledger.orders, *ledger.closed]
    tickets += [order.ticket for _, order in ledger.history_orders]
    tickets += [deal.ticket for deal in ledger.deals]
    return max(tickets)
