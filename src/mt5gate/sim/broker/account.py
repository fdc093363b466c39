"""Account arithmetic: floating profit, margin, equity (semantics §9.3).

Figures are computed per symbol from four sums over that symbol's positions (buy volume, buy
volume x open price, the same for sells), refreshed only when the ledger reports a change. So an
account figure costs O(symbols with positions), never a scan of every position, which keeps the
per-tick stop-out check cheap with thousands of positions.

Hedged margin: both legs pay full margin, unless the symbol has ``margin_hedged > 0``; then the
hedged volume (min of both sides) is charged once, with ``margin_hedged`` in place of the
contract size (a simplification of the terminal help's rules). Swaps stay 0.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from mt5gate.records import Tick
from mt5gate.sim.broker.ledger import Ledger
from mt5gate.sim.broker.money import Pricer, raw_profit
from mt5gate.sim.symbols import SymbolSpec

__all__ = ["Books", "Figures", "Quotes", "Sums"]


class Quotes(Protocol):
    """The part of the market the arithmetic reads."""

    def spec(self, symbol: str) -> SymbolSpec | None: ...

    def last_tick(self, symbol: str) -> Tick | None: ...


@dataclass(frozen=True, slots=True)
class Sums:
    """Per-symbol position sums: volumes and volume-weighted open prices."""

    buy: float = 0.0
    buy_at: float = 0.0
    sell: float = 0.0
    sell_at: float = 0.0


@dataclass(frozen=True, slots=True)
class Figures:
    """balance, credit, floating profit (swaps included) and margin; the rest derives."""

    balance: float
    credit: float
    profit: float
    margin: float

    @property
    def equity(self) -> float:
        """balance + credit + floating profit."""
        return self.balance + self.credit + self.profit

    @property
    def margin_free(self) -> float:
        """equity - margin."""
        return self.equity - self.margin

    @property
    def margin_level(self) -> float:
        """equity / margin x 100, 0 without margin."""
        return self.equity / self.margin * 100.0 if self.margin else 0.0


class Books:
    """Floating profit and margin of one account's positions."""

    def __init__(self, ledger: Ledger, pricer: Pricer, quotes: Quotes, hedging: bool) -> None:
        self.ledger = ledger
        self.pricer = pricer
        self.quotes = quotes
        self.hedging = hedging
        self._sums: dict[str, Sums] = {}

    def sums(self, symbol: str) -> Sums:
        """Current sums of ``symbol``, refreshed if its positions changed."""
        if symbol in self.ledger.changed or symbol not in self._sums:
            self.ledger.changed.discard(symbol)
            self._sums[symbol] = self._recompute(symbol)
        return self._sums[symbol]

    def _recompute(self, symbol: str) -> Sums:
        buy = buy_at = sell = sell_at = 0.0
        for p in self.ledger.symbol_positions(symbol):
            if p.is_buy:
                buy, buy_at = buy + p.volume, buy_at + p.volume * p.price_open
            else:
                sell, sell_at = sell + p.volume, sell_at + p.volume * p.price_open
        return Sums(buy, buy_at, sell, sell_at)

    def quote(self, symbol: str) -> tuple[float, float]:
        """(bid, ask) now, zeros without a tick."""
        tick = self.quotes.last_tick(symbol)
        return (tick.bid, tick.ask) if tick is not None else (0.0, 0.0)

    def symbol_profit(self, symbol: str) -> float:
        """Floating profit of ``symbol``'s positions in the account currency."""
        spec, s = self.quotes.spec(symbol), self.sums(symbol)
        bid, ask = self.quote(symbol)
        if spec is None or not bid:
            return 0.0
        longs = raw_profit(spec, True, 1.0, s.buy_at, bid * s.buy) if s.buy else 0.0
        shorts = raw_profit(spec, False, 1.0, s.sell_at, ask * s.sell) if s.sell else 0.0
        return self.pricer.to_account(spec, longs, bid) + self.pricer.to_account(spec, shorts, ask)

    def symbol_margin(
        self, symbol: str, buy: float | None = None, sell: float | None = None
    ) -> float:
        """Margin of ``symbol``; ``buy``/``sell`` override the position volumes (what-if)."""
        spec, s = self.quotes.spec(symbol), self.sums(symbol)
        buy = s.buy if buy is None else buy
        sell = s.sell if sell is None else sell
        if spec is None:
            return 0.0
        bid, ask = self.quote(symbol)
        hedged = min(buy, sell) if self.hedging and spec.margin_hedged > 0 else 0.0
        total = self.pricer.margin(spec, buy - hedged, ask) + self.pricer.margin(
            spec, sell - hedged, bid
        )
        if hedged:
            factor = spec.margin_hedged / spec.trade_contract_size
            total += self.pricer.margin(spec, hedged, ask) * factor
        return total

    def figures(self, balance: float, credit: float) -> Figures:
        """The account figures now."""
        symbols = self.ledger.position_symbols()
        profit = sum((self.symbol_profit(s) for s in symbols), 0.0)
        margin = sum((self.symbol_margin(s) for s in symbols), 0.0)
        return Figures(balance, credit, profit, margin)

    def margin_with(self, symbol: str, buy: float, sell: float) -> float:
        """Total account margin if ``symbol``'s volumes were ``buy`` and ``sell``."""
        symbols = [s for s in self.ledger.position_symbols() if s != symbol]
        others = sum((self.symbol_margin(s) for s in symbols), 0.0)
        return others + self.symbol_margin(symbol, buy, sell)
