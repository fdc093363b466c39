"""``/v1/stream``: the WebSocket protocol, in process (Starlette's test client drives the app and
its lifespan) and against the real server process with a real WebSocket client.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets
from fastapi.encoders import jsonable_encoder
from websockets.sync.client import ClientConnection, connect

from mt5gate.models import Price
from mt5gate.service import stream
from mt5gate.service.auth import hash_api_key
from mt5gate.service.config import ApiKeySettings, default_settings
from mt5gate.service.gateway import Gateway
from mt5gate.service.stream import StreamOptions, serve_stream
from tests.service import conftest
from tests.service.conftest import Served

KEY = "mg_stream-test-key-0123456789abcdef"


class InProcess(conftest.InProcess):
    """The app on a uvicorn thread, with short heartbeat and auth timeouts."""

    def __init__(self, tmp_path: Path) -> None:
        super().__init__(tmp_path, KEY, stream=StreamOptions(heartbeat_s=0.2, auth_timeout_s=1.0))

    def ws(self, key: str | None = KEY) -> ClientConnection:
        headers = {"X-API-Key": key} if key else {}
        return connect(f"ws://127.0.0.1:{self.port}/v1/stream", additional_headers=headers)

    def post(self, path: str, body: dict[str, Any], key: str | None = None) -> httpx.Response:
        """POST ``body``, with ``key`` as its ``Idempotency-Key`` when given."""
        headers = {"X-API-Key": KEY} | ({"Idempotency-Key": key} if key else {})
        return httpx.post(f"http://127.0.0.1:{self.port}{path}", json=body, headers=headers,
                          timeout=10)  # fmt: skip


@pytest.fixture
def served(tmp_path: Path) -> Iterator[InProcess]:
    service = InProcess(tmp_path)
    yield service
    service.stop()


class Client:
    """A small JSON wrapper over a sync WebSocket connection."""

    def __init__(self, connection: ClientConnection) -> None:
        self.connection = connection

    def send_json(self, value: Any) -> None:
        self.connection.send(json.dumps(value))

    def send_text(self, text: str) -> None:
        self.connection.send(text)

    def receive_json(self) -> Any:
        return json.loads(self.connection.recv(timeout=10))


def _until(ws: Any, kind: str, limit: int = 200) -> dict[str, Any]:
    for _ in range(limit):
        message: dict[str, Any] = ws.receive_json()
        if message["type"] == kind:
            return message
    raise AssertionError(f"no {kind} message")


def test_ticks_and_trades_arrive_numbered(served: InProcess) -> None:
    with served.ws() as connection:
        ws = Client(connection)
        ws.send_json({"op": "subscribe", "account": "demo", "ticks": ["EURUSD"]})
        subscribed = _until(ws, "subscribed")
        tick = _until(ws, "tick")
        assert tick["id"] == subscribed["id"] == "s1"
        assert tick["data"]["symbol"] == "EURUSD"
        assert tick["seq"] > subscribed["seq"]
        ws.send_json({"op": "subscribe", "account": "demo", "trades": True})
        _until(ws, "subscribed")
        buy = {"symbol": "EURUSD", "side": "buy", "volume": 0.1}
        placed = served.post("/v1/accounts/demo/orders", buy, key="stream-buy")
        assert placed.status_code == 201
        trade = _until(ws, "trade", limit=2000)
        assert trade["data"]["kind"] in ("order_placed", "deal_added", "position_opened")
        heartbeat = _until(ws, "heartbeat", limit=2000)
        seqs = [tick["seq"], trade["seq"], heartbeat["seq"]]
        assert seqs == sorted(seqs)
        ws.send_json({"op": "unsubscribe", "id": "s1"})
        assert _until(ws, "unsubscribed", limit=2000)["id"] == "s1"
        ws.send_json({"op": "ping"})
        _until(ws, "pong", limit=2000)


def test_a_key_can_come_in_the_first_message(served: InProcess) -> None:
    with served.ws(key=None) as connection:
        ws = Client(connection)
        ws.send_json({"op": "auth", "key": KEY})
        ws.send_json({"op": "ping"})
        assert _until(ws, "pong")["seq"] >= 1


def test_no_key_or_a_bad_key_is_refused(served: InProcess) -> None:
    with served.ws(key=None) as connection:
        ws = Client(connection)
        ws.send_json({"op": "auth", "key": "mg_wrong"})
        refused = ws.receive_json()
        with pytest.raises(websockets.ConnectionClosed) as closed:
            connection.recv(timeout=5)
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 1008
    assert (refused["type"], refused["problem"]["status"]) == ("error", 401)
    assert "mg_wrong" not in json.dumps(refused)


def test_silence_instead_of_a_key_is_closed(served: InProcess) -> None:
    with served.ws(key=None) as connection, pytest.raises(websockets.ConnectionClosed):
        connection.recv(timeout=5)


def test_bad_messages_get_errors_and_the_connection_stays(served: InProcess) -> None:
    with served.ws() as connection:
        ws = Client(connection)
        ws.send_text("not json")
        assert _until(ws, "error")["problem"]["field"] == "message"
        for bad in ({"op": "dance"}, {"op": "subscribe", "account": "demo"},
                    {"op": "subscribe", "account": "nope", "ticks": ["EURUSD"]},
                    {"op": "unsubscribe", "id": "s99"}, ["op"]):  # fmt: skip
            ws.send_json(bad)
            assert _until(ws, "error")["problem"]["status"] in (404, 422)
        ws.send_json({"op": "ping"})
        _until(ws, "pong")


def test_a_real_websocket_client_against_the_server_process(service: Served) -> None:
    async def main() -> list[dict[str, Any]]:
        url = service.base.replace("http://", "ws://") + "/v1/stream"
        async with websockets.connect(url, additional_headers={"X-API-Key": service.key}) as ws:
            await ws.send(json.dumps({"op": "subscribe", "account": "demo", "ticks": ["EURUSD"]}))
            received = []
            while len(received) < 3:
                message = json.loads(await asyncio.wait_for(ws.recv(), 10))
                received.append(message)
            return received

    messages = asyncio.run(main())
    assert messages[0]["type"] == "subscribed"
    assert any(m["type"] == "tick" for m in messages[1:])
    assert [m["seq"] for m in messages] == sorted(m["seq"] for m in messages)


class StuckSocket:
    """A client that never reads: Starlette's WebSocket interface, with sends that hang."""

    def __init__(self) -> None:
        self.headers = {"x-api-key": KEY}
        self.query_params: dict[str, str] = {}
        self.closed: tuple[int, str] | None = None
        self.never = asyncio.Event()

    async def accept(self) -> None:
        return None

    async def receive_json(self) -> Any:
        await self.never.wait()

    async def send_json(self, value: Any) -> None:
        await self.never.wait()

    async def send_text(self, value: str) -> None:
        await self.never.wait()

    async def close(self, code: int, reason: str) -> None:
        self.closed = (code, reason)


