"""The service's answers mean to a command what the errors behind them mean on a session of its
own (``mt5gate.cli.answers``): every library error class survives the trip through a problem
document with the same line, hint and exit code; what may hide a sent order is an unknown
outcome (exit 4); the rest keeps the documented exit codes.

The problems are made by the service's own mapping (``problem_for``, the handlers' ``Problem``),
the answers are real ``httpx.Response`` objects: nothing is mocked.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from mt5gate.cli.answers import ERROR_CLASSES, Call, error_from_problem, outcome_unknown
from mt5gate.cli.failures import Exit, describe
from mt5gate.errors import (
    RECONNECTING_HINT,
    MT5CircuitBreakerOpen,
    MT5ConnectionError,
    MT5DataError,
    MT5Error,
    MT5IdempotencyError,
    MT5NotFoundError,
    MT5OrderOutcomeUnknown,
    MT5OwnershipError,
    MT5RiskLimitError,
    MT5StateError,
    MT5TradeError,
    MT5TradingDisabledError,
    MT5ValidationError,
    NotFoundKind,
    Outcome,
)
from mt5gate.orders.journal import JournalError
from mt5gate.service.app import CUT_SHORT
from mt5gate.service.auth import ForbiddenError, Principal, RateLimitedError, UnauthenticatedError
from mt5gate.service.problems import KEY_REQUIRED, PROBLEM_TYPE, Problem, problem_for

URL = "http://127.0.0.1:8000"
READ = Call(URL)
WRITE = Call(URL, write=True, key="k-1")


def example(cls: type[MT5Error]) -> MT5Error:
    """An instance of ``cls`` with every member its family has set."""
    if issubclass(cls, MT5TradeError):
        return cls("no money (10019)", retcode=10019, comment="No money", client_id=7,
                   hint="Lower the volume or add funds.")  # fmt: skip
    if issubclass(cls, MT5TradingDisabledError):
        return cls("AutoTrading disabled by client", retcode=10027, comment="AutoTrading off")
    if issubclass(cls, MT5IdempotencyError):
        return cls("key 'a' was used for another order", client_id=3)
    if issubclass(cls, MT5ValidationError):
        return cls(field="volume", rule="greater than 0")
    if issubclass(cls, MT5RiskLimitError):
        return cls("2 lots is over max_volume_per_order", limit="max_volume_per_order")
    if issubclass(cls, MT5CircuitBreakerOpen):
        return cls(retry_after_s=3.0, state="open")
    if issubclass(cls, MT5OwnershipError):
        return cls("account 5001 is owned by another", owner="mt5gate serve (pid 1)", epoch=9)
    if issubclass(cls, MT5NotFoundError):
        return cls("symbol", "EURUSDX", suggestions=("EURUSD",))
    return cls(f"the {cls.__name__} happened.", code=-10004)


def answer(problem: Problem, body: dict[str, Any] | None = None) -> httpx.Response:
    """The HTTP answer the service gives for ``problem`` (as ``problem_response`` sends it)."""
    return httpx.Response(problem.status, json=problem.body() if body is None else body,
                          headers={"content-type": PROBLEM_TYPE, **problem.headers},
                          request=httpx.Request("GET", URL + "/v1/accounts/demo"))  # fmt: skip


def mapped(problem: Problem, call: Call = READ) -> Exception:
    response = answer(problem)
    return error_from_problem(call, response, response.json(), key_source="$MT5GATE_API_KEY")


def test_every_error_class_has_a_name_and_the_tree_is_complete() -> None:
    assert len(ERROR_CLASSES) == 20
    assert all(name == cls.__name__ for name, cls in ERROR_CLASSES.items())
    assert ERROR_CLASSES["MT5OrderOutcomeUnknown"] is MT5OrderOutcomeUnknown


@pytest.mark.parametrize("cls", list(ERROR_CLASSES.values()), ids=list(ERROR_CLASSES))
def test_an_error_comes_back_as_itself_with_the_same_line_hint_and_exit_code(
    cls: type[MT5Error],
) -> None:
    original = example(cls)
    rebuilt = mapped(problem_for(original))
    assert type(rebuilt) is cls
    assert isinstance(rebuilt, MT5Error)
    assert describe(rebuilt) == describe(original)
    assert rebuilt.code == original.code
    members = ("retcode", "comment", "client_id", "field", "rule", "limit", "owner", "epoch",
               "kind", "name", "suggestions")  # fmt: skip
    for member in members:
        assert getattr(rebuilt, member, None) == getattr(original, member, None), member
    if isinstance(original, MT5TradeError):
        assert rebuilt.outcome == original.outcome  # type: ignore[attr-defined]


@pytest.mark.parametrize("kind", ["position", "order"])
def test_a_ticket_not_found_comes_back_with_the_commands_hint(kind: NotFoundKind) -> None:
    """The service's hint names its route (``GET .../positions``); through it, the command says
    its own (``mt5gate positions``), as on its own session."""
    original = MT5NotFoundError(kind, 123456)
    problem = problem_for(original, account="demo")
    assert (problem.status, problem.body()[kind]) == (404, 123456)
    assert f"GET /v1/accounts/demo/{kind}s" in problem.body()["hint"]
    rebuilt = mapped(problem)
    assert isinstance(rebuilt, MT5NotFoundError)
    assert (rebuilt.kind, rebuilt.name, rebuilt.field) == (kind, 123456, "ticket")
    assert describe(rebuilt) == describe(original)
    which = "open" if kind == "position" else "pending"
    assert describe(rebuilt).hint == f"mt5gate {kind}s lists the {which} ones."
    assert describe(rebuilt).code == Exit.MT5


def test_an_open_circuit_says_when_to_come_back() -> None:
    rebuilt = mapped(problem_for(MT5CircuitBreakerOpen(retry_after_s=3.0, state="open")))
    assert isinstance(rebuilt, MT5CircuitBreakerOpen)
    assert rebuilt.retry_after_s == 3.0
    switched_off = mapped(problem_for(MT5CircuitBreakerOpen(retry_after_s=float("inf"),
                                                            state="forced_open")))  # fmt: skip
    assert isinstance(switched_off, MT5CircuitBreakerOpen)
    assert switched_off.retry_after_s == float("inf")


def test_the_services_own_refusals_keep_the_documented_exit_codes() -> None:
    journal = mapped(problem_for(JournalError("disk full")))
    assert isinstance(journal, JournalError)
    assert describe(journal).code == Exit.USAGE
    keyless = mapped(KEY_REQUIRED, WRITE)
    assert isinstance(keyless, MT5ValidationError)
    assert keyless.field == "Idempotency-Key"
    schema = Problem(
        422,
        "Invalid request",
        "volume: Input should be greater than 0",
        "x",
        {"error": "ValidationError", "field": "volume", "rule": "greater than 0"},
    )
    invalid = mapped(schema, WRITE)
    assert isinstance(invalid, MT5ValidationError)
    assert (invalid.field, describe(invalid).code) == ("volume", Exit.USAGE)
    missing = mapped(Problem(404, "Not Found", "Not Found", "x", {"error": "HTTPError"}))
    assert isinstance(missing, MT5DataError)
    assert describe(missing).code == Exit.MT5


def auth_problem(error: Any) -> Problem:
    """The problem the service's auth handler makes of ``error``."""
    return Problem(error.status, error.title, error.detail, "x",
                   {"error": type(error).__name__}, dict(error.headers))  # fmt: skip


