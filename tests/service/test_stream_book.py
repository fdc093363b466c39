"""``/v1/stream`` depth of market: a real WebSocket over loopback against the service on a
uvicorn thread. How often the terminal's book was added and released is read from the
service's own metrics (terminal calls by function)."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.service.test_stream import Client, InProcess, _until


@pytest.fixture
def served(tmp_path: Path) -> Iterator[InProcess]:
    service = InProcess(tmp_path)
    yield service
    service.stop()


def calls(served: InProcess, function: str) -> int:
    """How many ``function`` calls the demo account's session made (its metrics)."""
    text = served.gateway.metrics.render()[0].decode()
    pattern = (r'mt5gate_terminal_call_duration_seconds_count\{account="demo",'
               rf'function="{function}",outcome="ok"\}} (\S+)')  # fmt: skip
    found = re.search(pattern, text)
    return 0 if found is None else int(float(found.group(1)))


def wait_for(condition: Any, timeout_s: float = 10.0) -> None:
    end = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < end, "condition not met in time"
        time.sleep(0.05)


def book_of(ws: Client, symbol: str) -> dict[str, Any]:
    """The next book message of ``symbol``."""
    for _ in range(2000):
        message = _until(ws, "book")
        if message["data"]["symbol"] == symbol:
            return message
    raise AssertionError(f"no book of {symbol}")


def subscribe(ws: Client, book: Any) -> str:
    ws.send_json({"op": "subscribe", "account": "demo", "book": book})
    ident: str = _until(ws, "subscribed")["id"]
    return ident


def test_the_book_arrives_best_first_and_again_when_it_changes(served: InProcess) -> None:
    with served.ws() as connection:
        ws = Client(connection)
        ident = subscribe(ws, "EURUSD")
        first, second = _until(ws, "book"), _until(ws, "book")
    assert first["id"] == second["id"] == ident
    assert first["account"] == "demo"
    data = first["data"]
    assert set(data) == {"symbol", "time_ms", "bids", "asks"}
    assert data["symbol"] == "EURUSD"
    assert isinstance(data["time_ms"], int)
    bids, asks = data["bids"], data["asks"]
    assert bids
    assert asks
    assert all(len(level) == 2 for level in bids + asks)  # [price, volume]
    assert [p for p, _ in bids] == sorted((p for p, _ in bids), reverse=True)
    assert [p for p, _ in asks] == sorted(p for p, _ in asks)
    assert bids[0][0] < asks[0][0]
    assert (second["data"]["bids"], second["data"]["asks"]) != (bids, asks)  # a change
    assert second["seq"] > first["seq"]


def test_add_once_per_symbol_release_after_the_last_subscriber(served: InProcess) -> None:
    added, released = calls(served, "market_book_add"), calls(served, "market_book_release")
    with served.ws() as one, served.ws() as two:
        a, b = Client(one), Client(two)
        first = subscribe(a, "EURUSD")
        second = subscribe(a, ["EURUSD", "GBPUSD"])
        other = subscribe(b, "EURUSD")
        book_of(a, "GBPUSD")
        book_of(b, "EURUSD")
        assert calls(served, "market_book_add") == added + 2  # EURUSD and GBPUSD, once each
        for ident in (first, second):
            a.send_json({"op": "unsubscribe", "id": ident})
            _until(a, "unsubscribed")
        wait_for(lambda: calls(served, "market_book_release") == released + 1)  # GBPUSD
        book_of(b, "EURUSD")  # still flows to the other client
        b.send_json({"op": "unsubscribe", "id": other})
        _until(b, "unsubscribed")
        wait_for(lambda: calls(served, "market_book_release") == released + 2)
    time.sleep(0.3)
    assert calls(served, "market_book_add") == added + 2
    assert calls(served, "market_book_release") == released + 2


def test_a_client_that_leaves_releases_its_books(served: InProcess) -> None:
    released = calls(served, "market_book_release")
    with served.ws() as connection:
        ws = Client(connection)
        subscribe(ws, "EURUSD")
        _until(ws, "book")
    wait_for(lambda: calls(served, "market_book_release") == released + 1)


def test_bad_symbols_are_the_same_errors_as_for_ticks(served: InProcess) -> None:
    with served.ws() as connection:
        ws = Client(connection)
        ws.send_json({"op": "subscribe", "account": "demo", "ticks": ["EURUSX"]})
        ticks_problem = _until(ws, "error")["problem"]
        ws.send_json({"op": "subscribe", "account": "demo", "book": "EURUSX"})
        book_problem = _until(ws, "error")["problem"]
        assert ticks_problem["status"] == 404
        assert book_problem == ticks_problem
        for book in ([], 5, [5], ["EURUSD"] * 65, " ", ["EURUSD", "X" * 65]):
            ws.send_json({"op": "subscribe", "account": "demo", "book": book})
            problem = _until(ws, "error")["problem"]
            assert (problem["status"], problem["field"]) == (422, "book")
        ws.send_json({"op": "ping"})
        _until(ws, "pong")


def test_unsubscribe_stops_the_book(served: InProcess) -> None:
    with served.ws() as connection:
        ws = Client(connection)
        ident = subscribe(ws, "EURUSD")
        _until(ws, "book")
        _until(ws, "book")  # it changes with the ticks: books keep coming
        ws.send_json({"op": "unsubscribe", "id": ident})
        assert _until(ws, "unsubscribed")["id"] == ident
        after: list[dict[str, Any]] = []
        end = time.monotonic() + 2.0
        while time.monotonic() < end:
            after.append(ws.receive_json())
    assert [m for m in after if m["type"] == "book"] == []
    assert any(m["type"] == "heartbeat" for m in after)
