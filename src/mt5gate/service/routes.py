"""The ``/v1`` routes: parse, call the account's session, render. No trading logic here.

Scopes: reads need ``read``; placing, checking, modifying, closing and cancelling need
``trade``; halting and resuming need ``admin`` (``admin`` implies ``trade`` implies ``read``).
Each route checks its caller's key for its scope, and an account route looks its account up,
before FastAPI parses anything (:class:`AccountRoute`, :class:`~mt5gate.service.security.
KeyedRoute`): 401, 403 or 429 first, then 404 for an unknown account, then 422 for what the
request itself gets wrong. The account is a path parameter of the route's own; in the signature
it follows the route's other path parameters, where the OpenAPI document has always listed it.

The routes are added to the app's own router (:func:`add_routes`), not included from a router
of their own: FastAPI matches an included router's routes twice per request (once to find the
router, once to pick the route), which cost a fifth of ``GET tick``'s time.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, Final, TypeVar

import numpy as np
from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.routing import APIRoute
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
from mt5gate.service.gateway import SIMULATED_NOTICE, Gateway
from mt5gate.service.idempotency import idempotency_key
from mt5gate.service.inputs import (
    CloseBody,
    DateArg,
    DateFrom,
    DateTo,
    HaltBody,
    OrderBody,
    PendingBody,
    StopsBody,
    Ticket,
)
from mt5gate.service.security import KeyedRoute
from mt5gate.session.ranges import date_seconds

__all__ = [
    "BASE",
    "AccountName",
    "AccountRoute",
    "AdminRoute",
    "Routes",
    "TradeRoute",
    "add_routes",
    "parse_timeframe",
    "rows_of",
]

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


def parse_timeframe(value: str) -> int:
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


class AccountRoute(KeyedRoute):
    """A route of one account (``{account}`` in its path), for a caller with the ``read``
    scope: the key is checked, then the account looked up (404 problem for an unknown one)."""

    def check(self, request: Request) -> None:
        super().check(request)
        gateway: Gateway = request.app.state.gateway
        gateway.account(request.path_params["account"])


class TradeRoute(AccountRoute):
    """An account route that trades: the ``trade`` scope."""

    key_scope = "trade"


class AdminRoute(AccountRoute):
    """An account route that switches the account's halt: the ``admin`` scope."""

    key_scope = "admin"


_Endpoint = TypeVar("_Endpoint", bound=Callable[..., Any])


@dataclass(frozen=True, slots=True)
class Routes:
    """Adds routes of one route class to a router: ``@read.get(path, tags=[...])`` is
    ``@router.get(path, tags=[...])`` with the route class of ``read`` (FastAPI's decorators
    take no route class of their own)."""

    router: APIRouter
    route_class: type[APIRoute]

    def get(self, path: str, **options: Any) -> Callable[[_Endpoint], _Endpoint]:
        """Register a ``GET`` route (``options`` as ``APIRouter.add_api_route`` takes them)."""
        return self._adding(path, "GET", options)

    def post(self, path: str, **options: Any) -> Callable[[_Endpoint], _Endpoint]:
        """Register a ``POST`` route."""
        return self._adding(path, "POST", options)

    def patch(self, path: str, **options: Any) -> Callable[[_Endpoint], _Endpoint]:
        """Register a ``PATCH`` route."""
        return self._adding(path, "PATCH", options)

    def delete(self, path: str, **options: Any) -> Callable[[_Endpoint], _Endpoint]:
        """Register a ``DELETE`` route."""
        return self._adding(path, "DELETE", options)

    def _adding(
        self, path: str, method: str, options: dict[str, Any]
    ) -> Callable[[_Endpoint], _Endpoint]:
        def add(endpoint: _Endpoint) -> _Endpoint:
            self.router.add_api_route(path, endpoint, methods=[method],
                                      route_class_override=self.route_class, **options)  # fmt: skip
            return endpoint

        return add


BASE = "/v1/accounts/{account}"


def add_routes(router: APIRouter, gateway: Gateway) -> None:
    """Every ``/v1`` route, on ``router`` (the app's own)."""
    read = Routes(router, AccountRoute)
    _account_routes(Routes(router, KeyedRoute), read, gateway)
    _market_routes(read, gateway)
    _book_routes(read, gateway)
    keyed = Depends(idempotency_key(gateway.settings.require_idempotency_key))
    _trading_routes(read, Routes(router, TradeRoute), gateway, keyed)
    _admin_routes(Routes(router, AdminRoute), gateway)


