"""Drop-in replacement for the official ``MetaTrader5`` module, backed by the simulator.

It has exactly the official module's public surface: the 32 functions, every constant, the 11
record types (the real ``_core`` adds them to the module), ``__version__``, ``__author__`` and the
``Buy`` / ``Sell`` / ``Close`` helpers with the real control flow, plus the private
``_RawOrder`` that third-party code uses. Functions follow the real argument conventions
(``takes no keyword arguments`` and friends) and, like the real C builtins, do not bind as
methods when a class stores them (aiomql does). Calls go to one module-wide simulated terminal,
like the real module's one process-wide IPC connection; ``mt5gate.sim.configure()`` chooses it
and ``mt5gate.sim.install()`` registers this module as ``MetaTrader5``.

Implementation names are private (underscored) so ``dir(MetaTrader5)`` shows only the real ones.
"""

import typing as _typing

from mt5gate.constants import MT5_CONSTANTS as _CONSTANTS
from mt5gate.records import RECORD_TYPES as _RECORD_TYPES
from mt5gate.sim.terminal import SimTerminal as _SimTerminal
from mt5gate.terminal.base import TERMINAL_FUNCTIONS as _FUNCTIONS
from mt5gate.terminal.base import check_call_convention as _check_call_convention

__version__ = "5.0.6231"
__author__ = "MetaQuotes Ltd."


class _State:
    """The module-wide terminal (one per process, like the real IPC client)."""

    terminal: "_SimTerminal | None" = None


def _current() -> _SimTerminal:
    """The configured terminal; on first use without configure(), a real-time one, announced."""
    if _State.terminal is None:
        import sys

        from mt5gate.sim.clock import RealClock

        _State.terminal = _SimTerminal(clock=RealClock())
        print("mt5gate: MetaTrader5 calls go to the SIMULATED terminal", file=sys.stderr)
    return _State.terminal


class _Builtin:
    """A module function that behaves like a C builtin: checks its calling convention and,
    having no ``__get__``, stays a plain function when stored on a class."""

    def __init__(self, name: str) -> None:
        self.__name__ = self.__qualname__ = name
        self.__doc__ = getattr(_SimTerminal, name).__doc__

    def __call__(self, *args: _typing.Any, **kwargs: _typing.Any) -> _typing.Any:
        name = self.__name__
        _check_call_convention(name, args, kwargs)
        return getattr(_current(), name)(*args, **kwargs)

    def __repr__(self) -> str:
        return f"<built-in function {self.__name__}>"


for _name in _FUNCTIONS:
    globals()[_name] = _Builtin(_name)
globals().update(_CONSTANTS)
globals().update(_RECORD_TYPES)
del _name

_RETRY = (_CONSTANTS["TRADE_RETCODE_REQUOTE"], _CONSTANTS["TRADE_RETCODE_PRICE_OFF"])
_BUY, _SELL = _CONSTANTS["ORDER_TYPE_BUY"], _CONSTANTS["ORDER_TYPE_SELL"]


def _send(request: dict[str, _typing.Any]) -> _typing.Any:
    return _current().order_send(request)


def _tick(symbol: str) -> _typing.Any:
    return _current().symbol_info_tick(symbol)


def _RawOrder(
    order_type: int,
    symbol: str,
    volume: float,
    price: float,
    comment: str | None = None,
    ticket: int | None = None,
) -> _typing.Any:
    """A market DEAL with deviation 10 (the real module's private helper)."""
    order: dict[str, _typing.Any] = {
        "action": _CONSTANTS["TRADE_ACTION_DEAL"],
        "symbol": symbol,
        "volume": volume,
        "type": order_type,
        "price": price,
        "deviation": 10,
    }
    if comment is not None:
        order["comment"] = comment
    if ticket is not None:
        order["position"] = ticket
    return _send(order)


def _market(
    side: int,
    symbol: str,
    volume: float,
    price: float | None,
    comment: str | None,
    ticket: int | None,
) -> _typing.Any:
    """Buy/Sell: one send at an explicit price; else up to 10 tries at the current quote."""
    if price is not None:
        return _RawOrder(side, symbol, volume, price, comment, ticket)
    result = None
    for _attempt in range(10):
        tick = _tick(symbol)  # like the real helper, a missing tick raises AttributeError below
        quote = tick.ask if side == _BUY else tick.bid
        result = _RawOrder(side, symbol, volume, quote, comment, ticket)
        if result is None:
            return None
        if result.retcode not in _RETRY:
            break
    return result


def Buy(
    symbol: str,
    volume: float,
    price: float | None = None,
    *,
    comment: str | None = None,
    ticket: int | None = None,
) -> _typing.Any:
    """Market buy (closing position ``ticket`` when given)."""
    return _market(_BUY, symbol, volume, price, comment, ticket)


def Sell(
    symbol: str,
    volume: float,
    price: float | None = None,
    *,
    comment: str | None = None,
    ticket: int | None = None,
) -> _typing.Any:
    """Market sell (closing position ``ticket`` when given)."""
    return _market(_SELL, symbol, volume, price, comment, ticket)


def _close_one(symbol: str, position: _typing.Any, comment: str | None) -> bool | None:
    """Up to 10 tries to close one position; True when closed, None when a call failed."""
    for _attempt in range(10):
        tick = _tick(symbol)
        if tick is None:
            return None
        if position.type == _BUY:
            result = _RawOrder(_SELL, symbol, position.volume, tick.bid, comment, position.ticket)
        else:
            result = _RawOrder(_BUY, symbol, position.volume, tick.ask, comment, position.ticket)
        if result is None:
            return None
        if result.retcode not in _RETRY:
            return bool(result.retcode == _CONSTANTS["TRADE_RETCODE_DONE"])
    return False


def Close(symbol: str, *, comment: str | None = None, ticket: int | None = None) -> _typing.Any:
    """Close the positions of ``ticket`` (or of ``symbol``): True all, 'Partially' some,
    False none, None when a tick or order_send returned None."""
    terminal = _current()
    if ticket is not None:
        positions = terminal.positions_get(ticket=ticket)
    else:
        positions = terminal.positions_get(symbol=symbol)
    tried = done = 0
    for position in positions:  # type: ignore[union-attr]  # None raises, as in the real module
        if position.type not in (_BUY, _SELL):
            continue
        tried += 1
        closed = _close_one(symbol, position, comment)
        if closed is None:
            return None
        done += closed
    if done:
        return True if done == tried else "Partially"
    return False
