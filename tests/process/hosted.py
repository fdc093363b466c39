"""Factories the child processes build their terminals with (module-level: spawn pickles them).

Each child imports this module by name, so it must stay importable without side effects.
"""

from __future__ import annotations

import signal
import time

from mt5gate.sim import SimConfig, VirtualClock, server_ms
from mt5gate.sim.terminal import SimTerminal

#: Tuesday 2026-01-06 10:00 server time: the forex session is open.
TUESDAY_10 = server_ms(2026, 1, 6, 10)

#: Simulator controls the tests may call through ``host_call``.
SIM_CONTROLS = frozenset(
    {
        "step",
        "clock.now_ms",
        "market.push_tick",
        "set_autotrading",
        "faults.hang",
        "faults.latency",
        "faults.release",
        "faults.wait",
        "faults.clear",
        "faults.ipc_error",
    }
)


def build_sim(
    start_ms: int = TUESDAY_10, *, default_login: int | None = None, history_days: int = 1
) -> SimTerminal:
    """A simulated terminal on a virtual clock, logged into ``default_login`` (detached)."""
    config = SimConfig(history_days=history_days, default_login=default_login)
    return SimTerminal(config, clock=VirtualClock(start_ms))


def broken_factory() -> SimTerminal:
    """A factory that fails in the child, as a terminal that cannot be built would."""
    raise RuntimeError("no terminal here")


def slow_factory() -> SimTerminal:
    """A factory that takes far longer than any start timeout in the tests."""
    time.sleep(60)
    return build_sim()


def stubborn_sim() -> SimTerminal:
    """A terminal whose process ignores SIGTERM, so only SIGKILL ends it."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    return build_sim()
