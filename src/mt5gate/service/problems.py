"""Errors as ``application/problem+json`` (RFC 9457): one table from the error tree to HTTP.

Every error a route can meet is an :class:`~mt5gate.errors.MT5Error` (or an authentication
error, or a request the schema refused); :func:`problem_for` maps it once to a status, a title
and the extension members clients branch on (``error`` the class name, ``hint`` what to do,
``retcode``, the trade server's ``comment`` and ``client_id`` where there are some, ``field``
for validation, ``owner`` and ``epoch`` of an account another process owns; ``symbol`` and its
``suggestions``, or the ``position`` or ``order`` ticket, of what was not found). Client
mistakes are 4xx (a trading write without an ``Idempotency-Key`` is 428, an order key blocked
until a person looks is 409, and so is a closed market: it is the market's state, not the
request's fault); a sick terminal is 503 with ``Retry-After``. Hints are the HTTP API's own:
where the session's would name a Python call (``session.positions()``), a problem names the
route (``GET /v1/accounts/{account}/positions``). An unknown order outcome is
no problem document but a ``202 Accepted`` with the order's status
(:mod:`~mt5gate.service.accepted`): nothing may invite a resend. Never a stack trace, never a
secret: texts come from the errors, which are redacted at construction.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Final

from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict

from mt5gate.constants import TradeRetcode
from mt5gate.errors import (
    CONNECT_FIRST_HINT,
    RECONNECTING_HINT,
    MT5AuthError,
    MT5CircuitBreakerOpen,
    MT5ConnectionError,
    MT5DataError,
    MT5Error,
    MT5IdempotencyError,
    MT5NotFoundError,
    MT5OrderBlockedError,
    MT5OrderOutcomeUnknown,
    MT5OwnershipError,
    MT5RiskLimitError,
    MT5StateError,
    MT5TradeError,
    MT5TradeRejected,
    MT5TradeRetryable,
    MT5TradingDisabledError,
    MT5TradingHalted,
    MT5ValidationError,
    error_title,
)
from mt5gate.orders.journal import JournalError
from mt5gate.redaction import redact_text
from mt5gate.service.idempotency import HEADER, MissingIdempotencyKeyError

__all__ = [
    "KEY_REQUIRED", "PROBLEM_TYPE", "STATUS_MEANINGS", "Problem", "ProblemDocument",
    "problem_for", "problem_response",
]  # fmt: skip

PROBLEM_TYPE: Final = "application/problem+json"
_BASE: Final = "https://mt5gate.dev/problems/"

#: (class, status, Retry-After seconds): the first class an error is an instance of decides
#: (subclasses first). Titles come from :data:`mt5gate.errors.ERROR_TITLES`. An open circuit
#: says itself when to come back. A blocked order key is 409, not 503: retrying cannot help
#: until a person settles it, and a client that retries 503s would retry it forever.
_STATUS: Final[tuple[tuple[type[MT5Error], int, int | None], ...]] = (
    (MT5IdempotencyError, 422, None),
    (MT5ValidationError, 422, None),
    (MT5TradingHalted, 409, None),
    (MT5RiskLimitError, 422, None),
    (MT5OrderOutcomeUnknown, 504, None),
    (MT5TradeRetryable, 409, None),
    (MT5TradeRejected, 422, None),
    (MT5TradeError, 422, None),
    (MT5TradingDisabledError, 409, None),
    (MT5CircuitBreakerOpen, 503, None),
    (MT5ConnectionError, 503, 1),
    (MT5AuthError, 503, 1),
    (MT5OwnershipError, 503, 5),  # another process holds the lease; it may lapse
    (MT5OrderBlockedError, 409, None),
    (MT5StateError, 503, 1),
    (MT5DataError, 404, None),
)

#: Trade retcodes whose rejection is answered with another status than its class's. The market
#: being closed is no fault of the request (422) but the state of the market (409, as a halt
#: or disabled trading is): the same order is good once the session opens.
_RETCODE_STATUS: Final[dict[int, int]] = {TradeRetcode.MARKET_CLOSED: 409}

#: How ``GET`` lists what an :class:`~mt5gate.errors.MT5NotFoundError` did not find: the hint
#: a client of the HTTP API gets instead of the session's Python one.
_NOT_FOUND_HINTS: Final[dict[str, str]] = {
    "symbol": "Symbol names are exact, suffix included (EURUSD.m, EURUSDx): "
    "GET /v1/accounts/{account}/symbols lists them.",
    "position": "GET /v1/accounts/{account}/positions lists the open ones.",
    "order": "GET /v1/accounts/{account}/orders lists the pending ones.",
}


#: What each status the service answers with means, for the OpenAPI document.
STATUS_MEANINGS: Final[dict[int, str]] = {
    400: "The body is not valid JSON (the problem says at which line and column)",
    401: "Missing or unknown API key",
    403: "The API key lacks the scope the route needs",
    404: "Unknown account, symbol, position or order (the problem names it; for a symbol, with "
    "the likest names in suggestions)",
    409: "Trading is halted or disabled, the market is closed, the order was not executed and "
    "may be retried, or its Idempotency-Key is blocked until an operator settles it (do not "
    "retry)",
    413: "Request body over the size limit",
    422: "Invalid request, risk limit, rejected order, or Idempotency-Key reused for another body",
    428: "Idempotency-Key header missing: trading writes need one (see the problem's detail)",
    429: "Rate limit of the API key (see Retry-After)",
    500: "Unexpected failure (logged; no detail is given)",
    503: "Terminal unavailable, circuit open, account not ready, owned by another process "
    "(owner in the problem) or journal unusable (Retry-After)",
    504: "Order outcome unknown: ask again with the same Idempotency-Key, it reconciles",
}


class ProblemDocument(BaseModel):
    """An ``application/problem+json`` body (RFC 9457) and mt5gate's extension members:
    ``error`` (the error class) always; ``hint`` (what to do, also the end of ``detail``) for
    the library's errors; the others where the error has them."""

    model_config = ConfigDict(extra="allow", json_schema_extra={"examples": [{
        "type": "https://mt5gate.dev/problems/order-rejected", "title": "Order rejected",
        "status": 422, "detail": "no money (10019). Lower the volume or add funds.",
        "error": "MT5TradeRejected", "hint": "Lower the volume or add funds.", "retcode": 10019,
        "client_id": 7, "outcome": "rejected",
    }]})  # fmt: skip

    type: str
    title: str
    status: int
    detail: str
    error: str
    hint: str | None = None
    code: int | None = None
    retcode: int | None = None
    comment: str | None = None
    client_id: int | None = None
    field: str | None = None
    rule: str | None = None
    limit: str | None = None
    outcome: str | None = None
    owner: str | None = None
    epoch: int | None = None
    symbol: str | None = None
    position: int | None = None
    order: int | None = None
    suggestions: list[str] | None = None
    line: int | None = None
    column: int | None = None
    errors: list[dict[str, str]] | None = None


