"""The observer interface: how metrics and logs learn what the session does.

The core has no metrics library. A ``SessionObserver`` subclass overrides the hooks it cares
about (the service's Prometheus exporter, a log writer, a test recorder); every hook is a no-op
by default and must be cheap, because ``call_finished`` runs on every terminal call.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mt5gate.circuit_breaker import BreakerTransition
    from mt5gate.session.state import StateChange

__all__ = ["LoggingObserver", "ObserverGroup", "SessionObserver"]

#: Streams whose last logged drop total a LoggingObserver remembers (oldest forgotten first).
_STREAMS_REMEMBERED = 1024


class SessionObserver:
    """No-op hooks; override what you need. Exceptions raised by hooks are not caught."""

    def call_finished(self, function: str, outcome: str, duration_s: float) -> None:
        """A terminal call ended: ``outcome`` is 'ok' or the error class name."""

    def state_changed(self, change: StateChange) -> None:
        """The session moved between states."""

    def breaker_changed(self, transition: BreakerTransition) -> None:
        """The circuit breaker moved between states."""

    def reconnect_attempted(self, attempt: int, ok: bool, error: str | None) -> None:
        """A reconnection attempt ended."""

    def stream_dropped(self, stream: str, dropped: int) -> None:
        """A slow subscriber lost ``dropped`` items (total so far) on ``stream``."""

    def order_event(self, kind: str, retcode: int | None) -> None:
        """The order pipeline journaled an event (``kind`` is an ``EventKind`` name: INTENT,
        ACKNOWLEDGED, REJECTED, UNKNOWN, ...); ``retcode`` when the event carries one."""

    def journal_written(self, operation: str, duration_s: float) -> None:
        """A journal operation finished on the journal thread (writes are fsync'd), with how
        long the caller waited for it."""


class LoggingObserver(SessionObserver):
    """The default observer: state and breaker transitions and reconnects as log lines.

    Lines carry states, function names and error class names only: never arguments, which is
    where a password would be (stamina's retry hooks leak exactly that, RELIABILITY §2).
    """

    def __init__(self, logger: logging.Logger | None = None) -> None:
        self.log = logger or logging.getLogger("mt5gate.session")
        self._dropped: dict[str, int] = {}  # stream -> the drop total last logged

    def state_changed(self, change: StateChange) -> None:
        self.log.info("session %s -> %s (%s)", change.old, change.new, change.reason)

    def breaker_changed(self, transition: BreakerTransition) -> None:
        self.log.warning(
            "circuit breaker %s: %s -> %s (%s)",
            transition.name,
            transition.old,
            transition.new,
            transition.reason,
        )

    def reconnect_attempted(self, attempt: int, ok: bool, error: str | None) -> None:
        if ok:
            self.log.info("reconnected on attempt %d", attempt)
        else:
            self.log.warning("reconnect attempt %d failed: %s", attempt, error)

    def stream_dropped(self, stream: str, dropped: int) -> None:
        """Logged when the total first reaches 1, 2, 4, 8, ... (a power of two), not at each
        report: an overloaded stream drops thousands of items a second, and a line for each
        would take the CPU it lacks. Metrics (``mt5gate.metrics``) count every item."""
        logged = self._dropped.pop(stream, 0)
        if dropped.bit_length() > logged.bit_length():
            self.log.warning("stream %s: slow subscriber, %d items dropped so far", stream, dropped)
            logged = dropped
        self._dropped[stream] = logged
        if len(self._dropped) > _STREAMS_REMEMBERED:
            del self._dropped[next(iter(self._dropped))]


class ObserverGroup(SessionObserver):
    """Several observers as one: every hook goes to each, in order. The service gives each
    session its Prometheus observer *and* the logging one, so metrics do not silence the log
    lines of state changes, breaker transitions and reconnects."""

    def __init__(self, *observers: SessionObserver) -> None:
        self.observers = observers

    def call_finished(self, function: str, outcome: str, duration_s: float) -> None:
        for observer in self.observers:
            observer.call_finished(function, outcome, duration_s)

    def state_changed(self, change: StateChange) -> None:
        for observer in self.observers:
            observer.state_changed(change)

    def breaker_changed(self, transition: BreakerTransition) -> None:
        for observer in self.observers:
            observer.breaker_changed(transition)

    def reconnect_attempted(self, attempt: int, ok: bool, error: str | None) -> None:
        for observer in self.observers:
            observer.reconnect_attempted(attempt, ok, error)

    def stream_dropped(self, stream: str, dropped: int) -> None:
        for observer in self.observers:
            observer.stream_dropped(stream, dropped)

    def order_event(self, kind: str, retcode: int | None) -> None:
        for observer in self.observers:
            observer.order_event(kind, retcode)

    def journal_written(self, operation: str, duration_s: float) -> None:
        for observer in self.observers:
            observer.journal_written(operation, duration_s)
