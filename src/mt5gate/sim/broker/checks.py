"""The request validation pipeline of semantics §7.4 steps 3 to 15, as an ordered list of
check functions (policy as data): the first that raises :class:`RejectError` decides the answer.

Choices where the docs are UNSURE:

* pending orders accept ORDER_FILLING_RETURN always, and FOK / IOC / BOC only when the symbol's
  SYMBOL_FILLING bit is set (the Book says RETURN only; real servers are more lenient);
* prices must sit at least one point (or ``trade_stops_level`` points, if larger) on the right
  side of their reference; a pending price on the wrong side gives 10015;
* the free-margin test (10019) applies to deals and to pending orders (as if filled), and only
  when the request increases the margin;
* ``order_check`` skips the market-hours test (it answers 'Done' on a closed market).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NoReturn

from mt5gate.constants import (
    OrderFilling,
    OrderTime,
    OrderType,
    SymbolOrderMode,
    SymbolTradeExecution,
    SymbolTradeMode,
    TradeAction,
    TradeRetcode,
)
from mt5gate.sim.broker.context import PENDING_TYPES, STOP_LIMIT_TYPES, Context
from mt5gate.sim.broker.expiry import allowed_bit, expiry_ms
from mt5gate.sim.broker.model import Position
from mt5gate.sim.broker.retcodes import RejectError

__all__ = ["PIPELINE", "Check", "RequoteError", "run_checks"]

Check = Callable[[Context], None]
R = TradeRetcode
A = TradeAction
TRADING_ACTIONS = frozenset({A.DEAL, A.PENDING})


class RequoteError(RejectError):
    """Price moved beyond the deviation: the answer carries fresh quotes."""


def _fail(retcode: TradeRetcode) -> NoReturn:
    raise RejectError(retcode)


# step 3 --------------------------------------------------------------------------------------
def check_permissions(ctx: Context) -> None:
    """Connection, Algo Trading button, broker's EA permission, investor login."""
    if not ctx.flags.connected:
        _fail(R.CONNECTION)
    if not ctx.flags.trade_allowed:
        _fail(R.CLIENT_DISABLES_AT)
    if not ctx.account.trade_expert:
        _fail(R.SERVER_DISABLES_AT)
    if not ctx.account.trade_allowed:
        _fail(R.TRADE_DISABLED)


def resolve_targets(ctx: Context) -> None:
    """Look up the position / order the request names (missing ones fail at step 15)."""
    if ctx.action not in (A.DEAL, A.PENDING, A.SLTP, A.MODIFY, A.REMOVE, A.CLOSE_BY):
        _fail(R.INVALID)
    ctx.position = ctx.ledger.positions.get(int(ctx.req.position))
    if ctx.action == A.SLTP and not ctx.req.position and ctx.req.symbol and not ctx.hedging:
        ctx.position = ctx.ledger.netting_position(str(ctx.req.symbol))
    ctx.position_by = ctx.ledger.positions.get(int(ctx.req.position_by))
    if ctx.action in (A.MODIFY, A.REMOVE):
        ctx.order = ctx.ledger.orders.get(int(ctx.req.order))


# step 4 --------------------------------------------------------------------------------------
def check_symbol(ctx: Context) -> None:
    """Known symbol, trade mode, market hours (order_send only), a quote to trade on."""
    ctx.spec = ctx.market.spec(ctx.symbol) if ctx.symbol else None
    if ctx.spec is None:
        _fail(R.INVALID)
    mode = ctx.spec.trade_mode
    if mode == SymbolTradeMode.DISABLED:
        _fail(R.TRADE_DISABLED)
    if ctx.opening:
        _check_direction(mode, ctx.buys)
    if ctx.sending and not ctx.market.is_open(ctx.symbol, ctx.now_ms):
        _fail(R.MARKET_CLOSED)
    ctx.tick = ctx.market.last_tick(ctx.symbol)
    if ctx.tick is None or ctx.tick.bid <= 0:
        _fail(R.PRICE_OFF)