@dataclass(frozen=True, slots=True)
class Problem:
    """One problem document and the headers that go with it."""

    status: int
    title: str
    detail: str
    type: str = "about:blank"
    extensions: dict[str, Any] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)

    def body(self) -> dict[str, Any]:
        """The JSON members: ``type``, ``title``, ``status``, ``detail``, then extensions."""
        return {"type": self.type, "title": self.title, "status": self.status,
                "detail": self.detail, **self.extensions}  # fmt: skip


#: The answer to a trading write without an ``Idempotency-Key`` while one is required.
KEY_REQUIRED: Final = Problem(
    428, "Idempotency-Key required",
    f"This route places, changes or cancels an order, so it needs an {HEADER} header: 1 to 128 "
    "characters naming this one intent, made once per order (a UUID, or '<strategy>-<signal "
    "id>'). Send the same key again when you retry after a timeout, a 503 or a 504: the "
    "gateway answers with the first outcome and never sends a second order. A new order needs "
    "a new key.",
    _BASE + "idempotency-key-required", {"error": "MissingIdempotencyKeyError", "field": HEADER},
)  # fmt: skip


def _slug(title: str) -> str:
    return "-".join("".join(c if c.isalnum() else " " for c in title.lower()).split())


def _retry_after(error: MT5Error, seconds: int | None) -> dict[str, str]:
    if isinstance(error, MT5CircuitBreakerOpen):
        if math.isinf(error.retry_after_s):
            return {}
        return {"Retry-After": str(max(1, math.ceil(error.retry_after_s)))}
    return {} if seconds is None else {"Retry-After": str(seconds)}


