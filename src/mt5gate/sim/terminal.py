"""``SimTerminal``: a simulated MetaTrader 5 terminal process behind the Terminal seam.

The facade owns what the real terminal process owns: the IPC attachment (``initialize`` /
``shutdown``), the logged-in account, Market Watch, book subscriptions, ``last_error`` and the
switches (connection to the trade server, Algo Trading). Market data is delegated to
:class:`~mt5gate.sim.market.Market`, trading to one :class:`~mt5gate.sim.broker.Broker` per
account (the simulated trade server). Every public method follows the real module's conventions:
``None`` / ``False`` plus ``last_error()`` on failure, ``TypeError`` for wrongly typed positional
arguments, and the same codes and texts.

Not thread-safe, like the real module: callers serialise calls (the session's worker does).
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Concatenate, ParamSpec, TypeVar

import numpy as np
import numpy.typing as npt

from mt5gate.constants import ResultCode
from mt5gate.records import (
    AccountInfo,
    BookInfo,
    OrderCheckResult,
    OrderSendResult,
    SymbolInfo,
    TerminalInfo,
    Tick,
    TradeDeal,
    TradeOrder,
    TradePosition,
)
from mt5gate.sim.args import (
    RequestRules,
    check_format,
    check_tick_cursors,
    date_seconds,
    parse_request,
)
from mt5gate.sim.broker import Broker, TicketSource
from mt5gate.sim.clock import Clock, VirtualClock
from mt5gate.sim.config import AccountConfig, SimConfig, TerminalFlags
from mt5gate.sim.errors import (
    CALL_FAILED,
    NOT_FOUND,
    SUCCESS,
    SimError,
    result_error,
)
from mt5gate.sim.faults import Fault, FaultKind, FaultPlan
from mt5gate.sim.groups import matches_group
from mt5gate.sim.market import Market, default_catalogue
from mt5gate.terminal.base import TickBatch

if TYPE_CHECKING:
    from mt5gate.sim.state import StateJournal

__all__ = ["SimTerminal"]

P = ParamSpec("P")
R = TypeVar("R")
Array = npt.NDArray[np.void]
_NO_IPC = ResultCode.E_INTERNAL_FAIL_CONNECT
_MUTATING = frozenset({"order_send", "login", "symbol_select"})


def _api(
    failure: Any, *, needs_ipc: bool = True
) -> Callable[[Callable[Concatenate[SimTerminal, P], R]], Callable[Concatenate[SimTerminal, P], R]]:
    """Wrap a terminal function: faults, IPC check, market sync, SimError -> failure value."""

    def decorate(
        method: Callable[Concatenate[SimTerminal, P], R],
    ) -> Callable[Concatenate[SimTerminal, P], R]:
        name = method.__name__

        @functools.wraps(method)
        def call(self: SimTerminal, /, *args: P.args, **kwargs: P.kwargs) -> R:
            bound = functools.partial(method, self, *args, **kwargs)
            result: R = self._invoke(name, failure, needs_ipc, bound)
            return result

        return call

    return decorate


class SimTerminal:
    """A stateful simulated MT5 terminal; implements :class:`mt5gate.terminal.Terminal`.

    It starts detached, logged into ``config.default_login`` (the first account by default), like
    a terminal a user left running: ``initialize()`` attaches to it.
    """

    def __init__(
        self,
        config: SimConfig | None = None,
        *,
        clock: Clock | None = None,
        faults: FaultPlan | None = None,
        state_file: str | Path | None = None,
        save_interval_s: float = 0.0,
    ) -> None:
        if save_interval_s < 0:
            raise ValueError(f"save_interval_s must be >= 0, got {save_interval_s}")
        self.config = config or SimConfig()
        self.clock: Clock = clock if clock is not None else VirtualClock()
        self.faults = faults if faults is not None else FaultPlan(seed=self.config.seed)
        self.flags = TerminalFlags()
        self.market = Market(
            self.config.symbols or default_catalogue(),
            self.clock,
            seed=self.config.seed,
            history_days=self.config.history_days,
            live_ticks_retention_s=self.config.live_ticks_retention_s,
            deep_history_from_s=self.config.deep_history_from_s,
            deep_cache_chunks=self.config.deep_cache_chunks,
            deep_frame_cache_bytes=self.config.deep_frame_cache_bytes,
            deep_download_s=self.config.deep_history_download_s,
            ticks_per_s=self.config.ticks_per_s,
        )
        self.tickets = TicketSource()
        self._accounts = {a.login: a for a in self.config.accounts}
        self._brokers: dict[int, Broker] = {}
        self._rules = RequestRules(comment_max=self.config.comment_max)
        self._error: tuple[int, str] = SUCCESS
        self._attached = False
        self._generation = 0
        self._investor = False
        self._frozen_ticks: dict[str, Tick | None] = {}
        self._link_back_ms: int | None = None  # a dropped link comes back then (clock ms)
        self._watch: list[str] = []
        self._books: set[str] = set()
        first = self.config.accounts[0].login if self.config.accounts else None
        self._login: int | None = self.config.default_login or first
        self._reset_watch()
        self.state_file = Path(state_file) if state_file is not None else None
        self.save_interval_s = save_interval_s
        self._unsaved = False
        self._saved_at = time.monotonic()
        self._state_seen: tuple[int, int] | None = None  # (mtime_ns, size) read or written
        self._journal = _journal(self.state_file)
        if self.state_file is not None and self.state_file.exists():
            self.load_state(self.state_file)

    def __repr__(self) -> str:
        state = "attached" if self._attached else "detached"
        return f"<SimTerminal {state} login={self._login} clock={self.clock!r}>"

    # ----------------------------------------------------------------- machinery

    def _invoke(self, name: str, failure: Any, needs_ipc: bool, call: Callable[[], Any]) -> Any:
        if self._link_back_ms is not None and self.clock.now_ms() >= self._link_back_ms:
            self.set_connected(True)
        fault = self.faults.pick(name) if self.faults.active else None
        if fault is not None and not self._before_fault(fault):
            return failure
        if needs_ipc and not self._attached:
            self._error = result_error(_NO_IPC).last_error
            return failure
        generation = self._generation
        self.market.sync()
        try:
            result = call()
        except SimError as error:
            self._error = error.last_error
            return failure
        if name in _MUTATING and self.state_file is not None:
            self._unsaved = True  # saved before any lost reply: the server did execute
        self._save_due()
        self._error = SUCCESS
        if fault is not None and fault.kind is FaultKind.REPLY_LOST:
            return self._lose_reply(fault, generation, failure)
        return result

    def _before_fault(self, fault: Fault) -> bool:
        """Apply a fault that acts before the call; False when the call fails here."""
        kind = fault.kind
        if kind is FaultKind.LATENCY:
            self.faults.sleep(fault.delay_s)
        elif kind is FaultKind.DISCONNECT:
            self.set_connected(False)
            if fault.delay_s > 0:
                self._link_back_ms = self.clock.now_ms() + round(fault.delay_s * 1000)
        elif kind is FaultKind.AUTOTRADING_OFF:
            self.flags.trade_allowed = False
        elif kind is FaultKind.RESTART:
            self.restart()
        elif kind in (FaultKind.IPC_ERROR, FaultKind.HANG):
            return self._fail_by_fault(fault)
        return True

    def _fail_by_fault(self, fault: Fault) -> bool:
        generation = self._generation
        if fault.kind is FaultKind.HANG:
            self.faults.wait(fault.delay_s)
        code = _NO_IPC if generation != self._generation else fault.failure_code
        self._error = result_error(code).last_error
        return False

    def _lose_reply(self, fault: Fault, generation: int, failure: Any) -> Any:
        if fault.hang:
            self.faults.wait(fault.delay_s)
        code = _NO_IPC if generation != self._generation else fault.failure_code
        self._error = result_error(code).last_error
        return failure

    @property
    def broker(self) -> Broker:
        """The simulated trade server's view of the logged-in account."""
        if self._login is None:
            raise SimError(ResultCode.E_AUTH_FAILED, "Terminal: Authorization failed")
        return self.broker_for(self._login)

    def broker_for(self, login: int) -> Broker:
        """The trade-server state of account ``login`` (created on first use)."""
        broker = self._brokers.get(login)
        if broker is None:
            account = self._accounts[login]
            broker = Broker(
                account, self.market, self.clock, self.flags, self.config.broker, self.tickets
            )
            self._brokers[login] = broker
        return broker

    # ------------------------------------------------------------- test controls

    def step(self, seconds: float = 0.0, *, ms: int = 0) -> int:
        """Advance a virtual clock and let the market and the server catch up; returns now."""
        if not isinstance(self.clock, VirtualClock):
            raise TypeError("step() needs a VirtualClock; a RealClock moves by itself")
        now = self.clock.advance(seconds, ms=ms)
        self.market.sync()
        return now

    def set_connected(self, connected: bool) -> None:
        """Drop or restore the connection to the trade server (``terminal_info().connected``).

        A link a fault dropped for a while comes back by itself at the first call after its
        downtime (nothing observes it sooner: the terminal is seen only through calls).
        """
        self._link_back_ms = None
        if not connected and self.flags.connected:
            self._frozen_ticks = {
                s.name: self.market.last_tick(s.name) for s in self.market.symbols()
            }
        self.flags.connected = connected

    def set_autotrading(self, enabled: bool) -> None:
        """Press the Algo Trading button (``terminal_info().trade_allowed``)."""
        self.flags.trade_allowed = enabled

    def restart(self) -> None:
        """The terminal process restarts: IPC is lost, Market Watch and books reset.

        Server-side state (accounts, positions, history) is untouched; calls in flight on other
        threads fail with -10004, as on a real terminal.
        """
        self._detach()
        self._reset_watch()
        self._books.clear()
        self.set_connected(True)

    def _detach(self) -> None:
        self._attached = False
        self._generation += 1
        self.faults.release()

    def _reset_watch(self) -> None:
        known = {s.name for s in self.market.symbols()}
        self._watch = [n for n in self.config.initially_selected if n in known]

    # ------------------------------------------------------------ lifecycle

    @_api(False, needs_ipc=False)
    def initialize(
        self,
        path: str | None = None,
        *,
        login: int | None = None,
        password: str | None = None,
        server: str | None = None,
        timeout: int = 60000,
        portable: bool = False,
    ) -> bool:
        """Attach to the terminal; with ``login`` also authorize that account."""
        _check_init_args(path, login, password, server, timeout, portable)
        if not self._attached:
            self._reload_if_changed()
        self._attached = True
        if login is not None:
            self._authorize(login, password, server)
        return True

    @_api(False)
    def login(
        self,
        login: int,
        password: str | None = None,
        server: str | None = None,
        timeout: int = 60000,
    ) -> bool:
        """Switch the whole terminal to another account."""
        _check_init_args(None, login, password, server, timeout, False)
        try:
            self._authorize(login, password, server)
        except SimError as error:
            if error.code == ResultCode.E_AUTH_FAILED:
                self._login = None  # a failed login can leave the terminal logged out
            raise
        return True

    def _authorize(self, login: int, password: str | None, server: str | None) -> None:
        account = self._accounts.get(login)
        known_servers = {a.server for a in self._accounts.values()}
        if server is not None and server not in known_servers:
            raise result_error(ResultCode.E_INTERNAL_FAIL_TIMEOUT)  # pitfall A3
        if account is None or (server is not None and server != account.server):
            raise result_error(ResultCode.E_AUTH_FAILED)
        investor = self._check_password(account, password)
        if account.otp_required:
            raise SimError(
                ResultCode.E_UNSUPPORTED,
                "Unsupported authorization mode, OTP or certificate password needed",
            )
        self._login, self._investor = login, investor
        self.broker_for(login)

    @staticmethod
    def _check_password(account: AccountConfig, password: str | None) -> bool:
        """True for an investor (read-only) login; a missing password uses the saved one."""
        if password is None or password == account.password:
            return False
        if account.investor_password is not None and password == account.investor_password:
            return True
        raise result_error(ResultCode.E_AUTH_FAILED)

    def shutdown(self) -> None:
        """Close the IPC connection; the terminal keeps running and stays logged in."""
        if self.faults.active:
            self.faults.pick("shutdown")
        self.flush_state()
        self._detach()

    @_api(None)
    def version(self) -> tuple[int, int, str] | None:
        """``(500, build, 'DD Mon YYYY')``."""
        return (500, self.config.build, self.config.build_date)

    def last_error(self) -> tuple[int, str]:
        """``(code, text)`` of the last call; never fails."""
        return self._error

    # ----------------------------------------------------------- terminal, account

    @_api(None)
    def terminal_info(self) -> TerminalInfo | None:
        """The terminal's state and switches."""
        c, f = self.config, self.flags
        folder = str(Path(c.path.replace("\\", "/")).parent).replace("/", "\\")
        common = c.data_path.rsplit("\\", 1)[0] + "\\Common"
        return TerminalInfo(
            (
                *(False, False, f.connected, False, f.trade_allowed, f.tradeapi_disabled),
                *(False, False, False, False, c.build, c.maxbars, 0),
                *(c.ping_last_us if f.connected else 0, 0.0, 0.0, c.company, "MetaTrader 5"),
                *(c.language, folder, c.data_path, common),
            )
        )

    @_api(None)
    def account_info(self) -> AccountInfo | None:
        """The logged-in account (``trade_allowed`` is False for an investor login)."""
        info = self._logged_in().account_info()
        if self._investor:
            info = AccountInfo((*info[:5], False, *info[6:]))
        return info

    def _logged_in(self) -> Broker:
        if self._login is None:
            raise CALL_FAILED()
        return self.broker

    # ---------------------------------------------------------------- symbols

    @_api(None)
    def symbols_total(self) -> int | None:
        """Every symbol the server offers, selected or not."""
        return len(self.market.symbols())

    @_api(None)
    def symbols_get(self, group: str | None = None) -> tuple[SymbolInfo, ...] | None:
        """All symbols as SymbolInfo, optionally filtered by a group mask."""
        if group is not None and not isinstance(group, str):
            raise SimError(ResultCode.E_INVALID_PARAMS, 'Invalid "group" argument')
        names = [s.name for s in self.market.symbols()]
        if group is not None:
            names = [n for n in names if matches_group(n, group)]
        currency = self._accounts[self._login].currency if self._login else "USD"
        return self.market.symbol_infos(names, selected=self._watch, account_currency=currency)

    @_api(None)
    def market_watch(self) -> tuple[str, ...] | None:
        """The selected symbols' names, in ``symbols_get()`` order, without building their
        ``SymbolInfo`` (the :class:`~mt5gate.terminal.base.MarketWatch` extension: a start-up
        sweep asks which symbol's tick tells the server's time, and must not build every
        symbol's history to learn it)."""
        return tuple(s.name for s in self.market.symbols() if s.name in self._watch)

    def _symbol_info(self, name: str) -> SymbolInfo:
        selected = name in self._watch
        currency = self._accounts[self._login].currency if self._login else "USD"
        return self.market.symbol_info(
            name, select=selected, visible=selected, account_currency=currency
        )

    @_api(None)
    def symbol_info(self, symbol: str, /) -> SymbolInfo | None:
        """All 96 properties of one symbol (selected or not)."""
        check_format("symbol_info", "O", (symbol,))
        if not isinstance(symbol, str) or self.market.spec(symbol) is None:
            raise NOT_FOUND()
        return self._symbol_info(symbol)

    @_api(None)
    def symbol_info_tick(self, symbol: str, /) -> Tick | None:
        """The last tick of a symbol selected in Market Watch."""
        check_format("symbol_info_tick", "O", (symbol,))
        self._require_selected(symbol)
        tick = (
            self.market.last_tick(symbol)
            if self.flags.connected
            else self._frozen_ticks.get(symbol)
        )
        if tick is None:
            raise CALL_FAILED()
        return tick

    def ticks_after(
        self, cursors: tuple[tuple[str, int, int], ...], count: int, /
    ) -> TickBatch | None:
        """Every tick of the cursors' symbols after each cursor, and when the next one is due
        (the :class:`~mt5gate.terminal.base.TickWatch` extension: the simulator draws its
        ticks ahead, so a tick stream can sleep until the next one instead of polling).

        It answers what ``symbol_info_tick`` calls made as each tick came would have: the
        symbols must be in Market Watch, and faults planned for ``symbol_info_tick`` hit it
        too (once a call). While the link to the trade server is down no tick comes and
        ``due_s`` is None.
        """
        bound = functools.partial(self._ticks_after, cursors, count)
        batch: TickBatch | None = self._invoke("symbol_info_tick", None, True, bound)
        return batch

    def _ticks_after(self, cursors: object, count: object) -> TickBatch:
        wanted, most = check_tick_cursors(cursors, count)
        for symbol, _, _ in wanted:
            self._require_selected(symbol)
        rows: list[tuple[int, int, str, Tick]] = []
        full = False
        if self.flags.connected:
            for order, found in enumerate(self.market.ticks_after(wanted, most)):
                symbol = wanted[order][0]
                full = full or len(found) >= most
                rows += [(t[5], order, symbol, Tick(t)) for t in found.tolist()]
        rows.sort(key=lambda row: (row[0], row[1]))
        return TickBatch(tuple((row[2], row[3]) for row in rows), self._due_s(wanted, full))

    def _due_s(self, wanted: tuple[tuple[str, int, int], ...], full: bool) -> float | None:
        """Seconds until the next tick of the symbols is due on this terminal's clock."""
        if full:
            return 0.0
        if not self.flags.connected:
            return None
        due = self.market.next_tick_ms([symbol for symbol, _, _ in wanted])
        return None if due is None else max(0.0, (due - self.clock.now_ms()) / 1000)

    def _require_selected(self, symbol: object) -> None:
        if not isinstance(symbol, str) or self.market.spec(symbol) is None:
            raise CALL_FAILED()
        if symbol not in self._watch:
            raise CALL_FAILED()

    @_api(False)
    def symbol_select(self, symbol: str, enable: bool | None = None, /) -> bool:
        """Add a symbol to Market Watch, or remove it (refused while it is in use)."""
        args = (symbol,) if enable is None else (symbol, enable)
        check_format("symbol_select", "Op"[: len(args)], args)
        if not isinstance(symbol, str) or self.market.spec(symbol) is None:
            raise CALL_FAILED()
        wanted = self.config.select_default if enable is None else bool(enable)
        if wanted:
            if symbol not in self._watch:
                self._watch.append(symbol)
            return True
        if symbol in self._symbols_in_use():
            raise CALL_FAILED()
        if symbol in self._watch:
            self._watch.remove(symbol)
        return True

    def _symbols_in_use(self) -> set[str]:
        used = set(self._books)
        if self._login is not None:
            used |= self.broker.symbols_in_use()
        return used

    # ------------------------------------------------------------------ book

    @_api(False)
    def market_book_add(self, symbol: str, /) -> bool:
        """Subscribe to the depth of market of a symbol (selecting it)."""
        check_format("market_book_add", "O", (symbol,))
        if not isinstance(symbol, str) or self.market.spec(symbol) is None:
            raise CALL_FAILED()
        if symbol not in self._watch:
            self._watch.append(symbol)
        self._books.add(symbol)
        return True

    @_api(None)
    def market_book_get(self, symbol: str, /) -> tuple[BookInfo, ...] | None:
        """The depth of market of a subscribed symbol."""
        check_format("market_book_get", "O", (symbol,))
        if symbol not in self._books:
            raise CALL_FAILED()
        return self.market.book(symbol)

    @_api(False)
    def market_book_release(self, symbol: str, /) -> bool:
        """End a depth-of-market subscription."""
        check_format("market_book_release", "O", (symbol,))
        if symbol not in self._books:
            raise CALL_FAILED()
        self._books.discard(symbol)
        return True

    # ------------------------------------------------------------- bars, ticks

    def _data_symbol(self, symbol: object) -> str:
        self._require_selected(symbol)
        assert isinstance(symbol, str)  # checked above; narrows for mypy
        return symbol

    @_api(None)
    def copy_rates_from(
        self, symbol: str, timeframe: int, date_from: Any, count: int, /
    ) -> Array | None:
        """``count`` bars with open time <= ``date_from``, oldest first."""
        check_format("copy_rates_from", "OiOi", (symbol, timeframe, date_from, count))
        name, start = self._data_symbol(symbol), date_seconds(date_from, "date_from")
        return self.market.copy_rates_from(name, timeframe, start, count, self.config.maxbars)

    @_api(None)
    def copy_rates_from_pos(
        self, symbol: str, timeframe: int, start_pos: int, count: int, /
    ) -> Array | None:
        """``count`` bars counted back from bar ``start_pos`` (0 = the forming bar)."""
        check_format("copy_rates_from_pos", "Oiii", (symbol, timeframe, start_pos, count))
        name = self._data_symbol(symbol)
        return self.market.copy_rates_from_pos(
            name, timeframe, start_pos, count, self.config.maxbars
        )

    @_api(None)
    def copy_rates_range(
        self, symbol: str, timeframe: int, date_from: Any, date_to: Any, /
    ) -> Array | None:
        """Bars with ``date_from <= time <= date_to``."""
        check_format("copy_rates_range", "OiOO", (symbol, timeframe, date_from, date_to))
        name = self._data_symbol(symbol)
        start, end = date_seconds(date_from, "date_from"), date_seconds(date_to, "date_to")
        return self.market.copy_rates_range(name, timeframe, start, end, self.config.maxbars)

    @_api(None)
    def copy_ticks_from(
        self, symbol: str, date_from: Any, count: int, flags: int, /
    ) -> Array | None:
        """The first ``count`` ticks at or after ``date_from``."""
        check_format("copy_ticks_from", "OOii", (symbol, date_from, count, flags))
        name, start = self._data_symbol(symbol), date_seconds(date_from, "date_from")
        return self.market.copy_ticks_from(name, start, count, flags)

    @_api(None)
    def copy_ticks_range(
        self, symbol: str, date_from: Any, date_to: Any, flags: int, /
    ) -> Array | None:
        """Ticks between two dates."""
        check_format("copy_ticks_range", "OOOi", (symbol, date_from, date_to, flags))
        name = self._data_symbol(symbol)
        start, end = date_seconds(date_from, "date_from"), date_seconds(date_to, "date_to")
        return self.market.copy_ticks_range(name, start, end, flags)

    # ------------------------------------------------------------- trading

    @_api(None)
    def order_calc_margin(
        self, action: int, symbol: str, volume: float, price: float, /
    ) -> float | None:
        """Margin for an order, in the account currency."""
        check_format("order_calc_margin", "kOdd", (action, symbol, volume, price))
        return self._logged_in().calc_margin(action, symbol, float(volume), float(price))

    @_api(None)
    def order_calc_profit(
        self, action: int, symbol: str, volume: float, price_open: float, price_close: float, /
    ) -> float | None:
        """Profit of a trade, in the account currency."""
        args = (action, symbol, volume, price_open, price_close)
        check_format("order_calc_profit", "kOddd", args)
        return self._logged_in().calc_profit(
            action, symbol, float(volume), float(price_open), float(price_close)
        )

    @_api(None)
    def order_check(self, request: dict[str, Any]) -> OrderCheckResult | None:
        """Check a request and the funds for it; success is retcode 0, 'Done'."""
        parsed = parse_request(request, self._rules)
        self._require_python_trading()
        return self._logged_in().order_check(parsed)

    @_api(None)
    def order_send(self, request: dict[str, Any]) -> OrderSendResult | None:
        """Send a trade request to the simulated server."""
        parsed = parse_request(request, self._rules)
        self._require_python_trading()
        return self._logged_in().order_send(parsed)

    def _require_python_trading(self) -> None:
        if self.flags.tradeapi_disabled:
            raise result_error(ResultCode.E_AUTO_TRADING_DISABLED)

    # ------------------------------------------------------- positions, orders

    @_api(None)
    def orders_total(self) -> int | None:
        """Number of active pending orders."""
        return self._logged_in().orders_total()

    @_api(None)
    def orders_get(
        self,
        *args: object,
        symbol: str | None = None,
        group: str | None = None,
        ticket: int | None = None,
    ) -> tuple[TradeOrder, ...] | None:
        """Active pending orders by symbol, group mask or ticket (keywords only)."""
        _check_selectors(args, symbol, group, ticket)
        return self._logged_in().orders(symbol=symbol, group=group, ticket=ticket)

    @_api(None)
    def positions_total(self) -> int | None:
        """Number of open positions."""
        return self._logged_in().positions_total()

    @_api(None)
    def positions_get(
        self,
        *args: object,
        symbol: str | None = None,
        group: str | None = None,
        ticket: int | None = None,
    ) -> tuple[TradePosition, ...] | None:
        """Open positions by symbol, group mask or ticket (keywords only)."""
        _check_selectors(args, symbol, group, ticket)
        return self._logged_in().positions(symbol=symbol, group=group, ticket=ticket)

    # ------------------------------------------------------------------ history

    @_api(None)
    def history_orders_total(self, date_from: Any, date_to: Any, /) -> int | None:
        """Number of history orders between two dates."""
        check_format("history_orders_total", "OO", (date_from, date_to))
        start, end = date_seconds(date_from, "date_from"), date_seconds(date_to, "date_to")
        return self._logged_in().history_orders_total(start, end)

    @_api(None)
    def history_orders_get(
        self,
        date_from: Any = None,
        date_to: Any = None,
        *,
        group: str | None = None,
        ticket: int | None = None,
        position: int | None = None,
    ) -> tuple[TradeOrder, ...] | None:
        """History orders: ``(from, to[, group=])``, or ``ticket=``, or ``position=``."""
        broker = self._logged_in()
        queries = (broker.history_orders, broker.history_orders_by_ticket)
        return _history(queries, broker.history_orders_by_position, date_from, date_to, group,
                        ticket, position)  # fmt: skip

    @_api(None)
    def history_deals_total(self, date_from: Any, date_to: Any, /) -> int | None:
        """Number of deals between two dates."""
        check_format("history_deals_total", "OO", (date_from, date_to))
        start, end = date_seconds(date_from, "date_from"), date_seconds(date_to, "date_to")
        return self._logged_in().history_deals_total(start, end)

    @_api(None)
    def history_deals_get(
        self,
        date_from: Any = None,
        date_to: Any = None,
        *,
        group: str | None = None,
        ticket: int | None = None,
        position: int | None = None,
    ) -> tuple[TradeDeal, ...] | None:
        """Deals: ``(from, to[, group=])``, or ``ticket=`` (the ORDER ticket), or ``position=``."""
        broker = self._logged_in()
        queries = (broker.history_deals, broker.history_deals_by_ticket)
        return _history(queries, broker.history_deals_by_position, date_from, date_to, group,
                        ticket, position)  # fmt: skip

    # ------------------------------------------------------------------ state

    @property
    def brokers(self) -> dict[int, Broker]:
        """Trade-server state of every account used so far, by login (a copy)."""
        return dict(self._brokers)

    def terminal_snapshot(self) -> dict[str, Any]:
        """The terminal process's own state: login, Market Watch, books, switches."""
        flags = self.flags
        return {
            "login": self._login,
            "investor": self._investor,
            "watch": list(self._watch),
            "books": sorted(self._books),
            "flags": [flags.connected, flags.trade_allowed, flags.tradeapi_disabled],
        }

    def terminal_restore(self, data: dict[str, Any]) -> None:
        """Resume from :meth:`terminal_snapshot` output (the terminal stays detached)."""
        self._login, self._investor = data["login"], bool(data["investor"])
        self._watch, self._books = list(data["watch"]), set(data["books"])
        connected, self.flags.trade_allowed, self.flags.tradeapi_disabled = data["flags"]
        self.set_connected(bool(connected))

    def save_state(self, path: str | Path) -> None:
        """Save the simulated server (accounts, history, tickets, clock; the market is
        regenerated from its seed): to the state file, the changes since its last save,
        appended; to any other file, the whole state."""
        from mt5gate.sim.state import save_state

        if self._journal is not None and Path(path) == self._journal.path:
            self._journal.commit(self)
            self._unsaved, self._saved_at = False, time.monotonic()
            self._state_seen = _file_stamp(self._journal.path)
        else:
            save_state(self, Path(path))

    def load_state(self, path: str | Path) -> None:
        """Restore what :meth:`save_state` wrote; the terminal stays detached."""
        from mt5gate.sim.state import load_state

        if self._journal is not None and Path(path) == self._journal.path:
            self._journal.load(self)
            self._unsaved, self._state_seen = False, _file_stamp(self._journal.path)
        else:
            load_state(self, Path(path))

    def _save_due(self) -> None:
        """Save the state file after a change: at once (``save_interval_s`` 0, the default:
        every executed order is on disk before its reply), or at most once an interval (a
        long-running host such as ``mt5gate serve``, which flushes when it shuts down)."""
        if not self._unsaved or self.state_file is None:
            return
        if time.monotonic() - self._saved_at >= self.save_interval_s:
            self.save_state(self.state_file)

    def defer_state_sync(self) -> None:
        """Let a host that sends each call's reply itself (the bridge) put the state file's
        records on disk just before the reply (:meth:`sync_state`) rather than inside the call:
        one fdatasync then covers the orders of every client that called meanwhile."""
        if self._journal is not None:
            self._journal.deferred_sync = True

    @property
    def state_unsynced(self) -> bool:
        """Whether a change was written to the state file that is not on disk yet."""
        return self._journal is not None and self._journal.unsynced

    def sync_state(self) -> None:
        """Return once every change written to the state file is on disk (any thread)."""
        if self._journal is not None:
            self._journal.sync()

    def flush_state(self) -> None:
        """Write the state file now if anything changed since it was last written."""
        if self._unsaved and self.state_file is not None:
            self.save_state(self.state_file)

    def _reload_if_changed(self) -> None:
        """Another process wrote the state file since this one read or wrote it (the owner of
        the account changed hands): attach to the broker as it is now, not as it was."""
        if self.state_file is None or self._unsaved:
            return
        stamp = _file_stamp(self.state_file)
        if stamp is not None and stamp != self._state_seen:
            self.load_state(self.state_file)


