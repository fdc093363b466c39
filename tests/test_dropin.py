"""The drop-in ``MetaTrader5`` module: the official documentation's example scripts run
unchanged in a real subprocess (``import MetaTrader5 as mt5`` after ``mt5gate.sim.install()``)
and print what the docs print; plus in-process checks of install() and the helpers."""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

import pytest

SCRIPTS = Path(__file__).resolve().parent / "docs_scripts"
HEADER = ["MetaTrader5 package author:  MetaQuotes Ltd.", "MetaTrader5 package version:  5.0.6231"]
RATES_COLUMNS = "time open high low close tick_volume spread real_volume"
TICKS_COLUMNS = "time bid ask last volume time_msc flags volume_real"


def _run(run_script: Any, name: str, profile: str = "default") -> list[str]:
    """Run a docs script; it must exit 0, announce the simulator on stderr, print the header."""
    done = run_script(SCRIPTS / f"{name}.py", profile=profile)
    assert done.returncode == 0, done.stderr
    assert "SIMULATED" in done.stderr
    lines: list[str] = done.stdout.splitlines()
    assert lines[:2] == HEADER
    assert "<" not in done.stdout.replace("<NA>", ""), "an enum or object repr leaked"
    return lines


def _squash(line: str) -> str:
    return " ".join(line.split())


def test_account_info_script(run_script: Any) -> None:
    """docs mt5accountinfo_py: the record as is, one ``field=value`` line per field, a frame."""
    lines = _run(run_script, "account_info")
    assert lines[2].startswith("AccountInfo(login=5001, trade_mode=0, leverage=100, ")
    assert "  balance=10000.0" in lines
    assert "  currency=USD" in lines
    assert "account_info() as dataframe:" in lines
    assert _squash(lines[lines.index("account_info() as dataframe:") + 1]) == "property value"


def test_terminal_info_script(run_script: Any) -> None:
    """docs mt5terminalinfo_py: version() as a tuple, TerminalInfo as is, a frame."""
    lines = _run(run_script, "terminal_info")
    assert re.fullmatch(r"\(500, \d+, '\d{1,2} [A-Z][a-z]{2} \d{4}'\)", lines[2])
    assert lines[3].startswith("TerminalInfo(community_account=False, ")
    assert "  connected=True" in lines
    assert "terminal_info() as dataframe:" in lines


def test_symbols_get_script(run_script: Any) -> None:
    """docs mt5symbolsget_py: a count, the first five names, ``*RU*`` and exclusions."""
    lines = _run(run_script, "symbols_get")
    assert re.fullmatch(r"Symbols:  \d+", lines[2])
    assert [line.split(". ")[0] for line in lines[3:8]] == ["1", "2", "3", "4", "5"]
    ru = lines.index(next(line for line in lines if line.startswith("len(*RU*):")))
    ru_names = lines[ru + 1 : lines.index("", ru)]
    assert all("RU" in n for n in ru_names)
    assert ru_names  # EURUSD contains "RU", as the docs point out
    group = next(line for line in lines if line.startswith("len(*,!*USD*"))
    count = int(group.split(":")[1])
    shown = [line for line in lines if " : SymbolInfo(custom=" in line]
    assert len(shown) == count
    assert not any(c in line.split(" : ")[0] for line in shown for c in ("USD", "EUR", "JPY"))


def test_symbol_info_script(run_script: Any) -> None:
    """docs mt5symbolinfo_py: SymbolInfo as is, spread and digits, 96 ``field=value`` lines."""
    lines = _run(run_script, "symbol_info")
    assert lines[2].startswith("SymbolInfo(custom=False, chart_mode=0, select=True, visible=True")
    assert re.fullmatch(r"EURJPY: spread = \d+   digits = 3", lines[3])
    start = lines.index('Show symbol_info("EURJPY")._asdict():')
    fields = lines[start + 1 : start + 97]
    assert fields[0] == "  custom=False"
    assert fields[-1] == "  path=Forex\\Crosses\\EURJPY"
    assert "symbol_info_dict() as dataframe:" in lines


def test_symbol_select_script_with_the_docs_own_eurcad(run_script: Any) -> None:
    """docs mt5symbolselect_py as written: EURCAD, not in Market Watch at start, is selected
    and described (the catalogue lists it since issue 18)."""
    lines = _run(run_script, "symbol_select")
    assert lines[2].startswith("SymbolInfo(custom=False, chart_mode=0, select=True, visible=True")
    assert lines[3] == (
        "EURCAD: currency_base = EUR   currency_profit =  CAD   currency_margin =  EUR"
    )
    start = lines.index("Show symbol_info()._asdict():")
    fields = lines[start + 1 : start + 97]
    assert fields[-1] == "  path=Forex\\Crosses\\EURCAD"
    assert "symbol_info_dict() as dataframe:" in lines


