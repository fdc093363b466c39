"""Bars and ticks: copy_rates_* / copy_ticks_* shapes, dtypes, ordering, limits and failures
(semantics 4, 6.1, 6.2; pitfalls B1, B2, B3, B6)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

M1, H1 = 1, 16385
INVALID_PARAMS = (-2, "Terminal: Invalid params")
CALL_FAILED = (-1, "Terminal: Call failed")
# Saturday 2026-01-03 00:00 .. Sunday 2026-01-04 12:00, server time: the forex market is shut.
WEEKEND = (1_767_398_400, 1_767_528_000)


@pytest.fixture
def rates_dtype(surface: dict[str, Any]) -> np.dtype[Any]:
    return np.dtype([tuple(f) for f in surface["numpy_dtypes"]["RATES_DTYPE"]])


@pytest.fixture
def ticks_dtype(surface: dict[str, Any]) -> np.dtype[Any]:
    return np.dtype([tuple(f) for f in surface["numpy_dtypes"]["TICKS_DTYPE"]])


def test_copy_rates_from_pos_shape_and_order(
    env: Any, mt5: Any, rates_dtype: np.dtype[Any]
) -> None:
    """semantics 6.2: count bars, RATES dtype, oldest first; position 0 is the forming bar,
    the one holding the newest tick."""
    env.step(30)
    bars = mt5.copy_rates_from_pos("EURUSD", M1, 0, 10)
    assert bars.dtype == rates_dtype
    assert bars.shape == (10,)
    times = bars["time"]
    assert np.all(np.diff(times) > 0)
    assert np.all(times % 60 == 0)
    newest = mt5.symbol_info_tick("EURUSD")
    assert times[-1] == newest.time // 60 * 60
    assert bars["close"][-1] == newest.bid


def test_bar_prices_are_consistent(mt5: Any) -> None:
    """semantics 6.2: each bar's low <= open, close <= high; spread in points >= 0."""
    bars = mt5.copy_rates_from_pos("EURUSD", H1, 0, 24)
    assert np.all(bars["low"] <= np.minimum(bars["open"], bars["close"]))
    assert np.all(bars["high"] >= np.maximum(bars["open"], bars["close"]))
    assert np.all(bars["spread"] >= 0)
    assert np.all(bars["time"] % 3600 == 0)


def test_copy_rates_from_pos_start_pos_counts_back(mt5: Any) -> None:
    """semantics 6.2: the result holds bars start_pos+count-1 down to start_pos."""
    recent = mt5.copy_rates_from_pos("EURUSD", H1, 0, 6)
    older = mt5.copy_rates_from_pos("EURUSD", H1, 1, 5)
    assert older["time"].tolist() == recent["time"][:-1].tolist()
    assert older["close"].tolist() == recent["close"][:-1].tolist()


def test_copy_rates_from_ends_at_or_before_date(env: Any, mt5: Any) -> None:
    """semantics 6.2: copy_rates_from gives count bars with open time <= date_from."""
    date_from = env.now_s() - 3 * 3600 - 1234
    bars = mt5.copy_rates_from("EURUSD", H1, date_from, 10)
    assert len(bars) == 10
    assert bars["time"][-1] <= date_from < bars["time"][-1] + 3600
    assert np.all(np.diff(bars["time"]) > 0)


def test_copy_rates_range_is_inclusive_at_both_ends(mt5: Any) -> None:
    """semantics 6.2: copy_rates_range returns bars with from <= time <= to."""
    bars = mt5.copy_rates_from_pos("EURUSD", M1, 5, 20)
    start, end = int(bars["time"][0]), int(bars["time"][-1])
    ranged = mt5.copy_rates_range("EURUSD", M1, start, end)
    assert ranged["time"][0] == start
    assert ranged["time"][-1] == end
    assert ranged["time"].tolist() == bars["time"].tolist()


def test_bars_follow_the_clock(env: Any, mt5: Any) -> None:
    """semantics 4: bars are stamped by the server clock; a minute later a new M1 bar forms."""
    before = mt5.copy_rates_from_pos("EURUSD", M1, 0, 1)["time"][0]
    env.step(60)
    after = mt5.copy_rates_from_pos("EURUSD", M1, 0, 1)["time"][0]
    assert after == before + 60


def test_too_many_bars_fails_without_partial_result(mt5: Any) -> None:
    """semantics 6.2, pitfall B2: count above terminal_info().maxbars gives None, (-2)."""
    maxbars = mt5.terminal_info().maxbars
    assert mt5.copy_rates_from_pos("EURUSD", M1, 0, maxbars + 1) is None
    assert mt5.last_error() == INVALID_PARAMS


@pytest.mark.parametrize("timeframe", [32768, 0, 7, 60])
def test_invalid_timeframe(mt5: Any, timeframe: int) -> None:
    """semantics 6.2, pitfall B3: a timeframe value that is not bit-coded gives (-2)."""
    assert mt5.copy_rates_from_pos("EURUSD", timeframe, 0, 10) is None
    assert mt5.last_error() == INVALID_PARAMS


