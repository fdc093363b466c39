"""Circuit breaker: stop calling a failing terminal, and find out safely when it is back.

States (:class:`BreakerState`) and the moves between them are data (``_TRANSITIONS``)::

    CLOSED --trip--> OPEN --cool-down (lazily, on acquire)--> HALF_OPEN --trials passed--> CLOSED
                       ^                                          |
                       +-------- a trial failed / trials stalled -+
    any state --force_open()--> FORCED_OPEN      any state --disable()--> DISABLED
    FORCED_OPEN | DISABLED --release()--> CLOSED  any state --reset()--> CLOSED

CLOSED trips on a failure rate or a slow-call rate over a sliding time window (once the window
holds ``minimum_calls``), or on ``consecutive_failures`` in a row whatever the volume, because
orders are a low-volume path that a rate alone never trips (resilience4j #785). Only
infrastructure failures count; a business rejection (``Permit.ignore``) counts as nothing and a
cancellation (``Permit.cancel``) records nothing and gives back its trial slot. The open
duration grows with jittered backoff per consecutive re-open, up to a cap. HALF_OPEN hands out
at most ``half_open_permits`` trial permits however many callers arrive at once, and re-opens if
no verdict arrives within ``half_open_max_wait_s`` (resilience4j #903/#935, Polly #1979).

Callers take a :class:`Permit` (``acquire``), make the call with no lock held, and report the
outcome once. One ``threading.Lock`` guards the state and is held for microseconds, so the
breaker serves threads and asyncio tasks alike. Time comes from an injected monotonic clock
and jitter from an injected random source, so tests drive both. Transitions are queued under
the lock and delivered to subscribers after it is released, in the order they happened.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random as _random
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import Enum, StrEnum
from types import MappingProxyType, TracebackType
from typing import Final, Literal

__all__ = [
    "BreakerOpenError",
    "BreakerPolicy",
    "BreakerState",
    "BreakerStats",
    "BreakerTransition",
    "CircuitBreaker",
    "Classifier",
    "Guard",
    "Permit",
    "Verdict",
    "always_failure",
]


class BreakerState(StrEnum):
    """Where a breaker stands; the value doubles as the metrics label."""

    CLOSED = "closed"  # calls pass; their outcomes fill the window
    OPEN = "open"  # calls are refused until the open duration has passed
    HALF_OPEN = "half_open"  # a bounded number of trial calls decide CLOSED or OPEN
    FORCED_OPEN = "forced_open"  # refused until release(): kill switch, AutoTrading off
    DISABLED = "disabled"  # every call passes; outcomes are still counted, never trips


#: What an exception means to the breaker (see :meth:`CircuitBreaker.guard`).
Verdict = Literal["success", "failure", "ignore"]
#: Maps an exception raised by the guarded call to its :data:`Verdict`.
Classifier = Callable[[BaseException], Verdict]


# ---------------------------------------------------------------------------------------------
# Policy


@dataclass(frozen=True, slots=True)
class BreakerPolicy:
    """When to trip, how long to stay open and how to test the way back: the policy as data.

    Invalid values raise ``ValueError`` naming the field and the rule it breaks.
    """

    window_s: float = 60.0  # sliding time window of the failure and slow-call rates
    bucket_s: float = 1.0  # window granularity; memory is window_s / bucket_s buckets
    minimum_calls: int = 10  # calls the window must hold before a rate may trip
    failure_rate: float = 0.5  # trip when failures / calls >= this
    slow_call_s: float = 5.0  # a call lasting at least this long is slow
    slow_call_rate: float = 1.0  # trip when slow / calls >= this; 1.0 turns slow tripping off
    consecutive_failures: int = 5  # trip after this many failures in a row, whatever the volume
    open_base_s: float = 1.0  # first open duration
    open_max_s: float = 60.0  # cap of the open duration
    open_multiplier: float = 2.0  # growth per consecutive re-open, reset when the circuit closes
    jitter: float = 0.2  # an open duration is shortened by up to this fraction, at random
    half_open_permits: int = 3  # trial calls handed out in HALF_OPEN
    half_open_successes: int | None = None  # trial successes that close; None: every permit
    half_open_max_wait_s: float = 30.0  # HALF_OPEN without a verdict this long re-opens
    half_open_probe_only: bool = False  # HALF_OPEN admits only acquire(probe=True) callers

    def __post_init__(self) -> None:
        for name, holds, rule in _POLICY_RULES:
            if not holds(self):
                raise ValueError(f"BreakerPolicy.{name} {rule}, got {getattr(self, name)!r}")

    @property
    def successes_to_close(self) -> int:
        """Trial successes that close the circuit: ``half_open_successes`` or every permit."""
        if self.half_open_successes is None:
            return self.half_open_permits
        return self.half_open_successes

    @property
    def slow_tripping(self) -> bool:
        """Whether the slow-call rate may trip the circuit (``slow_call_rate`` below 1.0)."""
        return self.slow_call_rate < 1.0

    def open_s(self, reopens: int, draw: float) -> float:
        """Open duration after ``reopens`` consecutive earlier openings, jittered by ``draw``.

        ``draw`` is a uniform number in [0, 1); the result lies in
        ``[(1 - jitter) * raw, raw]`` where ``raw = min(open_max_s, base * multiplier**reopens)``,
        so jitter spreads re-opening callers without ever exceeding the cap.
        """
        return self._raw_open_s(reopens) * (1.0 - self.jitter * draw)

    def _raw_open_s(self, reopens: int) -> float:
        # Compare logarithms first: multiplier**reopens would overflow long before reopens does.
        if reopens * math.log(self.open_multiplier) >= math.log(self.open_max_s / self.open_base_s):
            return self.open_max_s
        return min(self.open_max_s, self.open_base_s * self.open_multiplier**reopens)


def _optional_successes_ok(policy: BreakerPolicy) -> bool:
    wanted = policy.half_open_successes
    return wanted is None or 1 <= wanted <= policy.half_open_permits


# (field, predicate, rule): every comparison is written so that NaN fails it.
_POLICY_RULES: Final[tuple[tuple[str, Callable[[BreakerPolicy], bool], str], ...]] = (
    ("window_s", lambda p: p.window_s > 0, "must be > 0"),
    ("bucket_s", lambda p: 0 < p.bucket_s <= p.window_s, "must be > 0 and <= window_s"),
    ("minimum_calls", lambda p: p.minimum_calls >= 1, "must be >= 1"),
    ("failure_rate", lambda p: 0 < p.failure_rate <= 1, "must be within (0, 1]"),
    ("slow_call_s", lambda p: p.slow_call_s > 0, "must be > 0"),
    ("slow_call_rate", lambda p: 0 < p.slow_call_rate <= 1, "must be within (0, 1]"),
    ("consecutive_failures", lambda p: p.consecutive_failures >= 1, "must be >= 1"),
    ("open_base_s", lambda p: p.open_base_s > 0, "must be > 0"),
    ("open_max_s", lambda p: p.open_max_s >= p.open_base_s, "must be >= open_base_s"),
    ("open_multiplier", lambda p: p.open_multiplier >= 1, "must be >= 1"),
    ("jitter", lambda p: 0 <= p.jitter <= 1, "must be within [0, 1]"),
    ("half_open_permits", lambda p: p.half_open_permits >= 1, "must be >= 1"),
    ("half_open_successes", _optional_successes_ok, "must be None or 1..half_open_permits"),
    ("half_open_max_wait_s", lambda p: p.half_open_max_wait_s > 0, "must be > 0"),
)


# ---------------------------------------------------------------------------------------------
# Values the breaker hands out


@dataclass(frozen=True, slots=True)
class BreakerTransition:
    """One move between states, as delivered to subscribers (logs, metrics, the session)."""

    name: str  # the breaker's name
    old: BreakerState
    new: BreakerState
    reason: str  # why, in words: "5 consecutive failures", "AutoTrading off", ...
    at: float  # the breaker's monotonic clock
    open_for_s: float | None = None  # the open duration chosen, when ``new`` is OPEN


@dataclass(frozen=True, slots=True)
class BreakerStats:
    """A consistent reading of a breaker for health output and metrics."""

    name: str
    state: BreakerState
    reason: str  # why the breaker is in ``state``
    at: float  # the breaker's monotonic clock when read
    calls: int  # successes and failures in the window (ignored and cancelled calls are not)
    failures: int
    slow_calls: int
    failure_rate: float  # 0..1; 0.0 with an empty window
    slow_call_rate: float  # 0..1; 0.0 with an empty window
    consecutive_failures: int
    open_until: float | None  # monotonic time the OPEN state ends; None unless OPEN
    half_open_in_flight: int  # trial permits handed out and not yet reported
    half_open_successes: int  # trial successes so far in this HALF_OPEN period


class BreakerOpenError(Exception):
    """The breaker refused a call. The session translates it into ``MT5CircuitBreakerOpen``.

    ``retry_after_s`` is when asking again may succeed: the rest of the open duration (OPEN),
    the rest of the half-open wait (HALF_OPEN with every trial slot taken), or ``math.inf``
    (FORCED_OPEN: only ``release()`` ends it).
    """

    def __init__(
        self, state: BreakerState, retry_after_s: float, name: str = "terminal", reason: str = ""
    ) -> None:
        super().__init__(state, retry_after_s, name, reason)
        self.state = state
        self.retry_after_s = retry_after_s
        self.name = name
        self.reason = reason

    def __str__(self) -> str:
        why = f" ({self.reason})" if self.reason else ""
        return (
            f"circuit breaker {self.name!r} is {self.state}{why}; "
            f"retry after {self.retry_after_s:.1f} s"
        )


class _Outcome(Enum):
    """What a permit reported."""

    SUCCESS = "success"
    FAILURE = "failure"
    IGNORE = "ignore"  # a business rejection: counts as neither success nor failure
    CANCEL = "cancel"  # the caller gave up: records nothing


class Permit:
    """Leave to make one call. Report its outcome exactly once; a second report raises.

    A permit that is never reported costs nothing in CLOSED; in HALF_OPEN its trial slot is
    reclaimed when ``half_open_max_wait_s`` passes without a verdict and the breaker re-opens.
    """

    __slots__ = ("_breaker", "_reported", "generation", "probe", "started_at", "trial")

    def __init__(
        self, breaker: CircuitBreaker, generation: int, *, trial: bool, probe: bool, at: float
    ) -> None:
        self._breaker = breaker
        self._reported = False  # written only under the breaker's lock
        self.generation = generation  # the breaker state period this permit belongs to
        self.trial = trial  # a HALF_OPEN trial call
        self.probe = probe
        self.started_at = at

    @property
    def reported(self) -> bool:
        """Whether an outcome has been reported."""
        return self._reported

    def success(self, duration_s: float | None = None) -> None:
        """The call worked. ``duration_s`` defaults to the time since ``acquire``."""
        self._breaker._settle(self, _Outcome.SUCCESS, duration_s)

    def failure(self, duration_s: float | None = None) -> None:
        """The call failed for an infrastructure reason (IPC error, timeout, disconnect)."""
        self._breaker._settle(self, _Outcome.FAILURE, duration_s)

    def ignore(self) -> None:
        """The call was answered with a business rejection: neither success nor failure."""
        self._breaker._settle(self, _Outcome.IGNORE, None)

    def cancel(self) -> None:
        """The caller gave up (cancellation): record nothing, give back any trial slot."""
        self._breaker._settle(self, _Outcome.CANCEL, None)

    def __repr__(self) -> str:
        return (
            f"Permit(name={self._breaker.name!r}, trial={self.trial}, probe={self.probe}, "
            f"reported={self._reported})"
        )


# ---------------------------------------------------------------------------------------------
# The transition table


class _Trigger(Enum):
    """What moves the breaker."""

    TRIP = "trip"
    COOL_DOWN = "cool_down"
    TRIALS_PASSED = "trials_passed"
    TRIAL_FAILED = "trial_failed"
    TRIALS_STALLED = "trials_stalled"
    FORCE_OPEN = "force_open"
    RELEASE = "release"
    DISABLE = "disable"
    RESET = "reset"


_S = BreakerState
# (state, trigger) -> next state. A pair missing from the table is a no-op (e.g. release()
# while CLOSED). RESET from CLOSED stays CLOSED but still clears the window (no event).
_TRANSITIONS: Final[Mapping[tuple[BreakerState, _Trigger], BreakerState]] = MappingProxyType(
    {
        (_S.CLOSED, _Trigger.TRIP): _S.OPEN,
        (_S.OPEN, _Trigger.COOL_DOWN): _S.HALF_OPEN,
        (_S.HALF_OPEN, _Trigger.TRIALS_PASSED): _S.CLOSED,
        (_S.HALF_OPEN, _Trigger.TRIAL_FAILED): _S.OPEN,
        (_S.HALF_OPEN, _Trigger.TRIALS_STALLED): _S.OPEN,
        (_S.FORCED_OPEN, _Trigger.RELEASE): _S.CLOSED,
        (_S.DISABLED, _Trigger.RELEASE): _S.CLOSED,
        **{(s, _Trigger.FORCE_OPEN): _S.FORCED_OPEN for s in _S if s is not _S.FORCED_OPEN},
        **{(s, _Trigger.DISABLE): _S.DISABLED for s in _S if s is not _S.DISABLED},
        **{(s, _Trigger.RESET): _S.CLOSED for s in _S},
    }
)


# ---------------------------------------------------------------------------------------------
# Internal bookkeeping


@dataclass(slots=True)
class _Bucket:
    """Aggregates of the calls recorded in one bucket_s slice of time."""

    index: int  # floor(time / bucket_s)
    calls: int = 0
    failures: int = 0
    slow: int = 0


class _Window:
    """Sliding time window as per-bucket aggregates plus running totals: O(buckets) memory.

    A call counts while its bucket is one of the newest ``ceil(window_s / bucket_s)``, so it
    drops out between ``window_s - bucket_s`` and ``window_s`` after it was recorded.
    """

    __slots__ = ("_bucket_s", "_buckets", "_size", "calls", "failures", "slow")

    def __init__(self, window_s: float, bucket_s: float) -> None:
        self._bucket_s = bucket_s
        self._size = max(1, math.ceil(window_s / bucket_s - 1e-9))
        self._buckets: deque[_Bucket] = deque()
        self.calls = self.failures = self.slow = 0  # invariant: sums over _buckets

    def record(self, now: float, *, failed: bool, slow: bool) -> None:
        """Count one call ending at ``now``."""
        bucket = self._current(now)
        bucket.calls += 1
        bucket.failures += failed
        bucket.slow += slow
        self.calls += 1
        self.failures += failed
        self.slow += slow

    def expire(self, now: float) -> None:
        """Drop the buckets that have slid out of the window."""
        oldest = self._index(now) - self._size + 1
        while self._buckets and self._buckets[0].index < oldest:
            gone = self._buckets.popleft()
            self.calls -= gone.calls
            self.failures -= gone.failures
            self.slow -= gone.slow

    def clear(self) -> None:
        """Forget every call."""
        self._buckets.clear()
        self.calls = self.failures = self.slow = 0

    def rates(self) -> tuple[float, float]:
        """(failure rate, slow-call rate), 0.0 each with an empty window."""
        if not self.calls:
            return 0.0, 0.0
        return self.failures / self.calls, self.slow / self.calls

    def _index(self, now: float) -> int:
        return math.floor(now / self._bucket_s)

    def _current(self, now: float) -> _Bucket:
        self.expire(now)
        index = self._index(now)
        # A clock read just before another thread's later one lands in the newest bucket.
        if not self._buckets or self._buckets[-1].index < index:
            self._buckets.append(_Bucket(index))
        return self._buckets[-1]


@dataclass(slots=True)
class _Trials:
    """Bookkeeping of one HALF_OPEN period."""

    deadline: float  # without a verdict by then, the breaker re-opens
    left: int  # trial slots not handed out; invariant: left + in_flight <= half_open_permits
    in_flight: int = 0
    probes: int = 0  # probes among in_flight
    successes: int = 0
    failures: int = 0


def always_failure(error: BaseException) -> Verdict:
    """Default :data:`Classifier`: every exception is an infrastructure failure."""
    return "failure"


# ---------------------------------------------------------------------------------------------
# The breaker


class CircuitBreaker:
    """A circuit breaker for one terminal, safe from threads and asyncio tasks.

    ``clock`` must be monotonic (never wall time, which jumps); ``random`` returns a uniform
    number in [0, 1) for the jitter. Both are injected so tests drive them.

    Probes: ``acquire(probe=True)`` marks a read-only health probe. In HALF_OPEN, while a probe
    trial is in flight other callers are refused (a real order does not race the probe that is
    about to say whether the terminal is back); with ``half_open_probe_only`` only probes are
    admitted as trial calls at all.
    """

    def __init__(
        self,
        policy: BreakerPolicy | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        random: Callable[[], float] = _random.random,
        name: str = "terminal",
    ) -> None:
        self._policy = BreakerPolicy() if policy is None else policy
        self._clock = clock
        self._random = random
        self._name = name
        self._lock = threading.Lock()  # guards every field below; never held across a call
        self._state = BreakerState.CLOSED
        self._reason = "created"
        self._generation = 0  # bumped on every state entry; stale permits report into nothing
        self._window = _Window(self._policy.window_s, self._policy.bucket_s)
        self._consecutive = 0
        self._reopens = 0  # openings since the circuit last closed: drives the backoff
        self._open_until = 0.0
        self._trials = _Trials(deadline=0.0, left=0)
        self._subscribers: tuple[Callable[[BreakerTransition], None], ...] = ()
        self._pending: deque[BreakerTransition] = deque()  # appended under _lock, in order
        self._delivering = threading.Lock()  # one deliverer at a time keeps events in order

    # -- reading ---------------------------------------------------------------------------

    @property
    def name(self) -> str:
        """The name carried by events, stats and refusals."""
        return self._name

    @property
    def policy(self) -> BreakerPolicy:
        """The policy in force."""
        return self._policy

    @property
    def state(self) -> BreakerState:
        """The current state (OPEN turns HALF_OPEN only when someone asks for a permit)."""
        return self._state

    def snapshot(self) -> BreakerStats:
        """A consistent reading of state and window, for health and metrics."""
        with self._lock:
            now = self._clock()
            self._window.expire(now)
            return self._stats(now)

    def __repr__(self) -> str:
        return f"CircuitBreaker(name={self._name!r}, state={self._state.name})"

    # -- calling ---------------------------------------------------------------------------

    def acquire(self, probe: bool = False) -> Permit:
        """A permit for one call, or ``BreakerOpenError`` if the breaker refuses it now."""
        with self._lock:
            granted = self._admit(probe, self._clock())
        self._deliver()
        if isinstance(granted, BreakerOpenError):
            raise granted
        return granted

    def guard(self, classify: Classifier = always_failure, *, probe: bool = False) -> Guard:
        """A context manager (``with`` or ``async with``) that acquires and reports a permit.

        ``classify`` turns an exception into a :data:`Verdict`; cancellation
        (``asyncio.CancelledError``) and other non-``Exception`` exits cancel the permit.
        """
        return Guard(self, classify, probe=probe)

    # -- manual control --------------------------------------------------------------------

    def force_open(self, reason: str = "forced open") -> None:
        """Refuse every call until :meth:`release` (kill switch, AutoTrading turned off)."""
        self._manual(_Trigger.FORCE_OPEN, reason)

    def release(self, reason: str = "released") -> None:
        """End FORCED_OPEN or DISABLED: back to CLOSED with a fresh window. Else a no-op."""
        self._manual(_Trigger.RELEASE, reason)

    def disable(self, reason: str = "disabled") -> None:
        """Let every call through; outcomes are still counted but never trip."""
        self._manual(_Trigger.DISABLE, reason)

    def reset(self, reason: str = "reset") -> None:
        """Back to CLOSED from anywhere, forgetting the window, counts and backoff."""
        self._manual(_Trigger.RESET, reason)

    # -- events ----------------------------------------------------------------------------

    def subscribe(self, callback: Callable[[BreakerTransition], None]) -> Callable[[], None]:
        """Call ``callback`` on every transition, without the lock held; returns unsubscribe.

        Transitions reach subscribers in the order they happened, possibly from the thread
        that delivers an earlier one. A subscriber that raises is logged and skipped.
        """
        with self._lock:
            self._subscribers = (*self._subscribers, callback)

        def unsubscribe() -> None:
            with self._lock:
                self._subscribers = tuple(s for s in self._subscribers if s is not callback)

        return unsubscribe

    # -- admission (lock held) -------------------------------------------------------------

    def _admit(self, probe: bool, now: float) -> Permit | BreakerOpenError:
        self._check_stalled(now)
        if self._state is BreakerState.OPEN and now >= self._open_until:
            self._fire(_Trigger.COOL_DOWN, "open duration elapsed", now)
        if self._state in (BreakerState.CLOSED, BreakerState.DISABLED):
            return Permit(self, self._generation, trial=False, probe=probe, at=now)
        if self._state is BreakerState.HALF_OPEN and self._trial_admits(probe):
            return self._take_trial(probe, now)
        return self._refusal(now)

    def _trial_admits(self, probe: bool) -> bool:
        trials = self._trials
        if not probe and (self._policy.half_open_probe_only or trials.probes):
            return False
        return trials.left > 0

    def _take_trial(self, probe: bool, now: float) -> Permit:
        trials = self._trials
        trials.left -= 1
        trials.in_flight += 1
        trials.probes += probe
        return Permit(self, self._generation, trial=True, probe=probe, at=now)

    def _refusal(self, now: float) -> BreakerOpenError:
        if self._state is BreakerState.OPEN:
            wait = self._open_until - now
        elif self._state is BreakerState.HALF_OPEN:
            wait = self._trials.deadline - now
        else:
            wait = math.inf  # FORCED_OPEN lasts until release()
        return BreakerOpenError(self._state, max(0.0, wait), self._name, self._reason)

    def _check_stalled(self, now: float) -> None:
        # Trials that never report back must not hold HALF_OPEN forever (resilience4j #903).
        if self._state is BreakerState.HALF_OPEN and now >= self._trials.deadline:
            wait = self._policy.half_open_max_wait_s
            self._fire(_Trigger.TRIALS_STALLED, f"no trial verdict within {wait:g} s", now)

    # -- reporting -------------------------------------------------------------------------

    def _settle(self, permit: Permit, outcome: _Outcome, duration_s: float | None) -> None:
        if duration_s is not None and not duration_s >= 0:
            raise ValueError(f"duration_s must be >= 0, got {duration_s!r}")
        with self._lock:
            if permit._reported:
                raise RuntimeError(f"{permit!r} has already reported its outcome")
            permit._reported = True
            now = self._clock()
            self._check_stalled(now)
            # A permit from an earlier state period describes a terminal since re-judged.
            if permit.generation == self._generation:
                elapsed = now - permit.started_at if duration_s is None else duration_s
                self._apply(permit, outcome, elapsed, now)
        self._deliver()

    def _apply(self, permit: Permit, outcome: _Outcome, duration_s: float, now: float) -> None:
        if permit.trial:
            self._judge_trial(permit, outcome, now)
        elif outcome in (_Outcome.SUCCESS, _Outcome.FAILURE):
            failed = outcome is _Outcome.FAILURE
            self._count(failed, duration_s >= self._policy.slow_call_s, now)

    def _count(self, failed: bool, slow: bool, now: float) -> None:
        self._window.record(now, failed=failed, slow=slow)
        self._consecutive = self._consecutive + 1 if failed else 0
        if self._state is BreakerState.CLOSED:  # DISABLED counts but never trips
            reason = self._trip_reason()
            if reason is not None:
                self._fire(_Trigger.TRIP, reason, now)

    def _trip_reason(self) -> str | None:
        policy, window = self._policy, self._window
        if self._consecutive >= policy.consecutive_failures:
            return f"{self._consecutive} consecutive failures"
        if window.calls < policy.minimum_calls:
            return None
        failure_rate, slow_rate = window.rates()
        if failure_rate >= policy.failure_rate:
            return f"failure rate {failure_rate:.0%} over {window.calls} calls"
        if policy.slow_tripping and slow_rate >= policy.slow_call_rate:
            return f"slow-call rate {slow_rate:.0%} over {window.calls} calls"
        return None

    def _judge_trial(self, permit: Permit, outcome: _Outcome, now: float) -> None:
        trials = self._trials
        trials.in_flight -= 1
        trials.probes -= permit.probe
        if outcome is _Outcome.SUCCESS:
            trials.successes += 1
        elif outcome is _Outcome.FAILURE:
            trials.failures += 1
        else:  # ignored or cancelled: no verdict, so the slot goes back
            trials.left += 1
        self._decide_trials(now)

    def _decide_trials(self, now: float) -> None:
        needed = self._policy.successes_to_close
        trials = self._trials
        if trials.successes >= needed:
            passed = f"trial calls succeeded ({trials.successes} of {needed} needed)"
            self._fire(_Trigger.TRIALS_PASSED, passed, now)
        elif trials.failures > self._policy.half_open_permits - needed:
            self._fire(_Trigger.TRIAL_FAILED, "a trial call failed", now)

    # -- transitions (lock held) -----------------------------------------------------------

    def _manual(self, trigger: _Trigger, reason: str) -> None:
        with self._lock:
            self._fire(trigger, reason, self._clock())
        self._deliver()

    def _fire(self, trigger: _Trigger, reason: str, now: float) -> None:
        new = _TRANSITIONS.get((self._state, trigger))
        if new is None:
            return
        old, self._state, self._reason = self._state, new, reason
        self._generation += 1
        open_for = self._enter(new, now)
        if new is not old:
            self._pending.append(BreakerTransition(self._name, old, new, reason, now, open_for))

    def _enter(self, state: BreakerState, now: float) -> float | None:
        """Entry actions of ``state``; returns the open duration when entering OPEN."""
        if state is BreakerState.CLOSED:
            self._window.clear()
            self._consecutive = 0
            self._reopens = 0
        elif state is BreakerState.OPEN:
            open_for = self._policy.open_s(self._reopens, self._random())
            self._reopens += 1
            self._open_until = now + open_for
            return open_for
        elif state is BreakerState.HALF_OPEN:
            deadline = now + self._policy.half_open_max_wait_s
            self._trials = _Trials(deadline=deadline, left=self._policy.half_open_permits)
        return None

    def _stats(self, now: float) -> BreakerStats:
        failure_rate, slow_rate = self._window.rates()
        half_open = self._state is BreakerState.HALF_OPEN
        return BreakerStats(
            name=self._name,
            state=self._state,
            reason=self._reason,
            at=now,
            calls=self._window.calls,
            failures=self._window.failures,
            slow_calls=self._window.slow,
            failure_rate=failure_rate,
            slow_call_rate=slow_rate,
            consecutive_failures=self._consecutive,
            open_until=self._open_until if self._state is BreakerState.OPEN else None,
            half_open_in_flight=self._trials.in_flight if half_open else 0,
            half_open_successes=self._trials.successes if half_open else 0,
        )

    # -- delivery (lock not held) ----------------------------------------------------------

    def _deliver(self) -> None:
        # Re-check after releasing _delivering: a transition queued while another thread was
        # finishing delivery would otherwise wait for the next one.
        while self._pending and self._delivering.acquire(blocking=False):
            try:
                self._deliver_pending()
            finally:
                self._delivering.release()

    def _deliver_pending(self) -> None:
        while self._pending:
            event = self._pending.popleft()  # only the holder of _delivering pops
            for callback in self._subscribers:
                self._notify(callback, event)

    def _notify(
        self, callback: Callable[[BreakerTransition], None], event: BreakerTransition
    ) -> None:
        try:
            callback(event)
        except Exception:
            logging.getLogger(__name__).exception(
                "circuit breaker %r: subscriber %r failed on %s -> %s",
                self._name,
                callback,
                event.old,
                event.new,
            )


class Guard:
    """``with``/``async with`` helper: acquire a permit on entry, report it on exit.

    Exit without an exception reports success (duration measured on the breaker's clock);
    an ``Exception`` is reported as ``classify`` says; ``asyncio.CancelledError`` and other
    ``BaseException`` exits cancel. A permit reported inside the block is left as it is.
    Exceptions are never swallowed.
    """

    __slots__ = ("_breaker", "_classify", "_probe", "permit")

    def __init__(self, breaker: CircuitBreaker, classify: Classifier, *, probe: bool) -> None:
        self._breaker = breaker
        self._classify = classify
        self._probe = probe
        self.permit: Permit | None = None

    def __enter__(self) -> Permit:
        self.permit = self._breaker.acquire(probe=self._probe)
        return self.permit

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        permit, self.permit = self.permit, None
        if permit is not None and not permit.reported:
            self._report(permit, exc)

    async def __aenter__(self) -> Permit:
        return self.__enter__()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.__exit__(exc_type, exc, traceback)

    def _report(self, permit: Permit, exc: BaseException | None) -> None:
        if exc is None:
            permit.success()
        elif isinstance(exc, asyncio.CancelledError) or not isinstance(exc, Exception):
            permit.cancel()
        else:
            self._report_verdict(permit, self._classify(exc))

    @staticmethod
    def _report_verdict(permit: Permit, verdict: Verdict) -> None:
        if verdict == "failure":
            permit.failure()
        elif verdict == "ignore":
            permit.ignore()
        elif verdict == "success":
            permit.success()
        else:
            permit.cancel()
            raise ValueError(f"classify returned {verdict!r}: expected success, failure or ignore")