def _check_direction(mode: int, buys: bool) -> None:
    if mode == SymbolTradeMode.LONGONLY and not buys:
        _fail(R.LONG_ONLY)
    if mode == SymbolTradeMode.SHORTONLY and buys:
        _fail(R.SHORT_ONLY)
    if mode == SymbolTradeMode.CLOSEONLY:
        _fail(R.CLOSE_ONLY)


# step 5 --------------------------------------------------------------------------------------
_TYPE_BITS = {
    OrderType.BUY: SymbolOrderMode.MARKET,
    OrderType.SELL: SymbolOrderMode.MARKET,
    OrderType.BUY_LIMIT: SymbolOrderMode.LIMIT,
    OrderType.SELL_LIMIT: SymbolOrderMode.LIMIT,
    OrderType.BUY_STOP: SymbolOrderMode.STOP,
    OrderType.SELL_STOP: SymbolOrderMode.STOP,
    OrderType.BUY_STOP_LIMIT: SymbolOrderMode.STOP_LIMIT,
    OrderType.SELL_STOP_LIMIT: SymbolOrderMode.STOP_LIMIT,
}


def check_order_mode(ctx: Context) -> None:
    """The order type, SL, TP and close-by must be allowed by ``order_mode``."""
    assert ctx.spec is not None
    allowed, req = ctx.spec.order_mode, ctx.req
    needed = 0
    if ctx.action == A.DEAL:
        needed = _type_bit(req.type, (OrderType.BUY, OrderType.SELL))
    elif ctx.action == A.PENDING:
        needed = _type_bit(req.type, PENDING_TYPES)
    elif ctx.action == A.CLOSE_BY:
        needed = SymbolOrderMode.CLOSEBY
    if ctx.action != A.REMOVE:
        needed |= SymbolOrderMode.SL if req.sl else 0
        needed |= SymbolOrderMode.TP if req.tp else 0
    if needed & ~allowed:
        _fail(R.INVALID_ORDER)


def _type_bit(order_type: int, valid: frozenset[int] | tuple[int, ...]) -> int:
    if order_type not in valid:
        _fail(R.INVALID_ORDER)
    return int(_TYPE_BITS[OrderType(order_type)])


# step 6 --------------------------------------------------------------------------------------
def on_step(volume: float, step: float) -> bool:
    """Whether ``volume`` is a whole number of ``step`` (relative tolerance 1e-8)."""
    steps = volume / step
    return abs(steps - round(steps)) <= 1e-8 * max(1.0, steps)


def check_volume(ctx: Context) -> None:
    """volume_min <= v <= volume_max on the step (10014); volume_limit (10034)."""
    if ctx.action not in TRADING_ACTIONS:
        return
    assert ctx.spec is not None
    spec, volume = ctx.spec, float(ctx.req.volume)
    low, high = spec.volume_min * (1 - 1e-8), spec.volume_max * (1 + 1e-8)
    if not low <= volume <= high or not on_step(volume, spec.volume_step):
        _fail(R.INVALID_VOLUME)
    limit = spec.volume_limit * (1 + 1e-8)
    if spec.volume_limit > 0 and ctx.opening and _side_volume(ctx) + volume > limit:
        _fail(R.LIMIT_VOLUME)


def _side_volume(ctx: Context) -> float:
    held = sum(p.volume for p in ctx.ledger.symbol_positions(ctx.symbol) if p.is_buy == ctx.buys)
    pending = sum(
        o.volume_current
        for o in ctx.ledger.orders.values()
        if o.symbol == ctx.symbol and o.is_buy == ctx.buys
    )
    return held + pending


# step 7 --------------------------------------------------------------------------------------
_FILLING_BITS = {OrderFilling.FOK: 1, OrderFilling.IOC: 2, OrderFilling.BOC: 4}


def check_filling(ctx: Context) -> None:
    """ORDER_FILLING value against the execution mode and SYMBOL_FILLING bits (§7.7)."""
    if ctx.action not in TRADING_ACTIONS:
        return
    assert ctx.spec is not None
    filling, bits = int(ctx.req.type_filling), ctx.spec.filling_mode
    if filling not in (0, 1, 2, 3):
        _fail(R.INVALID_FILL)
    if not _filling_ok(ctx, filling, bits):
        _fail(R.INVALID_FILL)


