"""What an exception tells the circuit breaker and the order journal."""

from __future__ import annotations

import asyncio

import pytest

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
    MT5TradeRejected,
    MT5TradeRetryable,
    MT5TradingDisabledError,
    MT5ValidationError,
    Outcome,
    breaker_verdict,
    error_from_deadline,
    error_from_last_error,
    error_from_trade_result,
    is_infrastructure_failure,
    order_send_outcome,
)

VERDICTS: list[tuple[BaseException | None, bool, str]] = [
    # (exception, counts against the breaker, verdict)
    (None, False, "success"),
    (MT5ConnectionError("c", code=-10001), True, "failure"),
    (MT5InitError("i", code=-10003), True, "failure"),
    (MT5TimeoutError("t", code=-10005), True, "failure"),
    (MT5OrderOutcomeUnknown("u", retcode=10012), True, "failure"),
    (ConnectionResetError("bridge socket reset"), True, "failure"),
    (EOFError("rpyc stream closed"), True, "failure"),
    (MT5DataError("d", code=-4), False, "ignore"),
    (MT5AuthError("a", code=-6), False, "ignore"),
    (MT5TradingDisabledError("g", retcode=10027), False, "ignore"),
    (MT5TradeRejected("r", retcode=10019), False, "ignore"),
    (MT5TradeRetryable("y", retcode=10004), False, "ignore"),
    (MT5ValidationError(field="volume", rule="float"), False, "ignore"),
    (MT5StateError("closed"), False, "ignore"),
    (MT5CircuitBreakerOpen(retry_after_s=1.0, state="open"), False, "ignore"),
    (MT5Error("unrecognised", code=-77), False, "ignore"),
    (ValueError("a bug of ours"), False, "ignore"),
    (asyncio.CancelledError(), False, "ignore"),
]


@pytest.mark.parametrize(
    ("exc", "infrastructure", "verdict"), VERDICTS, ids=lambda v: type(v).__name__
)
def test_breaker_table(exc: BaseException | None, infrastructure: bool, verdict: str) -> None:
    if exc is not None:
        assert is_infrastructure_failure(exc) is infrastructure
    assert breaker_verdict(exc) == verdict


@pytest.mark.parametrize("retcode", [10004, 10006, 10013, 10014, 10016, 10018, 10019, 10030])
def test_business_results_never_trip_the_breaker(retcode: int) -> None:
    error = error_from_trade_result(retcode, "c", None)
    assert error is not None
    assert not is_infrastructure_failure(error)
    assert breaker_verdict(error) == "ignore"


@pytest.mark.parametrize("retcode", [10017, 10026, 10027])
def test_gates_are_not_connection_failures(retcode: int) -> None:
    error = error_from_trade_result(retcode, "c", None)
    assert isinstance(error, MT5TradingDisabledError)
    assert not isinstance(error, MT5ConnectionError)
    assert not is_infrastructure_failure(error)


def test_last_error_classes_and_the_breaker() -> None:
    def fails(code: int) -> bool:
        return is_infrastructure_failure(error_from_last_error(code, "x", function="symbol_info"))

    assert {c for c in (-1, -2, -3, -4, -5, -6, -7, -8) if fails(c)} == set()
    assert all(fails(c) for c in (-10000, -10001, -10002, -10003, -10004, -10005))


SEND_OUTCOMES: list[tuple[BaseException, Outcome]] = [
    (MT5Error("no code: nothing proves it was not sent"), Outcome.UNKNOWN),
    (MT5TradeRejected("r", retcode=10019), Outcome.REJECTED),
    (MT5TradeRetryable("y", retcode=10004), Outcome.RETRYABLE),
    (MT5OrderOutcomeUnknown("u", retcode=10031), Outcome.UNKNOWN),
    (MT5TradingDisabledError("g", retcode=10026), Outcome.GATE),
    (error_from_last_error(-8, "x", function="order_send"), Outcome.GATE),
    (
        error_from_last_error(-2, 'Invalid "volume" argument', function="order_send"),
        Outcome.REJECTED,
    ),
    (MT5ValidationError(field="volume", rule="> 0"), Outcome.REJECTED),
    (MT5CircuitBreakerOpen(retry_after_s=1.0, state="open"), Outcome.RETRYABLE),
    (MT5StateError("closed"), Outcome.RETRYABLE),
    (error_from_last_error(-10004, "No IPC connection", function="order_send"), Outcome.RETRYABLE),
    (error_from_last_error(-10002, "IPC recv failed", function="order_send"), Outcome.UNKNOWN),
    (error_from_last_error(-6, "x", function="order_send"), Outcome.REJECTED),
    (error_from_deadline("order_send", 5.0), Outcome.UNKNOWN),
    (MT5TimeoutError("ours"), Outcome.UNKNOWN),
    (RuntimeError("crash between intent and acknowledgement"), Outcome.UNKNOWN),
]


@pytest.mark.parametrize(("exc", "outcome"), SEND_OUTCOMES, ids=lambda v: repr(v)[:40])
def test_order_send_outcome(exc: BaseException, outcome: Outcome) -> None:
    assert order_send_outcome(exc) is outcome
