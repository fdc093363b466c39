"""The simulator's market-data engine: catalogue, live ticks, history, bars, book, conversion.

``Market`` is the entry point; ``default_catalogue()`` the default instruments.
"""

from __future__ import annotations

from mt5gate.sim.market.catalogue import default_catalogue
from mt5gate.sim.market.dtypes import RATES_DTYPE, TICKS_DTYPE, RateArray, TickArray
from mt5gate.sim.market.market import Listener, Market
from mt5gate.sim.market.sessions import TradingNow

__all__ = [
    "RATES_DTYPE",
    "TICKS_DTYPE",
    "Listener",
    "Market",
    "RateArray",
    "TickArray",
    "TradingNow",
    "default_catalogue",
]
