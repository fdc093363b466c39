"""The deep past (issue 18): bars and ticks for dates years back, made lazily a day at a time,
deterministic, consistent with each other, joined to the in-memory history, bounded in memory."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest

from mt5gate.constants import Timeframe
from mt5gate.sim import SimConfig
from mt5gate.sim.clock import VirtualClock, server_ms
from mt5gate.sim.errors import SimError
from mt5gate.sim.market import Market, RateArray, default_catalogue
from mt5gate.sim.market.bars import aggregate, ticks_to_m1

START = server_ms(2026, 1, 5, 8)  # a Monday morning
MAX = 100_000
DAY = 86_400
FRIDAY = int(datetime(2020, 1, 10, tzinfo=UTC).timestamp())  # the official examples' date
SYMBOLS = ("EURUSD", "BTCUSD")  # forex (weekdays) and a 24/7 symbol


def _market(**options: object) -> Market:
    specs = [s for s in default_catalogue() if s.name in SYMBOLS]
    clock = VirtualClock(START)
    market = Market(specs, clock, history_days=2, **options)  # type: ignore[arg-type]
    clock.advance(600)
    return market


@pytest.fixture(scope="module")
def market() -> Market:
    return _market()


@pytest.mark.parametrize("symbol", SYMBOLS)
def test_rates_and_ticks_on_the_docs_date(market: Market, symbol: str) -> None:
    """2020-01-10 has M1 bars, H4 bars and ticks, as on a real demo server."""
    m1 = market.copy_rates_range(symbol, 1, FRIDAY, FRIDAY + DAY - 1, MAX)
    assert len(m1) > 1400
    assert (np.diff(m1["time"]) > 0).all()
    h4 = market.copy_rates_from(symbol, int(Timeframe.H4), FRIDAY, 10, MAX)
    assert len(h4) == 10
    assert h4["time"][-1] == FRIDAY
    ticks = market.copy_ticks_from(symbol, FRIDAY, 1000, -1)
    assert len(ticks) == 1000
    assert ticks["time_msc"][0] >= FRIDAY * 1000
    ranged = market.copy_ticks_range(symbol, FRIDAY, FRIDAY + DAY, -1)
    assert len(ranged) > 1000
    assert np.array_equal(ranged[:1000], ticks)


def test_same_answer_twice_and_across_instances(market: Market) -> None:
    """Every chunk is a pure function of (seed, symbol, day, anchor)."""
    other = _market()
    for m in (market, other):
        m.deep_cache.clear()
    first = market.copy_rates_range("EURUSD", 1, FRIDAY, FRIDAY + DAY, MAX)
    again = market.copy_rates_range("EURUSD", 1, FRIDAY, FRIDAY + DAY, MAX)
    assert np.array_equal(first, again)
    assert np.array_equal(first, other.copy_rates_range("EURUSD", 1, FRIDAY, FRIDAY + DAY, MAX))
    ticks = market.copy_ticks_range("BTCUSD", FRIDAY, FRIDAY + 3600, -1)
    assert np.array_equal(ticks, other.copy_ticks_range("BTCUSD", FRIDAY, FRIDAY + 3600, -1))


@pytest.mark.parametrize("symbol", SYMBOLS)
def test_ticks_agree_with_their_bars(market: Market, symbol: str) -> None:
    """Aggregating a deep minute's ticks gives its M1 bar back (open, high, low, close)."""
    bars = market.copy_rates_range(symbol, 1, FRIDAY + 3600, FRIDAY + 3 * 3600 - 1, MAX)
    ticks = market.copy_ticks_range(symbol, FRIDAY + 3600, FRIDAY + 3 * 3600, -1)
    ticks = ticks[ticks["time"] < FRIDAY + 3 * 3600]
    spec = market.spec(symbol)
    assert spec is not None
    rebuilt = ticks_to_m1(ticks, spec.point)
    assert np.array_equal(rebuilt["time"], bars["time"])
    for field in ("open", "high", "low", "close", "tick_volume", "spread"):
        assert np.array_equal(rebuilt[field], bars[field]), field


def test_weekends_have_no_forex_bars(market: Market) -> None:
    saturday = FRIDAY + DAY
    assert len(market.copy_rates_range("EURUSD", 1, saturday, saturday + 2 * DAY - 1, MAX)) == 0
    assert len(market.copy_ticks_range("EURUSD", saturday, saturday + DAY, -1)) == 0
    assert len(market.copy_rates_range("BTCUSD", 1, saturday, saturday + DAY - 1, MAX)) == 1440


