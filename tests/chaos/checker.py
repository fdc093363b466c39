"""The chaos checker: every journal the run used, the client's memory and the broker's ledger,
compared order by order and key by key.

A chaos run may go through several journals: the one in use may be replaced by an empty file or
by an old backup at a kill, and every one of them is kept (a *generation*, the first is 0). Ids
never repeat across generations, so every client id at the broker was issued by one lineage of
journals, and the union of the generations accounts for every order we ever placed. The counts
(all must be zero):

* ``duplicates``: a client id carried by more than one ledger order (sent twice), or a key with
  orders under more than one client id at the broker (placed twice);
* ``lost``: a key the client never learned a final outcome for, or one it was told executed
  that the ledger does not hold;
* ``unexpected``: a ledger order in our namespace that no journal issued, or whose journals
  never said it executed (rejected, proven absent), unless it was left unresolved in a journal
  that was then lost and the operator settled its key from the broker;
* ``unresolved``: orders of the last journal whose outcome is still open;
* ``mismatched``: an executed order whose journal names an order ticket the ledger has not
  under its id (a reply or reconciliation attributed to the wrong order);
* ``misreported``: one order reported as another: a key the client was told executed whose
  ledger order is not its own (another id, another key in its comment, another ticket, or not
  the key's request), or a ledger order whose id was issued for one key and carries another,
  or whose volume or side is not its key's request (a rogue body that reached the broker).

Each chaos order carries its key in its comment (``mg:<tag> chaos-<i>``): that is how the
checker, like the operator, tells which key an order at the broker belongs to without any
journal.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

from mt5gate.constants import OrderType
from mt5gate.errors import MT5TradeRejected, error_from_trade_result
from mt5gate.models import Deal, Order
from mt5gate.orders.evidence import Evidence, collect
from mt5gate.orders.ids import DEFAULT_NAMESPACE
from mt5gate.orders.journal import UNRESOLVED_KINDS, EventKind, JournalEvent, SqliteJournal
from tests.chaos.client import EXECUTED, REJECTED, SETTLED, Outcome
from tests.chaos.client import Final as Told
from tests.chaos.gateway import EXECUTED_KINDS, KEY_PREFIX, VOLUME

__all__ = [
    "FAR_FUTURE_S",
    "Ledger",
    "LedgerTerminal",
    "Verdict",
    "check",
    "key_of_comment",
    "ledger_of",
]

#: Far enough in the future for any history query (2100-01-01, seconds).
FAR_FUTURE_S: Final = 4_102_444_800
_K = EventKind


class LedgerTerminal(Protocol):
    """What the checker reads from a terminal: the three ledger listings."""

    def orders_get(self) -> Any:
        """Open (pending) orders."""
        ...

    def history_orders_get(self, date_from: Any, date_to: Any) -> Any:
        """History orders between two dates (seconds)."""
        ...

    def history_deals_get(self, date_from: Any, date_to: Any) -> Any:
        """Deals between two dates (seconds)."""
        ...


@dataclass(frozen=True, slots=True)
class Ledger:
    """Everything the broker holds for the account: open and history orders, and deals."""

    orders: tuple[Order, ...]
    deals: tuple[Deal, ...]


def ledger_of(terminal: LedgerTerminal) -> Ledger:
    """The whole ledger of the terminal's logged-in account (all time), as models.

    A failed listing raises: a checker that read nothing would find nothing wrong.
    """
    listings = {
        "orders_get": terminal.orders_get(),
        "history_orders_get": terminal.history_orders_get(0, FAR_FUTURE_S),
        "history_deals_get": terminal.history_deals_get(0, FAR_FUTURE_S),
    }
    for name, listed in listings.items():
        if listed is None:
            raise RuntimeError(f"the checker could not read the ledger: {name}() failed")
    orders = (*listings["orders_get"], *listings["history_orders_get"])
    return Ledger(
        tuple(Order.from_record(o) for o in orders),
        tuple(Deal.from_record(d) for d in listings["history_deals_get"]),
    )


def key_of_comment(comment: str | None) -> str | None:
    """The chaos key an order's comment carries (``mg:<tag> chaos-<i>``), if any."""
    words = (comment or "").split()
    return words[-1] if words and words[-1].startswith(KEY_PREFIX) else None


