"""Behaviour of the breaker: trips, backoff, half-open trials, manual control, events, stats."""

from __future__ import annotations

import logging
import math
import pickle

import pytest

from mt5gate.circuit_breaker import (
    BreakerOpenError,
    BreakerState,
    BreakerTransition,
    CircuitBreaker,
    Permit,
)

from .helpers import FakeClock, make, to_half_open, trip

S = BreakerState


def moves(events: list[BreakerTransition]) -> list[tuple[BreakerState, BreakerState]]:
    return [(e.old, e.new) for e in events]


def open_durations(breaker: CircuitBreaker, clock: FakeClock, rounds: int) -> list[float]:
    """Open, fail the trial, and read each open duration chosen, ``rounds`` times."""
    events: list[BreakerTransition] = []
    unsubscribe = breaker.subscribe(events.append)
    trip(breaker)
    for _ in range(rounds - 1):
        clock.advance(breaker.policy.open_max_s)
        breaker.acquire().failure(0.01)
    unsubscribe()
    return [e.open_for_s for e in events if e.new is S.OPEN and e.open_for_s is not None]


# -- tripping --------------------------------------------------------------------------------


def test_failure_rate_trips_only_with_minimum_calls(clock: FakeClock) -> None:
    breaker = make(clock, minimum_calls=10, failure_rate=0.5, consecutive_failures=100)
    for _ in range(4):
        breaker.acquire().failure(0.01)
        breaker.acquire().success(0.01)
    assert breaker.state is S.CLOSED  # 50 % but only 8 calls
    breaker.acquire().success(0.01)
    breaker.acquire().failure(0.01)
    assert breaker.state is S.OPEN
    assert breaker.snapshot().reason == "failure rate 50% over 10 calls"


def test_slow_calls_trip_when_the_slow_rate_is_lowered(clock: FakeClock) -> None:
    breaker = make(clock, minimum_calls=4, slow_call_s=2.0, slow_call_rate=0.5)
    breaker.acquire().success(0.1)
    breaker.acquire().success(0.1)
    breaker.acquire().success(2.0)
    assert breaker.state is S.CLOSED
    breaker.acquire().success(3.0)
    assert breaker.state is S.OPEN
    assert breaker.snapshot().reason == "slow-call rate 50% over 4 calls"


def test_slow_rate_one_is_off(clock: FakeClock) -> None:
    breaker = make(clock, minimum_calls=2, slow_call_s=1.0)
    for _ in range(20):
        breaker.acquire().success(10.0)
    stats = breaker.snapshot()
    assert (stats.state, stats.slow_calls, stats.slow_call_rate) == (S.CLOSED, 20, 1.0)


def test_duration_defaults_to_time_since_acquire(clock: FakeClock) -> None:
    breaker = make(clock, minimum_calls=1, slow_call_s=5.0, slow_call_rate=0.5)
    permit = breaker.acquire()
    clock.advance(6.0)
    permit.success()
    assert breaker.snapshot().slow_calls == 1
    assert breaker.state is S.OPEN


def test_success_resets_consecutive_failures(clock: FakeClock) -> None:
    breaker = make(clock, consecutive_failures=3, minimum_calls=10**9)
    for _ in range(5):
        breaker.acquire().failure(0.01)
        breaker.acquire().failure(0.01)
        breaker.acquire().success(0.01)
    assert breaker.state is S.CLOSED
    assert breaker.snapshot().consecutive_failures == 0


# -- the sliding window ------------------------------------------------------------------------


def test_window_expiry(clock: FakeClock) -> None:
    breaker = make(clock, window_s=10.0, bucket_s=1.0, minimum_calls=4, consecutive_failures=99)
    clock.now = 100.0  # the start of a bucket
    for _ in range(3):
        breaker.acquire().failure(0.01)
    clock.advance(9.5)  # still in the 10th bucket from the one that holds them
    assert breaker.snapshot().failures == 3
    clock.advance(0.5)  # 10 s later their bucket has slid out
    assert breaker.snapshot().calls == 0
    breaker.acquire().failure(0.01)
    assert breaker.state is S.CLOSED  # 1 call in the window: below minimum_calls


