"""A session over a ProcessTerminal heals a hung terminal by itself: kill, restart, reconnect.

No session change is involved: the hung call is answered with -10005 before the session's own
deadline (call_timeout_s < Timeouts.call_s), and the fresh child is a detached terminal whose
-10004 the session's reconnection already handles.
"""

from __future__ import annotations

import asyncio
import functools
import os
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import pytest

from mt5gate.errors import MT5ConnectionError, MT5TimeoutError
from mt5gate.health import probe
from mt5gate.session import (
    MT5SessionManager,
    ReconcilePolicy,
    ReconnectPolicy,
    SessionState,
    Timeouts,
)
from mt5gate.terminal.process import ProcessTerminal
from tests.session.conftest import ManualClock

from .hosted import SIM_CONTROLS, build_sim


@pytest.fixture
def session() -> Iterator[tuple[MT5SessionManager, ProcessTerminal, asyncio.AbstractEventLoop]]:
    terminal = ProcessTerminal(
        functools.partial(build_sim),
        name="session-terminal",
        call_timeout_s=0.5,  # below Timeouts.call_s: the child dies before the session gives up
        host_methods=SIM_CONTROLS,
    )
    session = MT5SessionManager(
        terminal=terminal,
        login=5001,
        password="sim-pass-5001",
        server="MetaQuotes-Demo",
        timeouts=Timeouts(call_s=2.0, connect_s=5.0, order_s=2.0, probe_s=1.0),
        reconnect=ReconnectPolicy(base_s=0.1, max_s=1.0),
        clock=ManualClock(),
        reconcile=ReconcilePolicy(sweep_interval_s=None),
        name="over-process",
    )
    loop = asyncio.new_event_loop()
    loop.run_until_complete(session.connect())
    yield session, terminal, loop
    loop.run_until_complete(session.close())
    loop.close()
    terminal.close()


async def _price_fails(session: MT5SessionManager) -> None:
    with pytest.raises(MT5ConnectionError) as caught:
        await session.get_price("EURUSD")
    assert caught.value.code == -10004  # the fresh child: a restarted, detached terminal


async def _probe_fails(session: MT5SessionManager) -> None:
    status = await probe(session)
    assert status.status != "pass"


async def _healed(
    session: MT5SessionManager, read: Callable[..., Awaitable[Any]], *args: Any,
    within_s: float = 30.0,
) -> Any:  # fmt: skip
    """``read(*args)`` once the session serves again. On a loaded CI machine a call of the
    fresh child (a health probe's ``terminal_info()``, this read) can outlive the child's
    0.5 s too: that child is killed and the session heals again, by the same path this test
    is about; the read is then refused meanwhile (-10004, -10005, "still busy"). Those are
    retried, within ``within_s``; anything else fails the test."""
    deadline = time.monotonic() + within_s
    while True:
        try:
            return await read(*args)
        except (MT5ConnectionError, MT5TimeoutError):
            assert time.monotonic() < deadline, "the session did not serve again"
            await asyncio.sleep(0.05)
            await session.connection.wait_reconnected()


@pytest.mark.parametrize("notice", [_price_fails, _probe_fails], ids=["next-call", "health-probe"])
def test_session_reconnects_after_the_hung_child_is_killed(
    session: tuple[MT5SessionManager, ProcessTerminal, asyncio.AbstractEventLoop],
    notice: Callable[[MT5SessionManager], Awaitable[None]],
) -> None:
    manager, terminal, loop = session
    run: Callable[[Awaitable[Any]], Any] = loop.run_until_complete
    assert manager.state == SessionState.CONNECTED
    assert run(manager.get_price("EURUSD")).bid > 0
    old = terminal.pid
    assert old is not None

    terminal.host_call("faults.hang", "symbol_info_tick", cap_s=60)
    started = time.monotonic()
    with pytest.raises(MT5TimeoutError) as caught:
        run(manager.get_price("EURUSD"))
    assert caught.value.code == -10005  # our kill answered, not the session's 2 s deadline
    assert time.monotonic() - started < 1.5
    assert not manager.worker.stuck
    with pytest.raises(ProcessLookupError):
        os.kill(old, 0)

    run(notice(manager))  # the next call meets the fresh child: -10004, reconnect
    run(manager.connection.wait_reconnected())
    assert manager.state == SessionState.CONNECTED
    assert terminal.pid not in (None, old)
    assert run(_healed(manager, manager.get_price, "EURUSD")).bid > 0
    assert run(_healed(manager, manager.get_account_info)).login == 5001
    assert manager.connection.attempts >= 1
