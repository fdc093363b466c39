"""Fixtures for session tests: a real MT5SessionManager over a real SimTerminal, virtual time.

pytest-asyncio is not used: ``run(coro)`` drives a coroutine on a fresh event loop, and the
``session`` fixtures hand out a connected session plus the loop runner bound to it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

import pytest

from mt5gate.orders import SqliteJournal
from mt5gate.session import MT5SessionManager, ReconcilePolicy, ReconnectPolicy, Timeouts
from mt5gate.sim import BrokerOptions, SimConfig, VirtualClock, server_ms
from mt5gate.sim.terminal import SimTerminal

T = TypeVar("T")
TUESDAY_10 = server_ms(2026, 1, 6, 10)
SATURDAY_12 = server_ms(2026, 1, 10, 12)
PASSWORD = "sim-pass-5001"


@dataclass
class ManualClock:
    """An AsyncClock whose sleep() advances its own time instead of waiting.

    It still yields the way a real sleep does, blocking the loop for ~0.1 ms: with only
    ``sleep(0)`` a polling loop would spin, never wait in epoll, and starve the session's
    worker thread of the GIL (calls would then crawl at the 5 ms switch interval).
    """

    now: float = 1000.0
    sleeps: list[float] = field(default_factory=list)

    def monotonic(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        await asyncio.sleep(0.0001)


@dataclass
class Harness:
    """A connected session, its simulator, its clock, and the loop that drives them."""

    session: MT5SessionManager
    terminal: SimTerminal
    clock: ManualClock
    loop: asyncio.AbstractEventLoop

    def run(self, awaitable: Awaitable[T]) -> T:
        """Run ``awaitable`` to completion on the harness loop."""
        return self.loop.run_until_complete(awaitable)  # type: ignore[arg-type]


def make_session(
    terminal: SimTerminal | None = None,
    *,
    login: int = 5001,
    password: str = PASSWORD,
    server: str = "MetaQuotes-Demo",
    clock: ManualClock | None = None,
    **options: Any,
) -> tuple[MT5SessionManager, SimTerminal, ManualClock]:
    """An unconnected session over a simulator at Tuesday 10:00 server time."""
    sim = terminal or SimTerminal(SimConfig(history_days=1), clock=VirtualClock(TUESDAY_10))
    manual = clock or ManualClock()
    options.setdefault("timeouts", Timeouts(call_s=2.0, connect_s=5.0, order_s=2.0, probe_s=0.5))
    options.setdefault("reconnect", ReconnectPolicy(base_s=0.1, max_s=1.0))
    # the periodic sweep would spin on a ManualClock (its sleeps return at once): tests sweep
    options.setdefault("reconcile", ReconcilePolicy(sweep_interval_s=None))
    session = MT5SessionManager(
        terminal=sim, login=login, password=password, server=server, clock=manual, **options
    )
    return session, sim, manual


def _harness(login: int, password: str, **options: Any) -> Iterator[Harness]:
    loop = asyncio.new_event_loop()
    session, sim, clock = make_session(login=login, password=password, **options)
    loop.run_until_complete(session.connect())
    harness = Harness(session, sim, clock, loop)
    yield harness
    sim.faults.clear()
    loop.run_until_complete(session.close())
    loop.close()


@pytest.fixture
def harness() -> Iterator[Harness]:
    """A connected session on the hedging account 5001."""
    yield from _harness(5001, PASSWORD)


@pytest.fixture
def netting_harness() -> Iterator[Harness]:
    """A connected session on the netting account 5002."""
    yield from _harness(5002, "sim-pass-5002")


def run(coro_fn: Callable[[], Awaitable[T]]) -> T:
    """Run a coroutine function on a fresh loop (for tests that build their own session)."""

    async def main() -> T:
        return await coro_fn()

    return asyncio.run(main())


def connected(
    made: list[Harness], session: MT5SessionManager, sim: SimTerminal, clock: ManualClock,
    loop: asyncio.AbstractEventLoop,
) -> Harness:  # fmt: skip
    """A harness of ``session``, connected on ``loop`` and listed in ``made`` (for
    :func:`close_all`)."""
    harness = Harness(session, sim, clock, loop)
    harness.run(session.connect())
    made.append(harness)
    return harness


def close_all(made: list[Harness]) -> None:
    """Close every harness :func:`connected` made: its session, its journal file, its loop."""
    for harness in made:
        harness.run(harness.session.close())
        harness.session.close_journal()
        harness.loop.close()


#: How late the broker's history is in :func:`late_history`'s simulators (ms).
LATE_MS = 10_000
PASSWORDS = {5001: "sim-pass-5001", 5002: "sim-pass-5002"}


@pytest.fixture
def late_history(tmp_path: Any) -> Iterator[Callable[[int, ReconcilePolicy], Harness]]:
    """``build(login, policy)``: a connected session, with a journal file, on an account
    whose broker history is :data:`LATE_MS` late (the simulator's virtual clock stands until
    the test moves it; the session's clock is manual)."""
    made: list[Harness] = []

    def build(login: int, policy: ReconcilePolicy) -> Harness:
        config = SimConfig(history_days=1, broker=BrokerOptions(history_delay_ms=LATE_MS))
        sim = SimTerminal(config, clock=VirtualClock(TUESDAY_10))
        loop = asyncio.new_event_loop()
        session, sim, clock = make_session(
            sim, login=login, password=PASSWORDS[login], reconcile=policy,
            journal=SqliteJournal(tmp_path / f"orders-{login}.db"),
        )  # fmt: skip
        return connected(made, session, sim, clock, loop)

    yield build
    close_all(made)
