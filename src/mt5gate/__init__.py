"""mt5gate: a resilient, observable gateway to MetaTrader 5, with a faithful simulated terminal."""

from mt5gate.records import RECORD_TYPES
from mt5gate.terminal import Terminal

__all__ = ["RECORD_TYPES", "Terminal", "__version__"]

__version__ = "0.1.0"