def _filling_ok(ctx: Context, filling: int, bits: int) -> bool:
    assert ctx.spec is not None
    flagged = bool(bits & _FILLING_BITS.get(OrderFilling(filling), 0))
    if ctx.action == A.PENDING:
        return filling == OrderFilling.RETURN or flagged
    mode = ctx.spec.trade_exemode
    if mode in (SymbolTradeExecution.REQUEST, SymbolTradeExecution.INSTANT):
        return filling != OrderFilling.BOC
    if filling == OrderFilling.RETURN:
        return mode == SymbolTradeExecution.EXCHANGE
    return filling != OrderFilling.BOC and flagged


# step 8 --------------------------------------------------------------------------------------
def check_deal_price(ctx: Context) -> None:
    """REQUEST/INSTANT execution: a price within ``deviation`` points, else requote."""
    assert ctx.spec is not None
    if ctx.action != A.DEAL or ctx.spec.trade_exemode not in (
        SymbolTradeExecution.REQUEST,
        SymbolTradeExecution.INSTANT,
    ):
        return
    if ctx.req.price <= 0:
        _fail(R.INVALID_PRICE)
    tolerance = ctx.req.deviation * ctx.spec.point + ctx.spec.point * 1e-3
    if abs(ctx.req.price - ctx.market_price) > tolerance:
        raise RequoteError(ctx.options.requote_retcode)


# step 9 --------------------------------------------------------------------------------------
def min_distance(ctx: Context) -> float:
    """Smallest allowed distance: ``trade_stops_level`` points, at least one point."""
    assert ctx.spec is not None
    return max(ctx.spec.trade_stops_level, 1) * ctx.spec.point - ctx.spec.point * 1e-3


def check_pending_price(ctx: Context) -> None:
    """Pending price on the right side of the market, far enough; stop-limit limit side."""
    order_type = _pending_type(ctx)
    if order_type is None:
        return
    price, limit = float(ctx.req.price), float(ctx.req.stoplimit)
    bid, ask = ctx.bid_ask
    gap = min_distance(ctx)
    if price <= 0 or not _placed_ok(order_type, price, bid, ask, gap):
        _fail(R.INVALID_PRICE)
    if order_type in STOP_LIMIT_TYPES and not _limit_ok(order_type, price, limit, gap):
        _fail(R.INVALID_PRICE)


def _pending_type(ctx: Context) -> int | None:
    if ctx.action == A.PENDING:
        return int(ctx.req.type)
    if ctx.action == A.MODIFY and ctx.order is not None:
        return ctx.order.type
    return None


def _placed_ok(order_type: int, price: float, bid: float, ask: float, gap: float) -> bool:
    distance = {
        OrderType.BUY_LIMIT: ask - price,
        OrderType.SELL_LIMIT: price - bid,
        OrderType.BUY_STOP: price - ask,
        OrderType.SELL_STOP: bid - price,
        OrderType.BUY_STOP_LIMIT: price - ask,
        OrderType.SELL_STOP_LIMIT: bid - price,
    }[OrderType(order_type)]
    return distance >= gap


def _limit_ok(order_type: int, price: float, limit: float, gap: float) -> bool:
    if limit <= 0:
        return False
    return price - limit >= gap if order_type == OrderType.BUY_STOP_LIMIT else limit - price >= gap


# step 10 -------------------------------------------------------------------------------------
def check_stops(ctx: Context) -> None:
    """SL below / TP above the reference for buys (mirror for sells), ``stops_level`` away."""
    reference = _stops_reference(ctx)
    if reference is None:
        return
    buys, ref = reference
    sl, tp, gap = float(ctx.req.sl), float(ctx.req.tp), min_distance(ctx)
    sign = 1.0 if buys else -1.0
    if sl and sign * (ref - sl) < gap:
        _fail(R.INVALID_STOPS)
    if tp and sign * (tp - ref) < gap:
        _fail(R.INVALID_STOPS)


