"""Order validation: every rule raises MT5ValidationError naming its field and its rule.

Pure functions, so most tests need no terminal; the symbol specification comes from the
simulator's catalogue (a real ``Symbol`` built from a real ``SymbolInfo``).
"""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from mt5gate.constants import OrderFilling
from mt5gate.errors import MT5ValidationError
from mt5gate.models import OrderKind, OrderRequest, Price, Side, Symbol
from mt5gate.session.validation import (
    COMMENT_MAX,
    DATE_MAX,
    DATE_MAX_MSC,
    DATE_MAX_S,
    DATE_MIN,
    MAGIC_MAX,
    TICKET_MAX,
    check_request,
    check_request_against,
    entry_price,
    require_close_volume,
    require_comment,
    require_date,
    require_deviation,
    require_epoch_msc,
    require_expiration,
    require_filling,
    require_kind,
    require_level,
    require_magic,
    require_price,
    require_side,
    require_stop_limit,
    require_stops,
    require_symbol_name,
    require_ticket,
    require_volume,
    require_volume_on_symbol,
)
from mt5gate.sim import SimConfig, VirtualClock
from mt5gate.sim.terminal import SimTerminal
from tests.session.conftest import TUESDAY_10, Harness

NOW = TUESDAY_10
BUY, SELL = Side.BUY, Side.SELL
QUOTE = Price("EURUSD", 1.10000, 1.10020, 0.0, 0, NOW, 6)


@pytest.fixture(scope="module")
def eurusd() -> Symbol:
    """EURUSD as the simulator specifies it: 0.01..100 lots, step 0.01."""
    sim = SimTerminal(SimConfig(history_days=1), clock=VirtualClock(NOW))
    assert sim.initialize()
    info = sim.symbol_info("EURUSD")
    sim.shutdown()
    assert info is not None
    return Symbol.from_record(info)


def fails(call: Any, *args: Any, **kwargs: Any) -> MT5ValidationError:
    """The validation error ``call(*args, **kwargs)`` raises."""
    with pytest.raises(MT5ValidationError) as caught:
        call(*args, **kwargs)
    return caught.value


def assert_rule(error: MT5ValidationError, field: str, rule_part: str) -> None:
    assert error.field == field
    assert rule_part in str(error.rule)
    assert field in str(error)
    assert "Fix the argument" in str(error)  # what to do


# ------------------------------------------------------------------------ scalar rules


@pytest.mark.parametrize("symbol", ["", "   ", None, 5, "X" * 65, "EUR\nUSD"])
def test_symbol_name(symbol: Any) -> None:
    assert fails(require_symbol_name, symbol).field == "symbol"


def test_symbol_name_ok() -> None:
    assert require_symbol_name("EURUSD.m") == "EURUSD.m"


@pytest.mark.parametrize("side", ["long", None, 0, OrderKind.MARKET])
def test_side(side: Any) -> None:
    assert_rule(fails(require_side, side), "side", "a Side")


def test_side_accepts_members_and_values() -> None:
    assert require_side(Side.SELL) is Side.SELL
    assert require_side("buy") is Side.BUY


@pytest.mark.parametrize("kind", ["limit_order", None, 1])
def test_kind(kind: Any) -> None:
    assert_rule(fails(require_kind, kind), "kind", "an OrderKind")


def test_kind_accepts_members_and_values() -> None:
    assert require_kind("stop_limit") is OrderKind.STOP_LIMIT


@pytest.mark.parametrize("volume", [0, -0.1, math.nan, math.inf, "0.1", None, True])
def test_volume(volume: Any) -> None:
    assert_rule(fails(require_volume, volume), "volume", "finite number of lots > 0")


def test_int_volume_becomes_float() -> None:
    volume = require_volume(2)
    assert (volume, type(volume)) == (2.0, float)


@pytest.mark.parametrize("value", [0, -1.0, math.nan, -math.inf, "1.1", True])
def test_price(value: Any) -> None:
    assert_rule(fails(require_price, value, "tp"), "tp", "finite price > 0")


def test_int_price_becomes_float() -> None:
    assert type(require_price(2)) is float


def test_level_accepts_zero_to_remove() -> None:
    assert require_level(0, "sl") == 0.0
    assert require_level(1.1, "sl") == 1.1
    assert_rule(fails(require_level, -1.0, "sl"), "sl", "or 0 to remove")
    assert_rule(fails(require_level, math.nan, "tp"), "tp", "or 0 to remove")


