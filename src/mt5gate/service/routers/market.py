"""The market of an account: its symbols, one symbol, its latest tick, its bars and ticks."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Query, Request

from mt5gate.models import Price, Symbol
from mt5gate.service.deps import gateway_of
from mt5gate.service.inputs import DateArg, DateFrom
from mt5gate.service.routes import (
    BASE,
    AccountName,
    Routes,
    SymbolName,
    in_order,
    parse_timeframe,
    rows_of,
)

__all__ = ["add"]


def add(read: Routes) -> None:
    """The market routes (``read`` scope)."""

    @read.get(BASE + "/symbols", tags=["market"])
    async def symbols(
        request: Request, account: AccountName,
        group: Annotated[str | None, Query(max_length=200, examples=["*USD*"])] = None,
    ) -> list[Symbol]:  # fmt: skip
        """Symbols, optionally filtered by an MT5 group mask."""
        return await gateway_of(request).account(account).session.list_symbols(group)

    @read.get(BASE + "/symbols/{symbol}", tags=["market"])
    async def symbol_info(request: Request, symbol: SymbolName, account: AccountName) -> Symbol:
        """One symbol's specification and quote."""
        return await gateway_of(request).account(account).session.get_symbol_info(symbol)

    @read.get(BASE + "/symbols/{symbol}/tick", tags=["market"])
    async def tick(request: Request, symbol: SymbolName, account: AccountName) -> Price:
        """The latest tick."""
        return await gateway_of(request).account(account).session.get_price(symbol)

    @read.get(BASE + "/symbols/{symbol}/rates", tags=["market"])
    async def rates(
        request: Request, symbol: SymbolName, account: AccountName,
        timeframe: Annotated[str, Query(max_length=8, examples=["H1"])] = "M1",
        count: Annotated[int, Query(ge=1, le=10_000)] = 100,
        date_from: Annotated[DateArg, Query(alias="from")] = None,
        date_to: Annotated[DateArg, Query(alias="to")] = None,
    ) -> list[dict[str, Any]]:  # fmt: skip
        """Bars, oldest first: the last ``count``, ``count`` from ``from``, or the first
        ``count`` of ``from``..``to``."""
        frame = parse_timeframe(timeframe)
        in_order(date_from, date_to)
        session = gateway_of(request).account(account).session
        array = await session.get_rates(symbol, frame, count=count, date_from=date_from,
                                        date_to=date_to)  # fmt: skip
        return rows_of(array[:count])

    @read.get(BASE + "/symbols/{symbol}/ticks", tags=["market"])
    async def ticks(
        request: Request, symbol: SymbolName, account: AccountName,
        date_from: DateFrom,
        count: Annotated[int, Query(ge=1, le=10_000)] = 1000,
        date_to: Annotated[DateArg, Query(alias="to")] = None,
    ) -> list[dict[str, Any]]:  # fmt: skip
        """Ticks: ``count`` from ``from``, or the first ``count`` of ``from``..``to``."""
        in_order(date_from, date_to)
        session = gateway_of(request).account(account).session
        array = await session.get_ticks(symbol, date_from, count=count, date_to=date_to)
        return rows_of(array[:count])