def _stops_reference(ctx: Context) -> tuple[bool, float] | None:
    """(buy side?, price the levels are measured from), None when no levels apply."""
    bid, ask = ctx.bid_ask
    if ctx.action == A.DEAL and ctx.opening:
        return (ctx.buys, bid if ctx.buys else ask)
    if ctx.action == A.SLTP and ctx.position is not None:
        buys = ctx.position.is_buy
        return (buys, bid if buys else ask)
    order_type = _pending_type(ctx)
    if order_type is None:
        return None
    stop_limit = order_type in STOP_LIMIT_TYPES
    return (ctx.buys, float(ctx.req.stoplimit if stop_limit else ctx.req.price))


# step 11 -------------------------------------------------------------------------------------
def check_freeze(ctx: Context) -> None:
    """No change to a position or order within ``trade_freeze_level`` of its trigger."""
    assert ctx.spec is not None
    if ctx.spec.trade_freeze_level <= 0:
        return
    freeze = ctx.spec.trade_freeze_level * ctx.spec.point
    targets = [ctx.position, ctx.position_by] if ctx.action in (A.SLTP, A.CLOSE_BY) else []
    if ctx.action == A.DEAL and ctx.req.position:
        targets = [ctx.position]
    if any(p is not None and _position_frozen(ctx, p, freeze) for p in targets):
        _fail(R.FROZEN)
    if ctx.action in (A.MODIFY, A.REMOVE) and ctx.order is not None:
        bid, ask = ctx.bid_ask
        current = ask if ctx.order.is_buy else bid
        if abs(current - ctx.order.price_open) <= freeze:
            _fail(R.FROZEN)


def _position_frozen(ctx: Context, position: Position, freeze: float) -> bool:
    bid, ask = ctx.bid_ask
    price, sign = (bid, 1.0) if position.is_buy else (ask, -1.0)
    near_tp = bool(position.tp) and sign * (position.tp - price) <= freeze
    near_sl = bool(position.sl) and sign * (price - position.sl) <= freeze
    return near_tp or near_sl


# step 12 -------------------------------------------------------------------------------------
def check_expiration(ctx: Context) -> None:
    """type_time allowed by ``expiration_mode``; a SPECIFIED(_DAY) expiry in the future."""
    if _pending_type(ctx) is None:
        return
    assert ctx.spec is not None
    type_time = int(ctx.req.type_time)
    bit = allowed_bit(type_time)
    if not bit or not ctx.spec.expiration_mode & bit:
        _fail(R.INVALID_EXPIRATION)
    dated = type_time in (OrderTime.SPECIFIED, OrderTime.SPECIFIED_DAY)
    if dated and expiry_ms(type_time, int(ctx.req.expiration), ctx.now_ms) <= ctx.now_ms:
        _fail(R.INVALID_EXPIRATION)


# step 13 -------------------------------------------------------------------------------------
def check_money(ctx: Context) -> None:
    """Free margin after the operation must not go below 0 when margin grows (10019)."""
    figures = ctx.books.figures(ctx.balance, ctx.account.credit)
    ctx.margin_after = figures.margin
    if ctx.action not in TRADING_ACTIONS:
        return
    buy, sell = _volumes_after(ctx)
    ctx.margin_after = ctx.books.margin_with(ctx.symbol, buy, sell)
    if ctx.margin_after > figures.margin + 1e-9 and figures.equity - ctx.margin_after < 0:
        _fail(R.NO_MONEY)


def _volumes_after(ctx: Context) -> tuple[float, float]:
    """The symbol's buy and sell volumes if the request were executed now."""
    sums = ctx.books.sums(ctx.symbol)
    buy, sell, volume = sums.buy, sums.sell, float(ctx.req.volume)
    closing = ctx.closing
    if closing is not None:
        held = closing.volume
        reduced = min(volume, held)
        buy, sell = (buy - reduced, sell) if closing.is_buy else (buy, sell - reduced)
        volume -= reduced
        if ctx.req.position:
            volume = 0.0
    if ctx.buys:
        return (buy + volume, sell)
    return (buy, sell + volume)


