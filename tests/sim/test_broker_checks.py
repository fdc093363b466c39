"""Every rejection path of the §7.4 pipeline, with its retcode and comment."""

from __future__ import annotations

from mt5gate.constants import (
    OrderFilling,
    OrderTime,
    OrderType,
    SymbolExpiration,
    SymbolTradeExecution,
    SymbolTradeMode,
    TradeAction,
)
from mt5gate.sim.clock import server_ms
from mt5gate.sim.config import BrokerOptions

from .broker_world import catalogue, deal, pending, req, world

BUY_LIMIT, SELL_LIMIT = OrderType.BUY_LIMIT, OrderType.SELL_LIMIT


def rejected(result: object, retcode: int, comment: str | None = None) -> None:
    assert result.retcode == retcode  # type: ignore[attr-defined]
    zeros = result[1:7]  # type: ignore[index]
    assert tuple(zeros) == (0, 0, 0.0, 0.0, 0.0, 0.0)
    assert result.request_id == 0  # type: ignore[attr-defined]
    if comment is not None:
        assert result.comment == comment  # type: ignore[attr-defined]


def test_permissions() -> None:
    w = world()
    w.flags.connected = False
    rejected(w.send(deal("EURUSD", 0.1)), 10031, "No connection")
    w.flags.connected = True
    w.flags.trade_allowed = False
    rejected(w.send(deal("EURUSD", 0.1)), 10027, "AutoTrading disabled by client")
    assert w.broker.order_check(deal("EURUSD", 0.1)).retcode == 10027
    rejected(world(trade_expert=False).send(deal("EURUSD", 0.1)), 10026)
    rejected(world(trade_allowed=False).send(deal("EURUSD", 0.1)), 10017)


def test_symbol_and_trade_modes() -> None:
    w = world()
    rejected(w.send(deal("NOPE", 0.1)), 10013, "Invalid request")
    rejected(w.send(req(action=99, symbol="EURUSD")), 10013)
    specs = catalogue(
        EURUSD={"trade_mode": SymbolTradeMode.DISABLED},
        GBPUSD={"trade_mode": SymbolTradeMode.LONGONLY},
        USDJPY={"trade_mode": SymbolTradeMode.SHORTONLY},
        USDCHF={"trade_mode": SymbolTradeMode.CLOSEONLY},
    )
    m = world(specs=specs)
    rejected(m.send(deal("EURUSD", 0.1)), 10017, "Trade disabled")
    rejected(m.send(deal("GBPUSD", 0.1, buy=False)), 10042)
    assert m.send(deal("GBPUSD", 0.1)).retcode == 10009
    rejected(m.send(deal("USDJPY", 0.1)), 10043)
    rejected(m.send(deal("USDCHF", 0.1)), 10044)
    rejected(m.send(pending("USDCHF", BUY_LIMIT, 0.1, 0.5)), 10044)


def test_market_closed_only_for_send() -> None:
    w = world()
    w.clock.set(server_ms(2026, 1, 10, 12))  # Saturday
    rejected(w.send(deal("EURUSD", 0.1)), 10018, "Market closed")
    check = w.broker.order_check(deal("EURUSD", 0.1))
    assert (check.retcode, check.comment) == (0, "Done")


def test_order_mode_bits() -> None:
    w = world(specs=catalogue(EURUSD={"order_mode": 1}))
    rejected(w.send(pending("EURUSD", BUY_LIMIT, 0.1, 1.0)), 10035, "Invalid order")
    rejected(w.send(deal("EURUSD", 0.1, sl=1.0)), 10035)
    rejected(w.send(deal("EURUSD", 0.1, type=OrderType.BUY_LIMIT)), 10035)
    rejected(world().send(pending("EURUSD", OrderType.BUY, 0.1, 1.0)), 10035)


def test_volume() -> None:
    w = world()
    for volume in (0.0, 0.005, 0.015, 101.0):
        rejected(w.send(deal("EURUSD", volume)), 10014, "Invalid volume")
    assert w.send(deal("EURUSD", 0.07)).retcode == 10009
    lim = world(specs=catalogue(EURUSD={"volume_limit": 1.0}))
    assert lim.send(deal("EURUSD", 0.6)).retcode == 10009
    rejected(lim.send(pending("EURUSD", BUY_LIMIT, 0.5, 1.0)), 10034)
    assert lim.send(deal("EURUSD", 0.5, buy=False)).retcode == 10009


