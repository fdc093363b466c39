"""``/v1/stream?batch=true``: every frame a JSON array of messages, each numbered as without
batching; the messages waiting when the sender runs share a frame, within ``batch_max`` and
``batch_bytes``.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import websockets
from fastapi import WebSocketDisconnect
from websockets.sync.client import ClientConnection, connect

from mt5gate.service.stream import StreamOptions, serve_stream
from tests.service.conftest import Served, start_service
from tests.service.test_stream import KEY, InProcess, read_gateway


@pytest.fixture
def served(tmp_path: Path) -> Iterator[InProcess]:
    service = InProcess(tmp_path)
    yield service
    service.stop()


def _connect(served: InProcess, query: str, key: str | None = KEY) -> ClientConnection:
    headers = {"X-API-Key": key} if key else {}
    url = f"ws://127.0.0.1:{served.port}/v1/stream{query}"
    return connect(url, additional_headers=headers)


def _frame(connection: ClientConnection) -> list[dict[str, Any]]:
    frame = json.loads(connection.recv(timeout=10))
    assert isinstance(frame, list), f"not an array: {frame!r}"
    assert frame, "an empty array"
    return frame


def test_every_frame_is_an_array_and_seq_runs_on_across_frames(served: InProcess) -> None:
    with _connect(served, "?batch=true") as connection:
        connection.send(json.dumps({"op": "subscribe", "account": "demo", "ticks": ["EURUSD"]}))
        messages: list[dict[str, Any]] = []
        while sum(m["type"] == "tick" for m in messages) < 3:
            messages += _frame(connection)
        connection.send(json.dumps({"op": "ping"}))
        while messages[-1]["type"] != "pong":
            messages += _frame(connection)
    assert [m["seq"] for m in messages] == list(range(1, len(messages) + 1))
    assert messages[0] == {"seq": 1, "type": "subscribed", "id": "s1", "account": "demo",
                           "ticks": ["EURUSD"]}  # fmt: skip
    tick = next(m for m in messages if m["type"] == "tick")
    assert (tick["id"], tick["account"], tick["data"]["symbol"]) == ("s1", "demo", "EURUSD")


@pytest.mark.parametrize("query", ["", "?batch=false", "?batch=0"])
def test_without_batch_a_frame_is_one_message(served: InProcess, query: str) -> None:
    with _connect(served, query) as connection:
        connection.send(json.dumps({"op": "ping"}))
        assert json.loads(connection.recv(timeout=10)) == {"seq": 1, "type": "pong"}


@pytest.mark.parametrize("value", ["yes", "", "2", "TRUEISH"])
def test_a_bad_batch_value_is_refused_naming_the_parameter(served: InProcess, value: str) -> None:
    with _connect(served, f"?batch={value}") as connection:
        refused = json.loads(connection.recv(timeout=10))
        with pytest.raises(websockets.ConnectionClosed) as closed:
            connection.recv(timeout=5)
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 1008
    assert refused["seq"] == 0
    assert refused["type"] == "error"
    assert (refused["problem"]["status"], refused["problem"]["field"]) == (422, "batch")


def test_a_refused_key_is_answered_in_an_array_too(served: InProcess) -> None:
    with _connect(served, "?batch=1", key="mg_wrong") as connection:
        refused = _frame(connection)
        with pytest.raises(websockets.ConnectionClosed):
            connection.recv(timeout=5)
    assert [(m["seq"], m["type"], m["problem"]["status"]) for m in refused] == [(0, "error", 401)]
    assert "mg_wrong" not in json.dumps(refused)


class ScriptedSocket:
    """Starlette's WebSocket interface for one client that sends ``pings`` pings at once and
    records every frame it is sent; it leaves once it has received ``pings`` messages."""

    def __init__(self, pings: int, query: dict[str, str]) -> None:
        self.headers = {"x-api-key": KEY}
        self.query_params = query
        self.frames: list[Any] = []
        self.inbox = [json.dumps({"op": "ping"})] * pings
        self.pings = pings
        self.all_in = asyncio.Event()

    async def accept(self) -> None:
        return None

    async def receive_json(self) -> Any:
        if self.inbox:
            return json.loads(self.inbox.pop())
        await self.all_in.wait()
        raise WebSocketDisconnect(1000)

    async def send_text(self, text: str) -> None:
        self.frames.append(json.loads(text))
        received = sum(len(f) if isinstance(f, list) else 1 for f in self.frames)
        if received >= self.pings:
            self.all_in.set()

    async def close(self, code: int, reason: str) -> None:
        return None


def _serve(tmp_path: Path, socket: ScriptedSocket, options: StreamOptions) -> None:
    gateway = read_gateway(tmp_path)

    async def main() -> None:
        try:
            await asyncio.wait_for(serve_stream(socket, gateway, options), 10)  # type: ignore[arg-type]
        finally:
            await gateway.stop()

    asyncio.run(main())


def test_waiting_messages_share_a_frame_up_to_batch_max(tmp_path: Path) -> None:
    socket = ScriptedSocket(10, {"batch": "true"})
    _serve(tmp_path, socket, StreamOptions(batch_max=4))
    assert [len(frame) for frame in socket.frames] == [4, 4, 2]
    assert [m["seq"] for frame in socket.frames for m in frame] == list(range(1, 11))
    assert all(m["type"] == "pong" for frame in socket.frames for m in frame)


def test_a_frame_takes_no_more_once_it_holds_batch_bytes(tmp_path: Path) -> None:
    pong = len('{"seq":1,"type":"pong"}')  # seq 1 to 9
    socket = ScriptedSocket(10, {"batch": "true"})
    _serve(tmp_path, socket, StreamOptions(batch_bytes=2 * pong))
    assert [len(frame) for frame in socket.frames] == [2, 2, 2, 2, 2]
    alone = ScriptedSocket(3, {"batch": "true"})
    _serve(tmp_path, alone, StreamOptions(batch_bytes=1))
    assert alone.frames == [[{"seq": n, "type": "pong"}] for n in (1, 2, 3)]


def test_without_batch_the_same_burst_is_one_frame_per_message(tmp_path: Path) -> None:
    socket = ScriptedSocket(10, {})
    _serve(tmp_path, socket, StreamOptions(batch_max=4))
    assert [m["seq"] for m in socket.frames] == list(range(1, 11))


@pytest.mark.parametrize("name", ["batch_max", "batch_bytes", "outbox", "buffer", "heartbeat_s"])
def test_stream_options_must_be_positive(name: str) -> None:
    with pytest.raises(ValueError, match=f"StreamOptions.{name} must be > 0"):
        StreamOptions(**{name: 0})


def test_compression_is_offered_by_default_and_can_be_declined(
    service: Served, tmp_path: Path
) -> None:
    """``stream_compression`` (``MT5GATE_STREAM_COMPRESSION``) decides whether the real
    ``mt5gate serve`` accepts the client's permessage-deflate offer; the stream works either way."""
    plain = start_service(tmp_path, env={"MT5GATE_STREAM_COMPRESSION": "false"})
    try:
        agreed = {}
        for name, served in (("default", service), ("declined", plain)):
            url = served.base.replace("http://", "ws://") + "/v1/stream?batch=true"
            with connect(url, additional_headers={"X-API-Key": served.key}) as connection:
                assert connection.response is not None
                agreed[name] = connection.response.headers.get("Sec-WebSocket-Extensions", "")
                connection.send(json.dumps({"op": "ping"}))
                assert _frame(connection) == [{"seq": 1, "type": "pong"}]
    finally:
        plain.stop()
    assert agreed["default"].startswith("permessage-deflate")
    assert agreed["declined"] == ""
