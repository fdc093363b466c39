"""Helpers for the broker tests: a real Market and Broker on a virtual clock, request builders."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from mt5gate.constants import AccountMarginMode, OrderFilling, OrderType, TradeAction
from mt5gate.records import TradeRequest
from mt5gate.sim.broker import Broker, TicketSource
from mt5gate.sim.clock import VirtualClock
from mt5gate.sim.config import AccountConfig, BrokerOptions, TerminalFlags
from mt5gate.sim.market import Market, default_catalogue
from mt5gate.sim.symbols import SymbolSpec

FIELDS = TradeRequest.__match_args__
DEFAULTS: dict[str, Any] = dict.fromkeys(FIELDS, 0) | {
    "symbol": "",
    "comment": "",
    "volume": 0.0,
    "price": 0.0,
    "stoplimit": 0.0,
    "sl": 0.0,
    "tp": 0.0,
}


def req(**fields: Any) -> TradeRequest:
    """A TradeRequest with defaults for the missing fields."""
    values = DEFAULTS | fields
    return TradeRequest(tuple(values[name] for name in FIELDS))


def deal(symbol: str, volume: float, buy: bool = True, **fields: Any) -> TradeRequest:
    """A market DEAL request (IOC filling, allowed on every default symbol)."""
    kind = OrderType.BUY if buy else OrderType.SELL
    base = {"type": kind, "type_filling": OrderFilling.IOC}
    return req(action=TradeAction.DEAL, symbol=symbol, volume=volume, **(base | fields))


def pending(symbol: str, kind: int, volume: float, price: float, **fields: Any) -> TradeRequest:
    """A PENDING request with RETURN filling."""
    base = {"type_filling": OrderFilling.RETURN}
    return req(
        action=TradeAction.PENDING,
        symbol=symbol,
        volume=volume,
        type=kind,
        price=price,
        **(base | fields),
    )


def catalogue(**changes: dict[str, Any]) -> tuple[SymbolSpec, ...]:
    """The default catalogue with per-symbol field changes, e.g. EURUSD={'volume_limit': 1}."""
    specs = default_catalogue()
    return tuple(dataclasses.replace(s, **changes.get(s.name, {})) for s in specs)


@dataclass
class World:
    """A broker with its market, clock and terminal flags."""

    broker: Broker
    market: Market
    clock: VirtualClock
    flags: TerminalFlags
    tickets: TicketSource

    def send(self, request: TradeRequest) -> Any:
        return self.broker.order_send(request)

    def tick(self, symbol: str, bid: float, ask: float | None = None) -> None:
        self.clock.advance(ms=1)
        self.market.push_tick(symbol, bid, ask)


def world(
    netting: bool = False,
    specs: tuple[SymbolSpec, ...] | None = None,
    options: BrokerOptions | None = None,
    **account: Any,
) -> World:
    """Build a broker on a fresh market; EURUSD 1.10000/1.10010, USDJPY 150.000/150.010."""
    clock = VirtualClock()
    market = Market(specs or default_catalogue(), clock, history_days=1)
    mode = AccountMarginMode.RETAIL_NETTING if netting else AccountMarginMode.RETAIL_HEDGING
    config = AccountConfig(login=1, password="x", margin_mode=mode, **account)
    flags, tickets = TerminalFlags(), TicketSource()
    broker = Broker(config, market, clock, flags, options or BrokerOptions(), tickets)
    market.push_tick("EURUSD", 1.1, 1.1001)
    market.push_tick("USDJPY", 150.0, 150.01)
    market.push_tick("GBPUSD", 1.25, 1.2501)
    return World(broker, market, clock, flags, tickets)
