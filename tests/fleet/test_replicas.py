"""Three ``mt5gate serve`` replicas over one shared store, each account's terminal a simulator
behind its own ``mt5gate bridge``: every account has one owner, the accounts spread, any replica
answers for any account (forwarding to the owner, exactly-once across the hop), an operator
drains a replica or moves an account, and a killed or paused owner's accounts are taken over
with a higher epoch, the paused one fenced when it wakes.

Real processes on loopback, the store a real PostgreSQL server (``tests/servers/postgres.py``).
The tests in this module run in order on one fleet (each leaves it with every account owned).
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from mt5gate.service.console.access import COOKIE, csrf_token
from tests.fleet.processes import KEY, LOGINS, Fleet, Replica, running_fleet

pytestmark = pytest.mark.slow

BUY = {"symbol": "EURUSD", "side": "buy", "volume": 0.01}


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory, postgres_url: str) -> Iterator[Fleet]:
    workdir = tmp_path_factory.mktemp("fleet")
    with running_fleet(workdir, postgres_url, ["r1", "r2", "r3"], "fleet_replicas") as running:
        running.wait_owned(90)
        yield running


def fleet_cli(fleet: Fleet, *args: str) -> subprocess.CompletedProcess[str]:
    replica = fleet.replicas[0]
    return subprocess.run(
        [sys.executable, "-m", "mt5gate.cli", "fleet", "--config", str(replica.config), *args],
        env=replica.env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def status(fleet: Fleet) -> dict[str, Any]:
    done = fleet_cli(fleet, "status", "--json")
    assert done.returncode == 0, done.stderr
    parsed: dict[str, Any] = json.loads(done.stdout)
    return parsed


def settle(fleet: Fleet, until: Any, timeout_s: float = 60.0) -> dict[str, Any]:
    """``fleet status`` until ``until(status)`` holds."""
    deadline = time.monotonic() + timeout_s
    seen: dict[str, Any] = {}
    while time.monotonic() < deadline:
        seen = status(fleet)
        if until(seen):
            return seen
        time.sleep(0.3)
    raise AssertionError(f"the fleet did not settle: {json.dumps(seen, indent=1)}")


def owners_of(seen: dict[str, Any]) -> dict[str, str | None]:
    return {a["account"]: a["owner"] for a in seen["accounts"]}


def balanced(seen: dict[str, Any]) -> bool:
    """Every account owned where placement puts it, the loads of the replicas that take
    accounts one apart at most."""
    owners = owners_of(seen)
    live = [r["replica"] for r in seen["replicas"] if r["live"] and not r["draining"]]
    loads = [list(owners.values()).count(r) for r in live]
    return (None not in owners.values()
            and all(a["owner"] == a["placed_on"] for a in seen["accounts"])
            and bool(loads) and max(loads) - min(loads) <= 1)  # fmt: skip


def order(replica: Replica, account: str, key: str, body: dict[str, Any] | None = None) -> Any:
    with replica.client() as client:
        return client.post(f"/v1/accounts/{account}/orders", json=body or BUY,
                           headers={"Idempotency-Key": key})  # fmt: skip


def order_retried(
    replica: Replica, account: str, key: str, body: dict[str, Any] | None = None,
    timeout_s: float = 30.0,
) -> Any:  # fmt: skip
    """What a client does: the same key again while the answer is 503 (an owner changing:
    its ``Retry-After``) or 502; a replica's view of the owner lags by up to a heartbeat."""
    deadline = time.monotonic() + timeout_s
    while True:
        answer = order(replica, account, key, body)
        if answer.status_code not in (502, 503) or time.monotonic() > deadline:
            return answer
        time.sleep(min(float(answer.headers.get("retry-after", "1")), 1.0))


def test_each_account_has_one_owner_and_the_accounts_spread(fleet: Fleet) -> None:
    seen = settle(fleet, balanced)
    assert sorted(owners_of(seen).values()) == ["r1", "r2", "r3"]
    assert {a["login"] for a in seen["accounts"]} == set(LOGINS)
    assert all(a["epoch"] > 0 and a["lease_expires_in_s"] > 0 for a in seen["accounts"])
    shown = fleet_cli(fleet, "status")
    assert "acct5001" in shown.stdout
    assert "r1" in shown.stdout
    assert "FLEET_STORE_URL" not in shown.stdout
    assert "sqlite" not in shown.stdout


