"""One test per bug the anchor libraries shipped (RELIABILITY.md §1); ours must not have them."""

from __future__ import annotations

import ast
import asyncio
import gc
import inspect
import random
import threading
import time

import pytest

import mt5gate.circuit_breaker as module
from mt5gate.circuit_breaker import (
    BreakerOpenError,
    BreakerPolicy,
    BreakerState,
    BreakerTransition,
    CircuitBreaker,
)

from .helpers import CountingTerminal, FakeClock, make, to_half_open, trip

CALLERS = 1000


def test_stuck_half_open_when_trials_never_report(clock: FakeClock) -> None:
    """resilience4j #903 and #935, Polly #1979: trial calls that never report back (and are
    garbage-collected) must not hold HALF_OPEN forever; after half_open_max_wait_s it re-opens."""
    breaker = make(clock, half_open_permits=3, half_open_max_wait_s=30.0)
    events: list[BreakerTransition] = []
    breaker.subscribe(events.append)
    to_half_open(breaker, clock)
    lost = [breaker.acquire() for _ in range(3)]
    assert breaker.snapshot().half_open_in_flight == 3
    del lost
    gc.collect()
    with pytest.raises(BreakerOpenError):  # slots still taken, but not for ever
        breaker.acquire()
    clock.advance(30.0)
    with pytest.raises(BreakerOpenError) as refused:
        breaker.acquire()
    assert refused.value.state is BreakerState.OPEN
    assert (events[-1].old, events[-1].new) == (BreakerState.HALF_OPEN, BreakerState.OPEN)
    assert "no trial verdict within 30 s" in events[-1].reason
    clock.advance(breaker.policy.open_max_s)
    fresh = [breaker.acquire() for _ in range(3)]  # a new HALF_OPEN with every slot free
    for permit in fresh:
        permit.success(0.1)
    assert breaker.state is BreakerState.CLOSED


