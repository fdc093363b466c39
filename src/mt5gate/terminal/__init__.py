"""The Terminal seam: anything shaped like the ``MetaTrader5`` module.

Everything above the seam (session, journal, service, bot, CLI) talks to a :class:`Terminal`;
the official module satisfies it as it is, and ``mt5gate.sim.SimTerminal`` implements it.
"""

from mt5gate.terminal.base import TERMINAL_FUNCTIONS, DateArg, Terminal

__all__ = ["TERMINAL_FUNCTIONS", "DateArg", "Terminal"]
