"""Pending-order, stop-limit, SL/TP, expiry and stop-out triggers; the trigger index's cost."""

from __future__ import annotations

import numpy as np
import pytest

from mt5gate.constants import DealEntry, DealReason, OrderState, OrderTime, OrderType
from mt5gate.sim.config import BrokerOptions
from mt5gate.sim.market import TICKS_DTYPE

from .broker_world import deal, pending, world


def test_buy_limit_fills_at_the_tick_price() -> None:
    w = world()
    r = w.send(pending("EURUSD", OrderType.BUY_LIMIT, 0.2, 1.0950, magic=5, comment="lim"))
    w.tick("EURUSD", 1.0960, 1.0961)
    assert w.broker.positions() == ()
    w.tick("EURUSD", 1.0939, 1.0940)
    (pos,) = w.broker.positions()
    assert (pos.ticket, pos.price_open, pos.volume, pos.magic, pos.comment) == (
        r.order, 1.0940, 0.2, 5, "lim",
    )  # fmt: skip
    (order,) = w.broker.history_orders_by_ticket(r.order)
    assert (order.state, order.position_id, order.time_done_msc) == (
        OrderState.FILLED, pos.ticket, w.clock.now_ms(),
    )  # fmt: skip
    (d,) = w.broker.history_deals_by_ticket(r.order)
    assert (d.entry, d.reason, d.price, d.time_msc) == (DealEntry.IN, 3, 1.094, w.clock.now_ms())
    assert w.broker.orders() == ()


def test_sell_stop_and_netting_fill() -> None:
    w = world(netting=True)
    w.send(deal("EURUSD", 0.2))
    w.send(pending("EURUSD", OrderType.SELL_STOP, 0.2, 1.0950))
    w.tick("EURUSD", 1.0945, 1.0946)
    assert w.broker.positions() == ()


def test_stop_limit_becomes_limit_then_fills() -> None:
    w = world()
    r = w.send(pending("EURUSD", OrderType.BUY_STOP_LIMIT, 0.1, 1.1050, stoplimit=1.1030))
    w.tick("EURUSD", 1.1052, 1.1053)
    (order,) = w.broker.orders()
    assert (order.ticket, order.type, order.price_open) == (r.order, OrderType.BUY_LIMIT, 1.103)
    w.tick("EURUSD", 1.1028, 1.1029)
    (pos,) = w.broker.positions()
    assert pos.price_open == 1.1029
    sell = w.send(pending("EURUSD", OrderType.SELL_STOP_LIMIT, 0.1, 1.1000, stoplimit=1.1010))
    w.tick("EURUSD", 1.0999, 1.1)
    assert w.broker.orders()[0].type == OrderType.SELL_LIMIT
    w.tick("EURUSD", 1.1011, 1.1012)
    assert w.broker.orders_total() == 0
    assert w.broker.history_orders_by_ticket(sell.order)[0].state == OrderState.FILLED


def test_take_profit_and_stop_loss() -> None:
    w = world(options=BrokerOptions(overwrite_sltp_comment=True))
    long = w.send(deal("EURUSD", 0.1, sl=1.09, tp=1.11))
    short = w.send(deal("EURUSD", 0.1, buy=False, sl=1.1050, tp=1.08))
    w.tick("EURUSD", 1.1049, 1.1050)  # short's SL (ask >= 1.105)
    (d,) = [x for x in w.broker.history_deals_by_position(short.order) if x.entry == 1]
    assert (d.reason, d.price, d.comment) == (DealReason.SL, 1.105, "[sl 1.10500]")
    w.tick("EURUSD", 1.1101, 1.1102)
    (t,) = [x for x in w.broker.history_deals_by_position(long.order) if x.entry == 1]
    assert (t.reason, t.price, t.comment) == (DealReason.TP, 1.1101, "[tp 1.11000]")
    assert t.profit == pytest.approx(round((1.1101 - 1.1001) * 10_000, 2))
    (close_order,) = w.broker.history_orders_by_ticket(t.order)
    assert (close_order.reason, close_order.type) == (5, OrderType.SELL)
    assert w.broker.positions() == ()


def test_stop_loss_of_a_long_keeps_position_comment() -> None:
    w = world()
    a = w.send(deal("EURUSD", 0.1, sl=1.09, comment="mine"))
    w.tick("EURUSD", 1.0899, 1.09)
    (d,) = [x for x in w.broker.history_deals_by_position(a.order) if x.entry == 1]
    assert (d.reason, d.comment) == (DealReason.SL, "mine")