@pytest.mark.parametrize("symbol", SYMBOLS)
def test_bars_join_at_the_in_memory_history(market: Market, symbol: str) -> None:
    """The last deep bar closes where the first in-memory bar opens; a day split by that
    boundary is one D1 bar; times keep increasing across it."""
    deep = market.deep(symbol)
    assert deep is not None
    t0 = deep.t0
    m1 = market.copy_rates_range(symbol, 1, t0 - 5 * DAY, t0 + DAY, MAX)
    at = int(np.searchsorted(m1["time"], t0))
    assert at > 0
    assert m1["time"][at] == t0
    assert m1["close"][at - 1] == m1["open"][at]
    assert (np.diff(m1["time"]) > 0).all()
    assert (m1["open"][1:] == m1["close"][:-1]).mean() > 0.99  # a continuous path
    d1 = market.copy_rates_range(symbol, int(Timeframe.D1), t0 - 5 * DAY, t0 + DAY, MAX)
    assert (np.diff(d1["time"]) > 0).all()
    split = d1[d1["time"] == t0 - t0 % DAY]
    day = m1[(m1["time"] >= t0 - t0 % DAY) & (m1["time"] < t0 - t0 % DAY + DAY)]
    assert split["high"][0] == day["high"].max()
    assert split["low"][0] == day["low"].min()
    assert split["tick_volume"][0] == day["tick_volume"].sum()


FRAMES = [Timeframe.M5, Timeframe.M12, Timeframe.H1, Timeframe.H4, Timeframe.D1, Timeframe.W1,
          Timeframe.MN1]  # fmt: skip


@pytest.mark.parametrize("tf", FRAMES, ids=[t.name for t in FRAMES])
def test_higher_timeframes_aggregate_m1_across_the_join(market: Market, tf: Timeframe) -> None:
    """Bars above M1 spanning deep and in-memory minutes are the aggregation of those M1."""
    deep = market.deep("EURUSD")
    assert deep is not None
    now = START // 1000 + 600
    bars = market.copy_rates_range("EURUSD", int(tf), deep.t0 - 10 * DAY, now, MAX)
    m1 = market.copy_rates_range("EURUSD", 1, int(bars["time"][0]), now, MAX)
    assert (np.diff(bars["time"]) > 0).all()
    assert bars["tick_volume"].sum() == m1["tick_volume"].sum()
    assert bars["open"][0] == m1["open"][0]
    assert bars["close"][-1] == m1["close"][-1]
    assert bars["high"].max() == m1["high"].max()
    assert bars["low"].min() == m1["low"].min()


def _continuous(bars: RateArray) -> bool:
    return bool((np.diff(bars["time"]) > 0).all())


def test_copy_rates_from_pos_reaches_the_deep_past(market: Market) -> None:
    """Counting back from now goes on past the in-memory history, up to maxbars."""
    m1 = market.copy_rates_from_pos("EURUSD", 1, 0, 20_000, MAX)
    assert len(m1) == 20_000
    assert _continuous(m1)
    h1 = market.copy_rates_from_pos("EURUSD", int(Timeframe.H1), 100, 5_000, MAX)
    assert len(h1) == 5_000
    assert _continuous(h1)
    assert h1["time"][0] < START // 1000 - 200 * DAY
    capped = market.copy_rates_from_pos("EURUSD", 1, 15_000, 10_000, 20_000)
    assert len(capped) == 5_000  # positions 15,000 to 19,999: a chart holds maxbars bars
    assert np.array_equal(capped, m1[:5_000])
    mn1 = market.copy_rates_from_pos("EURUSD", int(Timeframe.MN1), 0, 14, MAX)
    assert len(mn1) == 14
    assert mn1["time"][0] == int(datetime(2024, 12, 1, tzinfo=UTC).timestamp())


def test_the_depth_is_an_option() -> None:
    """Nothing before ``deep_history_from_s``; None turns the deep past off."""
    jan_2019 = int(datetime(2019, 1, 1, tzinfo=UTC).timestamp())
    shallow = _market(deep_history_from_s=jan_2019)
    assert len(shallow.copy_rates_range("EURUSD", 1, FRIDAY, FRIDAY + DAY, MAX)) > 0
    before = shallow.copy_rates_range("EURUSD", int(Timeframe.D1), 0, jan_2019 + 5 * DAY, MAX)
    assert before["time"][0] == jan_2019  # a Tuesday: the first day there are bars
    assert shallow.copy_rates_from("EURUSD", 1, jan_2019 - 1, 10, MAX).size == 0
    off = _market(deep_history_from_s=None)
    assert len(off.copy_rates_range("EURUSD", 1, FRIDAY, FRIDAY + DAY, MAX)) == 0
    assert len(off.copy_ticks_range("EURUSD", FRIDAY, FRIDAY + DAY, -1)) == 0


def test_the_cache_stays_bounded() -> None:
    """Walking a year of M1 a week at a time keeps at most ``deep_cache_chunks`` days."""
    market = _market(deep_cache_chunks=16)
    for week in range(53):
        lo = FRIDAY + week * 7 * DAY
        assert len(market.copy_rates_range("BTCUSD", 1, lo, lo + 7 * DAY - 1, MAX)) == 7 * 1440
        assert len(market.deep_cache) <= 16
    assert len(market.deep_cache) == 16
    assert market.deep_cache.nbytes <= 16 * 1440 * 60


