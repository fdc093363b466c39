"""Any replica answers any request: an account's routes are served by its owner.

In a fleet (``[fleet]``) an ``/v1/accounts/{account}/...`` request that reaches a replica
which does not own the account is forwarded, as it came (method, path, query, headers with the
API key and the ``Idempotency-Key``, body), to the replica that does, and its answer is
returned unchanged. Exactly-once holds through the hop: the idempotency keys live in the store
every replica shares, so a retry of a request whose forwarded reply was lost, sent to any
replica, reaches the owner with the same key and gets the same order's status.

The owner is the one the last heartbeat saw holding the account's lease
(:class:`~mt5gate.service.fleet.FleetView`). A request is forwarded once at most: a replica
that receives a forwarded request for an account it does not own (the owner changed in
between) answers 503 with ``Retry-After`` rather than forward it again, and so does a replica
that sees no live owner (a fail-over under way).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

import httpx
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mt5gate.service.problems import Problem, problem_response

if TYPE_CHECKING:
    from mt5gate.service.gateway import Gateway

__all__ = ["FORWARDED_BY", "SERVED_BY", "Forward"]

log = logging.getLogger("mt5gate.fleet")

#: Set on a forwarded request: the replica that forwarded it (a second hop is refused).
FORWARDED_BY: Final = "x-mt5gate-forwarded-by"
#: Set on every answer of an account route in a fleet: the replica that served it.
SERVED_BY: Final = "x-mt5gate-served-by"

_ACCOUNT_PATH: Final = re.compile(r"^/v1/accounts/([^/]+)(?:/|$)")
#: Hop-by-hop headers (RFC 9110 §7.6.1) and those the client library sets itself.
_NOT_PASSED: Final = frozenset({
    "connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding",
    "upgrade", "host", "content-length", "content-encoding",
})  # fmt: skip
_PROBLEMS: Final = "https://mt5gate.dev/problems/"


def _no_owner(account: str, why: str) -> Problem:
    return Problem(503, "No owner right now",
                   f"Account {account!r} {why}. Nothing was sent; try again in a moment.",
                   _PROBLEMS + "no-owner", {"error": "MT5OwnershipError"},
                   {"Retry-After": "2"})  # fmt: skip


def _owner_silent(account: str, owner: str, error: str) -> Problem:
    return Problem(
        502, "Owner did not answer",
        f"The replica that owns account {account!r} ({owner}) did not answer ({error}). A "
        "trading request may or may not have been carried out: send it again with the same "
        "Idempotency-Key, or read GET /v1/accounts/{account}/requests/{key}, on any replica.",
        _PROBLEMS + "owner-silent", {"error": "MT5ConnectionError"}, {"Retry-After": "1"},
    )  # fmt: skip


class Forward:
    """The ASGI middleware that sends an account's requests to its owner (module docstring).
    Outside a fleet, and for every other path, it only passes requests on."""

    def __init__(self, app: ASGIApp, gateway: Gateway) -> None:
        self.app = app
        self.gateway = gateway

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        conductor = self.gateway.conductor
        if conductor is None or scope["type"] != "http":  # a lone service: nothing to look up
            await self.app(scope, receive, send)
            return
        match = _ACCOUNT_PATH.match(scope.get("path", ""))
        runtime = self.gateway.accounts.get(match.group(1)) if match else None
        if runtime is None or runtime.settings.login is None:
            await self.app(scope, receive, send)
            return
        me, view = conductor.me, conductor.view
        owner = view.owner(runtime.settings.login) if view is not None else None
        forwarded = any(name == FORWARDED_BY.encode() for name, _ in scope["headers"])
        if owner is None or owner.info.get("member") == me:
            if runtime.claimed:
                await self.app(scope, receive, _stamped(send, me))
            else:
                problem = _no_owner(runtime.name, "is being taken over by another replica")
                await problem_response(problem)(scope, receive, send)
            return
        url = str(owner.info.get("url") or "")
        if forwarded or not url:
            problem = _no_owner(runtime.name, "moved to another replica while the request "
                                "was on its way")  # fmt: skip
            await problem_response(problem)(scope, receive, send)
            return
        target = _Target(runtime.name, url, str(owner.info.get("member")), me)
        await _forward(scope, receive, send, target, conductor.http)


@dataclass(frozen=True, slots=True)
class _Target:
    """Where a request goes: its account, the owner's URL and name, and this replica."""

    account: str
    url: str
    owner: str
    me: str


async def _forward(
    scope: Scope, receive: Receive, send: Send, to: _Target, http: httpx.AsyncClient
) -> None:
    body = await _body(receive)
    query = scope.get("query_string", b"").decode("latin-1")
    address = to.url.rstrip("/") + scope["path"] + (f"?{query}" if query else "")
    headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"]
               if k.decode("latin-1").lower() not in _NOT_PASSED]  # fmt: skip
    headers.append((FORWARDED_BY, to.me))
    try:
        answer = await http.request(scope["method"], address, headers=headers, content=body)
    except httpx.HTTPError as error:
        log.warning("forwarding %s %s to %s failed: %s", scope["method"], scope["path"],
                    to.owner, type(error).__name__)  # fmt: skip
        problem = _owner_silent(to.account, to.owner, type(error).__name__)
        await problem_response(problem)(scope, receive, send)
        return
    await send({"type": "http.response.start", "status": answer.status_code,
                "headers": list(_passed(answer.headers.raw))})  # fmt: skip
    await send({"type": "http.response.body", "body": answer.content})


def _passed(headers: Iterable[tuple[bytes, bytes]]) -> Iterable[tuple[bytes, bytes]]:
    for name, value in headers:
        if name.decode("latin-1").lower() not in _NOT_PASSED:
            yield name, value  # the body is sent decoded: its own length, no encoding


async def _body(receive: Receive) -> bytes:
    parts: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return b"".join(parts)
        parts.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(parts)


def _stamped(send: Send, me: str) -> Send:
    """``send`` that names this replica on the answer (``X-Mt5gate-Served-By``)."""

    async def stamping(message: Message) -> None:
        if message["type"] == "http.response.start":
            message = {**message, "headers": [*message.get("headers", []),
                                              (SERVED_BY.encode(), me.encode())]}  # fmt: skip
        await send(message)

    return stamping
