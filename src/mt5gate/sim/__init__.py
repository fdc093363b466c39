"""``mt5gate.sim``: a faithful, stateful MetaTrader 5 terminal in pure Python.

Use it directly through the Terminal seam::

    from mt5gate.sim import SimTerminal
    terminal = SimTerminal()              # virtual clock: tests step time explicitly
    terminal.initialize()

or as a drop-in ``MetaTrader5`` module for code written for the official package::

    import mt5gate.sim
    mt5gate.sim.install()                 # real-time clock, default accounts
    import MetaTrader5 as mt5             # the simulator, announced as such
"""

from __future__ import annotations

import importlib
import sys
from types import ModuleType
from typing import TYPE_CHECKING, Any

from mt5gate.sim.clock import Clock, RealClock, VirtualClock, server_ms
from mt5gate.sim.config import AccountConfig, BrokerOptions, SimConfig, TerminalFlags
from mt5gate.sim.faults import Fault, FaultKind, FaultPlan
from mt5gate.sim.symbols import SessionWindow, SymbolSpec

if TYPE_CHECKING:
    from mt5gate.sim.terminal import SimTerminal

__all__ = [
    "AccountConfig",
    "BrokerOptions",
    "Clock",
    "Fault",
    "FaultKind",
    "FaultPlan",
    "RealClock",
    "SessionWindow",
    "SimConfig",
    "SimTerminal",
    "SymbolSpec",
    "TerminalFlags",
    "VirtualClock",
    "configure",
    "default_terminal",
    "install",
    "server_ms",
    "uninstall",
]


def __getattr__(name: str) -> Any:
    """Load the terminal facade on first use, so ``import mt5gate.sim.clock`` stays light."""
    if name == "SimTerminal":
        return importlib.import_module("mt5gate.sim.terminal").SimTerminal
    raise AttributeError(f"module 'mt5gate.sim' has no attribute {name!r}")


def _dropin() -> ModuleType:
    return importlib.import_module("mt5gate.sim.metatrader5")


def configure(terminal: SimTerminal | None = None) -> SimTerminal:
    """Choose the terminal behind the drop-in module (default: a real-time simulator)."""
    from mt5gate.sim.terminal import SimTerminal

    chosen = terminal if terminal is not None else SimTerminal(clock=RealClock())
    _dropin()._State.terminal = chosen
    return chosen


def default_terminal() -> SimTerminal:
    """The terminal the drop-in module uses now (created on first use, real-time clock)."""
    state = _dropin()._State
    if state.terminal is None:
        configure()
    terminal: SimTerminal = state.terminal
    return terminal


def install(terminal: SimTerminal | None = None) -> ModuleType:
    """Register the simulator as ``MetaTrader5`` so unmodified scripts import it.

    Loud on purpose: a message on stderr says the terminal is simulated.
    """
    module = _dropin()
    if terminal is not None or module._State.terminal is None:
        configure(terminal)
    sys.modules["MetaTrader5"] = module
    print("mt5gate: MetaTrader5 is the SIMULATED terminal (mt5gate.sim)", file=sys.stderr)
    return module


def uninstall() -> None:
    """Remove the simulator from ``sys.modules['MetaTrader5']`` (if it is the one there)."""
    installed = sys.modules.get("MetaTrader5")
    if installed is not None and installed is sys.modules.get("mt5gate.sim.metatrader5"):
        del sys.modules["MetaTrader5"]