def test_window_memory_is_bounded_by_buckets(clock: FakeClock) -> None:
    breaker = make(clock, window_s=5.0, bucket_s=1.0, minimum_calls=10**9)
    for _ in range(1000):
        breaker.acquire().success(0.0)
        clock.advance(0.25)
    window = breaker._window
    assert len(window._buckets) <= 5
    assert breaker.snapshot().calls == 16  # 4 calls in each of the 4 full buckets still in


def test_a_clock_read_behind_the_newest_bucket_counts_there(clock: FakeClock) -> None:
    """Two threads may read the clock in one order and take the lock in the other."""
    breaker = make(clock, minimum_calls=10**9)
    breaker.acquire().success(0.0)
    clock.now -= 1.0
    breaker.acquire().success(0.0)
    assert breaker.snapshot().calls == 2
    assert len(breaker._window._buckets) == 1


# -- open, backoff, half-open ------------------------------------------------------------------


def test_open_refuses_with_retry_after(clock: FakeClock) -> None:
    breaker = make(clock, open_base_s=4.0)
    trip(breaker)
    clock.advance(1.5)
    with pytest.raises(BreakerOpenError) as refused:
        breaker.acquire(probe=True)
    error = refused.value
    assert (error.state, error.retry_after_s, error.name) == (S.OPEN, 2.5, "terminal")
    assert error.reason == "5 consecutive failures"
    assert str(error) == (
        "circuit breaker 'terminal' is open (5 consecutive failures); retry after 2.5 s"
    )
    assert breaker.snapshot().open_until == 1004.0


def test_jittered_backoff_grows_to_the_cap(clock: FakeClock) -> None:
    breaker = make(clock, open_base_s=1.0, open_multiplier=2.0, open_max_s=20.0)
    assert open_durations(breaker, clock, 7) == [1.0, 2.0, 4.0, 8.0, 16.0, 20.0, 20.0]


def test_jitter_shortens_but_never_exceeds_the_cap(clock: FakeClock) -> None:
    other = FakeClock()
    low = make(other, draw=0.999, open_base_s=1.0, open_max_s=8.0, jitter=0.2)
    high = make(clock, draw=0.0, open_base_s=1.0, open_max_s=8.0, jitter=0.2)
    shortest = open_durations(low, other, 6)
    longest = open_durations(high, clock, 6)
    assert longest == [1.0, 2.0, 4.0, 8.0, 8.0, 8.0]
    for short, full in zip(shortest, longest, strict=True):
        assert 0.8 * full <= short < full


def test_backoff_resets_after_a_successful_close(clock: FakeClock) -> None:
    breaker = make(clock, open_base_s=1.0, half_open_permits=1)
    assert open_durations(breaker, clock, 3) == [1.0, 2.0, 4.0]
    clock.advance(60.0)
    breaker.acquire().success(0.01)
    assert breaker.state is S.CLOSED
    assert open_durations(breaker, clock, 1) == [1.0]


def test_half_open_closes_after_required_successes(clock: FakeClock) -> None:
    breaker = make(clock, half_open_permits=3, half_open_successes=2)
    to_half_open(breaker, clock)
    first, second, third = (breaker.acquire() for _ in range(3))
    with pytest.raises(BreakerOpenError) as refused:
        breaker.acquire()
    assert refused.value.state is S.HALF_OPEN
    assert refused.value.retry_after_s == breaker.policy.half_open_max_wait_s
    first.failure(0.01)  # one failure is tolerated: 2 successes are still possible
    second.success(0.01)
    assert breaker.snapshot().half_open_successes == 1
    third.success(0.01)
    assert breaker.state is S.CLOSED


def test_half_open_reopens_once_closing_is_impossible(clock: FakeClock) -> None:
    breaker = make(clock, half_open_permits=3, half_open_successes=2)
    to_half_open(breaker, clock)
    permits = [breaker.acquire() for _ in range(3)]
    permits[0].failure(0.01)
    assert breaker.state is S.HALF_OPEN
    permits[1].failure(0.01)
    assert breaker.state is S.OPEN
    permits[2].success(0.01)  # a late trial of a finished period changes nothing
    assert breaker.state is S.OPEN


