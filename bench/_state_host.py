"""A bridge process for the state-file benchmark: the rich simulated account, on a clock pinned
to a weekday morning (as ``mt5gate bridge --sim-start``), with or without a state file.

Run as ``python -m bench._state_host TOKEN [STATE_FILE|-] [HISTORY_DAYS]``; prints the bound
port, serves until killed. It uses only what every mt5gate version since the state file has
(``state_file=``), so the same benchmark measures a tree before and after a change to the
file's format.
"""

from __future__ import annotations

import asyncio
import sys

from bench._bridge_host import RICH
from mt5gate.bridge.server import BridgeServer
from mt5gate.sim import RealClock, SimConfig, server_ms
from mt5gate.sim.terminal import SimTerminal


async def serve(token: str, state_file: str | None, history_days: int) -> None:
    simulator = SimTerminal(SimConfig(accounts=(RICH,), history_days=history_days),
                            clock=RealClock(start_ms=server_ms(2026, 1, 6, 10)),
                            state_file=state_file)  # fmt: skip
    server = BridgeServer(simulator, token=token, port=0, terminal_kind="sim")
    await server.start()
    print(server.port, flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    state = sys.argv[2] if len(sys.argv) > 2 and sys.argv[2] != "-" else None
    asyncio.run(serve(sys.argv[1], state, int(sys.argv[3]) if len(sys.argv) > 3 else 1))
