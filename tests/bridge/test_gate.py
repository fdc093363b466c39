"""The terminal gate on real threads: one caller at a time on its own thread, deadlines while
waiting, a stuck call answered by the watchdog and abandoned, and a clean close."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from mt5gate.bridge.gate import CallAbandonedError, TerminalGate
from mt5gate.terminal.worker import DeadlineExceededError, WorkerClosedError, WorkerStuckError


def never_overdue() -> bool:
    raise AssertionError("no call here should outlive its deadline")


@pytest.fixture
def gate() -> Iterator[TerminalGate]:
    opened = TerminalGate("test-gate-watchdog", horizon_s=60.0)
    opened.start()
    yield opened
    opened.close()
    assert not any(t.name == "test-gate-watchdog" for t in threading.enumerate())


def in_thread(action: Callable[[], Any]) -> tuple[threading.Thread, list[Any]]:
    """Run ``action`` on a new thread; the list receives its result or its exception."""
    outcome: list[Any] = []

    def run() -> None:
        try:
            outcome.append(action())
        except Exception as error:
            outcome.append(error)

    thread = threading.Thread(target=run)
    thread.start()
    return thread, outcome


def holding(gate: TerminalGate, deadline_s: float = 30.0) -> tuple[threading.Event, Any]:
    """A thread inside the gate until the returned event is set."""
    inside, release = threading.Event(), threading.Event()

    def call() -> str:
        inside.set()
        release.wait(10.0)
        return "held"

    thread, outcome = in_thread(lambda: gate.run("hold", call, deadline_s, never_overdue))
    assert inside.wait(5.0)
    return release, (thread, outcome)


def test_calls_run_on_their_callers_threads_one_at_a_time(gate: TerminalGate) -> None:
    inside = most = 0
    guard = threading.Lock()
    callers: set[str] = set()

    def call() -> str:
        nonlocal inside, most
        with guard:
            inside += 1
            most = max(most, inside)
        time.sleep(0)  # invite another thread in, if one could get in
        with guard:
            inside -= 1
        return threading.current_thread().name

    def caller() -> None:
        for _ in range(300):
            callers.add(gate.run("tick", call, 30.0, never_overdue))

    threads = [threading.Thread(target=caller, name=f"caller-{n}") for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert most == 1
    assert callers == {f"caller-{n}" for n in range(8)}
    assert gate.busy() is None


def test_a_call_that_cannot_get_in_before_its_deadline_never_runs(gate: TerminalGate) -> None:
    release, (holder, held) = holding(gate)
    ran: list[str] = []
    try:
        with pytest.raises(DeadlineExceededError, match="queued behind another call"):
            gate.run("late", lambda: ran.append("late"), 0.2, never_overdue)
        busy = gate.busy()
        assert busy is not None
        assert busy[0] == "hold"
    finally:
        release.set()
        holder.join(5)
    assert held == ["held"]
    assert ran == []
    assert gate.run("after", lambda: "ok", 5.0, never_overdue) == "ok"


def test_a_waiting_call_gets_in_when_the_terminal_is_free(gate: TerminalGate) -> None:
    release, (holder, _) = holding(gate)
    waiter, outcome = in_thread(lambda: gate.run("next", lambda: "next", 10.0, never_overdue))
    time.sleep(0.1)
    assert outcome == []  # still waiting
    release.set()
    holder.join(5)
    waiter.join(5)
    assert outcome == ["next"]


def test_a_stuck_call_is_answered_by_the_watchdog_and_its_result_dropped() -> None:
    gate = TerminalGate("stuck-gate-watchdog", horizon_s=0.2)
    gate.start()
    release = threading.Event()
    answered: list[str] = []

    def overdue() -> bool:
        answered.append(threading.current_thread().name)
        return True

    def hang() -> str:
        release.wait(10.0)
        return "late result"

    try:
        stuck, outcome = in_thread(lambda: gate.run("hang", hang, 0.2, overdue))
        deadline = time.monotonic() + 5.0
        while not answered:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        assert answered == ["stuck-gate-watchdog"]
        assert gate.stuck
        assert "stuck" in repr(gate)
        with pytest.raises(WorkerStuckError, match=r"still busy with hang\(\)"):
            gate.run("next", lambda: "next", 5.0, never_overdue)
        release.set()
        stuck.join(5)
        assert len(outcome) == 1
        assert isinstance(outcome[0], CallAbandonedError)
        assert "hang() returned" in str(outcome[0])
        assert not gate.stuck
        assert gate.run("next", lambda: "next", 5.0, never_overdue) == "next"
        assert answered == ["stuck-gate-watchdog"]  # told once
    finally:
        release.set()
        gate.close()


def test_a_late_call_nobody_answered_for_returns_its_result() -> None:
    gate = TerminalGate("late-gate-watchdog", horizon_s=0.1)
    gate.start()
    told = threading.Event()

    def overdue() -> bool:
        told.set()
        return False  # nobody took it over: its own caller answers when it returns

    try:
        assert gate.run("slow", lambda: told.wait(5.0) and "result", 0.1, overdue) == "result"
    finally:
        gate.close()


def test_a_call_due_before_the_watchdog_looks_again_wakes_it(gate: TerminalGate) -> None:
    # the watchdog sleeps for its 60 s horizon; a call due in 0.2 s must still be noticed then
    told = threading.Event()
    release = threading.Event()

    def overdue() -> bool:
        told.set()
        release.set()
        return False

    time.sleep(0.05)  # the watchdog is asleep for the horizon now
    started = time.monotonic()
    gate.run("short", lambda: release.wait(30.0), 0.2, overdue)
    assert told.is_set()
    assert time.monotonic() - started < 20.0  # not the 60 s horizon


def test_close_fails_waiting_and_new_calls_and_joins_the_watchdog() -> None:
    gate = TerminalGate("closing-gate-watchdog", horizon_s=60.0)
    gate.start()
    release, (holder, held) = holding(gate)
    waiter, outcome = in_thread(lambda: gate.run("waits", lambda: "ran", 30.0, never_overdue))
    time.sleep(0.1)
    gate.close()
    waiter.join(5)
    assert len(outcome) == 1
    assert isinstance(outcome[0], WorkerClosedError)
    with pytest.raises(WorkerClosedError):
        gate.run("new", lambda: "ran", 5.0, never_overdue)
    with pytest.raises(WorkerClosedError):
        gate.start()
    assert not any(t.name == "closing-gate-watchdog" for t in threading.enumerate())
    release.set()  # the call inside ends on its caller's thread, with its result
    holder.join(5)
    assert held == ["held"]
    assert "closed" in repr(gate)


def test_the_horizon_must_be_positive() -> None:
    with pytest.raises(ValueError, match="horizon_s must be > 0"):
        TerminalGate("bad", horizon_s=0.0)


def test_start_is_idempotent_and_close_needs_no_start() -> None:
    never_started = TerminalGate("never-started", horizon_s=1.0)
    never_started.close()
    with pytest.raises(WorkerClosedError):
        never_started.run("late", lambda: "ran", 1.0, never_overdue)
    gate = TerminalGate("twice-gate-watchdog", horizon_s=1.0)
    gate.start()
    gate.start()
    assert [t.name for t in threading.enumerate()].count("twice-gate-watchdog") == 1
    gate.close()


def test_a_failing_overdue_callback_is_logged_and_the_watchdog_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    gate = TerminalGate("failing-gate-watchdog", horizon_s=0.1)
    gate.start()
    told: list[str] = []

    def broken() -> bool:
        told.append("broken")
        raise RuntimeError("a bug in the callback")

    def fine() -> bool:
        told.append("fine")
        return False

    try:
        with caplog.at_level("ERROR", logger="mt5gate.bridge"):
            slow = threading.Event()
            assert gate.run("first", lambda: slow.wait(0.5) or "late", 0.1, broken) == "late"
            again = threading.Event()
            assert gate.run("second", lambda: again.wait(0.5) or "late", 0.1, fine) == "late"
        assert told == ["broken", "fine"]  # still watching after the failure
        assert "answering the overdue first() failed" in caplog.text
    finally:
        gate.close()