def test_cancellation_releases_the_half_open_slot(clock: FakeClock) -> None:
    breaker = make(clock, half_open_permits=1)
    to_half_open(breaker, clock)
    permit = breaker.acquire()
    with pytest.raises(BreakerOpenError):
        breaker.acquire()
    permit.cancel()
    stats = breaker.snapshot()
    assert (stats.state, stats.half_open_in_flight, stats.half_open_successes) == (
        S.HALF_OPEN,
        0,
        0,
    )
    breaker.acquire().success(0.01)
    assert breaker.state is S.CLOSED


def test_cancellation_records_nothing_when_closed(clock: FakeClock) -> None:
    breaker = make(clock)
    for _ in range(3):
        breaker.acquire().failure(0.01)
    for _ in range(10):
        breaker.acquire().cancel()
    stats = breaker.snapshot()
    assert (stats.calls, stats.consecutive_failures) == (3, 3)


def test_non_probes_wait_while_a_probe_trial_is_in_flight(clock: FakeClock) -> None:
    breaker = make(clock, half_open_permits=3, half_open_successes=1)
    to_half_open(breaker, clock)
    probe = breaker.acquire(probe=True)
    with pytest.raises(BreakerOpenError):
        breaker.acquire()  # an order does not race the probe
    second_probe = breaker.acquire(probe=True)
    probe.success(0.01)
    assert breaker.state is S.CLOSED
    second_probe.success(0.01)  # from the finished HALF_OPEN period: dropped
    assert breaker.snapshot().calls == 0


def test_non_probe_trials_when_no_probe_is_pending(clock: FakeClock) -> None:
    breaker = make(clock, half_open_permits=2)
    to_half_open(breaker, clock)
    order = breaker.acquire()
    probe = breaker.acquire(probe=True)
    assert (order.trial, order.probe, probe.trial, probe.probe) == (True, False, True, True)
    with pytest.raises(BreakerOpenError):
        breaker.acquire(probe=True)  # every slot is taken
    probe.ignore()  # the slot comes back, and the pending probe is gone
    breaker.acquire().success(0.01)
    order.success(0.01)
    assert breaker.state is S.CLOSED


def test_probe_only_policy_admits_only_probes(clock: FakeClock) -> None:
    breaker = make(clock, half_open_probe_only=True, half_open_permits=1)
    to_half_open(breaker, clock)
    with pytest.raises(BreakerOpenError):
        breaker.acquire()
    assert breaker.state is S.HALF_OPEN
    breaker.acquire(probe=True).success(0.01)
    assert breaker.state is S.CLOSED
    assert not breaker.acquire().trial


def test_a_late_report_after_the_deadline_reopens(clock: FakeClock) -> None:
    breaker = make(clock, half_open_permits=1, half_open_max_wait_s=5.0)
    to_half_open(breaker, clock)
    permit = breaker.acquire()
    clock.advance(5.0)
    permit.success(0.01)  # the verdict came too late: the period had already stalled
    assert breaker.state is S.OPEN


def test_reports_from_before_a_trip_are_dropped(clock: FakeClock) -> None:
    breaker = make(clock, half_open_permits=1)
    slow = breaker.acquire()
    trip(breaker)
    clock.advance(60.0)
    breaker.acquire().success(0.01)
    slow.failure(30.0)
    stats = breaker.snapshot()
    assert (stats.state, stats.calls, stats.consecutive_failures) == (S.CLOSED, 0, 0)


# -- manual control ----------------------------------------------------------------------------


def test_forced_open_and_release(clock: FakeClock) -> None:
    breaker = make(clock)
    held = breaker.acquire()
    breaker.force_open("AutoTrading off")
    for probe in (False, True):
        with pytest.raises(BreakerOpenError) as refused:
            breaker.acquire(probe=probe)
        assert refused.value.state is S.FORCED_OPEN
        assert refused.value.retry_after_s == math.inf
        assert refused.value.reason == "AutoTrading off"
    clock.advance(3600.0)  # time alone never ends FORCED_OPEN
    with pytest.raises(BreakerOpenError):
        breaker.acquire()
    held.failure(0.01)  # issued before the kill switch: dropped
    breaker.force_open("again")  # already forced: no-op
    assert breaker.snapshot().reason == "AutoTrading off"
    breaker.release()
    stats = breaker.snapshot()
    assert (stats.state, stats.reason, stats.calls) == (S.CLOSED, "released", 0)
    breaker.acquire().success(0.01)