def test_symbol_info_tick_script(run_script: Any) -> None:
    """docs mt5symbolinfotick_py: ``Tick(time=..., bid=...)`` and its eight fields."""
    lines = _run(run_script, "symbol_info_tick")
    assert re.fullmatch(
        r"Tick\(time=\d+, bid=[\d.]+, ask=[\d.]+, last=0\.0, volume=0, time_msc=\d+, "
        r"flags=\d+, volume_real=0\.0\)",
        lines[2],
    )
    assert [line.split("=")[0].strip() for line in lines[4:12]] == [
        "time",
        "bid",
        "ask",
        "last",
        "volume",
        "time_msc",
        "flags",
        "volume_real",
    ]


def test_copy_rates_from_script(run_script: Any) -> None:
    """docs mt5copyratesfrom_py: rows printed as tuples, then a DataFrame with the real
    columns and ``pd.to_datetime(unit='s')`` times."""
    lines = _run(run_script, "copy_rates_from")
    raw = lines[lines.index("Display obtained data 'as is'") + 1 :][:10]
    assert all(
        re.fullmatch(r"\(\d+, [\d.]+, [\d.]+, [\d.]+, [\d.]+, \d+, \d+, \d+\)", r) for r in raw
    )
    frame = lines[lines.index("Display dataframe with data") + 1 :]
    assert _squash(frame[0]) == RATES_COLUMNS
    assert len(frame) == 11
    assert re.match(r"0\s+2026-01-0\d \d\d:00:00\s", frame[1])
    assert re.match(r"9\s+2026-01-05 12:00:00\s", frame[10])


def test_copy_ticks_range_script(run_script: Any) -> None:
    """docs mt5copyticksrange_py: a tick count, ten raw ticks, a DataFrame of ticks."""
    lines = _run(run_script, "copy_ticks_range")
    count = int(lines[2].split(":")[1])
    assert count > 1000
    raw = lines[lines.index("Display obtained ticks 'as is'") + 1 :][:10]
    assert all(re.fullmatch(r"\(\d+, [\d.]+, [\d.]+, 0\.0, 0, \d+, \d+, 0\.0\)", r) for r in raw)
    frame = lines[lines.index("Display dataframe with ticks") + 1 :]
    assert _squash(frame[0]) == TICKS_COLUMNS
    assert re.match(r"0\s+2026-01-05 00:\d\d:\d\d\s", frame[1])


def test_copy_rates_from_script_on_the_docs_date(run_script: Any) -> None:
    """docs mt5copyratesfrom_py with its own date (2020-01-10, deep history): ten H4 bars
    ending at that midnight, as a real demo server answers (issue 18)."""
    lines = _run(run_script, "copy_rates_from_2020")
    frame = lines[lines.index("Display dataframe with data") + 1 :]
    assert _squash(frame[0]) == RATES_COLUMNS
    assert len(frame) == 11
    assert re.match(r"0\s+2020-01-0\d \d\d:00:00\s", frame[1])
    assert re.match(r"9\s+2020-01-10 00:00:00\s", frame[10])


def test_copy_ticks_range_script_on_the_docs_dates(run_script: Any) -> None:
    """docs mt5copyticksrange_py with its own dates (2020-01-10 to 11): a day of ticks."""
    lines = _run(run_script, "copy_ticks_range_2020")
    assert int(lines[2].split(":")[1]) > 1000
    frame = lines[lines.index("Display dataframe with ticks") + 1 :]
    assert _squash(frame[0]) == TICKS_COLUMNS
    assert re.match(r"0\s+2020-01-10 00:\d\d:\d\d\s", frame[1])


def test_copy_ticks_from_script_on_the_docs_date(run_script: Any) -> None:
    """docs mt5copyticksfrom_py with its own date: 100,000 EURUSD ticks from 2020-01-10, the
    first one in that day's first minutes (a Friday: the forex week is open)."""
    lines = _run(run_script, "copy_ticks_from_2020")
    assert lines[2] == "Ticks received: 100000"
    raw = lines[lines.index("Display obtained ticks 'as is'") + 1 :][:10]
    assert all(re.fullmatch(r"\(\d+, [\d.]+, [\d.]+, 0\.0, 0, \d+, \d+, 0\.0\)", r) for r in raw)
    frame = lines[lines.index("Display dataframe with ticks") + 1 :]
    assert _squash(frame[0]) == TICKS_COLUMNS
    assert re.match(r"0\s+2020-01-10 00:\d\d:\d\d\s", frame[1])