def test_filling() -> None:
    w = world()  # EURUSD market execution, FOK|IOC; EURGBP instant; AAPL exchange, FOK
    rejected(w.send(deal("EURUSD", 0.1, type_filling=OrderFilling.RETURN)), 10030)
    rejected(w.send(deal("EURUSD", 0.1, type_filling=7)), 10030)
    rejected(w.send(deal("EURUSD", 0.1, type_filling=OrderFilling.BOC)), 10030)
    assert w.send(deal("EURUSD", 0.1, type_filling=OrderFilling.FOK)).retcode == 10009
    gbp = world()
    rejected(gbp.send(deal("GBPUSD", 0.1, type_filling=OrderFilling.FOK)), 10030)
    rejected(w.send(pending("GBPUSD", BUY_LIMIT, 0.1, 1.2, type_filling=OrderFilling.FOK)), 10030)
    ok = w.send(pending("EURUSD", BUY_LIMIT, 0.1, 1.0, type_filling=OrderFilling.IOC))
    assert ok.retcode == 10009
    ex = world(specs=catalogue(EURUSD={"trade_exemode": SymbolTradeExecution.EXCHANGE}))
    assert ex.send(deal("EURUSD", 0.1, type_filling=OrderFilling.RETURN)).retcode == 10009


def test_instant_execution_price_and_requote() -> None:
    specs = catalogue(EURUSD={"trade_exemode": SymbolTradeExecution.INSTANT})
    w = world(specs=specs)
    rejected(w.send(deal("EURUSD", 0.1)), 10015, "Invalid price")
    quote = w.send(deal("EURUSD", 0.1, price=1.1021, deviation=10))
    assert (quote.retcode, quote.comment, quote.bid, quote.ask) == (10004, "Requote", 1.1, 1.1001)
    assert quote.request_id > 0
    assert (quote.deal, quote.order, quote.volume, quote.price) == (0, 0, 0.0, 0.0)
    ok = w.send(deal("EURUSD", 0.1, price=1.1003, deviation=30))
    assert (ok.retcode, ok.price, ok.request.price) == (10009, 1.1001, 1.1003)
    alt = world(specs=specs, options=BrokerOptions(requote_retcode=10020))
    assert alt.send(deal("EURUSD", 0.1, price=1.2, deviation=5)).retcode == 10020


def test_pending_price_placement() -> None:
    w = world()
    bad = [
        (OrderType.BUY_LIMIT, 1.1001, {}),
        (OrderType.SELL_LIMIT, 1.1, {}),
        (OrderType.BUY_STOP, 1.09, {}),
        (OrderType.SELL_STOP, 1.11, {}),
        (OrderType.BUY_STOP_LIMIT, 1.12, {"stoplimit": 1.13}),
        (OrderType.SELL_STOP_LIMIT, 1.08, {"stoplimit": 0.0}),
        (OrderType.BUY_LIMIT, 0.0, {}),
    ]
    for kind, price, extra in bad:
        rejected(w.send(pending("EURUSD", kind, 0.1, price, **extra)), 10015)
    lvl = world(specs=catalogue(EURUSD={"trade_stops_level": 50}))
    rejected(lvl.send(pending("EURUSD", BUY_LIMIT, 0.1, 1.0997)), 10015)
    assert lvl.send(pending("EURUSD", BUY_LIMIT, 0.1, 1.0950)).retcode == 10009


def test_stops() -> None:
    w = world()
    rejected(w.send(deal("EURUSD", 0.1, sl=1.1005)), 10016, "Invalid stops")
    rejected(w.send(deal("EURUSD", 0.1, tp=1.099)), 10016)
    rejected(w.send(deal("EURUSD", 0.1, buy=False, sl=1.0995)), 10016)
    rejected(w.send(pending("EURUSD", BUY_LIMIT, 0.1, 1.09, sl=1.095)), 10016)
    rejected(w.send(pending("EURUSD", SELL_LIMIT, 0.1, 1.11, tp=1.12)), 10016)
    lvl = world(specs=catalogue(EURUSD={"trade_stops_level": 100}))
    rejected(lvl.send(deal("EURUSD", 0.1, sl=1.0995)), 10016)
    a = lvl.send(deal("EURUSD", 0.1, sl=1.08))
    assert a.retcode == 10009
    rejected(lvl.send(req(action=TradeAction.SLTP, position=a.order, sl=1.0995)), 10016)


