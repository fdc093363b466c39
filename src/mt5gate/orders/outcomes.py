"""What an order's outcome looks like to its caller: results read back from the journal or the
ledger, and the errors and statuses that say what happened and what to do.

Pure functions over the order core's facts (:mod:`~mt5gate.orders.core`) and evidence
(:mod:`~mt5gate.orders.evidence`); the pipeline calls them, nothing here does I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict
from typing import Any, Final

from mt5gate.constants import TradeRetcode
from mt5gate.errors import (
    MT5Error,
    MT5OrderBlockedError,
    MT5OrderOutcomeUnknown,
    MT5StateError,
    MT5TradeError,
    MT5TradeRetryable,
    Outcome,
    error_from_trade_result,
)
from mt5gate.models import OrderOutcome, OrderResult, OrderStatus
from mt5gate.orders.core import EventKind, Fact, OrderState, executed, retcode_of_presence
from mt5gate.orders.evidence import Evidence
from mt5gate.orders.ids import ClientOrderId

__all__ = [
    "blocked_key",
    "evidence_result",
    "evidence_retcode",
    "order_status",
    "proven_absent",
    "rejection_note",
    "result_fields",
    "stored_rejection",
    "stored_result",
    "unknown_outcome",
    "with_id",
]

K = EventKind


def evidence_retcode(evidence: Evidence) -> int:
    return retcode_of_presence(bool(evidence.deals))


def evidence_result(evidence: Evidence, client_id: ClientOrderId) -> OrderResult:
    """An OrderResult read from the ledger (the reply was lost): tickets, volume, price."""
    deal = evidence.deals[0] if evidence.deals else None
    order = min(evidence.orders, key=lambda o: o.ticket) if evidence.orders else None
    position = evidence.positions[0] if evidence.positions else None
    if deal is not None:
        volume, price = sum(d.volume for d in evidence.deals), deal.price
    elif order is not None:
        volume, price = order.volume_initial, order.price_open
    else:  # a position untouched since this order opened it (Evidence.describes)
        volume, price = (position.volume, position.price_open) if position else (0.0, 0.0)
    ticket = order.ticket if order else (deal.order if deal else (position.identifier
                                                                  if position else 0))  # fmt: skip
    return OrderResult(evidence_retcode(evidence), ticket, deal.ticket if deal else 0, volume,
                       price, 0.0, 0.0, "reconciled", 0, client_id.sequence)  # fmt: skip


def result_fields(result: OrderResult) -> dict[str, Any]:
    """What the journal keeps of an OrderResult (an OrderSendResult's fields)."""
    fields = asdict(result)
    del fields["client_id"]
    return fields


def stored_result(event: Fact, client_id: ClientOrderId) -> OrderResult:
    """The first outcome again, from what the journal stored of it."""
    r = event.result if isinstance(event.result, Mapping) else {}
    if "retcode" in r:
        return OrderResult(
            int(r["retcode"]), int(r.get("order", 0)), int(r.get("deal", 0)),
            float(r.get("volume", 0.0)), float(r.get("price", 0.0)), float(r.get("bid", 0.0)),
            float(r.get("ask", 0.0)), str(r.get("comment", "")), int(r.get("request_id", 0)),
            client_id.sequence,
        )  # fmt: skip
    retcode = event.retcode or int(TradeRetcode.DONE)
    return OrderResult(retcode, int(r.get("order", 0)), int(r.get("deal", 0)), 0.0, 0.0, 0.0,
                       0.0, "reconciled", 0, client_id.sequence)  # fmt: skip


def stored_rejection(event: Fact, client_id: ClientOrderId) -> MT5Error:
    r = event.result if isinstance(event.result, Mapping) else {}
    comment, request = str(r.get("comment", "")), r.get("request") or {}
    error = error_from_trade_result(event.retcode or 0, comment, request)
    if error is None:  # cannot happen: final rejections are rejections by definition
        raise MT5StateError(f"order {client_id.comment_tag}: a stored rejection says success")
    return with_id(error, client_id)


def rejection_note(error: MT5Error) -> str:
    outcome = getattr(error, "outcome", Outcome.GATE)
    return f"{outcome}: {error.message}"


def with_id(error: MT5Error, client_id: ClientOrderId) -> MT5Error:
    """``error`` telling which order it is about (trade errors carry ``client_id``)."""
    if isinstance(error, MT5TradeError):
        error.client_id = client_id.sequence
    return error


def blocked_key(
    client_id: ClientOrderId, key: str | None, state: OrderState
) -> MT5OrderBlockedError:
    what = (state.flag or K.UNEXPECTED).value.lower()
    return MT5OrderBlockedError(
        f"order {client_id.comment_tag} (key {key!r}) was found on the broker {what}; the key "
        "is blocked and nothing was sent",
        hint="Inspect it with `mt5gate journal show` and settle it at the broker by hand; "
        "sending again cannot help.",
    )


def unknown_outcome(
    client_id: ClientOrderId, request: Mapping[str, Any], cause: MT5OrderOutcomeUnknown | None
) -> MT5OrderOutcomeUnknown:
    return MT5OrderOutcomeUnknown(
        f"the outcome of order {client_id.comment_tag} is still unknown after reconciling "
        f"({cause.message if cause else 'earlier attempt'})",
        retcode=cause.retcode if cause else None,
        request=request,
        client_id=client_id.sequence,
        code=cause.code if cause else None,
        hint="Do not send it again under a new key: mt5gate keeps reconciling it, and health "
        "reports it. Ask again with the same idempotency key for its status.",
    )


def proven_absent(client_id: ClientOrderId, request: Mapping[str, Any]) -> MT5TradeRetryable:
    return MT5TradeRetryable(
        f"order {client_id.comment_tag} was proven absent: the lost order_send never executed",
        retcode=None,
        request=request,
        client_id=client_id.sequence,
        hint="Send it again with the same idempotency key (it keeps its client id), or pass "
        "resubmit=True to let mt5gate do it once.",
    )


_DETAILS: Final[Mapping[OrderOutcome, str]] = {
    OrderOutcome.EXECUTED: "Executed at the broker.",
    OrderOutcome.REJECTED: "Refused for good; the same key gives the same refusal.",
    OrderOutcome.NOT_EXECUTED: "Provably never executed; the same key sends it again.",
    OrderOutcome.IN_PROGRESS: "Being handled now; ask again shortly.",
    OrderOutcome.UNKNOWN: "It may have executed: mt5gate keeps reconciling it. Never send it "
    "again under a new key; ask again with the same key.",
    OrderOutcome.BLOCKED: "The broker shows something the journal cannot account for; the key "
    "is blocked until a person looks (mt5gate journal show).",
}


def order_status(
    client_id: ClientOrderId, key: str | None, state: OrderState, busy: bool
) -> OrderStatus:
    """The status an idempotency key's order reports (HTTP 202 resources, the CLI)."""
    result = None
    if state.blocked:
        outcome = OrderOutcome.BLOCKED
    elif state.outcome is not None and executed(state.outcome):
        outcome, result = OrderOutcome.EXECUTED, stored_result(state.outcome, client_id)
    elif state.outcome is not None:
        outcome = OrderOutcome.REJECTED
    elif busy:
        outcome = OrderOutcome.IN_PROGRESS
    elif state.unresolved or state.phase is K.LATE_RESULT:
        outcome = OrderOutcome.UNKNOWN
    else:
        outcome = OrderOutcome.NOT_EXECUTED
    phase = state.phase.value if state.phase is not None else ""
    return OrderStatus(client_id.sequence, key, phase, outcome, result, _DETAILS[outcome])
