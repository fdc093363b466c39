"""``mt5gate modify``, ``halt`` and ``resume`` on an account a real ``mt5gate serve`` owns: they
go through its HTTP API (``PATCH .../positions/{ticket}`` with the command's key,
``POST .../halt`` and ``.../resume``), with the same prompts, output and exit codes as on a
session of the command's own, and the service's journal holds each keyed change once.

The service runs the simulated demo account on its own clock (pinned to a Tuesday morning, so
the test passes on any day); orders are on BTCUSD.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from mt5gate.cli.failures import Exit
from mt5gate.cli.ui import VIA_SERVICE
from tests.cli.conftest import SYMBOL, Cli, assert_error, explain, fields, flat
from tests.service.conftest import Served, start_service


@pytest.fixture(scope="module")
def serve(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    served = start_service(tmp_path_factory.mktemp("served-manage") / "data")
    yield served
    served.stop()


@pytest.fixture
def routed(cli: Cli, serve: Served, monkeypatch: pytest.MonkeyPatch) -> Cli:
    """The command on the service's data directory: it goes through the service."""
    monkeypatch.setenv("MT5GATE_DATA_DIR", str(serve.data_dir))
    return Cli(cli.home, serve.data_dir)


def via(served: Served) -> str:
    return VIA_SERVICE.format(url=served.base, account="demo")


def seen(serve: Served, what: str, ticket: int) -> dict[str, Any]:
    """The service's own record of position or order ``ticket``."""
    with serve.client() as http:
        found = http.get(f"/v1/accounts/demo/{what}").json()
    [record] = [r for r in found if r["ticket"] == ticket]
    return dict(record)


def halt_check(serve: Served, halted: bool) -> dict[str, Any]:
    """The service's ``trading:halt`` health check, once its reading (taken every few seconds)
    says ``halted``."""
    deadline = time.monotonic() + 30
    while True:
        with serve.client() as http:
            checks = http.get("/v1/health").json()["checks"]
        [check] = checks["demo/trading:halt"]
        if check["observedValue"] is halted or time.monotonic() > deadline:
            return dict(check)
        time.sleep(0.5)


def trades(serve: Served) -> bool:
    """Whether the service takes an order now (it is then closed again)."""
    with serve.client() as http:
        order = {"symbol": SYMBOL, "side": "buy", "volume": 0.01}
        sent = http.post("/v1/accounts/demo/orders", json=order,
                         headers={"Idempotency-Key": uuid.uuid4().hex})  # fmt: skip
        if sent.status_code != 201:
            assert sent.json()["error"] == "MT5TradingHalted", sent.text
            return False
        closed = http.post(f"/v1/accounts/demo/positions/{sent.json()['order']}/close", json={},
                           headers={"Idempotency-Key": uuid.uuid4().hex})  # fmt: skip
        assert closed.status_code == 200, closed.text
    return True


def test_modify_goes_through_the_service_once_per_key(routed: Cli, serve: Served) -> None:
    ticket = routed.buy("0.01")["order"]
    ask = seen(serve, "positions", ticket)["price_current"]
    sl, tp = f"{ask - 3000:.2f}", f"{ask + 3000:.2f}"
    first = routed.run("modify", str(ticket), "--sl", sl, "--tp", tp, "--yes", "--key",
                       "served-mod", "--json")  # fmt: skip
    assert first.exit_code == 0, explain(first)
    assert via(serve) in flat(first.stderr)
    assert fields(first.stderr)["SL"] == f"- -> {sl}"
    result = json.loads(first.stdout)
    assert result["retcode"] == 10009
    position = seen(serve, "positions", ticket)
    assert (f"{position['sl']:.2f}", f"{position['tp']:.2f}") == (sl, tp)
    again = routed.json("modify", str(ticket), "--sl", sl, "--tp", tp, "--yes", "--key",
                        "served-mod")  # fmt: skip
    assert again == result  # the first outcome: nothing was sent
    journaled = [o for o in routed.json("journal", "list") if o["idempotency_key"] == "served-mod"]
    assert len(journaled) == 1
    cleared = routed.ok("modify", str(ticket), "--tp", "0", "--yes")
    assert fields(cleared.stderr)["TP"] == f"{tp} -> -"
    assert seen(serve, "positions", ticket)["tp"] == 0.0
    routed.ok("close", str(ticket), "--yes")


def test_a_pending_order_is_moved_through_the_service_once_per_key(
    routed: Cli, serve: Served
) -> None:
    """``PATCH .../orders/{ticket}``: the price and SL move, the same key sends nothing new."""
    placed = routed.json("order", "limit", "buy", SYMBOL, "0.01", "20000", "--yes")
    ticket = placed["order"]
    args = ("modify", str(ticket), "--price", "21000", "--sl", "19000", "--yes", "--key",
            "served-move", "--json")  # fmt: skip
    first = routed.run(*args)
    assert first.exit_code == 0, explain(first)
    assert via(serve) in flat(first.stderr)
    assert fields(first.stderr)["Price"] == "20000.00 -> 21000.00"
    order = seen(serve, "orders", ticket)
    assert (order["price_open"], order["sl"]) == (21000.0, 19000.0)
    again = routed.run(*args)
    assert json.loads(again.stdout) == json.loads(first.stdout)  # the first outcome
    journaled = [o for o in routed.json("journal", "list") if o["idempotency_key"] == "served-move"]
    assert len(journaled) == 1
    routed.ok("cancel", str(ticket), "--yes")


def test_halt_refuses_new_orders_until_resume(routed: Cli, serve: Served) -> None:
    try:
        halted = routed.run("halt", "news at 14:30", "--yes", "--json")
        assert halted.exit_code == 0, explain(halted)
        assert json.loads(halted.stdout) == {"halted": True, "reason": "news at 14:30"}
        assert via(serve) in flat(halted.stderr)
        assert fields(halted.stderr)["Reason"] == "news at 14:30"
        refused = routed.run("order", "buy", SYMBOL, "0.01", "--yes")
        assert_error(refused, Exit.MT5, "Trading is halted", "news at 14:30")
        assert not trades(serve)
        check = halt_check(serve, halted=True)
        assert (check["observedValue"], check["status"]) == (True, "warn")
        assert "news at 14:30" in check["output"]
    finally:
        resumed = routed.run("resume", "--yes")
    assert resumed.exit_code == 0, explain(resumed)
    assert resumed.stdout == "demo: trading\n"
    assert trades(serve)
    ticket = routed.buy("0.01")["order"]
    routed.ok("close", str(ticket), "--yes")
    assert halt_check(serve, halted=False)["status"] == "pass"


def test_halt_asks_and_a_no_halts_nothing(routed: Cli, serve: Served) -> None:
    result = routed.run("halt", input="n\n")
    assert_error(result, Exit.NOT_GOOD, "not sent", prompted=True)
    assert "Halt trading on demo? [y/N]" in result.stderr
    assert fields(result.stderr)["Reason"] == "halted with mt5gate halt"  # none given
    assert trades(serve)
    table = routed.ok("halt", "--yes")
    try:
        assert table.stdout == "demo: halted (halted with mt5gate halt)\n"
        assert not trades(serve)
    finally:
        routed.ok("resume", "--yes")
    assert trades(serve)


def test_a_reason_the_service_would_not_keep_is_refused_before_the_question(
    routed: Cli, serve: Served
) -> None:
    result = routed.run("halt", "x" * 201)
    assert_error(result, Exit.USAGE, "REASON: 201 characters; at most 200")
    assert trades(serve)
