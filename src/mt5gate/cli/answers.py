"""What ``mt5gate serve``'s answers mean to a command that went through it, mapped here once.

The service answers every failure as ``application/problem+json`` whose ``error`` member names
the error's class and whose ``hint`` says what to do (:mod:`mt5gate.service.problems`).
:func:`error_from_problem` turns that back into the same class with the members it carries
(``retcode``, ``client_id``, ``field``, ``limit``, ``owner``...), so a command fails through the
service exactly as on its own session: the same line, hint and exit code.

Whatever may hide a sent order is :class:`~mt5gate.errors.MT5OrderOutcomeUnknown` (exit 4, do
not resend): a ``202 Accepted`` (:func:`outcome_unknown`, with the order's status URL), and a
trading write the service cut short, failed on unexpectedly, or stopped answering after it was
sent. A service that cannot be reached at all has been sent nothing: an ``MT5ConnectionError``
naming its URL (exit 3).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Final

import httpx

from mt5gate import errors
from mt5gate.cli.failures import CommandError, Exit
from mt5gate.errors import (
    MT5CircuitBreakerOpen,
    MT5ConnectionError,
    MT5DataError,
    MT5Error,
    MT5IdempotencyError,
    MT5NotFoundError,
    MT5OrderOutcomeUnknown,
    MT5OwnershipError,
    MT5RiskLimitError,
    MT5TradeError,
    MT5TradingDisabledError,
    MT5ValidationError,
    Outcome,
)
from mt5gate.orders.journal import JournalError

__all__ = [
    "ERROR_CLASSES",
    "Call",
    "error_from_problem",
    "lost_answer",
    "outcome_unknown",
    "unreachable",
    "unreadable",
]


def _classes() -> dict[str, type[MT5Error]]:
    found: dict[str, type[MT5Error]] = {}
    for name in errors.__all__:
        value = getattr(errors, name)
        if isinstance(value, type) and issubclass(value, MT5Error):
            found[name] = value
    return found


#: Every library error class by name, as the problems' ``error`` member names them.
ERROR_CLASSES: Final[Mapping[str, type[MT5Error]]] = MappingProxyType(_classes())
_VERSIONS: Final = "Run the same mt5gate version for the commands and the service."


@dataclass(frozen=True, slots=True)
class Call:
    """One request to the service, as messages name it: where it went, and whether it trades
    (with which ``Idempotency-Key``)."""

    url: str
    write: bool = False
    key: str | None = None

    def unknown(
        self, message: str, status_url: str | None = None, client_id: int | None = None
    ) -> MT5OrderOutcomeUnknown:
        """The order may have executed: say so, where its status is, and how to ask safely."""
        where = f" Its status: GET {self.url}{status_url} (with the API key)." if status_url else ""
        again = (f"Rerun this command with --key {self.key}" if self.key
                 else "Send it again with the same Idempotency-Key")  # fmt: skip
        return MT5OrderOutcomeUnknown(
            message, retcode=None, client_id=client_id,
            hint=f"Do not resend it under a new key: it may have executed, and mt5gate serve "
            f"keeps reconciling it.{where} {again} to learn its outcome: that never sends it "
            "twice.",
        )  # fmt: skip


def unreachable(call: Call, error: httpx.TransportError) -> MT5ConnectionError:
    """Nothing reached the service (it refused the connection, or did not accept it in time):
    nothing was sent."""
    return MT5ConnectionError(
        f"cannot reach mt5gate serve at {call.url} ({_reason(error)})",
        hint="It holds the account's lease but does not answer: check that it runs (its log). "
        "Once it has stopped, its lease lapses and commands run on their own again.",
    )


def lost_answer(call: Call, error: httpx.TransportError) -> MT5Error:
    """The connection failed after the request went out: a read is just unanswered, an order
    may have been sent."""
    message = f"mt5gate serve at {call.url} did not answer ({_reason(error)})"
    if call.write:
        return call.unknown(message)
    return MT5ConnectionError(message, hint="Check that it runs (its log), then try again.")


def unreadable(call: Call, what: str, detail: str) -> MT5Error:
    """A success answer this command cannot read (another version of mt5gate serve?)."""
    return MT5Error(f"mt5gate serve at {call.url} answered {what} in a form this command "
                    f"does not read: {detail}", hint=_VERSIONS)  # fmt: skip


def outcome_unknown(call: Call, body: Mapping[str, Any]) -> MT5OrderOutcomeUnknown:
    """A ``202 Accepted`` (:mod:`mt5gate.service.accepted`): the order's outcome is unknown yet;
    the hint carries the URL of its status."""
    detail = str(body.get("detail") or "the order's outcome is unknown")
    status_url = body.get("status_url")
    where = status_url if isinstance(status_url, str) else None
    return call.unknown(detail, where, _int(body.get("client_id")))


def error_from_problem(
    call: Call, response: httpx.Response, body: Mapping[str, Any], *, key_source: str = "",
    key_hint: str = "Use a key of that service with the scope the command needs.",
) -> Exception:  # fmt: skip
    """The error a problem answer stands for (``body`` is ``{}`` when it was not JSON): the
    class its ``error`` names, else what its status means. A refused key is named by where it
    came from (``key_source``, never the key), with ``key_hint`` saying what to do."""
    status = response.status_code
    name = str(body.get("error") or "")
    detail = str(body.get("detail") or body.get("title") or f"HTTP {status} "
                 f"{response.reason_phrase}")  # fmt: skip
    hint = _text(body, "hint") or None
    message = _without(detail, hint)
    cls = ERROR_CLASSES.get(name)
    if cls is not None:
        return _rebuilt(cls, body, message, hint, response.headers.get("retry-after"))
    if name == "JournalError":
        return JournalError(detail)
    if name in ("ValidationError", "MissingIdempotencyKeyError"):
        return MT5ValidationError(detail, field=_text(body, "field") or None,
                                  rule=_text(body, "rule") or None)  # fmt: skip
    if status in (401, 403):
        where = f" in {key_source}" if key_source else ""
        return CommandError(f"mt5gate serve at {call.url} refused the API key{where}: {detail}",
                            hint=key_hint)  # fmt: skip
    if status == 429:
        wait = response.headers.get("retry-after")
        return CommandError(f"mt5gate serve at {call.url}: {detail}",
                            hint=f"Nothing was sent. Try again in {wait or 'a few'} seconds.",
                            code=Exit.MT5)  # fmt: skip
    return _by_status(call, status, detail)


def _by_status(call: Call, status: int, detail: str) -> Exception:
    """A problem without a library class (shutdown, a bug, a route's own refusal)."""
    if status >= 500 and call.write:  # cut short, or failed unexpectedly: it may have sent it
        return call.unknown(f"mt5gate serve at {call.url} answered {status}: {detail}")
    if status == 503:
        return MT5ConnectionError(f"mt5gate serve at {call.url}: {detail}",
                                  hint="Try again when it is back.")  # fmt: skip
    if status >= 500:
        return CommandError(f"mt5gate serve at {call.url} failed ({status}): {detail}",
                            hint="This is a bug in mt5gate: its log says more; please report "
                            "it.", code=Exit.BUG)  # fmt: skip
    if status == 404:
        return MT5DataError(detail)
    return CommandError(f"mt5gate serve at {call.url} refused the request ({status}): "
                        f"{detail}", hint=_VERSIONS, code=Exit.BUG)  # fmt: skip


def _rebuilt(
    cls: type[MT5Error], body: Mapping[str, Any], message: str, hint: str | None,
    retry_after: str | None,
) -> MT5Error:  # fmt: skip
    """``cls`` with the members the problem carries (each family takes its own)."""
    code = _int(body.get("code"))
    common: dict[str, Any] = {"hint": hint} if code is None else {"hint": hint, "code": code}
    if issubclass(cls, MT5TradeError):
        outcome = body.get("outcome")
        return cls(message, retcode=_int(body.get("retcode")), comment=_text(body, "comment"),
                   client_id=_int(body.get("client_id")),
                   outcome=Outcome(outcome) if outcome in set(Outcome) else None,
                   **common)  # fmt: skip
    if issubclass(cls, MT5TradingDisabledError):
        return cls(message, retcode=_int(body.get("retcode")), comment=_text(body, "comment"),
                   **common)  # fmt: skip
    if issubclass(cls, MT5IdempotencyError):
        return cls(message, client_id=_int(body.get("client_id")), **common)
    if issubclass(cls, MT5NotFoundError):
        return _not_found(body, message, common)
    if issubclass(cls, MT5ValidationError):
        return cls(message, field=_text(body, "field") or None, rule=_text(body, "rule") or None,
                   **common)  # fmt: skip
    if issubclass(cls, MT5RiskLimitError):
        return cls(message, limit=str(body.get("limit") or ""), **common)
    if issubclass(cls, MT5CircuitBreakerOpen):
        wait = float(retry_after) if retry_after and retry_after.isdigit() else math.inf
        return cls(message, retry_after_s=wait, state="open", **common)
    if issubclass(cls, MT5OwnershipError):
        return cls(message, owner=_text(body, "owner") or None, epoch=_int(body.get("epoch")),
                   **common)  # fmt: skip
    return cls(message, **common)


def _not_found(body: Mapping[str, Any], message: str, common: dict[str, Any]) -> MT5Error:
    """An unknown symbol or ticket, with what it names (the message is rebuilt from them); a
    problem that names neither, as the plain data error it is."""
    symbol, suggestions = _text(body, "symbol"), body.get("suggestions")
    if symbol:
        names = suggestions if isinstance(suggestions, list) else []
        return MT5NotFoundError("symbol", symbol, suggestions=[str(n) for n in names], **common)
    for kind in ("position", "order"):
        ticket = _int(body.get(kind))
        if ticket is not None:
            return MT5NotFoundError(kind, ticket, **common)
    return MT5DataError(message, **common)


def _without(detail: str, hint: str | None) -> str:
    """The problem's ``detail`` is "message. hint": the message alone."""
    if hint is None or not detail.endswith(hint):
        return detail
    message = detail[: -len(hint)].rstrip()
    return message.removesuffix(".") or detail


def _text(body: Mapping[str, Any], name: str) -> str:
    value = body.get(name)
    return value if isinstance(value, str) else ""


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _reason(error: httpx.TransportError) -> str:
    return str(error) or type(error).__name__
