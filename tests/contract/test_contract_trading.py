"""Trading through the seam: request checks, order_check, market deals on hedging and netting
accounts, retcodes, pending orders, SL/TP, history (semantics 7, 8, 9, 10; pitfalls C1-C9)."""

from __future__ import annotations

from typing import Any

import pytest

from .conftest import server_ms

DEAL, PENDING, SLTP, MODIFY, REMOVE = 1, 5, 6, 7, 8
BUY, SELL, BUY_LIMIT = 0, 1, 2
FOK, IOC, RETURN = 0, 1, 2
DONE = 10009
MAGIC = 234000


def filling_for(info: Any) -> int:
    """pitfall C2's fix: IOC if the symbol allows it, else FOK, else RETURN."""
    if info.filling_mode & 2:
        return IOC
    return FOK if info.filling_mode & 1 else RETURN


def deal(mt5: Any, symbol: str, side: int, volume: float = 0.1, **extra: Any) -> dict[str, Any]:
    """A market DEAL request as the docs write it, with a filling mode the symbol accepts."""
    info = mt5.symbol_info(symbol)
    tick = mt5.symbol_info_tick(symbol)
    request = {
        "action": DEAL,
        "symbol": symbol,
        "volume": volume,
        "type": side,
        "price": tick.ask if side == BUY else tick.bid,
        "deviation": 20,
        "magic": MAGIC,
        "comment": "contract",
        "type_time": 0,
        "type_filling": filling_for(info),
    }
    request.update(extra)
    return request


def open_position(mt5: Any, symbol: str = "EURUSD", side: int = BUY, **extra: Any) -> Any:
    result = mt5.order_send(deal(mt5, symbol, side, **extra))
    assert result is not None, mt5.last_error()
    assert result.retcode == DONE, result
    return result


def assert_rejected(result: Any, retcode: int, comment: str | None = None) -> None:
    """semantics 7.2: a rejected request carries the retcode, zeros and the echoed request."""
    assert result is not None
    assert result.retcode == retcode, result
    if comment is not None:
        assert result.comment == comment
    assert (result.deal, result.order, result.volume, result.price) == (0, 0, 0.0, 0.0)
    assert type(result.request).__name__ == "TradeRequest"


# ------------------------------------------------------------------ request dict checks


def test_int_volume_is_invalid_argument(mt5: Any) -> None:
    """semantics 7.1, pitfall C3: an int volume gives None and (-2, 'Invalid "volume" ...')."""
    assert mt5.order_send(deal(mt5, "EURUSD", BUY, volume=1)) is None
    assert mt5.last_error() == (-2, 'Invalid "volume" argument')
    assert mt5.positions_total() == 0


def test_missing_volume_is_invalid_argument(mt5: Any) -> None:
    """pitfall C3: a DEAL without volume (the classic close bug) gives None, (-2)."""
    request = deal(mt5, "EURUSD", BUY)
    del request["volume"]
    assert mt5.order_send(request) is None
    assert mt5.last_error() == (-2, 'Invalid "volume" argument')


def test_none_price_is_invalid_argument(mt5: Any) -> None:
    """semantics 7.1, pitfall C3: price=None gives None and (-2, 'Invalid "price" argument')."""
    assert mt5.order_send(deal(mt5, "EURUSD", BUY, price=None)) is None
    assert mt5.last_error() == (-2, 'Invalid "price" argument')


@pytest.mark.parametrize("length", [32, 40])
def test_long_comment_is_invalid_argument(mt5: Any, length: int) -> None:
    """semantics 7.1, pitfall C3: a comment above 31 characters gives None, (-2)."""
    assert mt5.order_send(deal(mt5, "EURUSD", BUY, comment="c" * length)) is None
    assert mt5.last_error() == (-2, 'Invalid "comment" argument')


def test_comment_of_31_characters_is_accepted(mt5: Any) -> None:
    """pitfall C3: 31 characters is the usual safe maximum."""
    result = mt5.order_send(deal(mt5, "EURUSD", BUY, comment="c" * 31))
    assert result is not None
    assert result.retcode == DONE


def test_order_check_applies_the_same_type_checks(mt5: Any) -> None:
    """semantics 8: order_check refuses a malformed dict like order_send: None, (-2)."""
    assert mt5.order_check(deal(mt5, "EURUSD", BUY, volume=1)) is None
    assert mt5.last_error() == (-2, 'Invalid "volume" argument')


# ------------------------------------------------------------------ order_check


