"""An account of a running ``mt5gate serve``, reached over its HTTP API (issue 15, B).

A command on an account the service owns must not open a session of its own (one owner per
account, DESIGN §8): :class:`RemoteAccount` sends each call of the
:class:`~mt5gate.cli.port.AccountPort` to the service instead, and answers with the same
records (:mod:`mt5gate.models`, read from the service's JSON, which is their JSON form) and the
same errors (:mod:`mt5gate.cli.answers`). Trading writes carry the command's key as
``Idempotency-Key``, so a command run again with the same ``--key`` never sends twice.

Only what the commands need is here. ``calc_margin`` has no route: it is what ``order_check``
says the margin would grow by. ``positions(ticket=...)`` filters the account's positions. Bars
and ticks come back as MT5's numpy arrays, rebuilt from the service's rows (at most 10,000 a
call: ``mt5gate rates`` and ``ticks`` page through longer ranges). :meth:`RemoteAccount.halt`
and :meth:`~RemoteAccount.resume` work the service's halt switch (scope ``admin``). The
client never uses a proxy (the key goes to the service only) and never follows redirects.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from typing import Any, Final, Self, TypeVar
from urllib.parse import quote

import httpx
import numpy as np
from pydantic import BaseModel, TypeAdapter, ValidationError

from mt5gate.cli.answers import (
    Call,
    error_from_problem,
    lost_answer,
    outcome_unknown,
    unreachable,
    unreadable,
)
from mt5gate.cli.owner import ApiKey
from mt5gate.cli.port import Array
from mt5gate.errors import MT5ValidationError
from mt5gate.health import Check, HealthStatus, Status, wall_utc_ms
from mt5gate.models import (
    Account,
    Deal,
    Order,
    OrderCheck,
    OrderRequest,
    OrderResult,
    Position,
    Price,
    Side,
    Symbol,
)
from mt5gate.records import RATES_DTYPE, TICKS_DTYPE
from mt5gate.session.validation import require_symbol_name

__all__ = ["TIMEOUT", "HaltSwitch", "RemoteAccount"]

T = TypeVar("T")

#: Connecting is quick on one host; an order may take the service's reconciliation budget.
TIMEOUT: Final = httpx.Timeout(90.0, connect=5.0)
_PROBLEM: Final = "application/problem+json"
_HEALTH: Final = "application/health+json"

_ACCOUNT: Final = TypeAdapter(Account)


class _Listed(BaseModel):
    """An entry of ``GET /v1/accounts``: what the CLI reads of it."""

    name: str
    simulated: bool


class _AccountList(BaseModel):
    accounts: list[_Listed]


_ACCOUNTS: Final = TypeAdapter(_AccountList)
_SYMBOL: Final = TypeAdapter(Symbol)
_PRICE: Final = TypeAdapter(Price)
_POSITIONS: Final = TypeAdapter(list[Position])
_ORDERS: Final = TypeAdapter(list[Order])
_DEALS: Final = TypeAdapter(list[Deal])
_CHECK: Final = TypeAdapter(OrderCheck)
_RESULT: Final = TypeAdapter(OrderResult)
_ROWS: Final = TypeAdapter(list[dict[str, Any]])
#: ``copy_ticks_*``'s every tick: the service's ticks route has no other filter.
_ALL_TICKS: Final = -1
#: How many times in a row a read (any ``GET``) waits out the key's rate (429), and the
#: longest it waits at once (seconds).
_RATE_WAITS: Final = 10
_RATE_WAIT_MAX_S: Final = 60.0


@dataclass(frozen=True, slots=True)
class HaltSwitch:
    """The halt switch of an account, as ``POST .../halt`` and ``.../resume`` answer."""

    halted: bool
    reason: str


_HALT: Final = TypeAdapter(HaltSwitch)


class RemoteAccount:
    """One account of the ``mt5gate serve`` at ``url``, by its configured name (an
    :class:`~mt5gate.cli.port.AccountPort`). Use it as an async context manager. The key's
    value is sent as ``X-API-Key`` and shown nowhere; where it came from is, if refused."""

    def __init__(
        self, url: str, account: str, key: ApiKey, *,
        transport: httpx.AsyncBaseTransport | None = None, timeout: httpx.Timeout = TIMEOUT,
    ) -> None:  # fmt: skip
        self.url = url
        self.account = account
        self.key = key
        self._base = f"/v1/accounts/{quote(account, safe='')}"
        self._http = httpx.AsyncClient(
            base_url=url, headers={"X-API-Key": key.value.get_secret_value()}, timeout=timeout,
            transport=transport, trust_env=False, follow_redirects=False,
        )  # fmt: skip

    def __repr__(self) -> str:
        return f"<RemoteAccount {self.account!r} at {self.url}>"

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:  # fmt: skip
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connections."""
        await self._http.aclose()

    # ------------------------------------------------------------------------------ reads

    async def simulated(self) -> bool:
        """Whether the service says this account runs on mt5gate's simulator (``GET
        /v1/accounts``): a ``sim`` account, or a bridge whose welcome said it serves one."""
        call = Call(self.url)
        response = await self._waiting(lambda: self._send(call, "GET", "/v1/accounts"))
        listed = self._read(call, _ACCOUNTS, response)
        return any(entry.name == self.account and entry.simulated for entry in listed.accounts)

    async def get_account_info(self) -> Account:
        """``GET /v1/accounts/{account}``."""
        return await self._get(_ACCOUNT, "")

    async def get_symbol_info(self, symbol: str) -> Symbol:
        """``GET .../symbols/{symbol}``."""
        return await self._get(_SYMBOL, f"/symbols/{_segment(symbol)}")

    async def get_price(self, symbol: str) -> Price:
        """``GET .../symbols/{symbol}/tick``."""
        return await self._get(_PRICE, f"/symbols/{_segment(symbol)}/tick")

    async def positions(
        self, *, symbol: str | None = None, ticket: int | None = None
    ) -> list[Position]:
        """``GET .../positions`` (of ``symbol``), or the one with ``ticket``."""
        found = await self._get(_POSITIONS, "/positions", _only(symbol=symbol))
        return found if ticket is None else [p for p in found if p.ticket == ticket]

    async def orders(self, *, symbol: str | None = None, ticket: int | None = None) -> list[Order]:
        """``GET .../orders`` (of ``symbol``), or the one with ``ticket``."""
        found = await self._get(_ORDERS, "/orders", _only(symbol=symbol))
        return found if ticket is None else [o for o in found if o.ticket == ticket]

    async def history_orders(self, date_from: datetime, date_to: datetime) -> list[Order]:
        """``GET .../history/orders?from=&to=``."""
        return await self._get(_ORDERS, "/history/orders", _span(date_from, date_to))

    async def history_deals(self, date_from: datetime, date_to: datetime) -> list[Deal]:
        """``GET .../history/deals?from=&to=``."""
        return await self._get(_DEALS, "/history/deals", _span(date_from, date_to))

    async def get_rates(
        self, symbol: str, timeframe: int, *, count: int | None = None,
        date_from: datetime | int | None = None, date_to: datetime | int | None = None,
    ) -> Array:  # fmt: skip
        """``GET .../symbols/{symbol}/rates``: the first ``count`` (at most 10,000) bars of
        ``date_from..date_to`` (the service's default count and range without them)."""
        params = _only(timeframe=str(int(timeframe)), count=_str(count),
                       **{"from": _date(date_from), "to": _date(date_to)})  # fmt: skip
        return await self._array(f"/symbols/{_segment(symbol)}/rates", params, RATES_DTYPE)

    async def get_ticks(
        self, symbol: str, date_from: datetime | int, *, count: int | None = None,
        date_to: datetime | int | None = None, flags: int = _ALL_TICKS,
    ) -> Array:  # fmt: skip
        """``GET .../symbols/{symbol}/ticks``: the first ``count`` (at most 10,000) ticks from
        ``date_from`` (to ``date_to``). Every tick: the route takes no ``flags`` filter, so
        another value is an ``MT5ValidationError`` (filter the ticks' ``flags`` instead)."""
        if flags != _ALL_TICKS:
            raise MT5ValidationError(field="flags", rule="COPY_TICKS_ALL (-1) through mt5gate "
                                     "serve, whose ticks route returns every tick")  # fmt: skip
        params = _only(count=_str(count), **{"from": _date(date_from), "to": _date(date_to)})
        return await self._array(f"/symbols/{_segment(symbol)}/ticks", params, TICKS_DTYPE)

    async def health(self) -> HealthStatus:
        """The account's checks in the service's latest reading (``GET /v1/health``, where
        they are keyed ``{account}/{check}``): the service reads health every few seconds, on
        the symbols its configuration watches."""
        call = Call(self.url)
        response = await self._send(call, "GET", "/v1/health")
        if not _is(response, _HEALTH):
            raise self._failure(call, response)
        body = _json(response)
        checks = _account_checks(self.account, body.get("checks"))
        if not checks:
            checks = [Check("service:account", "service", "component", Status.FAIL,
                            output=f"mt5gate serve at {self.url} has no account "
                            f"{self.account!r}")]  # fmt: skip
        return HealthStatus.of(checks, wall_utc_ms())

    # ------------------------------------------------------------------------------ trading

    async def check_order(self, request: OrderRequest) -> OrderCheck:
        """``POST .../orders/check``: nothing is sent."""
        return await self._post(_CHECK, "/orders/check", _order_body(request))

    async def calc_margin(
        self, symbol: str, side: Side, volume: float, price: float | None = None
    ) -> float:
        """The margin a market order of ``volume`` lots adds, by ``order_check`` (the service
        has no margin route): the account's margin after it, less its margin now. It is priced
        at the current quote, so ``price`` (a pending order's level) is not used."""
        del price
        now = await self.get_account_info()
        check = await self.check_order(OrderRequest(symbol, side, volume))
        return max(0.0, check.margin - now.margin)

    async def place_order(
        self, request: OrderRequest, *, idempotency_key: str | None = None
    ) -> OrderResult:
        """``POST .../orders`` with ``Idempotency-Key``: placed exactly once."""
        return await self._write("POST", "/orders", idempotency_key, _order_body(request))

    async def modify_position(
        self, ticket: int, *, sl: float | None = None, tp: float | None = None,
        idempotency_key: str | None = None,
    ) -> OrderResult:  # fmt: skip
        """``PATCH .../positions/{ticket}`` with ``Idempotency-Key``: SL / TP (None keeps the
        level, 0 removes it)."""
        body = {name: level for name, level in (("sl", sl), ("tp", tp)) if level is not None}
        return await self._write("PATCH", f"/positions/{ticket}", idempotency_key, body)

    async def close_position(
        self, ticket: int, *, volume: float | None = None, idempotency_key: str | None = None
    ) -> OrderResult:
        """``POST .../positions/{ticket}/close`` with ``Idempotency-Key``."""
        body = {} if volume is None else {"volume": volume}
        return await self._write("POST", f"/positions/{ticket}/close", idempotency_key, body)

    async def cancel_order(self, ticket: int, *, idempotency_key: str | None = None) -> OrderResult:
        """``DELETE .../orders/{ticket}`` with ``Idempotency-Key``."""
        return await self._write("DELETE", f"/orders/{ticket}", idempotency_key, None)

    async def modify_order(
        self, ticket: int, *, price: float | None = None, sl: float | None = None,
        tp: float | None = None, idempotency_key: str | None = None,
    ) -> OrderResult:  # fmt: skip
        """``PATCH .../orders/{ticket}`` with ``Idempotency-Key``: a pending order's price and
        SL / TP (None keeps one, an SL / TP of 0 removes it)."""
        levels = (("price", price), ("sl", sl), ("tp", tp))
        body = {name: level for name, level in levels if level is not None}
        return await self._write("PATCH", f"/orders/{ticket}", idempotency_key, body)

    # ------------------------------------------------------------------------ the halt switch

    async def halt(self, reason: str) -> HaltSwitch:
        """``POST .../halt``: the service refuses every new order until :meth:`resume`."""
        return await self._post(_HALT, "/halt", {"reason": reason})

    async def resume(self) -> HaltSwitch:
        """``POST .../resume``: the service takes new orders again."""
        return await self._post(_HALT, "/resume", {})

    # ------------------------------------------------------------------------------ HTTP

    async def _array(self, path: str, params: Mapping[str, str], dtype: np.dtype[Any]) -> Array:
        """The service's rows of bars or ticks as MT5's array of ``dtype`` (field by field).

        A long export asks page after page, past the key's burst: it waits out the rate as
        every read does (:meth:`_waiting`)."""
        call = Call(self.url)
        response = await self._waiting(lambda: self._streamed(call, self._base + path, params))
        rows = self._read(call, _ROWS, response)
        names = dtype.names or ()
        try:
            return np.array([tuple(row[name] for name in names) for row in rows], dtype=dtype)
        except (KeyError, TypeError, ValueError, OverflowError) as error:
            detail = f"a row without {error}" if isinstance(error, KeyError) else str(error)
            raise unreadable(call, f"GET {response.request.url.path}", detail) from None

    async def _get(
        self, adapter: TypeAdapter[T], path: str, params: Mapping[str, str] | None = None
    ) -> T:
        call = Call(self.url)
        response = await self._waiting(
            lambda: self._send(call, "GET", self._base + path, params=params)
        )
        return self._read(call, adapter, response)

    @staticmethod
    async def _waiting(read: Callable[[], Awaitable[httpx.Response]]) -> httpx.Response:
        """``read()``, asked again after the ``Retry-After`` the service gives while the key is
        over its rate (429), up to :data:`_RATE_WAITS` times in a row: a read sends nothing,
        and a command that reads just after another one used up the key's burst (an export
        of many pages, then the next command) waits instead of failing. Writes are never
        asked twice here."""
        for _ in range(_RATE_WAITS):
            response = await read()
            wait = _retry_after(response)
            if wait is None:
                return response
            await asyncio.sleep(wait)
        return response

    async def _post(self, adapter: TypeAdapter[T], path: str, body: Mapping[str, Any]) -> T:
        call = Call(self.url)
        response = await self._send(call, "POST", self._base + path, json=body)
        return self._read(call, adapter, response)

    async def _write(
        self, method: str, path: str, key: str | None, body: Mapping[str, Any] | None
    ) -> OrderResult:
        """A trading write: a 202 (its outcome unknown yet) is an error too, never a result."""
        call = Call(self.url, write=True, key=key)
        headers = {} if key is None else {"Idempotency-Key": key}
        response = await self._send(call, method, self._base + path, json=body, headers=headers)
        if response.status_code == 202:
            raise outcome_unknown(call, _json(response))
        return self._read(call, _RESULT, response)

    async def _streamed(self, call: Call, path: str, params: Mapping[str, str]) -> httpx.Response:
        """``GET path``, its body read into a response of its own. httpx keeps each response
        it streams in a reference cycle, which only the garbage collector's rare full pass
        frees: a long export would hold every page it is done with (a megabyte each). The
        body read here is held by a plain response, freed as soon as it is read."""
        try:
            async with self._http.stream("GET", path, params=params) as streamed:
                raw = b"".join([chunk async for chunk in streamed.aiter_raw()])
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as error:
            raise unreachable(call, error) from None  # nothing was sent
        except httpx.TransportError as error:
            raise lost_answer(call, error) from None
        # as sent (still encoded, if it was): the response decodes it as httpx would
        return httpx.Response(streamed.status_code, headers=streamed.headers, content=raw,
                              request=streamed.request)  # fmt: skip

    async def _send(self, call: Call, method: str, path: str, **options: Any) -> httpx.Response:
        try:
            return await self._http.request(method, path, **options)
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as error:
            raise unreachable(call, error) from None  # nothing was sent
        except httpx.TransportError as error:
            raise lost_answer(call, error) from None

    def _read(self, call: Call, adapter: TypeAdapter[T], response: httpx.Response) -> T:
        if not response.is_success or _is(response, _PROBLEM):
            raise self._failure(call, response)
        try:
            return adapter.validate_json(response.content)
        except ValidationError as error:
            what = f"{response.request.method} {response.request.url.path}"
            raise unreadable(call, what, _first(error)) from None

    def _failure(self, call: Call, response: httpx.Response) -> Exception:
        body = _json(response) if _is(response, _PROBLEM) else {}
        return error_from_problem(call, response, body, key_source=self.key.source,
                                  key_hint=self.key.if_refused)  # fmt: skip


