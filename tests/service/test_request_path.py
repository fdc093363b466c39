"""The request path of the service, in process: what the route classes, the body limit and the
heap settings promise, driven through the real app over a simulated account.

The key is checked by the route itself (``KeyedRoute``) before FastAPI parses anything, then an
account route looks its account up (``AccountRoute``): so the refusals keep their order, 401,
403, 429, then 404, then what the request itself gets wrong (400, 422). ``QuickRoute`` refuses
paths early without changing what matches. ``BodyLimit`` passes a declared or absent body
untouched and counts a chunked one. ``settle_heap`` runs once the service has started.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TypeVar

import httpx
from starlette.types import Message, Receive, Scope, Send

from mt5gate.service.app import create_app
from mt5gate.service.auth import hash_api_key
from mt5gate.service.body_limit import BodyLimit
from mt5gate.service.config import ApiKeySettings, default_settings
from mt5gate.service.gateway import Gateway
from mt5gate.service.heap import YOUNG_THRESHOLD
from mt5gate.service.matching import QuickRoute
from mt5gate.service.routes import AccountRoute, AdminRoute, TradeRoute
from mt5gate.service.security import KeyedRoute
from tests.service.conftest import open_market_terminal, until_ready

T = TypeVar("T")
ROOT = Path(__file__).resolve().parents[2]
ADMIN, READER, SLOW = (f"mg_request-path-{name}-0123456789abcdef" for name in ("a", "r", "s"))
ACCOUNT = "/v1/accounts/demo"
PROBLEM = "application/problem+json"


def run(factory: Callable[[], Awaitable[T]]) -> T:
    return asyncio.run(factory())  # type: ignore[arg-type]


@asynccontextmanager
async def serving(
    tmp_path: Path, *, root_path: str = "", on_started: Callable[[Gateway], None] | None = None
) -> AsyncIterator[tuple[Gateway, httpx.AsyncClient]]:
    """A started gateway with three keys (admin; read only; read with a burst of one request
    a minute) and a keyless client of its app, behind ``root_path`` when given;
    ``on_started(gateway)`` is the app's ``on_started``."""
    keys = (
        ApiKeySettings(name="admin", hash=hash_api_key(ADMIN),
                       scopes=frozenset({"read", "trade", "admin"})),
        ApiKeySettings(name="reader", hash=hash_api_key(READER), scopes=frozenset({"read"})),
        ApiKeySettings(name="slow", hash=hash_api_key(SLOW), scopes=frozenset({"read"}),
                       rate_per_minute=1, burst=1),
    )  # fmt: skip
    settings = default_settings().model_copy(update={"data_dir": tmp_path, "api_keys": keys})
    gateway = Gateway.build(settings, os.environ, terminal_for=open_market_terminal)
    started = None if on_started is None else (lambda: on_started(gateway))
    app = create_app(gateway, on_started=started)
    async with app.router.lifespan_context(app):
        await until_ready(gateway)
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False, root_path=root_path)
        async with httpx.AsyncClient(transport=transport, base_url="http://mt5gate.test") as http:
            yield gateway, http


def as_key(key: str) -> dict[str, str]:
    return {"X-API-Key": key}


# ------------------------------------------------------------------ order of the refusals


def test_refusals_come_in_order_key_scope_rate_account_then_input(tmp_path: Path) -> None:
    async def main() -> dict[str, tuple[int, str]]:
        async with serving(tmp_path) as (_, http):
            bad = {"count": 0}  # a query the route refuses with 422
            answers = {
                "no key": await http.get("/v1/accounts/nope/symbols/EURUSD/rates", params=bad),
                "scope": await http.post("/v1/accounts/nope/orders", json={"side": "up"},
                                         headers=as_key(READER)),
                "account": await http.get("/v1/accounts/nope/symbols/EURUSD/rates",
                                          params=bad, headers=as_key(ADMIN)),
                "input": await http.get(ACCOUNT + "/symbols/EURUSD/rates", params=bad,
                                        headers=as_key(ADMIN)),
                "first": await http.get("/v1/accounts/nope", headers=as_key(SLOW)),
                "rate": await http.get("/v1/accounts/nope", headers=as_key(SLOW)),
            }  # fmt: skip
            return {name: (a.status_code, a.headers["content-type"]) for name, a in answers.items()}

    found = run(main)
    assert found == {
        "no key": (401, PROBLEM), "scope": (403, PROBLEM), "account": (404, PROBLEM),
        "input": (422, PROBLEM), "first": (404, PROBLEM), "rate": (429, PROBLEM),
    }  # fmt: skip