def test_order_check_success_is_zero_done(mt5: Any) -> None:
    """semantics 8, pitfall C7: success is retcode 0 with comment 'Done'; nothing is sent."""
    account = mt5.account_info()
    check = mt5.order_check(deal(mt5, "EURUSD", BUY))
    assert type(check).__name__ == "OrderCheckResult"
    assert (check.retcode, check.comment) == (0, "Done")
    assert check.balance == pytest.approx(account.balance)
    assert check.equity == pytest.approx(account.equity)
    assert check.margin > 0
    assert check.margin_free == pytest.approx(check.equity - check.margin)
    assert check.margin_level == pytest.approx(check.equity / check.margin * 100)
    assert check.request.symbol == "EURUSD"
    assert mt5.positions_total() == 0


def test_order_check_margin_is_total_after_the_operation(mt5: Any) -> None:
    """semantics 8: margin = existing margin plus the margin for this request."""
    open_position(mt5)
    existing = mt5.account_info().margin
    needed = mt5.order_calc_margin(BUY, "USDJPY", 0.1, mt5.symbol_info_tick("USDJPY").ask)
    check = mt5.order_check(deal(mt5, "USDJPY", BUY))
    assert check.retcode == 0
    assert check.margin == pytest.approx(existing + needed, rel=1e-6)


def test_order_check_reports_bad_volume(mt5: Any) -> None:
    """semantics 8: a failing check carries the TRADE_RETCODE, e.g. 10014."""
    check = mt5.order_check(deal(mt5, "EURUSD", BUY, volume=0.015))
    assert check.retcode == 10014


# ------------------------------------------------------------------ market deals, hedging


def test_market_buy_on_hedging(mt5: Any) -> None:
    """semantics 7.2: 10009 'Request executed'; deal and order tickets; fill at the ask;
    on hedging the position's ticket and identifier are result.order (7.5)."""
    tick = mt5.symbol_info_tick("EURUSD")
    result = mt5.order_send(deal(mt5, "EURUSD", BUY))
    assert (result.retcode, result.comment) == (DONE, "Request executed")
    assert result.deal > 0
    assert result.order > 0
    assert result.volume == 0.1
    assert result.price == tick.ask
    assert (result.bid, result.ask) == (tick.bid, tick.ask)
    assert result.retcode_external == 0
    assert result.request.magic == MAGIC
    (position,) = mt5.positions_get(ticket=result.order)
    assert type(position).__name__ == "TradePosition"
    assert (position.ticket, position.identifier) == (result.order, result.order)
    assert (position.type, position.volume, position.symbol) == (0, 0.1, "EURUSD")
    assert (position.magic, position.reason, position.comment) == (MAGIC, 3, "contract")
    assert position.price_open == tick.ask


def test_close_with_position_on_hedging(mt5: Any) -> None:
    """semantics 7.3, pitfall C8: a DEAL carrying position= closes that position."""
    opened = open_position(mt5)
    closed = mt5.order_send(deal(mt5, "EURUSD", SELL, position=opened.order))
    assert closed.retcode == DONE
    assert mt5.positions_total() == 0
    assert mt5.positions_get(ticket=opened.order) == ()


def test_opposite_deal_without_position_opens_a_second_position_on_hedging(mt5: Any) -> None:
    """pitfall C8: on hedging, a closing DEAL without position= opens an opposite position."""
    open_position(mt5)
    open_position(mt5, side=SELL)
    assert mt5.positions_total() == 2
    assert sorted(p.type for p in mt5.positions_get(symbol="EURUSD")) == [0, 1]


def test_partial_close_keeps_the_ticket(mt5: Any) -> None:
    """semantics 7.3: a volume below the position's is a partial close; the ticket stays."""
    opened = open_position(mt5)
    result = mt5.order_send(deal(mt5, "EURUSD", SELL, volume=0.04, position=opened.order))
    assert result.retcode == DONE
    (position,) = mt5.positions_get()
    assert position.ticket == opened.order
    assert position.volume == pytest.approx(0.06)


def test_account_relationships_with_an_open_position(env: Any, mt5: Any) -> None:
    """semantics 9.3: equity = balance + credit + profit; margin_free = equity - margin;
    margin_level = equity / margin * 100."""
    open_position(mt5)
    env.push_tick("EURUSD", 1.09012, 1.09024)
    a = mt5.account_info()
    assert a.margin > 0
    assert a.profit != 0
    assert a.equity == pytest.approx(a.balance + a.credit + a.profit)
    assert a.margin_free == pytest.approx(a.equity - a.margin)
    assert a.margin_level == pytest.approx(a.equity / a.margin * 100)
    (position,) = mt5.positions_get()
    assert a.profit == pytest.approx(position.profit)


