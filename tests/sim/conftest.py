"""Fixtures for the simulator's own tests: a terminal on a virtual clock, attached and logged in."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from mt5gate.constants import OrderFilling, OrderType, SymbolFilling, TradeAction
from mt5gate.sim import SimConfig, VirtualClock, server_ms
from mt5gate.sim.terminal import SimTerminal

TUESDAY_10 = server_ms(2026, 1, 6, 10)
LOGIN, PASSWORD, SERVER = 5001, "sim-pass-5001", "MetaQuotes-Demo"


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock(TUESDAY_10)


@pytest.fixture
def sim(clock: VirtualClock) -> Iterator[SimTerminal]:
    terminal = SimTerminal(SimConfig(history_days=3), clock=clock)
    assert terminal.initialize(login=LOGIN, password=PASSWORD, server=SERVER)
    yield terminal
    terminal.faults.clear()
    terminal.shutdown()


def filling_for(terminal: SimTerminal, symbol: str) -> int:
    """The filling policy the symbol accepts (pitfall C2)."""
    info = terminal.symbol_info(symbol)
    assert info is not None
    if info.filling_mode & SymbolFilling.IOC:
        return int(OrderFilling.IOC)
    return int(OrderFilling.FOK if info.filling_mode & SymbolFilling.FOK else OrderFilling.RETURN)


def market_request(
    terminal: SimTerminal, symbol: str = "EURUSD", side: int = OrderType.BUY, **extra: Any
) -> dict[str, Any]:
    """A market DEAL request that the symbol accepts."""
    tick = terminal.symbol_info_tick(symbol)
    assert tick is not None
    request: dict[str, Any] = {
        "action": int(TradeAction.DEAL),
        "symbol": symbol,
        "volume": 0.1,
        "type": int(side),
        "price": tick.ask if side == OrderType.BUY else tick.bid,
        "deviation": 20,
        "type_filling": filling_for(terminal, symbol),
    }
    request.update(extra)
    return request
