"""``MT5SessionManager``: the async, self-healing session to one MT5 account.

A facade: the state machine (:mod:`~mt5gate.session.state`), the call path
(:mod:`~mt5gate.session.calls`), connection management (:mod:`~mt5gate.session.connection`),
trading (:mod:`~mt5gate.session.trading`) and streams (:mod:`~mt5gate.session.streams`) each live
in their own module; this class wires them together and exposes typed methods.

    async with MT5SessionManager(login=5001, password="...", server="MetaQuotes-Demo",
                                 terminal=SimTerminal()) as session:
        price = await session.get_price("EURUSD")
"""

from __future__ import annotations

import logging
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from datetime import datetime
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self, TypeVar

import numpy as np
import numpy.typing as npt
from pydantic import SecretStr

from mt5gate.circuit_breaker import BreakerPolicy, CircuitBreaker
from mt5gate.errors import (
    RECONNECTING_HINT,
    MT5ConnectionError,
    MT5DataError,
    MT5Error,
    MT5StateError,
    MT5ValidationError,
)
from mt5gate.models import (
    Account,
    BookLevel,
    Deal,
    Order,
    OrderCheck,
    OrderRequest,
    OrderResult,
    OrderStatus,
    Position,
    Price,
    Side,
    Symbol,
    TerminalStatus,
)
from mt5gate.orders.codec import EventCodec
from mt5gate.orders.ids import DEFAULT_NAMESPACE
from mt5gate.orders.journal import SqliteJournal
from mt5gate.orders.ownership import LeasePolicy, Ownership, owner_id
from mt5gate.orders.risk import RiskGate, RiskLimits
from mt5gate.orders.sqlite import SqliteStore
from mt5gate.orders.store import OrderStore
from mt5gate.session.calls import TerminalCaller
from mt5gate.session.connection import ConnectionManager, Credentials
from mt5gate.session.observer import LoggingObserver, SessionObserver
from mt5gate.session.policies import (
    AsyncClock,
    ReadRetryPolicy,
    RealAsyncClock,
    ReconcilePolicy,
    ReconnectPolicy,
    Timeouts,
)
from mt5gate.session.ranges import date_seconds, rates_in_range
from mt5gate.session.resolve import resolve_terminal
from mt5gate.session.specs import SpecPolicy
from mt5gate.session.state import SessionState, StateMachine
from mt5gate.session.symbols import SymbolNames
from mt5gate.session.validation import require_count, require_date, require_symbol_name
from mt5gate.terminal.base import MarketWatch, Terminal
from mt5gate.terminal.process import ProcessTerminal
from mt5gate.terminal.worker import TerminalWorker

if TYPE_CHECKING:
    from mt5gate.orders.pipeline import OrderPipeline
    from mt5gate.session.book import Book
    from mt5gate.session.candles import Bar
    from mt5gate.session.streams import Streams, TradeEvent
    from mt5gate.session.trading import Trading

__all__ = ["MT5SessionManager"]

_log = logging.getLogger("mt5gate.orders")

S = SessionState
T = TypeVar("T")
Array = npt.NDArray[np.void]
DateArg = datetime | int
_USABLE = (S.CONNECTED, S.DEGRADED)
_DEFAULT_BARS = 100
_DEFAULT_TICKS = 1000


