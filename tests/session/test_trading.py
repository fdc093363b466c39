"""Trading through a real MT5SessionManager over the simulator: orders, positions, outcomes.

No mocks: every request reaches the simulated trade server through the session's call path,
and faults come from the simulator's fault plan. Counting is done on the simulator's state
(positions, history), never on a patched order_send.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

import pytest

from mt5gate.constants import (
    AccountMarginMode,
    DealEntry,
    OrderFilling,
    OrderTime,
    OrderType,
    PositionType,
    ResultCode,
    SymbolFilling,
    SymbolTradeExecution,
    TradeRetcode,
)
from mt5gate.errors import (
    MT5ConnectionError,
    MT5Error,
    MT5NotFoundError,
    MT5OrderOutcomeUnknown,
    MT5TradeRejected,
    MT5TradeRetryable,
    MT5TradingDisabledError,
    MT5ValidationError,
    Outcome,
)
from mt5gate.models import OrderKind, OrderRequest, Position, Side
from mt5gate.orders import ClientOrderId, EventKind
from mt5gate.session import MT5SessionManager, Timeouts
from mt5gate.session.trading import Trading, choose_filling, order_type
from mt5gate.sim import SimConfig, VirtualClock
from mt5gate.sim.config import demo_accounts
from mt5gate.sim.market import default_catalogue
from mt5gate.sim.terminal import SimTerminal
from tests.session.conftest import PASSWORD, SATURDAY_12, TUESDAY_10, Harness, make_session

BUY, SELL = Side.BUY, Side.SELL
Build = Callable[..., Harness]


@pytest.fixture
def build() -> Iterator[Build]:
    """Connected harnesses with options (login, terminal, timeouts...), closed afterwards."""
    made: list[Harness] = []

    def make(login: int = 5001, *, terminal: SimTerminal | None = None, **options: Any) -> Harness:
        loop = asyncio.new_event_loop()
        session, sim, clock = make_session(
            terminal, login=login, password=f"sim-pass-{login}", **options
        )
        loop.run_until_complete(session.connect())
        harness = Harness(session, sim, clock, loop)
        made.append(harness)
        return harness

    yield make
    for harness in made:
        harness.terminal.faults.clear()
        harness.run(harness.session.close())
        harness.loop.close()


def market(
    symbol: str = "EURUSD", side: Side = BUY, volume: float = 0.1, **kw: Any
) -> OrderRequest:
    return OrderRequest(symbol, side, volume, **kw)


def positions(h: Harness, **kw: Any) -> list[Position]:
    return h.run(h.session.positions(**kw))


def quote(h: Harness, symbol: str = "EURUSD") -> tuple[float, float]:
    price = h.run(h.session.get_price(symbol))
    return price.bid, price.ask


def history_order(h: Harness, ticket: int) -> Any:
    """The raw MT5 order (with ``type_filling``), active or in history, read via the session."""
    found = h.run(h.session.call("orders_get", ticket=ticket))
    (record,) = found or h.run(h.session.call("history_orders_get", ticket=ticket))
    return record


def deals_in(h: Harness) -> int:
    """Opening deals in the account's history: how often an order really executed."""
    deals = h.run(h.session.history_deals(TUESDAY_10 // 1000 - 86400, TUESDAY_10 // 1000 + 86400))
    return sum(1 for d in deals if d.entry == DealEntry.IN and d.symbol)


# ------------------------------------------------------------------------ market orders


def test_trading_is_the_sessions_component(harness: Harness) -> None:
    assert isinstance(harness.session.trading, Trading)
    assert harness.session.trading is harness.session.trading


def test_market_buy_opens_a_position_at_the_ask(harness: Harness) -> None:
    bid, ask = quote(harness)
    result = harness.run(harness.session.place_order(market(volume=0.2, comment="t1")))
    assert result.retcode == TradeRetcode.DONE
    assert (result.volume, result.price, result.bid, result.ask) == (0.2, ask, bid, ask)
    (position,) = positions(harness)
    assert (position.ticket, position.type, position.volume) == (
        result.order,
        PositionType.BUY,
        0.2,
    )
    client = ClientOrderId(5001, result.client_id)
    assert (position.magic, position.comment) == (client.magic, f"{client.comment_tag} t1")


def test_magic_is_mt5gates_and_refused_per_order(harness: Harness) -> None:
    with pytest.raises(MT5ValidationError) as caught:
        harness.run(harness.session.place_order(market(magic=77)))
    assert caught.value.field == "magic"
    assert positions(harness) == []


def test_market_sell_with_stops_fills_at_the_bid(harness: Harness) -> None:
    bid, _ = quote(harness)
    request = market(side=SELL, sl=bid + 0.005, tp=bid - 0.005)
    result = harness.run(harness.session.place_order(request))
    (position,) = positions(harness)
    assert position.type == PositionType.SELL
    assert (position.price_open, position.sl, position.tp) == (bid, bid + 0.005, bid - 0.005)
    assert result.price == bid


def test_an_int_volume_is_sent_as_a_float(harness: Harness) -> None:
    result = harness.run(harness.session.place_order(market(volume=1)))
    assert result.volume == 1.0
    assert history_order(harness, result.order).volume_initial == 1.0


def test_validation_fails_before_the_terminal_is_touched(harness: Harness) -> None:
    harness.terminal.faults.ipc_error(None, times=None)  # every terminal call would fail
    with pytest.raises(MT5ValidationError) as caught:
        harness.run(harness.session.place_order(market(volume=-1)))
    assert caught.value.field == "volume"
    harness.terminal.faults.clear()


def test_volume_off_the_symbol_step_is_refused(harness: Harness) -> None:
    with pytest.raises(MT5ValidationError) as caught:
        harness.run(harness.session.place_order(market(volume=0.015)))
    assert caught.value.field == "volume"
    assert "volume_step" in str(caught.value.rule)
    assert positions(harness) == []


def test_market_stops_are_checked_against_the_quote(harness: Harness) -> None:
    bid, ask = quote(harness)
    with pytest.raises(MT5ValidationError) as caught:
        harness.run(harness.session.place_order(market(sl=ask + 0.001)))
    assert caught.value.field == "sl"
    with pytest.raises(MT5ValidationError) as caught:
        harness.run(harness.session.place_order(market(side=SELL, tp=bid + 0.001)))
    assert caught.value.field == "tp"


# ------------------------------------------------------------------------ closing


def test_close_full_position(harness: Harness) -> None:
    opened = harness.run(harness.session.place_order(market(volume=0.3)))
    bid, _ = quote(harness)
    closed = harness.run(harness.session.close_position(opened.order, comment="bye"))
    assert (closed.retcode, closed.volume, closed.price) == (TradeRetcode.DONE, 0.3, bid)
    assert positions(harness) == []
    order = history_order(harness, closed.order)
    assert (order.type, order.position_id, order.type_filling) == (
        OrderType.SELL,
        opened.order,
        OrderFilling.IOC,
    )


def test_close_partial_keeps_the_ticket(harness: Harness) -> None:
    opened = harness.run(harness.session.place_order(market(side=SELL, volume=0.3)))
    closed = harness.run(harness.session.close_position(opened.order, volume=0.1))
    assert closed.volume == 0.1
    (position,) = positions(harness)
    assert (position.ticket, position.volume) == (opened.order, pytest.approx(0.2))


def test_hedging_close_names_the_position(harness: Harness) -> None:
    """Two buys are two positions; closing one must not open a sell (pitfall C8)."""
    first = harness.run(harness.session.place_order(market()))
    second = harness.run(harness.session.place_order(market()))
    harness.run(harness.session.close_position(first.order))
    (left,) = positions(harness)
    assert (left.ticket, left.type) == (second.order, PositionType.BUY)


@pytest.mark.parametrize(
    ("volume", "rule"),
    [(0.5, "at most the position's volume"), (0.015, "volume_step"), (0, "> 0")],
)
def test_close_volume_is_validated(harness: Harness, volume: float, rule: str) -> None:
    opened = harness.run(harness.session.place_order(market(volume=0.3)))
    with pytest.raises(MT5ValidationError) as caught:
        harness.run(harness.session.close_position(opened.order, volume=volume))
    assert caught.value.field == "volume"
    assert rule in str(caught.value.rule)
    assert positions(harness)[0].volume == 0.3


def test_close_checks_deviation_and_comment(harness: Harness) -> None:
    opened = harness.run(harness.session.place_order(market()))
    with pytest.raises(MT5ValidationError) as caught:
        harness.run(harness.session.close_position(opened.order, deviation=-1))
    assert caught.value.field == "deviation"
    with pytest.raises(MT5ValidationError) as caught:
        harness.run(harness.session.close_position(opened.order, comment="x" * 32))
    assert caught.value.field == "comment"


@pytest.mark.parametrize("ticket", [0, "1"])
def test_invalid_position_ticket(harness: Harness, ticket: Any) -> None:
    with pytest.raises(MT5ValidationError) as caught:
        harness.run(harness.session.close_position(ticket))
    assert caught.value.field == "ticket"
    with pytest.raises(MT5ValidationError):
        harness.run(harness.session.modify_position(ticket, sl=1.0))


def test_a_ticket_that_is_not_open_is_not_found_with_the_python_hint(harness: Harness) -> None:
    """A well-formed ticket the terminal does not have is not found (404 over HTTP), not an
    invalid argument; the session's hint is Python's."""
    for call in (harness.session.close_position(999_999),
                 harness.session.modify_position(999_999, sl=1.0)):  # fmt: skip
        with pytest.raises(MT5NotFoundError) as caught:
            harness.run(call)
        found = caught.value
        assert (found.kind, found.name, found.field) == ("position", 999_999, "ticket")
        assert found.code is None
        assert found.hint == "session.positions() lists the open ones."
        assert "no open position with ticket 999999" in str(found)
    with pytest.raises(MT5NotFoundError) as cancelled:
        harness.run(harness.session.cancel_order(999_999))
    assert (cancelled.value.kind, cancelled.value.hint) == (
        "order", "session.orders() lists the pending ones.")  # fmt: skip


# ------------------------------------------------------------------------ netting


def test_netting_adds_reduces_reverses_and_closes(netting_harness: Harness) -> None:
    h = netting_harness
    first = h.run(h.session.place_order(market(volume=0.1)))
    h.run(h.session.place_order(market(volume=0.2)))
    (position,) = positions(h)
    assert (position.ticket, position.volume) == (first.order, pytest.approx(0.3))
    h.run(h.session.close_position(position.ticket, volume=0.1))
    assert positions(h)[0].volume == pytest.approx(0.2)
    h.run(h.session.place_order(market(side=SELL, volume=0.5)))
    (reversed_,) = positions(h)
    assert (reversed_.type, reversed_.volume) == (PositionType.SELL, pytest.approx(0.3))
    h.run(h.session.close_position(reversed_.ticket))
    assert positions(h) == []


# ------------------------------------------------------------------------ pending orders


def test_buy_limit_place_modify_cancel(harness: Harness) -> None:
    _, ask = quote(harness)
    request = OrderRequest("EURUSD", BUY, 0.1, OrderKind.LIMIT, price=ask - 0.002)
    placed = harness.run(harness.session.place_order(request))
    assert (placed.retcode, placed.deal) == (TradeRetcode.DONE, 0)
    (order,) = harness.run(harness.session.orders())
    assert (order.ticket, order.type, order.price_open) == (
        placed.order,
        OrderType.BUY_LIMIT,
        ask - 0.002,
    )
    assert history_order(harness, placed.order).type_filling == OrderFilling.RETURN
    harness.run(harness.session.modify_order(placed.order, price=ask - 0.003, sl=ask - 0.006))
    (order,) = harness.run(harness.session.orders())
    assert (order.price_open, order.sl, order.tp) == (ask - 0.003, ask - 0.006, 0.0)
    cancelled = harness.run(harness.session.cancel_order(placed.order))
    assert cancelled.retcode == TradeRetcode.DONE
    assert harness.run(harness.session.orders()) == []


@pytest.mark.parametrize(
    ("side", "kind", "offset", "expected"),
    [
        (SELL, OrderKind.LIMIT, +0.002, OrderType.SELL_LIMIT),
        (BUY, OrderKind.STOP, +0.002, OrderType.BUY_STOP),
        (SELL, OrderKind.STOP, -0.002, OrderType.SELL_STOP),
    ],
)
def test_pending_kinds_map_to_order_types(
    harness: Harness, side: Side, kind: OrderKind, offset: float, expected: OrderType
) -> None:
    bid, ask = quote(harness)
    price = (ask if side is BUY else bid) + offset
    placed = harness.run(
        harness.session.place_order(OrderRequest("EURUSD", side, 0.1, kind, price))
    )
    (order,) = harness.run(harness.session.orders(ticket=placed.order))
    assert order.type == expected


def test_stop_limit_place_and_modify(harness: Harness) -> None:
    bid, ask = quote(harness)
    request = OrderRequest(
        "EURUSD", BUY, 0.1, OrderKind.STOP_LIMIT, price=ask + 0.003, stop_limit=ask + 0.001
    )
    placed = harness.run(harness.session.place_order(request))
    (order,) = harness.run(harness.session.orders())
    assert (order.type, order.price_open, order.price_stoplimit) == (
        OrderType.BUY_STOP_LIMIT,
        ask + 0.003,
        ask + 0.001,
    )
    harness.run(harness.session.modify_order(placed.order, stop_limit=ask + 0.002, tp=ask + 0.01))
    (order,) = harness.run(harness.session.orders())
    assert (order.price_stoplimit, order.tp) == (ask + 0.002, ask + 0.01)
    with pytest.raises(MT5ValidationError) as caught:
        harness.run(harness.session.modify_order(placed.order, stop_limit=ask + 0.004))
    assert caught.value.field == "stop_limit"
    sell = OrderRequest(
        "EURUSD", SELL, 0.1, OrderKind.STOP_LIMIT, price=bid - 0.003, stop_limit=bid - 0.001
    )
    placed = harness.run(harness.session.place_order(sell))
    assert harness.run(harness.session.orders(ticket=placed.order))[0].type == (
        OrderType.SELL_STOP_LIMIT
    )


def test_pending_expiration_is_specified_in_seconds(harness: Harness) -> None:
    _, ask = quote(harness)
    now = harness.run(harness.session.get_price("EURUSD")).time_msc
    expires = now + 3_600_000
    request = OrderRequest(
        "EURUSD", BUY, 0.1, OrderKind.LIMIT, price=ask - 0.002, expiration_msc=expires
    )
    placed = harness.run(harness.session.place_order(request))
    (order,) = harness.run(harness.session.orders())
    assert (order.type_time, order.time_expiration) == (OrderTime.SPECIFIED, expires // 1000)
    harness.run(harness.session.modify_order(placed.order, expiration_msc=expires + 3_600_000))
    (order,) = harness.run(harness.session.orders())
    assert order.time_expiration == (expires + 3_600_000) // 1000
    with pytest.raises(MT5ValidationError) as caught:
        harness.run(harness.session.modify_order(placed.order, expiration_msc=now - 1))
    assert caught.value.field == "expiration_msc"
    past = replace(request, expiration_msc=now - 1)
    with pytest.raises(MT5ValidationError) as caught:
        harness.run(harness.session.place_order(past))
    assert caught.value.field == "expiration_msc"


def test_modify_order_validation(harness: Harness) -> None:
    _, ask = quote(harness)
    request = OrderRequest("EURUSD", BUY, 0.1, OrderKind.LIMIT, price=ask - 0.002, sl=ask - 0.004)
    placed = harness.run(harness.session.place_order(request))
    with pytest.raises(MT5ValidationError) as caught:  # the new price falls below the kept SL
        harness.run(harness.session.modify_order(placed.order, price=ask - 0.005))
    assert caught.value.field == "sl"
    with pytest.raises(MT5ValidationError) as caught:
        harness.run(harness.session.modify_order(placed.order, stop_limit=ask))
    assert (caught.value.field, caught.value.rule) == (
        "stop_limit",
        "None unless the order is a stop-limit",
    )
    with pytest.raises(MT5ValidationError) as caught:
        harness.run(harness.session.modify_order(placed.order, price=float("nan")))
    assert caught.value.field == "price"
    with pytest.raises(MT5NotFoundError) as missing:  # not open: not found, not invalid
        harness.run(harness.session.cancel_order(424242))
    assert (missing.value.field, missing.value.kind) == ("ticket", "order")
    with pytest.raises(MT5NotFoundError) as missing:
        harness.run(harness.session.modify_order(424242, price=1.0))
    assert (missing.value.field, missing.value.kind) == ("ticket", "order")


def test_modify_order_without_changes_is_rejected_10025(harness: Harness) -> None:
    _, ask = quote(harness)
    request = OrderRequest("EURUSD", BUY, 0.1, OrderKind.LIMIT, price=ask - 0.002)
    placed = harness.run(harness.session.place_order(request))
    with pytest.raises(MT5TradeRejected) as caught:
        harness.run(harness.session.modify_order(placed.order))
    assert caught.value.retcode == TradeRetcode.NO_CHANGES


# ------------------------------------------------------------------------ SL / TP


def test_modify_position_sets_keeps_and_removes_levels(harness: Harness) -> None:
    opened = harness.run(harness.session.place_order(market()))
    bid, _ = quote(harness)
    sl, tp = round(bid - 0.003, 5), round(bid + 0.003, 5)
    result = harness.run(harness.session.modify_position(opened.order, sl=sl, tp=tp))
    assert result.retcode == TradeRetcode.DONE
    assert (positions(harness)[0].sl, positions(harness)[0].tp) == (sl, tp)
    harness.run(harness.session.modify_position(opened.order, tp=round(bid + 0.004, 5)))
    assert (positions(harness)[0].sl, positions(harness)[0].tp) == (sl, round(bid + 0.004, 5))
    harness.run(harness.session.modify_position(opened.order, sl=0))
    assert (positions(harness)[0].sl, positions(harness)[0].tp) == (0.0, round(bid + 0.004, 5))


def test_modify_position_no_changes_raises_rejected(harness: Harness) -> None:
    opened = harness.run(harness.session.place_order(market()))
    with pytest.raises(MT5TradeRejected) as caught:
        harness.run(harness.session.modify_position(opened.order))
    error = caught.value
    assert (error.retcode, error.outcome) == (TradeRetcode.NO_CHANGES, Outcome.REJECTED)
    assert "Nothing to change" in str(error)
    assert error.request is not None
    assert error.request["position"] == opened.order


def test_modify_position_levels_on_the_wrong_side(harness: Harness) -> None:
    opened = harness.run(harness.session.place_order(market(side=SELL)))
    _, ask = quote(harness)
    with pytest.raises(MT5ValidationError) as caught:
        harness.run(harness.session.modify_position(opened.order, sl=ask - 0.001))
    assert caught.value.field == "sl"
    with pytest.raises(MT5ValidationError) as caught:
        harness.run(harness.session.modify_position(opened.order, tp=-1.0))
    assert caught.value.field == "tp"


# ------------------------------------------------------------------------ filling (C2)


def _fok_market_symbol() -> SimConfig:
    """The default catalogue plus EURUSD.fok: market execution, FOK only."""
    symbols = default_catalogue()
    eurusd = next(s for s in symbols if s.name == "EURUSD")
    fok = replace(eurusd, name="EURUSD.fok", path="Forex\\Majors\\EURUSD.fok")
    fok = replace(fok, filling_mode=int(SymbolFilling.FOK))
    none = replace(eurusd, name="EURUSD.x", path="Forex\\Majors\\EURUSD.x", filling_mode=0)
    none = replace(none, trade_exemode=SymbolTradeExecution.EXCHANGE)
    return SimConfig(history_days=1, symbols=(*symbols, fok, none))


@pytest.mark.parametrize(
    ("symbol", "flags", "execution", "filling"),
    [
        ("EURUSD", 3, SymbolTradeExecution.MARKET, OrderFilling.IOC),
        ("GBPUSD", 2, SymbolTradeExecution.MARKET, OrderFilling.IOC),
        ("EURUSD.fok", 1, SymbolTradeExecution.MARKET, OrderFilling.FOK),
        ("EURGBP", 1, SymbolTradeExecution.INSTANT, OrderFilling.FOK),
        ("AUDUSD", 3, SymbolTradeExecution.REQUEST, OrderFilling.IOC),
        ("EURUSD.x", 0, SymbolTradeExecution.EXCHANGE, OrderFilling.RETURN),
    ],
)
def test_filling_is_chosen_from_the_symbol_flags(
    build: Build, symbol: str, flags: int, execution: SymbolTradeExecution, filling: OrderFilling
) -> None:
    h = build(terminal=SimTerminal(_fok_market_symbol(), clock=VirtualClock(TUESDAY_10)))
    info = h.run(h.session.get_symbol_info(symbol))
    assert (info.filling_mode, info.execution) == (flags, execution)
    assert choose_filling(info) == filling
    result = h.run(h.session.place_order(market(symbol)))
    assert result.retcode == TradeRetcode.DONE
    assert history_order(h, result.order).type_filling == filling


def test_instant_execution_sends_the_current_price(build: Build) -> None:
    h = build()
    _, ask = quote(h, "EURGBP")
    result = h.run(h.session.place_order(market("EURGBP")))
    assert (result.retcode, result.price) == (TradeRetcode.DONE, ask)


def test_request_execution_requote_is_retryable(harness: Harness) -> None:
    _, ask = quote(harness, "AUDUSD")
    with pytest.raises(MT5TradeRetryable) as caught:
        harness.run(harness.session.place_order(market("AUDUSD", price=ask + 0.01, deviation=5)))
    error = caught.value
    assert (error.retcode, error.outcome) == (TradeRetcode.REQUOTE, Outcome.RETRYABLE)
    assert positions(harness) == []


def test_explicit_wrong_filling_is_rejected_with_the_echoed_request(harness: Harness) -> None:
    with pytest.raises(MT5TradeRejected) as caught:
        harness.run(harness.session.place_order(market("GBPUSD", filling=OrderFilling.FOK)))
    error = caught.value
    assert (error.retcode, error.comment) == (TradeRetcode.INVALID_FILL, "Unsupported filling mode")
    assert error.request is not None
    assert (error.request["symbol"], error.request["type_filling"]) == ("GBPUSD", 0)
    assert error.request["volume"] == 0.1
    assert positions(harness) == []


def test_pending_orders_use_return_even_on_ioc_symbols(harness: Harness) -> None:
    _, ask = quote(harness, "GBPUSD")
    request = OrderRequest("GBPUSD", BUY, 0.1, OrderKind.LIMIT, price=round(ask - 0.002, 5))
    placed = harness.run(harness.session.place_order(request))
    assert history_order(harness, placed.order).type_filling == OrderFilling.RETURN


# ------------------------------------------------------------------------ gates, market hours


def test_autotrading_off_is_the_gate_10027(harness: Harness) -> None:
    harness.terminal.set_autotrading(False)
    with pytest.raises(MT5TradingDisabledError) as caught:
        harness.run(harness.session.place_order(market()))
    error = caught.value
    assert (error.retcode, error.outcome) == (TradeRetcode.CLIENT_DISABLES_AT, Outcome.GATE)
    assert error.request is not None
    assert error.request["symbol"] == "EURUSD"


def test_python_api_disabled_is_the_gate_minus_8(harness: Harness) -> None:
    harness.terminal.flags.tradeapi_disabled = True
    with pytest.raises(MT5TradingDisabledError) as caught:
        harness.run(harness.session.place_order(market()))
    assert caught.value.code == ResultCode.E_AUTO_TRADING_DISABLED


def test_account_trade_disabled_is_the_gate_10017(build: Build) -> None:
    accounts = tuple(replace(a, trade_allowed=False) for a in demo_accounts())
    config = SimConfig(history_days=1, accounts=accounts)
    h = build(terminal=SimTerminal(config, clock=VirtualClock(TUESDAY_10)))
    with pytest.raises(MT5TradingDisabledError) as caught:
        h.run(h.session.place_order(market()))
    assert caught.value.retcode == TradeRetcode.TRADE_DISABLED


def test_weekend_market_closed_10018_while_order_check_passes(build: Build) -> None:
    h = build(terminal=SimTerminal(SimConfig(history_days=3), clock=VirtualClock(SATURDAY_12)))
    check = h.run(h.session.check_order(market()))
    assert (check.ok, check.comment) == (True, "Done")  # pitfall C6
    with pytest.raises(MT5TradeRejected) as caught:
        h.run(h.session.place_order(market()))
    assert (caught.value.retcode, caught.value.outcome) == (
        TradeRetcode.MARKET_CLOSED,
        Outcome.REJECTED,
    )


# ------------------------------------------------------------------------ unknown outcomes


def test_lost_reply_is_reconciled_present_and_executed_once(harness: Harness) -> None:
    fault = harness.terminal.faults.reply_lost("order_send")
    result = harness.run(harness.session.place_order(market()))
    assert harness.terminal.faults.fired(fault) == 1
    (position,) = positions(harness)  # it did execute, exactly once
    assert position.magic == ClientOrderId(5001, result.client_id).magic
    assert (result.retcode, result.order, result.comment) == (
        TradeRetcode.DONE,
        position.ticket,
        "reconciled",
    )
    assert deals_in(harness) == 1
    kinds = [e.kind for e in harness.session.journal.history(5001, result.client_id)]
    assert kinds == [
        EventKind.INTENT,
        EventKind.SENT,
        EventKind.UNKNOWN,
        EventKind.RECONCILED_PRESENT,
    ]


def test_hang_past_the_deadline_stays_unknown_and_is_never_resent(build: Build) -> None:
    h = build(timeouts=Timeouts(call_s=2.0, connect_s=5.0, order_s=0.2, probe_s=0.5))
    fault = h.terminal.faults.reply_lost("order_send", hang=True, cap_s=10.0)
    with pytest.raises(MT5OrderOutcomeUnknown) as caught:
        h.run(h.session.place_order(market(), idempotency_key="k1"))
    error = caught.value
    assert "0.2 s" in str(error)
    assert error.request is not None
    assert error.client_id is not None
    assert error.request["magic"] == ClientOrderId(5001, error.client_id).magic
    h.terminal.faults.release()
    h.run(_settled(h.session))
    again = h.run(h.session.place_order(market(), idempotency_key="k1"))  # reconciles, no send
    assert again.client_id == error.client_id
    assert h.terminal.faults.fired(fault) == 1
    assert [p.magic for p in positions(h)] == [error.request["magic"]]
    assert deals_in(h) == 1


def test_hang_before_execution_is_still_unknown_and_never_resent(build: Build) -> None:
    h = build(timeouts=Timeouts(call_s=2.0, connect_s=5.0, order_s=0.2, probe_s=0.5))
    h.terminal.faults.hang("order_send", cap_s=10.0)
    with pytest.raises(MT5OrderOutcomeUnknown):
        h.run(h.session.place_order(market()))
    h.terminal.faults.release()
    h.run(_settled(h.session))
    assert positions(h) == []
    assert deals_in(h) == 0


async def _settled(session: MT5SessionManager) -> None:
    """Wait until the worker is free again and any background reconnection has finished."""
    for _ in range(200):
        if not session.worker.stuck:
            break
        await asyncio.sleep(0.01)
    await session.connection.wait_reconnected()


def test_no_ipc_connection_is_not_unknown(harness: Harness) -> None:
    """-10004: the request never left the process; the connection error passes through."""
    harness.terminal.faults.ipc_error("order_send", ResultCode.E_INTERNAL_FAIL_CONNECT)
    with pytest.raises(MT5ConnectionError) as caught:
        harness.run(harness.session.place_order(market()))
    assert not isinstance(caught.value, MT5OrderOutcomeUnknown)
    assert caught.value.code == ResultCode.E_INTERNAL_FAIL_CONNECT


def test_send_failure_with_an_unknown_code_is_unknown(harness: Harness) -> None:
    """order_send returning None with -1 (inside the terminal): it may have been forwarded, so
    it is UNKNOWN until reconciliation proves it absent (nothing moved, history agrees)."""
    harness.terminal.faults.ipc_error("order_send", ResultCode.E_FAIL)
    with pytest.raises(MT5TradeRetryable) as caught:
        harness.run(harness.session.place_order(market()))
    assert caught.value.client_id is not None
    history = harness.session.journal.history(5001, caught.value.client_id)
    unknown = next(e for e in history if e.kind is EventKind.UNKNOWN)
    assert "-1" in unknown.note
    assert history[-1].kind is EventKind.RECONCILED_ABSENT


# ------------------------------------------------------------------------ checks, margin


def test_check_order_reports_without_raising(harness: Harness) -> None:
    ok = harness.run(harness.session.check_order(market()))
    assert ok.ok
    assert ok.margin > 0
    too_big = harness.run(harness.session.check_order(market(volume=50)))
    assert (too_big.ok, too_big.retcode) == (False, TradeRetcode.NO_MONEY)
    assert positions(harness) == []


def test_calc_margin_and_profit(harness: Harness) -> None:
    bid, ask = quote(harness)
    at_ask = harness.run(harness.session.calc_margin("EURUSD", BUY, 1, ask))
    assert harness.run(harness.session.calc_margin("EURUSD", BUY, 1.0)) == pytest.approx(at_ask)
    assert at_ask == pytest.approx(1000 * ask)
    at_bid = harness.run(harness.session.calc_margin("EURUSD", SELL, 1.0))
    assert at_bid == pytest.approx(1000 * bid)
    profit = harness.run(harness.session.calc_profit("EURUSD", BUY, 1, 1.1, 1.103))
    assert profit == pytest.approx(300.0)
    loss = harness.run(harness.session.calc_profit("EURUSD", SELL, 1.0, 1.1, 1.103))
    assert loss == pytest.approx(-300.0)


@pytest.mark.parametrize(
    ("args", "field"),
    [
        (("EURUSD", "long", 1.0), "side"),
        (("", BUY, 1.0), "symbol"),
        (("EURUSD", BUY, 0.0), "volume"),
        (("EURUSD", BUY, 1.0, -1.0), "price"),
    ],
)
def test_calc_margin_validates(harness: Harness, args: tuple[Any, ...], field: str) -> None:
    with pytest.raises(MT5ValidationError) as caught:
        harness.run(harness.session.calc_margin(*args))
    assert caught.value.field == field


def test_calc_profit_validates_prices(harness: Harness) -> None:
    with pytest.raises(MT5ValidationError) as caught:
        harness.run(harness.session.calc_profit("EURUSD", BUY, 1.0, 0.0, 1.1))
    assert caught.value.field == "price_open"


# ------------------------------------------------------------------------ secrets


def test_no_error_carries_the_password(harness: Harness) -> None:
    errors: list[MT5Error] = []

    def collect(coro: Any) -> None:
        try:
            harness.run(coro)
        except MT5Error as error:
            errors.append(error)

    s = harness.session
    collect(s.place_order(market(volume=0)))
    collect(s.place_order(market("GBPUSD", filling=OrderFilling.FOK)))
    collect(s.close_position(123))
    harness.terminal.faults.ipc_error("order_send", ResultCode.E_FAIL)
    collect(s.place_order(market()))
    harness.terminal.set_autotrading(False)
    collect(s.place_order(market()))
    assert len(errors) == 5
    for error in errors:
        for text in (str(error), repr(error), repr(getattr(error, "request", None))):
            assert PASSWORD not in text
    assert PASSWORD not in repr(s)


def test_order_type_table_is_complete() -> None:
    assert {order_type(side, kind) for side in Side for kind in OrderKind} == set(OrderType) - {
        OrderType.CLOSE_BY
    }


def test_netting_account_is_netting(netting_harness: Harness) -> None:
    account = netting_harness.run(netting_harness.session.get_account_info())
    assert account.margin_mode == AccountMarginMode.RETAIL_NETTING
