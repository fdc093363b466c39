"""``MT5SessionManager.market_watch()``: the selected symbols, in ``symbols_get()`` order, asked
of the simulator directly (its ``MarketWatch`` extension) and of any other terminal through
``symbols_get()``; the start-up sweep reads the server's clock from the first of them."""

from __future__ import annotations

from typing import Any

from mt5gate.session.ports import SessionPorts
from mt5gate.sim.terminal import SimTerminal
from mt5gate.terminal.base import MarketWatch
from tests.session.conftest import Harness


class _Plain:
    """The simulator seen as the ``MetaTrader5`` module: without ``market_watch``."""

    def __init__(self, terminal: SimTerminal) -> None:
        self._terminal = terminal

    def __getattr__(self, name: str) -> Any:
        if name == "market_watch":
            raise AttributeError(name)
        return getattr(self._terminal, name)


def test_the_simulator_names_market_watch_as_symbols_get_flags_it(harness: Harness) -> None:
    terminal = harness.terminal
    assert isinstance(terminal, MarketWatch)
    harness.run(harness.session.select_symbol("USDJPY"))
    flagged = [s.name for s in terminal.symbols_get() or () if s.select]
    assert terminal.market_watch() == tuple(flagged)
    assert harness.run(harness.session.market_watch()) == flagged


def test_any_other_terminal_is_asked_symbols_get(harness: Harness) -> None:
    plain = _Plain(harness.terminal)
    assert not isinstance(plain, MarketWatch)
    expected = list(harness.terminal.market_watch() or ())
    harness.session.caller.terminal = plain  # type: ignore[assignment]
    harness.session.terminal = plain  # type: ignore[assignment]
    assert harness.run(harness.session.market_watch()) == expected


def test_the_server_clock_is_the_first_selected_symbols_tick(harness: Harness) -> None:
    first = (harness.terminal.market_watch() or ("EURUSD",))[0]
    tick = harness.terminal.symbol_info_tick(first)
    assert tick is not None
    now_s = harness.run(SessionPorts(harness.session).server_now_s())
    assert now_s == tick.time_msc // 1000