@pytest.mark.parametrize(
    ("name", "args"),
    [
        ("copy_rates_from_pos", (M1, 0, 10)),
        ("copy_rates_from", (M1, 1_767_693_600, 10)),
        ("copy_rates_range", (M1, 1_767_690_000, 1_767_693_600)),
        ("copy_ticks_from", (1_767_690_000, 10, -1)),
        ("copy_ticks_range", (1_767_690_000, 1_767_693_600, -1)),
    ],
)
def test_unknown_symbol_is_call_failed(mt5: Any, name: str, args: tuple[Any, ...]) -> None:
    """semantics 5, pitfall B1: copy_* on an unknown symbol gives None, (-1)."""
    assert getattr(mt5, name)("NO_SUCH_SYMBOL", *args) is None
    assert mt5.last_error() == CALL_FAILED


def test_unselected_symbol_is_call_failed(mt5: Any) -> None:
    """semantics 5 [BOOK], pitfall B1: copy_* needs the symbol in Market Watch."""
    name = next(s.name for s in mt5.symbols_get() if not s.select)
    assert mt5.copy_rates_from_pos(name, M1, 0, 10) is None
    assert mt5.last_error() == CALL_FAILED
    assert mt5.symbol_select(name, True)
    assert len(mt5.copy_rates_from_pos(name, M1, 0, 10)) == 10


def test_empty_rates_range_is_empty_array(mt5: Any, rates_dtype: np.dtype[Any]) -> None:
    """pitfall B6: no bars in the range gives an empty array of the real dtype, not None."""
    bars = mt5.copy_rates_range("EURUSD", M1, *WEEKEND)
    assert bars is not None
    assert bars.shape == (0,)
    assert bars.dtype == rates_dtype
    assert mt5.last_error() == (1, "Success")


def test_empty_ticks_range_is_empty_array(mt5: Any, ticks_dtype: np.dtype[Any]) -> None:
    """semantics 6.1, pitfall B6: no ticks in the range gives an empty array, not None."""
    ticks = mt5.copy_ticks_range("EURUSD", *WEEKEND, -1)
    assert ticks is not None
    assert ticks.shape == (0,)
    assert ticks.dtype == ticks_dtype


def test_copy_ticks_from_shape_and_order(env: Any, mt5: Any, ticks_dtype: np.dtype[Any]) -> None:
    """semantics 6.1: the first count ticks with time_msc >= date_from*1000, oldest first."""
    start = env.now_s() - 1800
    ticks = mt5.copy_ticks_from("EURUSD", start, 50, -1)
    assert ticks.dtype == ticks_dtype
    assert len(ticks) == 50
    assert ticks["time_msc"][0] >= start * 1000
    assert np.all(np.diff(ticks["time_msc"]) >= 0)
    assert np.all(ticks["time"] == ticks["time_msc"] // 1000)
    assert np.all(ticks["bid"] < ticks["ask"])


def test_copy_ticks_range_stays_in_range(env: Any, mt5: Any) -> None:
    """semantics 6.1: copy_ticks_range returns the ticks between the two dates."""
    end = env.now_s() - 60
    start = end - 600
    ticks = mt5.copy_ticks_range("EURUSD", start, end, -1)
    assert len(ticks) > 0
    assert ticks["time_msc"][0] >= start * 1000
    assert ticks["time_msc"][-1] < (end + 1) * 1000
    later = mt5.copy_ticks_from("EURUSD", start, len(ticks), -1)
    assert later["time_msc"].tolist() == ticks["time_msc"].tolist()


def test_copy_ticks_info_flags(env: Any, mt5: Any) -> None:
    """semantics 6.1: COPY_TICKS_INFO keeps ticks where bid and/or ask changed."""
    ticks = mt5.copy_ticks_range("EURUSD", env.now_s() - 1800, env.now_s(), 1)
    assert len(ticks) > 0
    assert np.all(ticks["flags"] & (2 | 4))


def test_copy_ticks_trade_flags(env: Any, mt5: Any) -> None:
    """semantics 6.1: COPY_TICKS_TRADE keeps ticks where last and/or volume changed."""
    ticks = mt5.copy_ticks_range("EURUSD", env.now_s() - 1800, env.now_s(), 2)
    assert ticks is not None
    assert np.all(ticks["flags"] & (8 | 16))


def test_pushed_tick_appears_in_history(env: Any, mt5: Any) -> None:
    """semantics 4, 12 (7): one server clock stamps ticks and bars alike."""
    env.step(5)
    env.push_tick("EURUSD", 1.23456, 1.23468)
    ticks = mt5.copy_ticks_from("EURUSD", env.now_s(), 10, -1)
    assert (ticks["bid"][-1], ticks["ask"][-1]) == (1.23456, 1.23468)
    assert ticks["time"][-1] == env.now_s()
    bar = mt5.copy_rates_from_pos("EURUSD", M1, 0, 1)[0]
    assert bar["close"] == 1.23456
    assert bar["high"] >= 1.23456
