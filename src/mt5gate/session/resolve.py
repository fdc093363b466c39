"""Turn the session's ``terminal=`` argument into a Terminal, never silently a simulator.

A Terminal object is used as it is. Names: ``"official"`` imports the official ``MetaTrader5``
package (Windows only; a clear error elsewhere), ``"sim"`` builds a real-time simulated terminal
and logs a warning that it is simulated. Network URLs (``bridge://``, ``rpyc://``) arrive with
the bridge issue and are refused with a clear error until then.
"""

from __future__ import annotations

import importlib
import logging

from mt5gate.errors import MT5InitError
from mt5gate.terminal.base import Terminal

__all__ = ["resolve_terminal"]

log = logging.getLogger("mt5gate.session")


def resolve_terminal(spec: Terminal | str) -> Terminal:
    """The Terminal that ``spec`` names (see the module docstring)."""
    if not isinstance(spec, str):
        return spec
    name = spec.strip().lower()
    if name == "official":
        return _official()
    if name in ("sim", "sim://", "simulator"):
        return _simulator()
    raise MT5InitError(
        f"unknown terminal {spec!r}. Pass a Terminal object, 'official' (the MetaTrader5 "
        "package, Windows) or 'sim' (the simulator)."
    )


def _official() -> Terminal:
    try:
        module = importlib.import_module("MetaTrader5")
    except ImportError:
        raise MT5InitError(
            "terminal='official' needs the MetaTrader5 package, which exists for Windows only "
            "(pip install MetaTrader5). On Linux use a bridge to a Windows or Wine terminal, or "
            "terminal='sim' for the simulator."
        ) from None
    return module  # the module is the Terminal seam itself


def _simulator() -> Terminal:
    from mt5gate.sim.clock import RealClock
    from mt5gate.sim.terminal import SimTerminal

    log.warning("mt5gate session uses the SIMULATED terminal (mt5gate.sim), not a real MT5")
    return SimTerminal(clock=RealClock())
