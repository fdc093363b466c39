"""Broker bookkeeping: hedging and netting deals, pending orders, SL/TP, queries, history."""

from __future__ import annotations

import pytest

from mt5gate.constants import DealEntry, DealReason, OrderState, OrderType, TradeAction
from mt5gate.sim.config import BrokerOptions

from .broker_world import deal, pending, req, world


def test_initial_deposit_is_a_balance_deal() -> None:
    w = world()
    (first,) = w.broker.all_deals()
    assert (first.type, first.symbol, first.order, first.position_id) == (2, "", 0, 0)
    assert first.profit == 10_000.0
    assert first.comment == "Initial deposit"
    info = w.broker.account_info()
    assert (info.balance, info.equity, info.margin, info.margin_level) == (10_000, 10_000, 0, 0)
    assert len(info) == 28


def test_hedging_open_partial_close_and_close() -> None:
    w = world()
    opened = w.send(deal("EURUSD", 1.0, magic=7, comment="hello"))
    assert (opened.retcode, opened.comment, opened.volume, opened.price) == (
        10009,
        "Request executed",
        1.0,
        1.1001,
    )
    assert (opened.bid, opened.ask, opened.retcode_external) == (1.1, 1.1001, 0)
    assert opened.request_id == 1
    (pos,) = w.broker.positions()
    assert pos.ticket == pos.identifier == opened.order
    assert (pos.type, pos.reason, pos.magic, pos.comment) == (0, 3, 7, "hello")
    assert pos.profit == pytest.approx(-10.0)
    w.tick("EURUSD", 1.102, 1.1021)
    partial = w.send(deal("EURUSD", 0.4, buy=False, position=pos.ticket))
    assert partial.retcode == 10009
    assert partial.request_id == 2
    (pos2,) = w.broker.positions()
    assert pos2.ticket == pos.ticket
    assert pos2.volume == pytest.approx(0.6)
    out = w.broker.history_deals_by_ticket(partial.order)
    assert out[0].entry == DealEntry.OUT
    assert out[0].profit == pytest.approx(round(0.0019 * 100_000 * 0.4, 2))
    w.send(deal("EURUSD", 0.6, buy=False, position=pos.ticket))
    assert w.broker.positions() == ()
    assert w.broker.positions_total() == 0
    deals = w.broker.history_deals_by_position(pos.ticket)
    assert [d.entry for d in deals] == [DealEntry.IN, DealEntry.OUT, DealEntry.OUT]
    assert all(d.reason == DealReason.EXPERT for d in deals)
    orders = w.broker.history_orders_by_position(pos.ticket)
    assert {o.state for o in orders} == {OrderState.FILLED}
    info = w.broker.account_info()
    assert info.balance == pytest.approx(10_000 + 0.0019 * 100_000)


def test_hedging_opposite_deal_without_position_opens_new() -> None:
    w = world()
    w.send(deal("EURUSD", 1.0))
    w.send(deal("EURUSD", 0.5, buy=False))
    assert [p.type for p in w.broker.positions()] == [0, 1]


def test_netting_add_reduce_reverse() -> None:
    w = world(netting=True)
    first = w.send(deal("EURUSD", 1.0))
    w.tick("EURUSD", 1.2, 1.2001)
    w.send(deal("EURUSD", 1.0))
    (pos,) = w.broker.positions()
    assert pos.ticket == first.order
    assert pos.volume == 2.0
    assert pos.price_open == pytest.approx((1.1001 + 1.2001) / 2)
    reduce = w.send(deal("EURUSD", 0.5, buy=False))
    (pos,) = w.broker.positions()
    assert pos.volume == 1.5
    assert w.broker.history_deals_by_ticket(reduce.order)[0].entry == DealEntry.OUT
    reverse = w.send(deal("EURUSD", 2.0, buy=False))
    (pos,) = w.broker.positions()
    assert (pos.type, pos.volume, pos.identifier) == (1, 0.5, first.order)
    (inout,) = w.broker.history_deals_by_ticket(reverse.order)
    assert inout.entry == DealEntry.INOUT
    assert inout.profit == pytest.approx(
        round((1.2 - pos.price_open) * 0 + (1.2 - 1.1501) * 1.5e5, 2)
    )
    w.send(deal("EURUSD", 0.5, position=pos.ticket))
    assert w.broker.positions() == ()