def test_force_open_beats_open_and_half_open(clock: FakeClock) -> None:
    breaker = make(clock)
    trip(breaker)
    breaker.force_open()
    assert breaker.state is S.FORCED_OPEN
    breaker.release()
    to_half_open(breaker, clock)
    trial = breaker.acquire()
    breaker.force_open()
    trial.success(0.01)
    assert breaker.state is S.FORCED_OPEN


def test_release_is_a_no_op_unless_forced_or_disabled(clock: FakeClock) -> None:
    breaker = make(clock)
    events: list[BreakerTransition] = []
    breaker.subscribe(events.append)
    breaker.release()
    trip(breaker)
    breaker.release()
    assert breaker.state is S.OPEN
    assert moves(events) == [(S.CLOSED, S.OPEN)]


def test_disabled_passes_everything_and_still_counts(clock: FakeClock) -> None:
    breaker = make(clock)
    trip(breaker)
    breaker.disable("maintenance")
    for _ in range(30):
        breaker.acquire().failure(6.0)
    stats = breaker.snapshot()
    assert stats.state is S.DISABLED
    assert (stats.failures, stats.slow_calls, stats.consecutive_failures) == (35, 30, 35)
    assert stats.failure_rate == 1.0
    breaker.disable()  # already disabled: no-op
    breaker.force_open()  # the kill switch still works
    assert breaker.state is S.FORCED_OPEN
    breaker.disable()
    breaker.release()
    assert breaker.snapshot().calls == 0
    assert breaker.state is S.CLOSED


def test_reset_forgets_everything(clock: FakeClock) -> None:
    breaker = make(clock, half_open_permits=1)
    events: list[BreakerTransition] = []
    breaker.subscribe(events.append)
    breaker.acquire().failure(0.01)
    breaker.reset()  # from CLOSED: clears the counts, no event
    assert breaker.snapshot().consecutive_failures == 0
    assert events == []
    assert open_durations(breaker, clock, 2) == [1.0, 2.0]
    breaker.reset("operator")
    assert (events[-1].old, events[-1].new, events[-1].reason) == (S.OPEN, S.CLOSED, "operator")
    assert open_durations(breaker, clock, 1) == [1.0]  # backoff forgotten too


# -- events ------------------------------------------------------------------------------------


def test_events_order(clock: FakeClock) -> None:
    breaker = make(clock, half_open_permits=1)
    events: list[BreakerTransition] = []
    breaker.subscribe(events.append)
    trip(breaker)
    clock.advance(60.0)
    breaker.acquire().failure(0.01)
    clock.advance(60.0)
    breaker.acquire().success(0.01)
    breaker.force_open("kill switch")
    breaker.release()
    breaker.disable()
    breaker.release()
    assert moves(events) == [
        (S.CLOSED, S.OPEN),
        (S.OPEN, S.HALF_OPEN),
        (S.HALF_OPEN, S.OPEN),
        (S.OPEN, S.HALF_OPEN),
        (S.HALF_OPEN, S.CLOSED),
        (S.CLOSED, S.FORCED_OPEN),
        (S.FORCED_OPEN, S.CLOSED),
        (S.CLOSED, S.DISABLED),
        (S.DISABLED, S.CLOSED),
    ]
    assert [e.reason for e in events[:5]] == [
        "5 consecutive failures",
        "open duration elapsed",
        "a trial call failed",
        "open duration elapsed",
        "trial calls succeeded (1 of 1 needed)",
    ]
    assert all(e.name == "terminal" for e in events)
    assert [e.at for e in events[:3]] == [1000.0, 1060.0, 1060.0]
    assert [e.open_for_s for e in events[:3]] == [1.0, None, 2.0]