def test_any_replica_answers_for_any_account_through_its_owner(fleet: Fleet) -> None:
    owners = owners_of(settle(fleet, balanced))
    for replica in fleet.replicas:
        assert fleet.owners(replica) == owners
    owner = fleet.by_name(str(owners["acct5001"]))
    other = next(r for r in fleet.replicas if r is not owner)
    with other.client() as client:
        tick = client.get("/v1/accounts/acct5001/symbols/EURUSD/tick")
        missing = client.get("/v1/accounts/nosuch/symbols/EURUSD/tick")
        health = client.get("/v1/health").json()
    assert tick.status_code == 200
    assert tick.headers["x-mt5gate-served-by"] == owner.name
    assert tick.json()["bid"] > 0
    assert missing.status_code == 404
    assert health["checks"]["fleet:membership"][0]["status"] == "pass"
    assert f"owned by replica {owner.name}" in health["checks"]["acct5001:owner"][0]["output"]


def test_the_console_of_any_replica_shows_every_account_and_its_owner(fleet: Fleet) -> None:
    seen = settle(fleet, balanced)
    epochs = {a["account"]: a["epoch"] for a in seen["accounts"]}
    owner = fleet.by_name(str(owners_of(seen)["acct5003"]))
    other = next(r for r in fleet.replicas if r is not owner)
    with httpx.Client(base_url=other.base, cookies={COOKIE: KEY}, timeout=30,
                      headers={"Origin": other.base}) as browser:  # fmt: skip
        rows = browser.get("/console/fragments/overview").text
        book = browser.get("/console/accounts/acct5003/fragments/book")
        journal = browser.get("/console/fragments/journal?account=acct5003")
        placed = browser.post("/console/accounts/acct5003/orders/place", data={
            "csrf": csrf_token(KEY), "idempotency_key": "fleet-console", **{
                k: str(v) for k, v in BUY.items()}})  # fmt: skip
    for account, replica in owners_of(seen).items():
        assert f"{replica} ({epochs[account]})" in rows  # owner (epoch) of every account
    assert book.status_code == 200
    assert 'id="account-summary"' in book.text  # read through the owner
    assert journal.status_code == 200
    assert 'data-status="201"' in placed.text  # placed through the owner, by the console
    with owner.client() as client:
        status = client.get("/v1/accounts/acct5003/requests/fleet-console").json()
    assert status["state"] == "ACKNOWLEDGED"


def test_an_order_through_any_replica_is_placed_once(fleet: Fleet) -> None:
    owners = owners_of(settle(fleet, balanced))
    owner = fleet.by_name(str(owners["acct5002"]))
    first, second = (r for r in fleet.replicas if r is not owner)
    placed = order_retried(first, "acct5002", "fleet-once")
    again = order_retried(second, "acct5002", "fleet-once")
    at_owner = order_retried(owner, "acct5002", "fleet-once")
    other_body = order_retried(second, "acct5002", "fleet-once", {**BUY, "volume": 0.02})
    assert placed.status_code == 201, placed.text
    assert placed.headers["x-mt5gate-served-by"] == owner.name
    assert again.status_code in (200, 201), again.text
    assert again.json()["order"] == placed.json()["order"] == at_owner.json()["order"]
    assert again.json()["client_id"] == placed.json()["client_id"]
    assert other_body.status_code == 422, other_body.text  # same key, another order: refused
    assert other_body.json()["error"] == "MT5IdempotencyError"
    with second.client() as client:
        positions = client.get("/v1/accounts/acct5002/positions").json()
    assert sum(p["volume"] for p in positions) == pytest.approx(0.01)  # one order, netting


def test_an_operator_drains_a_replica_and_moves_an_account(fleet: Fleet) -> None:
    settle(fleet, balanced)
    assert fleet_cli(fleet, "drain", "r2").returncode == 0
    drained = settle(fleet, lambda s: "r2" not in owners_of(s).values() and balanced(s))
    assert set(owners_of(drained).values()) == {"r1", "r3"}
    assert fleet_cli(fleet, "undrain", "r2").returncode == 0
    settle(fleet, all_three)
    assert fleet_cli(fleet, "move", "acct5001", "r3").returncode == 0
    moved = settle(fleet, lambda s: owners_of(s)["acct5001"] == "r3" and balanced(s))
    assert next(a for a in moved["accounts"] if a["account"] == "acct5001")["pinned_to"] == "r3"
    assert fleet_cli(fleet, "unpin", "acct5001").returncode == 0
    refused = fleet_cli(fleet, "drain", "nobody")
    assert refused.returncode == 1
    assert "no replica named 'nobody'" in refused.stderr
    settle(fleet, balanced)