def test_expiration_specified_and_day() -> None:
    w = world()
    now_s = w.clock.now_ms() // 1000
    spec = {"type_time": OrderTime.SPECIFIED, "expiration": now_s + 60}
    a = w.send(pending("EURUSD", OrderType.BUY_LIMIT, 0.1, 1.0, **spec))
    b = w.send(pending("EURUSD", OrderType.BUY_LIMIT, 0.1, 1.0, type_time=OrderTime.DAY))
    c = w.send(
        pending(
            "EURUSD",
            OrderType.BUY_LIMIT,
            0.1,
            1.0,
            type_time=OrderTime.SPECIFIED_DAY,
            expiration=now_s,
        )
    )
    assert w.broker.orders()[0].time_expiration == now_s + 60
    w.clock.advance(61)
    assert [o.ticket for o in w.broker.orders()] == [b.order, c.order]
    (hist,) = w.broker.history_orders_by_ticket(a.order)
    assert (hist.state, hist.time_done) == (OrderState.EXPIRED, now_s + 60)
    w.clock.advance(86_400)
    assert w.broker.orders() == ()


def test_expiry_inside_a_batch_comes_before_a_later_fill() -> None:
    w = world()
    now = w.clock.now_ms()
    spec = {"type_time": OrderTime.SPECIFIED, "expiration": now // 1000 + 2}
    r = w.send(pending("EURUSD", OrderType.BUY_LIMIT, 0.1, 1.09, **spec))
    ticks = np.zeros(2, dtype=TICKS_DTYPE)
    ticks["time_msc"] = [now + 1000, now + 5000]
    ticks["bid"], ticks["ask"] = [1.1, 1.08], [1.1001, 1.0801]
    w.broker.on_ticks("EURUSD", ticks)
    assert w.broker.ledger.positions == {}
    w.clock.advance(6)
    assert w.broker.history_orders_by_ticket(r.order)[0].state == OrderState.EXPIRED
    w.broker.on_ticks("EURUSD", ticks[:0])


def test_stop_out_closes_biggest_loser() -> None:
    w = world(balance=200.0, leverage=1000)
    a = w.send(deal("EURUSD", 0.5))
    b = w.send(deal("EURUSD", 0.5))
    assert a.retcode == b.retcode == 10009
    w.tick("EURUSD", 1.0990, 1.0991)
    assert w.broker.positions_total() == 2
    w.tick("EURUSD", 1.0975, 1.0976)
    info = w.broker.account_info()
    assert w.broker.positions_total() < 2
    so = [d for d in w.broker.all_deals() if d.reason == DealReason.SO]
    assert so
    assert info.margin_level == 0 or info.margin_level > 30


def test_stop_out_money_mode() -> None:
    from mt5gate.constants import AccountStopoutMode

    w = world(
        balance=200.0, leverage=1000, margin_so_mode=AccountStopoutMode.MONEY, margin_so_so=150
    )
    w.send(deal("EURUSD", 0.5))
    w.tick("EURUSD", 1.0990, 1.0991)
    assert w.broker.positions_total() == 0


def test_index_touches_nothing_a_tick_does_not_reach() -> None:
    w = world(balance=10_000_000.0, limit_orders=0)
    for i in range(1000):
        w.send(deal("EURUSD", 0.01, sl=round(1.0 - i * 1e-5, 5), tp=round(1.2 + i * 1e-5, 5)))
        w.send(pending("EURUSD", OrderType.BUY_LIMIT, 0.01, round(1.05 - i * 1e-5, 5)))
    triggers = w.broker.engine.triggers
    assert triggers.size() == 3000
    before = triggers.examined
    w.tick("EURUSD", 1.1002, 1.1003)
    w.tick("EURUSD", 1.0999, 1.1000)
    assert triggers.examined == before
    w.tick("EURUSD", 1.04999, 1.05)  # reaches exactly one pending order
    assert triggers.examined == before + 1
    assert w.broker.positions_total() == 1001


def test_a_symbol_without_levels_is_not_searched_and_one_with_them_is() -> None:
    """Ticks of a symbol with no pending order, SL or TP skip the index (most of a catalogue's
    symbols, on every tick); filing a level makes its ticks searched again, and firing or
    removing the last one stops it."""
    w = world()
    triggers = w.broker.engine.triggers
    assert not triggers.watches("EURUSD")
    w.tick("EURUSD", 1.1002, 1.1003)
    r = w.send(pending("EURUSD", OrderType.BUY_LIMIT, 0.1, 1.0950))
    assert triggers.watches("EURUSD")
    assert not triggers.watches("GBPUSD")
    w.tick("EURUSD", 1.0949, 1.0950)  # fills it
    (pos,) = w.broker.positions()
    assert pos.identifier == r.order
    assert not triggers.watches("EURUSD")