def _journal(path: Path | None) -> StateJournal | None:
    """The state file's writer (imported only when there is one)."""
    if path is None:
        return None
    from mt5gate.sim.state import StateJournal

    return StateJournal(path)


def _file_stamp(path: Path) -> tuple[int, int] | None:
    """What tells one write of a file from another: its mtime (ns) and size."""
    try:
        info = path.stat()
    except FileNotFoundError:
        return None
    return info.st_mtime_ns, info.st_size


def _check_init_args(
    path: object, login: object, password: object, server: object, timeout: object, portable: object
) -> None:
    checks = (
        ("path", path, str),
        ("login", login, int),
        ("password", password, str),
        ("server", server, str),
    )
    for name, value, kind in checks:
        if value is not None and (not isinstance(value, kind) or isinstance(value, bool)):
            raise SimError(ResultCode.E_INVALID_PARAMS, f'Invalid "{name}" argument')
    if not isinstance(timeout, int) or isinstance(timeout, bool) or timeout < 0:
        raise SimError(ResultCode.E_INVALID_PARAMS, 'Invalid "timeout" argument')
    if not isinstance(portable, bool | int):
        raise SimError(ResultCode.E_INVALID_PARAMS, 'Invalid "portable" argument')


def _check_selectors(
    args: tuple[object, ...], symbol: object, group: object, ticket: object
) -> None:
    if args:
        raise SimError(ResultCode.E_INVALID_PARAMS, "Unnamed arguments not allowed")
    for name, value, kind in (
        ("symbol", symbol, str),
        ("group", group, str),
        ("ticket", ticket, int),
    ):
        if value is not None and not isinstance(value, kind):
            raise SimError(ResultCode.E_INVALID_PARAMS, f'Invalid "{name}" argument')


