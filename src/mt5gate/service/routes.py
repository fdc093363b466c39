"""The ``/v1`` routes: parse, call the account's session, render. No trading logic here.

Scopes: reads need ``read``; placing, checking, modifying, closing and cancelling need
``trade``; halting and resuming need ``admin`` (``admin`` implies ``trade`` implies ``read``).
"""

from __future__ import annotations

from typing import Annotated, Any, Final

import numpy as np
from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import BaseModel

from mt5gate.constants import Timeframe
from mt5gate.errors import MT5DataError, MT5ValidationError
from mt5gate.models import (
    Account,
    Deal,
    Order,
    OrderCheck,
    OrderResult,
    OrderStatus,
    Position,
    Price,
    Symbol,
    TerminalStatus,
)
from mt5gate.service.accepted import OrderAccepted
from mt5gate.service.gateway import SIMULATED_NOTICE, AccountRuntime, Gateway
from mt5gate.service.idempotency import idempotency_key
from mt5gate.service.inputs import (
    CloseBody,
    DateArg,
    DateFrom,
    DateTo,
    HaltBody,
    OrderBody,
    StopsBody,
    Ticket,
)
from mt5gate.service.security import principal_dependency
from mt5gate.session.ranges import date_seconds

__all__ = ["build_router", "rows_of"]

AccountName = Annotated[str, Path(description="A configured account name", examples=["demo"])]
SymbolName = Annotated[str, Path(description="Symbol name", examples=["EURUSD"])]


class AccountEntry(BaseModel):
    """A configured account."""

    name: str
    terminal: str
    simulated: bool
    #: this service runs it and it is ready (in a fleet: false where another replica runs it)
    ready: bool
    #: in a fleet, the replica that owns the account now (``null``: none, or not a fleet)
    owner: str | None = None
    #: in a fleet, the owner's fencing epoch
    epoch: int | None = None


class AccountList(BaseModel):
    """The service's accounts."""

    accounts: list[AccountEntry]
    notes: list[str] = []


class Halted(BaseModel):
    """The halt switch of an account."""

    halted: bool
    reason: str


def rows_of(array: Any) -> list[dict[str, Any]]:
    """A numpy structured array (bars, ticks) as JSON-ready rows."""
    names = array.dtype.names or ()
    return [dict(zip(names, row, strict=True)) for row in np.asarray(array).tolist()]


def _timeframe(value: str) -> int:
    """``H1`` or ``16385``: the MT5 timeframe constant."""
    if value.isdigit() and int(value) in {int(t) for t in Timeframe}:
        return int(value)
    try:
        return int(Timeframe[value.upper()])
    except KeyError:
        names = ", ".join(t.name for t in Timeframe)
        raise MT5ValidationError(field="timeframe", rule=f"one of {names}") from None


def _in_order(date_from: object, date_to: object) -> None:
    """A range whose ``to`` is before its ``from`` is a mistake, not an empty answer: 422."""
    if date_from is None or date_to is None:
        return
    start, end = (date_seconds(d) for d in (date_from, date_to))  # type: ignore[arg-type]
    if start > end:
        raise MT5ValidationError(field="to", rule="not before from")


async def _runtime(request: Request, account: AccountName) -> AccountRuntime:
    """The account a route names (404 problem for an unknown one). ``async``: FastAPI would
    run a plain function on a worker thread, a thread hop per request for a dict look-up."""
    gateway: Gateway = request.app.state.gateway
    return gateway.account(account)


Runtime = Annotated[AccountRuntime, Depends(_runtime)]
BASE = "/accounts/{account}"


def build_router(gateway: Gateway) -> APIRouter:
    """Every ``/v1`` route, bound to ``gateway``'s API keys."""
    router = APIRouter(prefix="/v1")
    _account_routes(router, gateway, Depends(principal_dependency(gateway, "read")))
    _market_routes(router, Depends(principal_dependency(gateway, "read")))
    _book_routes(router, Depends(principal_dependency(gateway, "read")))
    keyed = Depends(idempotency_key(gateway.settings.require_idempotency_key))
    _trading_routes(router, Depends(principal_dependency(gateway, "read")),
                    Depends(principal_dependency(gateway, "trade")), keyed)  # fmt: skip
    _admin_routes(router, Depends(principal_dependency(gateway, "admin")))
    return router