# ------------------------------------------------------------------ netting


def test_netting_adds_reduces_and_reverses(terminal: Any, netting: dict[str, Any]) -> None:
    """semantics 7.5: netting keeps one position per symbol; same side adds volume, the
    opposite side reduces it, a larger one reverses it (entry INOUT 2)."""
    mt5 = terminal
    assert mt5.initialize(**netting)
    first = open_position(mt5)
    open_position(mt5)
    (position,) = mt5.positions_get(symbol="EURUSD")
    assert position.volume == pytest.approx(0.2)
    reverse = mt5.order_send(deal(mt5, "EURUSD", SELL, volume=0.3))
    assert reverse.retcode == DONE
    (position,) = mt5.positions_get(symbol="EURUSD")
    assert (position.type, position.volume) == (1, pytest.approx(0.1))
    assert [d.entry for d in mt5.history_deals_get(ticket=reverse.order)] == [2]
    assert [d.entry for d in mt5.history_deals_get(ticket=first.order)] == [0]


def test_netting_opposite_deal_of_equal_volume_closes(
    terminal: Any, netting: dict[str, Any]
) -> None:
    """semantics 7.5: on netting an opposite deal closes the position (entry OUT), no
    position= needed."""
    mt5 = terminal
    assert mt5.initialize(**netting)
    open_position(mt5)
    closing = mt5.order_send(deal(mt5, "EURUSD", SELL))
    assert closing.retcode == DONE
    assert mt5.positions_total() == 0
    assert [d.entry for d in mt5.history_deals_get(ticket=closing.order)] == [1]


# ------------------------------------------------------------------ retcodes


def test_wrong_filling_mode_is_10030(mt5: Any) -> None:
    """semantics 7.4 (7), pitfall C2: RETURN on a market-execution symbol: 10030."""
    info = mt5.symbol_info("EURUSD")
    assert info.trade_exemode == 2  # market execution
    result = mt5.order_send(deal(mt5, "EURUSD", BUY, type_filling=RETURN))
    assert_rejected(result, 10030, "Unsupported filling mode")


def test_filling_mode_not_in_the_symbol_flags_is_10030(mt5: Any) -> None:
    """semantics 7.4 (7): under market execution FOK needs SYMBOL_FILLING_FOK (bit 1)."""
    ioc_only = next(
        s.name for s in mt5.symbols_get() if s.trade_exemode == 2 and s.filling_mode == 2
    )
    mt5.symbol_select(ioc_only, True)
    result = mt5.order_send(deal(mt5, ioc_only, BUY, type_filling=FOK))
    assert_rejected(result, 10030)


@pytest.mark.parametrize("volume", [0.015, 0.0, 0.001, 1000.0])
def test_bad_volume_is_10014(mt5: Any, volume: float) -> None:
    """semantics 7.4 (6): outside volume_min..volume_max or off volume_step: 10014."""
    result = mt5.order_send(deal(mt5, "EURUSD", BUY, volume=volume))
    assert_rejected(result, 10014)


@pytest.mark.parametrize(("side", "level"), [(BUY, "sl"), (BUY, "tp"), (SELL, "sl"), (SELL, "tp")])
def test_stops_on_the_wrong_side_are_10016(mt5: Any, side: int, level: str) -> None:
    """semantics 7.4 (10), pitfall C4: SL/TP on the wrong side of the price: 10016."""
    tick = mt5.symbol_info_tick("EURUSD")
    wrong = {
        (BUY, "sl"): tick.bid + 0.005,
        (BUY, "tp"): tick.bid - 0.005,
        (SELL, "sl"): tick.ask - 0.005,
        (SELL, "tp"): tick.ask + 0.005,
    }[(side, level)]
    result = mt5.order_send(deal(mt5, "EURUSD", side, **{level: wrong}))
    assert_rejected(result, 10016, "Invalid stops")


def test_stops_within_stops_level_are_10016(mt5: Any) -> None:
    """semantics 7.4 (10): SL closer than trade_stops_level points: 10016."""
    info = mt5.symbol_info("USDCAD")
    assert info.trade_stops_level > 0
    assert mt5.symbol_select("USDCAD", True)
    tick = mt5.symbol_info_tick("USDCAD")
    too_close = tick.bid - (info.trade_stops_level - 1) * info.point
    result = mt5.order_send(deal(mt5, "USDCAD", BUY, sl=round(too_close, info.digits)))
    assert_rejected(result, 10016)


