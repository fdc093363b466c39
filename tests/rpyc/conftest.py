"""Fixtures of the RPyC path: a fresh remote simulator per test behind the shared classic server."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from mt5gate.terminal.rpyc_client import RPyCTerminal
from tests.rpyc.classic_server import WEEKDAY_MS
from tests.rpyc.contract_path import RPyCDriver, rpyc_factory

#: The simulator's default hedging account.
HEDGING = {"login": 5001, "password": "sim-pass-5001", "server": "MetaQuotes-Demo"}


@pytest.fixture
def remote_start_ms() -> int:
    """Server time the remote simulator starts at: a weekday morning. A test that needs another
    moment parametrizes this fixture instead of jumping there (a jump simulates every tick)."""
    return WEEKDAY_MS


@pytest.fixture
def remote(remote_start_ms: int) -> Iterator[tuple[RPyCTerminal, RPyCDriver]]:
    """A detached RPyCTerminal on a fresh remote simulator at ``remote_start_ms``, and its
    driver."""
    with rpyc_factory(remote_start_ms) as (terminal, driver):
        yield terminal, driver


@pytest.fixture
def mt5(remote: tuple[RPyCTerminal, RPyCDriver]) -> RPyCTerminal:
    """The RPyCTerminal, initialized on the hedging account."""
    terminal, _ = remote
    assert terminal.initialize(**HEDGING) is True, terminal.last_error()
    return terminal


@pytest.fixture
def driver(remote: tuple[RPyCTerminal, RPyCDriver]) -> RPyCDriver:
    """Controls of the remote simulator."""
    return remote[1]


def market_buy(symbol: str = "EURUSD", volume: float = 0.1, **extra: Any) -> dict[str, Any]:
    """A market buy request (IOC, as the simulated broker fills)."""
    return {"action": 1, "symbol": symbol, "volume": volume, "type": 0, "type_filling": 1} | extra
