"""ProcessTerminal with real child processes: the seam's calls, hangs, deaths, isolation."""

from __future__ import annotations

import functools
import multiprocessing.context
import os
import signal
import threading
import time
from typing import Any

import numpy as np
import pytest

from mt5gate.records import AccountInfo, OrderSendResult, SymbolInfo, Tick
from mt5gate.terminal import Terminal
from mt5gate.terminal.process import ProcessTerminal

from .conftest import HEDGING, Spawn
from .hosted import broken_factory, build_sim, slow_factory, stubborn_sim

NO_IPC = (-10004, "No IPC connection")
IPC_TIMEOUT = (-10005, "IPC timeout")
BUY = {"action": 1, "symbol": "EURUSD", "volume": 0.1, "type": 0, "type_filling": 1}


def _dead(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def _wait_dead(terminal: ProcessTerminal, timeout_s: float = 5.0) -> None:
    end = time.monotonic() + timeout_s
    while terminal.alive and time.monotonic() < end:
        time.sleep(0.01)
    assert not terminal.alive


# ------------------------------------------------------------------ the seam


def test_calls_return_records_and_real_dtypes(attached: ProcessTerminal) -> None:
    local = build_sim()
    assert local.initialize(**HEDGING)
    assert isinstance(attached, Terminal)
    assert attached.pid is not None
    assert attached.pid != os.getpid()

    account = attached.account_info()
    assert isinstance(account, AccountInfo)
    assert account.login == 5001
    assert isinstance(attached.symbol_info("EURUSD"), SymbolInfo)
    tick = attached.symbol_info_tick("EURUSD")
    assert isinstance(tick, Tick)
    assert tick == local.symbol_info_tick("EURUSD")  # same seed, same virtual time

    rates = attached.copy_rates_from_pos("EURUSD", 1, 0, 10)
    assert isinstance(rates, np.ndarray)
    expected = local.copy_rates_from_pos("EURUSD", 1, 0, 10)
    assert expected is not None
    assert rates.dtype == expected.dtype
    assert np.array_equal(rates, expected)

    sent = attached.order_send(dict(BUY))
    assert isinstance(sent, OrderSendResult)
    assert sent.retcode == 10009
    assert attached.last_error() == (1, "Success")
    positions = attached.positions_get(symbol="EURUSD")
    assert positions is not None
    assert [p.ticket for p in positions] == [sent.order]


def test_last_error_after_a_failure_matches_the_simulator(spawn: Spawn) -> None:
    terminal, local = spawn(), build_sim()
    assert terminal.symbol_info("EURUSD") is None  # before initialize: semantics 2.4
    assert terminal.last_error() == NO_IPC
    assert terminal.initialize(login=5001, password="wrong") is False
    assert terminal.last_error() == (-6, "Terminal: Authorization failed")
    assert terminal.initialize(**HEDGING)
    assert local.initialize(**HEDGING)
    assert terminal.symbol_info("NOPE") is None
    assert local.symbol_info("NOPE") is None
    assert terminal.last_error() == local.last_error() == (-4, "Terminal: Not found")
    assert terminal.symbol_select("NOPE", True) is False
    assert local.symbol_select("NOPE", True) is False
    assert terminal.last_error() == local.last_error()


def test_every_terminal_function_is_forwarded(attached: ProcessTerminal) -> None:
    """All 32 functions reach the child and come back with the simulator's answers."""
    local = build_sim()
    assert local.initialize(**HEDGING)
    day = 86_400
    now = 1_767_693_600  # 2026-01-06 10:00
    calls: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = [
        ("version", (), {}),
        ("terminal_info", (), {}),
        ("symbols_total", (), {}),
        ("symbols_get", (), {"group": "*USD*"}),
        ("market_book_add", ("EURUSD",), {}),
        ("market_book_get", ("EURUSD",), {}),
        ("market_book_release", ("EURUSD",), {}),
        ("copy_rates_from", ("EURUSD", 1, now, 5), {}),
        ("copy_rates_range", ("EURUSD", 1, now - 600, now), {}),
        ("copy_ticks_from", ("EURUSD", now - 60, 5, -1), {}),
        ("copy_ticks_range", ("EURUSD", now - 60, now, -1), {}),
        ("orders_total", (), {}),
        ("orders_get", (), {}),
        ("order_calc_margin", (0, "EURUSD", 0.1, 1.1), {}),
        ("order_calc_profit", (0, "EURUSD", 0.1, 1.1, 1.2), {}),
        ("order_check", (dict(BUY),), {}),
        ("positions_total", (), {}),
        ("history_orders_total", (now - day, now + day), {}),
        ("history_orders_get", (now - day, now + day), {}),
        ("history_deals_total", (now - day, now + day), {}),
        ("history_deals_get", (now - day, now + day), {}),
        ("login", (5002, "sim-pass-5002"), {}),
    ]
    for name, args, kwargs in calls:
        remote = getattr(attached, name)(*args, **kwargs)
        expected = getattr(local, name)(*args, **kwargs)
        if isinstance(expected, np.ndarray):
            assert np.array_equal(remote, expected), name
        else:
            assert remote == expected, name
        assert attached.last_error() == local.last_error(), name
    assert attached.shutdown() is None
    assert attached.account_info() is None
    assert attached.last_error() == NO_IPC


def test_argument_errors_of_the_hosted_terminal_are_raised_here(attached: ProcessTerminal) -> None:
    pid = attached.pid
    with pytest.raises(TypeError):
        attached.symbol_info_tick(symbol="EURUSD")  # positional-only, as in the module
    with pytest.raises(TypeError, match="cannot be sent"):
        attached.order_send({**BUY, "comment": lambda: "x"})  # nothing is sent
    assert attached.pid == pid  # neither needed a new child
    assert isinstance(attached.symbol_info_tick("EURUSD"), Tick)


# ------------------------------------------------------------------ hangs, deaths


def test_a_hung_call_gets_the_child_killed_and_a_fresh_one_started(spawn: Spawn) -> None:
    terminal = spawn(call_timeout_s=0.5)
    assert terminal.initialize(**HEDGING)
    old = terminal.pid
    assert old is not None
    terminal.host_call("faults.hang", "symbol_info_tick", cap_s=60)

    started = time.monotonic()
    assert terminal.symbol_info_tick("EURUSD") is None
    took = time.monotonic() - started
    assert terminal.last_error() == IPC_TIMEOUT
    assert 0.5 <= took < 1.5
    assert _dead(old)
    assert terminal.restarts == 1
    assert terminal.pid not in (None, old)

    # The fresh child is a restarted terminal: detached until initialize().
    assert terminal.symbol_info_tick("EURUSD") is None
    assert terminal.last_error() == NO_IPC
    assert terminal.initialize(**HEDGING)
    assert isinstance(terminal.symbol_info_tick("EURUSD"), Tick)
    assert terminal.account_info().login == 5001  # type: ignore[union-attr]


def test_a_hung_boolean_call_fails_with_false(spawn: Spawn) -> None:
    terminal = spawn(call_timeout_s=0.3)
    assert terminal.initialize(**HEDGING)
    terminal.host_call("faults.hang", "symbol_select", cap_s=60)
    assert terminal.symbol_select("EURUSD", True) is False
    assert terminal.last_error() == IPC_TIMEOUT


def test_initialize_waits_its_own_timeout_not_the_call_timeout(spawn: Spawn) -> None:
    terminal = spawn(call_timeout_s=0.2)
    terminal.connect_margin_s = 0.3
    terminal.host_call("faults.hang", "initialize", cap_s=60)
    started = time.monotonic()
    assert terminal.initialize(**HEDGING, timeout=500) is False
    assert terminal.last_error() == IPC_TIMEOUT
    assert 0.8 <= time.monotonic() - started < 2.0  # 0.5 s timeout + 0.3 s margin


def test_an_order_waits_the_order_timeout_not_the_call_timeout(spawn: Spawn) -> None:
    """A broker slower than a read's deadline does not get the child killed under an order:
    order_send waits ``order_timeout_s``, and is cut off there."""
    terminal = spawn(call_timeout_s=0.3, order_timeout_s=1.5)
    assert terminal.initialize(**HEDGING)
    pid = terminal.pid
    terminal.host_call("faults.latency", "order_send", 0.6, times=1)
    started = time.monotonic()
    filled = terminal.order_send(BUY)
    assert filled is not None
    assert filled.retcode == 10009
    assert time.monotonic() - started >= 0.6
    assert terminal.pid == pid  # nothing was killed

    terminal.host_call("faults.hang", "order_send", cap_s=60)
    started = time.monotonic()
    assert terminal.order_send(BUY) is None
    assert terminal.last_error() == IPC_TIMEOUT
    assert 1.5 <= time.monotonic() - started < 2.5
    assert terminal.restarts == 1


def test_deadlines_per_function() -> None:
    terminal = ProcessTerminal(build_sim, call_timeout_s=3.0)
    deadline = terminal._deadline_s
    assert deadline("symbol_info_tick", ("EURUSD",), {}) == 3.0
    assert deadline("order_send", ({},), {}) == deadline("order_check", ({},), {}) == 13.0
    assert ProcessTerminal(build_sim, order_timeout_s=4.0)._deadline_s("order_send", (), {}) == 4.0
    with pytest.raises(ValueError, match="order_timeout_s"):
        ProcessTerminal(build_sim, order_timeout_s=0)
    assert deadline("initialize", (), {"timeout": 20_000}) == 22.0
    assert deadline("initialize", (), {}) == 62.0
    assert deadline("initialize", (), {"timeout": "soon"}) == 62.0  # refused by the terminal
    assert deadline("initialize", (), {"timeout": 100}) == 3.0  # never below call_timeout_s
    assert deadline("login", (5001, "pw", "srv", 30_000), {}) == 32.0
    assert deadline("login", (5001,), {"timeout": 10_000}) == 12.0


def test_a_child_killed_from_outside_is_replaced(spawn: Spawn) -> None:
    terminal = spawn()
    assert terminal.initialize(**HEDGING)
    old = terminal.pid
    assert old is not None
    os.kill(old, signal.SIGKILL)
    _wait_dead(terminal)
    assert "dead" in repr(terminal)

    assert terminal.account_info() is None
    assert terminal.last_error() == NO_IPC
    assert terminal.pid not in (None, old)
    assert terminal.initialize(**HEDGING)
    assert terminal.account_info().login == 5001  # type: ignore[union-attr]


def test_shutdown_of_a_dead_child_returns_none(spawn: Spawn) -> None:
    terminal = spawn()
    assert terminal.initialize(**HEDGING)
    old = terminal.pid
    assert old is not None
    os.kill(old, signal.SIGKILL)
    _wait_dead(terminal)
    assert terminal.shutdown() is None
    assert terminal.last_error() == NO_IPC
    assert terminal.pid != old


def test_shutdown_without_a_ready_child_starts_nothing(spawn: Spawn) -> None:
    terminal = spawn()
    assert terminal.shutdown() is None
    assert terminal.pid is None
    assert repr(terminal).endswith("not started>")


def test_an_interrupted_call_kills_the_child_so_no_stale_reply_is_read(
    attached: ProcessTerminal, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An exception while waiting (Ctrl-C) leaves a reply in flight: the child must go."""
    old = attached.pid
    assert old is not None
    child = attached._child
    assert child is not None

    def interrupted(timeout: float) -> bool:
        raise KeyboardInterrupt

    monkeypatch.setattr(child, "conn", _ConnWith(child.conn, poll=interrupted))
    with pytest.raises(KeyboardInterrupt):
        attached.symbol_info_tick("EURUSD")
    assert attached.pid is None  # not restarted at once after an interrupt
    assert _dead(old)
    assert attached.symbol_info_tick("EURUSD") is None  # a new, detached child
    assert attached.last_error() == NO_IPC


class _ConnWith:
    """A pipe end with one method replaced (Connection objects take no attributes)."""

    def __init__(self, conn: Any, **methods: Any) -> None:
        self._conn = conn
        self._methods = methods

    def __getattr__(self, name: str) -> Any:
        return self._methods.get(name) or getattr(self._conn, name)


# ------------------------------------------------------------------ isolation


def test_two_terminals_two_accounts_two_processes(spawn: Spawn) -> None:
    first, second = spawn(default_login=5001), spawn(default_login=5002)
    assert first.initialize()  # attach to whatever each terminal is logged into
    assert second.initialize()
    for _ in range(3):  # interleaved: each answers for its own account, every time
        assert first.account_info().login == 5001  # type: ignore[union-attr]
        assert second.account_info().login == 5002  # type: ignore[union-attr]
    assert None not in (first.pid, second.pid)
    assert len({first.pid, second.pid, os.getpid()}) == 3
    first.close()
    assert second.account_info().login == 5002  # type: ignore[union-attr]


# ------------------------------------------------------------------ host calls


def test_host_calls_reach_listed_controls_only(attached: ProcessTerminal) -> None:
    now = attached.host_call("clock.now_ms")
    assert attached.host_call("step", 60) == now + 60_000
    attached.host_call("market.push_tick", "EURUSD", 1.2, 1.2002)
    tick = attached.symbol_info_tick("EURUSD")
    assert tick is not None
    assert (tick.bid, tick.ask) == (1.2, 1.2002)
    with pytest.raises(PermissionError, match="not in host_methods"):
        attached.host_call("restart")
    with pytest.raises(PermissionError):
        attached.host_call("__class__")
    with pytest.raises(Exception, match="Call failed"):  # the child's exception, raised here
        attached.host_call("market.push_tick", "NOPE", 1.0)


def test_host_methods_must_be_public_dotted_names() -> None:
    for bad in ("_error", "faults._rules", "market.__class__", "a..b", "", "x y"):
        with pytest.raises(ValueError, match="public names"):
            ProcessTerminal(build_sim, host_methods={bad})


def test_a_host_call_that_hangs_raises_connection_error(spawn: Spawn) -> None:
    terminal = spawn(call_timeout_s=0.3)
    terminal.host_call("step", 3600)
    old = terminal.pid
    with pytest.raises(ConnectionError, match=r"faults.wait\(\) did not answer within 0.3 s"):
        terminal.host_call("faults.wait", 60)
    assert terminal.pid not in (None, old)
    # The replacement is a fresh simulator, at the factory's start time again.
    assert terminal.host_call("clock.now_ms") == build_sim().clock.now_ms()


# ------------------------------------------------------------------ start-up


def test_factory_must_be_a_picklable_callable() -> None:
    def nested() -> Any:  # not importable by name: the child could not get it
        return build_sim()

    with pytest.raises(TypeError, match="picklable"):
        ProcessTerminal(nested)
    with pytest.raises(TypeError, match="callable"):
        ProcessTerminal(build_sim())  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="> 0"):
        ProcessTerminal(build_sim, call_timeout_s=0)


def test_a_factory_that_fails_in_the_child(spawn: Spawn) -> None:
    terminal = spawn(factory=broken_factory)
    assert terminal.initialize() is False
    code, message = terminal.last_error()
    assert code == -10003
    assert "IPC initialize failed" in message
    assert "RuntimeError: no terminal here" in message
    assert terminal.pid is None  # not restarted in a loop
    assert terminal.account_info() is None
    assert terminal.last_error() == NO_IPC
    with pytest.raises(ConnectionError, match="could not build"):
        terminal.host_call("step", 1)


def test_a_child_that_does_not_start_in_time(spawn: Spawn) -> None:
    terminal = spawn(factory=slow_factory)
    terminal.start_timeout_s = 0.5
    terminal.start()
    terminal.start()  # idempotent
    pid = terminal.pid
    assert pid is not None
    assert terminal.initialize() is False
    assert terminal.last_error() == (-10003, "IPC initialize failed, terminal child process "
                                     "did not start within 0.5 s")  # fmt: skip
    assert _dead(pid)


def test_a_child_that_dies_while_starting(spawn: Spawn) -> None:
    terminal = spawn(factory=slow_factory)
    terminal.start()
    pid = terminal.pid
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    assert terminal.version() is None
    assert terminal.last_error() == NO_IPC
    assert terminal.pid is None


def test_when_no_process_can_be_started(spawn: Spawn, monkeypatch: pytest.MonkeyPatch) -> None:
    terminal = spawn(call_timeout_s=0.3)
    assert terminal.initialize(**HEDGING)

    def no_processes(self: Any) -> None:
        raise OSError("Resource temporarily unavailable")

    monkeypatch.setattr(multiprocessing.context.SpawnProcess, "start", no_processes)
    terminal.host_call("faults.hang", "account_info", cap_s=60)
    assert terminal.account_info() is None  # killed; its successor could not start
    assert terminal.last_error() == IPC_TIMEOUT
    assert terminal.pid is None
    assert terminal.initialize() is False
    assert terminal.last_error() == (
        -10003,
        "IPC initialize failed, cannot start: Resource temporarily unavailable",
    )
    assert terminal.account_info() is None
    assert terminal.last_error() == NO_IPC
    with pytest.raises(OSError, match="unavailable"):
        terminal.start()
    monkeypatch.undo()
    assert terminal.initialize(**HEDGING)


def test_a_child_that_ignores_sigterm_is_killed(spawn: Spawn) -> None:
    terminal = spawn(call_timeout_s=0.3, factory=stubborn_sim)
    terminal.kill_grace_s = 0.2
    assert terminal.initialize(**HEDGING)
    old = terminal.pid
    assert old is not None
    terminal.host_call("faults.hang", "symbol_info_tick", cap_s=60)
    started = time.monotonic()
    assert terminal.symbol_info_tick("EURUSD") is None
    assert terminal.last_error() == IPC_TIMEOUT
    assert 0.5 <= time.monotonic() - started < 1.5  # deadline + grace, then SIGKILL
    assert _dead(old)


# ------------------------------------------------------------------ closing


def test_close_stops_the_child_and_is_final(spawn: Spawn) -> None:
    with spawn() as terminal:
        assert terminal.initialize(**HEDGING)
        pid = terminal.pid
        assert pid is not None
        assert f"pid={pid} alive" in repr(terminal)
    assert _dead(pid)
    assert repr(terminal).endswith("closed>")
    assert terminal.pid is None
    terminal.close()  # idempotent
    assert terminal.initialize() is False
    assert terminal.last_error() == NO_IPC
    assert terminal.symbol_info_tick("EURUSD") is None
    with pytest.raises(ValueError, match="closed"):
        terminal.start()
    with pytest.raises(ConnectionError, match="closed"):
        terminal.host_call("step", 1)


def test_close_of_a_child_still_starting_kills_it_at_once(spawn: Spawn) -> None:
    terminal = spawn(factory=slow_factory)
    terminal.start()
    pid = terminal.pid
    assert pid is not None
    started = time.monotonic()
    terminal.close()
    assert time.monotonic() - started < 2.0  # not the 5 s stop timeout
    assert _dead(pid)


def test_close_during_a_hung_call_kills_at_once_and_starts_nothing(spawn: Spawn) -> None:
    terminal = spawn(call_timeout_s=30.0)
    assert terminal.initialize(**HEDGING)
    pid = terminal.pid
    assert pid is not None
    terminal.host_call("faults.hang", "symbol_info_tick", cap_s=60)
    results: list[Any] = []
    caller = threading.Thread(target=lambda: results.append(terminal.symbol_info_tick("EURUSD")))
    caller.start()
    time.sleep(0.3)  # the call is in the child now, hung
    started = time.monotonic()
    terminal.close()
    caller.join(5.0)
    assert time.monotonic() - started < 3.0  # not the 5 s stop timeout
    assert results == [None]
    assert terminal.last_error() == NO_IPC
    assert _dead(pid)
    assert terminal.pid is None  # no successor after close


def test_factories_for_tests_are_picklable() -> None:
    ProcessTerminal(functools.partial(build_sim, default_login=5002))
