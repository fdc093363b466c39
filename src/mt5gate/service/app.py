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

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from http import HTTPStatus
from typing import Any, Final

from fastapi import FastAPI, Request, Response, WebSocket
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mt5gate.errors import MT5Error, MT5OrderOutcomeUnknown
from mt5gate.health import HealthStatus, Status
from mt5gate.metrics import Metrics
from mt5gate.orders.journal import JournalError
from mt5gate.service.accepted import accepted
from mt5gate.service.auth import AuthError
from mt5gate.service.body_limit import BodyLimit
from mt5gate.service.console import STATIC_DIR, add_console
from mt5gate.service.deps import resolve_gateway
from mt5gate.service.docs import STATIC_PATH, add_offline_docs
from mt5gate.service.examples import STATIC_EXAMPLES, simulated_examples
from mt5gate.service.forward import Forward
from mt5gate.service.gateway import SIMULATED_NOTICE, AccountRuntime, Gateway
from mt5gate.service.idempotency import HEADER, MissingIdempotencyKeyError
from mt5gate.service.insight import add_insight_routes
from mt5gate.service.matching import QuickRoute
from mt5gate.service.problems import (
    KEY_REQUIRED,
    PROBLEM_TYPE,
    STATUS_MEANINGS,
    Problem,
    ProblemDocument,
    problem_for,
    problem_response,
)
from mt5gate.service.routers import add_routes
from mt5gate.service.security import SECURITY, KeyedRoute, presented_key, security_schemes
from mt5gate.service.stream import StreamOptions, serve_stream

__all__ = ["HEALTH_TYPE", "BodyLimit", "Observe", "create_app"]

log = logging.getLogger("mt5gate.service")

HEALTH_TYPE = "application/health+json"


def create_app(
    gateway: Gateway,
    stream: StreamOptions | None = None,
    *,
    on_started: Callable[[], None] | None = None,
) -> FastAPI:
    """The service for ``gateway`` (started and stopped with the app's lifespan);
    ``on_started`` runs once the gateway has started, before the first request (``mt5gate
    serve`` settles its heap there, :func:`mt5gate.service.heap.settle_heap`)."""

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await gateway.start()
        try:
            if on_started is not None:
                on_started()
            yield
        finally:
            await gateway.stop()

    app = FastAPI(
        title="mt5gate", version=_version(), lifespan=lifespan, docs_url=None, redoc_url=None,
        description="A reliable HTTP gateway to MetaTrader 5 accounts: prices, history, "
        "exactly-once orders, health and metrics.",
    )  # fmt: skip
    app.state.gateway = gateway
    app.router.route_class = QuickRoute  # the probes' class; the /v1 routes name their own
    _add_middleware(app, gateway)
    _add_error_handlers(app)
    _add_probes(app, gateway)
    add_routes(app.router, key_required=gateway.settings.require_idempotency_key)
    add_insight_routes(app.router)
    app.mount(STATIC_PATH, StaticFiles(directory=STATIC_DIR), name="static")
    add_offline_docs(app)
    add_console(app, gateway)
    _complete_openapi(app, sorted(gateway.accounts), gateway.settings.require_idempotency_key)
    options = stream or StreamOptions()

    @app.websocket("/v1/stream")
    async def stream_route(websocket: WebSocket) -> None:
        """Ticks and trade events (see ``mt5gate.service.stream`` for the protocol), from the
        gateway the ``/v1`` routes answer from (an override of ``current_gateway`` included)."""
        await serve_stream(websocket, resolve_gateway(websocket), options)

    return app