def test_over_admission_at_open_to_half_open_switch_threads(clock: FakeClock) -> None:
    """resilience4j #1432, Polly #216: 1,000 threads arrive together as the open duration ends;
    exactly half_open_permits trial calls reach the terminal (no lock is held across the call)."""
    breaker, terminal = make(clock, half_open_permits=3), CountingTerminal()
    to_half_open(breaker, clock)
    start, everyone_tried = threading.Barrier(CALLERS), threading.Barrier(CALLERS)
    refused: list[BreakerOpenError] = []

    def caller() -> None:
        start.wait(timeout=60)
        try:
            permit = breaker.acquire()
        except BreakerOpenError as error:
            refused.append(error)
            everyone_tried.wait(timeout=60)
            return
        terminal.order_send()
        everyone_tried.wait(timeout=60)  # trials report only once every caller has asked
        permit.success(0.01)

    threads = [threading.Thread(target=caller, name=f"caller-{i}") for i in range(CALLERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert terminal.calls == 3
    assert len(refused) == CALLERS - 3
    assert {error.state for error in refused} == {BreakerState.HALF_OPEN}
    assert breaker.state is BreakerState.CLOSED


def test_over_admission_at_open_to_half_open_switch_tasks(clock: FakeClock) -> None:
    """resilience4j #1432, Polly #216, asyncio flavour: 1,000 tasks through a barrier, exactly
    half_open_permits enter ``async with breaker.guard()`` and reach the terminal."""
    breaker, terminal = make(clock, half_open_permits=3), CountingTerminal()
    to_half_open(breaker, clock)

    async def main() -> int:
        start, everyone_tried = asyncio.Barrier(CALLERS), asyncio.Barrier(CALLERS)

        async def caller() -> bool:
            await start.wait()
            try:
                async with breaker.guard():
                    terminal.order_send()
                    await everyone_tried.wait()
                    return True
            except BreakerOpenError:
                await everyone_tried.wait()
                return False

        admitted = await asyncio.gather(*(caller() for _ in range(CALLERS)))
        return sum(admitted)

    assert asyncio.run(main()) == 3
    assert terminal.calls == 3
    assert breaker.state is BreakerState.CLOSED


def test_business_exception_resets_nothing(clock: FakeClock) -> None:
    """pybreaker and circuitbreaker: a business rejection (ignore) must neither reset the
    consecutive-failure count nor close a half-open circuit."""
    breaker = make(clock, consecutive_failures=5, half_open_permits=1)
    for _ in range(4):
        breaker.acquire().failure(0.01)
    for _ in range(50):
        breaker.acquire().ignore()
    assert breaker.snapshot().consecutive_failures == 4
    assert breaker.snapshot().calls == 4  # ignored calls are not in the window either
    breaker.acquire().failure(0.01)
    assert breaker.state is BreakerState.OPEN
    clock.advance(breaker.policy.open_max_s)
    for _ in range(10):  # each ignore gives its trial slot back and closes nothing
        breaker.acquire().ignore()
        assert breaker.state is BreakerState.HALF_OPEN
    breaker.acquire().success(0.01)
    assert breaker.state is BreakerState.CLOSED


def test_wall_clock_jump_is_invisible(clock: FakeClock, monkeypatch: pytest.MonkeyPatch) -> None:
    """pybreaker, aiobreaker, purgatory read wall time, which jumps (NTP, DST, manual set).
    Ours reads only the injected monotonic clock: wall time may leap by hours, unread."""
    wall_reads: list[str] = []

    def jumping_wall_clock() -> float:
        wall_reads.append("time.time")
        return 4_000_000_000.0 + 3600.0 * len(wall_reads)

    monkeypatch.setattr(time, "time", jumping_wall_clock)
    monkeypatch.setattr(time, "time_ns", lambda: int(jumping_wall_clock() * 1e9))
    breaker = make(clock, open_base_s=10.0, open_max_s=10.0)
    trip(breaker)
    with pytest.raises(BreakerOpenError) as refused:
        breaker.acquire()
    assert refused.value.retry_after_s == pytest.approx(10.0)
    clock.advance(10.0)
    breaker.acquire(probe=True).success(0.01)
    default_clock = CircuitBreaker(BreakerPolicy())  # time.monotonic by default
    default_clock.acquire().failure()
    assert default_clock.snapshot().failures == 1
    assert wall_reads == []


def test_module_never_refers_to_wall_time() -> None:
    """pybreaker, aiobreaker, purgatory: the only attribute of ``time`` the module touches is
    ``monotonic``, and it imports no ``datetime``."""
    tree = ast.parse(inspect.getsource(module))
    used = {
        node.attr
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute)
        and isinstance(node.value, ast.Name)
        and node.value.id == "time"
    }
    imported = {
        alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
    }
    assert used == {"monotonic"}
    assert "datetime" not in imported


def test_asyncio_support(clock: FakeClock) -> None:
    """pybreaker has no asyncio support: ours serves tasks with ``async with`` and never holds
    its lock across an ``await``, so many tasks can be inside calls at once."""
    breaker = make(clock, consecutive_failures=3)
    inside = 0
    most_inside = 0

    async def call(fail: bool) -> None:
        nonlocal inside, most_inside
        async with breaker.guard():
            inside += 1
            most_inside = max(most_inside, inside)
            await asyncio.sleep(0)
            inside -= 1
            if fail:
                raise ConnectionError("pipe closed")

    async def main() -> None:
        await asyncio.gather(*(call(False) for _ in range(20)))
        results = await asyncio.gather(*(call(True) for _ in range(3)), return_exceptions=True)
        assert all(isinstance(r, ConnectionError) for r in results)
        with pytest.raises(BreakerOpenError):
            await call(False)

    asyncio.run(main())
    assert most_inside == 20
    assert breaker.state is BreakerState.OPEN


def test_thread_safety_no_lost_updates(clock: FakeClock) -> None:
    """aiobreaker, circuitbreaker and purgatory have no lock: concurrent reports race. Ours
    counts every one of 16,000 reports from 8 threads."""
    breaker = make(clock, minimum_calls=10**9, consecutive_failures=10**9)
    threads_n, per_thread = 8, 2000

    def worker() -> None:
        for i in range(per_thread):
            permit = breaker.acquire()
            if i % 2:
                permit.failure(0.0)
            else:
                permit.success(0.0)

    threads = [threading.Thread(target=worker, name=f"worker-{i}") for i in range(threads_n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    stats = breaker.snapshot()
    assert stats.calls == threads_n * per_thread
    assert stats.failures == threads_n * per_thread // 2


def test_thread_safety_half_open_bound_under_churn(clock: FakeClock) -> None:
    """No lock (aiobreaker, circuitbreaker, purgatory): with threads tripping, cooling down and
    trialling at random, the half-open in-flight count never exceeds half_open_permits."""
    breaker = make(clock, consecutive_failures=2, open_base_s=0.01, open_max_s=0.01)
    stop, seen = threading.Event(), []

    def worker(seed: int) -> None:
        rng = random.Random(seed)
        for _ in range(3000):
            clock.advance(0.005)
            try:
                permit = breaker.acquire(probe=rng.random() < 0.2)
            except BreakerOpenError:
                continue
            rng.choice([permit.success, permit.failure, permit.ignore, permit.cancel])()

    def monitor() -> None:
        while not stop.is_set():
            seen.append(breaker.snapshot().half_open_in_flight)

    watcher = threading.Thread(target=monitor, name="monitor")
    watcher.start()
    workers = [threading.Thread(target=worker, args=(i,), name=f"w{i}") for i in range(6)]
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join(timeout=60)
    stop.set()
    watcher.join(timeout=60)
    assert seen
    assert max(seen) <= breaker.policy.half_open_permits
    assert breaker.snapshot().half_open_in_flight == 0


def test_low_volume_path_trips_on_consecutive_failures(clock: FakeClock) -> None:
    """resilience4j #785: a rate-only breaker never opens on a low-volume path (orders). Five
    failed orders a minute apart never fill minimum_calls, yet the breaker opens."""
    breaker = make(clock, minimum_calls=100, window_s=60.0, consecutive_failures=5)
    for _ in range(4):
        breaker.acquire().failure(0.2)
        clock.advance(61.0)
    assert breaker.state is BreakerState.CLOSED
    assert breaker.snapshot().calls == 0  # every earlier failure has left the window
    breaker.acquire().failure(0.2)
    assert breaker.state is BreakerState.OPEN
    assert breaker.snapshot().reason == "5 consecutive failures"
