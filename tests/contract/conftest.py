"""The contract suite's seam: every Terminal implementation runs the same tests.

An implementation is a factory ``start_ms -> context manager of (Terminal, Driver)``:

* the ``Terminal`` is what the tests call (detached, able to ``initialize()``);
* the ``Driver`` is the simulator control a test may need (time, prices, the Algo Trading
  button). Remote implementations (a child process, a bridge, RPyC) provide their own driver
  that forwards these controls to the simulator on the far side.

Adding an implementation is one entry in ``IMPLEMENTATIONS``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from typing import Any, Protocol

import pytest

from mt5gate.terminal import Terminal


class Driver(Protocol):
    """Simulator controls a contract test may use (never part of the Terminal seam)."""

    def now_ms(self) -> int:
        """Server time now, epoch milliseconds."""
        ...

    def step(self, seconds: float) -> None:
        """Let ``seconds`` of market pass."""
        ...

    def jump_to(self, server_ms: int) -> None:
        """Move the server clock forward to ``server_ms``."""
        ...

    def push_tick(self, symbol: str, bid: float, ask: float | None = None) -> None:
        """Quote ``symbol`` at exactly ``bid`` / ``ask`` now."""
        ...

    def set_autotrading(self, enabled: bool) -> None:
        """Press the terminal's Algo Trading button."""
        ...


class SimDriver:
    """Driver of an in-process SimTerminal."""

    def __init__(self, sim: Any) -> None:
        self.sim = sim

    def now_ms(self) -> int:
        return int(self.sim.clock.now_ms())

    def step(self, seconds: float) -> None:
        self.sim.step(seconds)

    def jump_to(self, server_ms: int) -> None:
        self.sim.step(ms=server_ms - self.now_ms())

    def push_tick(self, symbol: str, bid: float, ask: float | None = None) -> None:
        self.sim.market.push_tick(symbol, bid, ask)

    def set_autotrading(self, enabled: bool) -> None:
        self.sim.set_autotrading(enabled)


Factory = Callable[[int], AbstractContextManager[tuple[Any, Driver]]]


def _new_sim(start_ms: int) -> Any:
    from mt5gate.sim import SimConfig, SimTerminal, VirtualClock

    return SimTerminal(SimConfig(), clock=VirtualClock(start_ms))


@contextmanager
def _sim_direct(start_ms: int) -> Iterator[tuple[Any, Driver]]:
    """SimTerminal used directly through the seam."""
    sim = _new_sim(start_ms)
    yield sim, SimDriver(sim)


@contextmanager
def _sim_dropin(start_ms: int) -> Iterator[tuple[Any, Driver]]:
    """The drop-in ``MetaTrader5`` module, configured with a SimTerminal."""
    import mt5gate.sim
    from mt5gate.sim import metatrader5

    saved = metatrader5._State.terminal
    sim = _new_sim(start_ms)
    mt5gate.sim.configure(sim)
    try:
        yield metatrader5, SimDriver(sim)
    finally:
        metatrader5._State.terminal = saved


@contextmanager
def _official_over_dropin(start_ms: int) -> Iterator[tuple[Any, Driver]]:
    """The official-package adapter, with the drop-in installed as ``MetaTrader5``."""
    import sys

    import mt5gate.sim
    from mt5gate.terminal.official import official_terminal

    saved = sys.modules.get("MetaTrader5")
    sim = _new_sim(start_ms)
    mt5gate.sim.install(sim)
    try:
        yield official_terminal(), SimDriver(sim)
    finally:
        mt5gate.sim.uninstall()
        if saved is not None:
            sys.modules["MetaTrader5"] = saved


@contextmanager
def _bridge(start_ms: int) -> Iterator[tuple[Any, Driver]]:
    """mt5gate's bridge over real TCP on loopback, serving a SimTerminal from a thread."""
    from tests.bridge.conftest import ServedBridge

    sim = _new_sim(start_ms)
    served = ServedBridge(sim)
    client = served.client()
    try:
        yield client, SimDriver(sim)
    finally:
        client.close()
        served.close()


from tests.process.contract_path import process_factory  # noqa: E402  (after the local ones)
from tests.rpyc.contract_path import rpyc_factory  # noqa: E402

#: Every Terminal implementation the contract runs against; one line each.
IMPLEMENTATIONS: dict[str, Factory] = {
    "sim": _sim_direct,
    "dropin": _sim_dropin,
    "official": _official_over_dropin,
    "bridge": _bridge,
    "rpyc": rpyc_factory,
    "process": process_factory,
}


@dataclass
class Env:
    """One implementation under test: the terminal and its driver."""

    name: str
    terminal: Any
    driver: Driver

    def attach(self, account: dict[str, Any] | None = None) -> Any:
        """``initialize()`` (with credentials when given); returns the attached terminal."""
        creds = account or {}
        ok = self.terminal.initialize(**creds)
        assert ok is True, (self.name, self.terminal.last_error())
        return self.terminal

    def step(self, seconds: float) -> None:
        self.driver.step(seconds)

    def push_tick(self, symbol: str, bid: float, ask: float | None = None) -> None:
        self.driver.push_tick(symbol, bid, ask)

    def now_s(self) -> int:
        return self.driver.now_ms() // 1000


def server_ms(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> int:
    from mt5gate.sim import server_ms as _server_ms

    return int(_server_ms(year, month, day, hour, minute))


@pytest.fixture
def env_start_ms(weekday_ms: int) -> int:
    """Server time the terminal starts at: a weekday morning. A test that needs another moment
    parametrizes this fixture (``@pytest.mark.parametrize("env_start_ms", [...])``) instead of
    jumping there: a jump simulates every tick on the way, seconds per day of market."""
    return weekday_ms


@pytest.fixture(params=list(IMPLEMENTATIONS))
def env(request: pytest.FixtureRequest, env_start_ms: int) -> Iterator[Env]:
    """A detached terminal of each implementation at ``env_start_ms`` (a weekday morning unless
    the test says otherwise), and its driver."""
    with IMPLEMENTATIONS[request.param](env_start_ms) as (terminal, driver):
        assert isinstance(terminal, Terminal)
        yield Env(request.param, terminal, driver)
        terminal.shutdown()


@pytest.fixture
def terminal(env: Env) -> Any:
    """The implementation under test, detached (``initialize()`` works)."""
    return env.terminal


@pytest.fixture
def mt5(env: Env, hedging: dict[str, Any]) -> Any:
    """The implementation under test, attached to the hedging account 5001."""
    return env.attach(hedging)
