"""The order core: an order's life as data, its state folded from its events, and what to do next.

Pure: no I/O, no clock, no terminal. The pipeline (:mod:`~mt5gate.orders.pipeline`) performs
what :func:`decide` says; the stores (:mod:`~mt5gate.orders.journal`) refuse what
:data:`TRANSITIONS` does not allow, in the same transaction as the write.

An order is a sequence of :class:`EventKind` facts. Its *state* is what :func:`fold` makes of
them: the last kind (its phase), the request its INTENT stored, the request last sent, the
broker time of that send and the account's state just before it (the absence proof needs it),
and the first final outcome. The table below is the whole life cycle::

    (new) ─ INTENT ─┬─ SENT ─┬─ ACKNOWLEDGED ·                    · final
                    │        ├─ REJECTED (final retcode) ·
                    │        ├─ REJECTED (not executed) ── RESUBMITTED ─ SENT ...
                    │        └─ UNKNOWN ─┬─ RECONCILED_PRESENT ·
                    │                    ├─ RECONCILED_ABSENT ─ RESUBMITTED ─ SENT ...
                    │                    ├─ CONFLICT ·  (evidence that is not this request)
                    │                    └─ LATE_RESULT ─ ...
                    ├─ RISK_REJECTED ── RESUBMITTED ...
                    └─ RECONCILED_ABSENT (never sent)
    any ─ DUPLICATE · ; (new) ─ UNEXPECTED · (the sweep: ids the journal cannot account for)

The table was first derived by replaying every journal history the test suite produced, then
closed by reasoning (a late reply can land after any reconciliation verdict).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType
from typing import Any, Final, Protocol

from mt5gate.constants import TradeAction, TradeRetcode
from mt5gate.errors import MT5TradeRejected, Outcome, error_from_trade_result, trade_outcome

__all__ = [
    "BLOCKING_KINDS",
    "FINAL_KINDS",
    "TRANSITIONS",
    "UNRESOLVED_KINDS",
    "EventKind",
    "Fact",
    "OrderState",
    "Replay",
    "fold",
    "legal",
    "replay_step",
]


class EventKind(StrEnum):
    """What happened to an order; stored by name."""

    INTENT = "INTENT"
    SENT = "SENT"
    ACKNOWLEDGED = "ACKNOWLEDGED"
    REJECTED = "REJECTED"
    UNKNOWN = "UNKNOWN"
    LATE_RESULT = "LATE_RESULT"
    RECONCILED_PRESENT = "RECONCILED_PRESENT"
    RECONCILED_ABSENT = "RECONCILED_ABSENT"
    RESUBMITTED = "RESUBMITTED"
    UNEXPECTED = "UNEXPECTED"
    DUPLICATE = "DUPLICATE"
    RISK_REJECTED = "RISK_REJECTED"
    CONFLICT = "CONFLICT"


K = EventKind

#: Last events that leave an order's outcome open: it may be at the broker, and nobody knows
#: yet. RESUBMITTED is one: a resent order with no recorded result is as open as a SENT one.
UNRESOLVED_KINDS: Final = frozenset({K.INTENT, K.SENT, K.UNKNOWN, K.RESUBMITTED})

#: Findings that block the order's key until a person looks: the broker holds something the
#: journal cannot account for.
BLOCKING_KINDS: Final = frozenset({K.DUPLICATE, K.UNEXPECTED, K.CONFLICT})

#: Kinds after which nothing is ever sent for the order again.
FINAL_KINDS: Final = frozenset({K.ACKNOWLEDGED, K.RECONCILED_PRESENT, *BLOCKING_KINDS})

_AFTER_SEND: Final = frozenset(
    {K.ACKNOWLEDGED, K.REJECTED, K.UNKNOWN, K.LATE_RESULT, K.RECONCILED_PRESENT,
     K.RECONCILED_ABSENT, K.CONFLICT, K.DUPLICATE}
)  # fmt: skip
#: Before anything went out again: the order may be re-armed (sent once more, same id), or
#: found at the broker after all (the journal was behind it: restored from a backup).
_REARMABLE: Final = frozenset(
    {K.RESUBMITTED, K.RISK_REJECTED, K.DUPLICATE, K.LATE_RESULT, K.RECONCILED_PRESENT,
     K.CONFLICT}
)  # fmt: skip

#: Which kind may follow which (``None``: the order's first event). A store refuses the rest.
TRANSITIONS: Final[Mapping[EventKind | None, frozenset[EventKind]]] = MappingProxyType(
    {
        None: frozenset({K.INTENT, K.UNEXPECTED}),
        K.INTENT: frozenset({K.SENT, K.RISK_REJECTED, K.RECONCILED_ABSENT, K.DUPLICATE}),
        K.SENT: _AFTER_SEND,
        K.RESUBMITTED: frozenset({K.SENT, K.RECONCILED_ABSENT, K.LATE_RESULT, K.DUPLICATE}),
        K.UNKNOWN: _AFTER_SEND,
        K.LATE_RESULT: _AFTER_SEND | {K.RESUBMITTED},
        K.REJECTED: _REARMABLE,  # a final rejection is never re-armed: replay_step says so
        K.RISK_REJECTED: _REARMABLE,
        K.RECONCILED_ABSENT: _REARMABLE,
        K.ACKNOWLEDGED: frozenset({K.LATE_RESULT, K.DUPLICATE}),
        K.RECONCILED_PRESENT: frozenset({K.LATE_RESULT, K.DUPLICATE}),
        K.CONFLICT: frozenset({K.LATE_RESULT, K.DUPLICATE}),
        K.DUPLICATE: frozenset({K.LATE_RESULT}),
        K.UNEXPECTED: frozenset({K.DUPLICATE, K.LATE_RESULT}),
    }
)


def legal(previous: EventKind | None, kind: EventKind) -> bool:
    """Whether ``kind`` may follow ``previous`` (``None``: a new order)."""
    return kind in TRANSITIONS.get(previous, frozenset())


class Fact(Protocol):
    """What :func:`fold` reads of a journal event (``JournalEvent`` has it all)."""

    @property
    def kind(self) -> EventKind: ...

    @property
    def request(self) -> Any: ...

    @property
    def result(self) -> Any: ...

    @property
    def retcode(self) -> int | None: ...

    @property
    def note(self) -> str: ...


@dataclass(frozen=True, slots=True)
class OrderState:
    """One order as its events describe it (see :func:`fold`)."""

    #: the kind of the last event (``None`` for an order with no events)
    phase: EventKind | None
    #: what the caller asked, as its INTENT stored it (idempotency compares it)
    intent: Mapping[str, Any] | None
    #: the MT5 request last sent or resubmitted (with our id in ``magic``)
    sent: Mapping[str, Any] | None
    #: the broker time (msc) of the quote the last send used; 0 when unknown
    sent_ms: int
    #: the account's state just before the last send (the absence proof compares it)
    before: Mapping[str, Any] | None
    #: the event that settled the outcome for good, if any (executed or a final rejection)
    outcome: Fact | None
    #: how many times the order was sent again after a proven non-execution
    resends: int
    #: the first finding that blocks the key (DUPLICATE, UNEXPECTED, CONFLICT), if any
    flag: EventKind | None = None

    @property
    def unresolved(self) -> bool:
        """The outcome is open: the order may be at the broker and nobody knows yet."""
        return self.phase in UNRESOLVED_KINDS

    @property
    def never_sent(self) -> bool:
        """The last attempt provably never left: SENT is on disk before every order_send."""
        return self.phase in (K.INTENT, K.RESUBMITTED)

    @property
    def blocked(self) -> bool:
        """The broker showed something the journal cannot account for: the key is blocked."""
        return self.flag is not None

    @property
    def executed(self) -> bool:
        """The order reached the broker and executed (or was placed)."""
        return self.outcome is not None and executed(self.outcome)

    @property
    def rejected(self) -> bool:
        """A final business rejection used the key up."""
        return self.outcome is not None and not executed(self.outcome)


def executed(fact: Fact) -> bool:
    """Whether ``fact`` says the order executed: an acknowledgement, a reconciliation that
    found it, or a late reply with a success retcode."""
    if fact.kind in (K.ACKNOWLEDGED, K.RECONCILED_PRESENT):
        return True
    return fact.kind is K.LATE_RESULT and succeeded(fact.retcode)


def succeeded(retcode: int | None) -> bool:
    """A trade retcode that means executed or placed (10008, 10009, 10010)."""
    return retcode is not None and trade_outcome(retcode) is Outcome.EXECUTED


def final_rejection(fact: Fact) -> bool:
    """A reply that refused the order for good (a business rejection, not a requote or a
    failure before sending): the key is used up."""
    if fact.kind not in (K.REJECTED, K.LATE_RESULT) or fact.retcode is None:
        return False
    return isinstance(error_from_trade_result(fact.retcode, "", {}), MT5TradeRejected)


def fold(events: Sequence[Fact]) -> OrderState:
    """The state of an order from its events, oldest first."""
    intent: Mapping[str, Any] | None = None
    sent: Mapping[str, Any] | None = None
    sent_ms, before, outcome, resends, flag = 0, None, None, 0, None
    for event in events:
        kind = event.kind
        if flag is None and kind in BLOCKING_KINDS:
            flag = kind
        if kind is K.INTENT and isinstance(event.request, Mapping):
            intent = event.request
        elif kind in (K.SENT, K.RESUBMITTED) and isinstance(event.request, Mapping):
            sent = event.request
            resends += kind is K.RESUBMITTED
        if kind is K.SENT and isinstance(event.result, Mapping):
            sent_ms = int(event.result.get("server_ms") or 0)
            before = event.result.get("before")
        if outcome is None and (executed(event) or final_rejection(event)):
            outcome = event
    phase = events[-1].kind if events else None
    return OrderState(phase, intent, sent, sent_ms, before, outcome, resends, flag)


class Replay(StrEnum):
    """What a call with a key seen before does (:func:`replay_step`)."""

    RETURN = "return"  # the first executed outcome again; nothing is sent
    RAISE = "raise"  # the first final rejection again; nothing is sent
    BLOCKED = "blocked"  # the key is blocked until a person looks
    RECONCILE = "reconcile"  # the outcome is open: look for it first
    SEND = "send"  # provably never executed: send now, with the same client id


def replay_step(state: OrderState) -> Replay:
    """The decision for a replayed key, from the order's state alone."""
    if state.blocked:
        return Replay.BLOCKED
    if state.outcome is not None:
        return Replay.RETURN if executed(state.outcome) else Replay.RAISE
    if state.unresolved or state.phase is K.LATE_RESULT:
        return Replay.RECONCILE
    return Replay.SEND


