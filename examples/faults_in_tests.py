"""A lost order reply, scripted on the simulator: why blind retries duplicate orders, and how
``MT5SessionManager`` journals the order and reconciles it into exactly one position.

This is the README's "In tests" snippet, in full. ``terminal.faults.reply_lost("order_send")``
makes the next order *execute* at the simulated broker while ``order_send`` answers ``None``
with ``last_error() == (-10002, 'IPC recv failed')``: what a real terminal does when its IPC
pipe breaks at the wrong moment.

Part 1 drives the simulated terminal directly, the way code for the official package does:
the "failed" order is there anyway, and resending it would open a second position.

Part 2 sends the same order through ``MT5SessionManager`` with a durable SQLite journal (in a
temporary directory). The session writes INTENT and SENT before the order leaves, tags the
order with its client order id (in ``magic`` and the comment), sees the reply lost (UNKNOWN),
finds the order at the broker by that id (RECONCILED_PRESENT) and returns its result: one
position. Sending it again with the same idempotency key returns the same order.

Run it::

    .venv/bin/python examples/faults_in_tests.py
    .venv/bin/python examples/faults_in_tests.py --keep-journal orders.db
    .venv/bin/mt5gate journal list --journal orders.db    # then read the journal it kept

Both parts use a ``VirtualClock``: simulated time stands still (at a weekday morning, market
open) until ``terminal.step()`` moves it, so the run is the same on any day, as in a test.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import tempfile
from pathlib import Path

from mt5gate import MT5SessionManager
from mt5gate.models import OrderRequest, Side
from mt5gate.orders.journal import SqliteJournal
from mt5gate.sim import SimTerminal, VirtualClock

LOGIN, PASSWORD, SERVER = 5001, "sim-pass-5001", "MetaQuotes-Demo"  # the simulated demo account


def raw_terminal(symbol: str, volume: float) -> None:
    """Part 1: the README snippet, on the terminal itself."""
    print("== part 1: the raw terminal (as code for the official package sees it)")
    terminal = SimTerminal(clock=VirtualClock())
    terminal.initialize(login=5001, password="sim-pass-5001", server="MetaQuotes-Demo")
    request = {
        "action": 1,  # TRADE_ACTION_DEAL
        "symbol": symbol,
        "volume": volume,
        "type": 0,  # ORDER_TYPE_BUY
        "type_filling": 0,  # ORDER_FILLING_FOK
        "deviation": 20,
    }
    terminal.faults.reply_lost("order_send")  # the next order executes, its reply is lost
    result = terminal.order_send(request)  # None, last_error() == (-10002, 'IPC recv failed')
    print(f"order_send() -> {result}, last_error() = {terminal.last_error()}")
    print(f"positions at the broker anyway: {terminal.positions_total()}")
    retry = terminal.order_send(request)  # the naive "it failed, send it again"
    print(
        f"a blind resend answers retcode {retry.retcode if retry else None}: "
        f"now {terminal.positions_total()} positions (a duplicate)"
    )
    terminal.step(seconds=60)  # a minute of market passes
    print(f"a minute later (simulated): {terminal.symbol_info_tick(symbol)}")
    terminal.shutdown()


async def through_the_session(symbol: str, volume: float, journal_path: Path) -> int:
    """Part 2: the same fault under the session's exactly-once pipeline. Returns positions."""
    print("== part 2: MT5SessionManager with a SQLite order journal")
    terminal = SimTerminal(clock=VirtualClock())
    with SqliteJournal(journal_path) as journal:
        session = MT5SessionManager(
            terminal=terminal, login=LOGIN, password=PASSWORD, server=SERVER, journal=journal
        )
        async with session:
            terminal.faults.reply_lost("order_send")
            request = OrderRequest(symbol, Side.BUY, volume)
            result = await session.place_order(request, idempotency_key="example-order-1")
            print(
                f"place_order() -> ticket {result.order}, retcode {result.retcode}, "
                f"comment {result.comment!r}, client id {result.client_id}"
            )
            print(f"journal state: {await session.order_state(result.client_id)}")
            print("journal history:")
            for event in journal.history(LOGIN, result.client_id):
                print(f"  {event.seq}. {event.kind}" + (f" - {event.note}" if event.note else ""))

            again = await session.place_order(request, idempotency_key="example-order-1")
            print(
                f"same idempotency key again -> ticket {again.order} "
                f"(same order: {again.order == result.order})"
            )

            positions = await session.positions(symbol=symbol)
            print(f"positions: {len(positions)} (exactly one)")
            print(f"unresolved orders: {await session.unresolved_orders()}")
            return len(positions)


def main() -> int:
    parser = argparse.ArgumentParser(description="a lost order reply, reconciled")
    parser.add_argument("--symbol", default="EURUSD")
    parser.add_argument("--volume", type=float, default=0.01)
    parser.add_argument(
        "--keep-journal", type=Path, default=None, help="copy the SQLite journal here at the end"
    )
    args = parser.parse_args()

    print("*** SIMULATED terminal (mt5gate.sim) with scripted faults ***")
    raw_terminal(args.symbol, args.volume)
    with tempfile.TemporaryDirectory(prefix="mt5gate-example-") as folder:
        journal_path = Path(folder) / "orders.db"
        positions = asyncio.run(through_the_session(args.symbol, args.volume, journal_path))
        if args.keep_journal is not None:
            shutil.copyfile(journal_path, args.keep_journal)
            print(f"journal copied to {args.keep_journal}")
    return 0 if positions == 1 else 1


if __name__ == "__main__":
    raise SystemExit(main())