def test_callbacks_run_without_the_lock_and_nested_events_stay_in_order(clock: FakeClock) -> None:
    breaker = make(clock)
    seen: list[tuple[BreakerState, BreakerState]] = []

    def on_transition(event: BreakerTransition) -> None:
        seen.append((event.old, event.new))
        stats = breaker.snapshot()  # would deadlock if the lock were held
        assert stats.state is not None
        if event.new is S.OPEN:
            breaker.force_open("react from the callback")  # a transition from inside

    breaker.subscribe(on_transition)
    for _ in range(5):
        breaker.acquire().failure(0.01)
    assert seen == [(S.CLOSED, S.OPEN), (S.OPEN, S.FORCED_OPEN)]


def test_unsubscribe_and_a_failing_subscriber(
    clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    breaker = make(clock)
    first: list[BreakerTransition] = []
    second: list[BreakerTransition] = []

    def broken(event: BreakerTransition) -> None:
        raise RuntimeError("metrics backend down")

    unsubscribe = breaker.subscribe(first.append)
    breaker.subscribe(broken)
    breaker.subscribe(second.append)
    with caplog.at_level(logging.ERROR, logger="mt5gate.circuit_breaker"):
        breaker.force_open()
    assert len(first) == len(second) == 1
    assert "subscriber" in caplog.text
    assert "forced_open" in caplog.text
    unsubscribe()
    breaker.release()
    assert (len(first), len(second)) == (1, 2)


# -- permits, stats, repr ----------------------------------------------------------------------


def test_a_permit_reports_once(clock: FakeClock) -> None:
    breaker = make(clock)
    permit = breaker.acquire()
    assert not permit.reported
    permit.success(0.01)
    assert permit.reported
    for report in (permit.success, permit.failure, permit.ignore, permit.cancel):
        with pytest.raises(RuntimeError, match="already reported"):
            report()
    assert breaker.snapshot().calls == 1


@pytest.mark.parametrize("duration", [-0.1, math.nan])
def test_a_duration_must_be_non_negative(clock: FakeClock, duration: float) -> None:
    breaker = make(clock)
    permit = breaker.acquire()
    with pytest.raises(ValueError, match="duration_s must be >= 0"):
        permit.failure(duration)
    assert not permit.reported
    permit.failure(0.0)


def test_snapshot(clock: FakeClock) -> None:
    breaker = make(clock, slow_call_s=1.0, consecutive_failures=99)
    empty = breaker.snapshot()
    assert (empty.calls, empty.failure_rate, empty.slow_call_rate) == (0, 0.0, 0.0)
    assert (empty.open_until, empty.half_open_in_flight, empty.reason) == (None, 0, "created")
    breaker.acquire().failure(2.0)
    breaker.acquire().success(0.5)
    breaker.acquire().success(0.5)
    breaker.acquire().failure(0.5)
    stats = breaker.snapshot()
    assert stats.name == "terminal"
    assert stats.at == 1000.0
    assert (stats.calls, stats.failures, stats.slow_calls) == (4, 2, 1)
    assert (stats.failure_rate, stats.slow_call_rate) == (0.5, 0.25)
    assert stats.consecutive_failures == 1


def test_state_and_reprs(clock: FakeClock) -> None:
    breaker = CircuitBreaker(clock=clock, name="demo-1")
    assert breaker.policy.window_s == 60.0
    assert repr(breaker) == "CircuitBreaker(name='demo-1', state=CLOSED)"
    permit = breaker.acquire(probe=True)
    assert isinstance(permit, Permit)
    assert repr(permit) == "Permit(name='demo-1', trial=False, probe=True, reported=False)"
    breaker.force_open()
    assert repr(breaker) == "CircuitBreaker(name='demo-1', state=FORCED_OPEN)"
    assert str(S.HALF_OPEN) == "half_open"


def test_breaker_open_error_pickles() -> None:
    error = BreakerOpenError(S.OPEN, 1.25, "t2", "boom")
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.state, copy.retry_after_s, copy.name, copy.reason) == (S.OPEN, 1.25, "t2", "boom")
    assert str(BreakerOpenError(S.HALF_OPEN, 0.5)) == (
        "circuit breaker 'terminal' is half_open; retry after 0.5 s"
    )
