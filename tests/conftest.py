"""Shared fixtures: the reference surface, simulated terminals on a virtual clock, and a launcher
that runs an unmodified ``import MetaTrader5`` script in a real subprocess over the simulator."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import mt5gate

ROOT = Path(__file__).resolve().parent.parent
SURFACE_PATH = ROOT / "tests" / "data" / "surface.json"

#: A weekday morning in server time (Tuesday 2026-01-06 10:00): the forex session is open.
WEEKDAY = (2026, 1, 6, 10)

#: Credentials of the default simulated accounts (``mt5gate.sim.config.demo_accounts``).
HEDGING = {"login": 5001, "password": "sim-pass-5001", "server": "MetaQuotes-Demo"}
NETTING = {"login": 5002, "password": "sim-pass-5002", "server": "MetaQuotes-Demo"}

# Runs a script as ``__main__`` over the simulator: no sitecustomize, nothing but the launcher.
# The terminal runs on a virtual clock at a weekday so output is the same on any day, and
# ``time.sleep`` in a docs script moves that clock instead of the wall clock.
_LAUNCHER = f"""
import sys, time, dataclasses
import mt5gate.sim
from mt5gate.sim import SimConfig, SimTerminal, VirtualClock, server_ms
from mt5gate.sim.market import default_catalogue
from mt5gate.constants import SymbolFilling, SymbolTradeExecution

script, profile = sys.argv[1], sys.argv[2]
config = SimConfig()
if profile == "instant":
    # MetaQuotes-Demo as the docs examples saw it: instant execution (RETURN filling allowed).
    config = SimConfig(symbols=tuple(
        dataclasses.replace(s, trade_exemode=SymbolTradeExecution.INSTANT,
                            filling_mode=int(SymbolFilling.FOK))
        for s in default_catalogue()))
terminal = SimTerminal(config, clock=VirtualClock(server_ms(*{WEEKDAY!r})))
if profile == "positions":
    # An account with open positions, a pending order and some history, as in the docs.
    terminal.initialize()
    for symbol, side in (("USDCHF", 0), ("EURUSD", 0), ("USDJPY", 1), ("GBPUSD", 0)):
        sent = terminal.order_send({{"action": 1, "symbol": symbol, "volume": 0.1, "type": side,
                                    "type_filling": 1, "magic": 234000, "comment": "setup"}})
        assert sent is not None and sent.retcode == 10009, (sent, terminal.last_error())
    ask = terminal.symbol_info_tick("GBPUSD").ask
    placed = terminal.order_send({{"action": 5, "symbol": "GBPUSD", "volume": 0.1, "type": 2,
                                  "price": round(ask - 0.01, 5), "type_filling": 2}})
    assert placed is not None and placed.retcode == 10009, (placed, terminal.last_error())
    terminal.step(60)
    terminal.shutdown()
mt5gate.sim.configure(terminal)
time.sleep = lambda seconds: terminal.step(seconds)
mt5gate.sim.install()
import runpy
sys.argv = [script]
runpy.run_path(script, run_name="__main__")
"""


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[Any]:
    """A PostgreSQL server for the whole test session (``tests/servers/postgres.py``: started
    on first use on 127.0.0.1 and a free port, stopped and removed at the end)."""
    from tests.servers.postgres import running_server

    with running_server() as server:
        yield server


@pytest.fixture(scope="session")
def postgres_url(postgres_server: Any) -> str:
    """The DSN of the session's PostgreSQL server (it carries a password). Tests keep apart
    by schema: ``PostgresStore(postgres_url, schema=...)`` with a name of their own."""
    url: str = postgres_server.url
    return url


@pytest.fixture(scope="session")
def surface() -> dict[str, Any]:
    """The official package's surface (functions, records, constants, dtypes)."""
    data: dict[str, Any] = json.loads(SURFACE_PATH.read_text(encoding="utf-8"))
    return data


def _run_script(
    script: Path, *, profile: str = "default", timeout: float = 90.0
) -> subprocess.CompletedProcess[str]:
    """Run ``script`` in a fresh interpreter with the simulator installed as ``MetaTrader5``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env["PYTHONNOUSERSITE"] = "1"
    # The script imports the mt5gate under test (a worktree's, not only the installed one's).
    env["PYTHONPATH"] = str(Path(mt5gate.__file__).resolve().parents[1])
    return subprocess.run(
        [sys.executable, "-c", _LAUNCHER, str(script.resolve()), profile],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        cwd=script.parent,
        check=False,
    )


@pytest.fixture(scope="session")
def run_script() -> Any:
    """``run_script(path, profile=...)``: the CompletedProcess of a docs script.

    Profiles: ``default`` (the default simulator), ``instant`` (every symbol instant
    execution, as on the docs' demo server), ``positions`` (open positions, a pending order).
    """
    return _run_script


@pytest.fixture(scope="session")
def hedging() -> dict[str, Any]:
    """Credentials of the simulated hedging account (5001)."""
    return dict(HEDGING)


@pytest.fixture(scope="session")
def netting() -> dict[str, Any]:
    """Credentials of the simulated netting account (5002, semantics 7.5)."""
    return dict(NETTING)


@pytest.fixture(scope="session")
def weekday_ms() -> int:
    """Server time of a weekday morning (forex open), epoch milliseconds."""
    from mt5gate.sim import server_ms

    return int(server_ms(*WEEKDAY))


@pytest.fixture
def dropin_reset() -> Iterator[None]:
    """Leave the drop-in module's terminal and ``sys.modules['MetaTrader5']`` as they were."""
    from mt5gate.sim import metatrader5

    saved_terminal = metatrader5._State.terminal
    saved_module = sys.modules.get("MetaTrader5")
    yield
    metatrader5._State.terminal = saved_terminal
    if saved_module is None:
        sys.modules.pop("MetaTrader5", None)
    else:
        sys.modules["MetaTrader5"] = saved_module