def _complete_openapi(app: FastAPI, names: list[str], key_required: bool) -> None:
    """Finish the OpenAPI document FastAPI derives from the routes: the configured account
    names become the ``{account}`` enum (so clients, and schemathesis, know the valid values),
    the ``Idempotency-Key`` of trading writes is required when ``key_required`` (its dependency
    answers 428 itself, so FastAPI sees it optional), every operation that checks the API key
    lists the two ways to send it (``mt5gate.service.security``), and every route documents the
    problems it can answer with (``application/problem+json``)."""
    plain = app.openapi

    def completed() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = plain()
            components = schema.setdefault("components", {})
            problem = ProblemDocument.model_json_schema(ref_template="#/components/schemas/{model}")
            components.setdefault("schemas", {})["Problem"] = problem
            keyed = _keyed_operations(app)
            if keyed:
                components["securitySchemes"] = security_schemes()
            examples = {**STATIC_EXAMPLES, **simulated_examples()}
            for path, item in schema.get("paths", {}).items():
                for method, operation in item.items():
                    if (method, path) in keyed:
                        operation["security"] = [dict(scheme) for scheme in SECURITY]
                    _complete_operation(path, method, operation, names, key_required)
                    _add_example(operation, examples.get((method, path)))
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = completed  # type: ignore[method-assign]


def _keyed_operations(app: FastAPI) -> set[tuple[str, str]]:
    """``(method, path)`` of every operation that checks the API key (a ``KeyedRoute``)."""
    return {(method.lower(), route.path) for route in app.routes
            if isinstance(route, KeyedRoute) for method in route.methods or ()}  # fmt: skip


_READ_PROBLEMS: Final = (401, 403, 404, 422, 429, 500, 503)
_WRITE_PROBLEMS: Final = (*_READ_PROBLEMS, 400, 409, 413)
_HEALTH_PATHS: Final = ("/readyz", "/v1/health", "/v1/accounts/{account}/health")
_GUARDED_PROBLEMS: Final = (401, 403)  # /v1/health and /metrics, when not public


def _complete_operation(
    path: str, method: str, operation: dict[str, Any], names: list[str], key_required: bool
) -> None:
    """One operation: the account enum, the key header's requirement, and a problem response
    per status it can answer."""
    keyed = False
    for parameter in operation.get("parameters", ()):
        if parameter.get("in") == "path" and parameter.get("name") == "account":
            parameter["schema"] = {**parameter.get("schema", {}), "enum": names}
        if parameter.get("in") == "header" and parameter.get("name") == HEADER and key_required:
            parameter["required"] = keyed = True
    if path in ("/v1/health", "/metrics"):
        statuses: tuple[int, ...] = _GUARDED_PROBLEMS
    elif path.startswith("/v1/"):
        statuses = _READ_PROBLEMS if method == "get" else _WRITE_PROBLEMS
    else:
        statuses = ()
    if keyed:
        statuses = (*statuses, KEY_REQUIRED.status)
    responses = operation.setdefault("responses", {})
    if path == "/metrics":
        content = {"text/plain": {"schema": {"type": "string"}}}
        responses["200"] = {"description": "Prometheus text format 0.0.4", "content": content}
    if path in _HEALTH_PATHS:
        for code, meaning in (("200", "Healthy or warning"), ("503", "Failing or not ready")):
            content = {HEALTH_TYPE: {"schema": {"type": "object"}}}
            responses[code] = {"description": meaning, "content": content}
    for status in statuses:
        responses[str(status)] = {
            "description": STATUS_MEANINGS[status],
            "content": {PROBLEM_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}},
        }


def _add_example(operation: dict[str, Any], example: Any) -> None:
    """Put ``example`` on the operation's success response (200 or 201), whatever its type."""
    if example is None:
        return
    for status in ("200", "201"):
        content = operation.get("responses", {}).get(status, {}).get("content", {})
        for media in content.values():
            media["example"] = example


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("mt5gate")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "0.0.0"


# ------------------------------------------------------------------------------ middleware


def _route_template(scope: Scope) -> str:
    """The matched route's path template (``/v1/accounts/{account}/symbols/{symbol}/tick``),
    never the raw path: metrics labels must stay bounded."""
    return str(getattr(scope.get("route"), "path", "unmatched"))