def _account_routes(router: APIRouter, gateway: Gateway, read: Any) -> None:
    base = BASE

    @router.get("/accounts", dependencies=[read], tags=["accounts"])
    async def accounts() -> AccountList:
        """The configured accounts and whether each is ready."""
        entries = [AccountEntry(name=a.name, terminal=a.settings.terminal,
                                simulated=a.simulated, ready=a.ready,
                                **_owner_of(gateway, a.settings.login))
                   for a in gateway.accounts.values()]  # fmt: skip
        return AccountList(accounts=entries, notes=[SIMULATED_NOTICE] if gateway.simulated else [])

    @router.get(base, dependencies=[read], tags=["accounts"])
    async def account_info(rt: Runtime) -> Account:
        """The account's login, balance, equity, margin."""
        return await rt.session.get_account_info()

    @router.get(base + "/terminal", dependencies=[read], tags=["accounts"])
    async def terminal_info(rt: Runtime) -> TerminalStatus:
        """The terminal's link, switches and ping."""
        return await rt.session.get_terminal_info()


def _owner_of(gateway: Gateway, login: int | None) -> dict[str, Any]:
    """The owning replica and epoch of an account, as this replica's last heartbeat saw it."""
    view = gateway.conductor.view if gateway.conductor is not None else None
    lease = view.owner(login) if view is not None and login is not None else None
    if lease is None:
        return {}
    return {"owner": lease.info.get("member"), "epoch": lease.epoch}


def _market_routes(router: APIRouter, read: Any) -> None:
    base = BASE

    @router.get(base + "/symbols", dependencies=[read], tags=["market"])
    async def symbols(
        rt: Runtime, group: Annotated[str | None, Query(max_length=200, examples=["*USD*"])] = None
    ) -> list[Symbol]:
        """Symbols, optionally filtered by an MT5 group mask."""
        return await rt.session.list_symbols(group)

    @router.get(base + "/symbols/{symbol}", dependencies=[read], tags=["market"])
    async def symbol_info(rt: Runtime, symbol: SymbolName) -> Symbol:
        """One symbol's specification and quote."""
        return await rt.session.get_symbol_info(symbol)

    @router.get(base + "/symbols/{symbol}/tick", dependencies=[read], tags=["market"])
    async def tick(rt: Runtime, symbol: SymbolName) -> Price:
        """The latest tick."""
        return await rt.session.get_price(symbol)

    @router.get(base + "/symbols/{symbol}/rates", dependencies=[read], tags=["market"])
    async def rates(
        rt: Runtime, symbol: SymbolName,
        timeframe: Annotated[str, Query(max_length=8, examples=["H1"])] = "M1",
        count: Annotated[int, Query(ge=1, le=10_000)] = 100,
        date_from: Annotated[DateArg, Query(alias="from")] = None,
        date_to: Annotated[DateArg, Query(alias="to")] = None,
    ) -> list[dict[str, Any]]:  # fmt: skip
        """Bars, oldest first: the last ``count``, ``count`` from ``from``, or the first
        ``count`` of ``from``..``to``."""
        frame = _timeframe(timeframe)
        _in_order(date_from, date_to)
        array = await rt.session.get_rates(symbol, frame, count=count, date_from=date_from,
                                           date_to=date_to)  # fmt: skip
        return rows_of(array[:count])

    @router.get(base + "/symbols/{symbol}/ticks", dependencies=[read], tags=["market"])
    async def ticks(
        rt: Runtime, symbol: SymbolName,
        date_from: DateFrom,
        count: Annotated[int, Query(ge=1, le=10_000)] = 1000,
        date_to: Annotated[DateArg, Query(alias="to")] = None,
    ) -> list[dict[str, Any]]:  # fmt: skip
        """Ticks: ``count`` from ``from``, or the first ``count`` of ``from``..``to``."""
        _in_order(date_from, date_to)
        array = await rt.session.get_ticks(symbol, date_from, count=count, date_to=date_to)
        return rows_of(array[:count])


def _book_routes(router: APIRouter, read: Any) -> None:
    base = BASE

    @router.get(base + "/positions", dependencies=[read], tags=["trading"])
    async def positions(
        rt: Runtime, symbol: Annotated[str | None, Query(max_length=32)] = None
    ) -> list[Position]:
        """Open positions."""
        return await rt.session.positions(symbol=symbol)

    @router.get(base + "/orders", dependencies=[read], tags=["trading"])
    async def orders(
        rt: Runtime, symbol: Annotated[str | None, Query(max_length=32)] = None
    ) -> list[Order]:
        """Active pending orders."""
        return await rt.session.orders(symbol=symbol)

    @router.get(base + "/history/orders", dependencies=[read], tags=["history"])
    async def history_orders(rt: Runtime, date_from: DateFrom, date_to: DateTo) -> list[Order]:
        """Orders in the history between two times (broker server time: pad the window)."""
        _in_order(date_from, date_to)
        return await rt.session.history_orders(date_from, date_to)

    @router.get(base + "/history/deals", dependencies=[read], tags=["history"])
    async def history_deals(rt: Runtime, date_from: DateFrom, date_to: DateTo) -> list[Deal]:
        """Deals between two times (broker server time: pad the window)."""
        _in_order(date_from, date_to)
        return await rt.session.history_deals(date_from, date_to)


