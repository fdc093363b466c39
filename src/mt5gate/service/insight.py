"""What an operator looks at, per account: its health, its order journal, its call latency.

Three read routes under ``/v1/accounts/{account}``, so that in a fleet they are forwarded to
the account's owner like every other account route (the owner holds the session, the health
monitor and the latency trail):

* ``GET .../health``: the account's latest health reading (``application/health+json``;
  503 when failing, as ``/v1/health``);
* ``GET .../journal``: its orders, newest first, each with its state history (INTENT, SENT,
  ACKNOWLEDGED / REJECTED / UNKNOWN, reconciliation); ``unresolved=true`` keeps the orders
  whose outcome is still open;
* ``GET .../latency``: terminal-call p50/p99 per 5-second slot over the last ten minutes.

The console draws them; any client may read them with a ``read`` key.
"""

from __future__ import annotations

from typing import Annotated, Any, Final

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from mt5gate.errors import MT5DataError
from mt5gate.orders.core import BLOCKING_KINDS, UNRESOLVED_KINDS, EventKind
from mt5gate.orders.store import JournalEvent, OrderInspection, OrderSummary
from mt5gate.service.deps import gateway_of
from mt5gate.service.gateway import AccountRuntime
from mt5gate.service.routes import BASE, AccountName, AccountRoute, Routes

__all__ = ["JournalEntry", "JournalPage", "LatencySlot", "add_insight_routes"]

HEALTH_TYPE: Final = "application/health+json"

#: What each open or alarming state asks of the operator (the journal page shows it).
ADVICE: Final[dict[str, str]] = {
    "UNKNOWN": "Outcome not known yet: do not resend under a new key. Reconciliation settles "
    "it; the same Idempotency-Key returns its status.",
    "INTENT": "Recorded, not sent yet (or the process stopped before sending): recovery "
    "settles it on restart.",
    "SENT": "Sent, no reply yet: reconciliation settles it.",
    "UNEXPECTED": "The broker holds an order this journal never issued: check it at the broker, "
    "then `mt5gate journal acknowledge` lifts the account's block.",
    "DUPLICATE": "A second execution of one order was found: check the account's positions now.",
    "CONFLICT": "The broker's record does not match the request: check it at the broker.",
    "RESUBMITTED": "Sent again after absence was proven, no reply yet: reconciliation settles it.",
}
#: States the journal page marks as needing attention: open outcomes and audit findings.
ALARMING: Final = frozenset(str(kind) for kind in UNRESOLVED_KINDS | BLOCKING_KINDS)


class JournalStep(BaseModel):
    """One event of an order."""

    kind: str
    utc_ms: int
    retcode: int | None = None
    note: str = ""
    order_ticket: int | None = None
    deal_ticket: int | None = None


class JournalEntry(BaseModel):
    """One order as the journal knows it, with its history."""

    #: the order's client sequence in the journal (what ``OrderStatus.client_id`` says)
    client_id: int
    idempotency_key: str | None
    state: str
    unresolved: bool
    alarming: bool
    advice: str
    created_utc_ms: int
    updated_utc_ms: int
    request: Any
    retcode: int | None
    order_ticket: int | None
    deal_ticket: int | None
    history: list[JournalStep]


class JournalPage(BaseModel):
    """The newest orders of an account (at most ``limit``)."""

    account: str
    login: int | None
    orders: list[JournalEntry]


class LatencySlot(BaseModel):
    """Terminal calls in one 5-second slot."""

    time_ms: int
    calls: int
    p50_ms: float
    p99_ms: float


def add_insight_routes(router: APIRouter) -> None:
    """The health, journal and latency routes of every account (``read`` scope), on
    ``router`` (the app's own, as :func:`~mt5gate.service.routers.add_routes`), answered
    from the request's gateway (:func:`~mt5gate.service.deps.gateway_of`)."""
    read = Routes(router, AccountRoute)

    @read.get(BASE + "/health", tags=["health"], response_class=JSONResponse,
              summary="The account's latest health reading (health+json)")  # fmt: skip
    async def account_health(request: Request, account: AccountName) -> JSONResponse:
        rt = gateway_of(request).account(account)
        return JSONResponse(_health(rt), status_code=503 if _failing(rt) else 200,
                            media_type=HEALTH_TYPE)  # fmt: skip

    @read.get(BASE + "/journal", tags=["history"])
    async def journal(
        request: Request,
        account: AccountName,
        limit: Annotated[int, Query(ge=1, le=500)] = 100,
        unresolved: bool = False,
    ) -> JournalPage:
        """The account's orders in the journal, newest first, each with its state history."""
        rt = gateway_of(request).account(account)
        login = _login(rt)
        if login is None:
            return JournalPage(account=rt.name, login=None, orders=[])
        store = _inspection(rt)
        states = UNRESOLVED_KINDS if unresolved else None
        found = await store.summaries(login, states=states, limit=limit, newest_first=True)
        orders = [_entry(s, await store.events(login, s.client_id.sequence)) for s in found]
        return JournalPage(account=rt.name, login=login, orders=orders)

    @read.get(BASE + "/latency", tags=["health"])
    async def latency(request: Request, account: AccountName) -> list[LatencySlot]:
        """Terminal-call latency (p50 / p99, ms) per 5-second slot, the last ten minutes."""
        gateway = gateway_of(request)
        points = gateway.metrics.trail(gateway.account(account).name).points()
        return [LatencySlot(time_ms=p.time_ms, calls=p.calls, p50_ms=round(p.p50_ms, 3),
                            p99_ms=round(p.p99_ms, 3)) for p in points]  # fmt: skip


def _health(rt: AccountRuntime) -> dict[str, Any]:
    reading = rt.health
    if reading is None:
        return {"status": "fail", "checks": {"account:health": [
            {"status": "fail", "output": "no reading yet (starting)"}]}}  # fmt: skip
    return reading.to_health_json()


def _failing(rt: AccountRuntime) -> bool:
    return rt.health is None or str(rt.health.status) == "fail"


def _login(rt: AccountRuntime) -> int | None:
    """The account's login: the one its lease is held for, else the configured one."""
    fence = rt.session.ownership.held
    return fence.login if fence is not None else rt.settings.login


def _inspection(rt: AccountRuntime) -> OrderInspection:
    store = rt.session.store
    if not isinstance(store, OrderInspection):  # pragma: no cover - both stores inspect
        raise MT5DataError("this account's order store cannot be listed")
    return store


def _entry(summary: OrderSummary, events: list[JournalEvent]) -> JournalEntry:
    state = str(summary.state)
    return JournalEntry(
        client_id=summary.client_id.sequence, idempotency_key=summary.idempotency_key, state=state,
        unresolved=summary.unresolved, alarming=state in ALARMING,
        advice=ADVICE.get(state, ""), created_utc_ms=summary.created_utc_ms,
        updated_utc_ms=summary.updated_utc_ms, request=summary.request,
        retcode=summary.retcode, order_ticket=summary.order_ticket,
        deal_ticket=summary.deal_ticket, history=[_step(e) for e in events],
    )  # fmt: skip


def _step(event: JournalEvent) -> JournalStep:
    return JournalStep(kind=str(EventKind(event.kind)), utc_ms=event.utc_ms,
                       retcode=event.retcode, note=event.note,
                       order_ticket=event.order_ticket, deal_ticket=event.deal_ticket)  # fmt: skip