def _history(
    queries: tuple[Callable[[int, int, str | None], tuple[R, ...]], Callable[[int], tuple[R, ...]]],
    by_position: Callable[[int], tuple[R, ...]],
    date_from: object,
    date_to: object,
    group: str | None,
    ticket: int | None,
    position: int | None,
) -> tuple[R, ...]:
    """Dispatch one of the three call forms of history_*_get to the broker query it names."""
    by_dates, by_ticket = queries
    form = _history_form(date_from, date_to, group, ticket, position)
    if form == "ticket":
        return by_ticket(int(ticket or 0))
    if form == "position":
        return by_position(int(position or 0))
    start, end = date_seconds(date_from, "date_from"), date_seconds(date_to, "date_to")
    return by_dates(start, end, group)


def _history_form(
    date_from: object, date_to: object, group: object, ticket: object, position: object
) -> str:
    """Which of the three call forms of history_*_get this is, or a (-2) error."""
    dates = date_from is not None or date_to is not None
    chosen = [f for f, v in (("ticket", ticket), ("position", position)) if v is not None]
    if len(chosen) == 1 and not dates and group is None:
        value = ticket if chosen[0] == "ticket" else position
        if not isinstance(value, int):
            raise SimError(ResultCode.E_INVALID_PARAMS, f'Invalid "{chosen[0]}" argument')
        return chosen[0]
    if chosen or date_from is None or date_to is None:
        raise SimError(ResultCode.E_INVALID_PARAMS, "Invalid arguments")
    if group is not None and not isinstance(group, str):
        raise SimError(ResultCode.E_INVALID_PARAMS, 'Invalid "group" argument')
    return "dates"