def test_netting_close_by_rejected() -> None:
    w = world(netting=True)
    a = w.send(deal("EURUSD", 1.0))
    r = w.send(req(action=TradeAction.CLOSE_BY, position=a.order, position_by=a.order))
    assert r.retcode == 10013


def test_close_by_two_out_by_deals() -> None:
    w = world()
    a = w.send(deal("EURUSD", 1.0))
    w.tick("EURUSD", 1.105, 1.1051)
    b = w.send(deal("EURUSD", 0.4, buy=False))
    r = w.send(req(action=TradeAction.CLOSE_BY, position=a.order, position_by=b.order))
    assert r.retcode == 10009
    deals = w.broker.history_deals_by_ticket(r.order)
    assert [d.entry for d in deals] == [DealEntry.OUT_BY, DealEntry.OUT_BY]
    assert deals[0].profit == pytest.approx((1.105 - 1.1001) * 40_000)
    assert deals[1].profit == 0
    (left,) = w.broker.positions()
    assert (left.ticket, left.volume) == (a.order, 0.6)
    (order,) = w.broker.history_orders_by_ticket(r.order)
    assert (order.type, order.position_by_id) == (OrderType.CLOSE_BY, b.order)


def test_pending_place_modify_remove_and_history() -> None:
    w = world()
    placed = w.send(pending("EURUSD", OrderType.BUY_LIMIT, 0.1, 1.09, sl=1.08, tp=1.12))
    assert (placed.retcode, placed.deal, placed.order) == (10009, 0, placed.order)
    (order,) = w.broker.orders()
    assert (order.state, order.price_open, order.sl, order.price_current) == (1, 1.09, 1.08, 1.1001)
    assert w.broker.orders_total() == 1
    mod = req(action=TradeAction.MODIFY, order=placed.order, price=1.095, sl=1.085, tp=1.12)
    assert w.send(mod).retcode == 10009
    assert w.send(mod).retcode == 10025
    assert w.broker.orders()[0].price_open == 1.095
    removed = w.send(req(action=TradeAction.REMOVE, order=placed.order))
    assert removed.retcode == 10009
    assert w.broker.orders() == ()
    now = w.clock.now_ms() // 1000
    (hist,) = w.broker.history_orders(now - 10, now + 10)
    assert (hist.state, hist.position_id) == (OrderState.CANCELED, 0)
    assert w.broker.history_orders_total(now - 10, now + 10) == 1
    assert w.broker.history_orders(now + 5, now + 10) == ()


def test_pending_retcode_option() -> None:
    w = world(options=BrokerOptions(pending_retcode=10008))
    r = w.send(pending("EURUSD", OrderType.SELL_STOP, 0.1, 1.09))
    assert (r.retcode, r.comment) == (10008, "Order placed")


def test_sltp_replaces_both_levels() -> None:
    w = world()
    a = w.send(deal("EURUSD", 1.0, sl=1.09, tp=1.11))
    r = w.send(req(action=TradeAction.SLTP, position=a.order, sl=1.095, tp=0.0))
    assert r.retcode == 10009
    (pos,) = w.broker.positions()
    assert (pos.sl, pos.tp) == (1.095, 0.0)
    same = w.send(req(action=TradeAction.SLTP, position=a.order, sl=1.095, tp=0.0))
    assert (same.retcode, same.comment) == (10025, "No changes")


def test_netting_sltp_by_symbol() -> None:
    w = world(netting=True)
    w.send(deal("EURUSD", 1.0))
    r = w.send(req(action=TradeAction.SLTP, symbol="EURUSD", sl=1.09, tp=1.2))
    assert r.retcode == 10009
    assert w.broker.positions()[0].sl == 1.09


