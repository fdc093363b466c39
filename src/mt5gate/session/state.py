"""The session's explicit state machine: states, allowed transitions, and who hears of them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType

__all__ = ["SessionState", "StateChange", "StateMachine", "TRANSITIONS"]


class SessionState(StrEnum):
    """Where a session is. DEGRADED: attached, but the trade server link is down or a call hung."""

    DISCONNECTED = "disconnected"
    CONNECTING = "connecting"
    CONNECTED = "connected"
    DEGRADED = "degraded"
    RECONNECTING = "reconnecting"
    CLOSED = "closed"


S = SessionState
TRANSITIONS = MappingProxyType(
    {
        S.DISCONNECTED: frozenset({S.CONNECTING, S.CLOSED}),
        S.CONNECTING: frozenset({S.CONNECTED, S.DEGRADED, S.DISCONNECTED, S.CLOSED}),
        S.CONNECTED: frozenset(
            {S.DEGRADED, S.RECONNECTING, S.CONNECTING, S.DISCONNECTED, S.CLOSED}
        ),
        S.DEGRADED: frozenset(
            {S.CONNECTED, S.RECONNECTING, S.CONNECTING, S.DISCONNECTED, S.CLOSED}
        ),
        S.RECONNECTING: frozenset({S.CONNECTED, S.DEGRADED, S.DISCONNECTED, S.CLOSED}),
        S.CLOSED: frozenset(),
    }
)


@dataclass(frozen=True, slots=True)
class StateChange:
    """One transition, as observers and event streams see it."""

    old: SessionState
    new: SessionState
    reason: str


class StateMachine:
    """Holds the state; refuses transitions the table does not allow; tells listeners."""

    def __init__(self) -> None:
        self._state = SessionState.DISCONNECTED
        self._listeners: list[Callable[[StateChange], None]] = []

    @property
    def state(self) -> SessionState:
        """The current state."""
        return self._state

    def subscribe(self, listener: Callable[[StateChange], None]) -> None:
        """Call ``listener`` on every transition."""
        self._listeners.append(listener)

    def move(self, new: SessionState, reason: str) -> bool:
        """Go to ``new``; False (and no change) when already there. Illegal moves raise."""
        old = self._state
        if new == old:
            return False
        if new not in TRANSITIONS[old]:
            raise RuntimeError(f"illegal session transition {old} -> {new} ({reason})")
        self._state = new
        change = StateChange(old, new, reason)
        for listener in list(self._listeners):
            listener(change)
        return True