# Friday 2026-01-09 22:00 server time: the forex session is open (until 23:55). Starting here,
# not on Tuesday, the jump into the weekend simulates 14 hours of ticks instead of 98.
@pytest.mark.parametrize("env_start_ms", [server_ms(2026, 1, 9, 22)], ids=["friday"])
def test_market_closed_at_weekend_is_10018(env: Any, mt5: Any) -> None:
    """semantics 7.4 (4), pitfall C6: outside the session order_send gives 10018, while
    order_check does not test the session and answers 0 'Done'."""
    env.driver.jump_to(server_ms(2026, 1, 10, 12))  # Saturday noon, server time
    request = deal(mt5, "EURUSD", BUY)
    check = mt5.order_check(request)
    assert (check.retcode, check.comment) == (0, "Done")
    assert_rejected(mt5.order_send(request), 10018, "Market closed")
    assert mt5.positions_total() == 0


def test_autotrading_off_is_10027(env: Any, mt5: Any) -> None:
    """semantics 7.4 (3), pitfall C1: with Algo Trading off, trade_allowed is False and
    order_send answers 10027; switched back on, the same request executes."""
    env.driver.set_autotrading(False)
    assert mt5.terminal_info().trade_allowed is False
    request = deal(mt5, "EURUSD", BUY)
    assert_rejected(mt5.order_send(request), 10027, "AutoTrading disabled by client")
    assert mt5.positions_total() == 0
    env.driver.set_autotrading(True)
    assert mt5.order_send(request).retcode == DONE


# ------------------------------------------------------------------ pending orders


def _buy_limit(mt5: Any, distance: float = 0.005, **extra: Any) -> dict[str, Any]:
    ask = mt5.symbol_info_tick("EURUSD").ask
    request = {
        "action": PENDING,
        "symbol": "EURUSD",
        "volume": 0.1,
        "type": BUY_LIMIT,
        "price": round(ask - distance, 5),
        "magic": MAGIC,
        "comment": "pending",
        "type_time": 0,
        "type_filling": RETURN,
    }
    request.update(extra)
    return request


def test_pending_order_place_modify_remove(mt5: Any) -> None:
    """semantics 7.2/7.3/10: a placed pending order is 10009 with order=ticket, deal=0; it is
    listed by orders_get, modified by MODIFY, removed by REMOVE and then in history as
    cancelled (state 2)."""
    placed = mt5.order_send(_buy_limit(mt5))
    assert (placed.retcode, placed.deal) == (DONE, 0)
    assert placed.order > 0
    assert mt5.orders_total() == 1
    (order,) = mt5.orders_get(ticket=placed.order)
    assert type(order).__name__ == "TradeOrder"
    assert (order.type, order.state, order.magic, order.symbol) == (2, 1, MAGIC, "EURUSD")
    new_price = round(order.price_open - 0.001, 5)
    modify = {
        "action": MODIFY,
        "order": placed.order,
        "price": new_price,
        "sl": 0.0,
        "tp": 0.0,
        "type_time": 0,
    }
    assert mt5.order_send(modify).retcode == DONE
    assert mt5.orders_get(ticket=placed.order)[0].price_open == new_price
    removed = mt5.order_send({"action": REMOVE, "order": placed.order})
    assert removed.retcode == DONE
    assert mt5.orders_total() == 0
    (history,) = mt5.history_orders_get(ticket=placed.order)
    assert (history.state, history.position_id) == (2, 0)


def test_modify_without_changes_is_10025(mt5: Any) -> None:
    """semantics 7.3, pitfall C7: a MODIFY with unchanged values answers 10025 'No changes'."""
    placed = mt5.order_send(_buy_limit(mt5))
    order = mt5.orders_get(ticket=placed.order)[0]
    same = {
        "action": MODIFY,
        "order": placed.order,
        "price": order.price_open,
        "sl": order.sl,
        "tp": order.tp,
        "type_time": order.type_time,
    }
    assert_rejected(mt5.order_send(same), 10025, "No changes")


def test_pending_order_on_the_wrong_side_is_invalid_price(mt5: Any) -> None:
    """semantics 7.4 (9): a BUY_LIMIT above the ask gives 10015 'Invalid price'."""
    result = mt5.order_send(_buy_limit(mt5, distance=-0.005))
    assert_rejected(result, 10015, "Invalid price")


