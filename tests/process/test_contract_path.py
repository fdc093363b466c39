"""Contract-style checks through ``process_factory``, the child-process contract path.

The full contract suite runs it once ``tests/contract/conftest.py`` lists it; these checks cover
what a remote path can get wrong: detached start, the driver's controls on the far side, records
by value, and trading gates.
"""

from __future__ import annotations

from typing import Any

import pytest

from mt5gate.records import Tick, TradeRequest
from mt5gate.terminal import Terminal

from .conftest import HEDGING
from .contract_path import ProcessDriver, process_factory
from .hosted import TUESDAY_10

NO_IPC = (-10004, "No IPC connection")
DEAL, BUY, IOC, DONE, AUTOTRADING_OFF = 1, 0, 1, 10009, 10027


@pytest.fixture
def env() -> Any:
    with process_factory(int(TUESDAY_10)) as pair:
        yield pair


def _buy(mt5: Terminal) -> dict[str, Any]:
    tick = mt5.symbol_info_tick("EURUSD")
    assert tick is not None
    return {"action": DEAL, "symbol": "EURUSD", "volume": 0.1, "type": BUY, "price": tick.ask,
            "deviation": 20, "magic": 234000, "type_filling": IOC}  # fmt: skip


def test_starts_detached(env: tuple[Terminal, ProcessDriver]) -> None:
    terminal, _ = env
    assert isinstance(terminal, Terminal)
    assert terminal.account_info() is None
    assert terminal.last_error() == NO_IPC
    assert terminal.symbol_select("EURUSD", True) is False
    assert terminal.last_error() == NO_IPC


def test_driver_moves_time_and_prices_on_the_far_side(env: tuple[Terminal, ProcessDriver]) -> None:
    terminal, driver = env
    assert terminal.initialize(**HEDGING)
    start = driver.now_ms()
    assert start == TUESDAY_10
    driver.step(90)
    assert driver.now_ms() == start + 90_000
    driver.jump_to(start + 3_600_000)
    assert driver.now_ms() == start + 3_600_000
    driver.push_tick("EURUSD", 1.25, 1.2502)
    tick = terminal.symbol_info_tick("EURUSD")
    assert isinstance(tick, Tick)
    assert (tick.bid, tick.ask) == (1.25, 1.2502)
    assert tick.time_msc == start + 3_600_000


def test_a_market_buy_and_the_autotrading_gate(env: tuple[Terminal, ProcessDriver]) -> None:
    terminal, driver = env
    assert terminal.initialize(**HEDGING)
    result = terminal.order_send(_buy(terminal))
    assert result is not None
    assert result.retcode == DONE
    assert isinstance(result.request, TradeRequest)
    assert terminal.positions_total() == 1

    driver.set_autotrading(False)
    info = terminal.terminal_info()
    assert info is not None
    assert info.trade_allowed is False
    refused = terminal.order_send(_buy(terminal))
    assert refused is not None
    assert refused.retcode == AUTOTRADING_OFF
    assert terminal.positions_total() == 1


def test_driver_controls_are_the_only_host_methods(env: tuple[Terminal, ProcessDriver]) -> None:
    _, driver = env
    with pytest.raises(PermissionError):
        driver.terminal.host_call("faults.hang", "order_send")