def _account_routes(keyed: Routes, read: Routes, gateway: Gateway) -> None:
    base = BASE

    @keyed.get("/v1/accounts", tags=["accounts"])
    async def accounts() -> AccountList:
        """The configured accounts and whether each is ready."""
        entries = [AccountEntry(name=a.name, terminal=a.settings.terminal,
                                simulated=a.simulated, ready=a.ready,
                                **_owner_of(gateway, a.settings.login))
                   for a in gateway.accounts.values()]  # fmt: skip
        return AccountList(accounts=entries, notes=[SIMULATED_NOTICE] if gateway.simulated else [])

    @read.get(base, tags=["accounts"])
    async def account_info(account: AccountName) -> Account:
        """The account's login, balance, equity, margin."""
        return await gateway.account(account).session.get_account_info()

    @read.get(base + "/terminal", tags=["accounts"])
    async def terminal_info(account: AccountName) -> TerminalStatus:
        """The terminal's link, switches and ping."""
        return await gateway.account(account).session.get_terminal_info()


def _owner_of(gateway: Gateway, login: int | None) -> dict[str, Any]:
    """The owning replica and epoch of an account, as this replica's last heartbeat saw it."""
    view = gateway.conductor.view if gateway.conductor is not None else None
    lease = view.owner(login) if view is not None and login is not None else None
    if lease is None:
        return {}
    return {"owner": lease.info.get("member"), "epoch": lease.epoch}


def _market_routes(read: Routes, gateway: Gateway) -> None:
    base = BASE

    @read.get(base + "/symbols", tags=["market"])
    async def symbols(
        account: AccountName,
        group: Annotated[str | None, Query(max_length=200, examples=["*USD*"])] = None,
    ) -> list[Symbol]:
        """Symbols, optionally filtered by an MT5 group mask."""
        return await gateway.account(account).session.list_symbols(group)

    @read.get(base + "/symbols/{symbol}", tags=["market"])
    async def symbol_info(symbol: SymbolName, account: AccountName) -> Symbol:
        """One symbol's specification and quote."""
        return await gateway.account(account).session.get_symbol_info(symbol)

    @read.get(base + "/symbols/{symbol}/tick", tags=["market"])
    async def tick(symbol: SymbolName, account: AccountName) -> Price:
        """The latest tick."""
        return await gateway.account(account).session.get_price(symbol)

    @read.get(base + "/symbols/{symbol}/rates", tags=["market"])
    async def rates(
        symbol: SymbolName, account: AccountName,
        timeframe: Annotated[str, Query(max_length=8, examples=["H1"])] = "M1",
        count: Annotated[int, Query(ge=1, le=10_000)] = 100,
        date_from: Annotated[DateArg, Query(alias="from")] = None,
        date_to: Annotated[DateArg, Query(alias="to")] = None,
    ) -> list[dict[str, Any]]:  # fmt: skip
        """Bars, oldest first: the last ``count``, ``count`` from ``from``, or the first
        ``count`` of ``from``..``to``."""
        frame = parse_timeframe(timeframe)
        _in_order(date_from, date_to)
        session = gateway.account(account).session
        array = await session.get_rates(symbol, frame, count=count, date_from=date_from,
                                        date_to=date_to)  # fmt: skip
        return rows_of(array[:count])

    @read.get(base + "/symbols/{symbol}/ticks", tags=["market"])
    async def ticks(
        symbol: SymbolName, account: AccountName,
        date_from: DateFrom,
        count: Annotated[int, Query(ge=1, le=10_000)] = 1000,
        date_to: Annotated[DateArg, Query(alias="to")] = None,
    ) -> list[dict[str, Any]]:  # fmt: skip
        """Ticks: ``count`` from ``from``, or the first ``count`` of ``from``..``to``."""
        _in_order(date_from, date_to)
        session = gateway.account(account).session
        array = await session.get_ticks(symbol, date_from, count=count, date_to=date_to)
        return rows_of(array[:count])


def _book_routes(read: Routes, gateway: Gateway) -> None:
    base = BASE

    @read.get(base + "/positions", tags=["trading"])
    async def positions(
        account: AccountName, symbol: Annotated[str | None, Query(max_length=32)] = None
    ) -> list[Position]:
        """Open positions."""
        return await gateway.account(account).session.positions(symbol=symbol)

    @read.get(base + "/orders", tags=["trading"])
    async def orders(
        account: AccountName, symbol: Annotated[str | None, Query(max_length=32)] = None
    ) -> list[Order]:
        """Active pending orders."""
        return await gateway.account(account).session.orders(symbol=symbol)

    @read.get(base + "/history/orders", tags=["history"])
    async def history_orders(
        account: AccountName, date_from: DateFrom, date_to: DateTo
    ) -> list[Order]:
        """Orders in the history between two times (broker server time: pad the window)."""
        _in_order(date_from, date_to)
        return await gateway.account(account).session.history_orders(date_from, date_to)

    @read.get(base + "/history/deals", tags=["history"])
    async def history_deals(
        account: AccountName, date_from: DateFrom, date_to: DateTo
    ) -> list[Deal]:
        """Deals between two times (broker server time: pad the window)."""
        _in_order(date_from, date_to)
        return await gateway.account(account).session.history_deals(date_from, date_to)


