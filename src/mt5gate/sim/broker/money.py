"""Margin and profit by ``trade_calc_mode`` (semantics §9.1), in the account currency (§9.2).

Conversion to the account currency:

* same currency: nothing to do;
* margin in the base currency of a symbol quoted in the account currency (EURUSD margin on a
  USD account): multiply by the trade's own price, which is what the docs' 109.91 USD shows;
* profit in the quote currency of a symbol based on the account currency (USDJPY profit on a
  USD account): divide by the trade's close price (the docs' 276.54 / 278.09 USD);
* anything else goes through ``market.convert``.

``margin_rate`` is 1.0 (the Python API does not expose it). ``trade_tick_value`` is taken as
``tick_size * contract_size`` in the profit currency, so FUTURES/CFDINDEX follow the table with
that value. A ``margin_initial > 0`` replaces the formula (``lots * margin_initial``), as the
terminal help says (UNSURE).
"""

from __future__ import annotations

from typing import Protocol

from mt5gate.constants import SymbolCalcMode
from mt5gate.sim.symbols import SymbolSpec

__all__ = ["Converter", "Pricer"]


class Converter(Protocol):
    """The part of the market that converts money between currencies."""

    def convert(self, amount: float, from_ccy: str, to_ccy: str) -> float: ...


def raw_margin(spec: SymbolSpec, volume: float, price: float, leverage: int) -> float:
    """Margin in the symbol's margin currency for ``volume`` lots at ``price``."""
    if spec.margin_initial > 0:
        return volume * spec.margin_initial
    mode = spec.trade_calc_mode
    size = volume * spec.trade_contract_size
    if mode == SymbolCalcMode.FOREX:
        return size / leverage
    if mode == SymbolCalcMode.FOREX_NO_LEVERAGE:
        return size
    if mode == SymbolCalcMode.CFDINDEX:
        return size * price * spec.trade_contract_size
    if mode == SymbolCalcMode.CFDLEVERAGE:
        return size * price / leverage
    if mode in (SymbolCalcMode.FUTURES, SymbolCalcMode.EXCH_FUTURES):
        return volume * spec.margin_maintenance
    return size * price  # CFD, EXCH_STOCKS and the rest: no leverage, at the price


_PRICED = frozenset(
    {
        SymbolCalcMode.CFD,
        SymbolCalcMode.CFDINDEX,
        SymbolCalcMode.CFDLEVERAGE,
        SymbolCalcMode.EXCH_STOCKS,
    }
)


def margin_currency(spec: SymbolSpec) -> str:
    """Currency of :func:`raw_margin`: formulas that multiply by the price yield the profit
    currency (the price is quoted in it), the others the margin currency."""
    if spec.margin_initial <= 0 and spec.trade_calc_mode in _PRICED:
        return spec.currency_profit
    return spec.currency_margin


def raw_profit(spec: SymbolSpec, is_buy: bool, volume: float, open_: float, close: float) -> float:
    """Profit in the symbol's profit currency (every mode reduces to price move x size)."""
    move = close - open_ if is_buy else open_ - close
    return move * spec.trade_contract_size * volume


class Pricer:
    """Margin and profit of trades, converted to one account's currency."""

    __slots__ = ("currency", "leverage", "market")

    def __init__(self, market: Converter, currency: str, leverage: int) -> None:
        self.market = market
        self.currency = currency
        self.leverage = leverage

    def margin(self, spec: SymbolSpec, volume: float, price: float) -> float:
        """Margin of ``volume`` lots at ``price``, in the account currency."""
        amount = raw_margin(spec, volume, price, self.leverage)
        ccy = margin_currency(spec)
        if ccy == self.currency or amount == 0.0:
            return amount
        if ccy == spec.currency_base and spec.currency_profit == self.currency:
            return amount * price
        return self.market.convert(amount, ccy, self.currency)

    def to_account(self, spec: SymbolSpec, amount: float, close: float) -> float:
        """A profit-currency amount in the account currency (``close``: the trade's close)."""
        ccy = spec.currency_profit
        if ccy == self.currency or amount == 0.0:
            return amount
        if spec.currency_base == self.currency and close > 0:
            return amount / close
        return self.market.convert(amount, ccy, self.currency)

    def profit(
        self, spec: SymbolSpec, is_buy: bool, volume: float, open_: float, close: float
    ) -> float:
        """Profit of closing ``volume`` lots opened at ``open_`` at ``close``, account currency."""
        return self.to_account(spec, raw_profit(spec, is_buy, volume, open_, close), close)