def terminate_backends(url: str, replica: str) -> int:
    """``pg_terminate_backend`` on every connection of ``replica`` (its application name)."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as admin:
        rows = admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s",
            (f"mt5gate {replica}",),
        ).fetchall()
    return len(rows)


def test_an_owner_whose_database_connection_is_killed_keeps_one_owner_per_account(
    fleet: Fleet,
) -> None:
    before = settle(fleet, balanced)
    victim = str(owners_of(before)["acct5002"])
    for _ in range(3):  # each time once it has connected again
        deadline = time.monotonic() + 10
        while terminate_backends(fleet.store_url, victim) == 0:
            assert time.monotonic() < deadline, f"{victim} never connected again"
            time.sleep(0.05)
    after = settle(fleet, balanced)  # it reconnects, or the others take its accounts over
    for account in after["accounts"]:
        old = next(a for a in before["accounts"] if a["account"] == account["account"])
        assert account["owner"] != old["owner"] or account["epoch"] == old["epoch"]
    placed = order_retried(fleet.replicas[0], "acct5002", "after-terminate")
    assert placed.status_code == 201, placed.text


def all_three(seen: dict[str, Any]) -> bool:
    """Balanced, and every replica owns an account (an account may be between owners, its
    owner ``None``, while the fleet settles)."""
    return balanced(seen) and sorted(map(str, owners_of(seen).values())) == ["r1", "r2", "r3"]


def test_a_killed_owner_is_taken_over_with_a_higher_epoch(fleet: Fleet) -> None:
    before = settle(fleet, balanced)
    victim_name = str(owners_of(before)["acct5001"])
    epoch = next(a["epoch"] for a in before["accounts"] if a["account"] == "acct5001")
    victim = fleet.by_name(victim_name)
    survivor = next(r for r in fleet.replicas if r is not victim)
    victim.kill()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        answer = order(survivor, "acct5001", "after-kill")
        if answer.status_code == 201:
            break
        assert answer.status_code in (502, 503), answer.text
        time.sleep(0.2)
    else:
        raise AssertionError("no order accepted for the killed owner's account within 60 s")
    after = status(fleet)
    taken = next(a for a in after["accounts"] if a["account"] == "acct5001")
    assert taken["owner"] != victim_name
    assert taken["epoch"] > epoch
    assert answer.headers["x-mt5gate-served-by"] == taken["owner"]
    victim.start()  # it comes back and gets its share again
    settle(fleet, all_three, timeout_s=90)


def test_a_paused_owner_is_taken_over_and_fenced_when_it_wakes(fleet: Fleet) -> None:
    before = settle(fleet, balanced)
    paused_name = str(owners_of(before)["acct5003"])
    paused = fleet.by_name(paused_name)
    other = next(r for r in fleet.replicas if r is not paused)
    paused.signal(signal.SIGSTOP)
    try:
        taken = settle(fleet, lambda s: owners_of(s)["acct5003"] not in (None, paused_name))
        assert order_retried(other, "acct5003", "while-paused").status_code == 201
    finally:
        paused.signal(signal.SIGCONT)
    # awake, it cannot write under its old epoch: the fleet settles with one owner per account
    settle(fleet, balanced, timeout_s=90)
    new_epoch = next(a["epoch"] for a in taken["accounts"] if a["account"] == "acct5003")
    old_epoch = next(a["epoch"] for a in before["accounts"] if a["account"] == "acct5003")
    assert new_epoch > old_epoch
    again = order_retried(other, "acct5003", "while-paused")
    assert again.status_code in (200, 201), again.text
    assert again.json()["client_id"]


def test_no_replica_leaked_a_secret_into_its_log(fleet: Fleet) -> None:
    for replica in fleet.replicas:
        text = replica.output()
        assert "sim-pass-" not in text
        assert "fleet-bridge-token" not in text
        assert "fleet-test-key" not in text
