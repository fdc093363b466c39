"""The book of an account: open positions, pending orders, and the history of orders and deals."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query, Request

from mt5gate.models import Deal, Order, Position
from mt5gate.service.deps import gateway_of
from mt5gate.service.inputs import DateFrom, DateTo
from mt5gate.service.routes import BASE, AccountName, Routes, in_order

__all__ = ["add"]


def add(read: Routes) -> None:
    """The book routes (``read`` scope)."""

    @read.get(BASE + "/positions", tags=["trading"])
    async def positions(
        request: Request, account: AccountName,
        symbol: Annotated[str | None, Query(max_length=32)] = None,
    ) -> list[Position]:  # fmt: skip
        """Open positions."""
        return await gateway_of(request).account(account).session.positions(symbol=symbol)

    @read.get(BASE + "/orders", tags=["trading"])
    async def orders(
        request: Request, account: AccountName,
        symbol: Annotated[str | None, Query(max_length=32)] = None,
    ) -> list[Order]:  # fmt: skip
        """Active pending orders."""
        return await gateway_of(request).account(account).session.orders(symbol=symbol)

    @read.get(BASE + "/history/orders", tags=["history"])
    async def history_orders(
        request: Request, account: AccountName, date_from: DateFrom, date_to: DateTo
    ) -> list[Order]:
        """Orders in the history between two times (broker server time: pad the window)."""
        in_order(date_from, date_to)
        session = gateway_of(request).account(account).session
        return await session.history_orders(date_from, date_to)

    @read.get(BASE + "/history/deals", tags=["history"])
    async def history_deals(
        request: Request, account: AccountName, date_from: DateFrom, date_to: DateTo
    ) -> list[Deal]:
        """Deals between two times (broker server time: pad the window)."""
        in_order(date_from, date_to)
        session = gateway_of(request).account(account).session
        return await session.history_deals(date_from, date_to)
