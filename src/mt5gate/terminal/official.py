"""The official ``MetaTrader5`` package as a Terminal: the one place mt5gate imports it.

The module already *is* the seam (32 functions, records, ``last_error``), so the adapter only
imports it lazily and explains what to do when it is missing: the package has Windows wheels
only (``pip install MetaTrader5`` on Windows, next to mt5gate; see ``docs/install.md``). On
Linux, reach a Windows or Wine terminal through the bridge (``bridge://``), or use the
simulator. Tests install the simulator's drop-in module under the name ``MetaTrader5`` and run
this same code path.
"""

from __future__ import annotations

import importlib
from typing import cast

from mt5gate.errors import MT5InitError
from mt5gate.terminal.base import TERMINAL_FUNCTIONS, Terminal

__all__ = ["official_terminal"]


def official_terminal(module_name: str = "MetaTrader5") -> Terminal:
    """Import the official package and check it has the 32 functions of the seam."""
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        raise MT5InitError(
            f"the {module_name} package is not installed. It exists for Windows only "
            "(pip install MetaTrader5 there); on Linux use a bridge to a Windows or "
            "Wine terminal (bridge://host:port) or the simulator (terminal='sim')."
        ) from None
    missing = [name for name in TERMINAL_FUNCTIONS if not callable(getattr(module, name, None))]
    if missing:
        raise MT5InitError(
            f"{module_name} lacks {', '.join(missing)}; install a MetaTrader5 package of 5.0.4x "
            "or newer."
        )
    return cast(Terminal, module)
