"""The 32 functions of the Terminal seam as forwarders, written once for every remote terminal.

A terminal that lives elsewhere (behind the bridge, in a child process, on an RPyC server)
answers each of the module's functions the same way: send the name and the arguments, as they
were given, over its one transport primitive, and hand back what comes back. :class:`Forwarding`
is that table: each method calls ``self._call(name, args, kwargs)``, which the class defines.
A class overrides only the functions it treats specially (``initialize`` connects first,
``last_error`` answers locally, ...), and those overrides stay explicit in that class.

Why ``*args, **kwargs`` rather than each function's own parameters: the arguments travel as
given, so the terminal at the other end judges them exactly as the real module would
(``positions_get("EURUSD")`` gives ``None`` and -2 there, not a Python ``TypeError`` here;
``symbol_select(symbol)`` leaves ``enable`` to the module's default). A ``*args, **kwargs``
method satisfies the :class:`~mt5gate.terminal.base.Terminal` Protocol for ``mypy --strict``,
and each return type is the Protocol's. ``inspect.signature`` (``help()``, IDEs) shows each
forwarder with the Protocol's parameters: :func:`terminal_signature` copies them.

Cost: one method call into ``_call`` with the argument tuple and dict Python already built,
the same as the hand-written forwarders had (``cast`` is a no-op call).
"""

from __future__ import annotations

import inspect
from typing import Any, TypeVar, cast

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
from mt5gate.terminal.base import TERMINAL_FUNCTIONS, Array, Terminal

__all__ = ["Forwarding", "terminal_signature"]

_Method = TypeVar("_Method")


def terminal_signature(method: _Method) -> _Method:
    """Give ``method`` (a forwarder named after one of the 32 functions) the signature of that
    function on the Terminal Protocol, for ``inspect.signature``, ``help()`` and IDEs.

    Runtime only: the arguments still travel as given. Use it on a class's own override of a
    forwarder (``initialize`` of a remote terminal) so that it, too, shows the real parameters.
    """
    function: Any = method
    function.__signature__ = inspect.signature(getattr(Terminal, function.__name__))
    return method


