"""Drop-in replacement for the official ``MetaTrader5`` module, backed by the simulator.

It has exactly the official module's surface: the 32 functions, every constant, ``__version__``,
``__author__`` and the ``Buy`` / ``Sell`` / ``Close`` helpers, with the real argument conventions
(``takes no keyword arguments`` and friends). Calls go to one module-wide simulated terminal,
like the real module's one process-wide IPC connection; ``mt5gate.sim.configure()`` chooses it
and ``mt5gate.sim.install()`` registers this module as ``MetaTrader5`` so unmodified code runs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mt5gate.constants import MT5_CONSTANTS as _CONSTANTS
from mt5gate.sim.terminal import SimTerminal as _SimTerminal
from mt5gate.terminal.base import TERMINAL_FUNCTIONS as _FUNCTIONS

__version__ = "5.0.6231"
__author__ = "MetaQuotes Ltd."

# Calling conventions of the compiled module (PyMethodDef flags, semantics §3).
_NO_ARGS = frozenset(
    {"shutdown", "version", "terminal_info", "account_info", "positions_total"}
    | {"orders_total", "symbols_total", "last_error"}
)
_POSITIONAL_ONLY = frozenset(
    {"copy_rates_from", "copy_rates_from_pos", "copy_rates_range", "copy_ticks_from"}
    | {"copy_ticks_range", "order_calc_margin", "order_calc_profit", "symbol_info"}
    | {"symbol_info_tick", "symbol_select", "market_book_add", "market_book_get"}
    | {"market_book_release", "history_orders_total", "history_deals_total"}
)


class _State:
    """The module-wide terminal (one per process, like the real IPC client)."""

    terminal: _SimTerminal | None = None
    factory: Callable[[], _SimTerminal] | None = None


def _current() -> _SimTerminal:
    if _State.terminal is None:
        if _State.factory is None:
            raise RuntimeError("mt5gate.sim.metatrader5 has no terminal: call configure() first")
        _State.terminal = _State.factory()
    return _State.terminal


def _make(name: str) -> Callable[..., Any]:
    def function(*args: Any, **kwargs: Any) -> Any:
        if name in _NO_ARGS and (args or kwargs):
            raise TypeError(f"{name}() takes no arguments ({len(args) + len(kwargs)} given)")
        if name in _POSITIONAL_ONLY and kwargs:
            raise TypeError(f"{name}() takes no keyword arguments")
        return getattr(_current(), name)(*args, **kwargs)

    function.__name__ = function.__qualname__ = name
    function.__doc__ = getattr(_SimTerminal, name).__doc__
    return function


for _name in _FUNCTIONS:
    globals()[_name] = _make(_name)
globals().update(_CONSTANTS)
del _name

_RETRY_RETCODES = (_CONSTANTS["TRADE_RETCODE_REQUOTE"], _CONSTANTS["TRADE_RETCODE_PRICE_OFF"])


def _deal(symbol: str, volume: float, side: int, price: float | None, **extra: Any) -> Any:
    """The helpers' shared loop: up to 10 tries while the server requotes or has no price."""
    terminal = _current()
    result = None
    for _attempt in range(10):
        quote = price
        if quote is None:
            tick = terminal.symbol_info_tick(symbol)
            if tick is None:
                return None
            quote = tick.ask if side == _CONSTANTS["ORDER_TYPE_BUY"] else tick.bid
        request = {
            "action": _CONSTANTS["TRADE_ACTION_DEAL"],
            "symbol": symbol,
            "volume": volume,
            "type": side,
            "price": quote,
            "deviation": 10,
        }
        request.update({k: v for k, v in extra.items() if v is not None})
        result = terminal.order_send(request)
        if result is None or result.retcode not in _RETRY_RETCODES:
            return result
    return result


def Buy(
    symbol: str, volume: float, price: float | None = None, *, comment: str | None = None,
    ticket: int | None = None,
) -> Any:  # fmt: skip
    """Market buy (closing ``ticket`` when given), retried on requote / no prices."""
    return _deal(
        symbol, volume, _CONSTANTS["ORDER_TYPE_BUY"], price, comment=comment, position=ticket
    )


def Sell(
    symbol: str, volume: float, price: float | None = None, *, comment: str | None = None,
    ticket: int | None = None,
) -> Any:  # fmt: skip
    """Market sell (closing ``ticket`` when given), retried on requote / no prices."""
    return _deal(
        symbol, volume, _CONSTANTS["ORDER_TYPE_SELL"], price, comment=comment, position=ticket
    )


def Close(symbol: str, *, comment: str | None = None, ticket: int | None = None) -> Any:
    """Close positions of ``ticket`` or ``symbol``: True all, 'Partially' some, False none."""
    terminal = _current()
    found = (
        terminal.positions_get(ticket=ticket)
        if ticket is not None
        else terminal.positions_get(symbol=symbol)
    )
    if not found:
        return False
    closed = 0
    for position in found:
        opposite = Sell if position.type == _CONSTANTS["POSITION_TYPE_BUY"] else Buy
        result = opposite(position.symbol, position.volume, comment=comment, ticket=position.ticket)
        if result is None:
            return None
        closed += result.retcode == _CONSTANTS["TRADE_RETCODE_DONE"]
    if closed == len(found):
        return True
    return "Partially" if closed else False
