"""The lean handler (``mt5gate.service.lean``) answers exactly as FastAPI's own handler would.

Two apps over one started gateway: the service as it is, and the same service built with every
route on FastAPI's handler. Each request goes to both, and status, headers and body must be
byte for byte the same: answers, refusals (401, 403, 404) and the session's errors. The
simulator runs on a virtual clock, so both apps read the same market. A small app of its own
shows which routes stay on FastAPI's handler, and that they keep its behaviour (422 for a
constrained path segment, dependencies, query parameters, a sync endpoint)."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import httpx
import pytest
from fastapi import Depends, FastAPI, Request, Response
from fastapi import Path as PathParam
from fastapi.routing import APIRoute

from mt5gate.models import Price
from mt5gate.service import matching
from mt5gate.service.app import create_app
from mt5gate.service.auth import hash_api_key
from mt5gate.service.config import ApiKeySettings, default_settings
from mt5gate.service.gateway import Gateway
from mt5gate.service.lean import is_plain, lean_handler
from mt5gate.service.matching import QuickRoute
from mt5gate.sim import SimTerminal, VirtualClock
from mt5gate.sim.clock import server_ms_of
from tests.service.conftest import OPEN_MARKET, until_ready

ADMIN = "mg_lean-admin-key-0123456789abcdef"
READER = "mg_lean-read-key-0123456789abcdef0"
ACCOUNT = "/v1/accounts/demo"


@pytest.fixture
def fastapi_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Routes built meanwhile keep FastAPI's handler (as before the lean one existed)."""
    monkeypatch.setattr(matching, "lean_handler", lambda route: None)


@asynccontextmanager
async def two_apps(tmp_path: Path) -> AsyncIterator[tuple[httpx.AsyncClient, httpx.AsyncClient]]:
    """Clients of the lean app and of the FastAPI-only app, over one started gateway."""
    keys = (
        ApiKeySettings(name="admin", hash=hash_api_key(ADMIN),
                       scopes=frozenset({"read", "trade", "admin"})),
        ApiKeySettings(name="reader", hash=hash_api_key(READER), scopes=frozenset({"read"})),
    )  # fmt: skip
    settings = default_settings().model_copy(update={"data_dir": tmp_path, "api_keys": keys})
    start = server_ms_of(datetime.fromisoformat(OPEN_MARKET))
    gateway = Gateway.build(settings, os.environ, terminal_for=lambda account: SimTerminal(
        clock=VirtualClock(start)))  # fmt: skip
    lean = create_app(gateway)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(matching, "lean_handler", lambda route: None)
        plain = create_app(gateway)
    await gateway.start()
    try:
        await until_ready(gateway)
        async with _client(lean) as one, _client(plain) as other:
            yield one, other
    finally:
        await gateway.stop()


def _client(app: FastAPI) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    return httpx.AsyncClient(transport=transport, base_url="http://mt5gate.test")


def _lean_paths(app: FastAPI) -> set[tuple[str, str]]:
    routes = [r for r in app.router.routes if isinstance(r, APIRoute) and is_plain(r)]
    return {(method, route.path) for route in routes for method in route.methods or ()}


def test_the_hot_read_routes_are_lean(tmp_path: Path) -> None:
    """GET tick and the other plain reads take the lean handler; routes with a query, a
    header or a body keep FastAPI's."""
    settings = default_settings().model_copy(update={"data_dir": tmp_path})
    app = create_app(Gateway.build(settings, os.environ))
    lean = _lean_paths(app)
    assert ("GET", ACCOUNT.replace("demo", "{account}") + "/symbols/{symbol}/tick") in lean
    assert ("GET", "/v1/accounts/{account}/symbols/{symbol}") in lean
    assert ("GET", "/v1/accounts/{account}") in lean
    assert ("GET", "/v1/accounts/{account}/symbols/{symbol}/rates") not in lean  # queries
    assert ("POST", "/v1/accounts/{account}/orders") not in lean  # a body, a header
    assert ("GET", "/metrics") not in lean  # a Response parameter or a plain function


CASES = [
    # (key, method, path): answers, refusals of every kind, the session's errors
    (READER, "GET", ACCOUNT + "/symbols/EURUSD/tick"),
    (READER, "GET", ACCOUNT + "/symbols/XAUUSD/tick"),
    (READER, "GET", ACCOUNT + "/symbols/EURUSD"),
    (READER, "GET", ACCOUNT + "/symbols/NOSUCH/tick"),
    (READER, "GET", ACCOUNT + "/symbols/" + "X" * 300 + "/tick"),
    (READER, "GET", ACCOUNT + "/symbols/EUR%2FUSD/tick"),
    (READER, "GET", ACCOUNT + "/symbols/%20/tick"),
    (READER, "GET", "/v1/accounts/nobody/symbols/EURUSD/tick"),
    (None, "GET", ACCOUNT + "/symbols/EURUSD/tick"),
    ("mg_wrong-key-0000000000000000000", "GET", ACCOUNT + "/symbols/EURUSD/tick"),
    (READER, "GET", ACCOUNT),
    (READER, "GET", "/v1/accounts"),
    (READER, "GET", ACCOUNT + "/terminal"),
    (READER, "POST", ACCOUNT + "/resume"),  # 403: admin only
    (ADMIN, "POST", ACCOUNT + "/resume"),
    (READER, "POST", ACCOUNT + "/symbols/EURUSD/tick"),  # 405
    (None, "GET", "/livez"),
]