class MT5SessionManager:
    """An async session to one MT5 account on one terminal.

    ``terminal`` is a Terminal object (``mt5gate.sim.SimTerminal()``, the ``MetaTrader5``
    module) or a name: ``"official"`` imports the official package, ``"sim"`` builds a
    real-time simulator and says so in the log, ``"bridge://host:port"`` reaches an mt5gate
    bridge (with ``terminal_token``), ``"rpyc://host:port"`` an RPyC classic server such as
    mt5linux's. There is no silent fallback to the simulator.

    ``isolate=True`` (with ``"official"`` only) runs the package in a child process the session
    starts and stops (:class:`~mt5gate.terminal.process.ProcessTerminal`): each session then
    has its own copy of the package's one connection per process, so several official
    terminals (with ``path``, one installation each) can serve one program, and a call that
    hangs gets the child killed and replaced.

    Without ``password`` the session attaches to the terminal as it is and verifies that it is
    logged into ``login`` (and ``server``), refusing a cross-wired terminal; with a password it
    logs in.

    Orders go through the exactly-once pipeline (:mod:`~mt5gate.orders.pipeline`): pass
    ``journal=SqliteJournal("orders.db")`` (or any ``OrderStore``, which stays the caller's to
    close, as one store may serve many sessions, unless ``own_store=True``) to keep their
    journal on disk across crashes (without one it is kept in memory, and a warning says so),
    ``risk=RiskLimits(...)`` for pre-trade limits and ``reconcile=ReconcilePolicy(...)`` to
    tune how lost replies are resolved. Orders are built from symbol specifications kept a
    few seconds (``specs=SpecPolicy(ttl_s=...)``; see :mod:`~mt5gate.session.specs`).

    One owner per account: ``connect()`` takes the account's lease in the journal (``owner``
    names this process, ``owner_info`` tells other processes how to reach it, ``lease`` sets
    its timing) and raises ``MT5OwnershipError`` naming the owner when another process holds
    it. ``close()`` gives it up.
    """

    def __init__(
        self,
        *,
        terminal: Terminal | str,
        login: int | None = None,
        password: SecretStr | str | None = None,
        server: str | None = None,
        path: str | None = None,
        terminal_token: SecretStr | str | None = None,
        isolate: bool = False,
        timeouts: Timeouts | None = None,
        reconnect: ReconnectPolicy | None = None,
        breaker: BreakerPolicy | None = None,
        read_retry: ReadRetryPolicy | None = None,
        clock: AsyncClock | None = None,
        observer: SessionObserver | None = None,
        name: str = "mt5gate",
        random_source: Callable[[], float] = random.random,
        journal: SqliteJournal | OrderStore | None = None,
        risk: RiskLimits | RiskGate | None = None,
        reconcile: ReconcilePolicy | None = None,
        owner: str | None = None,
        owner_info: Mapping[str, Any] | None = None,
        lease: LeasePolicy | None = None,
        own_store: bool | None = None,
        specs: SpecPolicy | None = None,
    ) -> None:
        secret = SecretStr(password) if isinstance(password, str) else password
        self.credentials = Credentials(login, secret, server, path)
        token = SecretStr(terminal_token) if isinstance(terminal_token, str) else terminal_token
        self.terminal = resolve_terminal(terminal, token=token, isolate=isolate,
                                         process_name=f"{name}-official")  # fmt: skip
        #: the child process the session started for its terminal (``isolate``), closed with it
        made = self.terminal if isolate else None
        self._child = made if isinstance(made, ProcessTerminal) else None
        self.timeouts = timeouts or Timeouts()
        self.read_retry = read_retry or ReadRetryPolicy()
        self.clock = clock or RealAsyncClock()
        self.observer = observer or LoggingObserver()
        self.name = name
        self._random = random_source
        self.machine = StateMachine()
        self.machine.subscribe(self.observer.state_changed)
        self.breaker = CircuitBreaker(breaker or BreakerPolicy(), name=name)
        self.breaker.subscribe(self.observer.breaker_changed)
        self.worker = TerminalWorker(f"{name}-terminal")
        self.caller = TerminalCaller(
            self.terminal, self.worker, self.breaker, self.clock, self.observer,
            self._call_failed, self._call_succeeded,
        )  # fmt: skip
        self.connection = ConnectionManager(
            self.caller, self.machine, self.credentials, self.timeouts,
            reconnect or ReconnectPolicy(), self.clock, self.observer, random_source,
        )  # fmt: skip
        self._trading: Trading | None = None
        self._streams: Streams | None = None
        self._own_journal = journal is None
        #: a store passed in is the caller's (one store may serve many sessions): not closed,
        #: unless ``own_store`` says the session is to close it
        self._own_store = (journal is None or isinstance(journal, SqliteJournal)
                           if own_store is None else own_store)  # fmt: skip
        self.store, self.journal = _store_of(journal, name)
        secrets = [s for s in (secret, token) if s is not None]
        self.codec = EventCodec()
        self.codec.protect(*secrets)
        if self.journal is not None:
            self.journal.protect(*secrets)
        self.risk = risk if isinstance(risk, RiskGate) else RiskGate(risk)
        self.reconcile_policy = reconcile or ReconcilePolicy()
        self.spec_policy = specs or SpecPolicy()
        self.ownership = Ownership(self.store, owner or owner_id("session"),
                                   lease or LeasePolicy(), dict(owner_info or {}))  # fmt: skip
        self._pipeline: OrderPipeline | None = None
        self._symbols = SymbolNames(self.read, self.clock.monotonic)

    def __repr__(self) -> str:
        login = self.credentials.login
        return (
            f"<MT5SessionManager {self.name!r} state={self.state} login={login} "
            f"breaker={self.breaker.state}>"
        )

    @property
    def state(self) -> SessionState:
        """Where the session is: disconnected, connecting, connected, degraded, ..."""
        return self.machine.state

    @property
    def last_connect_failure(self) -> str | None:
        """Why the last connect or reconnect attempt failed (the error's message, such as
        ``IPC initialize failed, TLS: certificate verify failed: ...``); ``None`` once one
        succeeds, or before any. Health checks and refused calls repeat it."""
        return self.connection.last_failure

    def _call_failed(self, error: MT5Error) -> None:
        self.connection.call_failed(error)

    def _call_succeeded(self) -> None:
        self.connection.call_succeeded()

    # -------------------------------------------------------------- life cycle

    async def __aenter__(self) -> Self:
        await self.connect()
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def connect(self) -> None:
        """Attach to the terminal, verify the account and server, replay subscriptions."""
        if self.state == S.CLOSED:
            raise MT5StateError("the session is closed; create a new MT5SessionManager")
        self.worker.start()
        await self.connection.connect()
        await self.pipeline.start()

    async def disconnect(self) -> None:
        """Detach from the terminal (the session can connect again)."""
        await self.connection.disconnect()

    async def reconnect(self) -> None:
        """Detach and connect again now."""
        await self.connection.reconnect()

    async def close(self) -> None:
        """Detach for good, stop streams and the worker thread, give the account's lease up.

        The lease goes last: the terminal is detached (a simulator has written its state
        file) before another process may take the account over."""
        if self._streams is not None:
            await self._streams.close()
        if self._pipeline is not None:
            await self._pipeline.stop()
        await self.connection.disconnect(final=True)
        await self.ownership.close()
        self.worker.close(timeout_s=1.0)
        if self._child is not None:
            self._child.close()
        if self._own_store:
            await self.store.close()
        if self._own_journal and self.journal is not None:
            self.journal.close()

    def close_journal(self) -> None:
        """Close the SQLite journal the session was given (the caller's; idempotent). A
        store given instead is left open: it may serve other sessions."""
        if self.journal is not None and self._own_store:
            self.journal.close()

    # ------------------------------------------------------------------ calls

    def _check_usable(self) -> None:
        state = self.machine.state
        if state in _USABLE:
            return
        failure = self.last_connect_failure
        why = "" if failure is None else f" (the last connect attempt failed: {failure})"
        if state == S.RECONNECTING:
            raise MT5ConnectionError(
                f"the terminal connection was lost and mt5gate is reconnecting{why}",
                hint=RECONNECTING_HINT,
            )
        raise MT5StateError(f"the session is {state}{why}")  # CONNECT_FIRST_HINT

    async def call(self, function: str, *args: Any, **kwargs: Any) -> Any:
        """A raw terminal call through the session's path (breaker, worker, deadline).

        For what the typed methods do not cover; returns the MT5 record as it is.
        """
        self._check_usable()
        deadline = kwargs.pop("deadline_s", self.timeouts.call_s)
        return await self.caller.call(function, *args, deadline_s=deadline, **kwargs)

    async def read(self, function: str, *args: Any, shared: bool = False, **kwargs: Any) -> Any:
        """An idempotent read, retried on infrastructure failures within the read policy."""
        policy, started = self.read_retry, self.clock.monotonic()
        attempt = 0
        while True:
            attempt += 1
            self._check_usable()
            try:
                return await self.caller.call(
                    function, *args, deadline_s=self.timeouts.call_s, shared=shared, **kwargs
                )
            except MT5Error as error:
                spent = self.clock.monotonic() - started
                retry = _transient(error) and attempt < policy.attempts
                if not retry or spent >= policy.deadline_s or self.machine.state not in _USABLE:
                    raise
                await self.clock.sleep(policy.delay_s(attempt, self._random))

    # ------------------------------------------------------------------ reads

    async def get_account_info(self) -> Account:
        """The logged-in account and its money figures."""
        return Account.from_record(await self.read("account_info", shared=True))

    async def get_terminal_info(self) -> TerminalStatus:
        """The terminal's switches and link quality."""
        return TerminalStatus.from_record(await self.read("terminal_info", shared=True))

    async def get_price(self, symbol: str) -> Price:
        """The latest tick of ``symbol`` (selected in Market Watch on first use)."""
        self._require_symbol(symbol)
        try:
            tick = await self.read("symbol_info_tick", symbol, shared=True)
        except MT5DataError:
            tick = await self._naming(symbol, self._selected_tick(symbol))
        return Price.from_tick(symbol, tick)

    async def _selected_tick(self, symbol: str) -> Any:
        """The tick of ``symbol`` once selected in Market Watch (a read that failed first)."""
        await self.select_symbol(symbol)
        return await self.read("symbol_info_tick", symbol, shared=True)

    async def select_symbol(self, symbol: str, enable: bool = True) -> None:
        """Add ``symbol`` to Market Watch (kept across reconnects), or remove it."""
        self._require_symbol(symbol)
        await self._naming(symbol, self.read("symbol_select", symbol, enable))
        subscriptions = self.connection.subscriptions.symbols
        if enable:
            subscriptions.add(symbol)
        else:
            subscriptions.discard(symbol)

    async def subscribe_book(self, symbol: str) -> None:
        """Subscribe to ``symbol``'s depth of market (kept across reconnects)."""
        self._require_symbol(symbol)
        await self._naming(symbol, self.read("market_book_add", symbol))
        self.connection.subscriptions.books.add(symbol)

    async def get_book(self, symbol: str) -> list[BookLevel]:
        """The depth of market of a subscribed symbol: sell levels, then buy levels."""
        self._require_symbol(symbol)
        book = await self._naming(symbol, self.read("market_book_get", symbol))
        return [BookLevel.from_record(b) for b in book]

    async def unsubscribe_book(self, symbol: str) -> None:
        """End a depth-of-market subscription."""
        self._require_symbol(symbol)
        self.connection.subscriptions.books.discard(symbol)
        await self.read("market_book_release", symbol)

    async def get_symbol_info(self, symbol: str) -> Symbol:
        """The specification and quote of ``symbol``."""
        self._require_symbol(symbol)
        try:
            record = await self.read("symbol_info", symbol, shared=True)
        except MT5DataError as error:
            explained = await self._symbols.explain(symbol, error, asked_info=True)
            if explained is error:
                raise
            raise explained from None
        return Symbol.from_record(record)

    async def list_symbols(self, group: str | None = None) -> list[Symbol]:
        """All symbols, or those matching an MT5 group mask such as ``"*USD*,!*JPY*"``."""
        records = await self.read("symbols_get", group) if group else await self.read("symbols_get")
        return [Symbol.from_record(r) for r in records]

    async def market_watch(self) -> list[str]:
        """The names of the symbols selected in Market Watch, in ``symbols_get()`` order.

        A terminal that can say so directly (:class:`~mt5gate.terminal.base.MarketWatch`: the
        simulator) is asked that; any other gives every symbol's record and its ``select``
        flag, which is the only way the ``MetaTrader5`` module has."""
        if isinstance(self.terminal, MarketWatch):
            return list(await self.read("market_watch", shared=True))
        return [s.name for s in await self.list_symbols() if s.selected]

    async def get_rates(
        self, symbol: str, timeframe: int, *, count: int | None = None, start_pos: int = 0,
        date_from: DateArg | None = None, date_to: DateArg | None = None,
    ) -> Array:  # fmt: skip
        """Bars as MT5's numpy array, oldest first: ``count`` (default 100) back from
        ``start_pos`` (0 = the forming bar), ``count`` ending at ``date_from``, or, with both
        dates, every bar of ``date_from..date_to`` (the first ``count`` when given).

        A range is fetched in windows the terminal accepts (:mod:`~mt5gate.session.ranges`):
        one ``copy_rates_range`` over more than ``terminal_info().maxbars`` bars fails whole."""
        self._require_symbol(symbol)
        _require_dates(date_from=date_from, date_to=date_to)
        if count is not None:
            require_count(count)
        return await self._naming(symbol, self._rates(symbol, timeframe, count, start_pos,
                                                      date_from, date_to))  # fmt: skip

    async def _rates(
        self, symbol: str, timeframe: int, count: int | None, start_pos: int,
        date_from: DateArg | None, date_to: DateArg | None,
    ) -> Array:  # fmt: skip
        if date_from is not None and date_to is not None:
            span = (date_seconds(date_from), date_seconds(date_to))
            info = await self.read("terminal_info", shared=True)
            return await rates_in_range(
                self.read, symbol, timeframe, span, count=count, maxbars=int(info.maxbars)
            )
        n = _DEFAULT_BARS if count is None else count
        if date_from is not None:
            return await self.read("copy_rates_from", symbol, timeframe, date_from, n)  # type: ignore[no-any-return]
        return await self.read("copy_rates_from_pos", symbol, timeframe, start_pos, n)  # type: ignore[no-any-return]

    async def get_ticks(
        self, symbol: str, date_from: DateArg, *, count: int | None = None,
        date_to: DateArg | None = None, flags: int = -1,
    ) -> Array:  # fmt: skip
        """Ticks as MT5's numpy array: ``count`` (default 1000) from ``date_from``; with
        ``date_to``, every tick up to it, or the first ``count`` of them when given (one
        ``copy_ticks_from``, so a count bounds the work whatever the range)."""
        self._require_symbol(symbol)
        _require_dates(date_from=date_from, date_to=date_to)
        if count is not None:
            require_count(count)
        return await self._naming(symbol, self._ticks(symbol, date_from, count, date_to, flags))

    async def _ticks(
        self, symbol: str, date_from: DateArg, count: int | None, date_to: DateArg | None,
        flags: int,
    ) -> Array:  # fmt: skip
        if date_to is not None and count is None:
            return await self.read("copy_ticks_range", symbol, date_from, date_to, flags)  # type: ignore[no-any-return]
        n = _DEFAULT_TICKS if count is None else count
        ticks = await self.read("copy_ticks_from", symbol, date_from, n, flags)
        if date_to is None:
            return ticks  # type: ignore[no-any-return]
        end_ms = date_seconds(date_to) * 1000  # copy_ticks_range's end: time_msc <= to * 1000
        return ticks[: int(np.searchsorted(ticks["time_msc"], end_ms, side="right"))]  # type: ignore[no-any-return]

    async def positions(
        self, *, symbol: str | None = None, group: str | None = None, ticket: int | None = None
    ) -> list[Position]:
        """Open positions, optionally by symbol, group mask or ticket."""
        kwargs = _selectors(symbol=symbol, group=group, ticket=ticket)
        return [Position.from_record(p) for p in await self.read("positions_get", **kwargs)]

    async def orders(
        self, *, symbol: str | None = None, group: str | None = None, ticket: int | None = None
    ) -> list[Order]:
        """Active pending orders, optionally by symbol, group mask or ticket."""
        kwargs = _selectors(symbol=symbol, group=group, ticket=ticket)
        return [Order.from_record(o) for o in await self.read("orders_get", **kwargs)]

    async def history_orders(
        self, date_from: DateArg, date_to: DateArg, *, group: str | None = None
    ) -> list[Order]:
        """Orders in the history between two dates (broker server time: pad the window)."""
        _require_dates(date_from=date_from, date_to=date_to)
        kwargs = _selectors(group=group)
        records = await self.read("history_orders_get", date_from, date_to, **kwargs)
        return [Order.from_record(o) for o in records]

    async def history_deals(
        self, date_from: DateArg, date_to: DateArg, *, group: str | None = None
    ) -> list[Deal]:
        """Deals between two dates (broker server time: pad the window)."""
        _require_dates(date_from=date_from, date_to=date_to)
        kwargs = _selectors(group=group)
        records = await self.read("history_deals_get", date_from, date_to, **kwargs)
        return [Deal.from_record(d) for d in records]

    @staticmethod
    def _require_symbol(symbol: object) -> None:
        require_symbol_name(symbol)

    async def _naming(self, symbol: str, call: Awaitable[T]) -> T:
        """``call``, which names ``symbol``; when it fails because the symbol does not exist,
        :class:`~mt5gate.errors.MT5NotFoundError` (code -4) naming it, whatever the call said
        (:mod:`~mt5gate.session.symbols`)."""
        try:
            return await call
        except MT5DataError as error:
            explained = await self._symbols.explain(symbol, error)
            if explained is error:
                raise
            raise explained from None

    # --------------------------------------------------------- trading, streams

    @property
    def trading(self) -> Trading:
        """Order placement and management (see :class:`~mt5gate.session.trading.Trading`)."""
        if self._trading is None:
            from mt5gate.session.trading import Trading

            self._trading = Trading(self)
        return self._trading

    @property
    def pipeline(self) -> OrderPipeline:
        """The exactly-once order pipeline (journal, risk limits, reconciliation, sweep)."""
        if self._pipeline is None:
            from mt5gate.orders.pipeline import OrderPipeline
            from mt5gate.session.ports import SessionPorts

            ports = SessionPorts(self)
            self._pipeline = OrderPipeline(
                broker=ports, ledger=ports, store=self.store, codec=self.codec, risk=self.risk,
                policy=self.reconcile_policy, ownership=self.ownership, observer=self.observer,
                clock=self.clock, namespace=getattr(self.store, "namespace", DEFAULT_NAMESPACE),
            )  # fmt: skip
        return self._pipeline

    def halt_trading(self, reason: str = "") -> None:
        """Switch the trading halt on: new orders are refused (closing stays possible)."""
        self.risk.halt(reason)
        _log.warning("trading halted%s", f": {reason}" if reason else "")

    def resume_trading(self) -> None:
        """Switch the trading halt off."""
        self.risk.resume()
        _log.warning("trading resumed")

    async def sweep_orders(self) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """Audit the terminal against the journal now: (unexpected, duplicate) client ids."""
        self._check_usable()
        return await self.pipeline.sweep()

    async def unresolved_orders(self) -> list[int]:
        """Client ids (sequences) of this account's orders whose outcome is still open."""
        return [c.sequence for c in await self.pipeline.unresolved()]

    async def order_status(self, idempotency_key: str) -> OrderStatus | None:
        """Where the order of ``idempotency_key`` stands: executed (with its result), rejected,
        not executed, in progress, unknown or blocked (``None``: the key was never used)."""
        return await self.pipeline.status(idempotency_key)

    async def order_state(self, client_id: int) -> str | None:
        """The journal state of this account's order ``client_id`` (``"ACKNOWLEDGED"``,
        ``"UNKNOWN"``...; see ``mt5gate.orders.EventKind``), ``None`` if it never existed."""
        kind = await self.pipeline.state(client_id)
        return None if kind is None else str(kind.value)

    @property
    def streams(self) -> Streams:
        """Tick and trade-event streams (see :class:`~mt5gate.session.streams.Streams`)."""
        if self._streams is None:
            from mt5gate.session.streams import Streams

            self._streams = Streams(self)
        return self._streams

    async def check_order(self, request: OrderRequest) -> OrderCheck:
        """``order_check``: the account as it would be after ``request`` (nothing is sent)."""
        return await self.trading.check_order(request)

    async def calc_margin(
        self, symbol: str, side: Side, volume: float, price: float | None = None
    ) -> float:
        """Margin ``volume`` lots would need, in the account currency."""
        return await self.trading.calc_margin(symbol, side, volume, price)

    async def calc_profit(
        self, symbol: str, side: Side, volume: float, price_open: float, price_close: float
    ) -> float:
        """Profit of a trade between two prices, in the account currency."""
        return await self.trading.calc_profit(symbol, side, volume, price_open, price_close)

    async def place_order(
        self, request: OrderRequest, *, idempotency_key: str | None = None,
        resubmit: bool = False,
    ) -> OrderResult:  # fmt: skip
        """Validate and send a market or pending order exactly once.

        The same ``idempotency_key`` with the same request returns the first outcome and never
        sends a second order. ``resubmit=True`` lets mt5gate resend once, with the same client
        id, an order whose lost reply reconciliation proved absent.
        """
        return await self.trading.place_order(
            request, idempotency_key=idempotency_key, resubmit=resubmit
        )

    async def modify_position(
        self, ticket: int, *, sl: float | None = None, tp: float | None = None,
        idempotency_key: str | None = None,
    ) -> OrderResult:  # fmt: skip
        """Set a position's stop loss and take profit (None keeps the current level)."""
        return await self.trading.modify_position(
            ticket, sl=sl, tp=tp, idempotency_key=idempotency_key
        )

    async def close_position(
        self, ticket: int, *, volume: float | None = None, deviation: int = 20, comment: str = "",
        idempotency_key: str | None = None, resubmit: bool = False,
    ) -> OrderResult:  # fmt: skip
        """Close a position fully, or partly with ``volume`` (hedging and netting), once."""
        return await self.trading.close_position(
            ticket, volume=volume, deviation=deviation, comment=comment,
            idempotency_key=idempotency_key, resubmit=resubmit,
        )  # fmt: skip

    async def cancel_order(self, ticket: int, *, idempotency_key: str | None = None) -> OrderResult:
        """Delete a pending order."""
        return await self.trading.cancel_order(ticket, idempotency_key=idempotency_key)

    async def modify_order(
        self, ticket: int, *, price: float | None = None, sl: float | None = None,
        tp: float | None = None, stop_limit: float | None = None,
        expiration_msc: int | None = None, idempotency_key: str | None = None,
    ) -> OrderResult:  # fmt: skip
        """Change a pending order's price, stops or expiration (None keeps the current value)."""
        return await self.trading.modify_order(
            ticket, price=price, sl=sl, tp=tp, stop_limit=stop_limit,
            expiration_msc=expiration_msc, idempotency_key=idempotency_key,
        )  # fmt: skip

    def stream_ticks(self, symbols: Sequence[str], **options: Any) -> AsyncIterator[Price]:
        """``async for price in session.stream_ticks(["EURUSD"])``: new ticks only."""
        return self.streams.ticks(symbols, **options)

    def trade_events(self, **options: Any) -> AsyncIterator[TradeEvent]:
        """Position, order and deal changes with sequence numbers."""
        return self.streams.trade_events(**options)

    def stream_bars(self, bars: Sequence[tuple[str, int]], **options: Any) -> AsyncIterator[Bar]:
        """``async for bar in session.stream_bars([("EURUSD", Timeframe.M1)])``: the forming
        bar as it changes, then each bar once as it closes (``bar.closed``), in time order
        (:func:`mt5gate.session.candles.stream_bars`)."""
        from mt5gate.session.candles import stream_bars

        return stream_bars(self, bars, **options)

    def stream_book(self, symbols: Sequence[str], **options: Any) -> AsyncIterator[Book]:
        """``async for book in session.stream_book(["EURUSD"])``: the depth of market, then
        each change; the book is added on the first subscriber and released after the last
        (:func:`mt5gate.session.book.stream_book`)."""
        from mt5gate.session.book import stream_book

        return stream_book(self, symbols, **options)