def test_orders_get_filters(mt5: Any) -> None:
    """semantics 10: orders_get by symbol, group mask and ticket."""
    placed = mt5.order_send(_buy_limit(mt5))
    assert [o.ticket for o in mt5.orders_get(symbol="EURUSD")] == [placed.order]
    assert [o.ticket for o in mt5.orders_get(group="*EUR*")] == [placed.order]
    assert mt5.orders_get(group="*JPY*") == ()
    assert mt5.orders_get(symbol="GBPUSD") == ()


# ------------------------------------------------------------------ SL/TP


def test_sltp_modify_and_no_changes(mt5: Any) -> None:
    """semantics 7.3: SLTP replaces both levels; the same levels again give 10025."""
    opened = open_position(mt5)
    bid = mt5.symbol_info_tick("EURUSD").bid
    sl, tp = round(bid - 0.005, 5), round(bid + 0.005, 5)
    request = {"action": SLTP, "symbol": "EURUSD", "position": opened.order, "sl": sl, "tp": tp}
    assert mt5.order_send(request).retcode == DONE
    (position,) = mt5.positions_get(ticket=opened.order)
    assert (position.sl, position.tp) == (sl, tp)
    assert_rejected(mt5.order_send(request), 10025, "No changes")


def test_positions_get_filters(mt5: Any) -> None:
    """semantics 10: positions_get by symbol, group and ticket; empty is ()."""
    eur = open_position(mt5)
    jpy = open_position(mt5, "USDJPY")
    assert mt5.positions_total() == 2
    assert [p.ticket for p in mt5.positions_get(symbol="EURUSD")] == [eur.order]
    assert [p.ticket for p in mt5.positions_get(group="*JPY*")] == [jpy.order]
    assert {p.ticket for p in mt5.positions_get(group="*,!*JPY*")} == {eur.order}
    assert mt5.positions_get(symbol="GBPUSD") == ()


# ------------------------------------------------------------------ history


def _round_trip(env: Any, mt5: Any) -> tuple[Any, Any]:
    opened = open_position(mt5)
    env.step(60)
    env.push_tick("EURUSD", 1.20000, 1.20012)  # far above the entry: a winning buy
    closed = mt5.order_send(deal(mt5, "EURUSD", SELL, position=opened.order, comment="out"))
    assert closed.retcode == DONE
    return opened, closed


def test_history_orders_after_a_round_trip(env: Any, mt5: Any) -> None:
    """semantics 7.5: a market deal leaves a history order in state FILLED (4), with
    time_done set, the position id, reason 3 (Python API), magic and comment."""
    opened, closed = _round_trip(env, mt5)
    (order,) = mt5.history_orders_get(ticket=opened.order)
    assert (order.state, order.type, order.position_id) == (4, 0, opened.order)
    assert (order.reason, order.magic, order.comment) == (3, MAGIC, "contract")
    assert order.time_done > 0
    (close_order,) = mt5.history_orders_get(ticket=closed.order)
    assert (close_order.state, close_order.type, close_order.position_id) == (4, 1, opened.order)
    by_position = mt5.history_orders_get(position=opened.order)
    assert sorted(o.ticket for o in by_position) == sorted([opened.order, closed.order])


def test_history_deals_after_a_round_trip(env: Any, mt5: Any) -> None:
    """semantics 7.5: deals IN (0) then OUT (1), reason 3, magic carried, linked to their
    orders and the position; profit only on the exit."""
    opened, closed = _round_trip(env, mt5)
    deals = mt5.history_deals_get(position=opened.order)
    assert [d.entry for d in deals] == [0, 1]
    assert [d.order for d in deals] == [opened.order, closed.order]
    assert [d.ticket for d in deals] == [opened.deal, closed.deal]
    assert {d.reason for d in deals} == {3}
    assert {d.magic for d in deals} == {MAGIC}
    assert [d.comment for d in deals] == ["contract", "out"]
    assert deals[0].profit == 0.0
    assert deals[1].profit > 0
    assert deals[0].time <= deals[1].time


def test_history_deals_ticket_is_the_order_ticket(env: Any, mt5: Any) -> None:
    """semantics 10, pitfall C9: history_deals_get(ticket=T) returns deals whose order == T."""
    opened, _closed = _round_trip(env, mt5)
    deals = mt5.history_deals_get(ticket=opened.order)
    assert [(d.ticket, d.order) for d in deals] == [(opened.deal, opened.order)]