def _extensions(error: MT5Error, hint: str) -> dict[str, Any]:
    found: dict[str, Any] = {"error": type(error).__name__}
    if hint:  # a client shows it apart (the mt5gate command's "hint:" line)
        found["hint"] = hint
    if error.code is not None:
        found["code"] = error.code
    for name in ("retcode", "comment", "client_id", "field", "rule", "limit", "epoch"):
        value = getattr(error, name, None)
        if value is not None and value != "":
            found[name] = value
    if isinstance(error, MT5OwnershipError) and error.owner is not None:
        found["owner"] = redact_text(error.owner)  # a name, but never let a secret through
    if isinstance(error, MT5TradeError):
        found["outcome"] = str(error.outcome)
    if isinstance(error, MT5NotFoundError):
        found[error.kind] = error.name  # symbol, or position / order: the ticket, as in MT5
        if error.kind == "symbol":
            found["suggestions"] = list(error.suggestions)
    return found


#: The HTTP API's words for the session's hints that name Python calls (a session not usable
#: yet): the gateway connects and reconnects its accounts by itself, so a client waits
#: (``Retry-After``) and can ask why.
SESSION_HINTS: Final[Mapping[str, str]] = MappingProxyType({
    CONNECT_FIRST_HINT: "The gateway connects the account by itself: retry after Retry-After; "
    "GET /v1/health says why it is not ready.",
    RECONNECTING_HINT: "The gateway reconnects by itself: retry after Retry-After; "
    "GET /v1/health says why the terminal is unavailable.",
})  # fmt: skip


def _hint(error: MT5Error, account: str | None) -> str:
    """The error's hint, in the HTTP API's terms where the session's would name Python."""
    if isinstance(error, MT5NotFoundError):
        return _NOT_FOUND_HINTS[error.kind].replace("{account}", account or "{account}")
    return SESSION_HINTS.get(error.hint, error.hint)


def _status(error: MT5Error, status: int) -> int:
    retcode = getattr(error, "retcode", None)
    return _RETCODE_STATUS.get(retcode, status) if isinstance(retcode, int) else status


def problem_for(error: BaseException, *, account: str | None = None) -> Problem:
    """The problem an error is; anything unexpected is a bare 500 that says nothing inside.
    ``account`` is the account the request named (hints then name its routes)."""
    if isinstance(error, JournalError):
        return Problem(503, "Order journal unavailable", "The order journal cannot be used; "
                       "no order was sent. An operator must look at it.",
                       _BASE + "journal", {"error": "JournalError"})  # fmt: skip
    if isinstance(error, MissingIdempotencyKeyError):
        return KEY_REQUIRED
    if not isinstance(error, MT5Error):
        return Problem(500, "Internal error", "The gateway failed unexpectedly; it was logged.",
                       _BASE + "internal", {"error": "InternalError"})  # fmt: skip
    hint = _hint(error, account)
    detail = str(error) if hint == error.hint else f"{error.message.rstrip('.')}. {hint}"
    for cls, status, seconds in _STATUS:
        if isinstance(error, cls):
            title = error_title(error)
            return Problem(_status(error, status), title, detail, _BASE + _slug(title),
                           _extensions(error, hint), _retry_after(error, seconds))  # fmt: skip
    return Problem(500, "Gateway error", detail, _BASE + "gateway", _extensions(error, hint))


def problem_response(problem: Problem) -> JSONResponse:
    """The HTTP response of a problem, with its media type and headers."""
    return JSONResponse(
        problem.body(), status_code=problem.status, media_type=PROBLEM_TYPE,
        headers=problem.headers,
    )  # fmt: skip