def test_freeze_level() -> None:
    w = world(specs=catalogue(EURUSD={"trade_freeze_level": 20}))
    a = w.send(deal("EURUSD", 0.1, tp=1.1002))
    o = w.send(pending("EURUSD", BUY_LIMIT, 0.1, 1.0999))
    rejected(w.send(req(action=TradeAction.SLTP, position=a.order, sl=0.0, tp=1.2)), 10029)
    rejected(w.send(deal("EURUSD", 0.1, buy=False, position=a.order)), 10029)
    rejected(w.send(req(action=TradeAction.REMOVE, order=o.order)), 10029)
    far = w.send(pending("EURUSD", BUY_LIMIT, 0.1, 1.09))
    assert w.send(req(action=TradeAction.REMOVE, order=far.order)).retcode == 10009


def test_expiration() -> None:
    w = world(specs=catalogue(EURUSD={"expiration_mode": int(SymbolExpiration.GTC)}))
    rejected(w.send(pending("EURUSD", BUY_LIMIT, 0.1, 1.0, type_time=OrderTime.DAY)), 10022)
    w2 = world()
    past = w2.clock.now_ms() // 1000 - 10
    kw = {"type_time": OrderTime.SPECIFIED, "expiration": past}
    rejected(w2.send(pending("EURUSD", BUY_LIMIT, 0.1, 1.0, **kw)), 10022, "Invalid expiration")
    rejected(w2.send(pending("EURUSD", BUY_LIMIT, 0.1, 1.0, type_time=9)), 10022)
    yesterday = {"type_time": OrderTime.SPECIFIED_DAY, "expiration": past - 86_400}
    rejected(w2.send(pending("EURUSD", BUY_LIMIT, 0.1, 1.0, **yesterday)), 10022)


def test_money() -> None:
    w = world(balance=100.0)
    rejected(w.send(deal("EURUSD", 1.0)), 10019, "No money")
    check = w.broker.order_check(deal("EURUSD", 1.0))
    assert check.retcode == 10019
    assert check.margin_free < 0
    rejected(w.send(pending("EURUSD", BUY_LIMIT, 1.0, 1.0)), 10019)


def test_limits() -> None:
    w = world(limit_orders=1, max_positions=1)
    assert w.send(pending("EURUSD", BUY_LIMIT, 0.1, 1.0)).retcode == 10009
    rejected(w.send(pending("EURUSD", BUY_LIMIT, 0.1, 1.0)), 10033)
    assert w.send(deal("EURUSD", 0.1)).retcode == 10009
    rejected(w.send(deal("EURUSD", 0.1)), 10040, "Limit positions")
    fifo = world(fifo_close=True)
    first = fifo.send(deal("EURUSD", 0.1))
    fifo.clock.advance(1)
    second = fifo.send(deal("EURUSD", 0.1))
    rejected(fifo.send(deal("EURUSD", 0.1, buy=False, position=second.order)), 10045)
    assert fifo.send(deal("EURUSD", 0.1, buy=False, position=first.order)).retcode == 10009


def test_references() -> None:
    w = world()
    a = w.send(deal("EURUSD", 0.5))
    b = w.send(deal("USDJPY", 0.5, buy=False))
    rejected(w.send(deal("EURUSD", 0.1, buy=False, position=999)), 10013)
    rejected(w.send(deal("EURUSD", 0.1, position=a.order)), 10013)  # same side
    rejected(w.send(deal("EURUSD", 0.6, buy=False, position=a.order)), 10038)
    rejected(w.send(req(action=TradeAction.SLTP, position=999, sl=1.0)), 10013)
    rejected(w.send(req(action=TradeAction.REMOVE, order=999)), 10013)
    rejected(w.send(req(action=TradeAction.MODIFY, order=999, symbol="EURUSD")), 10013)
    cb = req(action=TradeAction.CLOSE_BY, position=a.order, position_by=b.order)
    rejected(w.send(cb), 10013)
    same = req(action=TradeAction.CLOSE_BY, position=a.order, position_by=a.order)
    rejected(w.send(same), 10013)
    c = w.send(deal("EURUSD", 0.1))
    rejected(w.send(req(action=TradeAction.CLOSE_BY, position=a.order, position_by=c.order)), 10013)
