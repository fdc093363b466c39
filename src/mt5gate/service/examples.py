"""Example responses for the OpenAPI document, read from the simulator, never typed by hand.

:func:`simulated_examples` logs a :class:`~mt5gate.sim.terminal.SimTerminal` on a fixed virtual
clock in to the demo account, trades a little (a market buy with SL and TP, a buy limit, a
partial close) and renders what the routes would answer, through the same models. So every
example has the real shape and plausible values, is the same on every build, and cannot drift
from the models (``tests/service/test_openapi_examples.py`` validates each against its route's
response model). They are examples of a SIMULATED account, and say so in the document.
"""

from __future__ import annotations

from functools import cache
from typing import Any, Final, TypeVar

from fastapi.encoders import jsonable_encoder

from mt5gate.constants import OrderFilling, OrderType, TradeAction
from mt5gate.models import (
    Account,
    Deal,
    Order,
    OrderCheck,
    OrderOutcome,
    OrderResult,
    OrderStatus,
    Position,
    Price,
    Symbol,
    TerminalStatus,
)
from mt5gate.records import OrderSendResult
from mt5gate.service.config import DEFAULT_PASSWORD, default_settings
from mt5gate.service.routes import rows_of
from mt5gate.sim import SimConfig, VirtualClock, server_ms
from mt5gate.sim.terminal import SimTerminal

__all__ = ["STATIC_EXAMPLES", "simulated_examples"]

_T = TypeVar("_T")

BASE: Final = "/v1/accounts/{account}"
_SYMBOL: Final = "EURUSD"


#: The routes whose answers do not come from a terminal.
STATIC_EXAMPLES: Final[dict[tuple[str, str], Any]] = {
    ("get", "/livez"): {"status": "pass"},
    ("get", "/readyz"): {"status": "pass", "accounts": {"demo": True}},
    ("get", "/v1/health"): {"status": "pass", "checks": {"demo/session:state": [{
        "componentId": "session", "componentType": "component", "observedValue": "connected",
        "status": "pass", "time": "2026-01-06T08:00:00.000Z"}]}},
    ("get", "/v1/accounts"): {"accounts": [{"name": "demo", "terminal": "sim", "simulated": True,
                                            "ready": True}], "notes": []},
    ("get", "/metrics"): (
        "# HELP mt5gate_breaker_state Circuit breaker state (one-hot)\n"
        "# TYPE mt5gate_breaker_state gauge\n"
        'mt5gate_breaker_state{account="demo",state="closed"} 1.0\n'
    ),
    ("get", BASE + "/health"): {"status": "pass", "checks": {"session:state": [{
        "componentId": "session", "componentType": "component", "observedValue": "connected",
        "status": "pass", "time": "2026-01-06T08:00:00.000Z"}]}},
    ("get", BASE + "/journal"): {"account": "demo", "login": 5001, "orders": [{
        "client_id": 1767693600001, "idempotency_key": "order-42", "state": "ACKNOWLEDGED",
        "unresolved": False, "alarming": False, "advice": "", "created_utc_ms": 1767693600120,
        "updated_utc_ms": 1767693600131, "request": {"symbol": "EURUSD", "volume": 0.1},
        "retcode": 10009, "order_ticket": 20000001, "deal_ticket": 10000002, "history": [
            {"kind": "INTENT", "utc_ms": 1767693600120},
            {"kind": "SENT", "utc_ms": 1767693600121},
            {"kind": "ACKNOWLEDGED", "utc_ms": 1767693600131, "retcode": 10009,
             "order_ticket": 20000001, "deal_ticket": 10000002}]}]},
    ("get", BASE + "/latency"): [{"time_ms": 1767693600000, "calls": 212, "p50_ms": 0.081,
                                  "p99_ms": 0.412}],
    ("post", BASE + "/halt"): {"halted": True, "reason": "news at 14:30"},
    ("post", BASE + "/resume"): {"halted": False, "reason": ""},
}  # fmt: skip


def _result(sent: OrderSendResult | None, client_id: int) -> OrderResult:
    return OrderResult.from_record(_got(sent, "an example order"), client_id)


def _got(value: _T | None, what: str) -> _T:
    """``value``, checked (not asserted: ``python -O`` keeps the check)."""
    if value is None:
        raise RuntimeError(f"the simulator gave no answer for {what}")
    return value


