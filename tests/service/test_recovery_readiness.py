"""After a restart, start-up recovery holds only the symbols of the orders it settles, and the
service is not ready until it is over (issue 15, A5): on main every order, any symbol, hung for
about 30 s after every restart while /readyz already said 200.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from pathlib import Path

import httpx
import pytest

from mt5gate.orders import EventKind, SqliteJournal
from mt5gate.service.app import create_app
from mt5gate.service.auth import hash_api_key
from mt5gate.service.config import ApiKeySettings, ReconcileSettings, default_settings
from mt5gate.service.gateway import Gateway
from mt5gate.sim import SimConfig, VirtualClock, server_ms
from mt5gate.sim.terminal import SimTerminal

KEY = "recovery-test-key-0123456789"
SLOW = ReconcileSettings(first_s=0.1, max_interval_s=0.2, settle_s=0.5, budget_s=10.0,
                         sweep_interval_s=None)  # fmt: skip


def _left_unresolved(path: Path) -> None:
    """What a gateway killed with an EURUSD order in flight leaves in its journal."""
    with SqliteJournal(path) as journal:
        client = journal.record_intent(5001, {"op": "place"}, "in-flight")
        request = {"action": 1, "symbol": "EURUSD", "volume": 0.1, "type": 0,
                   "magic": client.magic}  # fmt: skip
        journal.record(EventKind.SENT, client, 5001, request=request,
                       result={"before": {"positions": []}})  # fmt: skip


def test_readiness_waits_for_recovery_and_other_symbols_do_not(tmp_path: Path) -> None:
    _left_unresolved(tmp_path / "demo-orders.db")
    sim = SimTerminal(SimConfig(history_days=1), clock=VirtualClock(server_ms(2026, 1, 6, 10)))
    sim.faults.latency("history_deals_get", 0.3, times=8)  # settling it takes seconds
    keys = (ApiKeySettings(name="all", hash=hash_api_key(KEY),
                           scopes=frozenset({"read", "trade", "admin"})),)  # fmt: skip
    demo = default_settings().accounts[0].model_copy(update={"reconcile": SLOW})
    settings = default_settings().model_copy(
        update={"data_dir": tmp_path, "api_keys": keys, "accounts": (demo,)}
    )

    async def main() -> tuple[int, int, int, bool]:
        gateway = Gateway.build(settings, os.environ, terminal_for=lambda _: sim)
        app = create_app(gateway)
        await gateway.start()
        transport = httpx.ASGITransport(app=app)
        try:
            async with httpx.AsyncClient(transport=transport, base_url="http://t",
                                         headers={"X-API-Key": KEY}) as http:  # fmt: skip
                session = gateway.account("demo").session
                while not session.pipeline._held:  # recovery has begun
                    await asyncio.sleep(0.01)
                during = (await http.get("/readyz")).status_code
                btc = await http.post(
                    "/v1/accounts/demo/orders", headers={"Idempotency-Key": "btc"},
                    json={"symbol": "BTCUSD", "side": "buy", "volume": 0.01},
                )  # fmt: skip
                still_recovering = bool(session.pipeline._held)
                while not gateway.account("demo").ready:
                    await asyncio.sleep(0.05)
                after = (await http.get("/readyz")).status_code
                return during, btc.status_code, after, still_recovering
        finally:
            await gateway.stop()

    during, btc, after, still_recovering = asyncio.run(main())
    assert during == 503  # recovery holds orders: not ready
    assert btc == 201  # an order on another symbol went at once
    assert still_recovering  # ...while the EURUSD order was still being settled
    assert after == 200
    with SqliteJournal(tmp_path / "demo-orders.db", readonly=True) as journal:
        (stuck,) = journal.summaries(5001, key="in-flight")
    assert stuck.state is EventKind.RECONCILED_ABSENT


def test_an_account_owned_elsewhere_is_waited_for_then_taken_over(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Another live process (an `mt5gate order` command, here) holds the demo account's lease:
    the service is not ready, says who owns it now and then (not in a tight loop), and takes
    the account over as soon as it is let go (issue 15, B)."""
    info = {"kind": "cli", "pid": os.getpid(), "host": socket.gethostname()}
    with SqliteJournal(tmp_path / "demo-orders.db") as journal:
        held = journal.acquire(5001, "cli:elsewhere", 60.0, info)
    sim = SimTerminal(SimConfig(history_days=1), clock=VirtualClock(server_ms(2026, 1, 6, 10)))
    settings = default_settings().model_copy(update={"data_dir": tmp_path})

    async def main() -> tuple[bool, bool]:
        gateway = Gateway.build(settings, os.environ, terminal_for=lambda _: sim)
        await gateway.start()
        try:
            await asyncio.sleep(1.0)
            waiting = gateway.account("demo").ready
            with SqliteJournal(tmp_path / "demo-orders.db") as journal:
                journal.release(held)  # the command is done
            for _ in range(200):
                if gateway.account("demo").ready:
                    break
                await asyncio.sleep(0.05)
            return waiting, gateway.account("demo").ready
        finally:
            await gateway.stop()

    with caplog.at_level(logging.WARNING, logger="mt5gate.service"):
        waiting, taken = asyncio.run(main())
    assert (waiting, taken) == (False, True)
    said = [r.getMessage() for r in caplog.records if "is owned by" in r.getMessage()]
    assert said
    assert "mt5gate cli" in said[0]
    assert len(said) <= 3  # asked again every 2 s, not in a tight loop