@pytest.mark.parametrize("deviation", [-1, 1.5, "10", None, True])
def test_deviation(deviation: Any) -> None:
    assert_rule(fails(require_deviation, deviation), "deviation", "an int >= 0")


def test_deviation_ok() -> None:
    assert require_deviation(0) == 0


def test_comment_length_and_type() -> None:
    assert require_comment("x" * COMMENT_MAX) == "x" * COMMENT_MAX
    assert_rule(fails(require_comment, "x" * (COMMENT_MAX + 1)), "comment", "at most 31")
    assert_rule(fails(require_comment, 42), "comment", "a str")


@pytest.mark.parametrize("magic", [-1, MAGIC_MAX + 1, 1.0, "7", None, False])
def test_magic(magic: Any) -> None:
    assert_rule(fails(require_magic, magic), "magic", "0..2**64-1")


def test_magic_bounds_ok() -> None:
    assert require_magic(0) == 0
    assert require_magic(MAGIC_MAX) == MAGIC_MAX


@pytest.mark.parametrize("filling", [4, -1, 1.0, "IOC", True])
def test_filling(filling: Any) -> None:
    assert_rule(fails(require_filling, filling), "filling", "OrderFilling")


def test_filling_ok() -> None:
    assert require_filling(None) is None
    assert require_filling(1) is OrderFilling.IOC
    assert require_filling(OrderFilling.RETURN) is OrderFilling.RETURN


@pytest.mark.parametrize("ticket", [0, -5, 1.0, "12", None, True, TICKET_MAX + 1, 10**20])
def test_ticket(ticket: Any) -> None:
    assert_rule(fails(require_ticket, ticket), "ticket", "an int > 0")


def test_numbers_too_large_for_a_float_are_refused_by_name() -> None:
    assert_rule(fails(require_volume, 10**400), "volume", "a finite number of lots")
    assert_rule(fails(require_price, -(10**400), "sl"), "sl", "a finite price")
    assert_rule(fails(require_level, 10**400, "tp"), "tp", "a finite price")


def test_ticket_ok() -> None:
    assert require_ticket(TICKET_MAX) == TICKET_MAX


def test_expiration() -> None:
    assert require_expiration(NOW + 1, NOW) == NOW + 1
    assert require_expiration(DATE_MAX_MSC, NOW) == DATE_MAX_MSC
    assert_rule(fails(require_expiration, NOW, NOW), "expiration_msc", "in the future")
    assert_rule(fails(require_expiration, 1.5e12, NOW), "expiration_msc", "an int")
    for huge in (DATE_MAX_MSC + 1, 10**23, 2**64):
        assert_rule(fails(require_expiration, huge, NOW), "expiration_msc", "up to 3000-12-31")


@pytest.mark.parametrize("value", [-1, 1e23, True, None, "0", float("nan")])
def test_epoch_msc(value: Any) -> None:
    assert_rule(fails(require_epoch_msc, value), "expiration_msc", "epoch ms")


# MT5's datetime runs from 1970-01-01 to 3000-12-31; outside it a date is refused by name.
@pytest.mark.parametrize(
    "value",
    [-1, DATE_MAX_S + 1, 10**20, 1e23, float("inf"), float("nan"), True, "0", None,
     datetime(1, 1, 1), datetime(1969, 12, 31, tzinfo=UTC), datetime(3001, 1, 1, tzinfo=UTC),
     datetime(9999, 12, 31, 23, tzinfo=timezone(timedelta(hours=-5)))],
)  # fmt: skip
def test_dates_out_of_range(value: Any) -> None:
    assert_rule(fails(require_date, value, "date_to"), "date_to", "1970-01-01 to 3000-12-31")


def test_dates_in_range() -> None:
    for value in (0, DATE_MAX_S, 1.7e9, DATE_MIN, DATE_MAX, datetime(2026, 1, 6, 10)):
        assert require_date(value, "date_from") is value
    assert DATE_MAX_S == 32_535_215_999


# ------------------------------------------------------------------------ relations


def test_stop_limit_side() -> None:
    require_stop_limit(BUY, 1.2, 1.1)
    require_stop_limit(SELL, 1.1, 1.2)
    assert_rule(fails(require_stop_limit, BUY, 1.2, 1.3), "stop_limit", "below price")
    assert_rule(fails(require_stop_limit, SELL, 1.2, 1.1), "stop_limit", "above price")
    assert_rule(fails(require_stop_limit, BUY, 1.2, 1.2), "stop_limit", "below price")