# ------------------------------------------------------------------------- request matching

#: Actions whose order carries our id in ``magic`` (found by id); the rest are found by state.
BY_MAGIC: Final = frozenset({int(TradeAction.DEAL), int(TradeAction.PENDING)})
_BUY_TYPES: Final = frozenset({0, 2, 4, 6})  # BUY, BUY_LIMIT, BUY_STOP, BUY_STOP_LIMIT


def _close(a: float, b: object, tolerance: float = 1e-8) -> bool:
    return isinstance(b, int | float) and math.isclose(a, float(b), abs_tol=tolerance)


def order_matches(request: Mapping[str, Any], *, symbol: str, type_: int, volume: float,
                  price: float | None = None) -> bool:  # fmt: skip
    """Whether an order at the broker is the one ``request`` describes: same symbol, type and
    initial volume, and for a pending order the same price. Anything else carrying our id is
    a conflict, never a match."""
    if symbol != request.get("symbol") or type_ != int(request.get("type", -1)):
        return False
    if not _close(volume, request.get("volume")):
        return False
    pending = int(request.get("action", 0)) == int(TradeAction.PENDING)
    return not pending or price is None or _close(price, request.get("price"), 1e-6)


def deals_match(request: Mapping[str, Any], *, symbol: str, buys: bool, volume: float) -> bool:
    """Whether deals carrying our id fit ``request``: same symbol, the request's side, and no
    more volume in all than it asked for (partial fills are fine)."""
    if symbol != request.get("symbol"):
        return False
    if buys != (int(request.get("type", -1)) in _BUY_TYPES):
        return False
    asked = request.get("volume")
    return isinstance(asked, int | float) and volume <= float(asked) + 1e-8


def retcode_of_presence(has_deals: bool) -> int:
    """The retcode a reconciled order reports: DONE when it dealt, PLACED otherwise."""
    return int(TradeRetcode.DONE if has_deals else TradeRetcode.PLACED)
