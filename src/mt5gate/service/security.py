"""How a request proves who it is: the API key it presents, checked by the route itself.

A key comes as ``X-API-Key: <key>`` or ``Authorization: Bearer <key>`` (:func:`presented_key`)
and is checked by ``gateway.authenticator``: 401, 403 or 429 as problem JSON, never FastAPI's
own refusals. A route that needs a key is a :class:`KeyedRoute`: it checks the key for its
scope before FastAPI parses the request, so a refusal comes before any other answer (422, 404),
as it did when the check was a dependency. It is not a dependency because FastAPI resolves a
dependency tree on every request, node by node: the key check built from the ``X-API-Key`` and
``Bearer`` security schemes cost more than ``GET tick``'s call to the session
(``bench/service_bench.py``, ``docs/performance.md``).

The OpenAPI document still declares both ways to send the key: :data:`API_KEY` and
:data:`BEARER` are its ``components.securitySchemes``, and every operation of a
:class:`KeyedRoute` lists them as alternatives (``mt5gate.service.app``), so Swagger UI shows
its *Authorize* button and generated clients know where the key goes.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any, ClassVar, Final

from fastapi import Request, Response
from fastapi.encoders import jsonable_encoder
from fastapi.security import APIKeyHeader, HTTPBearer
from starlette.requests import HTTPConnection

from mt5gate.service.auth import Principal, Scope
from mt5gate.service.deps import resolve_gateway
from mt5gate.service.gateway import Gateway
from mt5gate.service.matching import QuickRoute

__all__ = [
    "API_KEY",
    "BEARER",
    "SECURITY",
    "KeyedRoute",
    "authorized",
    "presented_key",
    "security_schemes",
]

#: The key in an ``X-API-Key`` header (the scheme ``ApiKey`` of the OpenAPI document).
API_KEY: Final = APIKeyHeader(
    name="X-API-Key", scheme_name="ApiKey", auto_error=False,
    description="An API key of this service, sent as `X-API-Key: <key>` (with no key configured, "
    "`mt5gate serve` makes one and keeps it in `<data_dir>/api-key`).",
)  # fmt: skip
#: The same key as ``Authorization: Bearer <key>`` (the scheme ``Bearer``).
BEARER: Final = HTTPBearer(
    scheme_name="Bearer", auto_error=False,
    description="The same API key, sent as `Authorization: Bearer <key>`.",
)  # fmt: skip
#: What an operation that needs a key says in the OpenAPI document: either scheme.
SECURITY: Final[tuple[dict[str, list[str]], ...]] = (
    {API_KEY.scheme_name: []},
    {BEARER.scheme_name: []},
)


def presented_key(request: HTTPConnection) -> str | None:
    """The API key a request or WebSocket presents: ``X-API-Key``, or
    ``Authorization: Bearer <key>`` (the value after the scheme, stripped). An empty value is
    no key. The same rules as FastAPI's :data:`API_KEY` and :data:`BEARER` schemes."""
    key = request.headers.get("x-api-key")
    if key:
        return key
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


def authorized(gateway: Gateway, request: HTTPConnection, scope: Scope) -> Principal:
    """The caller's key, authorised for ``scope`` and within its rate limit; ``AuthError``
    (401, 403, 429) otherwise, in that order."""
    principal = gateway.authenticator.authenticate(presented_key(request))
    gateway.authenticator.authorize(principal, scope)
    gateway.authenticator.admit(principal)
    return principal


class KeyedRoute(QuickRoute):
    """A route for callers whose key holds :attr:`key_scope` and is within its rate limit.

    :meth:`check` runs first on every request, before FastAPI reads the body or parses a
    parameter, against the request's gateway (the app's, or the override of
    :func:`~mt5gate.service.deps.current_gateway`), which it resolves for the endpoint too
    (:func:`~mt5gate.service.deps.gateway_of`); its ``AuthError`` is answered by the app's
    handlers, as any error a route raises. A subclass sets the scope, or checks more
    (:class:`~mt5gate.service.routes.AccountRoute` also looks the account up)."""

    key_scope: ClassVar[Scope] = "read"

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handle = super().get_route_handler()
        check = self.check

        async def keyed(request: Request) -> Response:
            check(request)
            return await handle(request)

        return keyed

    def check(self, request: Request) -> Gateway:
        """Refuse the request (``AuthError``) unless its key may use this route now; the
        request's gateway otherwise."""
        gateway = resolve_gateway(request)
        authorized(gateway, request, self.key_scope)
        return gateway


def security_schemes() -> dict[str, Any]:
    """``components.securitySchemes`` of the OpenAPI document, as FastAPI writes them."""
    return {scheme.scheme_name: jsonable_encoder(scheme.model, by_alias=True, exclude_none=True)
            for scheme in (API_KEY, BEARER)}  # fmt: skip