@pytest.mark.parametrize(
    ("side", "sl", "tp", "field", "rule"),
    [
        (BUY, 1.2, None, "sl", "below the entry"),
        (BUY, None, 1.0, "tp", "above the entry"),
        (SELL, 1.0, None, "sl", "above the entry"),
        (SELL, None, 1.2, "tp", "below the entry"),
        (BUY, 1.1, None, "sl", "below the entry"),  # equal to the entry
    ],
)
def test_stops_side(side: Side, sl: float | None, tp: float | None, field: str, rule: str) -> None:
    assert_rule(fails(require_stops, side, 1.1, sl, tp), field, rule)


def test_stops_ok() -> None:
    require_stops(BUY, 1.1, 1.0, 1.2)
    require_stops(SELL, 1.1, 1.2, 1.0)
    require_stops(BUY, 1.1, None, None)
    require_stops(BUY, 1.1, 0.0, 0.0)  # 0 means no level


@pytest.mark.parametrize(
    ("volume", "rule"),
    [(0.001, "within 0.01..100.0"), (100.01, "within 0.01..100.0"), (0.015, "volume_step 0.01")],
)
def test_volume_on_symbol(eurusd: Symbol, volume: float, rule: str) -> None:
    assert_rule(fails(require_volume_on_symbol, volume, eurusd), "volume", rule)


def test_volume_on_symbol_tolerates_float_noise(eurusd: Symbol) -> None:
    assert require_volume_on_symbol(0.1 * 3, eurusd) == pytest.approx(0.3)
    assert require_volume_on_symbol(100.0, eurusd) == 100.0
    assert require_volume_on_symbol(0.01, eurusd) == 0.01
    lots = replace(eurusd, volume_min=1.0, volume_max=1000.0, volume_step=1.0)
    assert require_volume_on_symbol(999.0, lots) == 999.0
    assert_rule(fails(require_volume_on_symbol, 999.5, lots), "volume", "volume_step 1.0")


def test_close_volume(eurusd: Symbol) -> None:
    assert require_close_volume(0.2, 0.3, eurusd) == 0.2
    assert require_close_volume(1, 1.0, eurusd) == 1.0
    assert_rule(fails(require_close_volume, 0.31, 0.3, eurusd), "volume", "at most the position")
    assert_rule(fails(require_close_volume, None, 0.3, eurusd), "volume", "lots > 0")


# ------------------------------------------------------------------------ whole requests


def request(**changes: Any) -> OrderRequest:
    return replace(OrderRequest("EURUSD", BUY, 0.1), **changes)


def test_check_request_normalises() -> None:
    raw = request(
        volume=1, side="sell", kind="limit", price=2, sl=3, tp=1, filling=2, magic=5, comment="c"
    )
    checked = check_request(raw)
    assert (checked.volume, type(checked.volume), checked.price, type(checked.price)) == (
        1.0,
        float,
        2.0,
        float,
    )
    assert (checked.side, checked.kind, checked.filling) == (
        Side.SELL,
        OrderKind.LIMIT,
        OrderFilling.RETURN,
    )


@pytest.mark.parametrize(
    ("changes", "field", "rule"),
    [
        ({"symbol": ""}, "symbol", "non-empty"),
        ({"side": "up"}, "side", "a Side"),
        ({"kind": "iceberg"}, "kind", "an OrderKind"),
        ({"volume": math.nan}, "volume", "finite"),
        ({"price": -1.0}, "price", "finite price > 0"),
        ({"sl": math.inf}, "sl", "finite price > 0"),
        ({"tp": 0.0}, "tp", "finite price > 0"),
        ({"stop_limit": 0}, "stop_limit", "finite price > 0"),
        ({"deviation": -3}, "deviation", "an int >= 0"),
        ({"filling": 7}, "filling", "OrderFilling"),
        ({"comment": "y" * 40}, "comment", "at most 31"),
        ({"magic": 2**64}, "magic", "0..2**64-1"),
        ({"kind": OrderKind.LIMIT}, "price", "given for a limit order"),
        ({"kind": OrderKind.STOP}, "price", "given for a stop order"),
        ({"kind": OrderKind.STOP_LIMIT, "price": 1.2}, "stop_limit", "given for a stop_limit"),
        (
            {"kind": OrderKind.STOP_LIMIT, "price": 1.2, "stop_limit": 1.3},
            "stop_limit",
            "below price",
        ),
        (
            {"side": SELL, "kind": OrderKind.STOP_LIMIT, "price": 1.0, "stop_limit": 0.9},
            "stop_limit",
            "above price",
        ),
        ({"stop_limit": 1.1}, "stop_limit", "None unless kind is stop_limit"),
        ({"expiration_msc": NOW + 1000}, "expiration_msc", "None for market orders"),
        (
            {"kind": OrderKind.LIMIT, "price": 1.0, "expiration_msc": "tomorrow"},
            "expiration_msc",
            "an int",
        ),
        (
            {"kind": OrderKind.LIMIT, "price": 1.0, "expiration_msc": 10**23},
            "expiration_msc",
            "up to 3000-12-31",
        ),
    ],
)
def test_check_request_rules(changes: dict[str, Any], field: str, rule: str) -> None:
    assert_rule(fails(check_request, request(**changes)), field, rule)


