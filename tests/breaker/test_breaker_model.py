"""Hypothesis: under any sequence of operations the breaker agrees with a small reference model.

The model restates the spec in plain Python: a list of calls filtered by time instead of
buckets, strings instead of the Enum, no lock and no transition table. Permits may be held
across other operations (so trials overlap, stall and report late), and the clock moves by
steps that cross bucket, open-duration and half-open-wait boundaries.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    initialize,
    invariant,
    multiple,
    precondition,
    rule,
)

from mt5gate.circuit_breaker import (
    BreakerOpenError,
    BreakerPolicy,
    BreakerState,
    BreakerTransition,
    CircuitBreaker,
    Permit,
)

from .helpers import FakeClock

DRAW = 0.5  # the jitter draw both sides use
FIXED: dict[str, Any] = {
    "window_s": 10.0,
    "bucket_s": 1.0,
    "failure_rate": 0.5,
    "slow_call_s": 2.0,
    "open_base_s": 1.0,
    "open_max_s": 8.0,
    "open_multiplier": 2.0,
    "jitter": 0.2,
    "half_open_max_wait_s": 5.0,
}
OUTCOMES = st.sampled_from(["success", "failure", "ignore", "cancel"])
DURATIONS = st.sampled_from([None, 0.0, 0.5, 2.0, 7.0])
STEPS = st.sampled_from([0.0, 0.25, 0.5, 1.0, 2.5, 5.0, 9.0, 30.0])


@dataclass
class Ticket:
    """The model's record of a permit it handed out."""

    generation: int
    trial: bool
    probe: bool
    started: float


class Reference:
    """The spec in plain Python, for comparison."""

    def __init__(self, policy: BreakerPolicy) -> None:
        self.p = policy
        self.state = "closed"
        self.generation = 0
        self.calls: list[tuple[float, bool, bool]] = []  # (time, failed, slow)
        self.consecutive = 0
        self.reopens = 0
        self.open_until = 0.0
        self.deadline = 0.0
        self.left = self.in_flight = self.probes = self.ok = self.bad = 0
        self.moves: list[tuple[str, str]] = []

    def window(self, now: float) -> list[tuple[float, bool, bool]]:
        size = math.ceil(self.p.window_s / self.p.bucket_s)
        newest = math.floor(now / self.p.bucket_s)
        return [c for c in self.calls if newest - math.floor(c[0] / self.p.bucket_s) < size]

    def enter(self, state: str, now: float) -> None:
        if state != self.state:
            self.moves.append((self.state, state))
        self.state = state
        self.generation += 1
        if state == "closed":
            self.calls, self.consecutive, self.reopens = [], 0, 0
        elif state == "open":
            raw = min(self.p.open_max_s, self.p.open_base_s * self.p.open_multiplier**self.reopens)
            self.open_until = now + raw * (1 - self.p.jitter * DRAW)
            self.reopens += 1
        elif state == "half_open":
            self.deadline = now + self.p.half_open_max_wait_s
            self.left, self.in_flight, self.probes = self.p.half_open_permits, 0, 0
            self.ok = self.bad = 0

    def stall(self, now: float) -> None:
        if self.state == "half_open" and now >= self.deadline:
            self.enter("open", now)

    def acquire(self, probe: bool, now: float) -> Ticket | None:
        self.stall(now)
        if self.state == "open" and now >= self.open_until:
            self.enter("half_open", now)
        if self.state in ("closed", "disabled"):
            return Ticket(self.generation, False, probe, now)
        probe_ok = probe or (not self.p.half_open_probe_only and self.probes == 0)
        if self.state == "half_open" and self.left > 0 and probe_ok:
            self.left, self.in_flight, self.probes = (
                self.left - 1,
                self.in_flight + 1,
                self.probes + probe,
            )
            return Ticket(self.generation, True, probe, now)
        return None

    def report(self, ticket: Ticket, outcome: str, duration: float | None, now: float) -> None:
        self.stall(now)
        if ticket.generation != self.generation:
            return
        if ticket.trial:
            self.trial(ticket, outcome, now)
        elif outcome in ("success", "failure"):
            failed = outcome == "failure"
            took = now - ticket.started if duration is None else duration
            self.calls.append((now, failed, took >= self.p.slow_call_s))
            self.consecutive = self.consecutive + 1 if failed else 0
            if self.state == "closed" and self.should_trip(now):
                self.enter("open", now)

    def trial(self, ticket: Ticket, outcome: str, now: float) -> None:
        self.in_flight -= 1
        self.probes -= ticket.probe
        if outcome == "success":
            self.ok += 1
        elif outcome == "failure":
            self.bad += 1
        else:
            self.left += 1
        need = self.p.successes_to_close
        if self.ok >= need:
            self.enter("closed", now)
        elif self.bad > self.p.half_open_permits - need:
            self.enter("open", now)

    def should_trip(self, now: float) -> bool:
        if self.consecutive >= self.p.consecutive_failures:
            return True
        calls = self.window(now)
        if len(calls) < self.p.minimum_calls:
            return False
        failures = sum(1 for c in calls if c[1]) / len(calls)
        slow = sum(1 for c in calls if c[2]) / len(calls)
        slow_trips = self.p.slow_call_rate < 1.0 and slow >= self.p.slow_call_rate
        return failures >= self.p.failure_rate or slow_trips

    def manual(self, action: str, now: float) -> None:
        if action == "force_open" and self.state != "forced_open":
            self.enter("forced_open", now)
        elif action == "disable" and self.state != "disabled":
            self.enter("disabled", now)
        elif action == "reset" or (
            action == "release" and self.state in ("forced_open", "disabled")
        ):
            self.enter("closed", now)


