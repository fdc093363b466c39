"""Retention of live ticks (``SimConfig.live_ticks_retention_s``): bounded memory, faithful reads.

Every test runs a market with retention next to one without (same seed, same steps): whatever a
caller can see must agree, except that ticks older than the window come from the M1 bars.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from mt5gate.constants import CopyTicks, Timeframe
from mt5gate.sim import SimConfig
from mt5gate.sim.clock import VirtualClock, server_ms
from mt5gate.sim.market import Market, TickArray, default_catalogue
from mt5gate.sim.market.bars import ticks_to_m1
from mt5gate.sim.market.dtypes import TICKS_DTYPE, GrowArray, empty_ticks
from mt5gate.sim.market.history import synth_ticks
from mt5gate.sim.market.series import Series
from mt5gate.sim.terminal import SimTerminal

MONDAY_8 = server_ms(2026, 1, 5, 8)
DAY_S, DAY_MS = 86_400, 86_400_000
SYMBOLS = ("EURUSD", "AAPL", "BTCUSD", "US500")  # forex, stock (trades), 24/7 crypto, index
ALL = int(CopyTicks.ALL)
TIMEFRAMES = (Timeframe.M1, Timeframe.M5, Timeframe.H1, Timeframe.H4, Timeframe.D1, Timeframe.W1)


def _market(
    retention: int | None, names: Sequence[str] | None = SYMBOLS, start: int = MONDAY_8
) -> tuple[Market, VirtualClock]:
    specs = [s for s in default_catalogue() if names is None or s.name in names]
    clock = VirtualClock(start)
    # Without the deep past: reads from 0 here mean "everything in memory".
    market = Market(
        specs, clock, history_days=1, live_ticks_retention_s=retention, deep_history_from_s=None
    )
    return market, clock


def _pair(
    retention: int, names: Sequence[str] | None = SYMBOLS, start: int = MONDAY_8
) -> tuple[Market, Market, VirtualClock, VirtualClock]:
    kept, kept_clock = _market(None, names, start)
    trimmed, clock = _market(retention, names, start)
    return kept, trimmed, kept_clock, clock


def _step(clocks: Sequence[VirtualClock], markets: Sequence[Market], seconds: int) -> None:
    for clock in clocks:
        clock.advance(seconds)
    for market in markets:
        market.sync()


def _series(market: Market, name: str) -> Series:
    return market._series[name]  # the stored arrays are what retention bounds


def _first_stored_ms(market: Market, name: str) -> int:
    return int(_series(market, name).ticks.view()["time_msc"][0])


def _info(market: Market, name: str) -> object:
    return market.symbol_info(name, select=True, visible=True, account_currency="USD")


# -- configuration ---------------------------------------------------------------------------


def test_option_default_and_validation() -> None:
    assert SimConfig().live_ticks_retention_s == 86_400
    assert SimConfig(live_ticks_retention_s=None).live_ticks_retention_s is None
    assert SimConfig(live_ticks_retention_s=60).live_ticks_retention_s == 60
    for bad in (0, -3600):
        with pytest.raises(ValueError, match=r"SimConfig\.live_ticks_retention_s must be positive"):
            SimConfig(live_ticks_retention_s=bad)
    for wrong in ("1d", 3600.0, True):
        with pytest.raises(TypeError, match=r"SimConfig\.live_ticks_retention_s must be an int"):
            SimConfig(live_ticks_retention_s=wrong)  # type: ignore[arg-type]


def test_terminal_passes_the_option_to_its_market() -> None:
    config = SimConfig(history_days=1, live_ticks_retention_s=3600, deep_history_from_s=None)
    terminal = SimTerminal(config, clock=VirtualClock(MONDAY_8))
    terminal.step(seconds=2 * DAY_S)
    series = _series(terminal.market, "EURUSD")
    assert series.n_trimmed > 0
    wednesday = server_ms(2026, 1, 7)  # one hour before now is Wednesday 07:00: the day rules
    assert wednesday <= _first_stored_ms(terminal.market, "EURUSD") < wednesday + 60_000


# -- memory ----------------------------------------------------------------------------------


def test_stored_ticks_stay_bounded_over_many_days() -> None:
    kept, trimmed, kept_clock, clock = _pair(DAY_S)
    most = dict.fromkeys(SYMBOLS, 0)
    for _ in range(12 * 24):  # twelve days, hour by hour (two weekends)
        _step((kept_clock, clock), (kept, trimmed), 3600)
        for name in SYMBOLS:
            times = _series(trimmed, name).ticks.view()["time_msc"]
            span = int(times[-1] - times[0]) if len(times) else 0
            assert span <= 2 * DAY_MS + 60_000, name  # never more than two windows
            most[name] = max(most[name], len(times))
    for name in SYMBOLS:
        stored, everything = _series(trimmed, name).ticks, _series(kept, name).ticks
        assert len(everything) > 4 * most[name], name  # without retention: twelve days' worth
        assert stored.capacity <= 4 * most[name], name  # the buffer does not keep growing
        assert len(_series(trimmed, name).m1) == len(_series(kept, name).m1)


# -- reads across the cut --------------------------------------------------------------------


def test_ticks_across_the_cut_are_ordered_gapless_and_exact() -> None:
    kept, trimmed, kept_clock, clock = _pair(DAY_S)
    heard: dict[str, list[TickArray]] = {name: [] for name in SYMBOLS}
    trimmed.add_listener(lambda name, ticks: heard[name].append(ticks.copy()))
    for _ in range(5 * 12):
        _step((kept_clock, clock), (kept, trimmed), 7200)
    now_s = clock.now_ms() // 1000
    for name in SYMBOLS:
        series = _series(trimmed, name)
        assert series.n_trimmed > 0, name
        cut = _first_stored_ms(trimmed, name)
        cut_s = cut // 60_000 * 60
        every = trimmed.copy_ticks_range(name, MONDAY_8 // 1000 - 3600, now_s, ALL)
        assert every.dtype == TICKS_DTYPE
        assert (np.diff(every["time_msc"]) > 0).all(), name  # ordered, no duplicates
        # From the first stored tick on: exactly the live ticks, as heard and as never trimmed.
        newest = every[every["time_msc"] >= cut]
        assert np.array_equal(newest, np.concatenate(heard[name])[-len(newest) :]), name
        reference = kept.copy_ticks_range(name, MONDAY_8 // 1000 - 3600, now_s, ALL)
        assert np.array_equal(newest, reference[reference["time_msc"] >= cut]), name
        # Before it: ticks of every stored M1 bar, which aggregate back to the bars exactly.
        older = every[(every["time_msc"] >= MONDAY_8) & (every["time_msc"] < cut_s * 1000)]
        bars = trimmed.copy_rates_range(name, 1, MONDAY_8 // 1000, cut_s - 1, 100_000)
        assert len(bars) > 1000, name
        assert np.array_equal(ticks_to_m1(older, series.spec.point), bars), name
        # A range around the cut is the same slice; copy_ticks_from crosses it the same way.
        around = trimmed.copy_ticks_range(name, cut_s - 600, cut_s + 600, ALL)
        lo, hi = (cut_s - 600) * 1000, (cut_s + 600) * 1000
        assert np.array_equal(around, every[(every["time_msc"] >= lo) & (every["time_msc"] <= hi)])
        first = trimmed.copy_ticks_from(name, cut_s - 600, len(around), ALL)
        assert np.array_equal(first, around), name


def test_trade_and_info_filters_across_the_cut() -> None:
    kept, trimmed, kept_clock, clock = _pair(DAY_S, names=("AAPL", "EURUSD"))
    _step((kept_clock, clock), (kept, trimmed), 4 * DAY_S)
    cut_s = _first_stored_ms(trimmed, "AAPL") // 60_000 * 60
    trades = trimmed.copy_ticks_from("AAPL", cut_s - 7200, 5000, int(CopyTicks.TRADE))
    assert len(trades) == 5000
    assert (np.diff(trades["time_msc"]) > 0).all()
    assert trades["time_msc"][0] < cut_s * 1000 <= trades["time_msc"][-1]
    assert (trades["volume"] > 0).all()
    assert (trades["last"] > 0).all()
    # Synthesised trades carry each bar's real volume: minutes sum to the stored bars.
    older = trades[trades["time_msc"] < cut_s * 1000]
    minutes = np.unique(older["time"] // 60 * 60)
    sums = [int(older["volume"][older["time"] // 60 * 60 == m].sum()) for m in minutes]
    bars = trimmed.copy_rates_range("AAPL", 1, int(minutes[0]), int(minutes[-2]), 100_000)
    assert bars["real_volume"].tolist() == sums[:-1]  # the last minute may be cut by count
    live = kept.copy_ticks_from("AAPL", cut_s, 100, int(CopyTicks.TRADE))
    assert np.array_equal(live, trades[trades["time_msc"] >= cut_s * 1000][:100])
    info = trimmed.copy_ticks_from("EURUSD", cut_s - 3600, 3000, int(CopyTicks.INFO))
    assert len(info) == 3000
    assert (np.diff(info["time_msc"]) > 0).all()
    assert not len(trimmed.copy_ticks_from("EURUSD", cut_s - 3600, 10, int(CopyTicks.TRADE)))


# -- what must not change --------------------------------------------------------------------


def test_bars_and_symbol_info_are_identical_with_and_without_retention() -> None:
    # A three-hour window, so the rule that keeps the current server day's ticks decides the
    # cut; hourly steps from 08:00:30 also land just after every midnight.
    kept, trimmed, kept_clock, clock = _pair(3 * 3600, names=None, start=MONDAY_8 + 30_000)
    names = [s.name for s in trimmed.symbols()]
    for step in range(3 * 24):
        _step((kept_clock, clock), (kept, trimmed), 3600)
        for name in names:
            assert _info(trimmed, name) == _info(kept, name), (step, name)
        if step % 6 == 5:
            for name in SYMBOLS:
                for tf in TIMEFRAMES:
                    a = trimmed.copy_rates_range(name, int(tf), 0, 2**40, 100_000)
                    b = kept.copy_rates_range(name, int(tf), 0, 2**40, 100_000)
                    assert np.array_equal(a, b), (step, name, tf)
    for name in SYMBOLS:
        series = _series(trimmed, name)
        newest_s = int(series.ticks.view()["time"][-1])
        assert series.n_trimmed > 0, name
        assert series.m1.view()["time"][series.n_synth - 1] < newest_s - newest_s % DAY_S, name


# -- state file ------------------------------------------------------------------------------


def _same_reads(a: Market, b: Market, now_s: int) -> None:
    for name in SYMBOLS:
        start = MONDAY_8 // 1000 - 600
        assert np.array_equal(
            a.copy_ticks_range(name, start, now_s, ALL), b.copy_ticks_range(name, start, now_s, ALL)
        ), name
        assert np.array_equal(
            a.copy_rates_from_pos(name, int(Timeframe.M1), 0, 20_000, 100_000),
            b.copy_rates_from_pos(name, int(Timeframe.M1), 0, 20_000, 100_000),
        ), name
        assert _info(a, name) == _info(b, name), name


def test_state_file_round_trips(tmp_path: Path) -> None:
    specs = tuple(s for s in default_catalogue() if s.name in SYMBOLS)
    config = SimConfig(
        symbols=specs,
        history_days=1,
        live_ticks_retention_s=6 * 3600,
        deep_history_from_s=None,
    )
    terminal = SimTerminal(config, clock=VirtualClock(MONDAY_8))
    terminal.step(seconds=3 * DAY_S)
    assert _series(terminal.market, "EURUSD").n_trimmed > 0
    path = tmp_path / "state.json"
    terminal.save_state(path)
    twin = SimTerminal(config, clock=VirtualClock(MONDAY_8), state_file=path)
    assert twin.market.snapshot() == terminal.market.snapshot()
    now_s = terminal.clock.now_ms() // 1000
    _same_reads(terminal.market, twin.market, now_s)
    terminal.step(seconds=DAY_S + 17)
    twin.step(seconds=DAY_S + 17)
    _same_reads(terminal.market, twin.market, terminal.clock.now_ms() // 1000)
    assert twin.market.snapshot() == terminal.market.snapshot()
    # The market is regenerated, not read: a terminal that keeps every tick gets them all back,
    # as if it had run itself.
    keeping = SimConfig(symbols=specs, history_days=1, live_ticks_retention_s=None)
    keeper = SimTerminal(keeping, clock=VirtualClock(MONDAY_8), state_file=path)
    ran = SimTerminal(keeping, clock=VirtualClock(MONDAY_8))
    ran.step(seconds=3 * DAY_S)
    _same_reads(keeper.market, ran.market, now_s)


def test_state_without_retention_shrinks_on_load() -> None:
    full, clock = _market(None)
    _step((clock,), (full,), 4 * DAY_S)
    state = full.snapshot()
    assert all("n_trimmed" in s for s in state["symbols"].values())
    for symbol_state in state["symbols"].values():
        del symbol_state["n_trimmed"]  # as written before the option existed
    small, small_clock = _market(DAY_S)
    small_clock.set(clock.now_ms())
    small.restore(state)
    now_ms = clock.now_ms()
    for name in SYMBOLS:
        assert _first_stored_ms(small, name) > now_ms - 2 * DAY_MS, name
        window = (now_ms - DAY_MS) // 1000
        a = small.copy_ticks_range(name, window, now_ms // 1000, ALL)
        assert np.array_equal(a, full.copy_ticks_range(name, window, now_ms // 1000, ALL))
        assert _info(small, name) == _info(full, name)


# -- recorded ticks --------------------------------------------------------------------------

_CSV_HEAD = "<DATE>\t<TIME>\t<BID>\t<ASK>\t<LAST>\t<VOLUME>\t<FLAGS>\n"


def test_a_replayed_symbol_keeps_every_tick() -> None:
    data = Path(__file__).parent / "data" / "EURUSD_ticks.csv"
    market, clock = _market(3600, start=MONDAY_8 + 5_000)
    market.load_ticks_csv("EURUSD", data)
    _step((clock,), (market,), 120)
    before = market.copy_ticks_range("EURUSD", MONDAY_8 // 1000 - 60, MONDAY_8 // 1000 + 120, ALL)
    _step((clock,), (market,), 3 * DAY_S)
    after = market.copy_ticks_range("EURUSD", MONDAY_8 // 1000 - 60, MONDAY_8 // 1000 + 120, ALL)
    assert len(before) == 6
    assert np.array_equal(before, after)
    assert _series(market, "EURUSD").n_trimmed == 0
    assert _series(market, "AAPL").n_trimmed > 0


def test_tick_csv_loaded_after_a_cut(tmp_path: Path) -> None:
    rows = [
        ("2026.01.06", "12:00:00.000", "1.20000", "1.20010"),  # inside the dropped part
        ("2026.01.06", "12:00:01.500", "1.20004", "1.20014"),
        ("2026.01.08", "10:00:00.250", "1.20100", "1.20110"),  # still stored
        ("2026.01.09", "09:00:00.000", "1.20200", "1.20210"),  # the future
    ]
    csv = tmp_path / "ticks.csv"
    csv.write_text(_CSV_HEAD + "".join(f"{d}\t{t}\t{b}\t{a}\t\t\t6\n" for d, t, b, a in rows))
    kept, trimmed, kept_clock, clock = _pair(DAY_S)
    _step((kept_clock, clock), (kept, trimmed), 3 * DAY_S)  # Thursday 08:00
    assert _first_stored_ms(trimmed, "EURUSD") > server_ms(2026, 1, 6, 12)
    for market in (kept, trimmed):
        assert market.load_ticks_csv("EURUSD", csv) == 4
    _step((kept_clock, clock), (kept, trimmed), DAY_S + 7200)  # Friday 10:00
    now_s = clock.now_ms() // 1000
    for tf in TIMEFRAMES:
        a = trimmed.copy_rates_from_pos("EURUSD", int(tf), 0, 10_000, 100_000)
        assert np.array_equal(a, kept.copy_rates_from_pos("EURUSD", int(tf), 0, 10_000, 100_000))
    ticks = trimmed.copy_ticks_range("EURUSD", MONDAY_8 // 1000, now_s, ALL)
    assert (np.diff(ticks["time_msc"]) > 0).all()
    recorded = ticks[ticks["time_msc"] >= server_ms(2026, 1, 6, 12)]
    assert recorded["bid"].tolist() == [1.2, 1.20004, 1.201, 1.202]
    older = ticks[ticks["time_msc"] < server_ms(2026, 1, 6, 12)]
    bars = trimmed.copy_rates_range("EURUSD", 1, MONDAY_8 // 1000, older["time"][-1], 100_000)
    assert np.array_equal(ticks_to_m1(older, 0.00001), bars)


# -- building blocks -------------------------------------------------------------------------


def _ticks(*rows: tuple[int, float, int]) -> TickArray:
    """Ticks of (ms after Monday 08:00, bid, volume); ask = bid + 1.2 points."""
    ticks = empty_ticks(len(rows))
    for i, (ms, bid, volume) in enumerate(rows):
        ticks[i]["time_msc"], ticks[i]["bid"] = MONDAY_8 + ms, bid
        ticks[i]["ask"], ticks[i]["volume"] = round(bid + 0.00012, 5), volume
    ticks["time"] = ticks["time_msc"] // 1000
    return ticks


def test_live_bars_of_few_ticks_synthesise_back_exactly() -> None:
    m = 60_000
    ticks = _ticks(
        (1_000, 1.1, 5),  # one tick
        (m + 1, 1.1, 0),  # two ticks, falling
        (m + 2, 1.09, 0),
        (2 * m, 1.1, 1),  # three ticks: high in the middle
        (2 * m + 5, 1.12, 2),
        (2 * m + 9, 1.11, 3),
        (3 * m, 1.1, 0),  # three ticks: low in the middle
        (3 * m + 5, 1.08, 0),
        (3 * m + 9, 1.11, 1),
        (4 * m, 1.1, 0),  # three ticks: open and close are the extremes
        (4 * m + 5, 1.095, 0),
        (4 * m + 9, 1.09, 0),
        *((5 * m + 1000 * k, 1.1 + 0.0001 * (k % 5), k) for k in range(9)),
    )
    bars = ticks_to_m1(ticks, 0.00001)
    assert bars["tick_volume"].tolist() == [1, 2, 3, 3, 3, 9]
    again = synth_ticks(bars, 1234, 5, 0.00001, live=True)
    assert np.array_equal(ticks_to_m1(again, 0.00001), bars)
    assert (np.diff(again["time_msc"]) > 0).all()
    history = synth_ticks(bars, 1234, 5, 0.00001)  # history bars: at least four ticks each
    assert np.bincount(history["time"] // 60 - MONDAY_8 // 60_000).tolist() == [4, 4, 4, 4, 4, 9]
    assert not history["volume"].any()


def test_grow_array_drop_front() -> None:
    array = GrowArray(TICKS_DTYPE, 8)
    ticks = _ticks(*((k, 1.0 + k, k) for k in range(1000)))
    array.extend(ticks)
    assert array.capacity >= 1000
    array.drop_front(10)
    assert np.array_equal(array.view(), ticks[10:])
    array.drop_front(900)  # 90 rows left in a buffer of >= 1000: it shrinks
    assert np.array_equal(array.view(), ticks[910:])
    assert array.capacity == 256
    array.drop_front(0)
    array.drop_front(1000)
    assert len(array) == 0
