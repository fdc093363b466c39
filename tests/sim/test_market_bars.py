"""Bars and the copy_* functions: consistency with ticks, alignment, limits, failure codes."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest

from mt5gate.constants import Timeframe
from mt5gate.sim.clock import VirtualClock, server_ms
from mt5gate.sim.errors import SimError
from mt5gate.sim.market import (
    RATES_DTYPE,
    TICKS_DTYPE,
    Market,
    RateArray,
    TickArray,
    default_catalogue,
)
from mt5gate.sim.market.bars import ticks_to_m1

MONDAY_8 = server_ms(2026, 1, 5, 8)
MAX = 100_000


@pytest.fixture(scope="module")
def market() -> Market:
    clock = VirtualClock(MONDAY_8)
    # The 10-day in-memory history alone (the deep past: tests/sim/test_deep_history.py).
    m = Market(default_catalogue(), clock, history_days=10, deep_history_from_s=None)
    clock.advance(4 * 3600 + 17)
    m.sync()
    return m


def _code(call: object) -> int:
    assert callable(call)
    with pytest.raises(SimError) as err:
        call()
    return err.value.code


def _check_against_ticks(bars: RateArray, ticks: TickArray, point: float) -> None:
    rebuilt = ticks_to_m1(ticks, point)
    assert np.array_equal(rebuilt["time"], bars["time"])
    for field in ("open", "high", "low", "close", "tick_volume", "spread"):
        assert np.array_equal(rebuilt[field], bars[field]), field


def test_history_bars_equal_aggregation_of_their_ticks(market: Market) -> None:
    start = server_ms(2026, 1, 2, 10) // 1000
    bars = market.copy_rates_range("EURUSD", 1, start, start + 3 * 3600 - 1, MAX)
    ticks = market.copy_ticks_range("EURUSD", start, start + 3 * 3600, -1)
    ticks = ticks[ticks["time"] < start + 3 * 3600]
    assert len(bars) == 180
    _check_against_ticks(bars, ticks, 1e-5)
    assert (bars["high"] >= np.maximum(bars["open"], bars["close"])).all()
    assert (bars["low"] <= np.minimum(bars["open"], bars["close"])).all()
    assert (bars["spread"] >= 1).all()
    assert (bars["tick_volume"] >= 4).all()


def test_live_bars_equal_aggregation_of_their_ticks(market: Market) -> None:
    start, end = MONDAY_8 // 1000, MONDAY_8 // 1000 + 4 * 3600 + 17
    bars = market.copy_rates_range("GBPJPY", 1, start, end, MAX)
    ticks = market.copy_ticks_range("GBPJPY", start, end, -1)
    _check_against_ticks(bars, ticks, 1e-3)


def test_history_ends_at_initial_price(market: Market) -> None:
    bars = market.copy_rates_from("XAUUSD", 1, MONDAY_8 // 1000 - 1, 1, MAX)
    assert bars["close"][0] == 2034.55
    assert bars["time"][0] < MONDAY_8 // 1000


def test_no_history_bars_at_weekend(market: Market) -> None:
    sat = server_ms(2026, 1, 3) // 1000
    assert len(market.copy_rates_range("EURUSD", 1, sat, sat + 2 * 86400 - 1, MAX)) == 0
    assert len(market.copy_rates_range("BTCUSD", 1, sat, sat + 2 * 86400 - 1, MAX)) == 2 * 1440


ALL = list(Timeframe)


@pytest.mark.parametrize("tf", ALL, ids=[t.name for t in ALL])
def test_every_timeframe_is_aligned_and_consistent(market: Market, tf: Timeframe) -> None:
    bars = market.copy_rates_from_pos("EURUSD", int(tf), 0, 5000, MAX)
    m1 = market.copy_rates_from_pos("EURUSD", 1, 0, 50_000, MAX)
    assert bars.dtype == RATES_DTYPE
    assert len(bars) >= 1
    assert (np.diff(bars["time"]) > 0).all()
    moments = [datetime.fromtimestamp(int(t), UTC) for t in bars["time"]]
    for m in moments:
        assert m.second == 0
        if tf < 16385:
            assert (m.hour * 60 + m.minute) % int(tf) == 0
        elif tf < 32769:
            assert m.minute == 0
            assert m.hour % (int(tf) - 16384) == 0
        elif tf == Timeframe.W1:
            assert (m.hour, m.minute, m.weekday()) == (0, 0, 6)
        else:
            assert (m.day, m.hour, m.minute) == (1, 0, 0)
    m1 = m1[m1["time"] >= bars["time"][0]]
    assert bars["tick_volume"].sum() == m1["tick_volume"].sum()
    assert bars["close"][-1] == m1["close"][-1]
    assert bars["open"][0] == m1["open"][0]
    assert bars["high"].max() == m1["high"].max()
    assert bars["low"].min() == m1["low"].min()


def test_forming_bar_grows_with_the_clock() -> None:
    clock = VirtualClock(MONDAY_8)
    m = Market(default_catalogue()[:1], clock, history_days=1)
    first = m.copy_rates_from_pos("EURUSD", 16385, 0, 2, MAX)
    clock.advance(1800)
    second = m.copy_rates_from_pos("EURUSD", 16385, 0, 2, MAX)
    assert second["time"][-1] == MONDAY_8 // 1000
    assert first["time"][-1] == MONDAY_8 // 1000 - 3600 or first["time"][-1] == MONDAY_8 // 1000
    clock.advance(3600)
    third = m.copy_rates_from_pos("EURUSD", 16385, 0, 3, MAX)
    assert third["time"][-2] == MONDAY_8 // 1000
    assert third["tick_volume"][-2] >= second["tick_volume"][-1]


def test_copy_rates_from_semantics(market: Market) -> None:
    at = server_ms(2026, 1, 2, 12) // 1000
    bars = market.copy_rates_from("EURUSD", int(Timeframe.H4), at, 10, MAX)
    assert len(bars) == 10
    assert bars["time"][-1] == at
    bars = market.copy_rates_from("EURUSD", int(Timeframe.H4), at + 1, 3, MAX)
    assert bars["time"][-1] == at
    assert len(market.copy_rates_from("EURUSD", 1, 0, 5, MAX)) == 0


def test_copy_rates_from_pos_semantics(market: Market) -> None:
    all_m5 = market.copy_rates_from_pos("EURUSD", 5, 0, MAX, MAX)
    two = market.copy_rates_from_pos("EURUSD", 5, 1, 2, MAX)
    assert np.array_equal(two, all_m5[-3:-1])
    tail = market.copy_rates_from_pos("EURUSD", 5, len(all_m5) - 1, 10, MAX)
    assert np.array_equal(tail, all_m5[:1])
    assert _code(lambda: market.copy_rates_from_pos("EURUSD", 5, len(all_m5), 1, MAX)) == -1
    assert _code(lambda: market.copy_rates_from_pos("EURUSD", 5, -1, 1, MAX)) == -2


def test_copy_rates_range_inclusive(market: Market) -> None:
    a = server_ms(2026, 1, 2, 10) // 1000
    bars = market.copy_rates_range("EURUSD", 15, a, a + 3600, MAX)
    assert bars["time"][0] == a
    assert bars["time"][-1] == a + 3600
    assert len(bars) == 5
    assert len(market.copy_rates_range("EURUSD", 15, a + 10, a, MAX)) == 0


def test_failure_codes(market: Market) -> None:
    assert _code(lambda: market.copy_rates_from("NOPE", 1, 0, 1, MAX)) == -1
    assert _code(lambda: market.copy_ticks_from("NOPE", 0, 1, -1)) == -1
    assert _code(lambda: market.copy_rates_from("EURUSD", 32768, 0, 1, MAX)) == -2
    assert _code(lambda: market.copy_rates_from("EURUSD", 7, 0, 1, MAX)) == -2
    assert _code(lambda: market.copy_rates_from("EURUSD", 1, 2**40, MAX + 1, MAX)) == -2
    assert _code(lambda: market.copy_rates_from_pos("EURUSD", 1, 0, 0, MAX)) == -2
    assert _code(lambda: market.copy_rates_range("EURUSD", 1, 0, 2**40, 1000)) == -2
    assert _code(lambda: market.copy_ticks_range("EURUSD", 0, 1, 3)) == -2
    assert _code(lambda: market.is_open("NOPE")) == -1


def test_maxbars_is_a_hard_limit(market: Market) -> None:
    assert len(market.copy_rates_from_pos("EURUSD", 1, 0, 1000, 1000)) == 1000
    assert _code(lambda: market.copy_rates_from_pos("EURUSD", 1, 0, 1001, 1000)) == -2
    assert _code(lambda: market.copy_rates_from_pos("EURUSD", 1, 1000, 1, 1000)) == -1


def test_copy_ticks_from(market: Market) -> None:
    start = server_ms(2026, 1, 2, 10, 30) // 1000
    ticks = market.copy_ticks_from("EURUSD", start, 500, -1)
    assert ticks.dtype == TICKS_DTYPE
    assert len(ticks) == 500
    assert ticks["time_msc"][0] >= start * 1000
    assert (np.diff(ticks["time_msc"]) >= 0).all()
    same = market.copy_ticks_range("EURUSD", start, int(ticks["time"][-1]) + 1, -1)
    assert np.array_equal(same[:500], ticks)
    assert len(market.copy_ticks_from("EURUSD", start, 100, 2)) == 0
    assert len(market.copy_ticks_from("EURUSD", start, 100, 1)) == 100
    assert len(market.copy_ticks_from("EURUSD", start, 0, -1)) == 0
    assert len(market.copy_ticks_from("EURUSD", 2**33, 10, -1)) == 0


def test_copy_ticks_from_crosses_into_live(market: Market) -> None:
    start = MONDAY_8 // 1000 - 120
    ticks = market.copy_ticks_from("EURUSD", start, 200, -1)
    assert len(ticks) == 200
    assert ticks["time_msc"][0] < MONDAY_8 <= ticks["time_msc"][-1]


def test_copy_ticks_range_end_is_inclusive(market: Market) -> None:
    live = market.copy_ticks_range("EURUSD", MONDAY_8 // 1000, MONDAY_8 // 1000 + 600, -1)
    t = next(int(ms) for ms in live["time_msc"] if ms % 1000)  # a tick inside a second
    first = t // 1000
    got = market.copy_ticks_range("EURUSD", first, first, -1)
    assert all(got["time_msc"] <= first * 1000)