#: The answer of a trading write whose outcome is unknown yet (``mt5gate.service.accepted``).
ACCEPTED: Final[dict[int | str, dict[str, Any]]] = {202: {
    "model": OrderAccepted,
    "description": "The order's outcome is unknown yet (its reply was lost): do not send it "
    "again under a new key; ask at the Location, or repeat with the same key",
}}  # fmt: skip
RequestKey = Annotated[
    str, Path(min_length=1, max_length=128, description="The order's Idempotency-Key")
]


def _trading_routes(router: APIRouter, read: Any, trade: Any, keyed: Any) -> None:
    """The routes that trade; ``keyed`` gives each write its ``Idempotency-Key`` (428 when it is
    missing and required). Checking an order sends nothing, so it needs no key."""
    base = BASE

    @router.get(base + "/requests/{key}", dependencies=[read], tags=["trading"])
    async def request_status(rt: Runtime, key: RequestKey) -> OrderStatus:
        """Where the order of an ``Idempotency-Key`` stands: executed (with its result),
        rejected, not executed, in progress, unknown (being reconciled) or blocked. Reading it
        never sends anything."""
        status = await rt.session.order_status(key)
        if status is None:
            raise MT5DataError(f"no order was ever sent with Idempotency-Key {key!r}",
                               hint="Check the key; it is per account.")  # fmt: skip
        return status

    @router.post(base + "/orders", dependencies=[trade], tags=["trading"], status_code=201,
                 responses=ACCEPTED)  # fmt: skip
    async def place(rt: Runtime, body: OrderBody, key: str | None = keyed) -> OrderResult:
        """Place a market or pending order exactly once (see ``Idempotency-Key``)."""
        return await rt.session.place_order(body.request(), idempotency_key=key)

    @router.post(base + "/orders/check", dependencies=[trade], tags=["trading"])
    async def check(rt: Runtime, body: OrderBody) -> OrderCheck:
        """``order_check``: the account as it would be after the order; nothing is sent."""
        return await rt.session.check_order(body.request())

    @router.delete(base + "/orders/{ticket}", dependencies=[trade], tags=["trading"],
                   responses=ACCEPTED)  # fmt: skip
    async def cancel(rt: Runtime, ticket: Ticket, key: str | None = keyed) -> OrderResult:
        """Delete a pending order."""
        return await rt.session.cancel_order(ticket, idempotency_key=key)

    @router.patch(base + "/positions/{ticket}", dependencies=[trade], tags=["trading"],
                  responses=ACCEPTED)  # fmt: skip
    async def modify(
        rt: Runtime, ticket: Ticket, body: StopsBody, key: str | None = keyed
    ) -> OrderResult:
        """Set a position's SL / TP."""
        return await rt.session.modify_position(ticket, sl=body.sl, tp=body.tp,
                                                idempotency_key=key)  # fmt: skip

    @router.post(base + "/positions/{ticket}/close", dependencies=[trade], tags=["trading"],
                 responses=ACCEPTED)  # fmt: skip
    async def close(
        rt: Runtime, ticket: Ticket, body: CloseBody, key: str | None = keyed
    ) -> OrderResult:
        """Close a position, fully or partly."""
        return await rt.session.close_position(
            ticket, volume=body.volume, deviation=body.deviation, comment=body.comment,
            idempotency_key=key,
        )  # fmt: skip


def _admin_routes(router: APIRouter, admin: Any) -> None:
    base = BASE

    @router.post(base + "/halt", dependencies=[admin], tags=["admin"])
    async def halt(rt: Runtime, body: HaltBody) -> Halted:
        """Switch the trading halt on: new orders are refused, closing stays possible."""
        rt.session.halt_trading(body.reason)
        return Halted(halted=True, reason=rt.session.risk.halt_reason)

    @router.post(base + "/resume", dependencies=[admin], tags=["admin"])
    async def resume(rt: Runtime) -> Halted:
        """Switch the trading halt off."""
        rt.session.resume_trading()
        return Halted(halted=False, reason="")
