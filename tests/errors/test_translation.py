"""Raw MT5 failures become the right exception, with a message that says what happened and
what to do; errors survive pickling (a terminal worker may be a child process)."""

from __future__ import annotations

import pickle
from typing import Any

import pytest

from mt5gate.errors import (
    ERROR_CLASSES,
    TRADE_OUTCOMES,
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
    error_from_account_mismatch,
    error_from_check_result,
    error_from_deadline,
    error_from_last_error,
    error_from_trade_result,
)

REQUEST = {"action": 1, "symbol": "EURUSD", "volume": 0.1, "type": 0, "magic": 77}


def test_message_format_says_what_and_what_to_do() -> None:
    error = error_from_last_error(-10004, "No IPC connection", function="account_info")
    assert type(error) is MT5ConnectionError
    assert str(error) == (
        "account_info() failed: (-10004, 'No IPC connection'). "
        "Is the terminal running and logged in? mt5gate reconnects automatically."
    )
    assert error.code == -10004
    assert error.hint.startswith("Is the terminal running")


@pytest.mark.parametrize("code", sorted(ERROR_CLASSES))
def test_every_code_translates_to_its_class_with_a_hint(code: int) -> None:
    error = error_from_last_error(code, "text", function="symbol_info")
    assert type(error) is ERROR_CLASSES[code]
    assert error.code == code
    assert str(error).startswith(f"symbol_info() failed: ({code}, 'text'). ")
    assert error.hint
    assert str(error).endswith(error.hint)


@pytest.mark.parametrize(
    ("code", "phrase"),
    [
        (-1, "Select the symbol in Market Watch (symbol_select)"),
        (-4, "broker"),
        (-5, "Update the MetaTrader 5 terminal"),
        (-6, "OTP accounts are not supported by the Python API"),
        (-7, "OTP"),
        (-8, "Python API"),
        (-10001, "mt5gate reconnects automatically"),
        (-10005, "did not answer in time"),
    ],
)
def test_hints_per_code(code: int, phrase: str) -> None:
    assert phrase in error_from_last_error(code, "x", function="copy_rates_from").hint


def test_none_with_success_is_no_data() -> None:
    error = error_from_last_error(1, "Success", function="symbol_info_tick")
    assert type(error) is MT5DataError
    assert "no data" in error.hint


def test_an_unrecognised_code_is_the_base_error() -> None:
    error = error_from_last_error(-77, "new", function="symbols_get")
    assert type(error) is MT5Error
    assert error.code == -77


@pytest.mark.parametrize(
    ("message", "field", "rule"),
    [
        ('Invalid "volume" argument', "volume", "must be a float (0.1, not 1 or None)"),
        ('Invalid "login" argument', "login", "must be an int, not a str"),
        ('Invalid "magic" argument', "magic", "wrong type or value"),
        ("Invalid 2nd unnamed argument", "2nd unnamed argument", "wrong type or value"),
        ("Terminal: Invalid params", None, "the terminal refused the parameters"),
    ],
)
def test_invalid_params_names_field_and_rule(message: str, field: str | None, rule: str) -> None:
    error = error_from_last_error(-2, message, function="order_send", request=REQUEST)
    assert type(error) is MT5ValidationError
    assert (error.field, error.rule, error.code) == (field, rule, -2)
    assert rule in str(error)
    if field:
        assert f"Fix {field!r}" in str(error)


def test_own_validation_error_names_field_and_rule() -> None:
    error = MT5ValidationError(field="volume", rule="must be positive")
    assert str(error) == "Invalid 'volume': must be positive. Fix the argument and call again."
    assert MT5ValidationError().message == "Invalid argument"
    assert MT5ValidationError(rule="r").message == "Invalid argument: r"
    explicit = MT5ValidationError("volume 0 is below volume_min 0.01", field="volume", rule="min")
    assert str(explicit).startswith("volume 0 is below volume_min 0.01.")


@pytest.mark.parametrize(
    ("code", "cls"),
    [
        (-10003, MT5InitError),
        (-10005, MT5InitError),
        (-10004, MT5InitError),
        (-1, MT5InitError),
        (1, MT5InitError),
        (-6, MT5AuthError),
        (-7, MT5AuthError),
        (-2, MT5ValidationError),
    ],
)
def test_initialize_failures(code: int, cls: type[MT5Error]) -> None:
    error = error_from_last_error(code, "x", function="initialize")
    assert type(error) is cls


