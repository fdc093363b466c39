"""A bridge process for the benchmark: a rich simulated account on a weekday virtual clock.

Run as ``python -m bench._bridge_host TOKEN``; prints the bound port, serves until killed.
"""

from __future__ import annotations

import asyncio
import sys

from mt5gate.bridge.server import BridgeServer
from mt5gate.sim import AccountConfig, SimConfig, VirtualClock, server_ms
from mt5gate.sim.terminal import SimTerminal

RICH = AccountConfig(login=9001, password="bench", balance=1e9, limit_orders=5_000)


def rich_simulator() -> SimTerminal:
    """The simulator every benchmark path hosts (picklable for the child-process path)."""
    config = SimConfig(accounts=(RICH,), history_days=1)
    return SimTerminal(config, clock=VirtualClock(server_ms(2026, 1, 6, 10)))


async def serve(token: str) -> None:
    server = BridgeServer(rich_simulator(), token=token, port=0, terminal_kind="sim")
    await server.start()
    print(server.port, flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(serve(sys.argv[1]))
