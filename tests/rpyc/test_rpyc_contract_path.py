"""The contract path of RPyC (``rpyc_factory``): its driver moves the REMOTE simulator, and
contract-style checks hold through it; the async session runs over it unchanged."""

from __future__ import annotations

import asyncio

import pytest

from mt5gate.models import Price
from mt5gate.session.manager import MT5SessionManager
from mt5gate.sim import server_ms
from mt5gate.terminal import Terminal
from mt5gate.terminal.rpyc_client import RPyCTerminal
from tests.rpyc.classic_server import WEEKDAY_MS
from tests.rpyc.conftest import HEDGING, market_buy
from tests.rpyc.contract_path import RPyCDriver, rpyc_factory, shared_server


def test_the_factory_yields_a_detached_terminal_and_a_driver() -> None:
    with rpyc_factory(WEEKDAY_MS) as (terminal, driver):
        assert isinstance(terminal, Terminal)
        assert terminal.account_info() is None  # detached until initialize()
        assert driver.now_ms() == WEEKDAY_MS
        assert terminal.initialize(**HEDGING) is True
        terminal.shutdown()


def test_each_factory_call_gets_a_fresh_simulator() -> None:
    with rpyc_factory(WEEKDAY_MS) as (terminal, _):
        terminal.initialize(**HEDGING)
        assert terminal.order_send(market_buy()).retcode == 10009  # type: ignore[union-attr]
        assert terminal.positions_total() == 1
    with rpyc_factory(WEEKDAY_MS) as (terminal, _):
        terminal.initialize(**HEDGING)
        assert terminal.positions_total() == 0


def test_driver_moves_remote_time(mt5: RPyCTerminal, driver: RPyCDriver) -> None:
    driver.step(90)
    assert driver.now_ms() == WEEKDAY_MS + 90_000
    assert mt5.symbol_info_tick("EURUSD").time <= (WEEKDAY_MS + 90_000) // 1000  # type: ignore[union-attr]
    target = WEEKDAY_MS + 3_600_000
    driver.jump_to(target)
    assert driver.now_ms() == target


def test_driver_pushes_remote_ticks(mt5: RPyCTerminal, driver: RPyCDriver) -> None:
    driver.push_tick("EURUSD", 1.2, 1.20012)
    tick = mt5.symbol_info_tick("EURUSD")
    assert tick is not None
    assert (tick.bid, tick.ask) == (1.2, 1.20012)
    driver.push_tick("EURUSD", 1.1)
    assert mt5.symbol_info_tick("EURUSD").bid == 1.1  # type: ignore[union-attr]


def test_autotrading_off_is_10027(mt5: RPyCTerminal, driver: RPyCDriver) -> None:
    """semantics 7.4 (3): with Algo Trading off, order_send answers 10027."""
    driver.set_autotrading(False)
    assert mt5.terminal_info().trade_allowed is False  # type: ignore[union-attr]
    refused = mt5.order_send(market_buy())
    assert refused is not None
    assert refused.retcode == 10027
    driver.set_autotrading(True)
    assert mt5.order_send(market_buy()).retcode == 10009  # type: ignore[union-attr]


# Friday 22:00 server time, the forex session still open: the jump into the weekend simulates
# 14 hours of ticks, not the 98 from the weekday default.
@pytest.mark.parametrize("remote_start_ms", [server_ms(2026, 1, 9, 22)], ids=["friday"])
def test_market_closed_at_the_weekend(mt5: RPyCTerminal, driver: RPyCDriver) -> None:
    """semantics 7.4 (4): outside the session order_send gives 10018; order_check says Done."""
    driver.jump_to(server_ms(2026, 1, 10, 12))  # Saturday noon
    check = mt5.order_check(market_buy())
    assert check is not None
    assert (check.retcode, check.comment) == (0, "Done")
    closed = mt5.order_send(market_buy())
    assert closed is not None
    assert closed.retcode == 10018


def test_profit_follows_remote_ticks(mt5: RPyCTerminal, driver: RPyCDriver) -> None:
    opened = mt5.order_send(market_buy())
    assert opened is not None
    assert opened.retcode == 10009
    driver.step(60)
    driver.push_tick("EURUSD", opened.price + 0.01, opened.price + 0.01012)
    (position,) = mt5.positions_get() or ()
    assert position.profit == pytest.approx(100.0)
    account = mt5.account_info()
    assert account is not None
    assert account.profit == pytest.approx(position.profit)


def test_the_session_runs_over_rpyc() -> None:
    """MT5SessionManager(terminal=RPyCTerminal(...)) connects and reads prices."""
    server = shared_server()
    with rpyc_factory(WEEKDAY_MS):  # a fresh remote simulator
        terminal = RPyCTerminal.from_url(server.url)

        async def session_price() -> Price:
            async with MT5SessionManager(terminal=terminal, **HEDGING) as session:
                return await session.get_price("EURUSD")

        price = asyncio.run(session_price())
        assert price.symbol == "EURUSD"
        assert price.ask > price.bid > 0
        terminal.close()
