"""The async session to one MT5 account: ``MT5SessionManager`` and its policies."""

from mt5gate.session.manager import MT5SessionManager
from mt5gate.session.observer import LoggingObserver, ObserverGroup, SessionObserver
from mt5gate.session.policies import (
    AsyncClock,
    ReadRetryPolicy,
    RealAsyncClock,
    ReconcilePolicy,
    ReconnectPolicy,
    Timeouts,
)
from mt5gate.session.specs import SpecPolicy
from mt5gate.session.state import SessionState, StateChange

__all__ = [
    "AsyncClock",
    "LoggingObserver",
    "MT5SessionManager",
    "ObserverGroup",
    "ReadRetryPolicy",
    "RealAsyncClock",
    "ReconcilePolicy",
    "ReconnectPolicy",
    "SessionObserver",
    "SessionState",
    "SpecPolicy",
    "StateChange",
    "Timeouts",
]
