"""Catalogue, SymbolInfo, book, conversion, CSV replay and snapshot/restore."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from mt5gate.constants import SymbolCalcMode, SymbolTradeExecution, Timeframe
from mt5gate.records import SymbolInfo
from mt5gate.sim.clock import VirtualClock, server_ms
from mt5gate.sim.errors import SimError
from mt5gate.sim.market import Market, default_catalogue

MONDAY_8 = server_ms(2026, 1, 5, 8)
DATA = Path(__file__).parent / "data"
SURFACE = json.loads((Path(__file__).parents[1] / "data" / "surface.json").read_text())
TYPES = {"int": int, "float": float, "bool": bool, "str": str}


def _market(start: int = MONDAY_8, days: int = 5) -> tuple[Market, VirtualClock]:
    clock = VirtualClock(start)
    return Market(default_catalogue(), clock, history_days=days), clock


def test_catalogue_is_realistic() -> None:
    specs = {s.name: s for s in default_catalogue()}
    assert len(specs) >= 13
    assert specs["XAUUSD"].trade_calc_mode == SymbolCalcMode.CFD
    assert specs["XAUUSD"].trade_contract_size == 100
    assert specs["US500"].trade_calc_mode == SymbolCalcMode.CFDINDEX
    assert specs["AAPL"].volume_step == 1.0
    modes = {s.trade_exemode for s in specs.values()}
    assert {SymbolTradeExecution.INSTANT, SymbolTradeExecution.REQUEST} <= modes
    assert {s.filling_mode for s in specs.values()} == {1, 2, 3}
    assert any(s.trade_stops_level for s in specs.values())
    assert any(s.trade_freeze_level for s in specs.values())
    assert specs["EURUSD"].path == "Forex\\Majors\\EURUSD"


def test_symbol_info_fields_match_surface() -> None:
    market, clock = _market()
    clock.advance(600)
    info = market.symbol_info("USDJPY", select=True, visible=False, account_currency="USD")
    names = SURFACE["namedtuples"]["SymbolInfo"]
    assert len(info) == 96
    assert list(info._asdict()) == names
    for name, kind in SURFACE["namedtuple_field_types"]["SymbolInfo"].items():
        assert type(getattr(info, name)) is TYPES[kind], name
    tick = market.last_tick("USDJPY")
    assert tick is not None
    assert (info.bid, info.ask, info.time) == (tick.bid, tick.ask, tick.time)
    assert info.spread == round((tick.ask - tick.bid) / 0.001)
    assert info.bidlow <= info.bid <= info.bidhigh
    assert info.asklow <= info.ask <= info.askhigh
    assert info.select
    assert not info.visible
    assert info.point == 0.001
    assert info.trade_tick_value == pytest.approx(100 / tick.ask)
    assert info.trade_tick_value_loss >= info.trade_tick_value_profit
    assert info.session_open > 0
    assert info.session_close > 0


def test_symbol_info_failures_and_no_conversion() -> None:
    market, _ = _market()
    with pytest.raises(SimError) as err:
        market.symbol_info("NOPE", select=False, visible=False, account_currency="USD")
    assert err.value.code == -4
    info = market.symbol_info("EURUSD", select=False, visible=False, account_currency="XYZ")
    assert isinstance(info, SymbolInfo)
    assert info.trade_tick_value == 0.0


def test_stock_symbol_info_has_trade_fields() -> None:
    market, clock = _market(server_ms(2026, 1, 5, 17))
    clock.advance(300)
    info = market.symbol_info("AAPL", select=True, visible=True, account_currency="EUR")
    assert info.last > 0
    assert info.lasthigh >= info.last >= info.lastlow > 0
    assert info.volumehigh >= info.volume >= info.volumelow >= 1


def test_book_ordering() -> None:
    market, clock = _market()
    clock.advance(30)
    book = market.book("EURUSD")
    tick = market.last_tick("EURUSD")
    assert tick is not None
    assert len(book) == 20
    sells, buys = book[:10], book[10:]
    assert all(b.type == 1 for b in sells)
    assert all(b.type == 2 for b in buys)
    prices = [b.price for b in book]
    assert prices == sorted(prices, reverse=True)
    assert sells[-1].price == tick.ask
    assert buys[0].price == tick.bid
    assert all(b.volume >= 1 and b.volume_dbl == float(b.volume) for b in book)
    assert market.book("EURUSD") == book


def test_convert() -> None:
    market, _ = _market()
    eurusd, usdjpy = market.last_tick("EURUSD"), market.last_tick("USDJPY")
    assert eurusd is not None
    assert usdjpy is not None
    assert market.convert(100, "EUR", "USD") == pytest.approx(100 * eurusd.bid)
    assert market.convert(100, "USD", "EUR") == pytest.approx(100 / eurusd.ask)
    assert market.convert(100, "USD", "EUR", worse=True) == pytest.approx(100 / eurusd.bid)
    assert market.convert(5, "USD", "USD") == 5
    via = market.convert(1000, "JPY", "MXN")  # no JPY/MXN symbol: through USD
    assert via == pytest.approx(1000 / usdjpy.ask * market.convert(1, "USD", "MXN"))
    chfjpy = market.last_tick("CHFJPY")  # a direct cross wins over the way through USD
    assert chfjpy is not None
    assert market.convert(1000, "JPY", "CHF") == pytest.approx(1000 / chfjpy.ask)
    for pair in (("EUR", "XYZ"), ("XYZ", "ABC")):
        with pytest.raises(SimError) as err:
            market.convert(1, *pair)
        assert err.value.code == -1


def test_tick_csv_replay_round_trip() -> None:
    market, clock = _market(server_ms(2026, 1, 5, 8, 0) + 5_000, days=1)
    got: list[int] = []
    market.add_listener(lambda s, t: got.extend(t["time_msc"].tolist()) if s == "EURUSD" else None)
    assert market.load_ticks_csv("EURUSD", DATA / "EURUSD_ticks.csv") == 6
    tick = market.last_tick("EURUSD")
    assert tick is not None
    assert (tick.bid, tick.ask, tick.flags) == (1.10002, 1.10015, 4)
    assert tick.time_msc == server_ms(2026, 1, 5, 8) + 987
    clock.advance(120)
    market.sync()
    assert got == [server_ms(2026, 1, 5, 8) + t for t in (10_000, 30_500, 65_000)]
    ticks = market.copy_ticks_range(
        "EURUSD", server_ms(2026, 1, 5, 7, 59) // 1000, clock.now_ms() // 1000, -1
    )
    assert ticks["bid"].tolist() == [1.1, 1.10002, 1.10002, 1.1002, 1.1004, 1.1003]
    assert ticks["flags"].tolist() == [6, 2, 4, 6, 6, 6]
    bars = market.copy_rates_from_pos("EURUSD", 1, 0, 3, 1000)
    assert bars["time"].tolist()[-2:] == [
        server_ms(2026, 1, 5, 8) // 1000,
        server_ms(2026, 1, 5, 8, 1) // 1000,
    ]
    assert bars[-2]["high"] == 1.1004
    assert bars[-2]["tick_volume"] == 3
    assert bars[-3]["close"] == 1.10002
    clock.advance(600)
    assert market.last_tick("EURUSD") == market.last_tick("EURUSD")
    last = market.last_tick("EURUSD")
    assert last is not None
    assert last.bid == 1.1003


def test_tick_csv_bad_rows(tmp_path: Path) -> None:
    market, _ = _market()
    with pytest.raises(ValueError, match=r"line 3: column <BID>"):
        market.load_ticks_csv("EURUSD", DATA / "bad_ticks.csv")
    missing = tmp_path / "m.csv"
    missing.write_text("<DATE>\t<TIME>\t<BID>\n")
    with pytest.raises(ValueError, match="missing column"):
        market.load_ticks_csv("EURUSD", missing)
    back = tmp_path / "b.csv"
    back.write_text(
        "<DATE>\t<TIME>\t<BID>\t<ASK>\n2026.01.05\t08:00:01\t1\t2\n2026.01.05\t08:00:00\t1\t2\n"
    )
    with pytest.raises(ValueError, match="line 3: column <TIME>"):
        market.load_ticks_csv("EURUSD", back)
    empty = tmp_path / "e.csv"
    empty.write_text("<DATE>\t<TIME>\t<BID>\t<ASK>\n\n")
    assert market.load_ticks_csv("EURUSD", empty) == 0
    bad_bar = tmp_path / "bb.csv"
    bad_bar.write_text(
        "<DATE>\t<TIME>\t<OPEN>\t<HIGH>\t<LOW>\t<CLOSE>\n2026.01.02\t10:00\t1\t0.5\t0.4\t0.9\n"
    )
    with pytest.raises(ValueError, match="line 2"):
        market.load_bars_csv("EURUSD", bad_bar)


def test_m1_bar_csv_becomes_history() -> None:
    market, clock = _market()
    assert market.load_bars_csv("EURUSD", DATA / "EURUSD_M1.csv") == 3
    bars = market.copy_rates_from("EURUSD", 1, MONDAY_8 // 1000 - 1, 10, 1000)
    assert len(bars) == 3
    assert bars["spread"].tolist() == [8, 9, 10]
    assert bars["tick_volume"].tolist() == [12, 9, 15]
    ticks = market.copy_ticks_range("EURUSD", bars["time"][0], bars["time"][-1] + 59, -1)
    assert len(ticks) == 36
    assert ticks["bid"].max() == 1.1003
    assert ticks["bid"][-1] == 1.0999
    clock.advance(120)
    assert len(market.copy_rates_from_pos("EURUSD", 1, 0, 100, 1000)) >= 4


def test_d1_bar_csv_prefixes_daily_bars() -> None:
    market, _ = _market()
    assert market.load_bars_csv("EURUSD", DATA / "EURUSD_D1.csv", int(Timeframe.D1)) == 2
    daily = market.copy_rates_from_pos("EURUSD", int(Timeframe.D1), 0, 10, 1000)
    assert daily["time"][0] == server_ms(2025, 12, 30) // 1000
    assert daily["close"][1] == 1.098
    assert (np.diff(daily["time"]) > 0).all()
    assert len(daily) >= 3
    with pytest.raises(SimError):
        market.load_bars_csv("EURUSD", DATA / "EURUSD_D1.csv", 17)


def test_snapshot_restore_continues_identically() -> None:
    market, clock = _market()
    clock.advance(900)
    market.push_tick("EURUSD", 1.09)
    state = json.loads(json.dumps(market.snapshot()))
    twin_clock = VirtualClock(clock.now_ms())
    twin = Market(default_catalogue(), twin_clock, history_days=5)
    twin.restore(state)
    clock.advance(1800)
    twin_clock.advance(1800)
    start = MONDAY_8 // 1000 - 3600
    for name in ("EURUSD", "AAPL", "BTCUSD"):
        a = market.copy_ticks_range(name, start, clock.now_ms() // 1000, -1)
        b = twin.copy_ticks_range(name, start, clock.now_ms() // 1000, -1)
        assert np.array_equal(a, b), name
    assert np.array_equal(
        market.copy_rates_from_pos("EURUSD", 16385, 0, 100, 1000),
        twin.copy_rates_from_pos("EURUSD", 16385, 0, 100, 1000),
    )


def test_snapshot_restore_with_replay_and_override() -> None:
    market, clock = _market(server_ms(2026, 1, 5, 8) + 5_000, days=1)
    market.load_ticks_csv("EURUSD", DATA / "EURUSD_ticks.csv")
    market.load_bars_csv("EURUSD", DATA / "EURUSD_D1.csv", int(Timeframe.D1))
    state = json.loads(json.dumps(market.snapshot()))
    twin_clock = VirtualClock(clock.now_ms())
    twin = Market(default_catalogue(), twin_clock, history_days=1)
    twin.restore({**state, "symbols": {**state["symbols"], "GONE": {}}})
    twin_clock.advance(120)
    last = twin.last_tick("EURUSD")
    assert last is not None
    assert last.bid == 1.1003
    assert twin.copy_rates_from_pos("EURUSD", int(Timeframe.D1), 0, 10, 100)["close"][1] == 1.098
