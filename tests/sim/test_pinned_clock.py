"""A real-time clock pinned to a start time (replay a weekday market on any day), server times
of datetimes, and what trades now by the simulator's own session schedule."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

from mt5gate.constants import TradeRetcode
from mt5gate.sim import RealClock, SimConfig, VirtualClock, server_ms
from mt5gate.sim.clock import server_ms_of
from mt5gate.sim.market import Market, TradingNow, default_catalogue
from mt5gate.sim.market.sessions import SessionMask
from mt5gate.sim.symbols import SessionWindow, forex_week
from mt5gate.sim.terminal import SimTerminal
from tests.sim.conftest import market_request

TUESDAY_10 = server_ms(2026, 1, 6, 10)
SATURDAY_12 = server_ms(2026, 1, 10, 12)
MINUTE = 60_000


def machine_server_ms() -> int:
    """The machine clock as the simulated broker shows it (UTC + 2 h)."""
    return time.time_ns() // 1_000_000 + 7_200_000


def test_a_pinned_clock_starts_at_its_time_and_runs_in_real_time() -> None:
    before = machine_server_ms()
    clock = RealClock(start_ms=TUESDAY_10)
    after = machine_server_ms()
    # when it was made it showed TUESDAY_10 (less than a second after), whatever today is
    assert TUESDAY_10 - after <= clock.shift_ms < TUESDAY_10 - before + 1000
    assert clock.shift_ms % 1000 == 0  # whole seconds: the machine's milliseconds are kept
    assert clock.pinned
    low = machine_server_ms()
    now, utc = clock.now_ms(), clock.utc_ms()
    high = machine_server_ms()
    assert low <= now - clock.shift_ms <= high  # the machine clock, shifted
    assert low <= utc + 7_200_000 - clock.shift_ms <= high
    assert f"start_ms={TUESDAY_10}" in repr(clock)


def test_an_unpinned_clock_is_the_machine_clock() -> None:
    clock = RealClock()
    assert not clock.pinned
    low = machine_server_ms()
    clock.resume(clock.now_ms() + 86_400_000)  # a state file from tomorrow: ignored
    now = clock.now_ms()
    assert low <= now <= machine_server_ms()
    assert clock.shift_ms == 0
    assert repr(clock) == "RealClock(utc_offset_s=7200)"


def test_a_pinned_clock_resumes_forward_only() -> None:
    clock = RealClock(start_ms=TUESDAY_10)
    shift = clock.shift_ms
    clock.resume(clock.now_ms() - 3_600_000)  # earlier: nothing moves back
    assert clock.shift_ms == shift
    saved = clock.now_ms() + 3_600_000
    clock.resume(saved)
    assert clock.now_ms() >= saved
    assert clock.shift_ms % 1000 == 0


def test_virtual_clocks_tell_their_utc_too() -> None:
    assert VirtualClock(TUESDAY_10).utc_ms() == TUESDAY_10 - 7_200_000


def test_server_ms_of_naive_and_aware_times() -> None:
    assert server_ms_of(datetime(2026, 1, 6, 10)) == TUESDAY_10  # server wall-clock time
    assert server_ms_of(datetime(2026, 1, 6, 8, tzinfo=UTC)) == TUESDAY_10  # an instant
    east = timezone(timedelta(hours=1))
    assert server_ms_of(datetime(2026, 1, 6, 9, tzinfo=east)) == TUESDAY_10
    assert server_ms_of(datetime(2026, 1, 6, 7, tzinfo=UTC), utc_offset_s=10_800) == TUESDAY_10


def test_a_pinned_simulator_trades_forex_and_restarts_where_it_stopped(tmp_path: Path) -> None:
    state = tmp_path / "sim.json"
    first = SimTerminal(SimConfig(history_days=1), clock=RealClock(start_ms=TUESDAY_10),
                        state_file=state)  # fmt: skip
    first.initialize()
    sent = first.order_send(market_request(first))
    assert sent is not None
    assert sent.retcode == TradeRetcode.DONE
    saved_ms = first.clock.now_ms() + 3_600_000
    first.clock.resume(saved_ms)  # an hour passes, then the state is saved
    first.save_state(state)
    again = SimTerminal(SimConfig(history_days=1), clock=RealClock(start_ms=TUESDAY_10),
                        state_file=state)  # fmt: skip
    assert again.clock.now_ms() >= saved_ms  # a restart never moves the broker's time back
    again.initialize()
    assert again.positions_total() == 1


def test_next_open_of_a_session_mask() -> None:
    forex = SessionMask(forex_week())
    assert forex.next_open(TUESDAY_10 + 123) == TUESDAY_10 + 123  # open: now
    assert forex.next_open(SATURDAY_12) == server_ms(2026, 1, 12, 0, 5)  # Monday 00:05
    assert forex.next_open(
        server_ms(
            2026,
            1,
            12,
            0,
            4,
        )
        + 59_999
    ) == server_ms(2026, 1, 12, 0, 5)
    sunday_only = SessionMask((SessionWindow(0, 600, 660),))
    assert sunday_only.next_open(TUESDAY_10) == server_ms(2026, 1, 11, 10)
    assert SessionMask(()).next_open(TUESDAY_10) is None


def test_what_trades_now_comes_from_the_schedule() -> None:
    market = Market(default_catalogue(), VirtualClock(SATURDAY_12), history_days=1)
    now = market.trading_now()
    assert isinstance(now, TradingNow)
    crypto = ("BTCUSD", "ETHUSD", "LTCUSD", "XRPUSD", "BCHUSD", "SOLUSD")
    assert now.open == crypto  # the crypto group trades around the clock
    assert now.opens_at["EURUSD"] == server_ms(2026, 1, 12, 0, 5)
    assert market.next_open("AAPL") == server_ms(2026, 1, 12, 16, 30)
    assert "BTCUSD" not in now.closed
    line = now.describe()
    assert line.startswith(
        "server time Sat 2026-01-10 12:00; open now: BTCUSD, ETHUSD, LTCUSD, XRPUSD, BCHUSD, "
        "SOLUSD; closed: EURUSD, GBPUSD, USDJPY, USDCHF, AUDUSD, USDCAD, EURJPY, GBPJPY, EURGBP, "
    )
    assert "USDNOK until Mon 00:05; XAUUSD, US500, " in line
    assert "JP225 until Mon 01:05; DE40, UK100 until Mon 03:15; AAPL, TSLA, " in line
    assert line.endswith(", XOM until Mon 16:30")
    tuesday = market.trading_now(TUESDAY_10)
    assert "EURUSD" in tuesday.open
    stocks = {s.name for s in default_catalogue() if s.category == "Stocks"}
    assert set(tuesday.closed) == stocks  # before the New York open


def test_a_symbol_that_never_trades_and_a_market_all_closed() -> None:
    quiet = SessionWindow(2, 0, 1)  # Tuesday 00:00 for a minute
    specs = tuple(s for s in default_catalogue() if s.name == "EURUSD")
    never = TradingNow(SATURDAY_12, (), {"NOPE": None})
    assert never.describe().endswith("open now: none; closed: NOPE")
    market = Market(specs, VirtualClock(SATURDAY_12), history_days=1)
    assert (
        market.trading_now().describe().endswith("open now: none; closed: EURUSD until Mon 00:05")
    )
    assert SessionMask((quiet,)).next_open(TUESDAY_10) == server_ms(2026, 1, 13)
    assert TradingNow(TUESDAY_10, ("EURUSD",)).describe().endswith("closed: none")
