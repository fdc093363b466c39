"""The errors a newcomer met (issue 21), over real HTTP to a real ``mt5gate serve`` process.

* an unknown symbol is the same 404 on every route that names it, naming the symbol, with the
  terminal's -4 and the likest name ("did you mean EURUSD?"), and an HTTP hint;
* a body that is not JSON is 400 at its line and column, not a field named by an offset;
* a range whose ``to`` is before its ``from`` is 422 naming ``to`` (rates and ticks);
* an unknown position or order ticket is 404 with the route that lists them;
* a closed market is 409 (the market's state, not a bad request), as the FastAPI example says;
* a second ``serve`` on a busy port stops at once (exit 2, a ``--port`` hint), touching nothing;
* a simulator behind a bridge is labelled SIMULATED as a ``sim`` account is.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from mt5gate.service.app import create_app
from mt5gate.service.auth import hash_api_key
from mt5gate.service.cli import listen
from mt5gate.service.config import AccountSettings, ApiKeySettings, default_settings
from mt5gate.service.gateway import SIMULATED_NOTICE, Gateway
from mt5gate.service.problems import STATUS_MEANINGS
from tests.bridge.conftest import TOKEN, CountingTerminal, ServedBridge, new_sim
from tests.service.conftest import Served, until_ready

PROBLEM = "application/problem+json"
ACCOUNT = "/v1/accounts/demo"
BUY = {"side": "buy", "volume": 0.1}


def keyed(key: str) -> dict[str, str]:
    return {"Idempotency-Key": key}


def _problem(answer: httpx.Response, status: int, error: str) -> dict[str, Any]:
    assert (answer.status_code, answer.headers["content-type"]) == (status, PROBLEM), answer.text
    body: dict[str, Any] = answer.json()
    assert body["error"] == error, body
    assert "Traceback" not in answer.text
    return body


def test_an_unknown_symbol_is_the_same_404_on_every_route(service: Served) -> None:
    wrong = "EURUSDX"
    base = f"{ACCOUNT}/symbols/{wrong}"
    with service.client() as http:
        answers = {
            "tick": http.get(base + "/tick"),
            "symbol": http.get(base),
            "rates": http.get(base + "/rates", params={"timeframe": "H1", "count": 5}),
            "rates range": http.get(base + "/rates", params={"from": 1767600000, "to": 1767603600}),
            "ticks": http.get(base + "/ticks", params={"from": "2026-01-06T08:00:00Z"}),
            "order": http.post(ACCOUNT + "/orders", json={"symbol": wrong, **BUY},
                               headers=keyed("unknown-symbol")),
            "check": http.post(ACCOUNT + "/orders/check", json={"symbol": wrong, **BUY}),
        }  # fmt: skip
        positions = http.get(ACCOUNT + "/positions").json()
    for route, answer in answers.items():
        body = _problem(answer, 404, "MT5NotFoundError")
        assert (body["code"], body["symbol"], body["field"]) == (-4, wrong, "symbol"), route
        assert body["suggestions"] == ["EURUSD"], route
        assert body["detail"].startswith(
            "unknown symbol 'EURUSDX': the terminal has no symbol of that name (did you mean "
            "EURUSD?)."
        ), route
        assert body["hint"].endswith("GET /v1/accounts/demo/symbols lists them."), route
        assert "session." not in answer.text, route  # the HTTP hint, not the Python one
    assert positions == []


def test_a_body_that_is_not_json_is_400_at_its_line_and_column(service: Served) -> None:
    with service.client() as http:
        broken = http.post(
            ACCOUNT + "/orders",
            content=b'{"symbol": "EURUSD",\n "side": }',
            headers={**keyed("not-json"), "content-type": "application/json"},
        )
        typed = http.post(ACCOUNT + "/orders", json={"symbol": "EURUSD", **BUY, "side": "up"},
                          headers=keyed("wrong-side"))  # fmt: skip
    body = _problem(broken, 400, "InvalidJSON")
    assert (body["line"], body["column"]) == (2, 10)
    assert body["detail"].startswith("The body is not valid JSON: Expecting value at line 2, "
                                     "column 10.")  # fmt: skip
    assert "field" not in body  # no bogus field named "29"
    assert "errors" not in body
    assert "not valid JSON" in STATUS_MEANINGS[400]
    assert _problem(typed, 422, "ValidationError")["field"] == "side"  # valid JSON, wrong value


@pytest.mark.parametrize("route", ["rates", "ticks"])
def test_a_range_that_ends_before_it_starts_is_422_naming_to(service: Served, route: str) -> None:
    with service.client() as http:
        backwards = http.get(
            f"{ACCOUNT}/symbols/EURUSD/{route}",
            params={"from": "2026-01-06T09:00:00Z", "to": "2026-01-06T08:00:00Z"},
        )
        forwards = http.get(
            f"{ACCOUNT}/symbols/EURUSD/{route}",
            params={"from": "2026-01-06T08:00:00Z", "to": "2026-01-06T09:00:00Z"},
        )
    body = _problem(backwards, 422, "MT5ValidationError")
    assert (body["field"], body["rule"]) == ("to", "not before from")
    assert forwards.status_code == 200, forwards.text


def test_an_unknown_ticket_is_404_with_the_route_that_lists_them(service: Served) -> None:
    with service.client() as http:
        closed = http.post(ACCOUNT + "/positions/999999/close", json={}, headers=keyed("c-9"))
        modified = http.patch(ACCOUNT + "/positions/999999", json={"sl": 1.0},
                              headers=keyed("m-9"))  # fmt: skip
        cancelled = http.delete(ACCOUNT + "/orders/999999", headers=keyed("d-9"))
    for answer in (closed, modified):
        body = _problem(answer, 404, "MT5NotFoundError")
        assert (body["position"], body["field"]) == (999999, "ticket")
        assert body["hint"] == "GET /v1/accounts/demo/positions lists the open ones."
        assert "no open position with ticket 999999" in body["detail"]
        assert "session.positions()" not in answer.text
    body = _problem(cancelled, 404, "MT5NotFoundError")
    assert (body["order"], body["hint"]) == (999999, "GET /v1/accounts/demo/orders lists the "
                                                     "pending ones.")  # fmt: skip


def test_a_closed_market_is_409(service: Served) -> None:
    """The service's clock starts Tuesday 10:00 server time; stocks open at 16:30."""
    with service.client() as http:
        answer = http.post(
            ACCOUNT + "/orders",
            json={"symbol": "AAPL", "side": "buy", "volume": 1.0},
            headers=keyed("aapl"),
        )
        no_money = http.post(
            ACCOUNT + "/orders",
            json={"symbol": "EURUSD", "side": "buy", "volume": 90.0},
            headers=keyed("rich"),
        )
    body = _problem(answer, 409, "MT5TradeRejected")
    assert (body["retcode"], body["comment"]) == (10018, "Market closed")
    assert "market is closed" in STATUS_MEANINGS[409]
    assert _problem(no_money, 422, "MT5TradeRejected")["retcode"] == 10019  # still the request's