@dataclass(slots=True)
class Verdict:
    """The checker's counts, with the offending keys or client ids (for the report)."""

    keys: int = 0
    executed: int = 0
    rejected: int = 0
    settled: int = 0  # keys the operator settled from the broker after a journal was lost
    duplicates: int = 0
    lost: int = 0
    unexpected: int = 0
    unresolved: int = 0
    mismatched: int = 0  # executed, but the journal names an order the ledger has not for it
    misreported: int = 0  # one order reported as another (module docstring)
    unknown_outcomes: int = 0  # orders that went through UNKNOWN (evidence of faults)
    resubmitted: int = 0  # orders resent after a proven absence or a never-sent attempt
    flagged: int = 0  # UNEXPECTED findings of start-up audits (a journal behind the broker)
    generations: int = 1
    problems: list[str] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        """No duplicate, lost, unexpected, unresolved, mismatched or misreported order."""
        return not (
            self.duplicates or self.lost or self.unexpected or self.unresolved
            or self.mismatched or self.misreported
        )  # fmt: skip

    def flag(self, what: str, detail: str) -> None:
        """Count one problem (``what`` is a field name) and keep a few examples."""
        setattr(self, what, getattr(self, what) + 1)
        if len(self.problems) < 50:
            self.problems.append(f"{what}: {detail}")


def _outcome(events: Sequence[JournalEvent]) -> str:
    """An order's outcome by one journal: executed, rejected, unresolved, flagged or open.

    Executed once an ACKNOWLEDGED / RECONCILED_PRESENT event exists (a late reply may follow
    it); flagged when the journal only knows it from an audit (UNEXPECTED, no INTENT);
    rejected when the last event (late replies aside) is a REJECTED with a business retcode;
    unresolved when the last event leaves it open; open otherwise (proven absent, not sent,
    risk-rejected: nothing executed, and the key was not used up).
    """
    if any(e.kind in EXECUTED_KINDS for e in events):
        return "executed"
    if not any(e.kind is _K.INTENT for e in events):
        return "flagged"
    settled = [e for e in events if e.kind is not _K.LATE_RESULT] or list(events)
    last = settled[-1]
    if last.kind is _K.REJECTED and last.retcode is not None:
        error = error_from_trade_result(last.retcode, "", {})
        if isinstance(error, MT5TradeRejected):
            return "rejected"
    if events[-1].kind in UNRESOLVED_KINDS:
        return "unresolved"
    return "open"


@dataclass(frozen=True, slots=True)
class _View:
    """One client id as one journal generation knows it."""

    generation: int
    key: str | None
    outcome: str
    tickets: frozenset[int]
    request: Mapping[str, Any] | None
    kinds: frozenset[EventKind]


def _views(journal: SqliteJournal, login: int, generation: int) -> dict[int, _View]:
    views = {}
    for sequence in journal.known_sequences(login):
        events = journal.history(login, sequence)
        intent = next((e for e in events if e.kind is _K.INTENT), None)
        tickets = frozenset(e.order_ticket for e in events if e.order_ticket is not None)
        request = intent.request if intent is not None and isinstance(intent.request, Mapping) \
            else None  # fmt: skip
        views[sequence] = _View(generation, intent.idempotency_key if intent else None,
                                _outcome(events), tickets, request,
                                frozenset(e.kind for e in events))  # fmt: skip
    return views


@dataclass(slots=True)
class _World:
    """What the checker compares: the ledger's evidence, every generation's views, the
    client's record."""

    evidence: Mapping[int, Evidence]
    views: dict[int, list[_View]]  # client sequence -> its views, oldest generation first
    orders_of_key: dict[str, set[int]]  # key (by comment) -> client sequences at the broker
    told: Mapping[str, Told]
    settled_ids: set[int]  # ids the operator found and settled