def _segment(symbol: str) -> str:
    """A symbol as one path segment (``#AAPL``, ``EURUSD.m``), checked as the session does."""
    return quote(require_symbol_name(symbol), safe="")


def _only(**values: str | None) -> dict[str, str]:
    return {name: value for name, value in values.items() if value is not None}


def _retry_after(response: httpx.Response) -> float | None:
    """How long to wait before asking again (a 429 with a ``Retry-After`` in seconds), else
    None."""
    given = response.headers.get("retry-after", "")
    if response.status_code != 429 or not given.isdigit():
        return None
    return min(float(given), _RATE_WAIT_MAX_S)


def _str(value: int | None) -> str | None:
    return None if value is None else str(value)


def _date(value: datetime | int | None) -> str | None:
    """A query date: epoch seconds as digits (how the service reads a number), else ISO."""
    if value is None or isinstance(value, datetime):
        return None if value is None else value.isoformat()
    return str(int(value))


def _span(date_from: datetime, date_to: datetime) -> dict[str, str]:
    return {"from": date_from.isoformat(), "to": date_to.isoformat()}


def _order_body(request: OrderRequest) -> dict[str, Any]:
    """``request`` as the service's order body (what is unset is left out). ``magic`` is the
    service's own (it carries the client order id), so a request cannot set one."""
    if request.magic:
        raise MT5ValidationError(field="magic", rule="set by mt5gate serve itself (0 here)")
    fields = {
        "symbol": request.symbol, "side": request.side.value, "volume": request.volume,
        "kind": request.kind.value, "price": request.price, "stop_limit": request.stop_limit,
        "sl": request.sl, "tp": request.tp, "deviation": request.deviation,
        "filling": request.filling, "expiration_msc": request.expiration_msc,
        "comment": request.comment,
    }  # fmt: skip
    return {name: value for name, value in fields.items() if value is not None}


