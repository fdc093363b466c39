"""``/v1/stream`` bars: a real WebSocket over loopback against the service on a uvicorn thread.

The demo account's simulated clock starts a few seconds before 10:00 server time (a Tuesday:
the market is open on any real day), so an M1 bar closes soon after the test subscribes, and
``GET .../rates`` is asked for the same bar afterwards.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from mt5gate.service.config import AccountSettings
from mt5gate.sim import RealClock, SimTerminal
from mt5gate.sim.clock import server_ms_of
from tests.service import conftest
from tests.service.test_stream import KEY, Client, InProcess, _until

#: Server time the simulated clock starts at: six seconds before the 09:59 M1 bar closes.
JUST_BEFORE_TEN = "2026-01-06T09:59:54"
BAR_FIELDS = ("time", "open", "high", "low", "close", "tick_volume", "spread", "real_volume")


def terminal_before_ten(_: AccountSettings | None = None) -> SimTerminal:
    """``open_market_terminal``, started at ``JUST_BEFORE_TEN``."""
    start = server_ms_of(datetime.fromisoformat(JUST_BEFORE_TEN))
    return SimTerminal(clock=RealClock(start_ms=start))


@pytest.fixture
def served(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[InProcess]:
    monkeypatch.setattr(conftest, "open_market_terminal", terminal_before_ten)
    service = InProcess(tmp_path)
    yield service
    service.stop()


def rates(served: InProcess, timeframe: str, count: int = 10) -> dict[int, dict[str, Any]]:
    """``GET /v1/accounts/demo/symbols/EURUSD/rates`` by open time."""
    answer = httpx.get(
        f"http://127.0.0.1:{served.port}/v1/accounts/demo/symbols/EURUSD/rates",
        params={"timeframe": timeframe, "count": count},
        headers={"X-API-Key": KEY},
        timeout=10,
    )
    assert answer.status_code == 200
    return {row["time"]: row for row in answer.json()}


def bars_until(ws: Client, done: Any, deadline_s: float = 80.0) -> list[dict[str, Any]]:
    """Every message until ``done(bars so far)`` holds (or the deadline passes)."""
    messages: list[dict[str, Any]] = []
    end = time.monotonic() + deadline_s
    while not done([m for m in messages if m["type"] == "bar"]):
        assert time.monotonic() < end, f"not in time: {messages[-5:]}"
        messages.append(ws.receive_json())
    return messages


def test_a_bar_closes_once_in_order_with_the_values_of_get_rates(served: InProcess) -> None:
    with served.ws() as connection:
        ws = Client(connection)
        ws.send_json({"op": "subscribe", "account": "demo",
                      "bars": {"symbol": "EURUSD", "timeframe": "M1"}})  # fmt: skip
        subscribed = _until(ws, "subscribed")
        assert subscribed["bars"] == [{"symbol": "EURUSD", "timeframe": "M1"}]
        messages = bars_until(ws, lambda bars: any(b["data"]["closed"] for b in bars))
        closed = next(m for m in messages if m["type"] == "bar" and m["data"]["closed"])
        # keep reading a while: the closed bar must not come again
        messages += bars_until(ws, lambda bars: len(bars) >= 3, deadline_s=20)
    bars = [m for m in messages if m["type"] == "bar"]
    assert all(b["id"] == subscribed["id"] and b["account"] == "demo" for b in bars)
    data = [b["data"] for b in bars]
    assert all((d["symbol"], d["timeframe"]) == ("EURUSD", "M1") for d in data)
    assert [d["time"] for d in data] == sorted(d["time"] for d in data)  # time order
    assert [d["time"] for d in data if d["closed"]] == [closed["data"]["time"]]  # once
    assert all(d["time"] > closed["data"]["time"] for d in data[data.index(closed["data"]) + 1 :])
    assert [m["seq"] for m in messages] == sorted(m["seq"] for m in messages)
    truth = rates(served, "M1")[closed["data"]["time"]]
    assert {f: closed["data"][f] for f in BAR_FIELDS} == truth


def test_a_list_of_bars_and_timeframes_by_name_or_number(served: InProcess) -> None:
    with served.ws() as connection:
        ws = Client(connection)
        ws.send_json({"op": "subscribe", "account": "demo", "bars": [
            {"symbol": "EURUSD", "timeframe": "h1"}, {"symbol": "GBPUSD", "timeframe": 5},
        ]})  # fmt: skip
        subscribed = _until(ws, "subscribed")
        assert subscribed["bars"] == [{"symbol": "EURUSD", "timeframe": "H1"},
                                      {"symbol": "GBPUSD", "timeframe": "M5"}]  # fmt: skip
        messages = bars_until(ws, lambda bars: {b["data"]["symbol"] for b in bars} == {
            "EURUSD", "GBPUSD"}, deadline_s=20)  # fmt: skip
    first = {m["data"]["symbol"]: m["data"] for m in reversed(messages) if m["type"] == "bar"}
    assert first["EURUSD"]["timeframe"] == "H1"
    assert first["GBPUSD"]["timeframe"] == "M5"
    h1 = rates(served, "H1", count=2)
    assert first["EURUSD"]["time"] in h1  # the forming H1 bar GET .../rates knows


def test_bad_timeframes_and_symbols_are_errors_naming_the_field(served: InProcess) -> None:
    with served.ws() as connection:
        ws = Client(connection)
        for frame in ("M7", 7, "", "16385x"):
            ws.send_json({"op": "subscribe", "account": "demo",
                          "bars": {"symbol": "EURUSD", "timeframe": frame}})  # fmt: skip
            problem = _until(ws, "error")["problem"]
            assert (problem["status"], problem["field"]) == (422, "bars.timeframe")
            assert "one of M1, M2" in problem["detail"]  # the rule GET .../rates gives
        bad_bars = ([], "EURUSD", [{"timeframe": "M1"}], [{"symbol": "EURUSD"}] * 65,
                    {"symbol": "EURUSD", "timeframe": True})  # fmt: skip
        for bars in bad_bars:
            ws.send_json({"op": "subscribe", "account": "demo", "bars": bars})
            problem = _until(ws, "error")["problem"]
            assert (problem["status"], problem["field"]) == (422, "bars")
        ws.send_json({"op": "subscribe", "account": "demo", "bars": {"symbol": " "}})
        assert _until(ws, "error")["problem"]["field"] == "bars.symbol"
        ws.send_json({"op": "subscribe", "account": "demo", "ticks": ["EURUSX"]})
        ticks_problem = _until(ws, "error")["problem"]
        ws.send_json({"op": "subscribe", "account": "demo",
                      "bars": {"symbol": "EURUSX", "timeframe": "M1"}})  # fmt: skip
        bars_problem = _until(ws, "error")["problem"]
        assert ticks_problem["status"] == 404
        assert bars_problem == ticks_problem  # the same not-found problem as ticks
        ws.send_json({"op": "ping"})
        _until(ws, "pong")


def test_unsubscribe_stops_the_bars(served: InProcess) -> None:
    with served.ws() as connection:
        ws = Client(connection)
        ws.send_json({"op": "subscribe", "account": "demo",
                      "bars": {"symbol": "EURUSD", "timeframe": "M1"}})  # fmt: skip
        ident = _until(ws, "subscribed")["id"]
        _until(ws, "bar")
        _until(ws, "bar")  # the forming bar changes with the ticks: bars keep coming
        ws.send_json({"op": "unsubscribe", "id": ident})
        messages: list[dict[str, Any]] = []
        for _ in range(500):
            message = ws.receive_json()
            messages.append(message)
            if message["type"] == "unsubscribed":
                break
        after: list[dict[str, Any]] = []
        end = time.monotonic() + 2.5
        while time.monotonic() < end:
            after.append(ws.receive_json())
    assert messages[-1] == {"seq": messages[-1]["seq"], "type": "unsubscribed", "id": ident}
    assert [m for m in after if m["type"] == "bar"] == []
    assert any(m["type"] == "heartbeat" for m in after)
