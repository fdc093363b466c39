"""MT5SessionManager core: life cycle, the state machine, the call path, reconnection.

Everything runs against the simulator's fault plan and a manual clock; only terminal-call
deadlines are real time, and they are a fraction of a second here.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time

import pytest

from mt5gate import probe
from mt5gate.circuit_breaker import BreakerPolicy
from mt5gate.errors import (
    MT5AuthError,
    MT5CircuitBreakerOpen,
    MT5ConnectionError,
    MT5DataError,
    MT5Error,
    MT5InitError,
    MT5StateError,
    MT5TimeoutError,
    MT5ValidationError,
)
from mt5gate.models import Account, Price
from mt5gate.session import (
    MT5SessionManager,
    ReconnectPolicy,
    SessionObserver,
    SessionState,
    Timeouts,
)
from mt5gate.session.state import StateChange
from mt5gate.sim import SimConfig, VirtualClock
from mt5gate.sim.terminal import SimTerminal
from tests.session.conftest import PASSWORD, TUESDAY_10, Harness, make_session, run

S = SessionState


class Recorder(SessionObserver):
    """Collects what the session reports."""

    def __init__(self) -> None:
        self.states: list[tuple[str, str]] = []
        self.calls: list[tuple[str, str]] = []
        self.reconnects: list[tuple[int, bool]] = []

    def state_changed(self, change: StateChange) -> None:
        self.states.append((change.old.value, change.new.value))

    def call_finished(self, function: str, outcome: str, duration_s: float) -> None:
        self.calls.append((function, outcome))

    def reconnect_attempted(self, attempt: int, ok: bool, error: str | None) -> None:
        self.reconnects.append((attempt, ok))


# ------------------------------------------------------------------ the seed's examples


def test_seed_examples_run_as_written() -> None:
    async def main() -> tuple[Account, Price, SessionState]:
        session, _, _ = make_session()
        async with session as manager:
            account = await manager.get_account_info()
            price = await manager.get_price("EURUSD")
            health = await probe(manager)
            assert health.status == "pass", health.reasons
            try:
                await manager.get_price("EURUSD")
            except MT5CircuitBreakerOpen:
                pytest.fail("a healthy session does not refuse calls")
            except MT5ConnectionError:
                pytest.fail("a healthy session is connected")
            await manager.reconnect()
            state = manager.state
        return account, price, state

    account, price, state = run(main)
    assert account.login == 5001
    assert account.server == "MetaQuotes-Demo"
    assert 0 < price.bid < price.ask
    assert price.symbol == "EURUSD"
    assert state == S.CONNECTED


def test_states_visible_in_repr_and_events(harness: Harness) -> None:
    assert harness.session.state == S.CONNECTED
    assert "state=connected" in repr(harness.session)
    assert PASSWORD not in repr(harness.session)
    harness.run(harness.session.disconnect())
    assert harness.session.state == S.DISCONNECTED


def test_observer_sees_transitions_and_calls() -> None:
    recorder = Recorder()

    async def main() -> None:
        session, _, _ = make_session(observer=recorder)
        async with session:
            await session.get_price("EURUSD")

    run(main)
    assert recorder.states[:2] == [("disconnected", "connecting"), ("connecting", "connected")]
    assert recorder.states[-1] == ("disconnected", "closed")
    assert ("symbol_info_tick", "ok") in recorder.calls


def test_calls_before_connect_and_after_close_are_state_errors() -> None:
    async def main() -> None:
        session, _, _ = make_session()
        with pytest.raises(MT5StateError, match="connect"):
            await session.get_price("EURUSD")
        await session.connect()
        await session.close()
        with pytest.raises(MT5StateError, match="closed"):
            await session.get_price("EURUSD")
        with pytest.raises(MT5StateError, match="closed"):
            await session.connect()

    run(main)


# ---------------------------------------------------------------------- connecting


def test_wrong_password_is_an_auth_error_without_the_password() -> None:
    async def main() -> MT5AuthError:
        session, _, _ = make_session(password="not-the-password-123")
        with pytest.raises(MT5AuthError) as caught:
            await session.connect()
        assert session.state == S.DISCONNECTED
        await session.close()
        return caught.value

    error = run(main)
    assert "not-the-password-123" not in str(error)
    assert "not-the-password-123" not in repr(error)


def test_cross_wired_terminal_is_refused() -> None:
    """The terminal is on 5002 (another program switched it); the session wants 5001."""

    async def main() -> None:
        sim = SimTerminal(SimConfig(history_days=1), clock=VirtualClock(TUESDAY_10))
        sim.initialize(login=5002, password="sim-pass-5002")
        session, _, _ = make_session(sim, login=5001, password=PASSWORD)
        session.credentials = type(session.credentials)(5001, None, None, None)
        session.connection.credentials = session.credentials
        with pytest.raises(MT5AuthError, match="5002"):
            await session.connect()
        await session.close()

    run(main)


def test_unknown_terminal_name_and_missing_official_package() -> None:
    with pytest.raises(MT5InitError, match="unknown terminal"):
        MT5SessionManager(terminal="mt4")
    with pytest.raises(MT5InitError, match="Windows"):
        MT5SessionManager(terminal="official")


def test_sim_by_name_is_announced(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="mt5gate.session"):
        session = MT5SessionManager(terminal="sim")
    assert isinstance(session.terminal, SimTerminal)
    assert "SIMULATED" in caplog.text


# --------------------------------------------------------------------- the call path


def test_failures_are_typed_errors(harness: Harness) -> None:
    with pytest.raises(MT5DataError):
        harness.run(harness.session.get_symbol_info("NOSUCH"))
    with pytest.raises(MT5ValidationError, match="symbol"):
        harness.run(harness.session.get_price(""))


def test_identical_concurrent_reads_share_one_terminal_call(harness: Harness) -> None:
    recorder = Recorder()
    harness.session.caller._observer = recorder

    async def many() -> list[Price]:
        return await asyncio.gather(*(harness.session.get_price("EURUSD") for _ in range(100)))

    prices = harness.run(many())
    assert len({p.time_msc for p in prices}) == 1
    assert recorder.calls.count(("symbol_info_tick", "ok")) < 10


def test_hung_call_times_out_and_does_not_block_later_calls() -> None:
    async def main() -> None:
        timeouts = Timeouts(call_s=0.2, connect_s=2.0, order_s=0.5, probe_s=0.2)
        reconnect = ReconnectPolicy(enabled=False)
        session, sim, _ = make_session(timeouts=timeouts, reconnect=reconnect)
        async with session:
            sim.faults.hang("account_info", cap_s=5.0)
            started = time.monotonic()
            with pytest.raises(MT5TimeoutError, match="account_info"):
                await session.get_account_info()
            with pytest.raises(MT5TimeoutError, match="still busy"):
                await session.get_price("EURUSD")
            assert time.monotonic() - started < 2.0, "later calls fail fast, not queued"
            assert session.worker.stuck
            sim.faults.release()
            await asyncio.sleep(0.05)
            assert not session.worker.stuck
            assert (await session.get_price("EURUSD")).bid > 0

    run(main)


def test_consecutive_failures_open_the_breaker() -> None:
    async def main() -> MT5CircuitBreakerOpen:
        policy = BreakerPolicy(consecutive_failures=3, open_base_s=60.0, open_max_s=60.0)
        session, sim, _ = make_session(breaker=policy, reconnect=ReconnectPolicy(enabled=False))
        async with session:
            sim.faults.ipc_error("terminal_info", -10001, times=None)
            for _ in range(3):
                with pytest.raises(MT5ConnectionError):
                    await session.call("terminal_info")
            with pytest.raises(MT5CircuitBreakerOpen) as caught:
                await session.call("terminal_info")
            return caught.value

    refused = run(main)
    assert refused.retry_after_s > 0


def test_business_rejections_do_not_trip_the_breaker(harness: Harness) -> None:
    for _ in range(20):
        with pytest.raises(MT5DataError):
            harness.run(harness.session.get_symbol_info("NOSUCH"))
    assert harness.session.breaker.snapshot().state.name == "CLOSED"


def test_reads_retry_transient_ipc_errors(harness: Harness) -> None:
    harness.terminal.faults.ipc_error("account_info", -10002, times=2)
    account = harness.run(harness.session.get_account_info())
    assert account.login == 5001
    assert len(harness.clock.sleeps) >= 1, "backoff went through the injected clock"


# ------------------------------------------------------------------- reconnection


def test_terminal_restart_reconnects_in_background_and_replays_selection() -> None:
    recorder = Recorder()

    async def main() -> None:
        session, sim, _ = make_session(observer=recorder)
        async with session:
            await session.select_symbol("GBPJPY")
            sim.restart()  # Market Watch reset, IPC gone
            with pytest.raises(MT5ConnectionError):
                await session.call("terminal_info")
            assert session.state == S.RECONNECTING
            await session.connection.wait_reconnected()
            assert session.state == S.CONNECTED
            symbols = sim.symbols_get("GBPJPY")
            assert symbols is not None
            assert symbols[0].select, "the session replayed its Market Watch selection"
            assert (await session.get_price("GBPJPY")).ask > 0

    run(main)
    assert (1, True) in recorder.reconnects or any(ok for _, ok in recorder.reconnects)
    assert ("connected", "reconnecting") in recorder.states


def test_reconnect_backs_off_with_jitter_until_the_terminal_returns() -> None:
    async def main() -> list[float]:
        policy = ReconnectPolicy(base_s=1.0, max_s=8.0)
        session, sim, clock = make_session(reconnect=policy, random_source=lambda: 1.0)
        async with session:
            sim.faults.ipc_error("initialize", -10003, times=3)
            sim.restart()
            with pytest.raises(MT5ConnectionError):
                await session.call("terminal_info")
            await session.connection.wait_reconnected()
            assert session.state == S.CONNECTED
            return clock.sleeps

    sleeps = run(main)
    assert sleeps[:4] == [1.0, 2.0, 4.0, 8.0]


def test_reconnect_gives_up_after_max_attempts() -> None:
    async def main() -> None:
        policy = ReconnectPolicy(base_s=0.1, max_attempts=2)
        session, sim, _ = make_session(reconnect=policy)
        async with session:
            sim.faults.ipc_error("initialize", -10003, times=None)
            sim.restart()
            with pytest.raises(MT5ConnectionError):
                await session.call("terminal_info")
            await session.connection.wait_reconnected()
            assert session.state == S.DISCONNECTED

    run(main)


def test_wrong_account_after_reconnect_is_detected() -> None:
    """Attach-only session (no password): after a restart another program logged the terminal
    into 5002; the reconnection verifies the account, refuses it, and never trades there."""
    failures: list[str | None] = []

    class Failures(Recorder):
        def reconnect_attempted(self, attempt: int, ok: bool, error: str | None) -> None:
            failures.append(error)

    async def main() -> None:
        policy = ReconnectPolicy(base_s=0.1, max_attempts=2)
        session, sim, _ = make_session(reconnect=policy, observer=Failures())
        session.connection.credentials = type(session.credentials)(5001, None, None, None)
        async with session:
            sim.restart()
            sim.initialize(login=5002, password="sim-pass-5002")  # someone else logs in
            sim.shutdown()
            with pytest.raises(MT5ConnectionError):
                await session.call("terminal_info")
            await session.connection.wait_reconnected()
            assert session.state == S.DISCONNECTED

    run(main)
    assert failures == ["MT5AuthError", "MT5AuthError"]


def test_book_subscription_is_replayed_after_restart() -> None:
    async def main() -> None:
        session, sim, _ = make_session()
        async with session:
            await session.subscribe_book("EURUSD")
            levels = await session.get_book("EURUSD")
            assert levels
            assert {level.type.name for level in levels} == {"SELL", "BUY"}
            sim.restart()
            with pytest.raises(MT5ConnectionError):
                await session.call("terminal_info")
            await session.connection.wait_reconnected()
            assert await session.get_book("EURUSD"), "the book subscription came back"
            await session.unsubscribe_book("EURUSD")
            with pytest.raises(MT5DataError):
                await session.get_book("EURUSD")

    run(main)


def test_trade_server_link_down_is_degraded(harness: Harness) -> None:
    harness.terminal.set_connected(False)
    up = harness.run(harness.session.connection.refresh_link())
    assert up is False
    assert harness.session.state == S.DEGRADED
    harness.terminal.set_connected(True)
    harness.run(harness.session.connection.refresh_link())
    assert harness.session.state == S.CONNECTED


def test_worker_thread_is_named_and_joined() -> None:
    async def main() -> None:
        session, _, _ = make_session(name="acct-5001")
        async with session:
            names = {t.name for t in threading.enumerate()}
            assert "acct-5001-terminal" in names
        assert "acct-5001-terminal" not in {t.name for t in threading.enumerate()}

    run(main)


def test_every_error_is_an_mt5error(harness: Harness) -> None:
    with pytest.raises(MT5Error):
        harness.run(harness.session.get_symbol_info("NOSUCH"))


def test_a_call_racing_close_is_a_state_error() -> None:
    """The worker closes between the state check and the call: a typed error, not a crash."""

    async def main() -> None:
        session, _, _ = make_session()
        await session.connect()
        session.worker.close()
        with pytest.raises(MT5StateError, match="closed"):
            await session.get_account_info()
        await session.close()

    run(main)


def test_shared_read_survives_the_leader_being_cancelled(harness: Harness) -> None:
    """Two coroutines share one tick read; cancelling the first must not fail the second."""

    async def main() -> Price:
        harness.terminal.faults.latency("symbol_info_tick", 0.05)
        leader = asyncio.ensure_future(harness.session.get_price("EURUSD"))
        await asyncio.sleep(0.01)
        follower = asyncio.ensure_future(harness.session.get_price("EURUSD"))
        await asyncio.sleep(0.01)
        leader.cancel()
        price = await follower
        assert leader.cancelled()
        return price

    assert harness.run(main()).bid > 0


def test_shared_read_failure_reaches_every_waiter(harness: Harness) -> None:
    async def main() -> list[BaseException | Price]:
        harness.terminal.faults.latency("symbol_info", 0.05, times=1)
        calls = [harness.session.get_symbol_info("NOSUCH") for _ in range(3)]
        return await asyncio.gather(*calls, return_exceptions=True)

    results = harness.run(main())
    assert all(isinstance(r, MT5DataError) for r in results)


def test_kill_switch_refuses_until_released(harness: Harness) -> None:
    harness.session.breaker.force_open("kill switch")
    with pytest.raises(MT5CircuitBreakerOpen) as caught:
        harness.run(harness.session.get_price("EURUSD"))
    assert "until it is released" in str(caught.value)
    assert "kill switch" in str(caught.value)
    assert "inf" not in str(caught.value)
    harness.session.breaker.release()
    assert harness.run(harness.session.get_price("EURUSD")).bid > 0


def test_network_urls_resolve_and_need_what_they_need() -> None:
    from mt5gate.terminal.bridge import BridgeTerminal
    from mt5gate.terminal.rpyc_client import RPyCTerminal

    with pytest.raises(MT5InitError, match="token"):
        MT5SessionManager(terminal="bridge://127.0.0.1:18812")
    bridged = MT5SessionManager(terminal="bridge://127.0.0.1:18999", terminal_token="s3cret-token")
    assert isinstance(bridged.terminal, BridgeTerminal)
    assert "s3cret-token" not in repr(bridged.terminal)
    assert "s3cret-token" not in repr(bridged)
    assert isinstance(MT5SessionManager(terminal="rpyc://127.0.0.1:18812").terminal, RPyCTerminal)
    with pytest.raises(MT5InitError, match="bad bridge URL"):
        MT5SessionManager(terminal="bridge://", terminal_token="x")