def read_gateway(data_dir: Path) -> Gateway:
    """A gateway (not started) on the default settings with one ``read`` key: :data:`KEY`."""
    keys = (ApiKeySettings(name="all", hash=hash_api_key(KEY), scopes=frozenset({"read"})),)
    settings = default_settings().model_copy(update={"data_dir": data_dir, "api_keys": keys})
    return Gateway.build(settings, os.environ)


def test_a_client_too_slow_to_read_is_dropped(tmp_path: Path) -> None:
    gateway = read_gateway(tmp_path)
    socket = StuckSocket()

    async def main() -> None:
        options = StreamOptions(heartbeat_s=0.001, outbox=3)
        await asyncio.wait_for(serve_stream(socket, gateway, options), 10)  # type: ignore[arg-type]
        await gateway.stop()

    asyncio.run(main())
    assert socket.closed is not None
    assert socket.closed[0] == 1013


def test_a_tick_s_json_is_made_once_and_is_the_price_s() -> None:
    price = Price("EURUSD", 1.08512, 1.08524, 0.0, 0, 1_767_693_599_803, 6)
    text = stream._tick_fields(price)
    assert json.loads("{" + text + "}") == {"data": jsonable_encoder(price)}
    assert stream._tick_fields(Price(*dataclasses.astuple(price))) is text  # cached by value