def test_the_key_is_checked_before_the_body_is_read(tmp_path: Path) -> None:
    """A body that is not JSON is 400 for a caller with a key, and 401 for one without: an
    unauthenticated request gets nothing parsed."""

    async def main() -> tuple[int, int]:
        garbled, json_type = b"\xff{not json", {"content-type": "application/json"}
        async with serving(tmp_path) as (_, http):
            anonymous = await http.post(ACCOUNT + "/halt", content=garbled, headers=json_type)
            keyed = await http.post(ACCOUNT + "/halt", content=garbled,
                                    headers={**json_type, **as_key(ADMIN)})  # fmt: skip
            return anonymous.status_code, keyed.status_code

    assert run(main) == (401, 400)


def test_each_scope_reaches_exactly_its_routes(tmp_path: Path) -> None:
    async def main() -> dict[str, int]:
        order = {"symbol": "EURUSD", "side": "buy", "volume": 0.1}
        async with serving(tmp_path) as (_, http):
            reader, admin = as_key(READER), as_key(ADMIN)
            answers = {
                "read": await http.get(ACCOUNT + "/symbols/EURUSD/tick", headers=reader),
                "list": await http.get("/v1/accounts", headers=reader),
                "trade": await http.post(ACCOUNT + "/orders/check", headers=reader, json=order),
                "admin": await http.post(ACCOUNT + "/resume", headers=reader),
                "admin ok": await http.post(ACCOUNT + "/resume", headers=admin),
            }
            return {name: answer.status_code for name, answer in answers.items()}

    assert run(main) == {"read": 200, "list": 200, "trade": 403, "admin": 403, "admin ok": 200}


def test_every_v1_route_checks_the_key_with_the_scope_it_needs(tmp_path: Path) -> None:
    """The route classes are the check: every ``/v1`` route but the public health summary is a
    ``KeyedRoute``, each account route an ``AccountRoute``, writes ``TradeRoute`` (or
    ``AdminRoute`` for the halt switch)."""
    gateway = Gateway.build(default_settings().model_copy(update={"data_dir": tmp_path}),
                            os.environ, terminal_for=open_market_terminal)  # fmt: skip
    app = create_app(gateway)
    paths = [(route, str(getattr(route, "path", ""))) for route in app.routes]
    kinds = {(sorted(getattr(route, "methods", None) or ["WS"])[0], path): type(route)
             for route, path in paths if path.startswith("/v1/")}  # fmt: skip
    assert kinds.pop(("GET", "/v1/health")) is QuickRoute  # guarded in the route (public option)
    assert kinds.pop(("WS", "/v1/stream")).__name__ == "APIWebSocketRoute"
    assert kinds.pop(("GET", "/v1/accounts")) is KeyedRoute
    writes = {kind for (method, _), kind in kinds.items() if method != "GET"}
    reads = {kind for (method, _), kind in kinds.items() if method == "GET"}
    assert reads == {AccountRoute}
    assert writes == {TradeRoute, AdminRoute}
    assert {path for (_, path), kind in kinds.items() if kind is AdminRoute} == {
        ACCOUNT.replace("demo", "{account}") + "/halt",
        ACCOUNT.replace("demo", "{account}") + "/resume",
    }
    assert all(path.startswith("/v1/accounts/{account}") for _, path in kinds)


# ---------------------------------------------------------------------------- matching


def test_a_wrong_method_is_still_405_and_an_unknown_path_404(tmp_path: Path) -> None:
    async def main() -> list[tuple[int, str | None]]:
        async with serving(tmp_path) as (_, http):
            answers = [
                await http.put(ACCOUNT + "/symbols/EURUSD/tick", headers=as_key(ADMIN)),
                await http.delete("/livez"),
                await http.get("/v1/accounts/demo/symbols/EURUSD/tock", headers=as_key(ADMIN)),
            ]
            return [(a.status_code, a.headers.get("allow")) for a in answers]

    assert run(main) == [(405, "GET"), (405, "GET"), (404, None)]


def test_routes_match_behind_a_root_path(tmp_path: Path) -> None:
    """Behind a proxy that sets ``root_path`` the quick refusal stands aside and FastAPI's own
    matching (which strips the root path) finds the route."""

    async def main() -> tuple[int, int]:
        async with serving(tmp_path, root_path="/api") as (_, http):
            tick = await http.get("/api" + ACCOUNT + "/symbols/EURUSD/tick", headers=as_key(ADMIN))
            live = await http.get("/api/livez")
            return tick.status_code, live.status_code

    assert run(main) == (200, 200)


# -------------------------------------------------------------------------- body limit