def check(
    journals: Sequence[SqliteJournal],
    login: int,
    keys: Iterable[str],
    ledger: Ledger,
    *,
    told: Sequence[Told] | None = None,
    namespace: int = DEFAULT_NAMESPACE,
) -> Verdict:
    """Compare every journal generation (oldest first, the one in use last), the client's
    record ``told`` (what the client was told and the operator settled; without it, the last
    journal's outcomes stand for it) and the ledger: the verdict (module docstring)."""
    verdict = Verdict(generations=len(journals))
    evidence = collect(login, ledger.orders, ledger.deals, namespace=namespace)
    world = _World(evidence, {}, {}, {}, set())
    for generation, journal in enumerate(journals):
        for sequence, view in _views(journal, login, generation).items():
            world.views.setdefault(sequence, []).append(view)
    for sequence, found in evidence.items():
        for order in found.orders:
            key = key_of_comment(order.comment)
            if key is not None:
                world.orders_of_key.setdefault(key, set()).add(sequence)
    records = list(told) if told is not None else _told_by(journals[-1], login)
    world.told = _first_per_key(records)
    world.settled_ids = {c for r in records if r.outcome == SETTLED for c in r.client_ids}
    _count_faults(world.views, verdict)
    for key in keys:
        _check_key(key, world, verdict)
    for sequence, found in sorted(evidence.items()):
        _check_order(sequence, found, world, verdict)
    for client_id in journals[-1].unresolved(login):
        verdict.flag("unresolved", f"id {client_id.sequence} is "
                     f"{journals[-1].state(login, client_id)}")  # fmt: skip
    return verdict


def _first_per_key(records: Iterable[Told]) -> dict[str, Told]:
    first: dict[str, Told] = {}
    for record in records:
        first.setdefault(record.key, record)
    return first


def _told_by(journal: SqliteJournal, login: int) -> list[Told]:
    """Without the client's record: what the journal in use would have told it."""
    told = []
    for sequence, view in _views(journal, login, 0).items():
        if view.key is None or view.outcome not in ("executed", "rejected"):
            continue
        kind: Outcome = EXECUTED if view.outcome == "executed" else REJECTED
        told.append(Told(view.key, kind, (sequence,), tuple(sorted(view.tickets))))
    return told


def _count_faults(views: Mapping[int, list[_View]], verdict: Verdict) -> None:
    """Orders that went through UNKNOWN or were resent (distinct ids over every generation: a
    restored backup repeats its orders' histories), and the audits' UNEXPECTED findings."""
    kinds = {s: frozenset().union(*(v.kinds for v in vs)) for s, vs in views.items()}
    verdict.unknown_outcomes = sum(_K.UNKNOWN in k for k in kinds.values())
    verdict.resubmitted = sum(_K.RESUBMITTED in k for k in kinds.values())
    verdict.flagged = sum(_K.UNEXPECTED in v.kinds for vs in views.values() for v in vs)


def _check_key(key: str, world: _World, verdict: Verdict) -> None:
    """One key: final in the client's record, and its order(s) at the broker are its own."""
    verdict.keys += 1
    told = world.told.get(key)
    at_broker = world.orders_of_key.get(key, set())
    if len(at_broker) > 1:
        verdict.flag("duplicates", f"{key} was placed as {len(at_broker)} orders at the broker "
                     f"(ids {sorted(at_broker)})")  # fmt: skip
    if told is None:
        verdict.flag("lost", f"{key} has no final outcome")
        return
    if told.outcome == SETTLED:
        verdict.settled += 1
        return
    if told.outcome == REJECTED:
        verdict.rejected += 1
        if at_broker:
            verdict.flag("unexpected", f"{key} was rejected, yet the broker holds ids "
                         f"{sorted(at_broker)}")  # fmt: skip
        return
    verdict.executed += 1
    sequence = told.client_ids[0] if told.client_ids else 0
    found = world.evidence.get(sequence)
    if found is None or not found.present:
        verdict.flag("lost", f"{key} (id {sequence}) reported executed, nowhere in the ledger")
        return
    _check_reported(key, sequence, told, found, world, verdict)


