"""Your own FastAPI app with one ``MT5SessionManager`` embedded in its lifespan.

What it shows (the guide is docs/guides/fastapi.md):

* the lifespan opens ONE session for the account when the app starts (``connect``) and closes
  it when the app stops: every request shares it (the session serialises terminal calls on its
  own worker thread and shares identical concurrent reads);
* a FastAPI dependency (``SessionDep``) hands the session to the routes;
* ``POST /orders`` requires an ``Idempotency-Key`` header and passes it to ``place_order``: a
  client that retries after a timeout gets the first order's result again, never a second order;
* MT5 errors become HTTP statuses in one exception handler, by exception class (``ERROR_STATUS``
  below) with the statuses ``mt5gate serve`` answers: invalid input or an order the trade
  server rejected 422, not executed (requote) / trading off / market closed 409, terminal down
  or circuit open 503 (with ``Retry-After``), unknown symbol or ticket 404, and an order whose
  outcome is still unknown after reconciliation 202 with its ``client_id``, as serve does:
  it may have executed, so nothing may invite a resend under a new key; the client asks again
  with the same ``Idempotency-Key``, which answers with the current status, never a second
  order;
* ``GET /health`` runs ``probe()`` and answers ``application/health+json`` (503 on fail).

Routes: ``GET /price/{symbol}``, ``GET /account``, ``GET /positions``, ``POST /orders`` (JSON
``{"symbol": "EURUSD", "side": "buy", "volume": 0.01}`` + ``Idempotency-Key``), ``GET /health``.

Run it on the simulated demo account (it says that the terminal is simulated)::

    .venv/bin/python examples/fastapi_app.py --port 8080
    curl http://127.0.0.1:8080/price/EURUSD
    curl -X POST http://127.0.0.1:8080/orders -H 'Idempotency-Key: order-1' \\
         -H 'Content-Type: application/json' -d '{"symbol":"EURUSD","side":"buy","volume":0.01}' \\
         # 201, or 409 at weekends (market closed)

``--clock real`` (the default) follows the wall clock, as ``mt5gate serve``'s simulated account
does: prices move, and at weekends the forex market is closed (orders answer 409 with retcode
10018 "Market closed", as serve answers them). ``--clock virtual`` stands at a weekday morning
of 2026 (market open, prices still).
``--journal orders.db`` keeps the order journal on disk, so idempotency keys and reconciliation
survive a restart; without it the journal lives in memory (the session logs a warning).

This is for embedding the session in an app of your own. For a ready gateway (API keys with
scopes, several accounts, metrics, WebSocket streams, problem+json errors, readiness) run
``mt5gate serve`` instead.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import math
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Final

import uvicorn
from fastapi import Depends, FastAPI, Header, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from mt5gate import (
    MT5AuthError,
    MT5CircuitBreakerOpen,
    MT5ConnectionError,
    MT5DataError,
    MT5Error,
    MT5OrderOutcomeUnknown,
    MT5SessionManager,
    MT5StateError,
    MT5TradeRejected,
    MT5TradeRetryable,
    MT5TradingDisabledError,
    MT5ValidationError,
    Terminal,
    probe,
)
from mt5gate.constants import TradeRetcode
from mt5gate.errors import (
    MT5OrderBlockedError,
    MT5OwnershipError,
    MT5RiskLimitError,
    MT5TradingHalted,
)
from mt5gate.health import Status
from mt5gate.models import OrderRequest, Side
from mt5gate.orders.journal import JournalError, SqliteJournal
from mt5gate.sim import RealClock, SimTerminal, VirtualClock

log = logging.getLogger("fastapi_app")

HEALTH_JSON: Final = "application/health+json"

#: Exception class -> HTTP status. The first class the error is an instance of wins, so
#: subclasses come before their bases (MT5TradingHalted is an MT5RiskLimitError; MT5InitError and
#: MT5TimeoutError are MT5ConnectionErrors; MT5IdempotencyError is an MT5ValidationError;
#: MT5OwnershipError and MT5OrderBlockedError are MT5StateErrors).
ERROR_STATUS: Final[tuple[tuple[type[MT5Error], int], ...]] = (
    (MT5ValidationError, 422),  # our input checks, and a key reused for another request
    (MT5TradingHalted, 409),  # the halt switch is on
    (MT5RiskLimitError, 422),  # a pre-trade risk limit refused it
    (
        MT5OrderOutcomeUnknown,
        202,
    ),  # may have executed: ask again with the same key, never a new one
    (MT5TradeRejected, 422),  # the trade server said no (no money, invalid stops...)
    (MT5TradeRetryable, 409),  # requote / prices changed: not executed, may be resent
    (MT5TradingDisabledError, 409),  # Algo Trading off, trading disabled for the account
    (MT5CircuitBreakerOpen, 503),  # refused without touching a sick terminal
    (MT5ConnectionError, 503),  # terminal unreachable, timed out, reconnecting
    (MT5OwnershipError, 503),  # another process owns the account (its lease may lapse)
    (MT5OrderBlockedError, 409),  # the key's order was found duplicated: a person must look
    (MT5StateError, 503),  # session not connected (yet) or closed
    (MT5AuthError, 503),  # the terminal is on another account: an operator must look
    (MT5DataError, 404),  # unknown symbol or ticket (MT5NotFoundError), no data
)

#: Retcodes answered apart from their class: a closed market is the market's state, not a
#: fault of the request, so 409 (the same order is good once the session opens), as serve does.
RETCODE_STATUS: Final[dict[int, int]] = {TradeRetcode.MARKET_CLOSED: 409}


@dataclass(frozen=True, slots=True)
class AccountConfig:
    """Where the one session of this app goes. In production read the password from the
    environment or a secret file, never from code or the command line."""

    terminal: Terminal | str  # a Terminal object, "official", "bridge://host:port", ...
    login: int
    password: str
    server: str
    journal: Path | None = None  # SQLite order journal; None: in memory
    watch: tuple[str, ...] = ()  # symbols whose tick age /health judges


class OrderIn(BaseModel):
    """A market order."""

    model_config = ConfigDict(extra="forbid")

    symbol: str = Field(min_length=1, max_length=32, examples=["EURUSD"])
    side: Side
    # strict: a JSON number, never "0.01" or true (which lax parsing would make 1 lot)
    volume: float = Field(gt=0, strict=True, allow_inf_nan=False, description="lots",
                          examples=[0.01])  # fmt: skip


class OrderOut(BaseModel):
    client_id: int  # the order's id in the journal (mt5gate journal show ...)
    order: int  # the ticket; on a hedging account also the position's ticket
    deal: int
    retcode: int
    volume: float
    price: float
    comment: str


class PriceOut(BaseModel):
    symbol: str
    bid: float
    ask: float
    spread: float
    time_msc: int


class AccountOut(BaseModel):
    login: int
    server: str
    currency: str
    leverage: int
    balance: float
    equity: float
    margin: float
    margin_free: float
    hedging: bool


class PositionOut(BaseModel):
    ticket: int
    symbol: str
    type: str
    volume: float
    price_open: float
    profit: float


def get_session(request: Request) -> MT5SessionManager:
    """The app's session (opened by the lifespan)."""
    session: MT5SessionManager = request.app.state.session
    return session