def test_lean_and_fastapi_handlers_answer_byte_for_byte_alike(tmp_path: Path) -> None:
    async def compare() -> list[int]:
        statuses = []
        async with two_apps(tmp_path) as (lean, plain):
            for key, method, path in CASES:
                headers = {} if key is None else {"X-API-Key": key}
                one = await lean.request(method, path, headers=headers)
                other = await plain.request(method, path, headers=headers)
                assert (one.status_code, one.headers.raw, one.content) == (
                    other.status_code,
                    other.headers.raw,
                    other.content,
                ), (method, path)
                statuses.append(one.status_code)
        return statuses

    statuses = asyncio.run(compare())
    assert {200, 401, 403, 404, 405} <= set(statuses)  # the cases reach every kind of answer


def test_the_lean_tick_is_the_session_price(tmp_path: Path) -> None:
    async def read() -> tuple[dict[str, Any], httpx.Headers]:
        async with two_apps(tmp_path) as (lean, _):
            found = await lean.get(ACCOUNT + "/symbols/EURUSD/tick", headers={"X-API-Key": READER})
            assert found.status_code == 200, found.text
            return found.json(), found.headers

    body, headers = asyncio.run(read())
    assert set(body) == set(Price.__dataclass_fields__)
    assert body["symbol"] == "EURUSD"
    assert body["ask"] >= body["bid"] > 0
    assert headers["content-type"] == "application/json"


# ------------------------------------------------------------- which routes stay on FastAPI's


def _tiny_app() -> FastAPI:
    """Routes of every shape, on QuickRoute (as the service's are)."""
    app = FastAPI()
    app.router.route_class = QuickRoute

    async def dependency() -> str:
        return "dep"

    @app.get("/plain/{name}")
    async def plain(name: str, request: Request) -> Price:
        return Price(name, 1.0, 2.0, 0.0, 0, int(request.path_params.get("t", 7)), 6)

    @app.get("/short/{name}")
    async def short(name: Annotated[str, PathParam(max_length=3)]) -> Price:
        return Price(name, 1.0, 2.0, 0.0, 0, 1, 6)

    @app.get("/converted/{n:int}")
    async def converted(n: str) -> Price:
        return Price(n, 1.0, 2.0, 0.0, 0, 1, 6)

    @app.get("/whole/{rest:path}")
    async def whole(rest: str) -> Price:
        return Price(rest, 1.0, 2.0, 0.0, 0, 1, 6)

    @app.get("/number/{n}")
    async def number(n: int) -> Price:
        return Price("N", 1.0, 2.0, 0.0, 0, n, 6)

    @app.get("/query/{name}")
    async def query(name: str, side: str = "bid") -> Price:
        return Price(name + side, 1.0, 2.0, 0.0, 0, 1, 6)

    @app.get("/depends/{name}")
    async def depends(name: str, extra: Annotated[str, Depends(dependency)]) -> Price:
        return Price(name + extra, 1.0, 2.0, 0.0, 0, 1, 6)

    @app.get("/sync/{name}")
    def sync(name: str) -> Price:
        return Price(name, 1.0, 2.0, 0.0, 0, 1, 6)

    @app.get("/response/{name}", response_model=Price)
    async def response(name: str) -> Response:
        return Response(name, 202, media_type="text/plain")

    @app.get("/created/{name}", status_code=201, response_model_exclude={"flags"})
    async def created(name: str) -> Price:
        return Price(name, 1.0, 2.0, 0.0, 0, 1, 6)

    @app.get("/broken/{name}")
    async def broken(name: str) -> Price:
        return {"symbol": name}  # type: ignore[return-value]  # fails its response model

    return app


def _routes(app: FastAPI) -> dict[str, APIRoute]:
    return {route.path.split("/")[1]: route for route in app.router.routes
            if isinstance(route, APIRoute)}  # fmt: skip


def test_only_plain_routes_are_lean() -> None:
    routes = _routes(_tiny_app())
    lean = {name for name, route in routes.items() if lean_handler(route) is not None}
    assert lean == {"plain", "whole", "response", "created", "broken"}


PROBES = ["/plain/EURUSD", "/converted/12", "/whole/a/b%20c", "/short/EURUSD", "/short/EUR",
          "/number/12", "/number/x", "/query/A?side=ask", "/query/A", "/depends/A", "/sync/A",
          "/response/A", "/created/A", "/broken/A"]  # fmt: skip


def test_the_tiny_apps_answer_alike_with_and_without_lean_handlers(fastapi_only: None) -> None:
    """Lean routes answer as FastAPI's handler does (status codes, response_model options, a
    Response returned as it is, a 500 for a result that fails its model), and the routes that
    are not lean keep FastAPI's behaviour (422, dependencies, queries, sync endpoints)."""
    plain = _tiny_app()  # built under fastapi_only
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(matching, "lean_handler", lean_handler)
        lean = _tiny_app()

    async def answers(app: FastAPI) -> list[tuple[int, list[tuple[bytes, bytes]], bytes]]:
        async with _client(app) as client:
            return [((r := await client.get(path)).status_code, r.headers.raw, r.content)
                    for path in PROBES]  # fmt: skip

    got, expected = asyncio.run(answers(lean)), asyncio.run(answers(plain))
    assert got == expected
    statuses = dict(zip(PROBES, (status for status, _, _ in got), strict=True))
    assert statuses["/short/EURUSD"] == statuses["/number/x"] == 422
    assert statuses["/converted/12"] == 422  # an int from the path is not a str to FastAPI
    assert b'"symbol":"a/b c"' in got[PROBES.index("/whole/a/b%20c")][2]
    assert statuses["/created/A"] == 201
    assert statuses["/response/A"] == 202
    assert statuses["/broken/A"] == 500
    assert b'"flags"' not in got[PROBES.index("/created/A")][2]