#: The answer to a request that shutdown cancels before it has answered.
CUT_SHORT: Final = Problem(
    503, "Request cut short: the service is stopping",
    "The service stopped before this request finished. An order's outcome is unknown: send it "
    "again with the same Idempotency-Key once the service is back, and it reconciles.",
    "https://mt5gate.dev/problems/cut-short", {"error": "ShuttingDown"}, {"Retry-After": "5"},
)  # fmt: skip


class Observe:
    """Times every HTTP request and records it, with its status, under its route template.
    A request that shutdown cancels before it answered gets :data:`CUT_SHORT` (503), not
    uvicorn's plain-text 500.

    A plain ASGI middleware: Starlette's ``@app.middleware("http")`` runs each request through
    a task group and memory streams, which cost a third of the service's throughput on
    ``GET tick`` (``bench/service_bench.py``). A request the app fails on is recorded as 500.
    """

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started, status, answered = time.perf_counter(), 500, False

        async def sending(message: Message) -> None:
            nonlocal status, answered
            if message["type"] == "http.response.start":
                status, answered = int(message["status"]), True
            await send(message)

        try:
            await self.app(scope, receive, sending)
        except asyncio.CancelledError:
            if not answered:  # the server is stopping and its grace period is over
                status = CUT_SHORT.status
                await problem_response(CUT_SHORT)(scope, receive, send)
            raise
        finally:
            self.metrics.observe_http(scope["method"], _route_template(scope), status,
                                      time.perf_counter() - started)  # fmt: skip


def _add_middleware(app: FastAPI, gateway: Gateway) -> None:
    settings = gateway.settings
    limit = settings.max_body_bytes
    app.add_middleware(Forward, gateway=gateway)  # innermost: limits and metrics apply
    app.add_middleware(Observe, metrics=gateway.metrics)
    app.add_middleware(BodyLimit, limit=limit)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware, allow_origins=list(settings.cors_origins),
            allow_methods=["GET", "POST", "PATCH", "DELETE"],
            allow_headers=["X-API-Key", "Authorization", "Idempotency-Key", "Content-Type"],
        )  # fmt: skip


def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, error: StarletteHTTPException) -> JSONResponse:
        """FastAPI's and Starlette's own refusals (an unparseable body, an unknown path, a
        method the path does not take) as problems too."""
        title = HTTPStatus(error.status_code).phrase
        problem = Problem(error.status_code, title, str(error.detail),
                          f"https://mt5gate.dev/problems/{error.status_code}",
                          {"error": "HTTPError"}, dict(error.headers or {}))  # fmt: skip
        return problem_response(problem)

    @app.exception_handler(AuthError)
    async def auth_failed(_: Request, error: AuthError) -> JSONResponse:
        problem = Problem(error.status, error.title, error.detail,
                          f"https://mt5gate.dev/problems/{error.status}",
                          {"error": type(error).__name__}, dict(error.headers))  # fmt: skip
        return problem_response(problem)

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, error: RequestValidationError) -> JSONResponse:
        malformed = _malformed_json(error)
        if malformed is not None:
            return problem_response(malformed)
        problems = [_field_problem(e) for e in error.errors()]
        detail = "; ".join(f"{p['field']}: {p['rule']}" for p in problems)
        only = problems[0] if len(problems) == 1 else {}  # as an MT5ValidationError names it
        problem = Problem(422, "Invalid request", detail, "https://mt5gate.dev/problems/invalid-request",
                          {"error": "ValidationError", **only, "errors": problems})  # fmt: skip
        return problem_response(problem)

    async def mapped(request: Request, error: Exception) -> JSONResponse:
        """The errors :func:`problem_for` knows: the library's, the journal's, a missing key
        (hints name the routes of the request's account)."""
        account = request.path_params.get("account")
        return problem_response(problem_for(error, account=account))

    for known in (MT5Error, JournalError, MissingIdempotencyKeyError):
        app.add_exception_handler(known, mapped)
    app.add_exception_handler(MT5OrderOutcomeUnknown, accepted)  # type: ignore[arg-type]

    @app.exception_handler(Exception)
    async def failed(_: Request, error: Exception) -> JSONResponse:
        log.error("unexpected error: %s", type(error).__name__, exc_info=error)
        return problem_response(problem_for(error))