def test_a_range_beyond_maxbars_fails_before_making_the_days() -> None:
    """Years of M1 are more than maxbars: (-2) at once, and no day is made."""
    market = _market()
    jan_2010 = int(datetime(2010, 1, 1, tzinfo=UTC).timestamp())
    with pytest.raises(SimError) as err:
        market.copy_rates_range("EURUSD", 1, jan_2010, FRIDAY, MAX)
    assert err.value.code == -2
    assert len(market.deep_cache) == 0
    d1 = market.copy_rates_range("EURUSD", int(Timeframe.D1), jan_2010, jan_2010 + 60 * DAY, MAX)
    assert d1["time"][0] == jan_2010  # a Friday


def test_years_of_ticks_fail_as_out_of_memory() -> None:
    """A tick range from 1970 (all of the deep past) answers (-3) instead of building GBs."""
    market = _market()
    with pytest.raises(SimError) as err:
        market.copy_ticks_range("EURUSD", 0, START // 1000, -1)
    assert err.value.code == -3
    assert len(market.deep_cache) == 0


@pytest.mark.parametrize("tf", [Timeframe.H1, Timeframe.D1, Timeframe.W1, Timeframe.MN1],
                         ids=["H1", "D1", "W1", "MN1"])  # fmt: skip
def test_frames_from_cached_days_equal_the_m1_aggregation(tf: Timeframe) -> None:
    """Whole days of a frame come from the frame cache, the edge days from M1: the bars are
    exactly those aggregated from every M1 bar of the range, however the range is cut."""
    market = _market()
    deep = market.deep("EURUSD")
    assert deep is not None
    lo, hi = FRIDAY - 45 * DAY + 7_380, FRIDAY + 40 * DAY + 3_000  # both edges mid-day
    expected = aggregate(deep.m1(lo, hi), int(tf))[0]
    cold = deep.rates(int(tf), lo, hi)
    warm = deep.rates(int(tf), lo, hi)
    assert len(expected) > 1
    assert np.array_equal(cold, expected)
    assert np.array_equal(warm, expected)
    assert len(market.deep_frames) >= 80  # the whole days, one entry each


def test_years_of_daily_bars_are_made_once_and_the_frame_cache_is_bounded() -> None:
    """Sixteen years of D1 make every deep day once; the second read takes no M1 day at all,
    and a small byte bound keeps the frame cache small."""
    market = _market()
    jan_2010 = int(datetime(2010, 1, 1, tzinfo=UTC).timestamp())
    now = START // 1000
    first = market.copy_rates_range("EURUSD", int(Timeframe.D1), jan_2010, now, MAX)
    market.deep_cache.clear()
    again = market.copy_rates_range("EURUSD", int(Timeframe.D1), jan_2010, now, MAX)
    assert np.array_equal(first, again)
    assert len(first) > 16 * 250  # weekdays since 2010
    assert len(market.deep_cache) <= 2  # only the edge days were made from M1 again
    small = _market(deep_frame_cache_bytes=10_000)
    small.copy_rates_range("EURUSD", int(Timeframe.D1), jan_2010, jan_2010 + 400 * DAY, MAX)
    assert 0 < small.deep_frames.nbytes <= 10_000


def test_history_not_yet_downloaded_is_an_option() -> None:
    """Pitfalls B5 on demand: the first request into the deep past starts a "download" and
    gets only what is in memory (nothing, in 2020); after ``deep_download_s`` on the terminal's
    clock the same request answers in full. The default answers at once."""
    specs = [s for s in default_catalogue() if s.name in SYMBOLS]
    clock = VirtualClock(START)
    market = Market(specs, clock, history_days=2, deep_download_s=30)
    first = market.copy_rates_range("EURUSD", 1, FRIDAY, FRIDAY + DAY - 1, MAX)
    assert len(first) == 0  # downloading
    clock.advance(29)
    early = market.copy_ticks_from("EURUSD", FRIDAY, 10, -1)  # still downloading: the first
    assert early["time"][0] > START // 1000 - 3 * DAY  # ticks it has, those of the last days
    clock.advance(1)
    assert len(market.copy_rates_range("EURUSD", 1, FRIDAY, FRIDAY + DAY - 1, MAX)) > 1400
    assert market.copy_ticks_from("EURUSD", FRIDAY, 10, -1)["time"][0] < FRIDAY + DAY
    other = market.copy_rates_range("BTCUSD", 1, FRIDAY, FRIDAY + DAY - 1, MAX)
    assert len(other) == 0  # each symbol downloads its own history
    assert len(_market().copy_rates_range("EURUSD", 1, FRIDAY, FRIDAY + DAY - 1, MAX)) > 1400


def test_the_download_delay_must_be_positive() -> None:
    for bad in (0, -1.0, "5"):
        with pytest.raises(ValueError, match="deep_history_download_s"):
            SimConfig(deep_history_download_s=bad)  # type: ignore[arg-type]
