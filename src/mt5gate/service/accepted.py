"""An order whose outcome is unknown: ``202 Accepted`` and a status resource, never "send it again".

A trading write whose reply was lost, and whose reconciliation could not yet tell, may have
executed. Any answer that invites a resend (a 409, a 5xx a client retries under a new key)
could double the order. So the service answers 202 with the order's current status and a
``Location`` to ask again: ``GET /v1/accounts/{account}/requests/{key}``, or the same request
with the same ``Idempotency-Key``, which returns the status too (it never sends twice).
"""

from __future__ import annotations

from typing import Final
from urllib.parse import quote

from fastapi import Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from mt5gate.errors import MT5Error, MT5OrderOutcomeUnknown
from mt5gate.models import OrderOutcome, OrderResult
from mt5gate.orders.store import JournalError
from mt5gate.service.gateway import Gateway
from mt5gate.service.idempotency import HEADER

__all__ = ["OrderAccepted", "accepted", "status_path"]

#: Seconds a client should wait before it asks again.
RETRY_AFTER_S: Final = 5
_HINT: Final = (
    "The order may have executed: do not send it again under a new key. Ask for its status "
    "at the Location, or send the same request with the same Idempotency-Key (it never sends "
    "a second order); mt5gate keeps reconciling it."
)


class OrderAccepted(BaseModel):
    """An order accepted whose outcome is not known yet (the body of a 202)."""

    outcome: OrderOutcome
    client_id: int | None
    idempotency_key: str | None
    state: str
    detail: str
    hint: str
    status_url: str | None
    result: OrderResult | None = None


def status_path(account: str, key: str) -> str:
    """Where the status of ``key``'s order is: ``/v1/accounts/{account}/requests/{key}``."""
    return f"/v1/accounts/{quote(account, safe='')}/requests/{quote(key, safe='')}"


async def accepted(request: Request, error: MT5OrderOutcomeUnknown) -> JSONResponse:
    """The 202 for ``error``, with the journal's current status of the order when the request
    named an account and a key (the status read may fail: the error still says enough)."""
    account = str(request.path_params.get("account", ""))
    key = request.headers.get(HEADER)
    gateway: Gateway = request.app.state.gateway
    runtime = gateway.accounts.get(account)
    where = status_path(account, key) if key and runtime else None
    body = OrderAccepted(outcome=OrderOutcome.UNKNOWN, client_id=error.client_id,
                         idempotency_key=key, state="UNKNOWN", detail=error.message,
                         hint=_HINT, status_url=where)  # fmt: skip
    if key is not None and runtime is not None:
        try:
            status = await runtime.session.order_status(key)
        except (MT5Error, JournalError):
            status = None
        if status is not None:
            body.client_id, body.state, body.outcome = (
                status.client_id,
                status.state,
                status.outcome,
            )
            body.result = status.result
    headers = {"Retry-After": str(RETRY_AFTER_S)}
    if body.status_url is not None:
        headers["Location"] = body.status_url
    return JSONResponse(body.model_dump(mode="json"), status_code=202, headers=headers)