#: Where a request value was (the first part of a schema error's location), not its name.
_LOCATIONS: Final = frozenset({"body", "query", "header", "path", "cookie"})


def _malformed_json(error: RequestValidationError) -> Problem | None:
    """A body that is not JSON at all as 400 saying where it breaks (line and column), not as
    a field named by the character offset FastAPI reports; None for any other error."""
    found = next((e for e in error.errors() if e.get("type") == "json_invalid"), None)
    if found is None:
        return None
    document = error.body if isinstance(error.body, str) else ""
    offset = next((p for p in reversed(found.get("loc", ())) if isinstance(p, int)), 0)
    line = document.count("\n", 0, offset) + 1
    column = offset - (document.rfind("\n", 0, offset) + 1) + 1
    reason = str(found.get("ctx", {}).get("error") or "cannot be parsed")
    detail = (f"The body is not valid JSON: {reason} at line {line}, column {column}. Send a "
              "JSON object (Content-Type: application/json).")  # fmt: skip
    return Problem(400, "Body is not JSON", detail, "https://mt5gate.dev/problems/invalid-json",
                   {"error": "InvalidJSON", "line": line, "column": column})  # fmt: skip


def _field_problem(error: Any) -> dict[str, str]:
    """One schema error as ``{field, rule}``, the field as the client named it (``volume``,
    ``from``, ``Idempotency-Key``); the input is not echoed (it may be a secret)."""
    location = [str(part) for part in error.get("loc", ()) if part not in _LOCATIONS]
    rule = str(error.get("msg", "invalid")).removeprefix("Value error, ")
    return {"field": ".".join(location) or "body", "rule": rule}


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
    if gateway.bus is not None:  # a lost bus warns; it never fails order taking
        bus, reason = gateway.bus.check()
        checks["bus"] = [{"status": bus, "output": reason}]
        statuses.append(Status(bus))
    body: dict[str, Any] = {"status": str(Status.worst(statuses)), "checks": checks}
    if notes:
        body["notes"] = notes
    return body


def _served(gateway: Gateway) -> dict[str, AccountRuntime]:
    """The accounts this service runs: all of them, or in a fleet those it claimed (the
    others are another replica's, and reported by the fleet's checks)."""
    if gateway.conductor is None:
        return dict(gateway.accounts)
    return {name: a for name, a in gateway.accounts.items() if a.claimed}


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
        ready = {name: a.ready for name, a in _served(gateway).items()}
        if gateway.conductor is not None:
            ready["fleet"] = gateway.conductor.in_touch()
        status = 200 if all(ready.values()) else 503
        return JSONResponse({"status": "pass" if status == 200 else "fail", "accounts": ready},
                            status_code=status, media_type=HEALTH_TYPE)  # fmt: skip

    @app.get("/v1/health", tags=["health"], summary="Health of every account (health+json)",
             response_class=JSONResponse)  # fmt: skip
    async def health(request: Request) -> JSONResponse:
        guard(public_health, request)
        readings = {name: a.health for name, a in _served(gateway).items()}
        body = _health_body(gateway, readings)
        if gateway.conductor is not None:
            fleet = gateway.conductor.checks()
            body["checks"].update(fleet)
            statuses = [Status(body["status"]), *(Status(e[0]["status"]) for e in fleet.values())]
            body["status"] = str(Status.worst(statuses))
        return _health_response(body)

    @app.get("/metrics", tags=["health"], summary="Prometheus metrics",
             response_class=Response)  # fmt: skip
    async def metrics(request: Request) -> Response:
        guard(public_metrics, request)
        for name, runtime in gateway.accounts.items():
            if runtime.health is not None:
                gateway.metrics.observe_health(name, runtime.health)
        body, content_type = gateway.metrics.render()
        return Response(body, media_type=content_type)