SessionDep = Annotated[MT5SessionManager, Depends(get_session)]
IdempotencyKey = Annotated[
    str,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=128,
        description="Same key and body: the first result again, never a second order",
    ),
]


def error_response(error: MT5Error) -> JSONResponse:
    """One place where MT5 errors become HTTP answers."""
    status = next((code for cls, code in ERROR_STATUS if isinstance(error, cls)), 500)
    retcode = getattr(error, "retcode", None)
    status = RETCODE_STATUS.get(retcode, status) if isinstance(retcode, int) else status
    body: dict[str, Any] = {"error": type(error).__name__, "detail": str(error)}
    if isinstance(error, MT5OrderOutcomeUnknown):
        body["outcome"] = "unknown"  # a status, not a failure: the order may exist
    for name in ("retcode", "client_id", "field"):  # what clients branch on, when present
        value = getattr(error, name, None)
        if value is not None:
            body[name] = value
    headers: dict[str, str] = {}
    if isinstance(error, MT5CircuitBreakerOpen):
        if math.isfinite(error.retry_after_s):  # infinite: forced open (a kill switch)
            headers["Retry-After"] = str(max(1, math.ceil(error.retry_after_s)))
    elif status == 503:
        headers["Retry-After"] = "1"
    return JSONResponse(body, status_code=status, headers=headers)