def _trade(terminal: SimTerminal) -> dict[str, OrderResult]:
    """A market buy with SL/TP, a buy limit (kept), a stop change, a partial close, and a
    second buy limit moved, then removed; the answers of the routes that trade."""
    tick = _got(terminal.symbol_info_tick(_SYMBOL), "a tick")
    market = {"action": TradeAction.DEAL, "symbol": _SYMBOL, "volume": 0.2,
              "type": OrderType.BUY, "price": tick.ask, "sl": round(tick.bid - 0.005, 5),
              "tp": round(tick.bid + 0.01, 5), "type_filling": OrderFilling.IOC}  # fmt: skip
    placed = _result(terminal.order_send(market), 1)
    limit = {"action": TradeAction.PENDING, "symbol": _SYMBOL, "volume": 0.1,
             "type": OrderType.BUY_LIMIT, "price": round(tick.ask - 0.002, 5)}  # fmt: skip
    _result(terminal.order_send(limit), 2)  # the pending order GET orders shows
    (position,) = terminal.positions_get(symbol=_SYMBOL) or ()
    stops = {"action": TradeAction.SLTP, "symbol": _SYMBOL, "position": position.ticket,
             "sl": round(tick.bid - 0.004, 5), "tp": position.tp}  # fmt: skip
    modified = _result(terminal.order_send(stops), 3)
    close = {"action": TradeAction.DEAL, "symbol": _SYMBOL, "volume": 0.1,
             "type": OrderType.SELL, "position": position.ticket, "price": tick.bid,
             "type_filling": OrderFilling.IOC}  # fmt: skip
    closed = _result(terminal.order_send(close), 4)
    spare = _result(terminal.order_send({**limit, "price": round(tick.ask - 0.003, 5)}), 5)
    move = {"action": TradeAction.MODIFY, "order": spare.order, "symbol": _SYMBOL,
            "price": round(tick.ask - 0.0035, 5), "sl": 0.0, "tp": 0.0}  # fmt: skip
    moved = _result(terminal.order_send(move), 6)
    removed = _result(terminal.order_send({"action": TradeAction.REMOVE, "order": spare.order}), 7)
    return {"placed": placed, "modified": modified, "closed": closed, "moved": moved,
            "removed": removed}  # fmt: skip


@cache
def simulated_examples() -> dict[tuple[str, str], Any]:
    """``{(method, path): example body}`` of the successful answer of every ``/v1`` route."""
    clock = VirtualClock(server_ms(2026, 1, 6, 10))
    terminal = SimTerminal(SimConfig(history_days=1), clock=clock)
    demo = default_settings().accounts[0]
    terminal.initialize(login=demo.login, password=DEFAULT_PASSWORD, server=demo.server)
    results = _trade(terminal)
    clock.advance(60)
    tick = _got(terminal.symbol_info_tick(_SYMBOL), "a tick")
    symbol = _got(terminal.symbol_info(_SYMBOL), "a symbol")
    account = _got(terminal.account_info(), "the account")
    info = _got(terminal.terminal_info(), "the terminal")
    day = clock.now_ms() // 1000 - 86_400
    check_request = {"action": TradeAction.DEAL, "symbol": _SYMBOL, "volume": 0.1,
                     "type": OrderType.BUY, "price": tick.ask}  # fmt: skip
    check = _got(terminal.order_check(check_request), "an order check")
    examples: dict[tuple[str, str], Any] = {
        ("get", BASE): Account.from_record(account),
        ("get", BASE + "/terminal"): TerminalStatus.from_record(info),
        ("get", BASE + "/symbols"): [Symbol.from_record(symbol)],
        ("get", BASE + "/symbols/{symbol}"): Symbol.from_record(symbol),
        ("get", BASE + "/symbols/{symbol}/tick"): Price.from_tick(_SYMBOL, tick),
        ("get", BASE + "/symbols/{symbol}/rates"):
            rows_of(terminal.copy_rates_from_pos(_SYMBOL, 16385, 0, 2)),
        ("get", BASE + "/symbols/{symbol}/ticks"):
            rows_of(terminal.copy_ticks_from(_SYMBOL, tick.time - 30, 2, -1)),
        ("get", BASE + "/positions"):
            [Position.from_record(p) for p in terminal.positions_get() or ()],
        ("get", BASE + "/orders"): [Order.from_record(o) for o in terminal.orders_get() or ()],
        ("get", BASE + "/history/orders"):
            [Order.from_record(o) for o in terminal.history_orders_get(day, day + 2 * 86_400)
             or ()][-2:],
        ("get", BASE + "/history/deals"):
            [Deal.from_record(d) for d in terminal.history_deals_get(day, day + 2 * 86_400)
             or ()][-2:],
        ("post", BASE + "/orders"): results["placed"],
        ("post", BASE + "/orders/check"): OrderCheck.from_record(check),
        ("delete", BASE + "/orders/{ticket}"): results["removed"],
        ("patch", BASE + "/orders/{ticket}"): results["moved"],
        ("patch", BASE + "/positions/{ticket}"): results["modified"],
        ("post", BASE + "/positions/{ticket}/close"): results["closed"],
        ("get", BASE + "/requests/{key}"): OrderStatus(
            results["placed"].client_id, "signal-0931-eurusd", "ACKNOWLEDGED",
            OrderOutcome.EXECUTED, results["placed"], "Executed at the broker."),
    }  # fmt: skip
    terminal.shutdown()
    return {where: jsonable_encoder(body) for where, body in examples.items()}