def test_a_second_serve_on_a_busy_port_stops_before_it_opens_anything(
    service: Served, tmp_path: Path
) -> None:
    port = service.base.rsplit(":", 1)[1]
    data_dir = tmp_path / "second"
    environment = {**os.environ, "MT5GATE_DATA_DIR": str(data_dir)}
    environment.pop("MT5GATE_CONFIG", None)
    second = subprocess.run(
        [sys.executable, "-m", "mt5gate.cli", "serve", "--port", port],
        capture_output=True, text=True, timeout=60, env=environment, stdin=subprocess.DEVNULL,
        check=False,
    )  # fmt: skip
    assert second.returncode == 2, second.stderr
    assert second.stderr == (
        f"mt5gate serve: port {port} on 127.0.0.1 is already in use (another mt5gate serve?); "
        "start this one on another port with --port, or stop the other one\n"
    )
    assert not data_dir.exists()  # no journal, no key, no simulator state was made
    with service.client() as http:
        assert http.get("/readyz").status_code == 200  # the first one serves on


# ------------------------------------------------------------------ a simulator behind a bridge


def _bridged(port: int) -> AccountSettings:
    return AccountSettings(
        name="demo", terminal=f"bridge://127.0.0.1:{port}", login=5001,
        server="MetaQuotes-Demo", password_env="NEWCOMER_PASSWORD",
        token_env="NEWCOMER_BRIDGE_TOKEN",
    )  # fmt: skip


