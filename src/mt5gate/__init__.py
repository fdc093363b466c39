"""mt5gate: a resilient, observable gateway to MetaTrader 5, with a faithful simulated terminal.

The public API, curated::

    from mt5gate import MT5SessionManager, probe, MT5CircuitBreakerOpen, MT5ConnectionError
    from mt5gate.sim import SimTerminal

    async with MT5SessionManager(terminal=SimTerminal(), login=5001, password="...",
                                 server="MetaQuotes-Demo") as manager:
        price = await manager.get_price("EURUSD")
        health = await probe(manager)
"""

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