def test_check_request_needs_an_order_request() -> None:
    assert_rule(fails(check_request, {"symbol": "EURUSD"}), "request", "an OrderRequest")


def test_entry_price() -> None:
    assert entry_price(request(), QUOTE) == QUOTE.ask
    assert entry_price(request(side=SELL), QUOTE) == QUOTE.bid
    assert entry_price(request(price=1.05), QUOTE) == 1.05
    stop_limit = request(kind=OrderKind.STOP_LIMIT, price=1.2, stop_limit=1.15)
    assert entry_price(stop_limit, QUOTE) == 1.15


@pytest.mark.parametrize(
    ("changes", "field", "rule"),
    [
        ({"volume": 0.105}, "volume", "volume_step"),
        ({"volume": 500.0}, "volume", "within"),
        ({"sl": 1.1003}, "sl", "below the entry price for a buy"),  # above the ask
        ({"side": SELL, "sl": 1.0999}, "sl", "above the entry price for a sell"),  # below the bid
        ({"side": SELL, "tp": 1.1001}, "tp", "below the entry price for a sell"),
        ({"kind": OrderKind.LIMIT, "price": 1.09, "tp": 1.08}, "tp", "above the entry"),
        (
            {"kind": OrderKind.STOP_LIMIT, "price": 1.12, "stop_limit": 1.11, "sl": 1.115},
            "sl",
            "below the entry",
        ),
        (
            {"kind": OrderKind.LIMIT, "price": 1.09, "expiration_msc": NOW},
            "expiration_msc",
            "in the future",
        ),
    ],
)
def test_check_request_against_symbol_and_quote(
    eurusd: Symbol, changes: dict[str, Any], field: str, rule: str
) -> None:
    checked = check_request(request(**changes))
    assert_rule(fails(check_request_against, checked, eurusd, QUOTE), field, rule)


def test_check_request_against_passes(eurusd: Symbol) -> None:
    good = [
        request(sl=1.09, tp=1.11),
        request(side=SELL, sl=1.11, tp=1.09),
        request(kind=OrderKind.LIMIT, price=1.09, sl=1.08, tp=1.1, expiration_msc=NOW + 60_000),
    ]
    for item in good:
        check_request_against(check_request(item), eurusd, QUOTE)


# ------------------------------------------------------------------------ in the session


def test_values_mt5_cannot_hold_are_refused_before_any_terminal_call(harness: Harness) -> None:
    """Every terminal call would fail now (an IPC fault on all of them): each of these must be
    an MT5ValidationError naming its argument, and the fault must never fire."""
    session, huge = harness.session, 10**20
    fault = harness.terminal.faults.ipc_error(None, times=None)
    limit = request(kind=OrderKind.LIMIT, price=1.0, expiration_msc=10**23)
    calls = [
        (session.history_deals(0, huge), "date_to"),
        (session.history_orders(datetime(1, 1, 1), 0), "date_from"),
        (session.get_rates("EURUSD", 1, date_from=huge), "date_from"),
        (session.get_rates("EURUSD", 1, date_from=0, date_to=huge), "date_to"),
        (session.get_ticks("EURUSD", -5, count=3), "date_from"),
        (session.get_ticks("EURUSD", 0, date_to=float("inf")), "date_to"),
        (session.place_order(limit, idempotency_key="too-late"), "expiration_msc"),
        (session.modify_order(7, expiration_msc=huge), "expiration_msc"),
        (session.cancel_order(2**64), "ticket"),
    ]
    for call, field in calls:
        with pytest.raises(MT5ValidationError) as caught:
            harness.run(call)
        assert caught.value.field == field
    assert harness.terminal.faults.fired(fault) == 0