def _accounts_seen(tmp_path: Path, bridge: ServedBridge) -> tuple[dict[str, Any], dict[str, Any]]:
    """``/v1/accounts`` and ``/v1/health`` of a service whose account is on ``bridge``."""
    key = "mg_newcomer-test-key-0123456789abcd"
    keys = (ApiKeySettings(name="all", hash=hash_api_key(key), scopes=frozenset({"read"})),)
    settings = default_settings().model_copy(update={
        "data_dir": tmp_path, "api_keys": keys, "accounts": (_bridged(bridge.port),)})  # fmt: skip
    environment = {**os.environ, "NEWCOMER_PASSWORD": "sim-pass-5001",
                   "NEWCOMER_BRIDGE_TOKEN": TOKEN}  # fmt: skip

    async def main() -> tuple[dict[str, Any], dict[str, Any]]:
        gateway = Gateway.build(settings, environment)
        app = create_app(gateway)
        await gateway.start()
        try:
            await until_ready(gateway)
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://mt5gate.test",
                                         headers={"X-API-Key": key}) as http:  # fmt: skip
                accounts, health = await http.get("/v1/accounts"), await http.get("/v1/health")
                return accounts.json(), health.json()
        finally:
            await gateway.stop()

    return asyncio.run(main())


def test_a_simulator_behind_a_bridge_is_labelled_simulated(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    bridge = ServedBridge(new_sim())  # a bridge made in code: it names no kind ("custom")
    port = bridge.port
    try:
        with caplog.at_level(logging.WARNING, logger="mt5gate.service"):
            accounts, health = _accounts_seen(tmp_path, bridge)
    finally:
        bridge.close()
    [entry] = accounts["accounts"]
    assert (entry["terminal"], entry["simulated"]) == (f"bridge://127.0.0.1:{port}", True)
    assert accounts["notes"] == [SIMULATED_NOTICE]
    assert health["notes"] == [SIMULATED_NOTICE]
    warned = [r.getMessage() for r in caplog.records if "SIMULATED" in r.getMessage()]
    assert warned == [
        f"account demo: its bridge (bridge://127.0.0.1:{port}) serves a "
        "SIMULATED terminal (mt5gate.sim): prices and orders are not real"
    ]


def test_a_bridge_to_another_terminal_is_not_labelled(tmp_path: Path) -> None:
    """A terminal the bridge does not call a simulator (here a wrapper it cannot see into,
    announced as "official") is not labelled: the label is the bridge's word, not a guess."""
    bridge = ServedBridge(CountingTerminal(new_sim()), terminal_kind="official")
    try:
        accounts, health = _accounts_seen(tmp_path, bridge)
    finally:
        bridge.close()
    assert accounts["accounts"][0]["simulated"] is False
    assert "notes" not in health
    assert accounts["notes"] == []


def test_the_socket_bound_first_serves_without_delayed_acks() -> None:
    """``serve`` binds its socket itself and hands it to uvicorn: it must be a TCP socket as
    uvicorn's own, so that asyncio sets TCP_NODELAY on every connection (on a socket of
    protocol 0 it does not, and each answer then waits ~40 ms for a delayed ACK)."""
    sock = listen("127.0.0.1", 0)

    async def main() -> int:
        nodelay: asyncio.Future[int] = asyncio.get_running_loop().create_future()

        def accepted(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            raw = writer.get_extra_info("socket")
            nodelay.set_result(raw.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
            writer.close()

        server = await asyncio.start_server(accepted, sock=sock)
        async with server:
            _, writer = await asyncio.open_connection(*sock.getsockname()[:2])
            found = await asyncio.wait_for(nodelay, 10)
            writer.close()
            return found

    assert sock.proto == socket.IPPROTO_TCP
    assert asyncio.run(main()) != 0


def test_a_port_that_cannot_be_listened_on_is_one_line() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(OSError, match=re.escape(f"port {port} on 127.0.0.1 is already in use")):
            listen("127.0.0.1", port)
    with pytest.raises(OSError, match=r"cannot listen on 192\.0\.2\.1:8000: .*choose another"):
        listen("192.0.2.1", 8000)  # TEST-NET-1: not an address of this machine
