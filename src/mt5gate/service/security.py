"""How a request proves who it is: the API key it presents, checked as a FastAPI dependency.

The key is read through FastAPI's security schemes (:data:`API_KEY` for ``X-API-Key``,
:data:`BEARER` for ``Authorization: Bearer``) rather than plain header parameters, so the
OpenAPI document declares both under ``components.securitySchemes`` and lists them, as
alternatives, on every protected operation: Swagger UI shows its *Authorize* button and sends
the key with *Try it out*, and generated clients know where the key goes. Both schemes are
built with ``auto_error=False``: a missing or malformed key is not refused by FastAPI (which
would answer its own 401/403 JSON) but by ``gateway.authenticator``, as problem JSON.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Final

from fastapi import Depends
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from starlette.requests import HTTPConnection

from mt5gate.service.auth import Principal, Scope
from mt5gate.service.gateway import Gateway

__all__ = ["API_KEY", "BEARER", "presented_key", "principal_dependency"]

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


def presented_key(request: HTTPConnection) -> str | None:
    """The API key a request or WebSocket presents: ``X-API-Key``, or
    ``Authorization: Bearer <key>``. For the routes that check the key themselves (the probes
    that are public unless configured otherwise, the stream); the same rules as the schemes."""
    key = request.headers.get("x-api-key")
    if key:
        return key
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


def principal_dependency(gateway: Gateway, scope: Scope) -> Callable[..., Awaitable[Principal]]:
    """A dependency: the caller's key, authorised for ``scope`` and within its rate limit."""

    async def require(
        api_key: Annotated[str | None, Depends(API_KEY)],
        bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(BEARER)],
    ) -> Principal:
        presented = api_key or (bearer.credentials if bearer is not None else None)
        principal = gateway.authenticator.authenticate(presented)
        gateway.authenticator.authorize(principal, scope)
        gateway.authenticator.admit(principal)
        return principal

    return require