def _check_reported(
    key: str, sequence: int, told: Told, found: Evidence, world: _World, verdict: Verdict
) -> None:
    """A key reported executed as id ``sequence``: that order must be the key's own."""
    issued = {v.key for v in world.views.get(sequence, []) if v.key is not None}
    if issued and issued != {key}:
        verdict.flag("misreported", f"{key} was reported as id {sequence}, which the journal "
                     f"issued for {sorted(issued)}")  # fmt: skip
    carried = {key_of_comment(o.comment) for o in found.orders} - {None}
    if carried and carried != {key}:
        verdict.flag("misreported", f"{key} was reported as id {sequence}, whose order "
                     f"carries {sorted(k for k in carried if k)}")  # fmt: skip
    ticket = told.orders[0] if told.orders else 0
    if ticket and found.orders and ticket not in found.tickets:
        verdict.flag("misreported", f"{key} was reported as order {ticket}, the ledger's "
                     f"order for id {sequence} is {sorted(found.tickets)}")  # fmt: skip


def _check_order(sequence: int, found: Evidence, world: _World, verdict: Verdict) -> None:
    """One id at the broker: issued by a journal, once, for the key it carries, and its
    journals say it executed (or its key was settled from the broker)."""
    if found.duplicate:
        verdict.flag("duplicates", f"id {sequence} on orders {sorted(found.tickets)}")
    issued = [v for v in world.views.get(sequence, []) if v.key is not None or v.request]
    if not issued:
        verdict.flag("unexpected", f"id {sequence} (orders {sorted(found.tickets)}) was issued "
                     "by no journal")  # fmt: skip
        return
    keys = {v.key for v in issued}
    carried = {key_of_comment(o.comment) for o in found.orders} - {None}
    if len(keys) > 1 or (carried and carried != keys):
        verdict.flag("misreported", f"id {sequence} was issued for {sorted(map(str, keys))}, "
                     f"its orders carry {sorted(map(str, carried))}")  # fmt: skip
    for order in found.orders:
        if not _is_request(order, issued[-1].request):
            verdict.flag("misreported", f"id {sequence}: order {order.ticket} ({order.type}, "
                         f"{order.volume_initial} lots) is not its key's request")  # fmt: skip
    _check_outcome(sequence, found, issued, world, verdict)


def _check_outcome(
    sequence: int, found: Evidence, issued: Sequence[_View], world: _World, verdict: Verdict
) -> None:
    if any(v.outcome == "executed" for v in issued):
        for view in issued:
            if view.outcome == "executed" and not view.tickets <= found.tickets:
                verdict.flag("mismatched", f"id {sequence}: journal {view.generation} names "
                             f"orders {sorted(view.tickets)}, the ledger has "
                             f"{sorted(found.tickets)}")  # fmt: skip
        return
    last = issued[-1]
    retired = last.generation < max(v.generation for vs in world.views.values() for v in vs)
    if last.outcome == "unresolved" and retired and sequence in world.settled_ids:
        return  # in flight when its journal was lost: the operator settled its key
    verdict.flag("unexpected", f"id {sequence} is in the ledger (orders "
                 f"{sorted(found.tickets)}) but {last.outcome} in journal "
                 f"{last.generation}")  # fmt: skip


def _is_request(order: Order, request: Mapping[str, Any] | None) -> bool:
    """Whether a ledger order is the request its id was issued for (side, volume, symbol)."""
    if request is None:
        return True
    side_ok = (order.type == OrderType.BUY) == (request.get("side") == "buy")
    volume = float(request.get("volume", VOLUME))
    return (
        side_ok and order.symbol == request.get("symbol", order.symbol)
        and math.isclose(order.volume_initial, volume, abs_tol=1e-9)
    )  # fmt: skip
