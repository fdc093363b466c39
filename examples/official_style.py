"""Code written for the official ``MetaTrader5`` package, running unchanged on the simulator.

The README's "Using the simulator" snippet, completed into a whole script: ``mt5gate.sim.install()``
registers the simulator as ``MetaTrader5``; everything after ``import MetaTrader5 as mt5`` is
written as for the official package on Windows (initialize, account_info, symbol_info_tick,
copy_rates_from_pos, a market order with order_send, positions_get, closing it, shutdown).

Run it (anywhere; it says on stderr that MetaTrader5 is the SIMULATED terminal)::

    .venv/bin/python examples/official_style.py
    .venv/bin/python examples/official_style.py --virtual-clock

By default the simulator follows the wall clock (as ``install()`` does): prices move, and like a
real forex broker the market is closed at weekends, when the order is answered with retcode
10018 "Market closed". The script checks the retcode, as code for the official package must,
and says so. ``--virtual-clock`` installs a simulator whose clock stands at a weekday morning
(Monday 2026-01-05 08:00 server time), where the market is always open.

Delete the two ``mt5gate.sim`` lines and the script runs on a real terminal with the official
package (on Windows, or through its Wine/RPyC bridges).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

import mt5gate.sim
from mt5gate.sim import SimTerminal, VirtualClock

parser = argparse.ArgumentParser(description="official-package code on the simulator")
parser.add_argument("--symbol", default="EURUSD")
parser.add_argument("--volume", type=float, default=0.01)
parser.add_argument(
    "--virtual-clock",
    action="store_true",
    help="simulate a weekday morning (market open) instead of following the wall clock",
)
args = parser.parse_args()

if args.virtual_clock:
    mt5gate.sim.install(SimTerminal(clock=VirtualClock()))
else:
    mt5gate.sim.install()  # says on stderr that the terminal is simulated

# ---- from here on: code for the official package, unchanged ----------------------------------
import MetaTrader5 as mt5  # type: ignore[import-not-found]  # noqa: E402, N813

SYMBOL: str = args.symbol
VOLUME: float = args.volume
# Flags of symbol_info().filling_mode. The official package does not export them (MQL5 names
# them SYMBOL_FILLING_FOK and SYMBOL_FILLING_IOC), so scripts spell them out.
SYMBOL_FILLING_FOK = 1
SYMBOL_FILLING_IOC = 2


def filling_for(info: Any) -> int:
    """The filling mode the symbol allows (market execution refuses ORDER_FILLING_RETURN)."""
    if info.filling_mode & SYMBOL_FILLING_FOK:
        return int(mt5.ORDER_FILLING_FOK)
    if info.filling_mode & SYMBOL_FILLING_IOC:
        return int(mt5.ORDER_FILLING_IOC)
    return int(mt5.ORDER_FILLING_RETURN)


def market_request(order_type: int, price: float, position: int = 0) -> dict[str, Any]:
    request: dict[str, Any] = {
        "action": mt5.TRADE_ACTION_DEAL,
        "symbol": SYMBOL,
        "volume": VOLUME,
        "type": order_type,
        "price": price,
        "deviation": 20,
        "magic": 234000,
        "comment": "official_style",
        "type_time": mt5.ORDER_TIME_GTC,
        "type_filling": filling_for(mt5.symbol_info(SYMBOL)),
    }
    if position:
        request["position"] = position
    return request


def main() -> int:
    if not mt5.initialize():
        print("initialize() failed:", mt5.last_error())
        return 1
    print("terminal:", mt5.terminal_info().company, "build", mt5.version()[1])

    account = mt5.account_info()
    print(f"account: {account.login} {account.server} balance {account.balance} {account.currency}")

    if not mt5.symbol_select(SYMBOL, True):
        print(f"symbol_select({SYMBOL}) failed:", mt5.last_error())
        mt5.shutdown()
        return 1
    tick = mt5.symbol_info_tick(SYMBOL)
    print(f"tick: {SYMBOL} bid {tick.bid} ask {tick.ask} time {tick.time}")

    rates = mt5.copy_rates_from_pos(SYMBOL, mt5.TIMEFRAME_H1, 0, 100)  # numpy, real dtype
    print(f"rates: {len(rates)} H1 bars, fields {rates.dtype.names}")
    print(f"last bar: open {rates[-1]['open']} close {rates[-1]['close']}")

    result = mt5.order_send(market_request(mt5.ORDER_TYPE_BUY, tick.ask))
    if result is None:
        print("order_send() failed:", mt5.last_error())
        mt5.shutdown()
        return 1
    if result.retcode != mt5.TRADE_RETCODE_DONE:
        # A business answer, not a crash: at weekends the simulated market is closed (10018).
        print(f"order not executed: retcode {result.retcode} ({result.comment})")
        mt5.shutdown()
        return 0
    print(
        f"order: BUY {result.volume} {SYMBOL} at {result.price}, order {result.order}, "
        f"deal {result.deal}"
    )

    positions = mt5.positions_get(symbol=SYMBOL)
    print(f"positions: {len(positions)}")
    for position in positions:
        print(
            f"  #{position.ticket} {position.volume} lots at {position.price_open}, "
            f"profit {position.profit}"
        )

    bid = mt5.symbol_info_tick(SYMBOL).bid
    closed = mt5.order_send(market_request(mt5.ORDER_TYPE_SELL, bid, position=result.order))
    if closed is None or closed.retcode != mt5.TRADE_RETCODE_DONE:
        print("close failed:", closed, mt5.last_error())
        mt5.shutdown()
        return 1
    print(
        f"closed: position {result.order} at {closed.price}; "
        f"positions left: {mt5.positions_total()}"
    )

    mt5.shutdown()
    print("shutdown")
    return 0


if __name__ == "__main__":
    sys.exit(main())
