"""``/v1/stream`` on a service with a ``[bus]``, in process (so coverage sees it), against a real
nats-server: ticks and trade events come from the bus, trades carry ``stream_seq`` and resume
with ``after``; the health document has a ``bus`` check, and a bus that is down only warns.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.sync.client import ClientConnection, connect

from mt5gate.service.config import BusSettings
from tests.servers.nats import NatsServer
from tests.service import conftest

KEY = "mg_bus-stream-test-key-0123456789abcdef"


class Service(conftest.InProcess):
    """The app on a uvicorn thread with a bus."""

    def __init__(self, tmp_path: Path, url: str) -> None:
        super().__init__(tmp_path, KEY, bus=BusSettings(url=url, interest_ttl_s=1.5))

    def ws(self) -> ClientConnection:
        return connect(f"ws://127.0.0.1:{self.port}/v1/stream",
                       additional_headers={"X-API-Key": KEY})  # fmt: skip

    def order(self, key: str) -> httpx.Response:
        body = {"symbol": "BTCUSD", "side": "buy", "volume": 0.01}
        headers = {"X-API-Key": KEY, "Idempotency-Key": key}
        url = f"http://127.0.0.1:{self.port}/v1/accounts/demo/orders"
        return httpx.post(url, json=body, headers=headers, timeout=10)

    def health(self) -> dict[str, Any]:
        body: dict[str, Any] = httpx.get(f"http://127.0.0.1:{self.port}/v1/health",
                                         timeout=10).json()  # fmt: skip
        return body


@pytest.fixture
def service(tmp_path: Path, nats_server: NatsServer) -> Iterator[Service]:
    served = Service(tmp_path / "data", nats_server.url)
    yield served
    served.stop()


def send(ws: ClientConnection, message: dict[str, Any]) -> None:
    ws.send(json.dumps(message))


def until(ws: ClientConnection, kind: str, limit: int = 500) -> dict[str, Any]:
    for _ in range(limit):
        message: dict[str, Any] = json.loads(ws.recv(timeout=15))
        if message["type"] == kind:
            return message
    raise AssertionError(f"no {kind} message")


def trades(ws: ClientConnection, count: int) -> list[dict[str, Any]]:
    return [until(ws, "trade") for _ in range(count)]


def test_ticks_and_trades_come_from_the_bus_and_resume_after_a_stream_seq(
    service: Service,
) -> None:
    with service.ws() as ws:
        send(ws, {"op": "subscribe", "account": "demo", "ticks": ["BTCUSD"]})
        assert until(ws, "subscribed")["ticks"] == ["BTCUSD"]
        assert until(ws, "tick")["data"]["symbol"] == "BTCUSD"
        send(ws, {"op": "subscribe", "account": "demo", "trades": True})
        until(ws, "subscribed")
        assert service.order("bus-1").status_code == 201
        first = trades(ws, 3)  # INTENT and SENT in one write, then ACKNOWLEDGED
    assert [t["data"]["kind"] for t in first] == ["INTENT", "SENT", "ACKNOWLEDGED"]
    assert first[0]["data"]["idempotency_key"] == "bus-1"
    assert len({t["data"]["client_id"] for t in first}) == 1
    seqs = [t["stream_seq"] for t in first]
    assert seqs == sorted(seqs)
    assert service.order("bus-2").status_code == 201
    with service.ws() as ws:  # a new connection resumes after the first event it saw
        send(ws, {"op": "subscribe", "account": "demo", "trades": True, "after": seqs[0]})
        assert until(ws, "subscribed")["after"] == seqs[0]
        again = trades(ws, 5)
    assert [t["stream_seq"] for t in again][:2] == seqs[1:]
    assert [t["data"]["kind"] for t in again] == ["SENT", "ACKNOWLEDGED", "INTENT", "SENT",
                                                 "ACKNOWLEDGED"]  # fmt: skip
    assert again[2]["data"]["idempotency_key"] == "bus-2"
    health = service.health()
    assert health["checks"]["bus"][0]["status"] == "pass"


def test_bad_subscriptions_get_errors(service: Service) -> None:
    with service.ws() as ws:
        send(ws, {"op": "subscribe", "account": "demo", "trades": True, "after": -1})
        assert until(ws, "error")["problem"]["field"] == "after"
        send(ws, {"op": "subscribe", "account": "demo", "ticks": ["BTCUSD"], "after": 3})
        assert until(ws, "error")["problem"]["field"] == "after"
        send(ws, {"op": "subscribe", "account": "demo", "ticks": ["NOSUCH"]})
        until(ws, "subscribed")
        assert until(ws, "error")["problem"]["status"] == 404


def test_a_bus_that_is_down_warns_and_orders_still_work(tmp_path: Path) -> None:
    down = NatsServer(tmp_path / "store")  # never started
    served = Service(tmp_path / "data", down.url)
    try:
        assert served.order("no-bus").status_code == 201
        deadline = time.monotonic() + 10
        while served.health()["checks"]["bus"][0]["status"] != "warn":
            assert time.monotonic() < deadline
            time.sleep(0.1)
        assert "cannot connect" in served.health()["checks"]["bus"][0]["output"]
    finally:
        served.stop()