def test_copy_rates_range_script_on_the_docs_dates(run_script: Any) -> None:
    """docs mt5copyratesrange_py with its own dates: USDJPY M5 from 2020-01-10 00:00 to
    2020-01-11 13:00 (a Friday, then a closed Saturday): the Friday's bars, from midnight."""
    lines = _run(run_script, "copy_rates_range_2020")
    raw = lines[lines.index("Display obtained data 'as is'") + 1 :][:10]
    assert len(raw) == 10
    assert all(
        re.fullmatch(r"\(\d+, [\d.]+, [\d.]+, [\d.]+, [\d.]+, \d+, \d+, \d+\)", r) for r in raw
    )
    frame = lines[lines.index("Display dataframe with data") + 1 :]
    assert _squash(frame[0]) == RATES_COLUMNS
    assert re.match(r"0\s+2020-01-10 00:00:00\s", frame[1])
    assert re.match(r"9\s+2020-01-10 00:45:00\s", frame[10])


def test_order_calc_margin_script(run_script: Any) -> None:
    """docs mt5ordercalcmargin_py: one margin line per symbol, in USD."""
    lines = _run(run_script, "order_calc_margin")
    assert lines[2] == "Account currency: USD"
    margins = [line for line in lines if " buy 0.1 lot margin: " in line]
    assert [m.split()[0] for m in margins] == [
        "EURUSD",
        "GBPUSD",
        "USDJPY",
        "USDCHF",
        "EURJPY",
        "GBPJPY",
    ]
    assert all(line.endswith(" USD") for line in margins)
    assert margins[2] == "   USDJPY buy 0.1 lot margin: 100.0 USD"
    assert "USDCHF is not visible, trying to switch on" in lines


def test_order_calc_profit_script(run_script: Any) -> None:
    """docs mt5ordercalcprofit_py: EURUSD 1 lot over 300 points is 300.0 USD both ways."""
    lines = _run(run_script, "order_calc_profit")
    assert "   buy EURUSD 1.0 lot: profit on 300 points => 300.0 USD" in lines
    sell = next(line for line in lines if line.startswith("   sell EURUSD 1.0 lots"))
    assert float(sell.split("=> ")[1].split()[0]) == pytest.approx(300.0)
    assert sum(1 for line in lines if "profit on 300 points =>" in line) == 6


def test_order_check_script(run_script: Any) -> None:
    """docs mt5ordercheck_py on an instant-execution server: retcode=0 comment=Done."""
    lines = _run(run_script, "order_check", profile="instant")
    assert lines[3].startswith("OrderCheckResult(retcode=0, balance=10000.0, ")
    assert "   retcode=0" in lines
    assert "   comment=Done" in lines
    assert "       traderequest: symbol=USDJPY" in lines
    assert "       traderequest: type_filling=2" in lines


def test_order_check_script_on_market_execution_is_10030(run_script: Any) -> None:
    """pitfall C2: the same script on a market-execution server reports 10030."""
    lines = _run(run_script, "order_check")
    assert "   retcode=10030" in lines


def test_order_send_script(run_script: Any) -> None:
    """docs mt5ordersend_py: open at the ask, then close with position=, retcode=10009."""
    lines = _run(run_script, "order_send", profile="instant")
    assert lines[3].startswith("2. order_send done,  OrderSendResult(retcode=10009, ")
    ticket = re.fullmatch(r"   opened position with POSITION_TICKET=(\d+)", lines[4])
    assert ticket is not None
    assert lines[7].startswith(f"4. position #{ticket.group(1)} closed, OrderSendResult(")
    assert "   retcode=10009" in lines
    assert "   comment=Request executed" in lines
    assert f"       traderequest: position={ticket.group(1)}" in lines


def test_order_send_script_on_market_execution_fails_with_10030(run_script: Any) -> None:
    """pitfall C2: the docs script's ORDER_FILLING_RETURN fails on market execution."""
    lines = _run(run_script, "order_send")
    assert "2. order_send failed, retcode=10030" in lines
    assert "   comment=Unsupported filling mode" in lines


def test_positions_get_script(run_script: Any) -> None:
    """docs mt5positionsget_py: positions as is, then a DataFrame of ``*USD*`` positions."""
    lines = _run(run_script, "positions_get", profile="positions")
    assert "Total positions on USDCHF = 1" in lines
    assert any(line.startswith("TradePosition(ticket=") for line in lines)
    assert 'positions_get(group="*USD*")=4' in lines
    header = lines[lines.index('positions_get(group="*USD*")=4') + 1].split()
    assert header[:3] == ["ticket", "time", "type"]
    assert "time_update" not in header
    assert "symbol" in header