def test_a_refused_key_is_a_usage_error_that_names_where_the_key_came_from() -> None:
    principal = Principal("ops", frozenset({"read"}))
    for error in (UnauthenticatedError("The API key is not valid.", invalid=True),
                  ForbiddenError(principal, "trade")):  # fmt: skip
        found = describe(mapped(auth_problem(error), WRITE))
        assert found.code == Exit.USAGE
        assert f"mt5gate serve at {URL} refused the API key in $MT5GATE_API_KEY" in found.message
    limited = describe(mapped(auth_problem(RateLimitedError(principal, 2.5)), WRITE))
    assert limited.code == Exit.MT5
    assert "Nothing was sent. Try again in 3 seconds." in limited.hint


def test_what_may_hide_a_sent_order_is_an_unknown_outcome_and_never_a_retry() -> None:
    internal = Problem(500, "Internal error", "The gateway failed unexpectedly.", "x",
                       {"error": "InternalError"})  # fmt: skip
    for problem in (CUT_SHORT, internal):
        written = mapped(problem, WRITE)
        assert isinstance(written, MT5OrderOutcomeUnknown)
        assert describe(written).code == Exit.UNKNOWN_OUTCOME
        assert "--key k-1" in written.hint
    cut_read = mapped(CUT_SHORT)
    assert isinstance(cut_read, MT5ConnectionError)
    assert describe(cut_read).code == Exit.MT5
    assert describe(mapped(internal)).code == Exit.BUG  # a read: a bug, reported as one
    odd = mapped(Problem(405, "Method Not Allowed", "Method Not Allowed", "x",
                         {"error": "HTTPError"}))  # fmt: skip
    assert describe(odd).code == Exit.BUG


