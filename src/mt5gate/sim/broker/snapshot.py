"""Saving and restoring one account's books as plain JSON-compatible data: whole (:func:`dump`,
:func:`load`), or as records of what changed (:func:`changes`, replayed by :func:`apply`).

The shared :class:`~mt5gate.sim.broker.tickets.TicketSource` is not part of an account's
snapshot (its owner saves it); restoring only makes sure it never reissues a restored ticket.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from operator import attrgetter
from typing import Any

from mt5gate.records import TradeDeal, TradeOrder
from mt5gate.sim.broker.execution import Engine
from mt5gate.sim.broker.ledger import Ledger
from mt5gate.sim.broker.model import Order, Position
from mt5gate.sim.broker.triggers import ExpiryQueue, TriggerIndex

__all__ = ["Mirror", "apply", "as_dump", "changes", "dump", "empty", "load"]

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


_POSITION_FIELDS = attrgetter(*(f.name for f in dataclasses.fields(Position)))
_ORDER_FIELDS = attrgetter(*(f.name for f in dataclasses.fields(Order)))


@dataclass
class Mirror:
    """What a state file holds of one account, so the next record carries only the changes.

    Open positions and pending orders are mutable (compared field by field); history orders
    and deals are append-only (compared by count); closed tickets only ever grow.
    """

    balance: float | None = None
    request_id: int | None = None
    positions: dict[int, tuple[Any, ...]] = field(default_factory=dict)
    orders: dict[int, tuple[Any, ...]] = field(default_factory=dict)
    n_history_orders: int = 0
    n_deals: int = 0
    closed: set[int] = field(default_factory=set)


def changes(engine: Engine, request_id: int, mirror: Mirror) -> dict[str, Any]:
    """What changed in the engine since ``mirror`` (everything, against a new Mirror), as a
    record :func:`apply` replays; ``mirror`` is brought up to date. Empty when nothing did."""
    ledger = engine.ledger
    out: dict[str, Any] = {}
    if engine.balance != mirror.balance or request_id != mirror.request_id:
        out["balance"], out["request_id"] = engine.balance, request_id
        mirror.balance, mirror.request_id = engine.balance, request_id
    _live_changes(out, "positions", ledger.positions, mirror.positions, _POSITION_FIELDS)
    _live_changes(out, "orders", ledger.orders, mirror.orders, _ORDER_FIELDS)
    if len(ledger.history_orders) != mirror.n_history_orders:
        fresh = ledger.history_orders[mirror.n_history_orders :]
        out["history_orders"] = [[done, list(order)] for done, order in fresh]
        mirror.n_history_orders = len(ledger.history_orders)
    if len(ledger.deals) != mirror.n_deals:
        out["deals"] = [list(deal) for deal in ledger.deals[mirror.n_deals :]]
        mirror.n_deals = len(ledger.deals)
    if len(ledger.closed) != len(mirror.closed):
        out["closed"] = sorted(_new_closed(ledger.closed, mirror.closed, out))
        mirror.closed.update(out["closed"])
    return out


def _live_changes(
    out: dict[str, Any],
    key: str,
    live: Mapping[int, Position] | Mapping[int, Order],
    seen: dict[int, tuple[Any, ...]],
    values: attrgetter[Any],
) -> None:
    """Upserts (``key``) and removals (``key + '_gone'``) of open positions or orders."""
    put = []
    for ticket, item in live.items():
        now = values(item)
        if seen.get(ticket) != now:
            seen[ticket] = now
            put.append(item.to_dict())
    # every live ticket is in ``seen`` now: anything more there is gone (no scan otherwise)
    gone = [ticket for ticket in seen if ticket not in live] if len(seen) > len(live) else []
    for ticket in gone:
        del seen[ticket]
    if put:
        out[key] = put
    if gone:
        out[key + "_gone"] = gone


def _new_closed(closed: set[int], seen: set[int], out: Mapping[str, Any]) -> set[int]:
    """Tickets closed since ``seen``: usually the positions this record removes."""
    likely = {t for t in out.get("positions_gone", ()) if t in closed and t not in seen}
    return likely if len(seen) + len(likely) == len(closed) else closed - seen


def empty() -> dict[str, Any]:
    """An account with nothing yet, for :func:`apply` to replay records onto."""
    return {"positions": {}, "orders": {}, "history_orders": [], "deals": [], "closed": set()}


def apply(account: dict[str, Any], record: Mapping[str, Any]) -> None:
    """Replay one :func:`changes` record onto ``account`` (from :func:`empty`)."""
    if "balance" in record:
        account["balance"], account["request_id"] = record["balance"], record["request_id"]
    for key in ("positions", "orders"):
        for fields_ in record.get(key, ()):
            account[key][int(fields_["ticket"])] = fields_
        for ticket in record.get(key + "_gone", ()):
            account[key].pop(int(ticket), None)
    account["history_orders"].extend(record.get("history_orders", ()))
    account["deals"].extend(record.get("deals", ()))
    account["closed"].update(record.get("closed", ()))


def as_dump(account: Mapping[str, Any]) -> dict[str, Any]:
    """An :func:`apply`-built account in :func:`dump`'s shape, for :func:`load`."""
    return {
        "version": VERSION,
        "balance": account["balance"],
        "request_id": account["request_id"],
        "positions": list(account["positions"].values()),
        "orders": list(account["orders"].values()),
        "history_orders": account["history_orders"],
        "deals": account["deals"],
        "closed": sorted(account["closed"]),
    }
