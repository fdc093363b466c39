"""Two ``mt5gate serve`` processes with a ``[bus]``, one owner and one waiting, on one data
directory (one SQLite journal, one lease per account), and a real nats-server.

A WebSocket client on the replica that does not own the account receives its ticks and the
trade events of orders placed through the owner. The owner is killed (SIGKILL); the second
process takes the account over, more orders go through it, and the client, which reconnects
with ``after`` (the last ``stream_seq`` it saw), has seen every journal event exactly once, in
journal order.
"""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path
from typing import Any

import httpx
from websockets.sync.client import ClientConnection, connect

from tests.servers.nats import NatsServer
from tests.service.conftest import Served, start_service


def ws(served: Served) -> ClientConnection:
    url = served.base.replace("http://", "ws://") + "/v1/stream"
    return connect(url, additional_headers={"X-API-Key": served.key})


def order(served: Served, key: str) -> None:
    body = {"symbol": "BTCUSD", "side": "buy", "volume": 0.01}
    with served.client(headers={"Idempotency-Key": key}) as client:
        answer = client.post("/v1/accounts/demo/orders", json=body)
    assert answer.status_code == 201, answer.text


def journal_seqs(data_dir: Path) -> list[int]:
    """Every event of the demo account in the journal, read-only."""
    uri = f"file:{data_dir / 'demo-orders.db'}?mode=ro"
    with sqlite3.connect(uri, uri=True) as db:
        rows = db.execute("SELECT seq FROM events WHERE login = 5001 ORDER BY seq").fetchall()
    return [int(seq) for (seq,) in rows]


class Reader:
    """The WebSocket client: its trade events so far, and the last stream sequence seen."""

    def __init__(self) -> None:
        self.trades: list[dict[str, Any]] = []
        self.ticks = 0

    @property
    def after(self) -> int:
        return self.trades[-1]["stream_seq"] if self.trades else 0

    def subscribe(self, connection: ClientConnection) -> None:
        for message in ({"op": "subscribe", "account": "demo", "ticks": ["BTCUSD"]},
                        {"op": "subscribe", "account": "demo", "trades": True,
                         "after": self.after}):  # fmt: skip
            connection.send(json.dumps(message))

    def read_until(self, connection: ClientConnection, trades: int, ticks: int = 0) -> None:
        deadline = time.monotonic() + 45
        while len(self.trades) < trades or self.ticks < ticks:
            assert time.monotonic() < deadline, f"{len(self.trades)} trades, {self.ticks} ticks"
            message = json.loads(connection.recv(timeout=30))
            if message["type"] == "trade":
                self.trades.append(message)
            elif message["type"] == "tick":
                self.ticks += 1
            assert message["type"] != "error", message


def test_a_client_on_another_replica_sees_every_event_once_across_a_failover(
    tmp_path: Path, nats_server: NatsServer
) -> None:
    data_dir = tmp_path / "data"
    env = {"MT5GATE_BUS_URL": nats_server.url}
    owner = start_service(data_dir, env=env)
    second: Served | None = None
    try:
        second = start_service(data_dir, env=env, wait_ready=False)
        assert httpx.get(second.base + "/readyz", timeout=5).status_code == 503  # it waits
        reader = Reader()
        with ws(second) as connection:
            reader.subscribe(connection)
            reader.read_until(connection, trades=0, ticks=2)  # ticks polled by the owner
            for n in range(3):
                order(owner, f"before-{n}")
            reader.read_until(connection, trades=5)  # then the client goes away
        owner.process.kill()  # SIGKILL: no release of the lease, no goodbye
        owner.process.wait(10)
        deadline = time.monotonic() + 30
        while httpx.get(second.base + "/readyz", timeout=5).status_code != 200:
            assert time.monotonic() < deadline, second.output()[-3000:]
            time.sleep(0.2)
        for n in range(3):
            order(second, f"after-{n}")
        expected = journal_seqs(data_dir)
        with ws(second) as connection:  # resumes after the last stream_seq it saw
            reader.subscribe(connection)
            reader.read_until(connection, trades=len(expected), ticks=reader.ticks + 2)
        seen = [t["data"]["journal_seq"] for t in reader.trades]
        assert seen == expected  # every journal event, once, in order
        stream = [t["stream_seq"] for t in reader.trades]
        assert stream == sorted(set(stream))
        assert len(expected) == 18  # 6 orders: INTENT, SENT, ACKNOWLEDGED each
    finally:
        for served in (owner, second):
            if served is not None:
                served.stop()
