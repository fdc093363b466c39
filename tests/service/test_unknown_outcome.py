"""An order whose outcome is unknown is 202 with a status resource, never an invitation to send
it again (issue 15, A1): a retry with the same key returns the current status, and sends the
order only once it is proven never to have executed.

The demo account runs on a simulator standing on a Tuesday morning; its trade-server link is cut
so the order's reply cannot tell (10031), and reconciliation cannot prove anything until it is
back.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx

from mt5gate.service.config import ReconcileSettings, default_settings
from mt5gate.sim import SimConfig, VirtualClock, server_ms
from mt5gate.sim.terminal import SimTerminal
from tests.service.test_app import ACCOUNT, serving

BUY = {"symbol": "EURUSD", "side": "buy", "volume": 0.1}
QUICK = ReconcileSettings(first_s=0.05, max_interval_s=0.2, settle_s=0.3, budget_s=1.0,
                          replay_budget_s=1.0, sweep_interval_s=None)  # fmt: skip


def test_an_unknown_outcome_is_202_with_a_status_resource_and_never_sent_twice(
    tmp_path: Path,
) -> None:
    sim = SimTerminal(SimConfig(history_days=1), clock=VirtualClock(server_ms(2026, 1, 6, 10)))
    demo = default_settings().accounts[0].model_copy(update={"reconcile": QUICK})

    async def main() -> list[httpx.Response]:
        async with serving(tmp_path, terminal=sim, accounts=(demo,)) as (gateway, http):
            keyed = {"Idempotency-Key": "lost-link"}
            sim.set_connected(False)  # 10031: the request may have left before the link fell
            first = await http.post(ACCOUNT + "/orders", json=BUY, headers=keyed)
            status = await http.get(first.headers.get("location", "/missing"))
            again = await http.post(ACCOUNT + "/orders", json=BUY, headers=keyed)
            positions_meanwhile = await http.get(ACCOUNT + "/positions")
            sim.set_connected(True)
            await gateway.account("demo").session.connection.refresh_link()
            settled = await http.post(ACCOUNT + "/orders", json=BUY, headers=keyed)
            final = await http.get(ACCOUNT + "/requests/lost-link")
            missing = await http.get(ACCOUNT + "/requests/never-used")
            positions = await http.get(ACCOUNT + "/positions")
            return [first, status, again, positions_meanwhile, settled, final, missing, positions]

    first, status, again, meanwhile, settled, final, missing, positions = asyncio.run(main())
    assert first.status_code == 202, first.text
    body = first.json()
    assert (body["outcome"], body["idempotency_key"], body["state"]) == (
        "unknown", "lost-link", "UNKNOWN",
    )  # fmt: skip
    assert "do not send it again under a new key" in body["hint"]
    assert first.headers["location"] == "/v1/accounts/demo/requests/lost-link"
    assert first.headers["retry-after"] == "5"
    assert status.status_code == 200
    assert (status.json()["outcome"], status.json()["client_id"]) == ("unknown", body["client_id"])
    assert again.status_code == 202  # the current status again; nothing was sent
    assert meanwhile.json() == []
    assert settled.status_code == 201, settled.text  # proven never executed: sent now, once
    assert settled.json()["client_id"] == body["client_id"]
    assert final.json()["outcome"] == "executed"
    assert final.json()["result"]["order"] == settled.json()["order"]
    assert missing.status_code == 404
    assert len(positions.json()) == 1


def test_the_openapi_document_describes_the_202_and_the_status_resource(tmp_path: Path) -> None:
    async def main() -> dict[str, object]:
        async with serving(tmp_path) as (_, http):
            return (await http.get("/openapi.json")).json()  # type: ignore[no-any-return]

    paths = asyncio.run(main())["paths"]
    assert isinstance(paths, dict)
    placed = paths["/v1/accounts/{account}/orders"]["post"]["responses"]
    assert "202" in placed
    assert "504" not in placed
    assert "OrderAccepted" in str(placed["202"])
    assert "get" in paths["/v1/accounts/{account}/requests/{key}"]
