"""Contract tests of the default catalogue (issue 18 item 2): every symbol's spec is
self-consistent, the terminal lists exactly the catalogue, group masks select from it, and an
order round trip works on every symbol through the drop-in ``MetaTrader5`` module.

Time is a virtual clock on Tuesday 2026-01-06 18:00 server time, inside every group's session
(forex, metals, energies, indices, the New York cash session, crypto); nothing depends on
today's date.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import pytest

import mt5gate.sim
from mt5gate.constants import SymbolCalcMode, SymbolTradeExecution
from mt5gate.sim import SimConfig, SimTerminal, VirtualClock, metatrader5, server_ms
from mt5gate.sim.market import default_catalogue
from mt5gate.sim.market.catalogue import catalogue_sources, parse_catalogue, parse_schedule
from mt5gate.sim.market.sessions import MINUTES_PER_WEEK, SessionMask
from mt5gate.sim.symbols import SessionWindow, SymbolSpec

TUESDAY_18 = server_ms(2026, 1, 6, 18)
CATALOGUE = default_catalogue()
NAMES = [s.name for s in CATALOGUE]
BY_NAME = {s.name: s for s in CATALOGUE}
DEAL, BUY, SELL = 1, 0, 1
FOK, IOC = 0, 1
DONE = 10009

#: The Market Watch folders of the catalogue and how many symbols each holds.
GROUPS = {
    "Forex\\Majors": 7,
    "Forex\\Crosses": 17,
    "Forex\\Exotics": 3,
    "Metals": 4,
    "Energies": 3,
    "Indices": 6,
    "Stocks\\CFD": 8,
    "Stocks\\US": 6,
    "Crypto": 6,
}
FOREX_MODES = {SymbolCalcMode.FOREX, SymbolCalcMode.FOREX_NO_LEVERAGE}


def folder(spec: SymbolSpec) -> str:
    """The Market Watch folder of a symbol (its path without the name)."""
    return spec.path.rsplit("\\", 1)[0]


@pytest.fixture(scope="module")
def mt5() -> Iterator[Any]:
    """The drop-in module over a simulator on Tuesday 18:00, logged in (USD, 1:100, hedging),
    every symbol in Market Watch. One day of history keeps the start cheap."""
    saved = metatrader5._State.terminal
    sim = SimTerminal(SimConfig(history_days=1), clock=VirtualClock(TUESDAY_18))
    mt5gate.sim.configure(sim)
    api: Any = metatrader5  # its functions are made at import time, unknown to mypy
    try:
        assert api.initialize(login=5001, password="sim-pass-5001")
        for name in NAMES:
            assert api.symbol_select(name, True)
        yield api
    finally:
        api.shutdown()
        metatrader5._State.terminal = saved


# -- the catalogue's shape -------------------------------------------------------------------


def test_the_groups_and_their_sizes() -> None:
    counts: dict[str, int] = {}
    for spec in CATALOGUE:
        counts[folder(spec)] = counts.get(folder(spec), 0) + 1
    assert counts == GROUPS
    assert len(NAMES) == len(set(NAMES)) == 60


def test_the_names_the_docs_and_tests_use_are_there() -> None:
    original = ["EURUSD", "GBPUSD", "USDJPY", "USDCHF", "AUDUSD", "USDCAD", "EURJPY", "GBPJPY"]
    original += ["EURGBP", "XAUUSD", "US500", "BTCUSD", "AAPL"]
    assert NAMES[:13] == original  # Market Watch order starts with them, as before
    assert {"EURCAD", "AUDCAD", "XAGUSD", "XBRUSD", "ETHUSD", "MSFT", "TSLA"} <= set(NAMES)
    assert BY_NAME["EURUSD"].path == "Forex\\Majors\\EURUSD"
    assert BY_NAME["EURCAD"].path == "Forex\\Crosses\\EURCAD"


def test_the_sources_say_where_values_come_from() -> None:
    sources = catalogue_sources()
    assert "https://www.mql5.com/en/forum/462150" in sources["calc_modes"]
    assert "harshdeep3/MT5_Test" in sources["forex_contract"]
    assert sources["estimates"].startswith("ESTIMATES")


# -- every symbol's spec is self-consistent --------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_prices_volumes_and_ticks_agree(name: str) -> None:
    spec = BY_NAME[name]
    point = spec.point
    assert spec.tick_size >= point
    assert spec.tick_size / point == pytest.approx(round(spec.tick_size / point))
    assert round(spec.initial_price, spec.digits) == spec.initial_price
    assert spec.initial_price > 0
    assert spec.spread_points >= 1
    assert 0 < spec.volume_min <= spec.volume_max
    assert spec.volume_step > 0
    for volume in (spec.volume_min, spec.volume_max):
        steps = volume / spec.volume_step
        assert steps == pytest.approx(round(steps)), "the step divides min and max"
    assert spec.trade_contract_size > 0
    assert spec.path.endswith("\\" + name)
    assert spec.description
    assert spec.filling_mode
    assert spec.order_mode
    assert spec.expiration_mode


@pytest.mark.parametrize("name", NAMES)
def test_the_calc_mode_fits_the_instrument(name: str) -> None:
    spec = BY_NAME[name]
    mode = spec.trade_calc_mode
    if spec.category == "Forex":
        assert mode in FOREX_MODES
        assert (spec.currency_base, spec.currency_profit) == (name[:3], name[3:])
        assert spec.currency_margin == spec.currency_base
        assert spec.trade_contract_size == 100_000
        assert spec.digits == (3 if name.endswith("JPY") else 5)
    else:
        assert mode not in FOREX_MODES
    if mode == SymbolCalcMode.EXCH_STOCKS:
        assert spec.trade_exemode == SymbolTradeExecution.EXCHANGE
        assert spec.exchange in {"NASDAQ", "NYSE"}
        assert len(spec.isin) == 12
        assert spec.isin.startswith("US")
    else:
        assert spec.trade_exemode != SymbolTradeExecution.EXCHANGE
        assert not spec.exchange
    if mode == SymbolCalcMode.CFDINDEX:
        assert spec.category == "Indices"
        assert spec.trade_contract_size == 1  # the index formula multiplies by it twice
    if spec.category in ("Metals", "Crypto"):
        assert spec.currency_base == name[:3]
        assert spec.currency_profit == name[3:]


@pytest.mark.parametrize("name", NAMES)
def test_sessions_are_well_formed(name: str) -> None:
    spec = BY_NAME[name]
    windows = spec.sessions
    assert windows, "every symbol trades sometime"
    ordered = sorted(windows, key=lambda w: (w.day, w.start_min))
    assert list(windows) == ordered
    for a, b in itertools.pairwise(windows):
        assert a.day < b.day or a.end_min <= b.start_min, "no overlapping windows"
    mask = SessionMask(windows)
    open_minutes = sum(w.end_min - w.start_min for w in windows)
    week = MINUTES_PER_WEEK
    if spec.category == "Crypto":
        assert open_minutes == week  # around the clock, every day
    else:
        assert open_minutes < week
        saturday_noon = server_ms(2026, 1, 10, 12)
        assert not mask.is_open(saturday_noon)  # closed at the weekend
    assert mask.is_open(TUESDAY_18)  # the round trips below trade then


# -- what the terminal shows -----------------------------------------------------------------


def test_symbols_total_and_symbols_get_list_the_catalogue(mt5: Any) -> None:
    assert mt5.symbols_total() == len(CATALOGUE)
    assert [s.name for s in mt5.symbols_get()] == NAMES


@pytest.mark.parametrize(
    ("group", "expected"),
    [
        ("*,!*USD*", [n for n in NAMES if "USD" not in n]),
        ("*JPY", [n for n in NAMES if n.endswith("JPY")]),
        ("EUR*,!EURUSD", [n for n in NAMES if n.startswith("EUR") and n != "EURUSD"]),
        (
            "X*",
            ["XAUUSD", "XAGUSD", "XAUEUR", "XPTUSD", "XBRUSD", "XTIUSD", "XNGUSD", "XOM", "XRPUSD"],
        ),
        ("X??USD", []),  # no "?" wildcard: a literal mask
        ("*,!*JPY,!*USD*", [n for n in NAMES if "USD" not in n and not n.endswith("JPY")]),
    ],
)
def test_group_masks_select_from_the_catalogue(mt5: Any, group: str, expected: list[str]) -> None:
    assert [s.name for s in mt5.symbols_get(group=group)] == expected


def _rate_to_usd(mt5: Any, currency: str) -> float:
    """USD per unit of ``currency`` from the quotes, the way the broker converts: a symbol
    quoting it in USD at its bid, one quoting USD in it at 1 / ask (semantics 9.2)."""
    if currency == "USD":
        return 1.0
    if currency + "USD" in BY_NAME:
        return float(mt5.symbol_info_tick(currency + "USD").bid)
    return 1.0 / float(mt5.symbol_info_tick("USD" + currency).ask)


@pytest.mark.parametrize("name", NAMES)
def test_tick_value_is_contract_times_tick_size_in_the_account_currency(
    mt5: Any, name: str
) -> None:
    info = mt5.symbol_info(name)
    spec = BY_NAME[name]
    expected = spec.tick_size * spec.trade_contract_size * _rate_to_usd(mt5, spec.currency_profit)
    assert info.trade_tick_size == spec.tick_size
    assert info.trade_tick_value == pytest.approx(expected, rel=1e-9)
    assert info.trade_tick_value_profit == info.trade_tick_value
    assert info.trade_tick_value_loss >= info.trade_tick_value
    assert info.point == spec.point
    assert info.digits == spec.digits
    assert round(info.bid, info.digits) == info.bid
    assert info.ask > info.bid > 0
    assert (info.trade_calc_mode, info.path) == (int(spec.trade_calc_mode), spec.path)


# -- an order round trip on every symbol -------------------------------------------------------


def _filling(info: Any) -> int:
    """An ORDER_FILLING the symbol accepts (pitfall C2: its flags are SYMBOL_FILLING bits)."""
    return IOC if info.filling_mode & 2 else FOK


def _deal(mt5: Any, name: str, side: int, volume: float, **extra: Any) -> Any:
    info, tick = mt5.symbol_info(name), mt5.symbol_info_tick(name)
    request = {
        "action": DEAL,
        "symbol": name,
        "volume": volume,
        "type": side,
        "price": tick.ask if side == BUY else tick.bid,
        "deviation": 50,
        "type_filling": _filling(info),
        "type_time": 0,
    }
    request.update(extra)
    result = mt5.order_send(request)
    assert result is not None, mt5.last_error()
    assert result.retcode == DONE, result
    return result


@pytest.mark.parametrize("name", NAMES)
def test_a_position_opens_and_closes_at_the_calculated_margin_and_profit(
    mt5: Any, name: str
) -> None:
    spec = BY_NAME[name]
    volume = spec.volume_min
    margin_before = mt5.account_info().margin
    opened = _deal(mt5, name, BUY, volume)
    margin = mt5.order_calc_margin(BUY, name, volume, opened.price)
    assert margin is not None
    assert margin > 0
    # order_calc_margin rounds to the account currency's digits, the account does not
    assert mt5.account_info().margin - margin_before == pytest.approx(margin, abs=0.005)
    # the market moves up 50 ticks: a buy closed at the new bid gains
    up = round(opened.price + 50 * spec.tick_size, spec.digits)
    mt5gate_sim().market.push_tick(name, up, round(up + spec.spread_points * spec.point, 9))
    closed = _deal(mt5, name, SELL, volume, position=opened.order)
    expected = mt5.order_calc_profit(BUY, name, volume, opened.price, closed.price)
    deals = mt5.history_deals_get(position=opened.order)
    assert [d.entry for d in deals] == [0, 1]
    assert deals[1].profit == pytest.approx(expected, abs=0.011)
    assert expected > 0
    assert deals[1].profit > 0
    assert mt5.positions_get(symbol=name) == ()


def mt5gate_sim() -> SimTerminal:
    """The simulator behind the drop-in module (to move its market)."""
    terminal = metatrader5._State.terminal
    assert terminal is not None
    return terminal


# -- the parser refuses what it does not understand --------------------------------------------


def _data(**symbol: Any) -> dict[str, Any]:
    group = {"path": "G", "sessions": "s", "currencies": "pair", "digits": 2}
    group |= {"trade_contract_size": 1.0, "initial_price": 1.0, "annual_volatility": 0.1}
    group |= {"spread_points": 1, "description": "d"}
    return {"groups": {"g": group}, "sessions": {"s": ["Mon 00:00-24:00"]}, "symbols": symbol}


def test_the_parser_builds_specs_from_groups_and_overrides() -> None:
    (spec,) = parse_catalogue(_data(ABCXYZ={"group": "g", "filling_mode": "ALL"}))
    assert (spec.name, spec.path, spec.currency_base, spec.currency_profit) == (
        "ABCXYZ",
        "G\\ABCXYZ",
        "ABC",
        "XYZ",
    )
    assert spec.filling_mode == 7
    assert spec.sessions == (SessionWindow(1, 0, 1440),)


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"group": "nope"}, "unknown group"),
        ({"group": "g", "volum_min": 1}, "unknown keys"),
        ({"group": "g", "filling_mode": "FOK"}, "must be 'ALL' or a list"),
    ],
)
def test_the_parser_refuses_bad_symbols(entry: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_catalogue(_data(ABCXYZ=entry))


def test_the_parser_refuses_bad_enumeration_names() -> None:
    with pytest.raises(KeyError):
        parse_catalogue(_data(ABCXYZ={"group": "g", "trade_calc_mode": "FOREXX"}))


def test_schedules() -> None:
    assert parse_schedule(["Fri 00:00-23:55", "Mon-Tue 01:05-02:00"]) == (
        SessionWindow(1, 65, 120),
        SessionWindow(2, 65, 120),
        SessionWindow(5, 0, 1435),
    )
    assert len(parse_schedule(["Sun-Sat 00:00-24:00"])) == 7
    for bad, message in [
        ("Mon 1:05-23:55", "is not like"),
        ("Fri-Mon 00:00-24:00", "runs backwards"),
        ("Xyz 00:00-24:00", "unknown day"),
    ]:
        with pytest.raises(ValueError, match=message):
            parse_schedule([bad])