def test_orders_get_script(run_script: Any) -> None:
    """docs mt5ordersget_py: the GBPUSD pending order as is, then a DataFrame."""
    lines = _run(run_script, "orders_get", profile="positions")
    assert "Total orders on GBPUSD: 1" in lines
    assert any(line.startswith("TradeOrder(ticket=") for line in lines)
    assert 'orders_get(group="*GBP*")=1' in lines
    header = lines[lines.index('orders_get(group="*GBP*")=1') + 1].split()
    assert header[:2] == ["ticket", "time_setup"]
    assert "time_done" not in header


def test_history_deals_get_script(run_script: Any) -> None:
    """docs mt5historydealsget_py: group filters over history, deals as is, a DataFrame."""
    lines = _run(run_script, "history_deals_get", profile="positions")
    gbp = next(line for line in lines if line.startswith("history_deals_get(2020-01-01"))
    assert gbp.endswith('group="*GBP*")=1')
    excluded = 'history_deals_get(from_date, to_date, group="*,!*EUR*,!*GBP*") ='
    line = next(x for x in lines if x.startswith(excluded))
    count = int(line.rsplit("=", 1)[1])
    deals = [x for x in lines if x.startswith("   TradeDeal(ticket=")]
    assert len(deals) == count
    assert not any("symbol='EURUSD'" in d or "symbol='GBPUSD'" in d for d in deals)
    assert any("symbol='USDCHF'" in d and "reason=3," in d and "entry=0," in d for d in deals)
    header = next(x for x in lines if x.split()[:3] == ["ticket", "order", "time"])
    assert header.split()[-3:] == ["symbol", "comment", "external_id"]


# ------------------------------------------------------------------ in process


@pytest.fixture
def installed(dropin_reset: None, weekday_ms: int) -> Any:
    """``mt5gate.sim.install()`` over a SimTerminal on a virtual clock at a weekday."""
    import mt5gate.sim
    from mt5gate.sim import SimTerminal, VirtualClock

    mt5gate.sim.configure(SimTerminal(clock=VirtualClock(weekday_ms)))
    module = mt5gate.sim.install()
    import MetaTrader5

    assert MetaTrader5 is module
    return module


def test_install_registers_metatrader5_and_announces_it(
    dropin_reset: None, capsys: pytest.CaptureFixture[str], weekday_ms: int
) -> None:
    """README: install() makes ``import MetaTrader5`` the simulator, and says so on stderr."""
    import mt5gate.sim
    from mt5gate.sim import SimTerminal, VirtualClock, metatrader5

    mt5gate.sim.install(SimTerminal(clock=VirtualClock(weekday_ms)))
    assert sys.modules["MetaTrader5"] is metatrader5
    assert "SIMULATED" in capsys.readouterr().err
    mt5gate.sim.uninstall()
    assert "MetaTrader5" not in sys.modules


def test_install_with_a_terminal_uses_it(dropin_reset: None, weekday_ms: int) -> None:
    """sim/__init__.py: install(terminal) puts that terminal behind the module."""
    import mt5gate.sim
    from mt5gate.sim import SimTerminal, VirtualClock

    terminal = SimTerminal(clock=VirtualClock(weekday_ms))
    module = mt5gate.sim.install(terminal)
    assert module.initialize()
    assert mt5gate.sim.default_terminal() is terminal
    assert module.account_info() == terminal.account_info()


def test_helpers_buy_and_close(installed: Any) -> None:
    """surface.json python_helpers: Buy sends a DEAL at the ask (deviation 10, no filling =
    FOK); Close closes every position of the symbol and returns True."""
    mt5 = installed
    assert mt5.initialize()
    result = mt5.Buy("EURUSD", 0.1)
    assert result.retcode == mt5.TRADE_RETCODE_DONE
    assert (result.request.deviation, result.request.type_filling) == (10, 0)
    assert result.price == mt5.symbol_info_tick("EURUSD").ask
    mt5.Sell("EURUSD", 0.2)
    assert mt5.positions_total() == 2
    assert mt5.Close("EURUSD") is True
    assert mt5.positions_total() == 0


def test_close_without_positions_is_false(installed: Any) -> None:
    """surface.json python_helpers: Close returns False when nothing was closed."""
    assert installed.initialize()
    assert installed.Close("EURUSD") is False


def test_buy_with_ticket_closes_that_position(installed: Any) -> None:
    """surface.json python_helpers: ``ticket=`` sends ``position=ticket``."""
    mt5 = installed
    assert mt5.initialize()
    sold = mt5.Sell("EURUSD", 0.1)
    closed = mt5.Buy("EURUSD", 0.1, ticket=sold.order)
    assert closed.request.position == sold.order
    assert mt5.positions_total() == 0


def test_positional_only_error_message(installed: Any) -> None:
    """semantics 3: the real message is ``<fn>() takes no keyword arguments``."""
    with pytest.raises(TypeError, match=r"symbol_info\(\) takes no keyword arguments"):
        installed.symbol_info(symbol="EURUSD")
