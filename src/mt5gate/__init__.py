"""mt5gate: a resilient, observable gateway to MetaTrader 5, with a faithful simulated terminal.

The public API, curated::

    from mt5gate import MT5SessionManager, probe, MT5CircuitBreakerOpen, MT5ConnectionError
    from mt5gate.sim import SimTerminal

    async with MT5SessionManager(terminal=SimTerminal(), login=5001, password="...",
                                 server="MetaQuotes-Demo") as manager:
        price = await manager.get_price("EURUSD")
        health = await probe(manager)
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mt5gate.circuit_breaker import BreakerPolicy, BreakerState, CircuitBreaker
    from mt5gate.errors import (
        MT5AuthError,
        MT5CircuitBreakerOpen,
        MT5ConnectionError,
        MT5DataError,
        MT5Error,
        MT5InitError,
        MT5OrderOutcomeUnknown,
        MT5StateError,
        MT5TimeoutError,
        MT5TradeError,
        MT5TradeRejected,
        MT5TradeRetryable,
        MT5TradingDisabledError,
        MT5ValidationError,
        Outcome,
    )
    from mt5gate.health import HealthMonitor, HealthStatus, probe
    from mt5gate.models import (
        Account,
        Deal,
        Order,
        OrderCheck,
        OrderKind,
        OrderRequest,
        OrderResult,
        Position,
        Price,
        Side,
        Symbol,
        TerminalStatus,
    )
    from mt5gate.records import RECORD_TYPES
    from mt5gate.session import (
        MT5SessionManager,
        ReadRetryPolicy,
        ReconnectPolicy,
        SessionObserver,
        SessionState,
        Timeouts,
    )
    from mt5gate.terminal import Terminal

__all__ = [
    "RECORD_TYPES",
    "Account",
    "BreakerPolicy",
    "BreakerState",
    "CircuitBreaker",
    "Deal",
    "HealthMonitor",
    "HealthStatus",
    "MT5AuthError",
    "MT5CircuitBreakerOpen",
    "MT5ConnectionError",
    "MT5DataError",
    "MT5Error",
    "MT5InitError",
    "MT5OrderOutcomeUnknown",
    "MT5SessionManager",
    "MT5StateError",
    "MT5TimeoutError",
    "MT5TradeError",
    "MT5TradeRejected",
    "MT5TradeRetryable",
    "MT5TradingDisabledError",
    "MT5ValidationError",
    "Order",
    "OrderCheck",
    "OrderKind",
    "OrderRequest",
    "OrderResult",
    "Outcome",
    "Position",
    "Price",
    "ReadRetryPolicy",
    "ReconnectPolicy",
    "SessionObserver",
    "SessionState",
    "Side",
    "Symbol",
    "Terminal",
    "TerminalStatus",
    "Timeouts",
    "__version__",
    "probe",
]

__version__ = "0.2.0"

_WHERE: dict[str, str] = {
    "Account": "mt5gate.models",
    "BreakerPolicy": "mt5gate.circuit_breaker",
    "BreakerState": "mt5gate.circuit_breaker",
    "CircuitBreaker": "mt5gate.circuit_breaker",
    "Deal": "mt5gate.models",
    "HealthMonitor": "mt5gate.health",
    "HealthStatus": "mt5gate.health",
    "MT5AuthError": "mt5gate.errors",
    "MT5CircuitBreakerOpen": "mt5gate.errors",
    "MT5ConnectionError": "mt5gate.errors",
    "MT5DataError": "mt5gate.errors",
    "MT5Error": "mt5gate.errors",
    "MT5InitError": "mt5gate.errors",
    "MT5OrderOutcomeUnknown": "mt5gate.errors",
    "MT5SessionManager": "mt5gate.session",
    "MT5StateError": "mt5gate.errors",
    "MT5TimeoutError": "mt5gate.errors",
    "MT5TradeError": "mt5gate.errors",
    "MT5TradeRejected": "mt5gate.errors",
    "MT5TradeRetryable": "mt5gate.errors",
    "MT5TradingDisabledError": "mt5gate.errors",
    "MT5ValidationError": "mt5gate.errors",
    "Order": "mt5gate.models",
    "OrderCheck": "mt5gate.models",
    "OrderKind": "mt5gate.models",
    "OrderRequest": "mt5gate.models",
    "OrderResult": "mt5gate.models",
    "Outcome": "mt5gate.errors",
    "Position": "mt5gate.models",
    "Price": "mt5gate.models",
    "RECORD_TYPES": "mt5gate.records",
    "ReadRetryPolicy": "mt5gate.session",
    "ReconnectPolicy": "mt5gate.session",
    "SessionObserver": "mt5gate.session",
    "SessionState": "mt5gate.session",
    "Side": "mt5gate.models",
    "Symbol": "mt5gate.models",
    "Terminal": "mt5gate.terminal",
    "TerminalStatus": "mt5gate.models",
    "Timeouts": "mt5gate.session",
    "probe": "mt5gate.health",
}


def __getattr__(name: str) -> Any:
    """Import a public name's module on first use (PEP 562), not at ``import mt5gate``.

    Why: every ``mt5gate.*`` import runs this file first, so eager imports here made each
    ``mt5gate`` command pay for the session, health and numpy before it did anything.
    """
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'mt5gate' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # the next look-up is a plain attribute
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
