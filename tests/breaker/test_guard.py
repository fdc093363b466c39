"""The guard: ``with`` / ``async with`` acquire a permit and report it as the classifier says."""

from __future__ import annotations

import asyncio

import pytest

from mt5gate.circuit_breaker import (
    BreakerOpenError,
    BreakerState,
    CircuitBreaker,
    Verdict,
    always_failure,
)

from .helpers import FakeClock, make, to_half_open


class RejectedError(Exception):
    """A business rejection (e.g. invalid stops): the terminal is fine."""


def business_aware(error: BaseException) -> Verdict:
    if isinstance(error, RejectedError):
        return "ignore"
    if isinstance(error, LookupError):
        return "success"
    return "failure"


def test_success_reports_the_measured_duration(clock: FakeClock) -> None:
    breaker = make(clock, slow_call_s=2.0)
    with breaker.guard() as permit:
        clock.advance(3.0)
    assert permit.reported
    stats = breaker.snapshot()
    assert (stats.calls, stats.failures, stats.slow_calls) == (1, 0, 1)


def test_exceptions_are_classified_and_never_swallowed(clock: FakeClock) -> None:
    breaker = make(clock, consecutive_failures=99, minimum_calls=99)
    for error in (RejectedError("invalid stops"), KeyError("x"), ConnectionError("pipe")):
        with pytest.raises(type(error)), breaker.guard(business_aware):
            raise error
    stats = breaker.snapshot()
    assert (stats.calls, stats.failures) == (2, 1)


def test_default_classifier_counts_every_exception_as_failure(clock: FakeClock) -> None:
    breaker = make(clock)
    assert always_failure(ValueError()) == "failure"
    with pytest.raises(ValueError), breaker.guard():
        raise ValueError("bad")
    assert breaker.snapshot().failures == 1


def test_base_exceptions_cancel(clock: FakeClock) -> None:
    breaker = make(clock, half_open_permits=1)
    to_half_open(breaker, clock)
    with pytest.raises(KeyboardInterrupt), breaker.guard():
        raise KeyboardInterrupt
    assert breaker.snapshot().half_open_in_flight == 0
    assert breaker.state is BreakerState.HALF_OPEN


def test_a_permit_reported_inside_the_block_is_left_alone(clock: FakeClock) -> None:
    breaker = make(clock)

    def call() -> None:
        with breaker.guard() as permit:
            permit.ignore()
            raise RejectedError("market closed")

    with pytest.raises(RejectedError):
        call()
    assert breaker.snapshot().calls == 0


def test_an_unknown_verdict_cancels_and_raises(clock: FakeClock) -> None:
    breaker = make(clock, half_open_permits=1)
    to_half_open(breaker, clock)

    def sloppy(error: BaseException) -> Verdict:
        return "maybe"  # type: ignore[return-value]

    with pytest.raises(ValueError, match="classify returned 'maybe'"), breaker.guard(sloppy):
        raise OSError("pipe")
    assert breaker.snapshot().half_open_in_flight == 0


def test_a_refused_guard_raises_before_the_block(clock: FakeClock) -> None:
    breaker = make(clock)
    breaker.force_open()
    ran = []
    with pytest.raises(BreakerOpenError), breaker.guard():
        ran.append(True)
    assert ran == []


def test_exit_without_enter_does_nothing(clock: FakeClock) -> None:
    guard = make(clock).guard()
    guard.__exit__(None, None, None)
    assert guard.permit is None


def test_async_cancellation_releases_the_trial_slot(clock: FakeClock) -> None:
    breaker = make(clock, half_open_permits=1)
    to_half_open(breaker, clock)

    async def main() -> None:
        entered = asyncio.Event()

        async def call() -> None:
            async with breaker.guard(probe=True) as permit:
                assert permit.trial
                assert permit.probe
                entered.set()
                await asyncio.sleep(3600)

        task = asyncio.create_task(call())
        await entered.wait()
        assert breaker.snapshot().half_open_in_flight == 1
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    assert breaker.snapshot().half_open_in_flight == 0
    breaker.acquire().success(0.01)
    assert breaker.state is BreakerState.CLOSED


def test_async_failure_and_ignore(clock: FakeClock) -> None:
    breaker: CircuitBreaker = make(clock, consecutive_failures=2)

    async def call(error: Exception) -> None:
        async with breaker.guard(business_aware):
            await asyncio.sleep(0)
            raise error

    async def main() -> None:
        for error in (ConnectionError(), RejectedError(), RejectedError(), ConnectionError()):
            with pytest.raises(type(error)):
                await call(error)

    asyncio.run(main())
    assert breaker.state is BreakerState.OPEN
