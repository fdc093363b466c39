"""``mt5gate journal`` on a PostgreSQL journal: ``--store URL`` or ``$MT5GATE_STORE_URL``,
``--schema``; list, show, blocks and acknowledge; a schema that is missing is reported, never
created; the password in the URL is never printed. A real server, a schema per test.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

from mt5gate.cli import main
from mt5gate.orders import cli as journal_cli
from mt5gate.orders.core import EventKind
from mt5gate.orders.postgres import PostgresStore
from mt5gate.orders.store import NewEvent
from tests.servers.postgres import PostgresServer

K = EventKind
REQUEST: dict[str, Any] = {"action": 1, "symbol": "EURUSD", "volume": 0.1, "type": 0}
ROOT = Path(__file__).resolve().parents[2]


async def _fill(url: str, schema: str) -> dict[str, int]:
    """5001: "k-1" acknowledged (order 111), "k-2" unknown; a block on 5001; 5002: an INTENT."""
    async with PostgresStore(url, schema=schema) as store:
        fence = await store.acquire(5001, "filler", 15.0, {})
        done = await store.intent(fence, REQUEST, "k-1")
        await store.append(fence, NewEvent(K.SENT, done))
        await store.append(fence, NewEvent(K.ACKNOWLEDGED, done, result={"order": 111},
                                           retcode=10009, order_ticket=111))  # fmt: skip
        lost = await store.intent(fence, {**REQUEST, "volume": 0.2}, "k-2", sent=lambda c: (
            NewEvent(K.SENT, c)))  # fmt: skip
        await store.append(fence, NewEvent(K.UNKNOWN, lost, note="deadline"))
        await store.block(fence, "journal behind the broker", [77])
        other = await store.acquire(5002, "filler", 15.0, {})
        await store.intent(other, REQUEST, "k-1")
        return {"done": done.sequence, "lost": lost.sequence}


@pytest.fixture
def filled(postgres_server: PostgresServer, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    for name in (journal_cli.ENV_JOURNAL, journal_cli.ENV_STORE):
        monkeypatch.delenv(name, raising=False)
    schema = "c_" + uuid.uuid4().hex[:16]
    ids = asyncio.run(_fill(postgres_server.url, schema))
    return {"url": postgres_server.url, "schema": schema, "secret": postgres_server.password,
            **ids}  # fmt: skip


def _run(capsys: pytest.CaptureFixture[str], *argv: object) -> tuple[int, str, str]:
    status = main(["journal", *map(str, argv)])
    out, err = capsys.readouterr()
    return status, out, err


def test_list_and_show_read_a_postgresql_journal(
    filled: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    store = ["--store", filled["url"], "--schema", filled["schema"]]
    status, out, err = _run(capsys, "list", *store)
    assert (status, err) == (0, "")
    rows = [line.split() for line in out.splitlines()[1:]]
    assert [(r[0], r[3], r[4]) for r in rows] == [
        ("5001", "ACKNOWLEDGED", "k-1"),
        ("5001", "UNKNOWN", "k-2"),
        ("5002", "INTENT", "k-1"),
    ]
    status, out, _ = _run(capsys, "list", *store, "--unresolved", "--login", "5001", "--json")
    assert status == 1
    assert [o["client_id"]["sequence"] for o in json.loads(out)] == [filled["lost"]]
    status, out, _ = _run(capsys, "show", *store, "--ticket", "111")
    assert status == 0
    assert "ACKNOWLEDGED" in out
    assert "request {" in out
    status, out, _ = _run(capsys, "show", *store, "--client-id", str(filled["lost"]), "--json")
    assert status == 0
    (shown,) = json.loads(out)
    assert [e["kind"] for e in shown["events"]] == ["INTENT", "SENT", "UNKNOWN"]
    status, _, err = _run(capsys, "show", *store, "--key", "nope", "--login", "5001")
    assert status == 1
    assert err == (f"mt5gate journal: no order matches in postgresql mt5gate@127.0.0.1:"
                   f"{filled['url'].rsplit(':', 1)[1].split('/')[0]}/postgres "
                   f"(schema {filled['schema']})\n")  # fmt: skip
    assert filled["secret"] not in out + err


def test_blocks_and_acknowledge_through_the_environment(
    filled: dict[str, Any], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(journal_cli.ENV_STORE, filled["url"])
    schema = ["--schema", filled["schema"]]
    status, out, _ = _run(capsys, "blocks", *schema)
    assert status == 1
    assert "account 5001: new orders stopped" in out
    status, out, _ = _run(capsys, "acknowledge", *schema, "--login", "5001", "--note", "ann")
    assert status == 0
    assert "block lifted (1 orders acknowledged)" in out
    assert _run(capsys, "blocks", *schema)[:2] == (0, "no account is blocked\n")
    status, _, err = _run(capsys, "acknowledge", *schema, "--login", "5001", "--note", "again")
    assert status == 1
    assert "not blocked" in err


def test_a_missing_schema_is_reported_and_not_created(
    filled: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    status, out, err = _run(capsys, "list", "--store", filled["url"], "--schema", "nothing_here")
    assert (status, out) == (2, "")
    assert "no order journal at postgresql mt5gate@127.0.0.1" in err
    assert filled["secret"] not in err

    async def exists() -> bool:
        async with PostgresStore(filled["url"], schema=filled["schema"]) as store:
            rows = await store._rows("SELECT to_regnamespace('nothing_here') IS NOT NULL")
            return bool(rows[0][0])

    assert not asyncio.run(exists())


def test_bad_stores_say_why_without_the_password(
    filled: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    secret, url = filled["secret"], filled["url"]
    status, _, err = _run(capsys, "list", "--store", url.replace(secret, "x" + secret))
    assert status == 2
    assert "password authentication failed" in err
    assert secret not in err
    status, _, err = _run(capsys, "list", "--store", url, "--journal", "orders.db")
    assert (status, "--journal and --store name two journals" in err) == (2, True)
    status, _, err = _run(capsys, "list", "--store", url, "--schema", "Bad-Name")
    assert (status, "--schema: schema must be" in err) == (2, True)


def test_the_cli_as_a_process(filled: dict[str, Any]) -> None:
    env = {**os.environ, journal_cli.ENV_STORE: filled["url"]}
    env.pop(journal_cli.ENV_JOURNAL, None)
    done = subprocess.run(
        [sys.executable, "-m", "mt5gate.orders.cli", "list", "--schema", filled["schema"],
         "--login", "5002"],
        capture_output=True, text=True, timeout=60, env=env, cwd=ROOT, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    row = done.stdout.splitlines()[1].split()
    assert (row[0], row[3], row[4]) == ("5002", "INTENT", "k-1")
    assert filled["secret"] not in done.stdout + done.stderr


def test_without_the_fleet_extra_store_says_what_to_install(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "mt5gate.orders.postgres", None)  # as if psycopg were absent
    status, _, err = _run(capsys, "list", "--store", "postgresql://u:secret@127.0.0.1/db")
    assert status == 2
    assert "--store needs the fleet extra: pip install 'mt5gate[fleet]'" in err
    assert "secret" not in err
