"""Swapping the gateway the ``/v1`` routes answer from: ``app.dependency_overrides`` on
``current_gateway`` (``mt5gate.service.deps``), through the real app over httpx's ASGI transport.

The app is made on one simulated gateway (the demo account, login 5001, a USD account), the
override gives another, started in the same event loop: an account of the same name on the
simulator's login 5003 (a EUR account), with its own API key. Every route module must answer
from the gateway swapped in (the key check, the account lookup and the endpoint alike), and
from the app's own again once the override is gone.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any

import httpx
import pytest
from fastapi import Depends, FastAPI
from pydantic import SecretStr
from starlette.requests import Request
from websockets.sync.client import connect

from mt5gate.service.app import create_app
from mt5gate.service.auth import hash_api_key
from mt5gate.service.config import AccountSettings, ApiKeySettings, default_settings
from mt5gate.service.deps import current_gateway, resolve_gateway
from mt5gate.service.gateway import Gateway
from tests.service.conftest import open_market_terminal, until_ready
from tests.service.test_stream import KEY as OWN_KEY
from tests.service.test_stream import InProcess

OWN, OTHER = (f"mg_override-{name}-0123456789abcdef" for name in ("own", "other"))
ACCOUNT = "/v1/accounts/demo"
EURO = AccountSettings(name="demo", terminal="sim", login=5003, server="mt5gate-Sim-EU",
                       password_value=SecretStr("sim-pass-5003"))  # fmt: skip


def gateway_for(data_dir: Path, key: str, account: AccountSettings | None = None) -> Gateway:
    """A gateway on the simulator (clock pinned to an open market) with one key of every
    scope; on ``account`` instead of the default demo account when given."""
    keys = (ApiKeySettings(name="all", hash=hash_api_key(key),
                           scopes=frozenset({"read", "trade", "admin"})),)  # fmt: skip
    settings = default_settings()
    accounts = settings.accounts if account is None else (account,)
    update: dict[str, Any] = {"data_dir": data_dir, "api_keys": keys, "accounts": accounts}
    return Gateway.build(settings.model_copy(update=update), os.environ,
                         terminal_for=open_market_terminal)  # fmt: skip


@asynccontextmanager
async def two_gateways(tmp_path: Path) -> AsyncIterator[tuple[FastAPI, Gateway, httpx.AsyncClient]]:
    """The app (on its own gateway, started by its lifespan), a second gateway started beside
    it (the caller's to swap in), and a keyless client of the app."""
    app = create_app(gateway_for(tmp_path / "own", OWN))
    other = gateway_for(tmp_path / "other", OTHER, EURO)
    async with app.router.lifespan_context(app):
        await until_ready(app.state.gateway)
        await other.start()
        try:
            await until_ready(other)
            transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
            base = "http://mt5gate.test"
            async with httpx.AsyncClient(transport=transport, base_url=base) as http:
                yield app, other, http
        finally:
            await other.stop()


def key(value: str) -> dict[str, str]:
    return {"X-API-Key": value}


async def account_login(http: httpx.AsyncClient, api_key: str) -> tuple[int, Any]:
    """The status of ``GET /v1/accounts/demo`` with ``api_key``, and the login it names."""
    answer = await http.get(ACCOUNT, headers=key(api_key))
    return answer.status_code, answer.json().get("login")


def test_every_route_module_answers_from_the_gateway_swapped_in(tmp_path: Path) -> None:
    async def main() -> dict[str, Any]:
        async with two_gateways(tmp_path) as (app, other, http):

            async def read(path: str, api_key: str = OTHER) -> Any:
                return (await http.get(ACCOUNT + path, headers=key(api_key))).json()

            before = (await account_login(http, OWN), await account_login(http, OTHER))
            app.dependency_overrides[current_gateway] = lambda: other
            swapped = (await account_login(http, OWN), await account_login(http, OTHER))
            order = {"symbol": "EURUSD", "side": "buy", "volume": 0.1}
            headers = {**key(OTHER), "Idempotency-Key": "override-1"}
            placed = await http.post(ACCOUNT + "/orders", headers=headers, json=order)
            tick = await http.get(ACCOUNT + "/symbols/EURUSD/tick", headers=key(OTHER))
            halt = await http.post(ACCOUNT + "/halt", headers=key(OTHER), json={"reason": "x"})
            answers = {
                "account": (await read(""))["currency"],
                "list": (await http.get("/v1/accounts", headers=key(OTHER))).json()["accounts"],
                "positions": len(await read("/positions")),
                "status": (await read("/requests/override-1"))["outcome"],
                "journal": (await read("/journal"))["login"],
                "codes": (placed.status_code, tick.status_code, halt.status_code),
            }
            halted = (other.account("demo").session.risk.halted,
                      app.state.gateway.account("demo").session.risk.halted)  # fmt: skip
            app.dependency_overrides.clear()
            after = (await account_login(http, OWN), await account_login(http, OTHER))
            own_positions = await read("/positions", OWN)
            return {"before": before, "swapped": swapped, **answers, "halted": halted,
                    "after": after, "own positions": own_positions}  # fmt: skip

    found = asyncio.run(main())
    assert found["before"] == ((200, 5001), (401, None))  # the other gateway's key is unknown
    assert found["swapped"] == ((401, None), (200, 5003))  # the swapped-in one checks the key
    assert found["codes"] == (201, 200, 200)
    assert found["account"] == "EUR"
    assert [(a["name"], a["ready"]) for a in found["list"]] == [("demo", True)]
    assert found["positions"] == 1
    assert found["status"] == "executed"
    assert found["journal"] == 5003
    assert found["halted"] == (True, False)
    assert found["after"] == ((200, 5001), (401, None))
    assert found["own positions"] == []  # the order went to the other gateway's account only


def test_an_override_may_take_the_request_and_an_app_route_may_depend_on_it(
    tmp_path: Path,
) -> None:
    """``current_gateway`` is an ordinary FastAPI dependency too: a route an app user adds with
    ``Depends(current_gateway)`` gets the app's gateway, or the override's."""

    async def main() -> list[tuple[int, Any]]:
        async with two_gateways(tmp_path) as (app, other, http):

            @app.get("/mine")
            async def mine(gateway: Annotated[Gateway, Depends(current_gateway)]) -> int | None:
                return gateway.account("demo").settings.login

            plain = (await http.get("/mine")).json()
            seen: list[Request] = []

            def provide(request: Request) -> Gateway:
                seen.append(request)
                return other

            app.dependency_overrides[current_gateway] = provide
            swapped = (await http.get("/mine")).json()
            account = await account_login(http, OTHER)
            return [(plain, swapped), account, (len(seen), None)]

    (plain, swapped), account, (calls, _) = asyncio.run(main())
    assert (plain, swapped) == (5001, 5003)
    assert account == (200, 5003)
    assert calls == 2  # /mine's dependency, then the route class's check: once per request


@pytest.mark.parametrize(
    "override",
    [lambda: "not a gateway", lambda: None, lambda request, other: None],
    ids=["string", "none", "two-parameters"],
)
def test_an_override_that_gives_no_gateway_is_a_typed_error_naming_it(
    tmp_path: Path, override: Callable[..., Any]
) -> None:
    app = create_app(gateway_for(tmp_path, OWN))
    app.dependency_overrides[current_gateway] = override
    request = Request({"type": "http", "app": app, "headers": [], "path": "/"})
    with pytest.raises(TypeError, match=r"dependency_overrides\[current_gateway\] must be"):
        resolve_gateway(request)


def test_an_async_override_is_refused_with_a_typed_error_not_a_warning(tmp_path: Path) -> None:
    async def provide() -> Gateway:  # pragma: no cover - refused before it is awaited
        raise AssertionError

    app = create_app(gateway_for(tmp_path, OWN))
    app.dependency_overrides[current_gateway] = provide
    request = Request({"type": "http", "app": app, "headers": [], "path": "/"})
    with pytest.raises(TypeError, match="plain function giving a Gateway"):
        resolve_gateway(request)


def test_a_bad_override_answers_a_500_problem_without_details(tmp_path: Path) -> None:
    async def main() -> httpx.Response:
        async with two_gateways(tmp_path) as (app, _, http):
            app.dependency_overrides[current_gateway] = lambda: "not a gateway"
            return await http.get(ACCOUNT, headers=key(OWN))

    answer = asyncio.run(main())
    assert answer.status_code == 500
    assert answer.headers["content-type"] == "application/problem+json"


def test_the_stream_answers_from_the_gateway_swapped_in(tmp_path: Path) -> None:
    """``/v1/stream`` over a real socket (uvicorn on a thread, the websockets client): with
    the override its key check is the other gateway's, and the app's own again without."""
    served = InProcess(tmp_path / "served")
    other = gateway_for(tmp_path / "other", OTHER, EURO)  # keys only: it need not run
    app = served.server.config.app
    url = f"ws://127.0.0.1:{served.port}/v1/stream"

    def pong(api_key: str) -> str:
        """``pong``, or the refusal's title (a refused key is answered at once, then the
        connection is closed; an accepted one hears heartbeats until it pings)."""
        with connect(url, additional_headers=key(api_key)) as ws:
            try:
                first = json.loads(ws.recv(timeout=0.5))
            except TimeoutError:
                first = {"type": "nothing yet"}
            if first["type"] == "error":
                return str(first["problem"]["title"])
            ws.send(json.dumps({"op": "ping"}))
            while (answer := json.loads(ws.recv(timeout=10)))["type"] != "pong":
                assert answer["type"] == "heartbeat", answer
        return "pong"

    try:
        assert (pong(OWN_KEY), pong(OTHER)) == ("pong", "Unauthorized")
        app.dependency_overrides[current_gateway] = lambda: other
        assert (pong(OWN_KEY), pong(OTHER)) == ("Unauthorized", "pong")
        app.dependency_overrides.clear()
        assert pong(OWN_KEY) == "pong"
    finally:
        served.stop()
