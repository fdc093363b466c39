"""The simulated accounts' clocks in the service: ``sim_start`` / ``MT5GATE_SIM_START`` through a
real ``mt5gate serve``, the start-up line that says what trades now, the README's first order at
the weekend, and ``Gateway.build(terminal_for=...)``."""

from __future__ import annotations

import asyncio
import json
import os
import re
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from mt5gate.health import wall_utc_ms
from mt5gate.service import cli
from mt5gate.service.config import default_settings
from mt5gate.service.gateway import Gateway
from mt5gate.service.simulated import markets_now
from mt5gate.sim import RealClock, SimTerminal, VirtualClock, server_ms
from tests.service.conftest import OPEN_MARKET, Served, open_market_terminal, start_service

ROOT = Path(__file__).resolve().parents[2]
ACCOUNT = "/v1/accounts/demo"

#: A Saturday noon, server time: forex closed, BTCUSD trading. The service below starts there.
SATURDAY = "2026-01-10T12:00"


@pytest.fixture(scope="module")
def weekend(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """``mt5gate serve`` whose simulated clock starts on a Saturday (``MT5GATE_SIM_START``)."""
    served = start_service(tmp_path_factory.mktemp("weekend"), sim_start=SATURDAY)
    yield served
    served.stop()


def test_serve_says_on_start_what_trades_now_and_what_is_closed(weekend: Served) -> None:
    output = weekend.output()
    assert (
        "demo: server time Sat 2026-01-10 12:00; open now: BTCUSD, ETHUSD, LTCUSD, XRPUSD, "
        "BCHUSD, SOLUSD; closed: EURUSD, GBPUSD, USDJPY, USDCHF, AUDUSD, USDCAD, EURJPY, GBPJPY, "
    ) in output
    assert "USDNOK until Mon 00:05; XAUUSD, US500, " in output
    assert ", XOM until Mon 16:30" in output


def test_the_start_time_reaches_the_simulator_of_a_real_process(weekend: Served) -> None:
    with weekend.client() as http:
        btc = http.get(ACCOUNT + "/symbols/BTCUSD/tick").json()
        eur = http.get(ACCOUNT + "/symbols/EURUSD/tick").json()
        closed = http.post(ACCOUNT + "/orders", json={"symbol": "EURUSD", "side": "buy",
                           "volume": 0.1}, headers={"Idempotency-Key": "weekend-eur"})  # fmt: skip
    assert _server_day(btc["time_msc"]) == date(2026, 1, 10)  # the replayed Saturday
    assert _server_day(eur["time_msc"]) == date(2026, 1, 9)  # Friday's last quote
    assert (closed.status_code, closed.json()["retcode"]) == (409, 10018)  # a state: 409


def test_the_readme_first_order_trades_at_the_weekend(weekend: Served) -> None:
    """README.md's first order uses a symbol that trades every day (forex is closed here)."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    found = re.search(r"Idempotency-Key: ([\w-]+).*?-d '(\{.*?\})' \S+/orders", readme, re.DOTALL)
    assert found is not None, "README.md has no curl order"
    key, body = found.group(1), json.loads(found.group(2))
    with weekend.client() as http:
        placed = http.post(ACCOUNT + "/orders", json=body, headers={"Idempotency-Key": key})
    assert placed.status_code == 201, placed.text
    assert placed.json()["retcode"] == 10009


def test_the_start_up_line_on_a_weekday(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    settings = default_settings().model_copy(update={"data_dir": tmp_path})
    gateway = Gateway.build(settings, {}, terminal_for=open_market_terminal)  # Tuesday 10:00
    cli._announce(gateway, None, False)
    err = capsys.readouterr().err
    assert "  account 'demo': terminal sim\n    demo: server time Tue 2026-01-06 10:00; " in err
    assert "open now: EURUSD, GBPUSD," in err
    assert "closed: AAPL, TSLA, " in err  # the stocks, before the New York open
    assert ", XOM until Tue 16:30" in err
    asyncio.run(gateway.stop())


def test_terminal_for_chooses_each_accounts_terminal(tmp_path: Path) -> None:
    settings = default_settings().model_copy(update={"data_dir": tmp_path})
    injected = SimTerminal(clock=VirtualClock(server_ms(2026, 1, 6, 10)))
    gateway = Gateway.build(settings, {}, terminal_for=lambda account: injected)
    assert gateway.account("demo").session.terminal is injected
    # the account is judged on its simulator's clock, not the wall clock
    probe_clock = gateway.account("demo").monitor.probe_options["utc_now_ms"]
    assert probe_clock() == server_ms(2026, 1, 6, 8)
    asyncio.run(gateway.stop())

    configured = Gateway.build(settings, {}, terminal_for=lambda account: None)
    terminal = configured.account("demo").session.terminal
    assert isinstance(terminal, SimTerminal)
    assert isinstance(terminal.clock, RealClock)
    assert not terminal.clock.pinned
    asyncio.run(configured.stop())


def test_sim_start_pins_the_configured_simulator(tmp_path: Path) -> None:
    start = datetime.fromisoformat(OPEN_MARKET)
    demo = default_settings().accounts[0].model_copy(update={"sim_start": start})
    settings = default_settings().model_copy(update={"data_dir": tmp_path, "accounts": (demo,)})
    gateway = Gateway.build(settings, os.environ)
    clock = gateway.account("demo").session.terminal.clock  # type: ignore[attr-defined]
    assert isinstance(clock, RealClock)
    assert clock.start_ms == server_ms(2026, 1, 6, 10)
    assert gateway.account("demo").monitor.probe_options["utc_now_ms"] == clock.utc_ms
    asyncio.run(gateway.stop())


def test_real_terminals_are_judged_by_the_wall_clock(tmp_path: Path) -> None:
    official = (
        default_settings()
        .accounts[0]
        .model_copy(update={"terminal": "rpyc://127.0.0.1:1", "password_value": None})
    )
    settings = default_settings().model_copy(update={"data_dir": tmp_path, "accounts": (official,)})
    gateway = Gateway.build(settings, {})
    assert gateway.account("demo").monitor.probe_options["utc_now_ms"] is wall_utc_ms
    assert markets_now(gateway.account("demo").session.terminal) is None  # no schedule to tell
    asyncio.run(gateway.stop())


def _server_day(time_msc: int) -> date:
    return datetime.fromtimestamp(time_msc / 1000, UTC).date()
