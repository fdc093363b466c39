"""Scripted faults: the ways real terminals fail, injected per call or by probability.

A :class:`FaultPlan` holds rules. Before each API call the terminal asks the plan whether a rule
fires for that function; the rule's :class:`FaultKind` says what happens. Rules are data: a test
writes ``plan.reply_lost("order_send")`` and the next ``order_send`` executes on the simulated
server while its reply is lost, exactly the case that makes naive clients place orders twice.

Hangs block the calling thread for real (a session's deadline is real time) until
:meth:`FaultPlan.release` or the rule's ``delay_s`` cap; everything else is instantaneous.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from enum import StrEnum

from mt5gate.constants import ResultCode

__all__ = ["Fault", "FaultKind", "FaultPlan"]

log = logging.getLogger("mt5gate.sim.faults")


class FaultKind(StrEnum):
    """What a fired rule does to the call."""

    IPC_ERROR = "ipc_error"  # fails before reaching the terminal, with ``code``
    LATENCY = "latency"  # runs after ``delay_s`` of real time
    HANG = "hang"  # blocks until released (or ``delay_s``), then fails with ``code``
    REPLY_LOST = "reply_lost"  # runs (the order executes), the reply is lost: ``code``
    DISCONNECT = "disconnect"  # the trade-server link drops (back after ``delay_s`` if > 0)
    AUTOTRADING_OFF = "autotrading_off"  # the Algo Trading button goes off, then the call runs
    RESTART = "restart"  # the terminal restarts: no IPC connection until initialize()


_DEFAULT_CODES = {
    FaultKind.IPC_ERROR: ResultCode.E_INTERNAL_FAIL_SEND,
    FaultKind.HANG: ResultCode.E_INTERNAL_FAIL_TIMEOUT,
    FaultKind.REPLY_LOST: ResultCode.E_INTERNAL_FAIL_RECEIVE,
}


@dataclass(frozen=True, slots=True)
class Fault:
    """One rule: which calls it matches, when it fires, what it does."""

    kind: FaultKind
    functions: frozenset[str] | None = None  # None matches every function
    code: int | None = None  # last_error code of the failure; None: the kind's default
    delay_s: float = 0.0  # LATENCY delay; HANG / lost-reply hang cap; DISCONNECT link downtime
    hang: bool = False  # REPLY_LOST: block (like a hung pipe) before the reply is lost
    after: int = 0  # matching calls let through before the rule may fire
    times: int | None = 1  # how often it fires; None: every matching call
    probability: float = 1.0  # chance of firing on an eligible call (seeded)

    def __post_init__(self) -> None:
        if not 0.0 <= self.probability <= 1.0:
            raise ValueError(f"Fault.probability must be within 0..1, got {self.probability}")
        if self.delay_s < 0 or self.after < 0 or (self.times is not None and self.times < 1):
            raise ValueError("Fault.delay_s and Fault.after must be >= 0, Fault.times >= 1")

    @property
    def failure_code(self) -> int:
        """The last_error code this fault leaves behind (``code`` or the kind's default)."""
        return self.code if self.code is not None else _DEFAULT_CODES.get(self.kind, 0)

    def matches(self, function: str) -> bool:
        """Whether this rule applies to calls of ``function``."""
        return self.functions is None or function in self.functions


@dataclass(slots=True)
class _Rule:
    fault: Fault
    seen: int = 0
    fired: int = 0

    def eligible(self) -> bool:
        exhausted = self.fault.times is not None and self.fired >= self.fault.times
        return not exhausted and self.seen > self.fault.after


def _names(functions: str | Iterable[str] | None) -> frozenset[str] | None:
    if functions is None:
        return None
    return frozenset((functions,) if isinstance(functions, str) else functions)


@dataclass
class FaultPlan:
    """The rules in force for one simulated terminal, with a seeded random source."""

    seed: int = 0
    sleep: Callable[[float], None] = time.sleep
    _rules: list[_Rule] = field(default_factory=list)
    _release: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self._random = random.Random(self.seed)

    @property
    def active(self) -> bool:
        """Whether any rule is installed (the terminal skips the plan when not)."""
        return bool(self._rules)

    def add(self, fault: Fault) -> Fault:
        """Install a rule; rules are consulted in the order they were added."""
        self._rules.append(_Rule(fault))
        return fault

    def clear(self) -> None:
        """Remove every rule and wake any hung call."""
        self._rules.clear()
        self.release()

    def fired(self, fault: Fault) -> int:
        """How many times ``fault`` has fired so far."""
        return sum(r.fired for r in self._rules if r.fault is fault)

    def pick(self, function: str) -> Fault | None:
        """The first rule that fires for this call of ``function``, counting the call."""
        chosen: Fault | None = None
        for rule in self._rules:
            if not rule.fault.matches(function):
                continue
            rule.seen += 1
            if chosen is None and rule.eligible() and self._draw(rule.fault):
                rule.fired += 1
                chosen = rule.fault
                log.info("fault %s fired on %s() (%d so far)", chosen.kind, function, rule.fired)
        return chosen

    def _draw(self, fault: Fault) -> bool:
        return fault.probability >= 1.0 or self._random.random() < fault.probability

    def wait(self, cap_s: float) -> bool:
        """Block like a hung pipe until :meth:`release` or ``cap_s`` seconds; True if released."""
        return self._release.wait(cap_s if cap_s > 0 else None)

    def release(self) -> None:
        """Wake every call hung now; later hangs block again."""
        event, self._release = self._release, threading.Event()
        event.set()

    # Builders: one line per fault in tests and demos.

    def ipc_error(
        self,
        functions: str | Iterable[str] | None = None,
        code: int = ResultCode.E_INTERNAL_FAIL_SEND,
        *,
        times: int | None = 1,
        after: int = 0,
        probability: float = 1.0,
    ) -> Fault:
        """Calls fail with an IPC code (-10000, -10001, -10002, -10004, -10005)."""
        return self.add(
            Fault(
                FaultKind.IPC_ERROR, _names(functions), code, 0.0, False, after, times, probability
            )
        )

    def latency(
        self, functions: str | Iterable[str] | None, delay_s: float, *, times: int | None = None
    ) -> Fault:
        """Calls take ``delay_s`` longer (real time)."""
        return self.add(Fault(FaultKind.LATENCY, _names(functions), delay_s=delay_s, times=times))

    def hang(
        self,
        functions: str | Iterable[str] | None,
        *,
        cap_s: float = 30.0,
        times: int | None = 1,
        after: int = 0,
    ) -> Fault:
        """Calls block until :meth:`release` (or ``cap_s``) and then fail with -10005."""
        return self.add(
            Fault(FaultKind.HANG, _names(functions), delay_s=cap_s, times=times, after=after)
        )

    def reply_lost(
        self,
        functions: str | Iterable[str] = "order_send",
        *,
        code: int = ResultCode.E_INTERNAL_FAIL_RECEIVE,
        hang: bool = False,
        cap_s: float = 30.0,
        times: int | None = 1,
        after: int = 0,
        probability: float = 1.0,
    ) -> Fault:
        """The call executes on the server but its reply is lost (None + ``code``, or a hang)."""
        fault = Fault(
            FaultKind.REPLY_LOST, _names(functions), code, cap_s, hang, after, times, probability
        )
        return self.add(fault)

    def disconnect(
        self,
        functions: str | Iterable[str] | None = None,
        *,
        after: int = 0,
        restore_after_s: float = 0.0,
    ) -> Fault:
        """The trade-server connection drops at the matching call; it stays down until
        restored (``set_connected(True)``), or comes back by itself ``restore_after_s`` seconds
        later on the terminal's clock when that is positive."""
        return self.add(
            Fault(FaultKind.DISCONNECT, _names(functions), delay_s=restore_after_s, after=after)
        )

    def autotrading_off(
        self, functions: str | Iterable[str] | None = None, *, after: int = 0
    ) -> Fault:
        """The Algo Trading button is switched off at the matching call (10027 from then on)."""
        return self.add(Fault(FaultKind.AUTOTRADING_OFF, _names(functions), after=after))

    def restart(self, functions: str | Iterable[str] | None = None, *, after: int = 0) -> Fault:
        """The terminal restarts at the matching call: -10004 until the next initialize()."""
        return self.add(Fault(FaultKind.RESTART, _names(functions), after=after))
