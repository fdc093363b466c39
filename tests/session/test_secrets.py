"""A known password, driven through every failure path, appears in no log, message or repr.

The simulated account's password is set to a distinctive value; the session is configured
with it (and, for the auth path, with a wrong distinctive value). Every log record of every
logger is captured at DEBUG level while the failures happen; errors are collected with their
``str``, ``repr`` and ``args``; the session, its policies and credentials are repr'd.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from mt5gate.circuit_breaker import BreakerPolicy
from mt5gate.errors import MT5Error
from mt5gate.models import OrderKind, OrderRequest, Side
from mt5gate.orders import SqliteJournal
from mt5gate.session import MT5SessionManager, ReconcilePolicy, ReconnectPolicy, Timeouts
from mt5gate.sim import AccountConfig, SimConfig, VirtualClock
from mt5gate.sim.terminal import SimTerminal
from tests.session.conftest import TUESDAY_10, ManualClock, run

SECRET = "Tr0ub4dor&3-horse-battery"
WRONG = "wr0ng-Pa55word-staple"


def _session(password: str, **options: object) -> tuple[MT5SessionManager, SimTerminal]:
    account = AccountConfig(login=6001, password=SECRET, server="Secret-Demo")
    sim = SimTerminal(
        SimConfig(accounts=(account,), history_days=1), clock=VirtualClock(TUESDAY_10)
    )
    options.setdefault("timeouts", Timeouts(call_s=0.3, connect_s=2.0, order_s=0.3, probe_s=0.3))
    options.setdefault("reconnect", ReconnectPolicy(base_s=0.01, max_s=0.02, max_attempts=2))
    session = MT5SessionManager(
        terminal=sim,
        login=6001,
        password=password,
        server="Secret-Demo",
        clock=ManualClock(),
        reconcile=ReconcilePolicy(sweep_interval_s=None),
        **options,  # type: ignore[arg-type]
    )
    return session, sim


async def _drive_failures(seen: list[object]) -> None:
    wrong, _ = _session(WRONG)
    seen.append(wrong)
    try:
        await wrong.connect()
    except MT5Error as error:
        seen.append(error)
    await wrong.close()

    policy = BreakerPolicy(consecutive_failures=2, open_base_s=30.0, open_max_s=30.0)
    session, sim = _session(SECRET, breaker=policy)
    seen += [session, session.credentials, session.timeouts, sim, sim.config]
    await session.connect()
    failures = [
        lambda: session.get_symbol_info("NOSUCH"),
        lambda: session.get_price(""),
        lambda: session.place_order(OrderRequest("EURUSD", Side.BUY, 0.001)),
        lambda: session.place_order(OrderRequest("EURUSD", Side.BUY, 0.1, OrderKind.LIMIT)),
    ]
    sim.faults.ipc_error("account_info", -10002, times=None)
    failures += [session.get_account_info, session.get_account_info, session.get_account_info]
    for attempt in failures:
        try:
            await attempt()
        except MT5Error as error:
            seen.append(error)
    sim.faults.clear()
    sim.faults.hang("terminal_info", cap_s=2.0)
    try:
        await session.get_terminal_info()
    except MT5Error as error:
        seen.append(error)
    sim.faults.release()
    sim.restart()
    try:
        await session.call("version")
    except MT5Error as error:
        seen.append(error)
    await session.connection.wait_reconnected()
    seen.append(session)
    await session.close()


def test_password_reaches_no_log_message_or_repr(caplog: pytest.LogCaptureFixture) -> None:
    seen: list[object] = []
    with caplog.at_level(logging.DEBUG):
        run(lambda: _drive_failures(seen))
    errors = [e for e in seen if isinstance(e, MT5Error)]
    assert len(errors) >= 8, "the failure paths were really taken"
    texts = [caplog.text] + [r.getMessage() for r in caplog.records]
    texts += [str(x) for x in seen] + [repr(x) for x in seen]
    texts += [repr(e.args) for e in errors]
    for text in texts:
        assert SECRET not in text
        assert WRONG not in text
    assert any("session" in r.name for r in caplog.records), "session logs were captured"


def test_password_never_reaches_the_journal_file(tmp_path: Path) -> None:
    """Even a comment that carries the password is masked before the journal stores it."""
    path = tmp_path / "orders.db"

    async def trade() -> None:
        session, _ = _session(SECRET, journal=SqliteJournal(path))
        async with session:
            done = await session.place_order(OrderRequest("EURUSD", Side.BUY, 0.1, comment=SECRET))
            events = session.journal.history(6001, done.client_id)
            assert [e.kind.value for e in events] == ["INTENT", "SENT", "ACKNOWLEDGED"]
        session.journal.close()

    run(trade)
    stored = b"".join(p.read_bytes() for p in tmp_path.iterdir())
    assert SECRET.encode() not in stored
    assert b"***" in stored  # it was there, masked