def _account_checks(account: str, checks: object) -> list[Check]:
    """The checks of ``account`` in a service-wide health+json ``checks`` member."""
    if not isinstance(checks, dict):
        return []
    found = []
    for key, entries in checks.items():
        if key == f"{account}:health":  # the service has no reading of it yet
            name = "service:health"
        elif key.startswith(f"{account}/"):
            name = key.removeprefix(f"{account}/")
        else:
            continue
        found += [_check(name, entry) for entry in entries if isinstance(entry, dict)]
    return found


def _check(name: str, entry: Mapping[str, Any]) -> Check:
    """One health+json check object (``componentId``, ``observedValue``...) as a Check."""
    status = entry.get("status")
    return Check(
        name, str(entry.get("componentId", name.partition(":")[0])),
        str(entry.get("componentType", "component")),
        Status(status) if status in set(Status) else Status.FAIL,
        entry.get("observedValue"), entry.get("observedUnit"), str(entry.get("output", "")),
        str(entry.get("time", "")),
    )  # fmt: skip


def _is(response: httpx.Response, media: str) -> bool:
    given: str = response.headers.get("content-type", "")
    return given.partition(";")[0].strip() == media


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _first(error: ValidationError) -> str:
    problem = error.errors()[0]
    where = ".".join(str(part) for part in problem["loc"]) or "the body"
    return f"{where}: {problem['msg']}"
