"""``mt5gate serve`` on a simulator of a few symbols, for the service benchmark.

The service exactly as ``python -m mt5gate.cli serve`` runs it (the same settings from the
environment, the same uvicorn settings, the same app), except that each simulated account's
simulator lists only ``--symbols`` of the catalogue::

    python -m bench.service_host --port 8001 --symbols EURUSD

Why: a real-time simulator brings every symbol of its catalogue up to the clock's millisecond
on each call, so with the 60-symbol catalogue one ``symbol_info_tick`` costs about 1 ms,
several times what the rest of a request costs. The baseline pays that on every request, the
service once per batch of concurrent requests (they share one terminal call), and the ratio
of the two then measures the simulator. With one symbol a call costs some tens of
microseconds, as a real terminal's does, and the ratio measures the service.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from bench.service_baseline import limited_simulator
from mt5gate.service.cli import main as serve
from mt5gate.service.config import AccountSettings
from mt5gate.service.simulated import sim_clock
from mt5gate.sim import SimTerminal
from mt5gate.terminal.base import Terminal

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    """``mt5gate serve --port PORT`` with every simulated account on a limited simulator."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--symbols", required=True, help="comma-separated catalogue symbols")
    args = parser.parse_args(argv)
    config = limited_simulator([name for name in args.symbols.split(",") if name])

    def terminal_for(account: AccountSettings) -> Terminal | None:
        if not account.simulated:
            return None
        return SimTerminal(config=config, clock=sim_clock(account))

    return serve(["--port", str(args.port)], terminal_for=terminal_for)


if __name__ == "__main__":
    raise SystemExit(main())
