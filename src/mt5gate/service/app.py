"""The FastAPI application: routes are thin (parse, call the session, render).

``create_app(gateway)`` wires the :class:`~mt5gate.service.gateway.Gateway` into an app:

* ``/livez`` (never touches a terminal), ``/readyz`` and ``/v1/health`` (the background
  monitors' latest readings, ``application/health+json``), ``/metrics`` (Prometheus);
* ``/v1/accounts/{account}/...``: account and terminal info, symbols, ticks, bars, positions,
  orders, history, and trading (``POST orders`` honours ``Idempotency-Key``);
* API keys (``X-API-Key`` or ``Authorization: Bearer``) with scopes, per-key rate limits,
  request size limits, CORS only when configured, and every error as
  ``application/problem+json`` (:mod:`~mt5gate.service.problems`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request, Response, WebSocket
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mt5gate.errors import MT5Error
from mt5gate.health import HealthStatus, Status
from mt5gate.orders.journal import JournalError
from mt5gate.service.auth import AuthError
from mt5gate.service.gateway import SIMULATED_NOTICE, Gateway
from mt5gate.service.problems import Problem, problem_for, problem_response
from mt5gate.service.routes import build_router
from mt5gate.service.security import presented_key
from mt5gate.service.stream import StreamOptions, serve_stream

__all__ = ["HEALTH_TYPE", "BodyLimit", "create_app"]

log = logging.getLogger("mt5gate.service")

HEALTH_TYPE = "application/health+json"


def create_app(gateway: Gateway, stream: StreamOptions | None = None) -> FastAPI:
    """The service for ``gateway`` (started and stopped with the app's lifespan)."""

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await gateway.start()
        try:
            yield
        finally:
            await gateway.stop()

    app = FastAPI(
        title="mt5gate", version=_version(), lifespan=lifespan,
        description="A reliable HTTP gateway to MetaTrader 5 accounts: prices, history, "
        "exactly-once orders, health and metrics.",
        responses={401: {"description": "Missing or invalid API key"}},
    )  # fmt: skip
    app.state.gateway = gateway
    _add_middleware(app, gateway)
    _add_error_handlers(app)
    _add_probes(app, gateway)
    app.include_router(build_router(gateway))
    _document_accounts(app, sorted(gateway.accounts))
    options = stream or StreamOptions()

    @app.websocket("/v1/stream")
    async def stream_route(websocket: WebSocket) -> None:
        """Ticks and trade events (see ``mt5gate.service.stream`` for the protocol)."""
        await serve_stream(websocket, gateway, options)

    return app


def _document_accounts(app: FastAPI, names: list[str]) -> None:
    """The OpenAPI document lists the configured account names as the ``{account}`` enum, so
    clients (and schemathesis) know the valid values."""
    plain = app.openapi

    def with_accounts() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = plain()
            for operation in _operations(schema):
                for parameter in operation.get("parameters", ()):
                    if parameter.get("in") == "path" and parameter.get("name") == "account":
                        parameter["schema"] = {**parameter.get("schema", {}), "enum": names}
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = with_accounts  # type: ignore[method-assign]


def _operations(schema: dict[str, Any]) -> list[dict[str, Any]]:
    return [op for item in schema.get("paths", {}).values() for op in item.values()
            if isinstance(op, dict)]  # fmt: skip


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("mt5gate")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "0.0.0"


# ------------------------------------------------------------------------------ middleware


def _route_template(request: Request) -> str:
    """The matched route's path template (``/v1/accounts/{account}/symbols/{symbol}/tick``),
    never the raw path: metrics labels must stay bounded."""
    route = request.scope.get("route")
    return str(getattr(route, "path", "unmatched"))


def _add_middleware(app: FastAPI, gateway: Gateway) -> None:
    settings = gateway.settings
    limit = settings.max_body_bytes

    @app.middleware("http")
    async def observe(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        started = time.perf_counter()
        response = await call_next(request)
        gateway.metrics.observe_http(
            request.method, _route_template(request), response.status_code,
            time.perf_counter() - started,
        )  # fmt: skip
        return response

    app.add_middleware(BodyLimit, limit=limit)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware, allow_origins=list(settings.cors_origins),
            allow_methods=["GET", "POST", "PATCH", "DELETE"],
            allow_headers=["X-API-Key", "Authorization", "Idempotency-Key", "Content-Type"],
        )  # fmt: skip


class BodyLimit:
    """Refuses request bodies over ``limit`` bytes with 413, declared or streamed (chunked).

    The body is read here first (it is small by definition) and replayed to the app; an
    over-long body is drained up to a cap before the answer, so the client reads the 413
    instead of a connection reset.
    """

    DRAIN_CAP = 1 << 20

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or ())
        declared = headers.get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.limit):
            await self._drain(receive, 0)
            await self._refuse(scope, receive, send)
            return
        body, complete = await self._read(receive)
        if not complete:
            await self._refuse(scope, receive, send)
            return
        await self.app(scope, _replay(body, receive), send)

    async def _read(self, receive: Receive) -> tuple[bytes, bool]:
        """The whole body, or (what was read, False) once it passes the limit (drained)."""
        parts: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return b"".join(parts), True
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.limit:
                if message.get("more_body", False):
                    await self._drain(receive, size)
                return b"", False
            parts.append(chunk)
            if not message.get("more_body", False):
                return b"".join(parts), True

    async def _drain(self, receive: Receive, seen: int) -> None:
        while seen <= self.DRAIN_CAP:
            message = await receive()
            seen += len(message.get("body", b""))
            if message["type"] != "http.request" or not message.get("more_body", False):
                return

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        problem = Problem(413, "Request too large",
                          f"Request bodies are limited to {self.limit} bytes.",
                          "https://mt5gate.dev/problems/too-large")  # fmt: skip
        await problem_response(problem)(scope, receive, send)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that gives the buffered body once, then the real channel (disconnects)."""
    pending = True

    async def replayed() -> Message:
        nonlocal pending
        if pending:
            pending = False
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replayed


def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(AuthError)
    async def auth_failed(_: Request, error: AuthError) -> JSONResponse:
        problem = Problem(error.status, error.title, error.detail,
                          f"https://mt5gate.dev/problems/{error.status}",
                          {"error": type(error).__name__}, dict(error.headers))  # fmt: skip
        return problem_response(problem)

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, error: RequestValidationError) -> JSONResponse:
        problems = [_field_problem(e) for e in error.errors()]
        detail = "; ".join(f"{p['field']}: {p['rule']}" for p in problems)
        problem = Problem(422, "Invalid request", detail, "https://mt5gate.dev/problems/invalid-request",
                          {"error": "ValidationError", "errors": problems})  # fmt: skip
        return problem_response(problem)

    @app.exception_handler(MT5Error)
    async def mt5_failed(_: Request, error: MT5Error) -> JSONResponse:
        return problem_response(problem_for(error))

    @app.exception_handler(JournalError)
    async def journal_failed(_: Request, error: JournalError) -> JSONResponse:
        return problem_response(problem_for(error))

    @app.exception_handler(Exception)
    async def failed(_: Request, error: Exception) -> JSONResponse:
        log.error("unexpected error: %s", type(error).__name__, exc_info=error)
        return problem_response(problem_for(error))


def _field_problem(error: Any) -> dict[str, str]:
    """One schema error as ``{field, rule}``; the input is not echoed (it may be a secret)."""
    location = [str(part) for part in error.get("loc", ()) if part not in ("body", "query")]
    return {"field": ".".join(location) or "body", "rule": str(error.get("msg", "invalid"))}


# ------------------------------------------------------------------------------ probes


def _health_body(gateway: Gateway, readings: dict[str, HealthStatus | None]) -> dict[str, Any]:
    """All accounts in one ``application/health+json`` document (checks prefixed by account)."""
    statuses = [r.status if r is not None else Status.FAIL for r in readings.values()]
    checks: dict[str, list[dict[str, Any]]] = {}
    notes: list[str] = [SIMULATED_NOTICE] if gateway.simulated else []
    for name, reading in readings.items():
        if reading is None:
            checks[f"{name}:health"] = [{"status": "fail", "output": "no reading yet (starting)"}]
            continue
        for key, entries in reading.to_health_json()["checks"].items():
            checks[f"{name}/{key}"] = entries
    body: dict[str, Any] = {"status": str(Status.worst(statuses)), "checks": checks}
    if notes:
        body["notes"] = notes
    return body


def _health_response(body: dict[str, Any]) -> JSONResponse:
    status = 503 if body["status"] == "fail" else 200
    return JSONResponse(body, status_code=status, media_type=HEALTH_TYPE)


def _add_probes(app: FastAPI, gateway: Gateway) -> None:
    public_health, public_metrics = gateway.settings.public_health, gateway.settings.public_metrics

    def guard(public: bool, request: Request) -> None:
        if not public:
            principal = gateway.authenticator.authenticate(presented_key(request))
            gateway.authenticator.authorize(principal, "read")

    @app.get("/livez", tags=["health"], summary="Liveness: the process serves (no terminal)")
    async def livez() -> dict[str, str]:
        return {"status": "pass"}

    @app.get("/readyz", tags=["health"], summary="Readiness: every account connected and healthy")
    async def readyz() -> JSONResponse:
        ready = {name: a.ready for name, a in gateway.accounts.items()}
        status = 200 if all(ready.values()) else 503
        return JSONResponse({"status": "pass" if status == 200 else "fail", "accounts": ready},
                            status_code=status, media_type=HEALTH_TYPE)  # fmt: skip

    @app.get("/v1/health", tags=["health"], summary="Health of every account (health+json)",
             response_class=JSONResponse)  # fmt: skip
    async def health(request: Request) -> JSONResponse:
        guard(public_health, request)
        readings = {name: a.health for name, a in gateway.accounts.items()}
        return _health_response(_health_body(gateway, readings))

    @app.get("/metrics", tags=["health"], summary="Prometheus metrics",
             response_class=Response)  # fmt: skip
    async def metrics(request: Request) -> Response:
        guard(public_metrics, request)
        for name, runtime in gateway.accounts.items():
            if runtime.health is not None:
                gateway.metrics.observe_health(name, runtime.health)
        body, content_type = gateway.metrics.render()
        return Response(body, media_type=content_type)
