"""How a request proves who it is: the API key it presents, checked as a FastAPI dependency."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Header, Request
from starlette.requests import HTTPConnection

from mt5gate.service.auth import Principal, Scope
from mt5gate.service.gateway import Gateway

__all__ = ["presented_key", "principal_dependency"]


def presented_key(request: HTTPConnection) -> str | None:
    """The API key a request or WebSocket presents: ``X-API-Key``, or
    ``Authorization: Bearer <key>``."""
    key = request.headers.get("x-api-key")
    if key:
        return key
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


def principal_dependency(gateway: Gateway, scope: Scope) -> Callable[..., Awaitable[Principal]]:
    """A dependency: the caller's key, authorised for ``scope`` and within its rate limit."""

    async def require(
        request: Request,
        x_api_key: Annotated[
            str | None, Header(description="API key (or Authorization: Bearer <key>)")
        ] = None,
    ) -> Principal:
        principal = gateway.authenticator.authenticate(x_api_key or presented_key(request))
        gateway.authenticator.authorize(principal, scope)
        gateway.authenticator.admit(principal)
        return principal

    return require
