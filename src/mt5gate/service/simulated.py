"""Simulated accounts: the simulator a ``sim`` account runs on, and what its markets do now.

A ``sim`` account's simulator runs on a :class:`~mt5gate.sim.RealClock`: the machine's clock, or,
with ``sim_start``, a clock pinned to start at that server time and run in real time from there
(replay a Tuesday 10:00 market on a Saturday). Its health is judged by that same clock: a
replayed day's ticks are fresh on its own clock and would be days old on the machine's.
``mt5gate serve`` says on start, for each simulated account, what trades now and what is closed,
from the simulator's own session schedule.

A simulator can also sit behind a bridge (``mt5gate bridge --terminal sim``): its welcome says
so, and :func:`runs_simulator` then labels the account SIMULATED as a ``sim`` account is.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Final

from mt5gate.health import wall_utc_ms
from mt5gate.service.config import AccountSettings, ServiceSettings
from mt5gate.sim.clock import RealClock, VirtualClock, server_ms_of
from mt5gate.terminal.base import Terminal

if TYPE_CHECKING:
    from mt5gate.sim.terminal import SimTerminal

__all__ = [
    "configured_terminal", "health_clock", "markets_now", "runs_simulator", "sim_clock",
    "simulator",
]  # fmt: skip


def sim_clock(account: AccountSettings) -> RealClock:
    """A simulated account's broker clock: the machine's, or pinned to ``sim_start``."""
    if account.sim_start is None:
        return RealClock()
    return RealClock(start_ms=server_ms_of(account.sim_start))


def simulator(
    account: AccountSettings, state_file: Path | None = None, *, save_interval_s: float = 0.0
) -> SimTerminal:
    """A simulator for ``account`` on its clock, keeping its broker in ``state_file`` (saved
    after every change, or at most every ``save_interval_s`` and when it detaches)."""
    from mt5gate.sim.terminal import SimTerminal

    return SimTerminal(clock=sim_clock(account), state_file=state_file,
                       save_interval_s=save_interval_s)  # fmt: skip


#: How often a long-running process (``mt5gate serve``) saves a simulated broker that changed
#: (a record of the changes appended to the state file, see :mod:`mt5gate.sim.state`). It is
#: also saved when the session detaches, before the account's lease is given up, so the next
#: owner (an ``mt5gate`` command) finds every order.
SERVICE_SAVE_INTERVAL_S: Final = 30.0


def configured_terminal(account: AccountSettings, settings: ServiceSettings) -> Terminal | str:
    """What a configured account runs on: for a ``sim`` account, a simulator on the account's
    clock whose broker is the one the ``mt5gate`` commands use (its state file in the data
    directory); otherwise its terminal's name or URL, which the session resolves."""
    if not account.simulated:
        return account.terminal
    return simulator(account, settings.state_file(account),
                     save_interval_s=SERVICE_SAVE_INTERVAL_S)  # fmt: skip


def health_clock(terminal: Terminal) -> Callable[[], int]:
    """The UTC clock health checks of a session on ``terminal`` judge it by (``utc_now_ms``): a
    simulator's own (a pinned one replays another day), else the wall clock."""
    clock = getattr(terminal, "clock", None)
    if isinstance(clock, RealClock | VirtualClock):
        return clock.utc_ms
    return wall_utc_ms


def runs_simulator(terminal: Terminal | str) -> bool:
    """Whether ``terminal`` is mt5gate's simulator: here, or behind a bridge whose welcome
    said so (known once the session has connected)."""
    from mt5gate.sim.terminal import SimTerminal
    from mt5gate.terminal.bridge import BridgeTerminal

    if isinstance(terminal, SimTerminal):
        return True
    return isinstance(terminal, BridgeTerminal) and terminal.simulated


def markets_now(terminal: Terminal) -> str | None:
    """For a simulator, one line saying which of its symbols trade now and when the closed ones
    open (the simulator's own schedule); None for any other terminal."""
    from mt5gate.sim.terminal import SimTerminal

    if not isinstance(terminal, SimTerminal):
        return None
    return terminal.market.trading_now().describe()
