"""Trading on an account: place, check, modify, close and cancel (``trade`` scope), and where the
order of an ``Idempotency-Key`` stands (``read`` scope).

Every write but the check takes the request's ``Idempotency-Key``
(:func:`~mt5gate.service.idempotency.idempotency_key`: 428 when it is missing and required);
a write whose outcome is unknown yet answers 202 (:data:`ACCEPTED`).
"""

from __future__ import annotations

from typing import Annotated, Any, Final

from fastapi import Depends, Path, Request

from mt5gate.errors import MT5DataError
from mt5gate.models import OrderCheck, OrderResult, OrderStatus
from mt5gate.service.accepted import OrderAccepted
from mt5gate.service.deps import gateway_of
from mt5gate.service.idempotency import idempotency_key
from mt5gate.service.inputs import CloseBody, OrderBody, PendingBody, StopsBody, Ticket
from mt5gate.service.routes import BASE, AccountName, Routes

__all__ = ["ACCEPTED", "add"]

#: The answer of a trading write whose outcome is unknown yet (``mt5gate.service.accepted``).
ACCEPTED: Final[dict[int | str, dict[str, Any]]] = {202: {
    "model": OrderAccepted,
    "description": "The order's outcome is unknown yet (its reply was lost): do not send it "
    "again under a new key; ask at the Location, or repeat with the same key",
}}  # fmt: skip
RequestKey = Annotated[
    str, Path(min_length=1, max_length=128, description="The order's Idempotency-Key")
]


def add(read: Routes, trade: Routes, *, key_required: bool) -> None:
    """The trading routes: the status of a key (``read``) and the writes (``trade``), whose
    ``Idempotency-Key`` is required when ``key_required``. Checking an order sends nothing, so
    it needs no key."""
    keyed = Depends(idempotency_key(key_required))

    @read.get(BASE + "/requests/{key}", tags=["trading"])
    async def request_status(
        request: Request, key: RequestKey, account: AccountName
    ) -> OrderStatus:
        """Where the order of an ``Idempotency-Key`` stands: executed (with its result),
        rejected, not executed, in progress, unknown (being reconciled) or blocked. Reading it
        never sends anything."""
        status = await gateway_of(request).account(account).session.order_status(key)
        if status is None:
            raise MT5DataError(f"no order was ever sent with Idempotency-Key {key!r}",
                               hint="Check the key; it is per account.")  # fmt: skip
        return status

    @trade.post(BASE + "/orders", tags=["trading"], status_code=201, responses=ACCEPTED)
    async def place(
        request: Request, account: AccountName, body: OrderBody, key: str | None = keyed
    ) -> OrderResult:
        """Place a market or pending order exactly once (see ``Idempotency-Key``)."""
        session = gateway_of(request).account(account).session
        return await session.place_order(body.request(), idempotency_key=key)

    @trade.post(BASE + "/orders/check", tags=["trading"])
    async def check(request: Request, account: AccountName, body: OrderBody) -> OrderCheck:
        """``order_check``: the account as it would be after the order; nothing is sent."""
        return await gateway_of(request).account(account).session.check_order(body.request())

    @trade.delete(BASE + "/orders/{ticket}", tags=["trading"], responses=ACCEPTED)
    async def cancel(
        request: Request, ticket: Ticket, account: AccountName, key: str | None = keyed
    ) -> OrderResult:
        """Delete a pending order."""
        session = gateway_of(request).account(account).session
        return await session.cancel_order(ticket, idempotency_key=key)

    @trade.patch(BASE + "/orders/{ticket}", tags=["trading"], responses=ACCEPTED)
    async def modify_pending(
        request: Request, ticket: Ticket, account: AccountName, body: PendingBody,
        key: str | None = keyed,
    ) -> OrderResult:  # fmt: skip
        """Change a pending order's price, stop-limit price, SL / TP or expiry."""
        session = gateway_of(request).account(account).session
        return await session.modify_order(ticket, **body.model_dump(), idempotency_key=key)

    @trade.patch(BASE + "/positions/{ticket}", tags=["trading"], responses=ACCEPTED)
    async def modify(
        request: Request, ticket: Ticket, account: AccountName, body: StopsBody,
        key: str | None = keyed,
    ) -> OrderResult:  # fmt: skip
        """Set a position's SL / TP."""
        session = gateway_of(request).account(account).session
        return await session.modify_position(ticket, sl=body.sl, tp=body.tp, idempotency_key=key)

    @trade.post(BASE + "/positions/{ticket}/close", tags=["trading"], responses=ACCEPTED)
    async def close(
        request: Request, ticket: Ticket, account: AccountName, body: CloseBody,
        key: str | None = keyed,
    ) -> OrderResult:  # fmt: skip
        """Close a position, fully or partly."""
        session = gateway_of(request).account(account).session
        return await session.close_position(ticket, volume=body.volume, deviation=body.deviation,
                                            comment=body.comment, idempotency_key=key)  # fmt: skip