def test_queries_filters() -> None:
    w = world()
    a = w.send(deal("EURUSD", 0.1))
    b = w.send(deal("USDJPY", 0.1))
    w.send(pending("GBPUSD", OrderType.BUY_LIMIT, 0.1, 1.2))
    assert [p.ticket for p in w.broker.positions()] == [a.order, b.order]
    assert [p.ticket for p in w.broker.positions(symbol="EURUSD", ticket=b.order)] == [a.order]
    assert [p.ticket for p in w.broker.positions(ticket=b.order)] == [b.order]
    assert [p.symbol for p in w.broker.positions(group="*JPY*")] == ["USDJPY"]
    assert len(w.broker.orders(group="GBP*")) == 1
    assert w.broker.symbols_in_use() == {"EURUSD", "USDJPY", "GBPUSD"}
    now = w.clock.now_ms() // 1000
    assert [d.symbol for d in w.broker.history_deals(now - 5, now + 5, group="*JPY")] == ["USDJPY"]
    assert w.broker.history_deals_total(0, now + 5) == 3


def test_history_delay_hides_young_records() -> None:
    w = world(options=BrokerOptions(history_delay_ms=5_000))
    a = w.send(deal("EURUSD", 0.1))
    now = w.clock.now_ms() // 1000
    assert w.broker.history_deals_by_ticket(a.order) == ()
    assert len(w.broker.all_deals()) == 2
    w.clock.advance(6)
    assert len(w.broker.history_deals_by_ticket(a.order)) == 1
    assert w.broker.history_deals_total(now - 10, now + 10) == 2  # deposit + deal


def test_deal_comment_cut() -> None:
    w = world(options=BrokerOptions(deal_comment_max=16))
    a = w.send(deal("EURUSD", 0.1, comment="python script open"))
    (d,) = w.broker.history_deals_by_ticket(a.order)
    assert d.comment == "python script op"
    assert w.broker.positions()[0].comment == "python script open"


def test_account_figures_and_order_check() -> None:
    w = world()
    w.send(deal("EURUSD", 1.0))
    info = w.broker.account_info()
    assert info.margin == pytest.approx(1000 * 1.1001)
    assert info.equity == pytest.approx(info.balance + info.profit)
    assert info.margin_free == pytest.approx(info.equity - info.margin)
    assert info.margin_level == pytest.approx(info.equity / info.margin * 100)
    check = w.broker.order_check(deal("USDJPY", 1.0))
    assert (check.retcode, check.comment) == (0, "Done")
    assert check.margin == pytest.approx(info.margin + 1000)
    assert check.margin_free == pytest.approx(check.equity - check.margin)
    assert check.margin_level == pytest.approx(check.equity / check.margin * 100)
    assert check.request == deal("USDJPY", 1.0)
    netting = world(netting=True)
    netting.send(deal("EURUSD", 1.0))
    closing = netting.broker.order_check(deal("EURUSD", 1.0, buy=False))
    assert closing.margin == 0


def test_calc_margin_and_profit_docs_numbers() -> None:
    w = world()
    b = w.broker
    assert b.calc_margin(0, "EURUSD", 0.1, 1.0991) == 109.91
    assert b.calc_margin(0, "USDJPY", 0.1, 108.0) == 100.0
    w.tick("EURUSD", 1.0991, 1.0992)
    assert b.calc_margin(0, "EURJPY", 0.1, 120.0) == 109.91
    w.tick("GBPUSD", 1.2273, 1.2274)
    assert b.calc_margin(0, "GBPJPY", 0.1, 140.0) == 122.73
    assert b.calc_profit(0, "EURUSD", 1.0, 1.1, 1.103) == 300.0
    assert b.calc_profit(1, "EURUSD", 1.0, 1.103, 1.1) == 300.0
    assert b.calc_profit(0, "USDJPY", 1.0, 108.18, 108.48) == round(30000 / 108.48, 2)
    assert b.calc_profit(1, "USDJPY", 1.0, 108.18, 107.88) == round(30000 / 107.88, 2)


def test_calc_errors() -> None:
    from mt5gate.sim.errors import SimError

    b = world().broker
    with pytest.raises(SimError) as bad:
        b.calc_margin(5, "EURUSD", 1.0, 1.1)
    assert bad.value.code == -2
    with pytest.raises(SimError) as unknown:
        b.calc_profit(0, "NOPE", 1.0, 1.1, 1.2)
    assert unknown.value.code == -1


def test_other_calc_modes() -> None:
    b = world().broker
    assert b.calc_margin(0, "XAUUSD", 1.0, 2000.0) == 200_000.0
    assert b.calc_margin(0, "AAPL", 1.0, 200.0) > 0
    assert b.calc_margin(0, "US500", 1.0, 5000.0) == 5000.0
