"""The official-package adapter, exercised with the simulator installed as ``MetaTrader5``."""

from __future__ import annotations

import sys
import types
from collections.abc import Iterator

import pytest

import mt5gate.sim
from mt5gate.errors import MT5InitError
from mt5gate.session import MT5SessionManager, ReconcilePolicy
from mt5gate.sim import SimConfig, VirtualClock, server_ms
from mt5gate.sim.terminal import SimTerminal
from mt5gate.terminal.official import official_terminal
from tests.session.conftest import ManualClock, run


@pytest.fixture
def installed() -> Iterator[SimTerminal]:
    """The drop-in registered as MetaTrader5 over a virtual-clock simulator."""
    saved = sys.modules.get("MetaTrader5")
    sim = SimTerminal(SimConfig(history_days=1), clock=VirtualClock(server_ms(2026, 1, 6, 10)))
    mt5gate.sim.install(sim)
    yield sim
    mt5gate.sim.uninstall()
    if saved is not None:
        sys.modules["MetaTrader5"] = saved


def test_missing_package_explains_what_to_do() -> None:
    with pytest.raises(MT5InitError, match="Windows only"):
        official_terminal("MetaTrader5_not_here")


def test_incomplete_package_is_refused() -> None:
    fake = types.ModuleType("half_mt5")
    fake.initialize = lambda: True  # type: ignore[attr-defined]
    sys.modules["half_mt5"] = fake
    try:
        with pytest.raises(MT5InitError, match="lacks login"):
            official_terminal("half_mt5")
    finally:
        del sys.modules["half_mt5"]


def test_official_path_imports_the_installed_module(installed: SimTerminal) -> None:
    terminal = official_terminal()
    assert terminal is sys.modules["MetaTrader5"]
    assert terminal.initialize()
    tick = terminal.symbol_info_tick("EURUSD")
    assert tick is not None
    assert tick == installed.symbol_info_tick("EURUSD")


def test_session_over_the_official_name(installed: SimTerminal) -> None:
    async def main() -> float:
        session = MT5SessionManager(
            terminal="official",
            login=5001,
            password="sim-pass-5001",
            clock=ManualClock(),
            reconcile=ReconcilePolicy(sweep_interval_s=None),
        )
        async with session:
            return (await session.get_price("EURUSD")).bid

    assert run(main) > 0
