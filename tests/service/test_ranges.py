"""Numbers MT5 cannot hold are 422 naming the field, never a 500 (audit A7).

An epoch of twenty digits once reached the terminal: through a bridge, its msgpack encoder
raised OverflowError (a 500); on the simulator the query answered as if it were sensible. The
routes bound dates (1970-01-01..3000-12-31, MT5's ``datetime``), expiries and tickets, and the
session refuses the same values itself (``tests/session/test_validation.py``).

The bridge case runs a real ``BridgeServer`` on loopback in front of a simulator, and the
service's demo account on ``bridge://`` to it, as a Wine or remote deployment does.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from mt5gate.service.config import AccountSettings
from tests.bridge.conftest import TOKEN, ServedBridge, new_sim
from tests.service.test_app import ACCOUNT, serving

HUGE = "99999999999999999999"
LIMIT = {"symbol": "EURUSD", "side": "buy", "kind": "limit", "price": 1.0, "volume": 0.01}


@pytest.fixture
def bridge(monkeypatch: pytest.MonkeyPatch) -> Iterator[ServedBridge]:
    """A bridge to a simulator on 127.0.0.1, its token in the variable the account names."""
    served = ServedBridge(new_sim())
    monkeypatch.setenv("RANGES_BRIDGE_TOKEN", TOKEN)
    monkeypatch.setenv("RANGES_PASSWORD", "sim-pass-5001")
    yield served
    served.close()


def _bridged(port: int) -> AccountSettings:
    return AccountSettings(
        name="demo", terminal=f"bridge://127.0.0.1:{port}", login=5001,
        server="MetaQuotes-Demo", password_env="RANGES_PASSWORD", token_env="RANGES_BRIDGE_TOKEN",
    )  # fmt: skip


def _ask(
    tmp_path: Path, requests: list[tuple[str, str, dict[str, Any]]], **update: Any
) -> list[httpx.Response]:
    async def main() -> list[httpx.Response]:
        async with serving(tmp_path, **update) as (_, http):
            return [await http.request(method, path, **options)
                    for method, path, options in requests]  # fmt: skip

    return asyncio.run(main())


def _invalid(answer: httpx.Response, field: str) -> None:
    assert (answer.status_code, answer.headers["content-type"]) == (422, "application/problem+json")
    assert field in [e["field"] for e in answer.json()["errors"]], answer.text


OUT_OF_RANGE = [
    ("GET", "/history/deals", {"params": {"from": 0, "to": HUGE}}, "to"),
    ("GET", "/history/orders", {"params": {"from": HUGE, "to": 0}}, "from"),
    ("GET", "/history/deals", {"params": {"from": "0001-01-01T00:00:00", "to": 0}}, "from"),
    ("GET", "/history/deals", {"params": {"from": 0, "to": "3001-01-01T00:00:00Z"}}, "to"),
    ("GET", "/history/deals", {"params": {"from": -1, "to": 0}}, "from"),
    ("GET", "/symbols/EURUSD/rates", {"params": {"from": HUGE}}, "from"),
    ("GET", "/symbols/EURUSD/rates", {"params": {"from": 0, "to": HUGE}}, "to"),
    ("GET", "/symbols/EURUSD/ticks", {"params": {"from": HUGE}}, "from"),
    ("GET", "/symbols/EURUSD/ticks", {"params": {"from": 0, "to": HUGE}}, "to"),
    ("POST", "/orders", {"json": {**LIMIT, "expiration_msc": 10**23}}, "expiration_msc"),
    ("POST", "/orders", {"json": {**LIMIT, "expiration_msc": 1e23}}, "expiration_msc"),
    ("POST", "/orders/check", {"json": {**LIMIT, "expiration_msc": 2**64}}, "expiration_msc"),
    ("DELETE", "/orders/" + HUGE, {}, "ticket"),
    ("PATCH", "/positions/" + HUGE, {"json": {"sl": 1.0}}, "ticket"),
    ("POST", f"/positions/{HUGE}/close", {"json": {}}, "ticket"),
]


def test_numbers_mt5_cannot_hold_are_422_on_a_bridge_account(
    tmp_path: Path, bridge: ServedBridge
) -> None:
    requests = [(method, ACCOUNT + path, {**options, "headers": {"Idempotency-Key": f"r{n}"}})
                for n, (method, path, options, _) in enumerate(OUT_OF_RANGE)]  # fmt: skip
    answers = _ask(tmp_path, requests, accounts=(_bridged(bridge.port),))
    for answer, (_, path, _, field) in zip(answers, OUT_OF_RANGE, strict=True):
        assert "Traceback" not in answer.text
        _invalid(answer, field)
        assert path  # which request: in the assertion's traceback


def test_dates_at_the_edges_of_the_range_are_accepted(tmp_path: Path) -> None:
    window = {"from": 0, "to": 32535215999}  # 3000-12-31T23:59:59Z, the last second MT5 holds
    iso = {"from": "1970-01-01T00:00:00Z", "to": "3000-12-31T23:59:59Z"}
    answers = _ask(tmp_path, [
        ("GET", ACCOUNT + "/history/deals", {"params": window}),
        ("GET", ACCOUNT + "/history/orders", {"params": iso}),
        ("GET", ACCOUNT + "/symbols/EURUSD/ticks", {"params": {**window, "count": 2}}),
    ])  # fmt: skip
    assert [a.status_code for a in answers] == [200, 200, 200], [a.text for a in answers]


def test_a_time_that_is_neither_iso_nor_seconds_is_422(tmp_path: Path) -> None:
    (answer,) = _ask(tmp_path, [("GET", ACCOUNT + "/symbols/EURUSD/ticks",
                                 {"params": {"from": "yesterday"}})])  # fmt: skip
    _invalid(answer, "from")
    assert answer.json()["rule"] == "an ISO-8601 time or epoch seconds"


def test_epoch_seconds_stay_seconds(tmp_path: Path) -> None:
    """A number in ``from`` is seconds, even past 2e10 (pydantic's datetime reads those as
    milliseconds, which turned the year 2889 into 1970-12 and answered with its ticks)."""
    year_2889 = {"from": 29_000_000_000, "count": 2}
    (answer,) = _ask(tmp_path, [("GET", ACCOUNT + "/symbols/EURUSD/ticks", {"params": year_2889})])
    assert (answer.status_code, answer.json()) == (200, [])  # no tick after 2889 yet


def test_the_openapi_document_states_the_bounds(tmp_path: Path) -> None:
    (answer,) = _ask(tmp_path, [("GET", "/openapi.json", {})])
    paths = answer.json()["paths"]
    deals = paths["/v1/accounts/{account}/history/deals"]["get"]["parameters"]
    (to,) = [p for p in deals if p["name"] == "to"]
    assert {"type": "integer", "minimum": 0, "maximum": 32535215999} in to["schema"]["anyOf"]
    assert "3000-12-31" in to["description"]
    body = answer.json()["components"]["schemas"]["OrderBody"]["properties"]["expiration_msc"]
    assert "3000-12-31" in body["description"]
    assert {"type": "integer", "exclusiveMinimum": 0, "maximum": 32535215999999} in body["anyOf"]


def test_a_range_that_ends_before_it_starts_is_422_naming_to(tmp_path: Path) -> None:
    """``to`` before ``from`` is a mistake in the request, not an empty history (it used to
    answer 200 ``[]``)."""
    backwards = {"from": "2020-01-11T00:00:00Z", "to": "2020-01-10T00:00:00Z"}
    answers = _ask(tmp_path, [
        ("GET", ACCOUNT + "/symbols/EURUSD/rates", {"params": {**backwards, "timeframe": "H1"}}),
        ("GET", ACCOUNT + "/symbols/EURUSD/ticks", {"params": backwards}),
        ("GET", ACCOUNT + "/history/deals", {"params": backwards}),
        ("GET", ACCOUNT + "/history/orders", {"params": {"from": 1_600_000_000, "to": 0}}),
        ("GET", ACCOUNT + "/history/deals", {"params": {"from": 5, "to": 5}}),  # one instant: fine
    ])  # fmt: skip
    for answer in answers[:4]:
        assert answer.status_code == 422, answer.text
        assert (answer.json()["field"], answer.json()["rule"]) == ("to", "not before from")
    assert answers[4].status_code == 200