def test_initialize_hints_are_about_starting_the_terminal() -> None:
    assert "terminal path" in error_from_last_error(-1, "x", function="initialize").hint
    assert "server name" in error_from_last_error(-10005, "x", function="initialize").hint


def test_timeout_records_the_function() -> None:
    error = error_from_last_error(-10005, "IPC timeout", function="copy_ticks_range")
    assert isinstance(error, MT5TimeoutError)
    assert (error.function, error.deadline_s) == ("copy_ticks_range", None)
    assert isinstance(error, MT5ConnectionError)


@pytest.mark.parametrize("code", [-10000, -10001, -10002, -10005, -1, -3, 1, -999])
def test_order_send_none_that_may_have_been_sent_is_unknown(code: int) -> None:
    error = error_from_last_error(code, "x", function="order_send", request=REQUEST)
    assert type(error) is MT5OrderOutcomeUnknown
    assert error.outcome is Outcome.UNKNOWN
    assert (error.retcode, error.code, error.request) == (None, code, REQUEST)
    assert "Reconcile" in str(error)


@pytest.mark.parametrize(
    ("code", "cls"),
    [
        (-10004, MT5ConnectionError),
        (-10003, MT5InitError),
        (-2, MT5ValidationError),
        (-8, MT5TradingDisabledError),
        (-6, MT5AuthError),
        (-4, MT5DataError),
    ],
)
def test_order_send_none_that_was_not_sent(code: int, cls: type[MT5Error]) -> None:
    assert type(error_from_last_error(code, "x", function="order_send")) is cls


def test_executed_results_are_not_errors() -> None:
    for retcode in (10008, 10009, 10010):
        assert error_from_trade_result(retcode, "Request executed", REQUEST) is None


@pytest.mark.parametrize("retcode", sorted(TRADE_OUTCOMES))
def test_every_retcode_becomes_the_class_of_its_outcome(retcode: int) -> None:
    outcome = TRADE_OUTCOMES[retcode]
    error = error_from_trade_result(retcode, "comment", REQUEST)
    expected: dict[Outcome, type[MT5Error] | None] = {
        Outcome.EXECUTED: None,
        Outcome.GATE: MT5TradingDisabledError,
        Outcome.RETRYABLE: MT5TradeRetryable,
        Outcome.REJECTED: MT5TradeRejected,
        Outcome.UNKNOWN: MT5OrderOutcomeUnknown,
    }
    cls = expected[outcome]
    if cls is None:
        assert error is None
        return
    assert type(error) is cls
    assert error.outcome is outcome
    assert (error.retcode, error.comment, error.request, error.code) == (
        retcode,
        "comment",
        REQUEST,
        retcode,
    )


def test_trade_error_message() -> None:
    error = error_from_trade_result(10030, "Unsupported filling mode", REQUEST)
    assert str(error) == (
        "order_send() returned 10030 INVALID_FILL ('Unsupported filling mode'). "
        "Use a filling mode the symbol allows (symbol_info().filling_mode)."
    )
    retry = error_from_trade_result(10004, "Requote", None)
    assert retry is not None
    assert "re-price and resend it with the same client id" in str(retry)
    assert retry.request is None


def test_the_request_is_kept_as_a_dict_copy() -> None:
    request = dict(REQUEST)
    error = error_from_trade_result(10019, "No money", request)
    request["volume"] = 9.0
    assert isinstance(error, MT5TradeError)
    assert error.request == REQUEST


def test_an_unrecognised_retcode_must_be_reconciled() -> None:
    error = error_from_trade_result(10077, "?", REQUEST)
    assert type(error) is MT5OrderOutcomeUnknown
    assert "unrecognised retcode 10077" in str(error)


def test_a_bare_trade_error_defaults_to_rejected() -> None:
    error = MT5TradeError("x", retcode=10006)
    assert error.outcome is Outcome.REJECTED
    assert MT5TradeError("x", retcode=10006, outcome=Outcome.UNKNOWN).outcome is Outcome.UNKNOWN


