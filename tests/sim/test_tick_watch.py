"""The simulator's ``TickWatch`` extension (every tick after a cursor, and when the next is due)
and its tick pace (``SimConfig.ticks_per_s``), on virtual clocks."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest

from mt5gate.constants import SymbolCalcMode
from mt5gate.records import Tick
from mt5gate.sim import SimConfig, SymbolSpec, VirtualClock, server_ms
from mt5gate.sim.market import Market, default_catalogue
from mt5gate.sim.market.feed import arrival_mean_ms
from mt5gate.sim.terminal import SimTerminal
from mt5gate.terminal.base import TickBatch, TickWatch
from tests.sim.conftest import LOGIN, PASSWORD, SERVER, TUESDAY_10

SATURDAY_12 = server_ms(2026, 1, 10, 12)
MONDAY_0005 = server_ms(2026, 1, 12, 0, 5)
PAIR = ("EURUSD", "GBPUSD")


def _cursor(tick: Tick) -> tuple[int, int]:
    return tick.time_msc, 1


def _read_all(sim: SimTerminal, cursors: dict[str, tuple[int, int]]) -> TickBatch:
    """One ``ticks_after`` call; the cursors move past what it returned (as the session's
    reader moves them)."""
    batch = sim.ticks_after(tuple((s, *c) for s, c in cursors.items()), 1000)
    assert batch is not None, sim.last_error()
    for symbol, tick in batch.ticks:
        at, seen = cursors[symbol]
        cursors[symbol] = (at, seen + 1) if tick.time_msc == at else (tick.time_msc, 1)
    return batch


def _start(sim: SimTerminal) -> dict[str, tuple[int, int]]:
    cursors = {}
    for symbol in PAIR:
        tick = sim.symbol_info_tick(symbol)
        assert tick is not None
        cursors[symbol] = _cursor(tick)
    return cursors


def test_the_simulator_is_a_tick_watch_and_a_none_member_opts_out(sim: SimTerminal) -> None:
    class Polled(SimTerminal):
        ticks_after = None  # type: ignore[assignment]

    assert isinstance(sim, TickWatch)
    assert not isinstance(Polled(), TickWatch)


def test_reading_from_cursors_hands_over_every_tick_once_in_time_order(sim: SimTerminal) -> None:
    cursors = _start(sim)
    start_ms = sim.clock.now_ms()
    got: list[tuple[str, Tick]] = []
    for _ in range(40):  # uneven steps, some with no tick at all
        sim.step(ms=1_700)
        got += _read_all(sim, cursors).ticks
    end_ms = sim.clock.now_ms()
    for symbol in PAIR:
        mine = [tick for name, tick in got if name == symbol]
        recorded = sim.copy_ticks_range(symbol, start_ms // 1000, end_ms // 1000 + 1, -1)
        assert recorded is not None
        expected = [Tick(row) for row in recorded.tolist() if row[5] > start_ms]
        assert mine == expected
        assert len(mine) > 10
    times = [tick.time_msc for _, tick in got]
    assert times == sorted(times)


def test_ticks_sharing_a_millisecond_are_each_handed_over_once(sim: SimTerminal) -> None:
    cursors = _start(sim)
    first = sim.market.push_tick("EURUSD", 1.1001)
    second = sim.market.push_tick("EURUSD", 1.1002)  # the same virtual millisecond
    assert first.time_msc == second.time_msc
    batch = _read_all(sim, cursors)
    assert [tick for _, tick in batch.ticks] == [first, second]
    assert cursors["EURUSD"] == (first.time_msc, 2)
    third = sim.market.push_tick("EURUSD", 1.1003)
    assert [tick for _, tick in _read_all(sim, cursors).ticks] == [third]
    assert _read_all(sim, cursors).ticks == ()


def test_due_s_is_when_the_next_tick_comes(sim: SimTerminal) -> None:
    cursors = _start(sim)
    for _ in range(20):
        due = _read_all(sim, cursors).due_s
        assert due is not None
        assert due > 0
        step = round(due * 1000)
        if step > 1:
            sim.step(ms=step - 1)
            assert _read_all(sim, cursors).ticks == ()  # one millisecond early: nothing yet
            sim.step(ms=1)
        else:
            sim.step(ms=step)
        assert len(_read_all(sim, cursors).ticks) >= 1  # due now: it is there


def test_count_caps_each_symbol_and_says_more_are_waiting(sim: SimTerminal) -> None:
    cursors = _start(sim)
    sim.step(120)
    batch = sim.ticks_after(tuple((s, *c) for s, c in cursors.items()), 5)
    assert batch is not None
    assert batch.due_s == 0.0
    for symbol in PAIR:
        mine = [tick for name, tick in batch.ticks if name == symbol]
        assert len(mine) == 5
        assert mine[0].time_msc > cursors[symbol][0]  # the oldest after the cursor first


def test_a_closed_market_is_due_at_its_opening() -> None:
    clock = VirtualClock(SATURDAY_12)
    sim = SimTerminal(SimConfig(history_days=1), clock=clock)
    assert sim.initialize(login=LOGIN, password=PASSWORD, server=SERVER)
    cursors = _start(sim)
    batch = _read_all(sim, cursors)
    assert batch.ticks == ()
    assert batch.due_s == pytest.approx((MONDAY_0005 - SATURDAY_12) / 1000)


def test_no_tick_while_the_link_is_down_and_none_is_due(sim: SimTerminal) -> None:
    cursors = _start(sim)
    sim.set_connected(False)
    sim.step(30)
    assert _read_all(sim, cursors) == TickBatch((), None)
    sim.set_connected(True)
    assert len(_read_all(sim, cursors).ticks) > 0  # what came meanwhile, oldest first


def test_it_fails_as_symbol_info_tick_does(sim: SimTerminal) -> None:
    assert sim.ticks_after((("AUDNZD", 0, 0),), 10) is None  # not in Market Watch
    assert sim.last_error() == (-1, "Terminal: Call failed")
    assert sim.ticks_after((("NOSUCH", 0, 0),), 10) is None
    assert sim.last_error() == (-1, "Terminal: Call failed")
    sim.faults.ipc_error("symbol_info_tick", -10002, times=1)
    assert sim.ticks_after((("EURUSD", 0, 0),), 10) is None
    assert sim.last_error() == (-10002, "IPC recv failed")
    assert sim.ticks_after((("EURUSD", 0, 0),), 10) is not None
    sim.shutdown()
    assert sim.ticks_after((("EURUSD", 0, 0),), 10) is None
    assert sim.last_error()[0] == -10004


@pytest.mark.parametrize(
    ("cursors", "count", "field"),
    [
        ((), 10, "cursors"),
        ("EURUSD", 10, "cursors"),
        ((("EURUSD", 0),), 10, "cursors"),
        ((("EURUSD", -1, 0),), 10, "cursors"),
        ((("EURUSD", 0, True),), 10, "cursors"),
        (((1, 0, 0),), 10, "cursors"),
        ((("EURUSD", 0, 0),), 0, "count"),
        ((("EURUSD", 0, 0),), 2.0, "count"),
    ],
)
def test_bad_arguments_name_the_argument(
    sim: SimTerminal, cursors: object, count: object, field: str
) -> None:
    assert sim.ticks_after(cursors, count) is None  # type: ignore[arg-type]
    assert sim.last_error() == (-2, f'Invalid "{field}" argument')


# ------------------------------------------------------------------------------------ pace


def _live_ticks(market: Market, clock: VirtualClock, seconds: int) -> dict[str, int]:
    clock.advance(seconds)
    market.sync()
    start = market.start_ms
    return {
        s.name: len(market.copy_ticks_range(s.name, start // 1000 + 1, clock.now_ms() // 1000, -1))
        for s in market.symbols()
    }


def _traded(names: tuple[str, ...]) -> tuple[SymbolSpec, ...]:
    """The catalogue's ``names`` as exchange instruments: every arrival is a tick (a trade),
    none is dropped for leaving bid and ask as they were."""
    return tuple(
        replace(s, trade_calc_mode=SymbolCalcMode.EXCH_STOCKS)
        for s in default_catalogue()
        if s.name in names
    )


def test_ticks_per_s_sets_the_market_pace_in_proportion() -> None:
    specs = _traded((*PAIR, "USDJPY", "XAUUSD"))
    clock = VirtualClock(TUESDAY_10)
    market = Market(specs, clock, history_days=1, deep_history_from_s=None, ticks_per_s=400.0)
    counts = _live_ticks(market, clock, 120)
    assert sum(counts.values()) / 119 == pytest.approx(400, rel=0.03)
    own = {s.name: 1000 / s.mean_tick_interval_ms for s in specs}
    for name, made in counts.items():  # each symbol keeps its share of the pace
        assert made / 119 == pytest.approx(400 * own[name] / sum(own.values()), rel=0.08)


def test_quote_ticks_that_change_nothing_are_no_ticks_at_any_pace() -> None:
    """A forex arrival that leaves bid and ask as they were is dropped, as without a pace:
    at a fast pace, where a step moves the price by less than a point, more of them are."""
    specs = tuple(s for s in default_catalogue() if s.name in PAIR)
    clock = VirtualClock(TUESDAY_10)
    market = Market(specs, clock, history_days=1, deep_history_from_s=None, ticks_per_s=400.0)
    made = sum(_live_ticks(market, clock, 120).values()) / 119
    assert 0.8 * 400 < made < 400


def test_without_a_pace_every_symbol_keeps_its_own() -> None:
    specs = tuple(s for s in default_catalogue() if s.name in PAIR)
    clock_a, clock_b = VirtualClock(TUESDAY_10), VirtualClock(TUESDAY_10)
    a = Market(specs, clock_a, history_days=1, deep_history_from_s=None)
    b = Market(specs, clock_b, history_days=1, deep_history_from_s=None, ticks_per_s=None)
    assert _live_ticks(a, clock_a, 600) == _live_ticks(b, clock_b, 600)
    fast = (replace(_traded(PAIR)[0], mean_tick_interval_ms=50),)
    clock_c = VirtualClock(TUESDAY_10)
    c = Market(fast, clock_c, history_days=1, deep_history_from_s=None, ticks_per_s=20.0)
    assert _live_ticks(c, clock_c, 100)["EURUSD"] / 99 == pytest.approx(20, rel=0.1)


def test_a_pace_leaves_the_history_alone() -> None:
    plain = SimTerminal(SimConfig(history_days=1), clock=VirtualClock(TUESDAY_10))
    paced = SimTerminal(SimConfig(history_days=1, ticks_per_s=1000), clock=VirtualClock(TUESDAY_10))
    for sim in (plain, paced):
        assert sim.initialize(login=LOGIN, password=PASSWORD, server=SERVER)
    a = plain.copy_rates_range("EURUSD", 1, (TUESDAY_10 - 86_400_000) // 1000, TUESDAY_10 // 1000)
    b = paced.copy_rates_range("EURUSD", 1, (TUESDAY_10 - 86_400_000) // 1000, TUESDAY_10 // 1000)
    assert a is not None
    assert b is not None
    assert len(a) > 1000
    assert np.array_equal(a, b)


@pytest.mark.parametrize("bad", [0, -5, math.nan, math.inf])
def test_a_pace_must_be_a_positive_finite_number(bad: float) -> None:
    with pytest.raises(ValueError, match=r"SimConfig\.ticks_per_s"):
        SimConfig(ticks_per_s=bad)


@pytest.mark.parametrize("bad", ["fast", True])
def test_a_pace_must_be_a_number(bad: object) -> None:
    with pytest.raises(TypeError, match=r"SimConfig\.ticks_per_s"):
        SimConfig(ticks_per_s=bad)  # type: ignore[arg-type]


def test_a_pace_beyond_a_tick_per_millisecond_per_symbol_is_refused() -> None:
    specs = tuple(s for s in default_catalogue() if s.name == "EURUSD")
    with pytest.raises(ValueError, match=r"ticks_per_s = 2000 would tick EURUSD every 0\.50 ms"):
        Market(specs, VirtualClock(TUESDAY_10), ticks_per_s=2000.0)


def test_the_gap_draw_mean_makes_whole_millisecond_gaps_average_the_interval() -> None:
    rng = np.random.default_rng(3)
    for interval in (1.5, 5.0, 40.0):
        gaps = np.maximum(1, np.ceil(rng.exponential(arrival_mean_ms(interval), 400_000)))
        assert gaps.mean() == pytest.approx(interval, rel=0.01)
    with pytest.raises(ValueError, match="exceed 1 ms"):
        arrival_mean_ms(1.0)


def test_ticks_do_not_depend_on_syncing_every_millisecond() -> None:
    """A feed with nothing due answers at once; the ticks stay those of one big step."""
    specs = tuple(s for s in default_catalogue() if s.name in PAIR)
    clock_a, clock_b = VirtualClock(TUESDAY_10), VirtualClock(TUESDAY_10)
    a = Market(specs, clock_a, history_days=1, deep_history_from_s=None, ticks_per_s=50.0)
    b = Market(specs, clock_b, history_days=1, deep_history_from_s=None, ticks_per_s=50.0)
    clock_a.advance(20)
    a.sync()
    for _ in range(20_000):
        clock_b.advance(ms=1)
        b.sync()
    for symbol in PAIR:
        start, end = TUESDAY_10 // 1000, clock_a.now_ms() // 1000
        assert np.array_equal(
            a.copy_ticks_range(symbol, start, end, -1), b.copy_ticks_range(symbol, start, end, -1)
        )
