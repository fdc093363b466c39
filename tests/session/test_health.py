"""Health probe and monitor over a real session on the simulator.

The simulator runs on a VirtualClock in server time; the probe's wall clock is injected as that
clock minus the broker's UTC offset, so tick ages and the clock offset are exact. Terminal state
is changed on the session's worker thread, the only thread that may touch the terminal.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from typing import Any, TypeVar

import pytest

from mt5gate import health
from mt5gate.errors import MT5OrderOutcomeUnknown
from mt5gate.health import (
    ALWAYS_OPEN,
    FOREX_WEEK,
    Check,
    HealthMonitor,
    HealthStatus,
    HealthThresholds,
    MarketHours,
    Status,
    TradingWindow,
    Weekday,
    probe,
)
from mt5gate.models import OrderRequest, Side
from mt5gate.orders import ClientOrderId
from mt5gate.session import SessionState, Timeouts
from mt5gate.sim import SimConfig, VirtualClock, server_ms
from mt5gate.sim.terminal import SimTerminal
from tests.session.conftest import PASSWORD, SATURDAY_12, Harness, make_session

T = TypeVar("T")

KEYS = {
    "session:state",
    "terminal:ipc",
    "terminal:connection",
    "account:login",
    "trading:allowed",
    "terminal:ping",
    "tick:age",
    "broker:clockOffset",
    "circuitBreaker:state",
    "orders:unresolved",
    "orders:audit",
    "orders:ownership",
    "orders:block",
    "trading:halt",
}


def wall(terminal: SimTerminal, shift_s: float = 0.0) -> Callable[[], int]:
    """UTC now as the simulated broker sees it (server time minus its offset), plus a shift."""
    clock = terminal.clock
    assert isinstance(clock, VirtualClock)
    return lambda: clock.now_ms() - clock.utc_offset_s * 1000 + int(shift_s * 1000)


async def on_worker(h: Harness, job: Callable[[], T]) -> T:
    result: T = await h.session.worker.run("test", job, 5.0)
    return result


def by_name(status: HealthStatus) -> dict[str, list[Check]]:
    found: dict[str, list[Check]] = {}
    for check in status.checks:
        found.setdefault(check.name, []).append(check)
    return found


def one(status: HealthStatus, name: str) -> Check:
    (check,) = by_name(status)[name]
    return check


def probe_sim(h: Harness, shift_s: float = 0.0, **options: Any) -> HealthStatus:
    options.setdefault("symbols", ["EURUSD", "GBPUSD"])
    return h.run(probe(h.session, utc_now_ms=wall(h.terminal, shift_s), **options))


# ----------------------------------------------------------------------------------- probe


def test_healthy_session_passes_every_check(harness: Harness) -> None:
    status = probe_sim(harness)
    assert status.status == Status.PASS, status.reasons
    assert status.reasons == ()
    assert {c.name for c in status.checks} == KEYS
    assert [c.component_id for c in by_name(status)["tick:age"]] == ["EURUSD", "GBPUSD"]
    assert one(status, "broker:clockOffset").observed_value == pytest.approx(7200, abs=1)
    assert one(status, "terminal:ping").observed_value == 35.0
    assert one(status, "account:login").observed_value == 5001
    assert status.time_ms == wall(harness.terminal)()


def test_health_json_follows_the_ietf_draft(harness: Harness) -> None:
    body = probe_sim(harness).to_health_json()
    assert body["status"] == "pass"
    assert "output" not in body
    assert set(body["checks"]) == KEYS
    ticks = body["checks"]["tick:age"]
    assert [t["componentId"] for t in ticks] == ["EURUSD", "GBPUSD"]
    for entries in body["checks"].values():
        for entry in entries:
            assert {"componentId", "componentType", "status", "time"} <= set(entry)
            assert set(entry) <= {
                "componentId", "componentType", "observedValue", "observedUnit", "status",
                "time", "output",
            }  # fmt: skip
            assert entry["status"] == "pass"
            assert "output" not in entry
            assert entry["time"].endswith("Z")
    assert ticks[0]["observedUnit"] == "s"
    assert 0 <= ticks[0]["observedValue"] < 1
    json.dumps(body)  # serialisable as it is


def test_algo_trading_off_is_a_warning(harness: Harness) -> None:
    harness.run(on_worker(harness, lambda: harness.terminal.set_autotrading(False)))
    status = probe_sim(harness)
    assert status.status == Status.WARN
    check = one(status, "trading:allowed")
    assert check.status == Status.WARN
    assert check.observed_value is False
    assert "Algo Trading is off" in check.output
    body = status.to_health_json()
    assert body["status"] == "warn"
    assert "trading disabled" in body["output"]
    assert "trading disabled" in body["checks"]["trading:allowed"][0]["output"]


def test_python_api_switch_off_is_a_warning(harness: Harness) -> None:
    def disable() -> None:
        harness.terminal.flags.tradeapi_disabled = True

    harness.run(on_worker(harness, disable))
    status = probe_sim(harness, symbols=[])
    assert status.status == Status.WARN
    assert "from Python" in one(status, "trading:allowed").output


def test_lost_trade_server_link_fails(harness: Harness) -> None:
    harness.run(on_worker(harness, lambda: harness.terminal.set_connected(False)))
    status = probe_sim(harness)
    assert status.status == Status.FAIL
    assert one(status, "terminal:connection").status == Status.FAIL
    assert one(status, "terminal:ping").status == Status.WARN
    assert any("not connected to the trade server" in r for r in status.reasons)


def test_hung_terminal_fails_within_the_probe_deadline() -> None:
    async def main() -> tuple[HealthStatus, HealthStatus, float]:
        session, terminal, _ = make_session(timeouts=Timeouts(call_s=2.0, probe_s=0.2))
        await session.connect()
        terminal.faults.hang("terminal_info", cap_s=5)
        try:
            started = time.monotonic()
            first = await probe(session, symbols=["EURUSD"], utc_now_ms=wall(terminal))
            elapsed = time.monotonic() - started
            second = await probe(session, symbols=["EURUSD"], utc_now_ms=wall(terminal))
            return first, second, elapsed + time.monotonic() - started
        finally:
            terminal.faults.clear()
            await session.close()

    first, second, elapsed = asyncio.run(main())
    assert elapsed < 1.0
    for status in (first, second):
        assert status.status == Status.FAIL
        assert one(status, "terminal:ipc").status == Status.FAIL
        assert one(status, "terminal:connection").output.startswith("not checked")
        assert one(status, "tick:age").status == Status.WARN
    assert "MT5TimeoutError" in one(first, "terminal:ipc").output
    assert "busy with terminal_info()" in one(second, "terminal:ipc").output  # no call made


def test_a_long_read_within_its_deadline_is_work_not_a_fault() -> None:
    """A read that takes longer than the probe deadline but less than its own (a month of
    ticks on a real terminal) makes the probe wait for it: the terminal is busy, not dead."""

    async def main() -> tuple[HealthStatus, float, bool]:
        session, terminal, _ = make_session(timeouts=Timeouts(call_s=3.0, probe_s=0.2))
        await session.connect()
        terminal.faults.latency("copy_rates_from_pos", 0.8, times=1)
        try:
            read = asyncio.create_task(session.get_rates("EURUSD", 1, count=10))
            await asyncio.sleep(0.1)  # the read is running on the worker now
            assert session.worker.time_left() > 2.0
            started = time.monotonic()
            status = await probe(session, symbols=["EURUSD"], utc_now_ms=wall(terminal))
            waited = time.monotonic() - started
            await read
            return status, waited, session.worker.time_left() == 0.0
        finally:
            terminal.faults.clear()
            await session.close()

    status, waited, idle = asyncio.run(main())
    assert status.status == Status.PASS, status.reasons
    assert one(status, "terminal:ipc").status == Status.PASS
    assert "queued behind copy_rates_from_pos()" in one(status, "terminal:ipc").output
    assert waited > 0.5  # it did wait for the read, past its own 0.2 s
    assert idle


def test_tick_age_is_ignored_outside_trading_hours() -> None:
    sim = SimTerminal(SimConfig(history_days=1), clock=VirtualClock(SATURDAY_12))

    async def main() -> tuple[HealthStatus, HealthStatus]:
        session, _, _ = make_session(sim)
        async with session:
            closed = await probe(session, symbols=["EURUSD"], utc_now_ms=wall(sim))
            around_the_clock = MarketHours(symbols={"EURUSD": ALWAYS_OPEN})
            judged = await probe(
                session, symbols=["EURUSD"], market_hours=around_the_clock, utc_now_ms=wall(sim)
            )
        return closed, judged

    closed, judged = asyncio.run(main())
    assert closed.status == Status.PASS, closed.reasons
    tick = one(closed, "tick:age")
    assert tick.output == "market closed"
    assert isinstance(tick.observed_value, float)
    assert tick.observed_value > 12 * 3600
    assert one(closed, "broker:clockOffset").output == "market closed"
    assert judged.status == Status.FAIL
    assert one(judged, "tick:age").status == Status.FAIL
    assert one(judged, "broker:clockOffset").status == Status.WARN


def test_stale_ticks_warn_then_fail_and_the_clock_offset_shows_it(harness: Harness) -> None:
    warn = probe_sim(harness, shift_s=100)
    assert warn.status == Status.WARN
    assert {c.status for c in by_name(warn)["tick:age"]} == {Status.WARN}
    assert one(warn, "broker:clockOffset").status == Status.PASS
    fail = probe_sim(harness, shift_s=400)
    assert fail.status == Status.FAIL
    outputs = [c.output for c in by_name(fail)["tick:age"]]
    assert outputs[0] == "EURUSD: last tick 400 s ago"
    offset = one(fail, "broker:clockOffset")
    assert offset.status == Status.WARN
    assert offset.observed_value == pytest.approx(6800, abs=1)


def test_wrong_broker_offset_warns(harness: Harness) -> None:
    summer = MarketHours(utc_offset_s=10800)
    status = probe_sim(harness, market_hours=summer)
    offset = one(status, "broker:clockOffset")
    assert offset.status == Status.WARN
    assert "UTC+10800 s" in offset.output


def test_open_breaker_fails(harness: Harness) -> None:
    harness.session.breaker.force_open("kill switch")
    status = probe_sim(harness)
    assert status.status == Status.FAIL
    breaker = one(status, "circuitBreaker:state")
    assert breaker.status == Status.FAIL
    assert breaker.observed_value == "forced_open"
    assert "kill switch" in breaker.output
    assert "MT5CircuitBreakerOpen" in one(status, "terminal:ipc").output
    harness.session.breaker.disable("maintenance")
    assert one(probe_sim(harness), "circuitBreaker:state").status == Status.WARN


def test_wrong_account_fails_auth(harness: Harness) -> None:
    harness.run(on_worker(harness, lambda: harness.terminal.login(5002, "sim-pass-5002")))
    status = probe_sim(harness)
    auth = one(status, "account:login")
    assert auth.status == Status.FAIL
    assert auth.observed_value == 5002
    assert "expected 5001" in auth.output


def test_failing_calls_become_failing_checks(harness: Harness) -> None:
    harness.terminal.faults.ipc_error("account_info", code=-1)
    status = probe_sim(harness, symbols=["EURUSD", "NOSUCH"])
    assert one(status, "account:login").status == Status.FAIL
    ticks = {c.component_id: c for c in by_name(status)["tick:age"]}
    assert ticks["EURUSD"].status == Status.PASS
    assert ticks["NOSUCH"].status == Status.FAIL
    assert "no tick: MT5DataError" in ticks["NOSUCH"].output


def test_detached_session_fails_without_calling_the_terminal() -> None:
    async def main() -> HealthStatus:
        session, terminal, _ = make_session()
        await session.connect()
        await session.close()
        return await probe(session, symbols=["EURUSD"], utc_now_ms=wall(terminal))

    status = asyncio.run(main())
    assert status.status == Status.FAIL
    assert one(status, "session:state").status == Status.FAIL
    ipc = one(status, "terminal:ipc")
    assert ipc.status == Status.WARN
    assert ipc.output == "the session is closed"


def test_no_password_in_health_output(harness: Harness) -> None:
    readings = [
        probe_sim(harness, symbols=["EURUSD", PASSWORD]),  # a "symbol" spelled like the password
        probe_sim(harness, shift_s=400),
    ]
    harness.run(on_worker(harness, lambda: harness.terminal.set_connected(False)))
    readings.append(probe_sim(harness))
    for reading in readings:
        text = json.dumps(reading.to_health_json()) + repr(reading)
        assert PASSWORD not in text
    assert readings[0].status == Status.FAIL  # the bogus symbol has no tick


def test_probe_deadline_is_the_probe_timeout_even_for_slow_calls() -> None:
    async def main() -> tuple[HealthStatus, float]:
        session, terminal, _ = make_session(timeouts=Timeouts(call_s=5.0, probe_s=0.2))
        await session.connect()
        terminal.faults.latency("symbol_info_tick", 0.5, times=1)
        try:
            started = time.monotonic()
            status = await probe(session, symbols=["EURUSD"], utc_now_ms=wall(terminal))
            return status, time.monotonic() - started
        finally:
            terminal.faults.clear()
            await session.close()

    status, elapsed = asyncio.run(main())
    assert elapsed < 1.0
    assert one(status, "tick:age").status == Status.FAIL


# ------------------------------------------------------------------------------- policies


def test_market_hours_follow_the_forex_week() -> None:
    hours = MarketHours()
    assert hours.windows("EURUSD") == FOREX_WEEK
    assert not hours.is_open("EURUSD", server_ms(2026, 1, 5, 0, 4))  # Monday 00:04
    assert hours.is_open("EURUSD", server_ms(2026, 1, 5, 0, 5))
    assert hours.is_open("EURUSD", server_ms(2026, 1, 9, 23, 54))  # Friday 23:54
    assert not hours.is_open("EURUSD", server_ms(2026, 1, 9, 23, 55))
    assert not hours.is_open("EURUSD", SATURDAY_12)
    assert MarketHours(symbols={"BTCUSD": ALWAYS_OPEN}).is_open("BTCUSD", SATURDAY_12)
    assert hours.server_ms(0) == 7_200_000


def test_policies_validate() -> None:
    with pytest.raises(ValueError, match="start < end"):
        TradingWindow(Weekday.MONDAY, 600, 600)
    with pytest.raises(ValueError, match="warn <= fail"):
        HealthThresholds(ping_warn_ms=500, ping_fail_ms=100)
    with pytest.raises(ValueError, match="clock_offset_warn_s"):
        HealthThresholds(clock_offset_warn_s=0)
    with pytest.raises(ValueError, match="interval_s"):
        HealthMonitor(make_session()[0], interval_s=0)
    assert Status.worst([]) == Status.PASS
    assert Status.worst([Status.WARN, Status.FAIL, Status.PASS]) == Status.FAIL


def test_high_ping_warns_and_fails(harness: Harness) -> None:
    slow = HealthThresholds(ping_warn_ms=10, ping_fail_ms=100)
    assert one(probe_sim(harness, thresholds=slow), "terminal:ping").status == Status.WARN
    slower = HealthThresholds(ping_warn_ms=10, ping_fail_ms=20)
    assert one(probe_sim(harness, thresholds=slower), "terminal:ping").status == Status.FAIL


# --------------------------------------------------------------------------------- monitor


async def settle(monitor: HealthMonitor, status: Status) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + 5.0
    while monitor.latest is None or monitor.latest.status != status:
        assert loop.time() < end, monitor.latest
        await asyncio.sleep(0.001)


def test_monitor_reports_transitions_in_order(harness: Harness) -> None:
    terminal = harness.terminal
    seen: list[tuple[str | None, str]] = []
    monitor = HealthMonitor(
        harness.session, interval_s=1.0, symbols=["EURUSD"], utc_now_ms=wall(terminal)
    )
    monitor.on_transition(lambda old, new: seen.append((old and old.status, new.status)))
    assert monitor.latest is None
    assert not monitor.running

    async def main() -> None:
        monitor.start()
        monitor.start()  # idempotent
        await settle(monitor, Status.PASS)
        await on_worker(harness, lambda: terminal.set_autotrading(False))
        await settle(monitor, Status.WARN)
        await on_worker(harness, lambda: terminal.set_connected(False))
        await settle(monitor, Status.FAIL)
        await on_worker(
            harness, lambda: (terminal.set_connected(True), terminal.set_autotrading(True))
        )
        await settle(monitor, Status.PASS)
        assert monitor.running
        assert "pass" in repr(monitor)
        await monitor.stop()
        assert not monitor.running

    harness.run(main())
    assert seen == [
        (None, Status.PASS),
        (Status.PASS, Status.WARN),
        (Status.WARN, Status.FAIL),
        (Status.FAIL, Status.PASS),
    ]
    assert harness.clock.sleeps.count(1.0) >= 3


def test_monitor_survives_broken_callbacks_and_probes(
    harness: Harness, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monitor = HealthMonitor(harness.session, utc_now_ms=wall(harness.terminal))
    calls: list[Status] = []

    def broken(old: HealthStatus | None, new: HealthStatus) -> None:
        raise RuntimeError("listener bug")

    monitor.on_transition(broken)
    unsubscribe = monitor.on_transition(lambda old, new: calls.append(new.status))

    async def crash(*args: Any, **kwargs: Any) -> HealthStatus:
        raise TypeError("probe bug")

    async def main() -> tuple[HealthStatus, HealthStatus]:
        first = await monitor.refresh()
        monkeypatch.setattr(health, "probe", crash)
        second = await monitor.refresh()
        unsubscribe()
        monkeypatch.undo()
        await monitor.refresh()
        return first, second

    with caplog.at_level(logging.ERROR, logger="mt5gate.health"):
        first, second = harness.run(main())
    assert first.status == Status.PASS
    assert second.status == Status.FAIL
    assert second.checks[0].name == "health:probe"
    assert "TypeError" in second.reasons[0]
    assert calls == [Status.PASS, Status.FAIL]
    assert "listener bug" in caplog.text
    assert "probe bug" in caplog.text
    assert monitor.latest is not None
    assert monitor.latest.status == Status.PASS


def test_monitor_stop_without_start_and_session_state_warns(harness: Harness) -> None:
    async def main() -> HealthStatus:
        await HealthMonitor(harness.session).stop()
        harness.session.machine.move(SessionState.DEGRADED, "test")
        return await probe(harness.session, utc_now_ms=wall(harness.terminal))

    status = harness.run(main())
    assert one(status, "session:state").status == Status.WARN
    assert status.status == Status.WARN


def test_a_broken_transport_is_a_failing_check(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    def reset() -> None:
        raise ConnectionResetError("bridge socket closed")

    monkeypatch.setattr(harness.terminal, "account_info", reset)  # the seam itself breaks
    status = probe_sim(harness)
    auth = one(status, "account:login")
    assert auth.status == Status.FAIL
    assert auth.output == "ConnectionResetError: bridge socket closed"


def test_default_report_clock_is_machine_utc(harness: Harness) -> None:
    before = time.time() * 1000
    status = harness.run(probe(harness.session))
    assert before - 1 <= status.time_ms <= time.time() * 1000 + 1
    assert status.status == Status.PASS  # no watched symbols: no clock to compare


# ----------------------------------------------------------------------------------- orders


def test_unresolved_orders_and_the_halt_switch_warn(harness: Harness) -> None:
    harness.terminal.set_connected(False)  # 10031 and no trade-server link: unknown
    with pytest.raises(MT5OrderOutcomeUnknown) as caught:
        harness.run(harness.session.place_order(OrderRequest("EURUSD", Side.BUY, 0.1)))
    harness.terminal.set_connected(True)
    harness.session.halt_trading("risk desk")
    status = probe_sim(harness)
    unresolved = one(status, "orders:unresolved")
    assert (unresolved.status, unresolved.observed_value) == (Status.WARN, 1)
    assert caught.value.client_id is not None
    assert ClientOrderId(5001, caught.value.client_id).comment_tag in unresolved.output
    halt = one(status, "trading:halt")
    assert (halt.status, halt.observed_value, "risk desk" in halt.output) == (
        Status.WARN,
        True,
        True,
    )
    assert status.status == Status.WARN


def test_a_sweep_finding_fails_health(harness: Harness) -> None:
    stranger = ClientOrderId(5001, 4242).magic
    harness.terminal.order_send({"action": 1, "symbol": "EURUSD", "volume": 0.1, "type": 0,
                                 "type_filling": 1, "magic": stranger})  # fmt: skip
    harness.run(harness.session.sweep_orders())
    audit = one(probe_sim(harness), "orders:audit")
    assert (audit.status, audit.observed_value) == (Status.FAIL, 1)
    assert "4242" in audit.output


def test_order_checks_need_a_connected_account() -> None:
    session, _, _ = make_session()
    loop = asyncio.new_event_loop()
    try:
        status = loop.run_until_complete(probe(session, symbols=[]))
    finally:
        loop.close()
    assert not [c for c in status.checks if c.name.startswith("orders:")]
