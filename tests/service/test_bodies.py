"""Trading and admin bodies are strict about JSON types (audit A4).

``"volume": "0.01"`` once executed and ``"volume": true`` became a 1-lot order at the broker:
pydantic's lax mode turned strings and booleans into numbers. Now a number field takes a JSON
number (an integer too), an integer field a JSON integer, and anything else is 422 naming the
field, with nothing sent to the broker.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.service.test_app import ACCOUNT, serving

BUY = {"symbol": "EURUSD", "side": "buy", "volume": 0.01}
LIMIT = {**BUY, "kind": "limit", "price": 1.0}

#: (method, path under the account, body, the field the problem must name)
WRONG_TYPES: list[tuple[str, str, Any, str]] = [
    ("POST", "/orders", {**BUY, "volume": "0.01"}, "volume"),
    ("POST", "/orders", {**BUY, "volume": True}, "volume"),
    ("POST", "/orders", {**BUY, "volume": None}, "volume"),
    ("POST", "/orders", {**BUY, "sl": "1"}, "sl"),
    ("POST", "/orders", {**BUY, "tp": False}, "tp"),
    ("POST", "/orders", {**LIMIT, "price": "1.0"}, "price"),
    ("POST", "/orders", {**LIMIT, "kind": "stop_limit", "stop_limit": True}, "stop_limit"),
    ("POST", "/orders", {**BUY, "deviation": True}, "deviation"),
    ("POST", "/orders", {**BUY, "deviation": 2.5}, "deviation"),
    ("POST", "/orders", {**BUY, "deviation": "20"}, "deviation"),
    ("POST", "/orders", {**BUY, "filling": True}, "filling"),
    ("POST", "/orders", {**LIMIT, "expiration_msc": 1.5e12}, "expiration_msc"),
    ("POST", "/orders", {**LIMIT, "expiration_msc": "1800000000000"}, "expiration_msc"),
    ("POST", "/orders", {**BUY, "comment": 7}, "comment"),
    ("POST", "/orders/check", {**BUY, "volume": "0.01"}, "volume"),
    ("POST", "/positions/1/close", {"volume": "0.1"}, "volume"),
    ("POST", "/positions/1/close", {"volume": True}, "volume"),
    ("POST", "/positions/1/close", {"deviation": 1e1}, "deviation"),
    ("PATCH", "/positions/1", {"sl": "1"}, "sl"),
    ("PATCH", "/positions/1", {"tp": True}, "tp"),
    ("POST", "/halt", {"reason": 5}, "reason"),
]


def _send(tmp_path: Path, requests: list[tuple[str, str, dict[str, Any]]]) -> tuple[
    list[httpx.Response], list[Any]
]:  # fmt: skip
    """Each request to the demo account, with its own Idempotency-Key; then the positions."""

    async def main() -> tuple[list[httpx.Response], list[Any]]:
        async with serving(tmp_path) as (_, http):
            answers = []
            for n, (method, path, options) in enumerate(requests):
                sent = {**options, "headers": {"Idempotency-Key": f"body-{n}",
                                               **options.get("headers", {})}}  # fmt: skip
                answers.append(await http.request(method, ACCOUNT + path, **sent))
            return answers, (await http.get(ACCOUNT + "/positions")).json()

    return asyncio.run(main())


def test_wrong_json_types_are_422_naming_the_field_and_send_nothing(tmp_path: Path) -> None:
    answers, positions = _send(tmp_path, [(m, p, {"json": b}) for m, p, b, _ in WRONG_TYPES])
    for answer, (method, path, body, field) in zip(answers, WRONG_TYPES, strict=True):
        where = (method, path, body, answer.text)
        assert (answer.status_code, answer.headers["content-type"]) == (
            422, "application/problem+json",
        ), where  # fmt: skip
        problem = answer.json()
        assert (problem["field"], problem["error"]) == (field, "ValidationError"), where
        assert problem["errors"] == [{"field": field, "rule": problem["rule"]}], where
    assert positions == []  # none of them reached the broker


@pytest.mark.parametrize(
    "raw",
    [b'{"symbol": "EURUSD", "side": "buy", "volume": 1e400}',  # overflows to infinity
     b'{"symbol": "EURUSD", "side": "buy", "volume": NaN}',
     b'{"symbol": "EURUSD", "side": "buy", "volume": 0.01, "deviation": 1e23}',
     b'{"symbol": "EURUSD", "side": "buy", "volume": 0.01, "deviation": 100000000000000000000}'],
)  # fmt: skip
def test_numbers_that_overflow_are_422(tmp_path: Path, raw: bytes) -> None:
    request = {"content": raw, "headers": {"content-type": "application/json"}}
    (answer,), positions = _send(tmp_path, [("POST", "/orders", request)])
    assert answer.status_code == 422, answer.text
    assert answer.json()["field"] in ("volume", "deviation")
    assert positions == []


def test_json_integers_are_numbers(tmp_path: Path) -> None:
    """An integer where a number is expected is that number: 1 lot is 1.0 lot."""
    answers, positions = _send(tmp_path, [
        ("POST", "/orders", {"json": {**BUY, "volume": 1, "tp": 2, "deviation": 5}}),
        ("POST", "/orders/check", {"json": {**BUY, "volume": 1}}),
    ])  # fmt: skip
    assert [a.status_code for a in answers] == [201, 200], [a.text for a in answers]
    assert answers[0].json()["volume"] == 1.0
    assert [p["volume"] for p in positions] == [1.0]