class Forwarding:
    """The 32 Terminal functions, each forwarded as given to ``self._call``.

    A subclass defines ``_call(function, args, kwargs)``: one call of ``function`` on the
    terminal it reaches, with the module's return value, ``last_error()`` kept for the next
    ``last_error()`` call, and the module's failure value (``None`` / ``False``) when the link
    fails. The methods below are in the official module's order (``TERMINAL_FUNCTIONS``).
    """

    __slots__ = ()

    def _call(self, function: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        """Call ``function`` on the terminal this object reaches; defined by each subclass."""
        raise NotImplementedError(f"{type(self).__name__} does not define _call")

    def initialize(self, *args: Any, **kwargs: Any) -> bool:
        return cast("bool", self._call("initialize", args, kwargs))

    def login(self, *args: Any, **kwargs: Any) -> bool:
        return cast("bool", self._call("login", args, kwargs))

    def shutdown(self, *args: Any, **kwargs: Any) -> None:
        self._call("shutdown", args, kwargs)

    def version(self, *args: Any, **kwargs: Any) -> tuple[int, int, str] | None:
        return cast("tuple[int, int, str] | None", self._call("version", args, kwargs))

    def last_error(self, *args: Any, **kwargs: Any) -> tuple[int, str]:
        return cast("tuple[int, str]", self._call("last_error", args, kwargs))

    def account_info(self, *args: Any, **kwargs: Any) -> AccountInfo | None:
        return cast("AccountInfo | None", self._call("account_info", args, kwargs))

    def terminal_info(self, *args: Any, **kwargs: Any) -> TerminalInfo | None:
        return cast("TerminalInfo | None", self._call("terminal_info", args, kwargs))

    def symbols_total(self, *args: Any, **kwargs: Any) -> int | None:
        return cast("int | None", self._call("symbols_total", args, kwargs))

    def symbols_get(self, *args: Any, **kwargs: Any) -> tuple[SymbolInfo, ...] | None:
        return cast("tuple[SymbolInfo, ...] | None", self._call("symbols_get", args, kwargs))

    def symbol_info(self, *args: Any, **kwargs: Any) -> SymbolInfo | None:
        return cast("SymbolInfo | None", self._call("symbol_info", args, kwargs))

    def symbol_info_tick(self, *args: Any, **kwargs: Any) -> Tick | None:
        return cast("Tick | None", self._call("symbol_info_tick", args, kwargs))

    def symbol_select(self, *args: Any, **kwargs: Any) -> bool:
        return cast("bool", self._call("symbol_select", args, kwargs))

    def market_book_add(self, *args: Any, **kwargs: Any) -> bool:
        return cast("bool", self._call("market_book_add", args, kwargs))

    def market_book_get(self, *args: Any, **kwargs: Any) -> tuple[BookInfo, ...] | None:
        return cast("tuple[BookInfo, ...] | None", self._call("market_book_get", args, kwargs))

    def market_book_release(self, *args: Any, **kwargs: Any) -> bool:
        return cast("bool", self._call("market_book_release", args, kwargs))

    def copy_rates_from(self, *args: Any, **kwargs: Any) -> Array | None:
        return cast("Array | None", self._call("copy_rates_from", args, kwargs))

    def copy_rates_from_pos(self, *args: Any, **kwargs: Any) -> Array | None:
        return cast("Array | None", self._call("copy_rates_from_pos", args, kwargs))

    def copy_rates_range(self, *args: Any, **kwargs: Any) -> Array | None:
        return cast("Array | None", self._call("copy_rates_range", args, kwargs))

    def copy_ticks_from(self, *args: Any, **kwargs: Any) -> Array | None:
        return cast("Array | None", self._call("copy_ticks_from", args, kwargs))

    def copy_ticks_range(self, *args: Any, **kwargs: Any) -> Array | None:
        return cast("Array | None", self._call("copy_ticks_range", args, kwargs))

    def orders_total(self, *args: Any, **kwargs: Any) -> int | None:
        return cast("int | None", self._call("orders_total", args, kwargs))

    def orders_get(self, *args: Any, **kwargs: Any) -> tuple[TradeOrder, ...] | None:
        return cast("tuple[TradeOrder, ...] | None", self._call("orders_get", args, kwargs))

    def order_calc_margin(self, *args: Any, **kwargs: Any) -> float | None:
        return cast("float | None", self._call("order_calc_margin", args, kwargs))

    def order_calc_profit(self, *args: Any, **kwargs: Any) -> float | None:
        return cast("float | None", self._call("order_calc_profit", args, kwargs))

    def order_check(self, *args: Any, **kwargs: Any) -> OrderCheckResult | None:
        return cast("OrderCheckResult | None", self._call("order_check", args, kwargs))

    def order_send(self, *args: Any, **kwargs: Any) -> OrderSendResult | None:
        return cast("OrderSendResult | None", self._call("order_send", args, kwargs))

    def positions_total(self, *args: Any, **kwargs: Any) -> int | None:
        return cast("int | None", self._call("positions_total", args, kwargs))

    def positions_get(self, *args: Any, **kwargs: Any) -> tuple[TradePosition, ...] | None:
        return cast("tuple[TradePosition, ...] | None", self._call("positions_get", args, kwargs))

    def history_orders_total(self, *args: Any, **kwargs: Any) -> int | None:
        return cast("int | None", self._call("history_orders_total", args, kwargs))

    def history_orders_get(self, *args: Any, **kwargs: Any) -> tuple[TradeOrder, ...] | None:
        return cast("tuple[TradeOrder, ...] | None", self._call("history_orders_get", args, kwargs))

    def history_deals_total(self, *args: Any, **kwargs: Any) -> int | None:
        return cast("int | None", self._call("history_deals_total", args, kwargs))

    def history_deals_get(self, *args: Any, **kwargs: Any) -> tuple[TradeDeal, ...] | None:
        return cast("tuple[TradeDeal, ...] | None", self._call("history_deals_get", args, kwargs))


for _name in TERMINAL_FUNCTIONS:
    terminal_signature(getattr(Forwarding, _name))
del _name
