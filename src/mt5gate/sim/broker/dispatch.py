"""What each validated TRADE_ACTION does, as a table from action to handler (policy as data).

A handler returns an :class:`Outcome`: the tickets, volume and price the OrderSendResult
reports. ``result.order`` of a hedging market deal is the order ticket, which is also the new
position's ticket.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from mt5gate.constants import OrderFilling, OrderReason, OrderState, OrderType, TradeAction
from mt5gate.sim.broker.context import STOP_LIMIT_TYPES, Context
from mt5gate.sim.broker.execution import Engine, Fill
from mt5gate.sim.broker.expiry import expiry_ms
from mt5gate.sim.broker.model import Order

__all__ = ["HANDLERS", "Outcome"]


@dataclass(frozen=True, slots=True)
class Outcome:
    """deal, order, volume and price of a successful request."""

    deal: int = 0
    order: int = 0
    volume: float = 0.0
    price: float = 0.0


def _new_order(engine: Engine, ctx: Context, price: float) -> Order:
    req = ctx.req
    order_type = int(req.type)
    closes = ctx.action == TradeAction.DEAL and bool(req.position)
    stoplimit = float(req.stoplimit) if order_type in STOP_LIMIT_TYPES else 0.0
    return Order(
        engine.tickets.next(), ctx.now_ms, order_type, int(req.type_time), int(req.type_filling),
        int(req.magic), OrderReason.EXPERT, float(req.volume), float(req.volume), price,
        0.0 if closes else float(req.sl), 0.0 if closes else float(req.tp), stoplimit,
        ctx.symbol, str(req.comment),
    )  # fmt: skip


def do_deal(engine: Engine, ctx: Context) -> Outcome:
    """A market deal at the current ask (buy) / bid (sell)."""
    price = ctx.market_price
    order = _new_order(engine, ctx, price)
    order.type_time = 0
    deal = engine.execute(
        Fill(order, order.volume_initial, price, ctx.now_ms, int(ctx.req.position))
    )
    return Outcome(deal, order.ticket, order.volume_initial, price)


def do_pending(engine: Engine, ctx: Context) -> Outcome:
    """Place a pending order."""
    order = _new_order(engine, ctx, float(ctx.req.price))
    order.expiration_msc = expiry_ms(order.type_time, int(ctx.req.expiration), ctx.now_ms)
    order.time_expiration = order.expiration_msc // 1000
    engine.place(order)
    return Outcome(0, order.ticket, order.volume_initial, order.price_open)


def do_sltp(engine: Engine, ctx: Context) -> Outcome:
    """Replace both levels of a position."""
    assert ctx.position is not None
    engine.set_levels(ctx.position, float(ctx.req.sl), float(ctx.req.tp), ctx.now_ms)
    return Outcome()


def do_modify(engine: Engine, ctx: Context) -> Outcome:
    """Change a pending order's price, levels and lifetime."""
    order, req = ctx.order, ctx.req
    assert order is not None
    order.price_open, order.sl, order.tp = float(req.price), float(req.sl), float(req.tp)
    if order.type in STOP_LIMIT_TYPES:
        order.price_stoplimit = float(req.stoplimit)
    order.type_time = int(req.type_time)
    order.expiration_msc = expiry_ms(order.type_time, int(req.expiration), ctx.now_ms)
    order.time_expiration = order.expiration_msc // 1000
    engine.place(order)
    return Outcome(0, order.ticket, order.volume_current, order.price_open)


def do_remove(engine: Engine, ctx: Context) -> Outcome:
    """Cancel a pending order (history state CANCELED)."""
    order = ctx.order
    assert order is not None
    bid, ask = ctx.bid_ask
    engine.finish(order, OrderState.CANCELED, ctx.now_ms, ask if order.is_buy else bid)
    return Outcome(0, order.ticket, order.volume_current, order.price_open)


def do_close_by(engine: Engine, ctx: Context) -> Outcome:
    """Close a position by an opposite one."""
    first, second = ctx.position, ctx.position_by
    assert first is not None
    assert second is not None
    volume = min(first.volume, second.volume)
    order = Order(
        engine.tickets.next(), ctx.now_ms, OrderType.CLOSE_BY, 0, OrderFilling.FOK,
        int(ctx.req.magic), OrderReason.EXPERT, volume, volume, second.price_open, 0.0, 0.0,
        0.0, first.symbol, str(ctx.req.comment),
    )  # fmt: skip
    ticket = engine.close_by(order, first, second, ctx.now_ms)
    deals = engine.ledger.deals_of("order", ticket, ctx.now_ms)
    return Outcome(deals[0].ticket if deals else 0, ticket, volume, second.price_open)


Handler = Callable[[Engine, Context], Outcome]

#: The handler of each trade action.
HANDLERS: dict[int, Handler] = {
    TradeAction.DEAL: do_deal,
    TradeAction.PENDING: do_pending,
    TradeAction.SLTP: do_sltp,
    TradeAction.MODIFY: do_modify,
    TradeAction.REMOVE: do_remove,
    TradeAction.CLOSE_BY: do_close_by,
}
