"""Many simulated terminals in one process, each behind its own bridge port: the fleet
benchmark's accounts (MT5 has one account per terminal; the benchmark packs several terminals
into a process so that 100 accounts fit on this machine).

Run as ``python -m bench._terminal_farm FIRST_LOGIN COUNT TOKEN``; prints one line of JSON,
``{"<login>": <port>, ...}``, then serves until killed. Each terminal is a simulator with one
rich account (login ``FIRST_LOGIN + i``, password ``bench``) on a weekday virtual clock, so
the market is open whatever the day.
"""

from __future__ import annotations

import asyncio
import json
import sys

from mt5gate.bridge.server import BridgeServer
from mt5gate.sim import AccountConfig, SimConfig, VirtualClock, server_ms
from mt5gate.sim.terminal import SimTerminal

PASSWORD = "bench"


def simulator(login: int) -> SimTerminal:
    """One account's terminal: a simulator on Tuesday 2026-01-06 10:00, server time."""
    account = AccountConfig(login=login, password=PASSWORD, balance=1e9, limit_orders=5_000)
    config = SimConfig(accounts=(account,), history_days=1)
    return SimTerminal(config, clock=VirtualClock(server_ms(2026, 1, 6, 10)))


async def serve(first: int, count: int, token: str) -> None:
    servers = [BridgeServer(simulator(first + i), token=token, port=0, terminal_kind="sim")
               for i in range(count)]  # fmt: skip
    for server in servers:
        await server.start()
    ports = {str(first + i): server.port for i, server in enumerate(servers)}
    print(json.dumps(ports), flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(serve(int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]))