# step 14 -------------------------------------------------------------------------------------
def check_limits(ctx: Context) -> None:
    """Pending-order limit (10033), position limit (10040), FIFO closing (10045)."""
    account = ctx.account
    if ctx.action == A.PENDING and 0 < account.limit_orders <= len(ctx.ledger.orders):
        _fail(R.LIMIT_ORDERS)
    full = 0 < account.max_positions <= len(ctx.ledger.positions)
    if ctx.action == A.DEAL and full and _opens_new_position(ctx):
        _fail(R.LIMIT_POSITIONS)
    if account.fifo_close and ctx.action == A.DEAL and _closes_out_of_order(ctx):
        _fail(R.FIFO_CLOSE)


def _opens_new_position(ctx: Context) -> bool:
    if ctx.hedging:
        return not ctx.req.position
    return ctx.ledger.netting_position(ctx.symbol) is None


def _closes_out_of_order(ctx: Context) -> bool:
    target = ctx.position
    if target is None:
        return False
    return any(_older(p, target) for p in ctx.ledger.symbol_positions(ctx.symbol))


def _older(other: Position, position: Position) -> bool:
    same_side = other.is_buy == position.is_buy
    return same_side and (other.time_msc, other.ticket) < (position.time_msc, position.ticket)


# step 15 -------------------------------------------------------------------------------------
def check_references(ctx: Context) -> None:
    """The named position / order exists, fits the request, and a change changes something."""
    action = ctx.action
    if action == A.DEAL and ctx.req.position:
        _check_close_target(ctx)
    elif action == A.SLTP:
        _check_sltp_target(ctx)
    elif action in (A.MODIFY, A.REMOVE):
        _check_order_target(ctx)
    elif action == A.CLOSE_BY:
        _check_close_by(ctx)


def _check_close_target(ctx: Context) -> None:
    position = ctx.position
    if position is None or position.symbol != ctx.symbol or position.is_buy == ctx.buys:
        _fail(R.INVALID)
    if ctx.req.volume > position.volume * (1 + 1e-8):
        _fail(R.INVALID_CLOSE_VOLUME)


def _check_sltp_target(ctx: Context) -> None:
    position = ctx.position
    if position is None or (ctx.req.symbol and position.symbol != ctx.req.symbol):
        _fail(R.INVALID)
    if position.sl == ctx.req.sl and position.tp == ctx.req.tp:
        _fail(R.NO_CHANGES)


def _check_order_target(ctx: Context) -> None:
    order = ctx.order
    if order is None or (ctx.req.symbol and order.symbol != ctx.req.symbol):
        _fail(R.INVALID)
    if ctx.action == A.MODIFY and _unchanged(ctx):
        _fail(R.NO_CHANGES)


def _unchanged(ctx: Context) -> bool:
    order, req = ctx.order, ctx.req
    assert order is not None
    limit_same = order.type not in STOP_LIMIT_TYPES or order.price_stoplimit == req.stoplimit
    same_expiry = req.type_time == order.type_time and (
        req.type_time in (OrderTime.GTC, OrderTime.DAY) or req.expiration == order.time_expiration
    )
    levels = (order.price_open, order.sl, order.tp) == (req.price, req.sl, req.tp)
    return levels and limit_same and same_expiry


def _check_close_by(ctx: Context) -> None:
    first, second = ctx.position, ctx.position_by
    if not ctx.hedging or first is None or second is None or first.ticket == second.ticket:
        _fail(R.INVALID)
    if first.symbol != second.symbol or first.is_buy == second.is_buy:
        _fail(R.INVALID)


#: The pipeline, in the order of semantics §7.4.
PIPELINE: tuple[Check, ...] = (
    check_permissions,
    resolve_targets,
    check_symbol,
    check_order_mode,
    check_volume,
    check_filling,
    check_deal_price,
    check_pending_price,
    check_stops,
    check_freeze,
    check_expiration,
    check_money,
    check_limits,
    check_references,
)


def run_checks(ctx: Context, pipeline: tuple[Check, ...] = PIPELINE) -> None:
    """Run every check in order; the first failure raises :class:`RejectError`."""
    for check in pipeline:
        check(ctx)
