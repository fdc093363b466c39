"""The console calls the service's own HTTP API, in process, with the visitor's key.

Every read and every control goes through the same routes as any other client, with the same
scopes, rate limits, ``Idempotency-Key`` handling, exactly-once pipeline and, in a fleet, the
same forwarding to the account's owner: the console adds no second path to an account. The
calls cross no socket (httpx's ASGI transport into the running app).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

import httpx
from starlette.types import ASGIApp

__all__ = ["Api", "Reply"]

_BASE: Final = "http://console.internal"
_TIMEOUT_S: Final = 30.0


@dataclass(frozen=True, slots=True)
class Reply:
    """One answer of the API: its status, parsed JSON body and ``Location``."""

    status: int
    body: Any
    location: str | None = None

    @property
    def ok(self) -> bool:
        """A 2xx answer."""
        return 200 <= self.status < 300

    @property
    def problem(self) -> dict[str, Any]:
        """The problem document of a failed answer (title and detail at least)."""
        if isinstance(self.body, dict):
            return self.body
        return {"title": f"HTTP {self.status}", "detail": str(self.body)[:500]}


class Api:
    """The service's API, reached in process. One per app; each call names the key."""

    def __init__(self, app: ASGIApp) -> None:
        transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 0))
        self._client = httpx.AsyncClient(
            transport=transport, base_url=_BASE, timeout=_TIMEOUT_S, trust_env=False
        )

    async def call(
        self,
        method: str,
        path: str,
        key: str,
        *,
        params: dict[str, Any] | None = None,
        body: Any = None,
        idempotency_key: str | None = None,
    ) -> Reply:
        """``method path`` as the holder of ``key``; a body is sent as JSON."""
        headers = {"X-API-Key": key}
        if idempotency_key is not None:
            headers["Idempotency-Key"] = idempotency_key
        response = await self._client.request(
            method, path, params=params, json=body, headers=headers
        )
        try:
            parsed = response.json() if response.content else None
        except ValueError:
            parsed = response.text
        return Reply(response.status_code, parsed, response.headers.get("location"))

    async def get(self, path: str, key: str, **params: Any) -> Reply:
        """A read."""
        return await self.call("GET", path, key, params=params or None)
