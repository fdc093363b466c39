"""Currency conversion with the current quotes (semantics §9.2).

For ``from -> to``: a symbol quoting ``FROM`` in ``TO`` (base FROM, profit TO) multiplies by its
bid; one quoting ``TO`` in ``FROM`` divides by its ask. Both choices give the smaller amount,
the broker's side of the spread; ``worse=True`` takes the other side (ask / bid), the larger
amount, as used for the loss tick value. Without a direct symbol the amount goes through USD.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from mt5gate.sim.errors import CALL_FAILED
from mt5gate.sim.symbols import SymbolSpec

__all__ = ["Converter"]

Quote = Callable[[str], tuple[float, float] | None]


class Converter:
    """Finds the symbol linking two currencies and applies its quote."""

    def __init__(self, specs: Sequence[SymbolSpec], quote: Quote) -> None:
        self._pairs = {(s.currency_base, s.currency_profit): s.name for s in specs}
        self._quote = quote

    def rate(self, from_ccy: str, to_ccy: str, *, worse: bool = False) -> float:
        """Units of ``to_ccy`` per unit of ``from_ccy``; (-1) when no path or no quote."""
        if from_ccy == to_ccy:
            return 1.0
        direct = self._direct(from_ccy, to_ccy, worse)
        if direct is not None:
            return direct
        if "USD" in (from_ccy, to_ccy):
            raise CALL_FAILED()
        return self.rate(from_ccy, "USD", worse=worse) * self.rate("USD", to_ccy, worse=worse)

    def _direct(self, from_ccy: str, to_ccy: str, worse: bool) -> float | None:
        name = self._pairs.get((from_ccy, to_ccy))
        if name is not None:
            bid, ask = self._quoted(name)
            return ask if worse else bid
        name = self._pairs.get((to_ccy, from_ccy))
        if name is not None:
            bid, ask = self._quoted(name)
            return 1.0 / (bid if worse else ask)
        return None

    def _quoted(self, name: str) -> tuple[float, float]:
        quote = self._quote(name)
        if quote is None or quote[0] <= 0 or quote[1] <= 0:
            raise CALL_FAILED()
        return quote
