"""Answers that tell a client what to do (audit A9).

* An order key blocked because the sweep found its order DUPLICATE (or UNEXPECTED) is 409 with
  the way out, not a retryable 503 a good client would retry forever.
* An account another process owns is 503 with ``Retry-After`` and the owner's epoch (and name,
  when known).
* A trading write without an ``Idempotency-Key`` is 428 by default: a keyless order that times
  out can be neither retried safely nor found again. ``require_idempotency_key = false``
  accepts keyless writes.

The blocked key and the fenced owner are reached through the real pipeline, on the simulator.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx

from mt5gate.errors import MT5OrderBlockedError, MT5OwnershipError, MT5StateError
from mt5gate.orders.ids import ClientOrderId
from mt5gate.service.problems import STATUS_MEANINGS, problem_for
from mt5gate.sim import SimConfig, VirtualClock, server_ms
from mt5gate.sim.terminal import SimTerminal
from mt5gate.terminal.base import TerminalFencedError
from tests.service.test_app import ACCOUNT, serving

PROBLEM = "application/problem+json"
BUY = {"symbol": "EURUSD", "side": "buy", "volume": 0.1}


def _problem(answer: httpx.Response, status: int, error: str) -> dict[str, Any]:
    assert (answer.status_code, answer.headers["content-type"]) == (status, PROBLEM), answer.text
    body: dict[str, Any] = answer.json()
    assert body["error"] == error
    return body


# ---------------------------------------------------------------------- a blocked key


def test_a_key_the_sweep_found_duplicated_is_409_saying_what_to_do(tmp_path: Path) -> None:
    async def main() -> tuple[httpx.Response, httpx.Response]:
        async with serving(tmp_path) as (gateway, http):
            session = gateway.account("demo").session
            keyed = {"Idempotency-Key": "dup-1"}
            placed = await http.post(ACCOUNT + "/orders", json=BUY, headers=keyed)
            ours = ClientOrderId(5001, placed.json()["client_id"])
            # the same id on a second order, sent behind the journal's back (another gateway
            # with its own journal on the same login does this)
            tick = await session.get_price("EURUSD")
            await session.call("order_send", {
                "action": 1, "symbol": "EURUSD", "volume": 0.1, "type": 0, "price": tick.ask,
                "type_filling": 1, "magic": ours.magic,
            })  # fmt: skip
            assert await session.sweep_orders() == ((), (ours.sequence,))
            return placed, await http.post(ACCOUNT + "/orders", json=BUY, headers=keyed)

    placed, again = asyncio.run(main())
    assert placed.status_code == 201
    body = _problem(again, 409, "MT5OrderBlockedError")
    assert "retry-after" not in again.headers  # retrying cannot help
    assert "blocked" in body["detail"]
    assert "mt5gate journal show" in body["detail"]  # what to do
    assert body["title"] == "Order blocked until an operator looks"


def test_the_blocked_and_ownership_problems() -> None:
    blocked = problem_for(MT5OrderBlockedError("the journal is behind the broker"))
    assert (blocked.status, blocked.headers) == (409, {})
    assert "mt5gate journal" in blocked.detail  # the class's hint: what to do
    owned = problem_for(MT5OwnershipError("held elsewhere", owner="gw-b@host2", epoch=8))
    assert (owned.status, owned.headers) == (503, {"Retry-After": "5"})
    assert (owned.extensions["owner"], owned.extensions["epoch"]) == ("gw-b@host2", 8)
    assert "owns the account" in owned.detail
    secret = problem_for(MT5OwnershipError("x", owner="gw token=hunter2 on b", epoch=1))
    assert "hunter2" not in str(secret.body())
    plain = problem_for(MT5StateError("not connected yet"))
    assert (plain.status, plain.headers) == (503, {"Retry-After": "1"})
    assert "owner" not in problem_for(MT5OwnershipError("lease held", epoch=None)).extensions
    assert "blocked" in STATUS_MEANINGS[409]
    assert "another process" in STATUS_MEANINGS[503]
    assert "Idempotency-Key" in STATUS_MEANINGS[428]


# ---------------------------------------------------------------------- another owner


class FencedHost(SimTerminal):
    """A simulator behind a terminal host that a newer owner of the account fenced (epoch 7):
    like the bridge's server after a takeover, it refuses this process's orders."""

    def order_send(self, request: dict[str, Any]) -> Any:
        raise TerminalFencedError("order_send", None, 7)


def test_an_account_owned_elsewhere_is_503_with_retry_after_and_the_epoch(tmp_path: Path) -> None:
    host = FencedHost(SimConfig(history_days=1), clock=VirtualClock(server_ms(2026, 1, 6, 10)))

    async def main() -> httpx.Response:
        async with serving(tmp_path, terminal=host) as (_, http):
            return await http.post(ACCOUNT + "/orders", json=BUY,
                                   headers={"Idempotency-Key": "fenced-1"})  # fmt: skip

    body = _problem(asyncio.run(main()), 503, "MT5OwnershipError")
    assert body["epoch"] == 7
    assert body["title"] == "Account owned by another process"
    assert "nothing was executed" in body["detail"]


# ---------------------------------------------------------------------- Idempotency-Key


def _writes(ticket: int, order: int) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        ("POST", "/orders", {"json": BUY}),
        ("PATCH", f"/positions/{ticket}", {"json": {"sl": 1.0}}),
        ("POST", f"/positions/{ticket}/close", {"json": {}}),
        ("PATCH", f"/orders/{order}", {"json": {"sl": 0.5}}),
        ("DELETE", f"/orders/{order}", {}),
    ]


def _keyless(tmp_path: Path, **update: Any) -> tuple[list[httpx.Response], int, int, int]:
    """Each trading write without a key; then how many positions and orders are open, and how
    many positions were open before (one, and one pending order, placed with keys)."""

    async def main() -> tuple[list[httpx.Response], int, int, int]:
        async with serving(tmp_path, **update) as (_, http):
            opened = await http.post(ACCOUNT + "/orders", json=BUY,
                                     headers={"Idempotency-Key": "setup-buy"})  # fmt: skip
            limit = {**BUY, "kind": "limit", "price": 1.0}
            pending = await http.post(ACCOUNT + "/orders", json=limit,
                                      headers={"Idempotency-Key": "setup-limit"})  # fmt: skip
            before = len((await http.get(ACCOUNT + "/positions")).json())
            answers = [await http.request(method, ACCOUNT + path, **options)
                       for method, path, options in _writes(opened.json()["order"],
                                                            pending.json()["order"])]  # fmt: skip
            positions = len((await http.get(ACCOUNT + "/positions")).json())
            orders = len((await http.get(ACCOUNT + "/orders")).json())
            return answers, before, positions, orders

    return asyncio.run(main())


def test_trading_writes_without_a_key_are_428_and_send_nothing(tmp_path: Path) -> None:
    answers, before, positions, orders = _keyless(tmp_path)
    for answer in answers:
        body = _problem(answer, 428, "MissingIdempotencyKeyError")
        assert body["field"] == "Idempotency-Key"
        assert "Idempotency-Key header" in body["detail"]
        assert "same key again when you retry" in body["detail"]  # how to choose and use one
    assert (before, positions, orders) == (1, 1, 1)  # nothing placed, closed or cancelled


def test_keyless_writes_are_accepted_when_the_setting_allows_them(tmp_path: Path) -> None:
    answers, before, positions, orders = _keyless(tmp_path, require_idempotency_key=False)
    assert [a.status_code for a in answers] == [201, 200, 200, 200, 200], [a.text for a in answers]
    assert (before, positions, orders) == (1, 1, 0)  # one more opened, one closed; moved, cancelled


def test_checking_an_order_needs_no_key_and_an_empty_key_is_invalid(tmp_path: Path) -> None:
    async def main() -> tuple[httpx.Response, httpx.Response]:
        async with serving(tmp_path) as (_, http):
            check = await http.post(ACCOUNT + "/orders/check", json=BUY)
            empty = await http.post(ACCOUNT + "/orders", json=BUY,
                                    headers={"Idempotency-Key": ""})  # fmt: skip
            return check, empty

    check, empty = asyncio.run(main())
    assert check.status_code == 200
    assert _problem(empty, 422, "ValidationError")["field"] == "Idempotency-Key"


def _openapi(tmp_path: Path, **update: Any) -> dict[str, Any]:
    async def main() -> dict[str, Any]:
        async with serving(tmp_path, **update) as (_, http):
            schema: dict[str, Any] = (await http.get("/openapi.json")).json()
            return schema

    return asyncio.run(main())


def _key_parameter(operation: dict[str, Any]) -> dict[str, Any] | None:
    found = [p for p in operation.get("parameters", ()) if p["name"] == "Idempotency-Key"]
    return found[0] if found else None


def test_the_openapi_document_requires_the_key_on_trading_writes(tmp_path: Path) -> None:
    base = "/v1/accounts/{account}"
    writes = [(base + "/orders", "post"), (base + "/positions/{ticket}", "patch"),
              (base + "/positions/{ticket}/close", "post"), (base + "/orders/{ticket}", "delete"),
              (base + "/orders/{ticket}", "patch")]  # fmt: skip
    strict, relaxed = (
        _openapi(tmp_path / "strict"),
        _openapi(tmp_path / "relaxed", require_idempotency_key=False),
    )
    for path, method in writes:
        operation = strict["paths"][path][method]
        assert (_key_parameter(operation) or {}).get("required") is True
        assert operation["responses"]["428"]["description"] == STATUS_MEANINGS[428]
        loose = relaxed["paths"][path][method]
        assert (_key_parameter(loose) or {}).get("required") is False
        assert "428" not in loose["responses"]
    check = strict["paths"][base + "/orders/check"]["post"]
    assert _key_parameter(check) is None
    assert "428" not in check["responses"]
    assert "blocked" in strict["paths"][base + "/orders"]["post"]["responses"]["409"]["description"]