class BreakerMachine(RuleBasedStateMachine):
    """Drives a real breaker and the reference model with the same operations."""

    held = Bundle("held")

    @initialize(
        permits=st.integers(1, 3),
        successes=st.integers(1, 3),
        consecutive=st.integers(2, 4),
        minimum=st.integers(2, 6),
        probe_only=st.booleans(),
        slow_rate=st.sampled_from([0.5, 1.0]),
    )
    def setup(
        self,
        permits: int,
        successes: int,
        consecutive: int,
        minimum: int,
        probe_only: bool,
        slow_rate: float,
    ) -> None:
        policy = BreakerPolicy(
            **FIXED,
            half_open_permits=permits,
            half_open_successes=min(successes, permits),
            consecutive_failures=consecutive,
            minimum_calls=minimum,
            half_open_probe_only=probe_only,
            slow_call_rate=slow_rate,
        )
        self.clock = FakeClock(100.0)
        self.breaker = CircuitBreaker(policy, clock=self.clock, random=lambda: DRAW)
        self.events: list[BreakerTransition] = []
        self.breaker.subscribe(self.events.append)
        self.model = Reference(policy)

    # -- operations ------------------------------------------------------------------------

    @rule(step=STEPS)
    def advance_clock(self, step: float) -> None:
        self.clock.advance(step)

    @precondition(lambda self: self.model.state == "closed")
    @rule(duration=DURATIONS)
    def failure_burst(self, duration: float | None) -> None:
        """The terminal drops: consecutive_failures failed calls in a row (it trips)."""
        for _ in range(self.breaker.policy.consecutive_failures):
            self.call("failure", False, duration)

    @precondition(lambda self: self.model.state == "open")
    @rule(extra=st.sampled_from([0.0, 0.25]))
    def wait_out_the_open_state(self, extra: float) -> None:
        """Jump to the end of the open duration, so HALF_OPEN is explored as much as CLOSED."""
        self.clock.now = max(self.clock.now, self.model.open_until) + extra

    @rule(outcome=OUTCOMES, probe=st.booleans(), duration=DURATIONS)
    def call(self, outcome: str, probe: bool, duration: float | None) -> None:
        admitted = self._acquire(probe)
        if admitted is not None:
            self._report(admitted, outcome, duration)

    @rule(target=held, probe=st.booleans())
    def hold(self, probe: bool) -> Any:
        admitted = self._acquire(probe)
        return multiple() if admitted is None else admitted

    @precondition(lambda self: self.model.state == "half_open")
    @rule(target=held)
    def hold_a_probe_trial(self) -> Any:
        """A health probe in flight while other callers arrive (they must wait)."""
        return self.hold(probe=True)

    @precondition(lambda self: self.model.state == "half_open")
    @rule(outcome=OUTCOMES, probe=st.booleans(), duration=DURATIONS)
    def call_during_half_open(self, outcome: str, probe: bool, duration: float | None) -> None:
        """More traffic while trials decide: the window where admission bugs live."""
        self.call(outcome, probe, duration)

    @rule(admitted=consumes(held), outcome=OUTCOMES, duration=DURATIONS)
    def settle_held(
        self, admitted: tuple[Permit, Ticket], outcome: str, duration: float | None
    ) -> None:
        self._report(admitted, outcome, duration)

    @rule(action=st.sampled_from(["force_open", "release", "disable", "reset"]))
    def manual(self, action: str) -> None:
        getattr(self.breaker, action)()
        self.model.manual(action, self.clock.now)

    # -- invariants ------------------------------------------------------------------------

    @invariant()
    def states_agree(self) -> None:
        assert self.breaker.state.value == self.model.state

    @invariant()
    def stats_agree(self) -> None:
        stats, model = self.breaker.snapshot(), self.model
        window = model.window(self.clock.now)
        assert stats.calls == len(window)
        assert stats.failures == sum(1 for c in window if c[1])
        assert stats.slow_calls == sum(1 for c in window if c[2])
        assert stats.consecutive_failures == model.consecutive
        if model.state == "open":
            assert stats.open_until == pytest.approx(model.open_until)
        if model.state == "half_open":
            assert (stats.half_open_in_flight, stats.half_open_successes) == (
                model.in_flight,
                model.ok,
            )

    @invariant()
    def half_open_in_flight_within_permits(self) -> None:
        in_flight = self.breaker.snapshot().half_open_in_flight
        assert 0 <= in_flight <= self.breaker.policy.half_open_permits

    @invariant()
    def events_agree(self) -> None:
        assert [(e.old.value, e.new.value) for e in self.events] == self.model.moves

    # -- helpers ---------------------------------------------------------------------------

    def _acquire(self, probe: bool) -> tuple[Permit, Ticket] | None:
        now = self.clock.now
        was_open = self.breaker.state is BreakerState.OPEN and now < self.model.open_until
        was_forced = self.breaker.state is BreakerState.FORCED_OPEN
        expected = self.model.acquire(probe, now)
        try:
            permit = self.breaker.acquire(probe=probe)
        except BreakerOpenError as refused:
            self._check_refusal(refused, expected)
            return None
        assert not was_open, "admitted while OPEN"
        assert not was_forced, "admitted while FORCED_OPEN"
        assert expected is not None
        assert (permit.trial, permit.probe) == (expected.trial, expected.probe)
        return permit, expected

    def _check_refusal(self, refused: BreakerOpenError, expected: Ticket | None) -> None:
        assert expected is None, "the model would have admitted this call"
        assert refused.state.value == self.model.state
        assert refused.retry_after_s >= 0

    def _report(
        self, admitted: tuple[Permit, Ticket], outcome: str, duration: float | None
    ) -> None:
        permit, ticket = admitted
        if outcome in ("success", "failure"):
            getattr(permit, outcome)(duration)
        else:
            getattr(permit, outcome)()
        self.model.report(ticket, outcome, duration, self.clock.now)


BreakerMachine.TestCase.settings = settings(
    max_examples=300,
    stateful_step_count=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestBreakerModel = BreakerMachine.TestCase