def test_an_answer_that_is_no_problem_document_is_judged_by_its_status() -> None:
    gateway = httpx.Response(
        502,
        text="<html>Bad Gateway</html>",
        request=httpx.Request("POST", URL + "/v1/accounts/demo/orders"),
    )
    assert isinstance(error_from_problem(WRITE, gateway, {}, key_source="x"),
                      MT5OrderOutcomeUnknown)  # fmt: skip
    found = error_from_problem(READ, gateway, {}, key_source="x")
    assert "HTTP 502 Bad Gateway" in describe(found).message
    busy = httpx.Response(503, request=httpx.Request("GET", URL + "/v1/accounts/demo"))
    assert isinstance(error_from_problem(READ, busy, {}, key_source="x"), MT5ConnectionError)


def test_a_202_is_an_unknown_outcome_that_says_where_the_status_is() -> None:
    body = {"outcome": "unknown", "client_id": 12, "idempotency_key": "k-1", "state": "UNKNOWN",
            "detail": "the outcome of order mg:abc is still unknown", "hint": "...",
            "status_url": "/v1/accounts/demo/requests/k-1"}  # fmt: skip
    error = outcome_unknown(WRITE, body)
    assert error.client_id == 12
    assert error.outcome is Outcome.UNKNOWN
    found = describe(error)
    assert found.code == Exit.UNKNOWN_OUTCOME
    assert found.message == "the outcome of order mg:abc is still unknown"
    assert f"GET {URL}/v1/accounts/demo/requests/k-1 " in found.hint
    assert "Do not resend it under a new key" in found.hint
    keyless = outcome_unknown(Call(URL, write=True), {})
    assert "same Idempotency-Key" in keyless.hint


@pytest.mark.parametrize(
    ("original", "said"),
    [(MT5StateError("the session is connecting"), "not connected yet: mt5gate health"),
     (MT5ConnectionError("reconnecting", hint=RECONNECTING_HINT), "reconnects by itself")],
)  # fmt: skip
def test_a_session_not_ready_is_told_in_the_command_s_words_either_way(
    original: MT5Error, said: str
) -> None:
    """On its own session or through ``mt5gate serve`` (whose problem says it in HTTP terms),
    the command gives the same hint, and never a Python call."""
    problem = problem_for(original, account="demo")
    assert "GET /v1/health" in problem.body()["hint"]
    for error in (original, mapped(problem)):
        hint = describe(error).hint
        assert said in hint
        assert "session" not in hint
        assert "await" not in hint
