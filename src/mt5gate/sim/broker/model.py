"""The broker's live objects: open positions and active pending orders (mutable), and helpers
that freeze them into the API's records.

Deals and history orders never change once written, so they are stored directly as
:class:`~mt5gate.records.TradeDeal` / :class:`~mt5gate.records.TradeOrder` records.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from mt5gate.constants import OrderState, OrderType, PositionType
from mt5gate.records import TradeOrder, TradePosition

__all__ = ["BUY_TYPES", "Order", "Position", "is_buy"]

#: Order types that buy (market, limit, stop, stop-limit).
BUY_TYPES = frozenset(
    {OrderType.BUY, OrderType.BUY_LIMIT, OrderType.BUY_STOP, OrderType.BUY_STOP_LIMIT}
)


def is_buy(order_type: int) -> bool:
    """Whether an order or position type is on the buy side."""
    return order_type in BUY_TYPES


@dataclass(slots=True)
class Position:
    """An open position; ``type`` is POSITION_TYPE_BUY (0) or SELL (1)."""

    ticket: int
    time_msc: int
    time_update_msc: int
    type: int
    magic: int
    identifier: int
    reason: int
    volume: float
    price_open: float
    sl: float
    tp: float
    symbol: str
    comment: str
    swap: float = 0.0

    @property
    def is_buy(self) -> bool:
        """Long position."""
        return self.type == PositionType.BUY

    def record(self, price_current: float, profit: float) -> TradePosition:
        """The position as positions_get() shows it, priced at ``price_current``."""
        return TradePosition(
            (
                self.ticket, self.time_msc // 1000, self.time_msc,
                self.time_update_msc // 1000, self.time_update_msc, int(self.type), self.magic,
                self.identifier, int(self.reason), self.volume, self.price_open, self.sl, self.tp,
                price_current, self.swap, profit, self.symbol, self.comment, "",
            )
        )  # fmt: skip

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable fields."""
        return asdict(self)


@dataclass(slots=True)
class Order:
    """An order: active pending, or the data a history record is frozen from."""

    ticket: int
    time_setup_msc: int
    type: int
    type_time: int
    type_filling: int
    magic: int
    reason: int
    volume_initial: float
    volume_current: float
    price_open: float
    sl: float
    tp: float
    price_stoplimit: float
    symbol: str
    comment: str
    expiration_msc: int = 0  # 0 = no expiry; exact instant the order dies
    time_expiration: int = 0  # as reported (seconds)
    position_id: int = 0
    position_by_id: int = 0

    @property
    def is_buy(self) -> bool:
        """Buy-side order."""
        return is_buy(self.type)

    def record(self, state: int, price_current: float, time_done_msc: int = 0) -> TradeOrder:
        """The order as orders_get() / history_orders_get() shows it."""
        return TradeOrder(
            (
                self.ticket, self.time_setup_msc // 1000, self.time_setup_msc,
                time_done_msc // 1000, time_done_msc, self.time_expiration, int(self.type),
                int(self.type_time), int(self.type_filling), int(state), self.magic,
                self.position_id, self.position_by_id, int(self.reason), self.volume_initial,
                self.volume_current, self.price_open, self.sl, self.tp, price_current,
                self.price_stoplimit, self.symbol, self.comment, "",
            )
        )  # fmt: skip

    def placed(self, price_current: float) -> TradeOrder:
        """Active pending order record (state PLACED)."""
        return self.record(OrderState.PLACED, price_current)

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable fields."""
        return asdict(self)
