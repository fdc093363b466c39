"""The terminal gate: calls run on the threads that ask for them, one thread at a time.

The bridge serves each connection on its own thread and runs that connection's terminal calls
right there, so a call is read, executed and answered without handing it to another thread
(each hand-off is a thread wake-up, tens of microseconds on a small VM). The gate is what keeps
the terminal's rule (DESIGN §2: never two threads in the terminal at once) and the deadlines the
bridge promised when a worker thread ran every call:

* a call waits for its turn within its deadline; past it, it fails with
  :class:`~mt5gate.terminal.worker.DeadlineExceededError` (``running=False``) and never runs;
* a call that outlives its deadline *inside* the terminal cannot be interrupted, and its own
  thread is stuck in it. The gate's watchdog thread then calls the ``on_overdue`` callback the
  caller gave; when it returns True it has answered for the call (the bridge replies "timeout"
  and serves the connection on a fresh thread), and the call is *abandoned*: when it finally
  returns, its caller gets :class:`CallAbandonedError` instead of the result, which nobody waits
  for any more. The callback runs under the gate's lock, so the call cannot return half-way
  through that hand-over;
* while a call is past its deadline the terminal is *stuck*: new calls fail at once with
  :class:`~mt5gate.terminal.worker.WorkerStuckError`; calls already waiting fail at their own
  deadlines. When the stuck call returns, the terminal takes calls again;
* after :meth:`TerminalGate.close`, waiting and new calls fail with
  :class:`~mt5gate.terminal.worker.WorkerClosedError`.

The watchdog is cheap because it is rarely woken: with no call past due it sleeps until the
running call's deadline, or for ``horizon_s`` (the shortest deadline a call can have) when the
terminal is idle, so a call that starts while it sleeps is due after it wakes. Only a call due
before the watchdog's next wake-up (one that waited for its turn) wakes it early.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import TypeVar

from mt5gate.terminal.worker import DeadlineExceededError, WorkerClosedError, WorkerStuckError

__all__ = ["CallAbandonedError", "TerminalGate", "TurnPhase"]

log = logging.getLogger("mt5gate.bridge")

T = TypeVar("T")


class CallAbandonedError(Exception):
    """The call returned after its deadline, when the watchdog had already answered for it; its
    result (or exception) was dropped."""

    def __init__(self, function: str, late_s: float) -> None:
        super().__init__(f"{function}() returned {late_s:.1f} s after its deadline; dropped")
        self.function = function
        self.late_s = late_s


class TurnPhase(Enum):
    """Where a call in the terminal is. RUNNING -> DONE (its caller answers it) or
    RUNNING -> ABANDONED (past its deadline: the watchdog's callback answered it)."""

    RUNNING = "running"
    DONE = "done"
    ABANDONED = "abandoned"


@dataclass(eq=False, slots=True)
class _Turn:
    function: str
    deadline_s: float
    due: float  # clock time at which the deadline passes
    on_overdue: Callable[[], bool]
    started: float  # when it entered the terminal
    noticed: bool = False  # the watchdog has called on_overdue
    phase: TurnPhase = TurnPhase.RUNNING  # changed only under the gate's lock


class TerminalGate:
    """Lets one thread at a time into a terminal, within deadlines; owns one watchdog thread."""

    def __init__(
        self,
        name: str,
        *,
        horizon_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """``horizon_s`` is the shortest deadline any call is given (see the module docstring);
        ``name`` names the watchdog thread."""
        if horizon_s <= 0:
            raise ValueError("horizon_s must be > 0")
        self.name = name
        self.horizon_s = horizon_s
        self._clock = clock
        self._lock = threading.Lock()
        self._turns = threading.Condition(self._lock)  # callers waiting for the terminal
        self._watch = threading.Condition(self._lock)  # the watchdog's sleep
        self._turn: _Turn | None = None  # the call in the terminal now
        self._waiting = 0  # callers waiting for their turn
        self._watch_until = 0.0  # when the watchdog wakes next, if nobody wakes it sooner
        self._closed = False
        self._thread: threading.Thread | None = None

    def __repr__(self) -> str:
        state = "closed" if self._closed else "stuck" if self.stuck else "ready"
        return f"<TerminalGate {self.name!r} {state}>"

    # ------------------------------------------------------------------ life cycle

    def start(self) -> None:
        """Start the watchdog thread (idempotent)."""
        with self._lock:
            if self._closed:
                raise WorkerClosedError(f"gate {self.name!r} is closed")
            if self._thread is not None:
                return
            self._thread = threading.Thread(target=self._watchdog, name=self.name, daemon=True)
        self._thread.start()

    def close(self, timeout_s: float = 5.0) -> None:
        """Refuse new calls, fail the waiting ones, and join the watchdog. A call inside the
        terminal runs on its caller's thread and ends when the terminal lets it."""
        with self._lock:
            self._closed = True
            self._turns.notify_all()
            self._watch.notify_all()
        if self._thread is not None:
            self._thread.join(timeout_s)

    @property
    def stuck(self) -> bool:
        """Whether a call is in the terminal past its deadline."""
        turn = self._turn
        return turn is not None and self._overdue(turn)

    @property
    def waiting(self) -> int:
        """Calls waiting for their turn now."""
        return self._waiting

    def busy(self) -> tuple[str, float] | None:
        """``(function, seconds)`` of the call in the terminal now, if any."""
        turn = self._turn
        return None if turn is None else (turn.function, self._clock() - turn.started)

    # ------------------------------------------------------------------- calling

    def run(
        self,
        function: str,
        call: Callable[[], T],
        deadline_s: float,
        on_overdue: Callable[[], bool],
    ) -> T:
        """Wait for the terminal (within ``deadline_s``), then run ``call`` on this thread.

        ``on_overdue()`` is called on the watchdog thread, with the gate's lock held (keep it
        short; it must not call the gate), if ``call`` is still running when the deadline
        passes. If it returns True, this thread gets :class:`CallAbandonedError` once ``call``
        returns; if False, the late result is returned as usual.
        """
        now = self._clock()
        turn = _Turn(function, deadline_s, now + deadline_s, on_overdue, now)
        with self._lock:
            if self._turn is not None or self._closed:
                self._wait_for_turn(turn)
            self._turn = turn
            if turn.due < self._watch_until:  # due before the watchdog looks again
                self._watch.notify()
        try:
            result = call()
        finally:
            with self._lock:
                self._turn = None
                if self._waiting:
                    self._turns.notify()
                abandoned = turn.phase is TurnPhase.ABANDONED
                if not abandoned:
                    turn.phase = TurnPhase.DONE
        if abandoned:
            raise CallAbandonedError(function, self._clock() - turn.due)
        return result

    def _wait_for_turn(self, turn: _Turn) -> None:
        """Lock held, the terminal taken or the gate closed: refuse at once if the call in the
        terminal is stuck, else wait until the terminal is free, within the call's deadline."""
        current = self._turn
        if current is not None and self._overdue(current):
            raise WorkerStuckError(current.function, self._clock() - current.started)
        self._waiting += 1
        try:
            while self._turn is not None or self._closed:
                remaining = turn.due - self._clock()
                if self._closed or remaining <= 0:
                    self._turns.notify()  # the wake-up this thread may have taken is passed on
                    if self._closed:
                        raise WorkerClosedError(f"gate {self.name!r} is closed")
                    raise DeadlineExceededError(turn.function, turn.deadline_s, running=False)
                self._turns.wait(remaining)
        finally:
            self._waiting -= 1
        turn.started = self._clock()

    def _overdue(self, turn: _Turn) -> bool:
        return self._clock() >= turn.due

    # ------------------------------------------------------------------- watchdog

    def _watchdog(self) -> None:
        """Sleep until the call in the terminal is past its deadline, then tell its caller's
        ``on_overdue``; return once the gate is closed."""
        with self._lock:
            while not self._closed:
                now = self._clock()
                turn = self._turn
                if turn is not None and not turn.noticed:
                    if now >= turn.due:
                        self._notice(turn)
                        continue
                    wait = min(self.horizon_s, turn.due - now)
                else:
                    wait = self.horizon_s
                self._watch_until = now + wait
                self._watch.wait(wait)

    @staticmethod
    def _notice(turn: _Turn) -> None:
        turn.noticed = True
        try:
            answered = turn.on_overdue()
        except Exception:  # a failing callback must not end the watchdog
            log.exception("bridge: answering the overdue %s() failed", turn.function)
            answered = False
        if answered:
            turn.phase = TurnPhase.ABANDONED
