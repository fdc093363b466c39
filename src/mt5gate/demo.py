"""A short tour of mt5gate on the simulated terminal: connect, read, trade, close.

Run with ``make demo`` or ``python -m mt5gate.demo``. It uses only the Terminal seam, so the same
calls work against a real terminal once the official adapter exists; here the terminal is the
simulator, and the first line of output says so. The simulated market keeps real trading hours:
the tour says what trades now and trades EURUSD when forex is open, else a symbol that is open
(BTCUSD trades every day).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import TextIO

from mt5gate.constants import OrderFilling, OrderType, SymbolFilling, TradeAction, TradeRetcode
from mt5gate.sim import RealClock, SimTerminal, VirtualClock
from mt5gate.sim.clock import Clock

__all__ = ["build_parser", "main", "run", "run_demo"]

SYMBOLS = ("EURUSD", "USDJPY", "XAUUSD")


def _say(out: TextIO, text: str) -> None:
    print(text, file=out)


def _connect(terminal: SimTerminal, out: TextIO) -> None:
    if not terminal.initialize():
        raise SystemExit(f"initialize() failed: {terminal.last_error()}")
    account = terminal.account_info()
    version = terminal.version()
    assert account is not None
    assert version is not None
    _say(out, f"terminal build {version[1]}, account {account.login} on {account.server}")
    _say(out, f"  balance {account.balance:.2f} {account.currency}, leverage 1:{account.leverage}")


def _prices(terminal: SimTerminal, out: TextIO) -> None:
    for symbol in SYMBOLS:
        tick = terminal.symbol_info_tick(symbol)
        if tick is None:
            _say(out, f"  {symbol}: no price ({terminal.last_error()[1]})")
            continue
        _say(out, f"  {symbol}: bid {tick.bid} ask {tick.ask} (time_msc {tick.time_msc})")


def _filling(filling_mode: int) -> OrderFilling:
    """The filling policy a symbol accepts: IOC, else FOK, else RETURN (pitfall C2)."""
    if filling_mode & SymbolFilling.IOC:
        return OrderFilling.IOC
    return OrderFilling.FOK if filling_mode & SymbolFilling.FOK else OrderFilling.RETURN


def _open_symbol(terminal: SimTerminal) -> str | None:
    """EURUSD when the forex market is open, else the first symbol that trades now (BTCUSD
    trades at weekends too), by the simulator's own session schedule; None if none does."""
    trading = terminal.market.trading_now().open
    return "EURUSD" if "EURUSD" in trading else next(iter(trading), None)


def _trade(terminal: SimTerminal, out: TextIO) -> bool:
    symbol = _open_symbol(terminal)
    if symbol is None:
        _say(out, "no market is open now: nothing to trade")
        return False
    terminal.symbol_select(symbol, True)
    info = terminal.symbol_info(symbol)
    assert info is not None
    request = {
        "action": TradeAction.DEAL,
        "symbol": symbol,
        "volume": info.volume_min,
        "type": OrderType.BUY,
        "type_filling": _filling(info.filling_mode),
        "comment": "mt5gate demo",
    }
    opened = terminal.order_send(request)
    if opened is None or opened.retcode != TradeRetcode.DONE:
        _say(out, f"open failed: {opened or terminal.last_error()}")
        return False
    _say(out, f"bought {opened.volume} {symbol} at {opened.price}: position {opened.order}")
    close = {**request, "type": OrderType.SELL, "position": opened.order}
    closed = terminal.order_send(close)
    if closed is None or closed.retcode != TradeRetcode.DONE:
        _say(out, f"close failed: {closed or terminal.last_error()}")
        return False
    deals = terminal.history_deals_get(position=opened.order) or ()
    profit = sum(d.profit for d in deals)
    _say(out, f"closed at {closed.price}: profit {profit:.2f}, {len(deals)} deals in history")
    return True


def run_demo(clock: Clock, out: TextIO) -> bool:
    """Run the tour against a fresh simulated terminal; True when every step worked."""
    _say(out, "mt5gate demo -- SIMULATED MetaTrader 5 terminal (mt5gate.sim), no real money")
    terminal = SimTerminal(clock=clock)
    _connect(terminal, out)
    _say(out, f"markets: {terminal.market.trading_now().describe()}")
    _say(out, "prices:")
    _prices(terminal, out)
    ok = _trade(terminal, out)
    terminal.shutdown()
    _say(out, "done" if ok else "demo failed")
    return ok


def build_parser() -> argparse.ArgumentParser:
    """The ``mt5gate demo`` argument parser (``mt5gate demo`` reads the same options)."""
    parser = argparse.ArgumentParser(prog="mt5gate demo", description=__doc__)
    parser.add_argument(
        "--virtual-time", action="store_true", help="use a virtual clock (reproducible output)"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m mt5gate.demo``."""
    return run(build_parser().parse_args(argv))


def run(args: argparse.Namespace) -> int:
    """The tour on parsed arguments: 0 when every step worked."""
    clock: Clock = VirtualClock() if args.virtual_time else RealClock()
    return 0 if run_demo(clock, sys.stdout) else 1


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
