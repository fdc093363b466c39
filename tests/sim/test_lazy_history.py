"""``symbol_info`` and ``symbols_get`` do not build a symbol's 30 days of history (issue 18
item 2, start-up cost with 60 symbols): they read the history's last day, made with every
random draw of the full history, so every field equals what the built history gives."""

from __future__ import annotations

import pytest

from mt5gate.sim import SimConfig, SimTerminal, VirtualClock, server_ms
from mt5gate.sim.market import Market, default_catalogue
from mt5gate.sim.market.history import synth_bars
from mt5gate.sim.market.sessions import SessionMask

SPECS = default_catalogue()
STARTS = {
    "tuesday": server_ms(2026, 1, 6, 10),
    "saturday": server_ms(2026, 1, 10, 12),  # the last history day is Friday's
    "monday_open": server_ms(2026, 1, 12, 0, 10),
    "sunday_late": server_ms(2026, 1, 4, 23, 58),
}


def _pair(start: int, advance_s: int) -> tuple[Market, Market]:
    """Two identical markets ``advance_s`` after ``start``; the second has every history built."""
    markets = []
    for _ in range(2):
        clock = VirtualClock(start)
        market = Market(SPECS, clock, history_days=3, live_ticks_retention_s=3600)
        clock.advance(advance_s)
        markets.append(market)
    lazy, built = markets
    for spec in SPECS:
        built._ready(spec.name)
    return lazy, built


@pytest.mark.parametrize("start", list(STARTS))
@pytest.mark.parametrize("advance_s", [0, 3600, 2 * 86_400 + 3600])
def test_symbol_info_is_the_same_without_the_history(start: str, advance_s: int) -> None:
    lazy, built = _pair(STARTS[start], advance_s)
    for spec in SPECS:
        for currency in ("USD", "EUR"):
            args = {"select": True, "visible": True, "account_currency": currency}
            assert lazy.symbol_info(spec.name, **args) == built.symbol_info(spec.name, **args)
    assert not any(lazy._series[s.name].history_ready for s in SPECS)
    currency = "USD"
    name = SPECS[0].name  # a query that needs the history builds it, and nothing changes
    before = lazy.symbol_info(name, select=True, visible=True, account_currency=currency)
    lazy.copy_rates_from_pos(name, 1, 0, 10, 100_000)
    assert lazy._series[name].history_ready
    after = lazy.symbol_info(name, select=True, visible=True, account_currency=currency)
    assert after == before


def test_the_last_day_equals_the_full_history_s_tail() -> None:
    for spec in SPECS:
        mask = SessionMask(spec.sessions)
        end = STARTS["saturday"] // 1000
        full = synth_bars(spec, mask, 7, end, 5)
        tail = synth_bars(spec, mask, 7, end, 5, last_day=True)
        assert len(tail) < len(full)
        assert (full[-len(tail) :] == tail).all()
        day = int(full["time"][-1]) // 86_400 * 86_400
        assert tail["time"][0] < day <= tail["time"][1]  # the bar before the day, then the day


def test_symbols_get_at_start_builds_no_history() -> None:
    sim = SimTerminal(SimConfig(), clock=VirtualClock(STARTS["tuesday"]))
    assert sim.initialize(login=5001, password="sim-pass-5001")
    infos = sim.symbols_get()
    assert infos is not None
    assert len(infos) == len(SPECS)
    assert [i.name for i in infos if i.select] == ["EURUSD", "GBPUSD", "USDJPY", "XAUUSD"]
    assert not any(sim.market._series[s.name].history_ready for s in SPECS)
    assert sim.symbol_info_tick("EURUSD") is not None
