"""mt5gate's exception tree and outcome tables: every MT5 failure is translated here, once.

::

    MT5Error                        base: ``code`` (last_error code or retcode), ``hint``
    ├── MT5ConnectionError          terminal / IPC unreachable (-10000 -10001 -10002 -10004)
    │   ├── MT5InitError            initialize() failed (-10003, and any non-auth failure of it)
    │   └── MT5TimeoutError         IPC timeout (-10005) or our own deadline expired
    ├── MT5AuthError                authorization failed (-6, -7), or the wrong account
    ├── MT5CircuitBreakerOpen       the breaker refused the call
    ├── MT5DataError                no data / not found (-1 -3 -4 -5, None for a record)
    │   └── MT5NotFoundError        an unknown symbol (-4), or no such position / order ticket
    ├── MT5ValidationError          invalid input: ours, or the module's (-2)
    │   └── MT5IdempotencyError     an idempotency key reused for a different request
    ├── MT5RiskLimitError           a pre-trade risk limit refused the order (nothing sent)
    │   └── MT5TradingHalted        the trading halt switch is on
    ├── MT5StateError               the session is in the wrong state for the call
    │   ├── MT5OwnershipError       another process owns the account (lease, fencing epoch)
    │   └── MT5OrderBlockedError    an order key or the account is blocked until a person looks
    ├── MT5TradingDisabledError     a gate: trading switched off (-8, 10017, 10026, 10027)
    └── MT5TradeError               order_send came back without success: retcode, comment,
        │                           request, outcome
        ├── MT5TradeRejected        business rejection: never retried, never trips the breaker
        ├── MT5TradeRetryable       not executed: re-price and resend with the same client id
        └── MT5OrderOutcomeUnknown  may have executed: reconcile before anything else

Policy is data: :data:`TRADE_OUTCOMES` classifies every trade retcode,
:data:`ERROR_CLASSES` every ``last_error`` code and :data:`SEND_FAILURE_OUTCOMES` what
``order_send`` returning ``None`` means for each code. The ``error_from_*`` functions are the
only place raw MT5 results become exceptions; :func:`breaker_verdict` tells the circuit breaker
what an exception says about the terminal.

Every message says what happened and what to do, and is passed through
:func:`mt5gate.redaction.redact_text`, so no error text ever carries a password.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from enum import StrEnum
from types import MappingProxyType
from typing import Any, ClassVar, Final, Literal, TypedDict, Unpack

from pydantic import SecretStr

from mt5gate.constants import ResultCode, TradeRetcode
from mt5gate.redaction import redact_text

__all__ = [
    "MT5Error",
    "MT5ConnectionError",
    "MT5InitError",
    "MT5TimeoutError",
    "MT5AuthError",
    "MT5CircuitBreakerOpen",
    "MT5DataError",
    "MT5NotFoundError",
    "MT5ValidationError",
    "MT5IdempotencyError",
    "MT5RiskLimitError",
    "MT5TradingHalted",
    "MT5StateError",
    "MT5OwnershipError",
    "MT5OrderBlockedError",
    "MT5TradingDisabledError",
    "MT5TradeError",
    "MT5TradeRejected",
    "MT5TradeRetryable",
    "MT5OrderOutcomeUnknown",
    "ErrorOptions",
    "Outcome",
    "TRADE_OUTCOMES",
    "ERROR_CLASSES",
    "SEND_FAILURE_OUTCOMES",
    "SUCCESS_CODE",
    "CHECK_OK_RETCODE",
    "error_from_last_error",
    "error_from_trade_result",
    "error_from_check_result",
    "error_from_deadline",
    "error_from_account_mismatch",
    "trade_outcome",
    "send_failure_outcome",
    "order_send_outcome",
    "is_infrastructure_failure",
    "breaker_verdict",
    "ERROR_TITLES",
    "NOT_FOUND_HINTS",
    "NotFoundKind",
    "error_title",
]


class Outcome(StrEnum):
    """What an order_send result means for the order (DESIGN.md §4)."""

    EXECUTED = "executed"  # accepted or filled (partial too: the caller records what remains)
    RETRYABLE = "retryable"  # not executed: re-price and resend with the same client id
    REJECTED = "rejected"  # not executed, final: never retried, never trips the breaker
    GATE = "gate"  # trading is switched off: stop trading, report it in health
    UNKNOWN = "unknown"  # may have executed: reconcile by client id before anything else


class ErrorOptions(TypedDict, total=False):
    """Keyword arguments every :class:`MT5Error` accepts."""

    code: int | None
    hint: str | None
    secrets: Iterable[str | SecretStr]


def _restore(cls: type[MT5Error], args: tuple[Any, ...], state: dict[str, Any]) -> MT5Error:
    """Rebuild a pickled error without calling ``__init__`` (its arguments are keyword-only)."""
    error = cls.__new__(cls)
    error.args = args
    error.__dict__.update(state)
    return error


def _sentence(text: str) -> str:
    text = text.strip()
    return text if not text or text[-1] in ".!?" else f"{text}."


# ---------------------------------------------------------------------------------------------
# The tree
# ---------------------------------------------------------------------------------------------


class MT5Error(Exception):
    """Base of every mt5gate error: catch this to catch them all.

    ``code`` is the ``last_error`` code or trade retcode behind the error (``None`` when the
    error is mt5gate's own); ``hint`` says what to do. ``str()`` is "what happened. what to
    do.", redacted: values after secret-looking keys and any ``secrets`` given are masked.
    """

    default_hint: ClassVar[str] = "See the message and the terminal's journal for details."

    def __init__(
        self,
        message: str,
        *,
        code: int | None = None,
        hint: str | None = None,
        secrets: Iterable[str | SecretStr] = (),
    ) -> None:
        known = tuple(secrets)
        self.code = code
        self.message = redact_text(message, known)
        self.hint = redact_text(hint if hint is not None else self.default_hint, known)
        super().__init__(" ".join(filter(None, (_sentence(self.message), self.hint))))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self)!r}, code={self.code!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        # Errors cross process boundaries (a terminal worker may be a child process).
        return (_restore, (type(self), self.args, dict(self.__dict__)))


class MT5ConnectionError(MT5Error):
    """The terminal or its IPC pipe is unreachable (-10000, -10001, -10002, -10004), or the
    terminal lost its trade server outside an order (10031 from order_check).

    Counts against the circuit breaker. mt5gate reconnects; callers retry reads later."""

    default_hint = "Is the terminal running and logged in? mt5gate reconnects automatically."


class MT5InitError(MT5ConnectionError):
    """``initialize()`` failed (-10003 and any other non-auth, non-argument failure of it).

    Check the terminal path and that the terminal can start; see the message's detail."""

    default_hint = (
        "Check the terminal path and that the terminal starts and logs in by hand; "
        "mt5gate retries the connection."
    )


class MT5TimeoutError(MT5ConnectionError):
    """The terminal did not answer in time: IPC timeout (-10005) or our own deadline.

    ``deadline_s`` and ``function`` are set when our deadline expired. The terminal may be
    busy (an update, a first connection to a new server); the session marks it unhealthy."""

    default_hint = "The terminal may be busy or hung; mt5gate marks it unhealthy and reconnects."

    def __init__(
        self,
        message: str,
        *,
        deadline_s: float | None = None,
        function: str | None = None,
        **options: Unpack[ErrorOptions],
    ) -> None:
        self.deadline_s = deadline_s
        self.function = function
        super().__init__(message, **options)


class MT5AuthError(MT5Error):
    """Authorization failed (-6), an unsupported authorization mode such as OTP (-7), or the
    terminal is logged into another account than the one expected after a (re)connect.

    Not retried and not a breaker failure: fix the credentials."""

    default_hint = (
        "Check login, password and server; OTP accounts are not supported by the Python API."
    )

    def __init__(
        self,
        message: str,
        *,
        expected_login: int | None = None,
        actual_login: int | None = None,
        **options: Unpack[ErrorOptions],
    ) -> None:
        self.expected_login = expected_login
        self.actual_login = actual_login
        super().__init__(message, **options)


class MT5CircuitBreakerOpen(MT5Error):  # noqa: N818 (the public name is fixed)
    """The circuit breaker refused the call without touching the terminal.

    ``retry_after_s`` is when a trial call will be let through; ``state`` the breaker state."""

    def __init__(
        self,
        message: str | None = None,
        *,
        retry_after_s: float,
        state: str,
        **options: Unpack[ErrorOptions],
    ) -> None:
        self.retry_after_s = retry_after_s
        self.state = state
        retry = (
            "Trading was switched off (kill switch); release the breaker to resume."
            if math.isinf(retry_after_s)
            else f"Retry after {retry_after_s:.1f} s; the health check shows why the terminal "
            "failed."
        )
        options.setdefault("hint", retry)
        super().__init__(message or f"Circuit breaker is {state}: call refused", **options)


class MT5DataError(MT5Error):
    """The terminal had no data or did not find what was asked for (-1, -3, -4, -5), or
    returned ``None`` where a record was expected. The terminal is fine; the request is not."""

    default_hint = "Check the symbol name, that it is selected, and the requested range."


#: What a call can name that may not exist, and the request field that named it.
NotFoundKind = Literal["symbol", "position", "order"]
_NOT_FOUND_FIELDS: Final[Mapping[str, str]] = MappingProxyType(
    {"symbol": "symbol", "position": "ticket", "order": "ticket"}
)

#: The session's hints (Python); ``mt5gate serve`` and the ``mt5gate`` command say the same in
#: their own terms (``GET .../positions``, ``mt5gate positions``).
NOT_FOUND_HINTS: Final[Mapping[str, str]] = MappingProxyType(
    {
        "symbol": "Symbol names are exact, suffix included (EURUSD.m, EURUSDx): "
        "session.list_symbols() lists them.",
        "position": "session.positions() lists the open ones.",
        "order": "session.orders() lists the pending ones.",
    }
)


class MT5NotFoundError(MT5DataError):
    """What the call named does not exist: a symbol the terminal does not offer, or the ticket
    of a position or pending order that is not open (closed, filled or cancelled already).

    An unknown symbol is this error with code -4 (``RES_E_NOT_FOUND``, what ``symbol_info``
    answers for such a name) on every call that names it, whatever the failing call itself
    said (``copy_*`` and ``symbol_select`` say -1). ``kind`` is ``"symbol"``, ``"position"``
    or ``"order"``; ``name`` the symbol or the ticket; ``field`` the request field that named
    it (``symbol``, ``ticket``); ``suggestions`` the terminal's symbols closest to a wrong name
    (the message asks "did you mean ...?"). Front ends replace the hint with their own way of
    listing what exists (:data:`NOT_FOUND_HINTS` is the session's)."""

    def __init__(
        self,
        kind: NotFoundKind,
        name: str | int,
        *,
        suggestions: Iterable[str] = (),
        **options: Unpack[ErrorOptions],
    ) -> None:
        self.kind = kind
        self.name = name
        self.field = _NOT_FOUND_FIELDS[kind]
        self.suggestions = tuple(suggestions)
        options.setdefault("hint", NOT_FOUND_HINTS[kind])
        if kind == "symbol":
            options.setdefault("code", int(ResultCode.E_NOT_FOUND))
        super().__init__(_describe_missing(kind, name, self.suggestions), **options)


def _describe_missing(kind: str, name: str | int, suggestions: tuple[str, ...]) -> str:
    if kind == "symbol":
        guess = f" (did you mean {' or '.join(suggestions)}?)" if suggestions else ""
        return f"unknown symbol {str(name)!r}: the terminal has no symbol of that name{guess}"
    if kind == "position":
        return f"no open position with ticket {name}: it may have been closed already"
    return f"no pending order with ticket {name}: it may have been filled or cancelled already"


class MT5ValidationError(MT5Error):
    """Invalid input, caught before the terminal was touched: by mt5gate, or by the module
    itself (-2, ``Invalid "volume" argument``). ``field`` and ``rule`` say what is wrong.

    Never retried, never a breaker failure: fix the call."""

    default_hint = "Fix the argument and call again."

    def __init__(
        self,
        message: str | None = None,
        *,
        field: str | None = None,
        rule: str | None = None,
        **options: Unpack[ErrorOptions],
    ) -> None:
        self.field = field
        self.rule = rule
        super().__init__(message or _describe_invalid(field, rule), **options)


def _describe_invalid(field: str | None, rule: str | None) -> str:
    what = f"Invalid {field!r}" if field else "Invalid argument"
    return f"{what}: {rule}" if rule else what


class MT5IdempotencyError(MT5ValidationError):
    """An idempotency key came back with a different request than the one it was first used
    for. Neither order is sent: the caller has a bug, and either order could be the wrong one.
    ``client_id`` is the order the key belongs to (``None`` while its first call is still
    journaling it)."""

    default_hint = "Use a new idempotency key for a new order."

    def __init__(
        self, message: str, *, client_id: int | None = None, **options: Unpack[ErrorOptions]
    ) -> None:
        self.client_id = client_id
        super().__init__(message, field="idempotency_key", rule="one key, one request", **options)


class MT5RiskLimitError(MT5Error):
    """A pre-trade risk limit refused the order; nothing was sent. ``limit`` names the limit
    (``max_volume_per_order``...), ``value`` what the order would have made it, ``allowed``
    the configured bound. Never retried, never a breaker failure."""

    default_hint = "Reduce the order, wait, or change the session's RiskLimits."

    def __init__(
        self,
        message: str,
        *,
        limit: str,
        value: object = None,
        allowed: object = None,
        **options: Unpack[ErrorOptions],
    ) -> None:
        self.limit = limit
        self.value = value
        self.allowed = allowed
        super().__init__(message, **options)


class MT5TradingHalted(MT5RiskLimitError):  # noqa: N818 (reads as a state, like the others)
    """The trading halt switch is on: new orders are refused before anything is sent."""

    default_hint = "Resume trading (session.resume_trading()) when it is safe to."


#: What a session that is not usable yet tells a Python caller (the two situations' hints);
#: the front ends say the same in their own terms (``service.problems.SESSION_HINTS``, the
#: command line's ``cli.failures``).
CONNECT_FIRST_HINT: Final = (
    "Connect the session first (await session.connect()), or open a new one."
)
RECONNECTING_HINT: Final = "Retry shortly, or await session.connection.wait_reconnected()."


class MT5StateError(MT5Error):
    """The session is in the wrong state for the call (closed, not connected yet)."""

    default_hint = CONNECT_FIRST_HINT


class MT5OwnershipError(MT5StateError):
    """This process does not own the account: another holds its lease, or ownership passed to
    a newer owner (a higher fencing epoch) while this one was paused. Nothing was sent.

    ``owner`` names the current owner when it is known (``None`` otherwise) and ``epoch`` its
    fencing epoch; orders go through that owner (``mt5gate serve``'s HTTP API) instead.
    """

    default_hint = (
        "Send orders through the process that owns the account (see `mt5gate fleet status` "
        "or the error's owner), or wait until its lease expires."
    )

    def __init__(
        self,
        message: str,
        *,
        owner: str | None = None,
        epoch: int | None = None,
        **options: Unpack[ErrorOptions],
    ) -> None:
        self.owner = owner
        self.epoch = epoch
        super().__init__(message, **options)


class MT5OrderBlockedError(MT5StateError):
    """An order key, or the whole account, is blocked until an operator looks: the broker shows
    an order of ours the journal cannot account for (UNEXPECTED, DUPLICATE, a CONFLICT between
    the journal's request and the broker's order, or a journal behind the broker).

    Sending again cannot help; ``mt5gate journal`` shows what was found and how to settle it.
    """

    default_hint = (
        "See what was found with `mt5gate journal blocks` and `mt5gate journal show`, settle "
        "it at the broker by hand, then lift it with `mt5gate journal acknowledge`."
    )


class MT5TradingDisabledError(MT5Error):
    """A gate: trading is switched off, by the terminal (10027 Algo Trading off, -8 Python API
    disabled), the server (10026) or for the account or symbol (10017).

    Stop sending orders and report it in health; it is not a connection failure. ``retcode``,
    ``comment`` and ``request`` are set when a trade result said so."""

    default_hint = (
        "Trading is switched off: enable Algo Trading and allow the Python API in the "
        "terminal (Tools > Options > Expert Advisors), or ask the broker."
    )
    outcome: ClassVar[Outcome] = Outcome.GATE

    def __init__(
        self,
        message: str,
        *,
        retcode: int | None = None,
        comment: str = "",
        request: Mapping[str, Any] | None = None,
        **options: Unpack[ErrorOptions],
    ) -> None:
        self.retcode = retcode
        self.comment = comment
        self.request = None if request is None else dict(request)
        options.setdefault("code", retcode)
        super().__init__(message, **options)


class MT5TradeError(MT5Error):
    """A trade request failed. ``retcode`` is the trade server's answer (``None`` when
    order_send itself returned ``None``: the reason is then in ``code``), ``comment`` its text,
    ``request`` the echoed request as a dict, ``outcome`` what it means for the order and
    ``client_id`` the order's client order id (sequence) when the journal gave it one."""

    default_outcome: ClassVar[Outcome] = Outcome.REJECTED

    def __init__(
        self,
        message: str,
        *,
        retcode: int | None,
        comment: str = "",
        request: Mapping[str, Any] | None = None,
        outcome: Outcome | None = None,
        client_id: int | None = None,
        **options: Unpack[ErrorOptions],
    ) -> None:
        self.retcode = retcode
        self.comment = comment
        self.request = None if request is None else dict(request)
        self.outcome = outcome if outcome is not None else self.default_outcome
        self.client_id = client_id
        options.setdefault("code", retcode)
        super().__init__(message, **options)


class MT5TradeRejected(MT5TradeError):  # noqa: N818 (the public name is fixed)
    """The trade server refused the request for a business reason (invalid stops, no money,
    market closed...). Never retried automatically, never trips the breaker: fix the request."""

    default_hint = "The order was not executed; fix the request before sending a new one."
    default_outcome = Outcome.REJECTED


class MT5TradeRetryable(MT5TradeError):  # noqa: N818 (the public name is fixed)
    """Not executed, and safe to re-price and resend with the same client id (requote, prices
    changed, no prices, too many requests)."""

    default_hint = "The order was not executed; re-price and resend it with the same client id."
    default_outcome = Outcome.RETRYABLE


class MT5OrderOutcomeUnknown(MT5TradeError):  # noqa: N818 (the public name is fixed)
    """The request may or may not have executed: the reply was lost (IPC send/receive failure
    or timeout, our deadline), or the server said error (10011), timeout (10012) or no
    connection (10031). Reconcile by client id before anything else; never resend blindly."""

    default_hint = (
        "Do not resend: the order may exist. Reconcile it by its client id first "
        "(mt5gate's journal does this)."
    )
    default_outcome = Outcome.UNKNOWN


# ---------------------------------------------------------------------------------------------
# Policy tables
# ---------------------------------------------------------------------------------------------

_R = TradeRetcode

#: The outcome of every trade retcode. Explicit on purpose: a new retcode must be classified by
#: a person (tests/errors checks this table against surface.json).
TRADE_OUTCOMES: Final[Mapping[int, Outcome]] = MappingProxyType(
    {
        # Executed. 10008 is how some servers (asynchronous sends) accept an order.
        _R.PLACED: Outcome.EXECUTED,
        _R.DONE: Outcome.EXECUTED,
        _R.DONE_PARTIAL: Outcome.EXECUTED,  # the caller records the remaining volume
        # Not executed; safe to re-price and resend with the same client id.
        _R.REQUOTE: Outcome.RETRYABLE,
        _R.PRICE_CHANGED: Outcome.RETRYABLE,
        _R.PRICE_OFF: Outcome.RETRYABLE,  # no quotes to execute against yet
        _R.TOO_MANY_REQUESTS: Outcome.RETRYABLE,  # with backoff
        # Gates: trading is switched off for the symbol or account, by server or terminal.
        _R.TRADE_DISABLED: Outcome.GATE,
        _R.SERVER_DISABLES_AT: Outcome.GATE,
        _R.CLIENT_DISABLES_AT: Outcome.GATE,
        # Unknown: the request may have reached the server and executed.
        _R.ERROR: Outcome.UNKNOWN,
        _R.TIMEOUT: Outcome.UNKNOWN,
        _R.CONNECTION: Outcome.UNKNOWN,  # the link may have dropped after the request left
        # Business rejections: final, not retried, not the terminal's fault.
        _R.REJECT: Outcome.REJECTED,
        # 10007: cancelled by the trader (someone chose to); never resent automatically.
        _R.CANCEL: Outcome.REJECTED,
        _R.INVALID: Outcome.REJECTED,
        _R.INVALID_VOLUME: Outcome.REJECTED,
        _R.INVALID_PRICE: Outcome.REJECTED,
        _R.INVALID_STOPS: Outcome.REJECTED,
        # 10018: the symbol's session is closed. A business answer from a live server, not a
        # connection failure and not a switch someone turned off: sending again when the
        # session opens is a new decision, not a retry.
        _R.MARKET_CLOSED: Outcome.REJECTED,
        _R.NO_MONEY: Outcome.REJECTED,
        _R.INVALID_EXPIRATION: Outcome.REJECTED,
        _R.ORDER_CHANGED: Outcome.REJECTED,  # the target order changed: re-read, then decide
        # 10025: the request asked for the state that already holds. Harmless; nothing to redo.
        _R.NO_CHANGES: Outcome.REJECTED,
        # 10028: the target order or position is locked by another operation in progress;
        # this request was refused, not queued.
        _R.LOCKED: Outcome.REJECTED,
        _R.FROZEN: Outcome.REJECTED,
        _R.INVALID_FILL: Outcome.REJECTED,
        _R.ONLY_REAL: Outcome.REJECTED,
        _R.LIMIT_ORDERS: Outcome.REJECTED,
        _R.LIMIT_VOLUME: Outcome.REJECTED,
        _R.INVALID_ORDER: Outcome.REJECTED,
        _R.POSITION_CLOSED: Outcome.REJECTED,
        _R.INVALID_CLOSE_VOLUME: Outcome.REJECTED,
        _R.CLOSE_ORDER_EXIST: Outcome.REJECTED,
        _R.LIMIT_POSITIONS: Outcome.REJECTED,
        _R.REJECT_CANCEL: Outcome.REJECTED,
        _R.LONG_ONLY: Outcome.REJECTED,
        _R.SHORT_ONLY: Outcome.REJECTED,
        _R.CLOSE_ONLY: Outcome.REJECTED,
        _R.FIFO_CLOSE: Outcome.REJECTED,
    }
)

_C = ResultCode

#: ``last_error()`` after a successful call. A function that returned ``None`` while
#: last_error says success produced no data: :class:`MT5DataError`.
SUCCESS_CODE: Final = int(_C.S_OK)

#: ``OrderCheckResult.retcode`` when order_check found nothing wrong.
CHECK_OK_RETCODE: Final = 0

#: The error class of every ``last_error`` code except success.
ERROR_CLASSES: Final[Mapping[int, type[MT5Error]]] = MappingProxyType(
    {
        _C.E_FAIL: MT5DataError,  # unknown or unselected symbol, offset beyond the history
        _C.E_INVALID_PARAMS: MT5ValidationError,
        _C.E_NO_MEMORY: MT5DataError,  # the request was too big for the terminal
        _C.E_NOT_FOUND: MT5DataError,
        _C.E_INVALID_VERSION: MT5DataError,  # the terminal cannot serve this module
        _C.E_AUTH_FAILED: MT5AuthError,
        _C.E_UNSUPPORTED: MT5AuthError,  # seen as "OTP or certificate password needed"
        _C.E_AUTO_TRADING_DISABLED: MT5TradingDisabledError,
        _C.E_INTERNAL_FAIL: MT5ConnectionError,
        _C.E_INTERNAL_FAIL_SEND: MT5ConnectionError,
        _C.E_INTERNAL_FAIL_RECEIVE: MT5ConnectionError,
        _C.E_INTERNAL_FAIL_INIT: MT5InitError,
        _C.E_INTERNAL_FAIL_CONNECT: MT5ConnectionError,
        _C.E_INTERNAL_FAIL_TIMEOUT: MT5TimeoutError,
    }
)

#: What ``order_send`` returning ``None`` means, by ``last_error`` code. Only a failure that
#: proves the request never left this process is "not executed"; anything that may have
#: reached the server is UNKNOWN and must be reconciled.
SEND_FAILURE_OUTCOMES: Final[Mapping[int, Outcome]] = MappingProxyType(
    {
        # None while last_error says success: nothing proves the request was not sent.
        _C.S_OK: Outcome.UNKNOWN,
        # A failure inside the terminal: it may have forwarded the request already.
        _C.E_FAIL: Outcome.UNKNOWN,
        _C.E_NO_MEMORY: Outcome.UNKNOWN,
        # Refused by the module's type checks before anything was sent.
        _C.E_INVALID_PARAMS: Outcome.REJECTED,
        # Refused by the terminal before the server saw it; sending again will not help.
        _C.E_NOT_FOUND: Outcome.REJECTED,
        _C.E_INVALID_VERSION: Outcome.REJECTED,
        _C.E_AUTH_FAILED: Outcome.REJECTED,
        _C.E_UNSUPPORTED: Outcome.REJECTED,
        _C.E_AUTO_TRADING_DISABLED: Outcome.GATE,
        # The pipe broke during the call, or the reply never came: the request may be there.
        _C.E_INTERNAL_FAIL: Outcome.UNKNOWN,
        _C.E_INTERNAL_FAIL_SEND: Outcome.UNKNOWN,  # a partial write may still be processed
        _C.E_INTERNAL_FAIL_RECEIVE: Outcome.UNKNOWN,
        _C.E_INTERNAL_FAIL_TIMEOUT: Outcome.UNKNOWN,
        # No pipe existed when the call was made (never initialized, or shut down): the
        # request never left the process. Safe to resend with the same id after reconnecting;
        # the exception is still an MT5ConnectionError, so the breaker counts it.
        _C.E_INTERNAL_FAIL_CONNECT: Outcome.RETRYABLE,
        _C.E_INTERNAL_FAIL_INIT: Outcome.RETRYABLE,  # the pipe could not even be opened
    }
)

_AUTO_TRADING_HINT: Final = (
    "Untick 'Disable automatic trading via external Python API' in the terminal "
    "(Tools > Options > Expert Advisors)."
)

#: Hints that say more than the class's for particular last_error codes.
_LAST_ERROR_HINTS: Final[Mapping[int, str]] = MappingProxyType(
    {
        _C.S_OK: "The terminal returned no data: check the symbol, the range and the history.",
        _C.E_FAIL: (
            "Select the symbol in Market Watch (symbol_select) and check its name for broker "
            "suffixes."
        ),
        _C.E_NO_MEMORY: "Ask for less at once (fewer bars or ticks per call).",
        _C.E_NOT_FOUND: "Check the name: brokers often add suffixes (EURUSD.m, EURUSDx).",
        _C.E_INVALID_VERSION: "Update the MetaTrader 5 terminal and the MetaTrader5 package.",
        _C.E_UNSUPPORTED: (
            "The terminal refused this function or authorization mode; OTP and certificate "
            "accounts are not supported by the Python API."
        ),
        _C.E_AUTO_TRADING_DISABLED: _AUTO_TRADING_HINT,
        _C.E_INTERNAL_FAIL_TIMEOUT: (
            "The terminal did not answer in time; it may be updating or connecting to a new "
            "server. mt5gate reconnects automatically."
        ),
    }
)

#: Hints for particular codes when ``initialize()`` fails (the others keep MT5InitError's).
_INIT_HINTS: Final[Mapping[int, str]] = MappingProxyType(
    {
        _C.E_INTERNAL_FAIL_TIMEOUT: (
            "The terminal did not answer in time: a server it has never contacted, or an "
            "update in progress. Check the server name; mt5gate retries the connection."
        ),
        _C.E_AUTO_TRADING_DISABLED: _AUTO_TRADING_HINT,
    }
)

#: Hints for what the bridge client (``mt5gate.terminal.bridge``) says in an ``initialize()``
#: failure's text: a bridge's terminal has no path to check. The first pattern found decides.
_BRIDGE_INIT_HINTS: Final[tuple[tuple[re.Pattern[str], str], ...]] = (
    (re.compile(r"no mt5gate bridge listening at"),
     "Start the bridge there (mt5gate bridge --token-file FILE, on the terminal's machine; "
     "see docs/bridge.md), or fix the host and port of the bridge:// URL."),
    (re.compile(r"is not an mt5gate bridge"),
     "Point the bridge:// URL at the port mt5gate bridge listens on (18812 unless its --port "
     "says otherwise), not at an HTTP port such as the gateway's."),
    (re.compile(r"refused the token"),
     "Give this side the same token as the bridge (whose --token-file names it), in the "
     "account's token_file or token_env, or --token-file for a command."),
    (re.compile(r"no answer to the handshake"),
     "Something took the connection but did not answer as mt5gate bridge does: check that the "
     "port is the bridge's (18812 unless its --port says otherwise)."),
    (re.compile(r"IPC initialize failed, bridge \S+ unreachable"),
     "Check that mt5gate bridge runs at that address and that this machine reaches it "
     "(host name, firewall); mt5gate retries the connection."),
)  # fmt: skip

#: What to do for particular ``Invalid "<field>" argument`` failures (semantics.md §7.1).
_FIELD_RULES: Final[Mapping[str, str]] = MappingProxyType(
    {
        "volume": "must be a float (0.1, not 1 or None)",
        "price": "must be a float, not None",
        "sl": "must be a float",
        "tp": "must be a float",
        "comment": "must be a str of at most 31 characters",
        "login": "must be an int, not a str",
        "password": "must be a str",
        "server": "must be a str",
        "timeout": "must be an int, in milliseconds",
        "path": "must be a str",
    }
)

#: Hints for trade retcodes beyond the outcome's default.
_RETCODE_HINTS: Final[Mapping[int, str]] = MappingProxyType(
    {
        _R.INVALID_VOLUME: "Round volume to volume_step within [volume_min, volume_max].",
        _R.INVALID_STOPS: "Place sl and tp on the right side, trade_stops_level points away.",
        _R.INVALID_FILL: "Use a filling mode the symbol allows (symbol_info().filling_mode).",
        _R.MARKET_CLOSED: "The symbol's session is closed; send a new order when it opens.",
        _R.NO_MONEY: "Free margin is too low for this volume.",
        _R.NO_CHANGES: "Nothing to change: the levels are already set.",
        _R.TOO_MANY_REQUESTS: "Slow down, then resend with the same client id.",
        _R.TRADE_DISABLED: (
            "Trading is disabled for this symbol or account (an investor-password login?)."
        ),
        _R.SERVER_DISABLES_AT: "The broker disabled automated trading for this account.",
        _R.CLIENT_DISABLES_AT: "Turn on 'Algo Trading' in the terminal's toolbar.",
    }
)

_INVALID_FIELD = re.compile(r'Invalid "(?P<field>[^"]+)" argument')
_INVALID_POSITIONAL = re.compile(r"Invalid (?P<field>\w+ unnamed argument)")

# Terminal functions whose failure to run means "could not connect" rather than "no data".
_INIT_FUNCTIONS: Final = frozenset({"initialize"})
_ORDER_SEND: Final = "order_send"


# ---------------------------------------------------------------------------------------------
# Translation: the one place raw MT5 results become exceptions
# ---------------------------------------------------------------------------------------------


def trade_outcome(retcode: int) -> Outcome:
    """The outcome of an order_send retcode; an unrecognised retcode is UNKNOWN (reconcile)."""
    return TRADE_OUTCOMES.get(retcode, Outcome.UNKNOWN)


def send_failure_outcome(code: int) -> Outcome:
    """The outcome of order_send returning ``None`` with ``last_error`` ``code``; an
    unrecognised code is UNKNOWN, since nothing proves the request was not sent."""
    return SEND_FAILURE_OUTCOMES.get(code, Outcome.UNKNOWN)


def error_from_last_error(
    code: int,
    message: str,
    *,
    function: str,
    request: Mapping[str, Any] | None = None,
) -> MT5Error:
    """The exception for ``function`` having failed with ``last_error() == (code, message)``.

    ``order_send`` failures are classified by :data:`SEND_FAILURE_OUTCOMES` (a possibly sent
    order is :class:`MT5OrderOutcomeUnknown`, carrying ``request``); ``initialize`` failures
    other than authorization and argument errors are :class:`MT5InitError`.
    """
    what = f"{function}() failed: ({code}, {message!r})"
    if function == _ORDER_SEND and send_failure_outcome(code) is Outcome.UNKNOWN:
        return MT5OrderOutcomeUnknown(what, retcode=None, request=request, code=code)
    cls = _last_error_class(code, function)
    hint = _init_hint(code, message) if cls is MT5InitError else _LAST_ERROR_HINTS.get(code)
    if cls is MT5ValidationError:
        return _invalid_params(what, message, code=code)
    if cls is MT5TimeoutError:
        return MT5TimeoutError(what, function=function, code=code, hint=hint)
    return cls(what, code=code, hint=hint)


def _init_hint(code: int, message: str) -> str | None:
    """The hint of an ``initialize()`` failure: the bridge client's words first, then the
    code's (None: MT5InitError's own)."""
    for pattern, hint in _BRIDGE_INIT_HINTS:
        if pattern.search(message):
            return hint
    return _INIT_HINTS.get(code)


def _last_error_class(code: int, function: str) -> type[MT5Error]:
    cls = ERROR_CLASSES.get(code, MT5DataError if code == SUCCESS_CODE else MT5Error)
    if function in _INIT_FUNCTIONS and cls not in (MT5AuthError, MT5ValidationError):
        return MT5InitError
    return cls


def _invalid_params(what: str, message: str, *, code: int) -> MT5ValidationError:
    """-2: the module's own argument check (which names the field) or the terminal's."""
    match = _INVALID_FIELD.search(message) or _INVALID_POSITIONAL.search(message)
    field = match["field"] if match else None
    rule = _FIELD_RULES.get(field or "") or (
        "wrong type or value" if field else "the terminal refused the parameters"
    )
    hint = f"Fix {field!r}: {rule}." if field else f"Check the arguments: {rule}."
    return MT5ValidationError(what, field=field, rule=rule, code=code, hint=hint)


def error_from_trade_result(
    retcode: int,
    comment: str,
    request: Mapping[str, Any] | None,
) -> MT5TradeError | MT5TradingDisabledError | None:
    """The exception for an ``OrderSendResult``, or ``None`` when it executed.

    Gates become :class:`MT5TradingDisabledError`; everything else an :class:`MT5TradeError`
    subclass by :data:`TRADE_OUTCOMES` (an unrecognised retcode is an unknown outcome).
    """
    outcome = trade_outcome(retcode)
    if outcome is Outcome.EXECUTED:
        return None
    what = f"order_send() returned {_retcode_name(retcode)} ({comment!r})"
    hint = _RETCODE_HINTS.get(retcode)
    if outcome is Outcome.GATE:
        return MT5TradingDisabledError(
            what, retcode=retcode, comment=comment, request=request, hint=hint
        )
    cls = _TRADE_ERROR_CLASSES[outcome]
    return cls(what, retcode=retcode, comment=comment, request=request, hint=hint)


def _retcode_name(retcode: int) -> str:
    try:
        return f"{retcode} {TradeRetcode(retcode).name}"
    except ValueError:
        return f"unrecognised retcode {retcode}"


_TRADE_ERROR_CLASSES: Final[Mapping[Outcome, type[MT5TradeError]]] = MappingProxyType(
    {
        Outcome.RETRYABLE: MT5TradeRetryable,
        Outcome.REJECTED: MT5TradeRejected,
        Outcome.UNKNOWN: MT5OrderOutcomeUnknown,
    }
)


def error_from_check_result(
    retcode: int,
    comment: str,
    request: Mapping[str, Any] | None,
) -> MT5Error | None:
    """The exception for an ``OrderCheckResult``, or ``None`` when the check passed.

    order_check executes nothing, so no outcome is ever unknown: 10031 (no connection to the
    trade server) is an :class:`MT5ConnectionError`, 10012 an :class:`MT5TimeoutError`.
    """
    if retcode == CHECK_OK_RETCODE:
        return None
    outcome = trade_outcome(retcode)
    if outcome is not Outcome.UNKNOWN:
        return error_from_trade_result(retcode, comment, request)
    what = f"order_check() returned {_retcode_name(retcode)} ({comment!r})"
    if retcode == TradeRetcode.TIMEOUT:
        return MT5TimeoutError(what, function="order_check", code=retcode)
    return MT5ConnectionError(what, code=retcode)


def error_from_deadline(
    function: str,
    deadline_s: float,
    *,
    request: Mapping[str, Any] | None = None,
) -> MT5TimeoutError | MT5OrderOutcomeUnknown:
    """The exception for a terminal call that outlived our deadline.

    For ``order_send`` the request may still execute: :class:`MT5OrderOutcomeUnknown`.
    """
    what = f"{function}() did not return within {deadline_s:g} s"
    if function == _ORDER_SEND:
        return MT5OrderOutcomeUnknown(what, retcode=None, request=request)
    return MT5TimeoutError(what, deadline_s=deadline_s, function=function)


def error_from_account_mismatch(expected_login: int, actual_login: int | None) -> MT5AuthError:
    """The exception for a terminal logged into another account than the session's."""
    return MT5AuthError(
        f"The terminal is logged into account {actual_login}, not {expected_login}",
        expected_login=expected_login,
        actual_login=actual_login,
        hint=(
            "Another program or session switched the terminal's account; give each account "
            "its own terminal. mt5gate will not trade on the wrong account."
        ),
    )


# ---------------------------------------------------------------------------------------------
# What an exception means for the order and for the breaker
# ---------------------------------------------------------------------------------------------


def order_send_outcome(exc: BaseException) -> Outcome:
    """The outcome of an order_send attempt that raised ``exc``.

    Only a failure that proves the order was not sent is "not executed"; anything else,
    including an unexpected exception between the intent and the reply, is UNKNOWN.
    """
    if isinstance(exc, MT5TradeError | MT5TradingDisabledError):
        return exc.outcome
    if isinstance(exc, MT5ValidationError):
        return Outcome.REJECTED
    if isinstance(exc, MT5CircuitBreakerOpen | MT5StateError):
        return Outcome.RETRYABLE  # refused before the terminal was touched
    code = exc.code if isinstance(exc, MT5Error) else None
    return Outcome.UNKNOWN if code is None else send_failure_outcome(code)


# The terminal could not be reached or did not answer. OSError and EOFError are what a
# terminal transport (bridge socket, RPyC) raises when it breaks.
_INFRASTRUCTURE: Final = (MT5ConnectionError, MT5OrderOutcomeUnknown, OSError, EOFError)


def is_infrastructure_failure(exc: BaseException) -> bool:
    """Whether ``exc`` counts against the circuit breaker: the terminal could not be reached
    or did not answer (connection, init, timeout, unknown order outcome, a broken transport).

    Validation, data, auth, business rejections, gates, state errors and the breaker's own
    refusal never count.
    """
    return isinstance(exc, _INFRASTRUCTURE)


def breaker_verdict(exc: BaseException | None) -> Literal["success", "failure", "ignore"]:
    """What a call's result tells the circuit breaker: ``"success"`` for no exception,
    ``"failure"`` for an infrastructure failure, ``"ignore"`` for everything else.

    A business rejection, a gate, missing data or a validation error is neither evidence that
    the terminal works nor that it fails: it must not reset the failure count or close a
    half-open circuit (the pybreaker / circuitbreaker bugs), so it is ignored.
    """
    if exc is None:
        return "success"
    return "failure" if is_infrastructure_failure(exc) else "ignore"


# ---------------------------------------------------------------------------------------------
# Titles: what each error is, in a few plain words, for people (HTTP problems, the bot, the CLI)
# ---------------------------------------------------------------------------------------------

#: (class, title): the first class an error is an instance of decides (subclasses first).
ERROR_TITLES: Final[tuple[tuple[type[MT5Error], str], ...]] = (
    (MT5IdempotencyError, "Idempotency key reused for another request"),
    (MT5ValidationError, "Invalid request"),
    (MT5TradingHalted, "Trading is halted"),
    (MT5RiskLimitError, "Risk limit"),
    (MT5OrderOutcomeUnknown, "Order outcome unknown"),
    (MT5TradeRetryable, "Order not executed, retry"),
    (MT5TradeRejected, "Order rejected"),
    (MT5TradeError, "Order rejected"),
    (MT5TradingDisabledError, "Trading is disabled"),
    (MT5CircuitBreakerOpen, "Terminal unavailable (circuit open)"),
    (MT5ConnectionError, "Terminal unavailable"),
    (MT5AuthError, "Terminal not logged in"),
    (MT5OwnershipError, "Account owned by another process"),
    (MT5OrderBlockedError, "Order blocked until an operator looks"),
    (MT5StateError, "Account not ready"),
    (MT5DataError, "Not found"),
)


def error_title(error: MT5Error) -> str:
    """The plain-words title of ``error`` (``"Gateway error"`` for a class not in the table)."""
    for cls, title in ERROR_TITLES:
        if isinstance(error, cls):
            return title
    return "Gateway error"