def create_app(account: AccountConfig) -> FastAPI:
    """The app: one session to ``account``, opened and closed with the app's lifespan."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with contextlib.AsyncExitStack() as stack:
            journal = None
            if account.journal is not None:  # closed after the session (the stack unwinds)
                journal = stack.enter_context(SqliteJournal(account.journal))
            session = MT5SessionManager(
                terminal=account.terminal,
                login=account.login,
                password=account.password,
                server=account.server,
                journal=journal,
                name="fastapi-app",
            )
            await stack.enter_async_context(session)  # connect() now, close() at shutdown
            app.state.session = session
            log.info("session connected: %r", session)
            yield
            log.info("closing the session")
        log.info("session closed")

    app = FastAPI(title="mt5gate FastAPI example", lifespan=lifespan)

    @app.exception_handler(MT5Error)
    async def on_mt5_error(request: Request, error: MT5Error) -> JSONResponse:
        return error_response(error)

    @app.exception_handler(JournalError)
    async def on_journal_error(request: Request, error: JournalError) -> JSONResponse:
        # The journal must be written before an order leaves: no journal, no order.
        body = {"error": "JournalError", "detail": "the order journal is unavailable"}
        return JSONResponse(body, status_code=503, headers={"Retry-After": "5"})

    @app.get("/price/{symbol}")
    async def price(symbol: str, session: SessionDep) -> PriceOut:
        tick = await session.get_price(symbol)
        return PriceOut(
            symbol=tick.symbol,
            bid=tick.bid,
            ask=tick.ask,
            spread=round(tick.spread, 10),
            time_msc=tick.time_msc,
        )

    @app.get("/account")
    async def account_info(session: SessionDep) -> AccountOut:
        a = await session.get_account_info()
        return AccountOut(
            login=a.login,
            server=a.server,
            currency=a.currency,
            leverage=a.leverage,
            balance=a.balance,
            equity=a.equity,
            margin=a.margin,
            margin_free=a.margin_free,
            hedging=a.hedging,
        )

    @app.get("/positions")
    async def positions(session: SessionDep) -> list[PositionOut]:
        return [
            PositionOut(
                ticket=p.ticket,
                symbol=p.symbol,
                type=p.type.name,
                volume=p.volume,
                price_open=p.price_open,
                profit=p.profit,
            )
            for p in await session.positions()
        ]

    @app.post("/orders", status_code=201)
    async def place_order(
        body: OrderIn, idempotency_key: IdempotencyKey, session: SessionDep
    ) -> OrderOut:
        request = OrderRequest(body.symbol, body.side, body.volume)
        result = await session.place_order(request, idempotency_key=idempotency_key)
        return OrderOut(
            client_id=result.client_id,
            order=result.order,
            deal=result.deal,
            retcode=result.retcode,
            volume=result.volume,
            price=result.price,
            comment=result.comment,
        )

    @app.get("/health", response_class=JSONResponse)
    async def health(session: SessionDep) -> JSONResponse:
        reading = await probe(session, symbols=account.watch)  # never raises; ~probe_s at most
        status = 503 if reading.status == Status.FAIL else 200
        return JSONResponse(reading.to_health_json(), status_code=status, media_type=HEALTH_JSON)

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description="FastAPI app embedding one MT5 session")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument(
        "--clock",
        choices=("real", "virtual"),
        default="real",
        help="the simulator's clock: wall clock, or a still weekday morning",
    )
    parser.add_argument("--journal", type=Path, default=None, help="SQLite order journal file")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    print("*** SIMULATED terminal (mt5gate.sim): prices and orders are not real ***", flush=True)
    real = args.clock == "real"
    terminal = SimTerminal(clock=RealClock() if real else VirtualClock())
    account = AccountConfig(
        terminal=terminal,
        login=5001,
        password="sim-pass-5001",
        server="MetaQuotes-Demo",
        journal=args.journal,
        # A virtual clock's ticks are "old" by the wall clock probe() uses: judge tick age only
        # on the real-time simulator (and on a real terminal).
        watch=("EURUSD",) if real else (),
    )
    # uvicorn handles SIGINT/SIGTERM: it stops accepting, finishes requests, then runs the
    # lifespan's exit (session.close()) and returns.
    uvicorn.run(create_app(account), host="127.0.0.1", port=args.port, log_level="info")


if __name__ == "__main__":
    main()