def test_history_by_dates_and_group(env: Any, mt5: Any) -> None:
    """semantics 10, 5.1: history_deals_get(from, to, group=...) on the server clock, and the
    *_total functions count the same range."""
    opened, _closed = _round_trip(env, mt5)
    start, end = env.now_s() - 3600, env.now_s() + 60
    deals = mt5.history_deals_get(start, end)
    trade_deals = [d for d in deals if d.symbol == "EURUSD"]
    assert len(trade_deals) == 2
    assert all(start <= d.time <= end for d in deals)
    assert mt5.history_deals_total(start, end) == len(deals)
    assert [d.symbol for d in mt5.history_deals_get(start, end, group="*USD*")] == [
        "EURUSD",
        "EURUSD",
    ]
    assert mt5.history_deals_get(start, end, group="*,!*USD*") == tuple(
        d for d in deals if "USD" not in d.symbol
    )
    orders = mt5.history_orders_get(start, end)
    assert mt5.history_orders_total(start, end) == len(orders)
    assert opened.order in {o.ticket for o in orders}


def test_history_range_before_any_trade_is_empty(env: Any, mt5: Any) -> None:
    """pitfall B6: an empty history range is (), not None."""
    _round_trip(env, mt5)
    start = env.now_s() - 10 * 86400
    assert mt5.history_orders_get(start, start + 60) == ()
    assert mt5.history_deals_get(start, start + 60, group="*USD*") == ()


def test_history_get_needs_one_of_the_three_forms(mt5: Any) -> None:
    """semantics 3: history_*_get takes (from, to), or ticket= alone, or position= alone."""
    assert mt5.history_deals_get() is None
    assert mt5.last_error()[0] == -2
    assert mt5.history_orders_get() is None
    assert mt5.last_error()[0] == -2


# ------------------------------------------------------------------ margin and profit


def test_order_calc_margin_converts_to_the_account_currency(env: Any, mt5: Any) -> None:
    """semantics 9.2: EURUSD buy 0.1 at 1.0991, leverage 100: 100 EUR = 109.91 USD;
    USDJPY 0.1 lot: 100 USD."""
    env.push_tick("EURUSD", 1.09900, 1.09910)
    assert mt5.order_calc_margin(BUY, "EURUSD", 0.1, 1.0991) == pytest.approx(109.91)
    usdjpy = mt5.symbol_info_tick("USDJPY").ask
    assert mt5.order_calc_margin(BUY, "USDJPY", 0.1, usdjpy) == pytest.approx(100.0)


def test_order_calc_profit_eurusd(mt5: Any) -> None:
    """semantics 9.2: EURUSD 1 lot over 300 points is 300.0 USD either way."""
    assert mt5.order_calc_profit(BUY, "EURUSD", 1.0, 1.1, 1.103) == pytest.approx(300.0)
    assert mt5.order_calc_profit(SELL, "EURUSD", 1.0, 1.103, 1.1) == pytest.approx(300.0)
    assert mt5.order_calc_profit(BUY, "EURUSD", 1.0, 1.103, 1.1) == pytest.approx(-300.0)


def test_order_calc_profit_usdjpy_uses_the_close_price(mt5: Any) -> None:
    """semantics 9.2: USDJPY 1 lot over 300 points = 30000 JPY / close price in USD."""
    profit = mt5.order_calc_profit(BUY, "USDJPY", 1.0, 108.18, 108.48)
    assert profit == pytest.approx(30000 / 108.48, rel=1e-3)


def test_trading_records_have_plain_field_types(
    env: Any, mt5: Any, surface: dict[str, Any]
) -> None:
    """surface.json namedtuple_field_types, semantics 12 (5): positions, orders, deals and
    results carry plain int/float/str values (an IntEnum would print ``<DealEntry.IN: 0>``)."""
    plain = {"int": int, "float": float, "bool": bool, "str": str}
    opened = open_position(mt5)
    placed = mt5.order_send(_buy_limit(mt5))
    records = [
        opened,
        placed,
        *mt5.positions_get(),
        *mt5.orders_get(),
        *mt5.history_orders_get(ticket=opened.order),
        *mt5.history_deals_get(ticket=opened.order),
    ]
    wrong = set()
    for record in records:
        name = type(record).__name__
        for field, kind in surface["namedtuple_field_types"][name].items():
            value = getattr(record, field)
            if kind in plain and type(value) is not plain[kind]:
                wrong.add(f"{name}.{field}: {type(value).__name__}")
    assert sorted(wrong) == []
