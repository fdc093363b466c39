"""Evidence of orders at the broker: which of our client ids the terminal shows, and how often.

Pure functions over what the terminal listed (open orders, history orders, deals), so the
reconciler and the sweep share one reading of the ledger and tests need no terminal:

* :func:`collect` groups the listed orders and deals by the client id their ``magic`` carries
  (our namespace only; other EAs' orders are ignored).
* :func:`audit` compares that with the ids the journal knows: an id the journal never saw is
  UNEXPECTED, an id on two different orders is a DUPLICATE.

Orders and deals the *broker* created for a position (SL, TP and stop-out closes) copy the
position's ``magic``; they are not orders we sent and never count as evidence or duplicates.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from mt5gate.constants import DealReason, OrderReason
from mt5gate.models import Deal, Order, Position
from mt5gate.orders.ids import DEFAULT_NAMESPACE, ClientOrderId

__all__ = ["Audit", "Evidence", "audit", "collect"]

_BROKER_ORDERS = frozenset({OrderReason.SL, OrderReason.TP, OrderReason.SO})
_BROKER_DEALS = frozenset({DealReason.SL, DealReason.TP, DealReason.SO})


@dataclass(frozen=True, slots=True)
class Evidence:
    """What the terminal shows of one client id: the orders sent with it, their deals, and
    the positions they opened (a position carries its opening order's ``magic``, and is
    current at once while the history can be late)."""

    orders: tuple[Order, ...] = ()
    deals: tuple[Deal, ...] = ()
    positions: tuple[Position, ...] = ()

    @property
    def present(self) -> bool:
        """Whether the order reached the broker (an order, deal or position carries the id)."""
        return bool(self.orders or self.deals or self.positions)

    @property
    def describes(self) -> bool:
        """Whether the evidence tells the order's own volume and price: an order or a deal
        carries the id, or a position it opened is untouched since (its update time is its
        open time). A position changed since (raised by a later order on a netting account,
        partly closed) holds the account's volume and average price, not the order's: the
        order is known to exist (never to be sent again), but its outcome waits for the
        history to show its deal."""
        if self.orders or self.deals:
            return True
        return any(p.time_update_msc == p.time_msc for p in self.positions)

    @property
    def tickets(self) -> frozenset[int]:
        """The distinct order tickets carrying the id (deals name theirs in ``order``; a
        position is identified by the ticket of the order that opened it)."""
        return (
            frozenset(o.ticket for o in self.orders)
            | {d.order for d in self.deals}
            | {p.identifier for p in self.positions}
        )

    @property
    def duplicate(self) -> bool:
        """More than one order carries the id: it was sent twice."""
        return len(self.tickets) > 1

    def summary(self) -> dict[str, object]:
        """A small JSON-ready description for the journal: tickets, volume, price, state."""
        deals = [{"ticket": d.ticket, "order": d.order, "volume": d.volume, "price": d.price,
                  "time_msc": d.time_msc} for d in self.deals]  # fmt: skip
        orders = [{"ticket": o.ticket, "state": o.state.name, "volume": o.volume_initial,
                   "price": o.price_open, "time_setup_msc": o.time_setup_msc}
                  for o in self.orders]  # fmt: skip
        positions = [{"ticket": p.ticket, "volume": p.volume, "price": p.price_open}
                     for p in self.positions]  # fmt: skip
        first = min(self.tickets, default=0)
        return {"order": first, "deal": deals[0]["ticket"] if deals else 0, "orders": orders,
                "deals": deals, "positions": positions}  # fmt: skip


@dataclass(slots=True)
class _Found:
    orders: dict[int, Order] = field(default_factory=dict)
    deals: dict[int, Deal] = field(default_factory=dict)
    positions: dict[int, Position] = field(default_factory=dict)

    def freeze(self) -> Evidence:
        return Evidence(tuple(self.orders.values()), tuple(self.deals.values()),
                        tuple(self.positions.values()))  # fmt: skip


def _sequence(magic: int, namespace: int, login: int) -> int | None:
    found = ClientOrderId.from_magic(magic, namespace, login=login)
    return None if found is None else found.sequence


def collect(
    login: int,
    orders: Iterable[Order],
    deals: Iterable[Deal] = (),
    positions: Iterable[Position] = (),
    *,
    namespace: int = DEFAULT_NAMESPACE,
) -> dict[int, Evidence]:
    """Evidence per client sequence in ``namespace``. An order listed both open and in the
    history (a race between two listings) counts once: orders, deals and positions are keyed
    by ticket."""
    found: dict[int, _Found] = {}
    for order in orders:
        sequence = _sequence(order.magic, namespace, login)
        if sequence is not None and order.reason not in _BROKER_ORDERS:
            found.setdefault(sequence, _Found()).orders[order.ticket] = order
    for deal in deals:
        sequence = _sequence(deal.magic, namespace, login)
        if sequence is not None and deal.reason not in _BROKER_DEALS:
            found.setdefault(sequence, _Found()).deals[deal.ticket] = deal
    for position in positions:
        sequence = _sequence(position.magic, namespace, login)
        if sequence is not None:
            found.setdefault(sequence, _Found()).positions[position.ticket] = position
    return {sequence: item.freeze() for sequence, item in found.items()}


@dataclass(frozen=True, slots=True)
class Audit:
    """What a sweep found wrong: ids the journal never saw, and ids on two or more orders."""

    unexpected: tuple[int, ...] = ()
    duplicates: tuple[int, ...] = ()

    @property
    def clean(self) -> bool:
        """Nothing unexpected, nothing duplicated."""
        return not self.unexpected and not self.duplicates


def audit(evidence: Mapping[int, Evidence], known: Iterable[int]) -> Audit:
    """Compare the ledger's ids with the journal's (``known`` sequences), ascending."""
    journal = set(known)
    unexpected = sorted(s for s in evidence if s not in journal)
    duplicates = sorted(s for s, found in evidence.items() if found.duplicate)
    return Audit(tuple(unexpected), tuple(duplicates))