class Recorder:
    """An ASGI app that reads the whole body and records what it read and through what."""

    def __init__(self) -> None:
        self.body = b""
        self.receive: Receive | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.receive = receive
        more = True
        while more:
            message = await receive()
            self.body += message.get("body", b"")
            more = message.get("more_body", False)
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})


def http_scope(headers: list[tuple[bytes, bytes]], version: str = "1.1") -> Scope:
    return {"type": "http", "method": "POST", "path": "/x", "http_version": version,
            "headers": headers, "query_string": b"", "root_path": ""}  # fmt: skip


def feeding(*chunks: bytes) -> tuple[Receive, list[int]]:
    """A server's ``receive`` delivering ``chunks``; the list counts the calls made."""
    calls = [0]

    async def receive() -> Message:
        calls[0] += 1
        index = calls[0] - 1
        if index >= len(chunks):
            return {"type": "http.disconnect"}
        return {"type": "http.request", "body": chunks[index],
                "more_body": index < len(chunks) - 1}  # fmt: skip

    return receive, calls


def limited(scope: Scope, receive: Receive, limit: int = 10) -> tuple[Recorder, list[Message]]:
    app, sent = Recorder(), []

    async def send(message: Message) -> None:
        sent.append(message)

    asyncio.run(BodyLimit(app, limit)(scope, receive, send))
    return app, sent


def test_a_declared_body_within_the_limit_reaches_the_app_untouched() -> None:
    receive, calls = feeding(b"12345", b"678")
    app, sent = limited(http_scope([(b"content-length", b"8")]), receive)
    assert (app.receive is receive, app.body, calls[0]) == (True, b"12345678", 2)
    assert sent[0]["status"] == 204


def test_a_request_without_a_body_reaches_the_app_untouched() -> None:
    receive, _ = feeding(b"")
    app, sent = limited(http_scope([]), receive)
    assert (app.receive is receive, app.body, sent[0]["status"]) == (True, b"", 204)


def test_a_declared_length_over_the_limit_is_refused_before_the_app() -> None:
    receive, _ = feeding(b"x" * 11)
    for declared in (b"11", b"ten"):
        app, sent = limited(http_scope([(b"content-length", declared)]), receive)
        assert (app.receive, sent[0]["status"]) == (None, 413)


def test_a_chunked_body_is_counted_replayed_or_refused() -> None:
    chunked = [(b"transfer-encoding", b"chunked")]
    receive, _ = feeding(b"1234", b"5678")
    app, sent = limited(http_scope(chunked), receive)
    assert (app.receive is not receive, app.body, sent[0]["status"]) == (True, b"12345678", 204)
    over, _ = feeding(b"123456", b"789012")
    app, sent = limited(http_scope(chunked), over)
    assert (app.receive, sent[0]["status"]) == (None, 413)


def test_a_body_of_another_protocol_version_is_counted_too() -> None:
    """HTTP/2 frames a body without a length: it is counted as it arrives, as a chunked one."""
    over, _ = feeding(b"123456", b"789012")
    app, sent = limited(http_scope([], version="2"), over)
    assert (app.receive, sent[0]["status"]) == (None, 413)


# ------------------------------------------------------------------------------- heap


def test_on_started_runs_once_after_the_gateway_started_and_before_requests(
    tmp_path: Path,
) -> None:
    seen: list[tuple[bool, int]] = []

    def started(gateway: Gateway) -> None:
        answered = [m.samples for m in gateway.metrics.http_duration.collect()]
        seen.append((gateway.started, sum(map(len, answered))))

    async def main() -> int:
        async with serving(tmp_path, on_started=started) as (_, http):
            return (await http.get("/livez")).status_code

    assert run(main) == 200
    assert seen == [(True, 0)]  # once, started, and no request had been answered yet


def test_settle_heap_freezes_the_survivors_and_raises_the_young_threshold() -> None:
    """In a process of its own: the settings are process-wide."""
    script = (
        "import gc, json; from mt5gate.service.heap import settle_heap\n"
        "kept = [[n] for n in range(1000)]\n"
        "before = gc.get_threshold()\n"
        "settle_heap()\n"
        "found = [gc.get_freeze_count(), before, gc.get_threshold(), gc.get_count()[0]]\n"
        "print(json.dumps(found))\n"
    )
    found = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                           cwd=ROOT, env=dict(os.environ), check=True, timeout=60)  # fmt: skip
    frozen, before, after, young = json.loads(found.stdout)
    assert frozen >= 1000  # the kept lists, among everything else alive
    assert after == [YOUNG_THRESHOLD, *before[1:]]
    assert young < 10  # collected just before freezing