_TRANSIENT_CODES = frozenset({-10000, -10001, -10002})


def _store_of(
    journal: SqliteJournal | OrderStore | None, name: str
) -> tuple[OrderStore, SqliteJournal | None]:
    """The async store a session uses, and the SQLite journal under it (if it is one)."""
    if journal is None:
        journal = _memory_journal()
    if isinstance(journal, SqliteJournal):
        return SqliteStore(journal, name=name), journal
    return journal, getattr(journal, "journal", None)


def _memory_journal() -> SqliteJournal:
    """The journal of a session given none: in memory, so idempotency and reconciliation work
    but nothing survives the process. Said loudly, once per session."""
    _log.warning(
        "orders are journaled in memory only: a crash loses the journal. Pass "
        "journal=SqliteJournal('orders.db') to MT5SessionManager for exactly-once across restarts"
    )
    return SqliteJournal(":memory:")


def _transient(error: MT5Error) -> bool:
    """IPC send/receive failures, worth a retry (see ReadRetryPolicy)."""
    return isinstance(error, MT5ConnectionError) and error.code in _TRANSIENT_CODES


def _selectors(**given: Any) -> dict[str, Any]:
    return {k: v for k, v in given.items() if v is not None}


def _require_dates(**given: DateArg | None) -> None:
    """Refuse a date MT5 cannot hold (``MT5ValidationError`` naming the argument) before the
    terminal sees it: a year-1 ``datetime`` or a 20-digit number fails inside the terminal
    call or the bridge's encoder otherwise."""
    for name, value in given.items():
        if value is not None:
            require_date(value, name)
    start, end = given.get("date_from"), given.get("date_to")
    if start is not None and end is not None and date_seconds(start) > date_seconds(end):
        raise MT5ValidationError(
            f"date_to ({end!r}) is before date_from ({start!r})",
            field="date_to",
            rule="not before date_from",
        )
