"""Quickstart: one async session to a (simulated) MT5 account.

The README's "Using the session" snippet, made runnable and taken one step further:

1. connect ``MT5SessionManager`` to the simulated demo account 5001 (``SimTerminal()``);
2. print the account, the EURUSD price and the health probe's verdict;
3. place a 0.01 lot market buy with an idempotency key, show that sending it again with the
   same key returns the same order instead of a second one;
4. close the position and show that none is left.

Run it (no MetaTrader 5 needed; it says that the terminal is simulated)::

    .venv/bin/python examples/quickstart.py
    .venv/bin/python examples/quickstart.py --symbol GBPUSD --volume 0.02

``SimTerminal()`` runs on a *virtual* clock standing at a weekday morning of the simulated
broker (Monday 2026-01-05 08:00 server time): the market is open whatever day you run this, and
prices only move when the simulator is told to step. Without ``journal=`` the session keeps its
order journal in memory and logs a warning that says so; see ``faults_in_tests.py`` for a
journal on disk. On a real terminal, replace ``SimTerminal()`` by ``"official"`` (Windows) or
``"bridge://host:port"`` and use your own login, password and server.
"""

from __future__ import annotations

import argparse
import asyncio

from mt5gate import MT5SessionManager, probe
from mt5gate.models import OrderRequest, Side
from mt5gate.sim import SimTerminal

DEMO_LOGIN = 5001
DEMO_PASSWORD = "sim-pass-5001"  # the simulator's published demo password, not a secret
DEMO_SERVER = "MetaQuotes-Demo"


async def main(symbol: str, volume: float) -> None:
    print("*** SIMULATED terminal (mt5gate.sim): prices and orders are not real ***")
    async with MT5SessionManager(
        terminal=SimTerminal(), login=DEMO_LOGIN, password=DEMO_PASSWORD, server=DEMO_SERVER
    ) as manager:
        account = await manager.get_account_info()
        print(
            f"account: {account.login} on {account.server}, balance {account.balance:.2f} "
            f"{account.currency}, hedging={account.hedging}"
        )

        price = await manager.get_price(symbol)
        print(f"price: {symbol} bid {price.bid} ask {price.ask} spread {price.spread:.5f}")

        # Without symbols= the probe leaves tick age out: the virtual clock's ticks are "old"
        # by the wall clock, which probe() compares them with.
        health = await probe(manager)
        print(f"health: {health.status}")
        for reason in health.reasons:
            print(f"  {reason}")

        # The idempotency key makes the order safe to retry: the same key with the same request
        # returns the first outcome and never sends a second order.
        request = OrderRequest(symbol, Side.BUY, volume, comment="quickstart")
        placed = await manager.place_order(request, idempotency_key="quickstart-buy-1")
        print(
            f"order: BUY {placed.volume} {symbol} at {placed.price} -> ticket {placed.order} "
            f"(retcode {placed.retcode}, client id {placed.client_id})"
        )
        again = await manager.place_order(request, idempotency_key="quickstart-buy-1")
        print(f"same key again: ticket {again.order} (same order: {again.order == placed.order})")

        positions = await manager.positions(symbol=symbol)
        print(f"open positions: {len(positions)}")

        # On a hedging account a market order opens a position whose ticket is the order's.
        closed = await manager.close_position(placed.order, idempotency_key="quickstart-close-1")
        print(f"closed: ticket {placed.order} at {closed.price} (retcode {closed.retcode})")
        print(f"open positions: {len(await manager.positions(symbol=symbol))}")
    print("session closed")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--symbol", default="EURUSD", help="symbol to quote and trade")
    parser.add_argument("--volume", type=float, default=0.01, help="lots to buy, then close")
    return parser.parse_args(argv)


if __name__ == "__main__":
    args = parse_args()
    asyncio.run(main(args.symbol, args.volume))
