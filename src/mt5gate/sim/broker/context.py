"""What the check pipeline knows about one request: the request itself, the account, the
symbol and the objects it refers to, plus the facts derived from them (is it opening a
position, which side, against which price).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from mt5gate.constants import AccountMarginMode, OrderType, TradeAction
from mt5gate.records import Tick, TradeRequest
from mt5gate.sim.broker.account import Books
from mt5gate.sim.broker.ledger import Ledger
from mt5gate.sim.broker.model import Order, Position, is_buy
from mt5gate.sim.config import AccountConfig, BrokerOptions, TerminalFlags
from mt5gate.sim.symbols import SymbolSpec

__all__ = ["Context", "MarketView", "PENDING_TYPES"]

PENDING_TYPES = frozenset(range(OrderType.BUY_LIMIT, OrderType.SELL_STOP_LIMIT + 1))
STOP_LIMIT_TYPES = frozenset({OrderType.BUY_STOP_LIMIT, OrderType.SELL_STOP_LIMIT})


class MarketView(Protocol):
    """The part of the market the checks read."""

    def spec(self, symbol: str) -> SymbolSpec | None: ...

    def last_tick(self, symbol: str) -> Tick | None: ...

    def is_open(self, symbol: str, server_ms: int | None = None) -> bool: ...


@dataclass(slots=True)
class Context:
    """One request under validation."""

    req: TradeRequest
    sending: bool
    account: AccountConfig
    flags: TerminalFlags
    options: BrokerOptions
    market: MarketView
    ledger: Ledger
    books: Books
    balance: float
    now_ms: int
    spec: SymbolSpec | None = None
    tick: Tick | None = None
    position: Position | None = None
    position_by: Position | None = None
    order: Order | None = None
    margin_after: float | None = field(default=None)

    @property
    def hedging(self) -> bool:
        """Retail hedging account (otherwise netting/exchange)."""
        return self.account.margin_mode == AccountMarginMode.RETAIL_HEDGING

    @property
    def action(self) -> int:
        """The request's TRADE_ACTION."""
        return int(self.req.action)

    @property
    def symbol(self) -> str:
        """Symbol of the request or, when empty, of the object it refers to."""
        if self.req.symbol:
            return str(self.req.symbol)
        target = self.position or self.order
        return target.symbol if target is not None else ""

    @property
    def buys(self) -> bool:
        """Whether the request (or the order it modifies) is on the buy side."""
        if self.action == TradeAction.MODIFY and self.order is not None:
            return self.order.is_buy
        return is_buy(int(self.req.type))

    @property
    def netted(self) -> Position | None:
        """Netting account: the symbol's position a DEAL offsets (opposite side)."""
        if self.hedging or self.action != TradeAction.DEAL:
            return None
        held = self.ledger.netting_position(self.symbol)
        return held if held is not None and held.is_buy != self.buys else None

    @property
    def closing(self) -> Position | None:
        """The position a DEAL reduces, if it reduces one."""
        if self.action != TradeAction.DEAL:
            return None
        return self.position if self.req.position else self.netted

    @property
    def opening(self) -> bool:
        """Whether the request opens or adds exposure (a pending order counts)."""
        if self.action == TradeAction.PENDING:
            return True
        if self.action != TradeAction.DEAL:
            return False
        closing = self.closing
        if closing is None:
            return not self.req.position
        return not self.req.position and self.req.volume > closing.volume + 1e-12

    @property
    def bid_ask(self) -> tuple[float, float]:
        """Current (bid, ask)."""
        return (self.tick.bid, self.tick.ask) if self.tick is not None else (0.0, 0.0)

    @property
    def market_price(self) -> float:
        """Price a market deal on this side fills at: ask for buys, bid for sells."""
        bid, ask = self.bid_ask
        return ask if self.buys else bid