def test_gate_from_a_trade_result() -> None:
    error = error_from_trade_result(10027, "AutoTrading disabled by client", REQUEST)
    assert isinstance(error, MT5TradingDisabledError)
    assert (error.retcode, error.code, error.outcome) == (10027, 10027, Outcome.GATE)
    assert "Algo Trading" in str(error)


@pytest.mark.parametrize(
    ("retcode", "cls"),
    [
        (10031, MT5ConnectionError),
        (10011, MT5ConnectionError),
        (10012, MT5TimeoutError),
        (10014, MT5TradeRejected),
        (10027, MT5TradingDisabledError),
        (10021, MT5TradeRetryable),
    ],
)
def test_check_results_are_never_unknown_outcomes(retcode: int, cls: type[MT5Error]) -> None:
    error = error_from_check_result(retcode, "c", REQUEST)
    assert type(error) is cls
    assert error.code == retcode


def test_a_passed_check_is_not_an_error() -> None:
    assert error_from_check_result(0, "Done", REQUEST) is None


def test_deadlines() -> None:
    read = error_from_deadline("copy_rates_range", 2.5)
    assert type(read) is MT5TimeoutError
    assert (read.deadline_s, read.function) == (2.5, "copy_rates_range")
    assert str(read).startswith("copy_rates_range() did not return within 2.5 s.")
    send = error_from_deadline("order_send", 10.0, request=REQUEST)
    assert type(send) is MT5OrderOutcomeUnknown
    assert (send.request, send.retcode) == (REQUEST, None)


def test_account_mismatch() -> None:
    error = error_from_account_mismatch(5001, 5002)
    assert (error.expected_login, error.actual_login) == (5001, 5002)
    assert "logged into account 5002, not 5001" in str(error)
    assert "wrong account" in error.hint


def test_breaker_open_and_state_errors() -> None:
    error = MT5CircuitBreakerOpen(retry_after_s=2.0, state="open")
    assert (error.retry_after_s, error.state) == (2.0, "open")
    assert str(error) == (
        "Circuit breaker is open: call refused. "
        "Retry after 2.0 s; the health check shows why the terminal failed."
    )
    assert MT5CircuitBreakerOpen("x", retry_after_s=1, state="forced_open", hint="h.").hint == "h."
    assert "connect()" in str(MT5StateError("The session is closed"))


def test_message_punctuation() -> None:
    assert str(MT5DataError("No ticks.", hint="Wait.")) == "No ticks. Wait."
    assert str(MT5DataError("", hint="Wait.")) == "Wait."
    assert (
        repr(MT5DataError("x", code=-1))
        == "MT5DataError('x. " + MT5DataError.default_hint + "', code=-1)"
    )


def _all_kinds() -> list[MT5Error]:
    return [
        MT5Error("base", code=3),
        MT5ConnectionError("c"),
        MT5InitError("i", code=-10003),
        MT5TimeoutError("t", deadline_s=1.5, function="f"),
        MT5AuthError("a", expected_login=1, actual_login=2),
        MT5CircuitBreakerOpen(retry_after_s=1.0, state="open"),
        MT5DataError("d"),
        MT5ValidationError(field="f", rule="r"),
        MT5StateError("s"),
        MT5TradingDisabledError("g", retcode=10027, comment="c", request=REQUEST),
        MT5TradeRejected("r", retcode=10019, comment="No money", request=REQUEST),
        MT5TradeRetryable("y", retcode=10004),
        MT5OrderOutcomeUnknown("u", retcode=None, code=-10002),
    ]


@pytest.mark.parametrize("error", _all_kinds(), ids=lambda e: type(e).__name__)
def test_errors_survive_pickling(error: MT5Error) -> None:
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is type(error)
    assert str(copy) == str(error)
    assert vars(copy) == vars(error)


@pytest.mark.parametrize("error", _all_kinds(), ids=lambda e: type(e).__name__)
def test_every_class_documents_when_and_what_to_do(error: MT5Error) -> None:
    doc: Any = type(error).__doc__
    assert len(doc.split()) >= 8
    assert str(error).endswith(error.hint)
