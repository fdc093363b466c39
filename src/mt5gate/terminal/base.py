"""The Terminal Protocol: the 32 functions of the ``MetaTrader5`` module, typed.

Conventions are the real module's (see ``docs/mt5-api/semantics.md`` §3):

* failures return ``None`` (objects), ``False`` (booleans) and set ``last_error()``;
  an empty selection is ``()`` or an empty array, never ``None``;
* functions the real module declares ``METH_VARARGS`` are positional-only here too, and raise
  ``TypeError`` on keywords or wrongly typed scalars;
* ``positions_get`` / ``orders_get`` take keywords only;
* date arguments are ``datetime`` (converted with ``.timestamp()``) or int seconds, on the
  broker server's time scale.

A terminal is blocking and not thread-safe: callers serialise calls onto one worker.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, NamedTuple, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

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

__all__ = [
    "BOOLEAN_FUNCTIONS",
    "NO_ARGS_FUNCTIONS",
    "POSITIONAL_ONLY_FUNCTIONS",
    "TERMINAL_FUNCTIONS",
    "Fenceable",
    "MarketWatch",
    "TerminalFencedError",
    "DateArg",
    "Terminal",
    "TickBatch",
    "TickWatch",
    "check_call_convention",
    "failure_value",
]

#: A date argument: a datetime (``.timestamp()`` is taken) or whole seconds.
DateArg = datetime | int

#: The 32 functions of the official module, in its order.
TERMINAL_FUNCTIONS: tuple[str, ...] = (
    "initialize", "login", "shutdown", "version", "last_error", "account_info",
    "terminal_info", "symbols_total", "symbols_get", "symbol_info", "symbol_info_tick",
    "symbol_select", "market_book_add", "market_book_get", "market_book_release",
    "copy_rates_from", "copy_rates_from_pos", "copy_rates_range", "copy_ticks_from",
    "copy_ticks_range", "orders_total", "orders_get", "order_calc_margin",
    "order_calc_profit", "order_check", "order_send", "positions_total", "positions_get",
    "history_orders_total", "history_orders_get", "history_deals_total", "history_deals_get",
)  # fmt: skip

#: Functions the compiled module declares METH_NOARGS (semantics §3).
NO_ARGS_FUNCTIONS = frozenset(
    {"shutdown", "version", "terminal_info", "account_info", "positions_total"}
    | {"orders_total", "symbols_total", "last_error"}
)
#: Functions declared METH_VARARGS: positional only, keywords raise TypeError (semantics §3).
POSITIONAL_ONLY_FUNCTIONS = frozenset(
    {"copy_rates_from", "copy_rates_from_pos", "copy_rates_range", "copy_ticks_from"}
    | {"copy_ticks_range", "order_calc_margin", "order_calc_profit", "symbol_info"}
    | {"symbol_info_tick", "symbol_select", "market_book_add", "market_book_get"}
    | {"market_book_release", "history_orders_total", "history_deals_total"}
)
#: Functions whose failure value is ``False``; every other function fails with ``None``.
BOOLEAN_FUNCTIONS = frozenset(
    {"initialize", "login", "symbol_select", "market_book_add", "market_book_release"}
)


def check_call_convention(function: str, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> None:
    """Raise the ``TypeError`` the real module raises before doing anything."""
    if function in NO_ARGS_FUNCTIONS and (args or kwargs):
        raise TypeError(f"{function}() takes no arguments ({len(args) + len(kwargs)} given)")
    if function in POSITIONAL_ONLY_FUNCTIONS and kwargs:
        raise TypeError(f"{function}() takes no keyword arguments")


def failure_value(function: str) -> bool | None:
    """What ``function`` returns when it fails: ``False`` or ``None``."""
    return False if function in BOOLEAN_FUNCTIONS else None


Array = npt.NDArray[np.void]


class TerminalFencedError(Exception):
    """A terminal host refused a call: it carried a fencing epoch lower than the highest the
    host has seen (or none, for ``order_send``, once the host has seen one).

    The bridge server and the child-process host keep the highest epoch they have been shown
    (:class:`Fenceable`) and refuse what a paused or partitioned ex-owner of the account sends
    after a newer owner took over. Nothing of the refused call was executed.
    """

    def __init__(self, function: str, epoch: int | None, highest: int) -> None:
        carried = "no epoch" if epoch is None else f"epoch {epoch}"
        super().__init__(
            f"{function}() refused by the terminal host: it carried {carried}, but a newer "
            f"owner of the account holds epoch {highest}; nothing was executed"
        )
        self.function = function
        self.epoch = epoch
        self.highest = highest


@runtime_checkable
class Fenceable(Protocol):
    """A terminal whose calls can carry the caller's fencing epoch (bridge, child process).

    The owner of an account calls ``fence(epoch)`` once it holds the account's lease, before
    any other call; every later call carries the epoch, and the host refuses calls carrying a
    lower one with :class:`TerminalFencedError` (see ``docs/orders.md``, ownership).
    """

    def fence(self, epoch: int) -> None:
        """Carry ``epoch`` (a positive int) with every later call of this terminal."""
        ...


@runtime_checkable
class MarketWatch(Protocol):
    """A terminal that names the symbols selected in Market Watch without building a
    ``SymbolInfo`` for every symbol of the server (the simulator, whose ``SymbolInfo`` carries
    the day's statistics from each symbol's history).

    Not a function of the ``MetaTrader5`` module: there, the only way is ``symbols_get()`` and
    its ``select`` flags, which the session uses for every other terminal. Same answer either
    way: the selected names in ``symbols_get()`` order; ``None`` and ``last_error()`` on failure.
    """

    def market_watch(self) -> tuple[str, ...] | None:
        """The names of the selected symbols, in ``symbols_get()`` order."""
        ...


class TickBatch(NamedTuple):
    """What :meth:`TickWatch.ticks_after` answers: the new ticks, and when the next is due."""

    #: ``(symbol, tick)`` pairs: each symbol's oldest first, all of them in time order
    ticks: tuple[tuple[str, Tick], ...]
    #: seconds on the terminal's clock until the next tick of the symbols is due: 0.0 when
    #: more are waiting already (a symbol gave ``count``); None when the terminal cannot tell
    #: (no tick is coming, or the link to the trade server is down)
    due_s: float | None


@runtime_checkable
class TickWatch(Protocol):
    """A terminal that hands a reader every tick since the last one it saw, and says when the
    next one is due (the simulator, which draws its ticks ahead on its own clock).

    Not a function of the ``MetaTrader5`` module, which has no push and no way to ask: a real
    terminal can only be polled, and ``symbol_info_tick`` shows the latest tick only. With this
    extension the session's tick stream reads all its symbols in one call, misses no tick in
    between, and sleeps until the next one is due instead of a fixed interval
    (``mt5gate.session.streams``). Conventions are the module's: ``None`` and ``last_error()``
    on failure; a symbol that ``symbol_info_tick`` would refuse (not in Market Watch, unknown)
    fails the call the same way (-1).
    """

    def ticks_after(
        self, cursors: tuple[tuple[str, int, int], ...], count: int, /
    ) -> TickBatch | None:
        """For each ``(symbol, time_msc, seen)`` cursor (the last tick a reader has: its time,
        and how many ticks stamped that millisecond it has): the ticks after it, i.e. those
        stamped later than ``time_msc`` and those stamped ``time_msc`` beyond the first
        ``seen``, at most ``count`` (the oldest) per symbol."""
        ...


@runtime_checkable
class Terminal(Protocol):
    """What mt5gate needs of an MT5 terminal: the official module's 32 functions."""

    def initialize(
        self,
        path: str | None = None,
        *,
        login: int | None = None,
        password: str | None = None,
        server: str | None = None,
        timeout: int = 60000,
        portable: bool = False,
    ) -> bool: ...

    def login(
        self,
        login: int,
        password: str | None = None,
        server: str | None = None,
        timeout: int = 60000,
    ) -> bool: ...

    def shutdown(self) -> None: ...

    def version(self) -> tuple[int, int, str] | None: ...

    def last_error(self) -> tuple[int, str]: ...

    def account_info(self) -> AccountInfo | None: ...

    def terminal_info(self) -> TerminalInfo | None: ...

    def symbols_total(self) -> int | None: ...

    def symbols_get(self, group: str | None = None) -> tuple[SymbolInfo, ...] | None: ...

    def symbol_info(self, symbol: str, /) -> SymbolInfo | None: ...

    def symbol_info_tick(self, symbol: str, /) -> Tick | None: ...

    def symbol_select(self, symbol: str, enable: bool = ..., /) -> bool: ...

    def market_book_add(self, symbol: str, /) -> bool: ...

    def market_book_get(self, symbol: str, /) -> tuple[BookInfo, ...] | None: ...

    def market_book_release(self, symbol: str, /) -> bool: ...

    def copy_rates_from(
        self, symbol: str, timeframe: int, date_from: DateArg, count: int, /
    ) -> Array | None: ...

    def copy_rates_from_pos(
        self, symbol: str, timeframe: int, start_pos: int, count: int, /
    ) -> Array | None: ...

    def copy_rates_range(
        self, symbol: str, timeframe: int, date_from: DateArg, date_to: DateArg, /
    ) -> Array | None: ...

    def copy_ticks_from(
        self, symbol: str, date_from: DateArg, count: int, flags: int, /
    ) -> Array | None: ...

    def copy_ticks_range(
        self, symbol: str, date_from: DateArg, date_to: DateArg, flags: int, /
    ) -> Array | None: ...

    def orders_total(self) -> int | None: ...

    def orders_get(
        self, *, symbol: str | None = None, group: str | None = None, ticket: int | None = None
    ) -> tuple[TradeOrder, ...] | None: ...

    def order_calc_margin(
        self, action: int, symbol: str, volume: float, price: float, /
    ) -> float | None: ...

    def order_calc_profit(
        self, action: int, symbol: str, volume: float, price_open: float, price_close: float, /
    ) -> float | None: ...

    def order_check(self, request: dict[str, Any]) -> OrderCheckResult | None: ...

    def order_send(self, request: dict[str, Any]) -> OrderSendResult | None: ...

    def positions_total(self) -> int | None: ...

    def positions_get(
        self, *, symbol: str | None = None, group: str | None = None, ticket: int | None = None
    ) -> tuple[TradePosition, ...] | None: ...

    def history_orders_total(self, date_from: DateArg, date_to: DateArg, /) -> int | None: ...

    def history_orders_get(
        self,
        date_from: DateArg | None = None,
        date_to: DateArg | None = None,
        *,
        group: str | None = None,
        ticket: int | None = None,
        position: int | None = None,
    ) -> tuple[TradeOrder, ...] | None: ...

    def history_deals_total(self, date_from: DateArg, date_to: DateArg, /) -> int | None: ...

    def history_deals_get(
        self,
        date_from: DateArg | None = None,
        date_to: DateArg | None = None,
        *,
        group: str | None = None,
        ticket: int | None = None,
        position: int | None = None,
    ) -> tuple[TradeDeal, ...] | None: ...
