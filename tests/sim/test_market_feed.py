"""Live feed of the market engine: determinism, sessions, flags, listeners, push_tick."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest

from mt5gate.sim.clock import VirtualClock, server_ms
from mt5gate.sim.errors import SimError
from mt5gate.sim.market import TICKS_DTYPE, Market, TickArray, default_catalogue

MONDAY_8 = server_ms(2026, 1, 5, 8)


def _market(start: int = MONDAY_8, **kw: int) -> tuple[Market, VirtualClock]:
    """The in-memory market alone (reads from 0 mean "everything"; the deep past before it
    is tests/sim/test_deep_history.py's)."""
    clock = VirtualClock(start)
    return Market(default_catalogue(), clock, deep_history_from_s=None, **kw), clock


def _live(market: Market, symbol: str, start: int, end: int) -> TickArray:
    return market.copy_ticks_range(symbol, start // 1000, end // 1000, -1)


def test_same_seed_same_steps_same_ticks() -> None:
    a, ca = _market(seed=7)
    b, cb = _market(seed=7)
    for clock in (ca, cb):
        clock.advance(600)
    ta = _live(a, "EURUSD", MONDAY_8, ca.now_ms())
    tb = _live(b, "EURUSD", MONDAY_8, cb.now_ms())
    assert len(ta) > 100
    assert np.array_equal(ta, tb)


def test_ticks_do_not_depend_on_step_size() -> None:
    a, ca = _market()
    b, cb = _market()
    ca.advance(900)
    a.sync()
    for _ in range(90):
        cb.advance(10)
        b.sync()
    end = ca.now_ms() // 1000
    assert np.array_equal(
        a.copy_ticks_range("GBPUSD", MONDAY_8 // 1000, end, -1),
        b.copy_ticks_range("GBPUSD", MONDAY_8 // 1000, end, -1),
    )


def test_different_seed_differs() -> None:
    a, ca = _market(seed=1)
    b, cb = _market(seed=2)
    ca.advance(300)
    cb.advance(300)
    assert not np.array_equal(
        _live(a, "EURUSD", MONDAY_8, ca.now_ms()), _live(b, "EURUSD", MONDAY_8, cb.now_ms())
    )


def _weekday(ms: np.ndarray) -> set[int]:
    return {datetime.fromtimestamp(int(t) / 1000, UTC).weekday() for t in ms}


def test_no_forex_ticks_at_weekends_but_crypto_trades() -> None:
    friday = server_ms(2026, 1, 9, 20)
    market, clock = _market(friday, history_days=3)
    clock.set(server_ms(2026, 1, 12, 2))
    market.sync()
    fx = market.copy_ticks_range("EURUSD", friday // 1000, clock.now_ms() // 1000, -1)
    assert fx.size
    assert _weekday(fx["time_msc"]) <= {0, 4}
    assert not market.is_open("EURUSD", server_ms(2026, 1, 10, 12))
    btc = market.copy_ticks_range("BTCUSD", friday // 1000, clock.now_ms() // 1000, -1)
    assert {5, 6} <= _weekday(btc["time_msc"])
    assert market.is_open("BTCUSD", server_ms(2026, 1, 10, 12))


def test_index_daily_break_and_stock_hours() -> None:
    market, clock = _market(server_ms(2026, 1, 5, 0))
    clock.set(server_ms(2026, 1, 6, 2))
    market.sync()
    ticks = market.copy_ticks_range(
        "US500",
        server_ms(2026, 1, 5, 23, 15) // 1000,
        server_ms(2026, 1, 5, 23, 29) // 1000 + 59,
        -1,
    )
    assert len(ticks) == 0
    assert not market.is_open("US500", server_ms(2026, 1, 5, 23, 20))
    assert market.is_open("US500", server_ms(2026, 1, 5, 23, 40))
    aapl = market.copy_ticks_range(
        "AAPL", server_ms(2026, 1, 5) // 1000, clock.now_ms() // 1000, -1
    )
    minutes = (aapl["time"] % 86400) // 60
    assert minutes.min() >= 990
    assert minutes.max() < 1380


def test_flags_spread_and_rounding() -> None:
    market, clock = _market()
    clock.advance(1800)
    for name in ("EURUSD", "USDJPY", "XAUUSD"):
        spec = market.spec(name)
        assert spec is not None
        ticks = _live(market, name, MONDAY_8, clock.now_ms())
        assert set(np.unique(ticks["flags"])) <= {2, 4, 6}
        spread = np.rint((ticks["ask"] - ticks["bid"]) / spec.point)
        assert spread.min() >= 1
        assert abs(np.median(spread) - spec.spread_points) <= 0.3 * spec.spread_points + 1
        assert np.allclose(ticks["bid"], np.round(ticks["bid"], spec.digits))
        assert (ticks["last"] == 0).all()
        assert (ticks["volume"] == 0).all()
        assert (np.diff(ticks["time_msc"]) >= 0).all()
        assert (ticks["time"] == ticks["time_msc"] // 1000).all()


def test_stock_ticks_carry_trades() -> None:
    market, clock = _market(server_ms(2026, 1, 5, 17))
    clock.advance(600)
    ticks = market.copy_ticks_range(
        "AAPL", server_ms(2026, 1, 5, 17) // 1000, clock.now_ms() // 1000, 2
    )
    assert len(ticks) > 10
    assert ((ticks["flags"] & 24) == 24).all()
    assert ((ticks["last"] >= ticks["bid"]) & (ticks["last"] <= ticks["ask"])).all()
    assert (ticks["volume"] >= 1).all()
    rates = market.copy_rates_from_pos("AAPL", 1, 0, 5, 1000)
    assert rates["real_volume"][-1] > 0


def test_listeners_get_minute_slices_in_time_order() -> None:
    market, clock = _market()
    seen: list[tuple[str, int, int, int]] = []
    market.add_listener(
        lambda s, t: seen.append((s, int(t["time_msc"][0]), int(t["time_msc"][-1]), len(t)))
    )
    clock.advance(3600)
    market.sync()
    assert seen
    order = {s.name: i for i, s in enumerate(market.symbols())}
    keys = [(first // 60_000, order[s]) for s, first, _, _ in seen]
    assert keys == sorted(keys)
    assert all(first // 60_000 == last // 60_000 for _, first, last, _ in seen)
    total = sum(n for s, *_, n in seen if s == "EURUSD")
    assert total == len(_live(market, "EURUSD", MONDAY_8, clock.now_ms()))
    count = len(seen)
    market.sync()
    assert len(seen) == count


def test_sync_catches_up_days_of_ticks() -> None:
    """A two-day jump is generated in one sync (its speed is measured in bench/, not here)."""
    market, clock = _market()
    market.sync()
    before = len(_live(market, "EURUSD", 0, clock.now_ms()))
    clock.advance(2 * 86400)
    market.sync()
    after = len(_live(market, "EURUSD", 0, clock.now_ms()))
    assert after - before > 10_000


def test_push_tick_moves_price_and_process_continues() -> None:
    market, clock = _market()
    got: list[TickArray] = []
    market.add_listener(lambda s, t: got.append(t) if s == "EURUSD" else None)
    clock.advance(5)
    tick = market.push_tick("EURUSD", 1.2)
    assert tick.bid == 1.2
    assert tick.ask == pytest.approx(1.20012)
    assert tick.time_msc == clock.now_ms()
    assert tick.flags & 6 == 6
    assert market.last_tick("EURUSD") == tick
    assert got[-1]["bid"][0] == 1.2
    same = market.push_tick("EURUSD", 1.2, 1.2001, last=1.2, volume=3)
    assert same.flags == 4 | 8 | 16
    assert same.volume == 3
    clock.advance(60)
    after = market.last_tick("EURUSD")
    assert after is not None
    assert abs(after.bid - 1.2) < 0.01
    with pytest.raises(SimError) as err:
        market.push_tick("NOPE", 1.0)
    assert err.value.code == -1


def test_last_tick_none_without_history_before_first_tick() -> None:
    market, clock = _market(history_days=0)
    assert market.last_tick("EURUSD") is None
    assert market.book("EURUSD") == ()
    clock.advance(60)
    assert market.last_tick("EURUSD") is not None


def test_last_tick_before_live_is_last_history_close() -> None:
    market, _ = _market()
    tick = market.last_tick("EURUSD")
    assert tick is not None
    assert tick.bid == 1.08512
    assert tick.time_msc < MONDAY_8
    assert market.spec("NOPE") is None
    assert [s.name for s in market.symbols()][:2] == ["EURUSD", "GBPUSD"]
    assert np.zeros(0, TICKS_DTYPE).dtype == TICKS_DTYPE


def test_a_market_started_late_in_a_minute_has_its_ticks_up_to_now() -> None:
    """The history ends at the start of the start's minute and the walks begin there: the
    rest of that minute has live ticks (before, the newest tick at start was the history's last,
    up to two minutes old, and ``mt5gate health`` warned of a stale BTCUSD on a fresh start).
    They are the past: no listener hears of them. The ticks are those of a market started at
    the minute's start."""
    late = MONDAY_8 + 59_500
    market, clock = _market(late)
    heard: list[str] = []
    market.add_listener(lambda s, t: heard.append(s))
    for symbol in ("EURUSD", "BTCUSD", "XAUUSD"):
        spec = market.spec(symbol)
        tick = market.last_tick(symbol)
        assert spec is not None
        assert tick is not None
        assert MONDAY_8 <= tick.time_msc <= late, symbol
        assert late - tick.time_msc < 10 * spec.mean_tick_interval_ms, symbol
    market.sync()
    assert heard == []
    early, early_clock = _market(MONDAY_8)
    early_clock.advance(59.5)
    for spec in market.symbols():
        assert np.array_equal(
            _live(market, spec.name, MONDAY_8, late), _live(early, spec.name, MONDAY_8, late)
        ), spec.name
    clock.advance(30)
    market.sync()
    assert "EURUSD" in heard  # what comes after the start is news