#: The answer of a trading write whose outcome is unknown yet (``mt5gate.service.accepted``).
ACCEPTED: Final[dict[int | str, dict[str, Any]]] = {202: {
    "model": OrderAccepted,
    "description": "The order's outcome is unknown yet (its reply was lost): do not send it "
    "again under a new key; ask at the Location, or repeat with the same key",
}}  # fmt: skip
RequestKey = Annotated[
    str, Path(min_length=1, max_length=128, description="The order's Idempotency-Key")
]


def _trading_routes(read: Routes, trade: Routes, gateway: Gateway, keyed: Any) -> None:
    """The routes that trade; ``keyed`` gives each write its ``Idempotency-Key`` (428 when it is
    missing and required). Checking an order sends nothing, so it needs no key."""
    base = BASE

    @read.get(base + "/requests/{key}", tags=["trading"])
    async def request_status(key: RequestKey, account: AccountName) -> OrderStatus:
        """Where the order of an ``Idempotency-Key`` stands: executed (with its result),
        rejected, not executed, in progress, unknown (being reconciled) or blocked. Reading it
        never sends anything."""
        status = await gateway.account(account).session.order_status(key)
        if status is None:
            raise MT5DataError(f"no order was ever sent with Idempotency-Key {key!r}",
                               hint="Check the key; it is per account.")  # fmt: skip
        return status

    @trade.post(base + "/orders", tags=["trading"], status_code=201, responses=ACCEPTED)
    async def place(account: AccountName, body: OrderBody, key: str | None = keyed) -> OrderResult:
        """Place a market or pending order exactly once (see ``Idempotency-Key``)."""
        session = gateway.account(account).session
        return await session.place_order(body.request(), idempotency_key=key)

    @trade.post(base + "/orders/check", tags=["trading"])
    async def check(account: AccountName, body: OrderBody) -> OrderCheck:
        """``order_check``: the account as it would be after the order; nothing is sent."""
        return await gateway.account(account).session.check_order(body.request())

    @trade.delete(base + "/orders/{ticket}", tags=["trading"], responses=ACCEPTED)
    async def cancel(ticket: Ticket, account: AccountName, key: str | None = keyed) -> OrderResult:
        """Delete a pending order."""
        return await gateway.account(account).session.cancel_order(ticket, idempotency_key=key)

    @trade.patch(base + "/orders/{ticket}", tags=["trading"], responses=ACCEPTED)
    async def modify_pending(
        ticket: Ticket, account: AccountName, body: PendingBody, key: str | None = keyed
    ) -> OrderResult:
        """Change a pending order's price, stop-limit price, SL / TP or expiry."""
        return await gateway.account(account).session.modify_order(
            ticket, **body.model_dump(), idempotency_key=key
        )

    @trade.patch(base + "/positions/{ticket}", tags=["trading"], responses=ACCEPTED)
    async def modify(
        ticket: Ticket, account: AccountName, body: StopsBody, key: str | None = keyed
    ) -> OrderResult:
        """Set a position's SL / TP."""
        session = gateway.account(account).session
        return await session.modify_position(ticket, sl=body.sl, tp=body.tp, idempotency_key=key)

    @trade.post(base + "/positions/{ticket}/close", tags=["trading"], responses=ACCEPTED)
    async def close(
        ticket: Ticket, account: AccountName, body: CloseBody, key: str | None = keyed
    ) -> OrderResult:
        """Close a position, fully or partly."""
        return await gateway.account(account).session.close_position(
            ticket, volume=body.volume, deviation=body.deviation, comment=body.comment,
            idempotency_key=key,
        )  # fmt: skip


def _admin_routes(admin: Routes, gateway: Gateway) -> None:
    base = BASE

    @admin.post(base + "/halt", tags=["admin"])
    async def halt(account: AccountName, body: HaltBody) -> Halted:
        """Switch the trading halt on: new orders are refused, closing stays possible."""
        session = gateway.account(account).session
        session.halt_trading(body.reason)
        return Halted(halted=True, reason=session.risk.halt_reason)

    @admin.post(base + "/resume", tags=["admin"])
    async def resume(account: AccountName) -> Halted:
        """Switch the trading halt off."""
        gateway.account(account).session.resume_trading()
        return Halted(halted=False, reason="")
