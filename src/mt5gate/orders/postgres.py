"""``PostgresStore``: the :class:`~mt5gate.orders.store.OrderStore` of a fleet, in PostgreSQL.

Every replica of a fleet keeps its accounts' journals, idempotency keys and leases in one
PostgreSQL database (DESIGN §8), through the same interface as the embedded SQLite store, with
the same semantics (the decisions are shared: :func:`~mt5gate.orders.store.take_lease`,
:func:`~mt5gate.orders.store.check_fence`, :data:`~mt5gate.orders.core.TRANSITIONS`):

* **Fencing in the transaction.** Every write that matters (intent, append, block, renew) first
  locks the account's lease row (``SELECT ... FOR UPDATE``) and checks the writer's fence
  against it, then writes, then commits: a stale owner's INTENT is refused and nothing of it is
  written, and a new owner cannot take the lease between the check and the write. The lock also
  serialises an account's writers, so its events' ``seq`` grow in commit order (what
  ``events_after`` resumes from).
* **One clock.** Lease and heartbeat times come from the database server's clock
  (``clock_timestamp()``), so replicas on hosts whose clocks disagree still agree on who holds
  an account; tests may inject ``clock_ms``.
* **Dropped connections.** The store holds one connection (calls take turns on it). When it
  breaks (the server restarted, ``pg_terminate_backend``, the network), the call in flight
  raises :class:`~mt5gate.orders.store.JournalError`: its transaction committed or it did not,
  never half. The next call connects afresh. Session settings bound every wait: a statement
  (30 s), a lock wait (10 s), and a transaction left idle by a paused client (15 s, after which
  the server ends that session and its locks go).
* **Migrations.** The schema lives in its own PostgreSQL schema (``mt5gate`` unless told) and is
  created and upgraded at open from the SQL files in ``orders/migrations/postgres``, in order,
  in one transaction under an advisory lock (replicas starting together do not race); a
  database at a newer version than this code knows is refused.
* **Secrets.** The DSN may carry a password: it appears in no repr, log line or error message
  (the store describes the server as ``user@host:port/dbname``, and masks the password in
  anything the driver says).

Requires the ``fleet`` extra (``psycopg``); nothing else in ``mt5gate`` imports this module.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import time
from collections.abc import AsyncIterator, Callable, Collection, Mapping
from contextlib import asynccontextmanager
from importlib import resources
from typing import Any, Final, Self, TypeAlias

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

from mt5gate.orders.codec import EventCodec, canonical_json
from mt5gate.orders.core import UNRESOLVED_KINDS, EventKind, legal
from mt5gate.orders.ids import DEFAULT_NAMESPACE, ClientOrderId
from mt5gate.orders.journal import one_summary_query, summary_of, summary_query
from mt5gate.orders.store import (
    MEMBER_PRUNE_MS,
    AccountBlock,
    Fence,
    IdempotencyConflict,
    IllegalTransitionError,
    JournalError,
    JournalEvent,
    Lease,
    Member,
    NewEvent,
    OrderSummary,
    check_fence,
    id_floor_ms,
    take_lease,
)
from mt5gate.redaction import Redactor

__all__ = ["MIGRATIONS_PACKAGE", "PostgresStore", "migrations"]

log = logging.getLogger("mt5gate.orders")

Conn: TypeAlias = psycopg.AsyncConnection[tuple[Any, ...]]

#: Where the schema's SQL files live (package data): ``NNNN_name.sql``, applied in order.
MIGRATIONS_PACKAGE: Final = "mt5gate.orders.migrations.postgres"

_MIGRATION_FILE: Final = re.compile(r"^(\d{4})_(\w+)\.sql$")
_SCHEMA_NAME: Final = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")

#: Session settings (ms): no statement, lock wait or idle transaction lasts forever.
_SETTINGS: Final = {
    "statement_timeout": 30_000,
    "lock_timeout": 10_000,
    "idle_in_transaction_session_timeout": 15_000,
}

_NOW: Final = "SELECT floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint"
_COLUMNS: Final = (
    "seq, kind, utc_ms, monotonic_ns, login, client_id, idempotency_key, request, result,"
    " retcode, note, order_ticket, deal_ticket"
)
_INSERT: Final = (
    "INSERT INTO events (kind, utc_ms, monotonic_ns, login, client_id, idempotency_key,"
    " request, result, retcode, note, order_ticket, deal_ticket)"
    " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING seq"
)
_NEXT_SEQUENCE: Final = (
    "INSERT INTO sequences (login, last) VALUES (%s, %s) ON CONFLICT (login)"
    " DO UPDATE SET last = GREATEST(sequences.last + 1, excluded.last) RETURNING last"
)
_LEASE: Final = "SELECT login, owner, epoch, expires_utc_ms, acquired_utc_ms, info FROM leases"
_LAST_KIND: Final = (
    "SELECT kind FROM events WHERE login = %s AND client_id = %s ORDER BY seq DESC LIMIT 1"
)
_UNRESOLVED: Final = (
    "SELECT e.login, e.client_id FROM events e JOIN (SELECT client_id, MAX(seq) AS last"
    " FROM events WHERE login = %s GROUP BY client_id) l ON e.seq = l.last"
    " WHERE e.kind = ANY(%s) ORDER BY e.seq"
)
_LAST_KINDS: Final = (
    "SELECT e.client_id, e.kind FROM events e JOIN (SELECT client_id, MAX(seq) AS last"
    " FROM events WHERE login = %s AND client_id = ANY(%s) GROUP BY client_id) l"
    " ON e.seq = l.last"
)
_BLOCK: Final = (
    "SELECT kind, utc_ms, reason, sequences FROM blocks WHERE login = %s ORDER BY seq DESC LIMIT 1"
)
_ADD_BLOCK: Final = (
    "INSERT INTO blocks (login, kind, utc_ms, reason, sequences) VALUES (%s, %s, %s, %s, %s)"
)


def migrations() -> list[tuple[int, str, str]]:
    """The schema's migrations shipped with this code: ``(version, name, sql)``, in order;
    versions run 1, 2, 3, ... without a gap."""
    found: list[tuple[int, str, str]] = []
    for entry in resources.files(MIGRATIONS_PACKAGE).iterdir():
        match = _MIGRATION_FILE.match(entry.name)
        if match:
            found.append((int(match[1]), match[2], entry.read_text(encoding="utf-8")))
    found.sort()
    if [version for version, _, _ in found] != list(range(1, len(found) + 1)):
        raise JournalError(f"the PostgreSQL migrations in {MIGRATIONS_PACKAGE} have a gap")
    return found


def _lease(row: tuple[Any, ...] | None) -> Lease | None:
    """A lease row; ``None`` for no row, or the placeholder an acquire inserts (epoch 0)."""
    if row is None or row[2] == 0:
        return None
    login, owner, epoch, expires, acquired, info = row
    return Lease(login, owner, epoch, expires, acquired, json.loads(info or "{}"))


def _ttl_ms(ttl_s: float) -> int:
    return max(int(ttl_s * 1000), 1)


def _marks(query: str) -> str:
    """A shared summary query (``?`` marks, no ``%``) in psycopg's parameter style."""
    return query.replace("?", "%s")


class _Server:
    """What may be shown of a DSN: ``user@host:port/dbname``, never its password."""

    def __init__(self, dsn: str) -> None:
        try:
            parts = conninfo_to_dict(dsn)
        except psycopg.Error:
            # the driver's message may quote the DSN, password and all
            raise JournalError(
                "the PostgreSQL DSN cannot be parsed (it is not shown: it may hold a password)"
            ) from None
        self.password = str(parts.get("password") or "")
        user, host = parts.get("user") or "", parts.get("host") or "localhost"
        port, dbname = parts.get("port") or "5432", parts.get("dbname") or ""
        self.shown = f"{user}@{host}:{port}/{dbname}" if user else f"{host}:{port}/{dbname}"


class PostgresStore:
    """An :class:`~mt5gate.orders.store.OrderStore` and
    :class:`~mt5gate.orders.store.FleetRegistry` in PostgreSQL (module docstring).

    ``dsn``: a libpq connection string or ``postgresql://`` URL (it may carry a password).
    ``schema``: the PostgreSQL schema holding the tables (one database can serve several
    journals). ``name`` is the connection's ``application_name`` (``pg_stat_activity``).
    ``clock_ms`` replaces the server's clock (tests); ``redactor`` masks secrets in block
    reasons and notes (the pipeline redacts events before they reach a store). The
    connection opens, and the schema is migrated, at :meth:`open` or at the first call;
    ``migrate=False`` (inspection) refuses a missing or older schema instead of creating or
    upgrading it. Use it from one event loop.
    """

    def __init__(
        self,
        dsn: str,
        *,
        schema: str = "mt5gate",
        name: str = "mt5gate",
        namespace: int = DEFAULT_NAMESPACE,
        clock_ms: Callable[[], int] | None = None,
        monotonic_ns: Callable[[], int] = time.monotonic_ns,
        redactor: Redactor | None = None,
        connect_timeout_s: float = 10.0,
        migrate: bool = True,
    ) -> None:
        if not _SCHEMA_NAME.match(schema):
            raise ValueError(f"schema must be a lower-case SQL name, got {schema!r}")
        self._dsn = dsn
        self._server = _Server(dsn)
        self.schema = schema
        self.name = name
        self.namespace = namespace
        self.codec = EventCodec(redactor)
        self.codec.protect(*[self._server.password] if self._server.password else [])
        self._clock_ms = clock_ms
        self._monotonic_ns = monotonic_ns
        self._connect_timeout_s = connect_timeout_s
        self._conn: Conn | None = None
        self._migrated = False
        self._may_migrate = migrate
        self._closed = False
        self._lock = asyncio.Lock()

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open" if self._conn is not None else "idle"
        return f"PostgresStore({self._server.shown!r}, schema={self.schema!r}, {state})"

    @property
    def where(self) -> str:
        """The server and schema, as shown in messages (no password)."""
        return f"postgresql {self._server.shown} (schema {self.schema})"

    async def __aenter__(self) -> Self:
        return await self.open()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- the connection ------------------------------------------------------------------------

    async def open(self) -> Self:
        """Connect and bring the schema up to date now (otherwise the first call does)."""
        async with self._session():
            return self

    async def close(self) -> None:
        """Close the connection (idempotent); later calls raise :class:`JournalError`."""
        async with self._lock:
            self._closed = True
            await self._drop()

    async def backend_pid(self) -> int:
        """The server process serving this store's connection (operators, tests)."""
        async with self._session() as conn:
            return conn.info.backend_pid

    def _error(self, error: BaseException) -> JournalError:
        """The driver's error as a :class:`JournalError` naming the server, password masked."""
        said = self.codec.text(str(error).strip()) or type(error).__name__
        return JournalError(f"order journal {self.where}: {said}")

    async def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(psycopg.Error):
                await conn.close()

    async def _connection(self) -> Conn:
        """The open connection, a new one when there is none, the schema migrated once."""
        if self._closed:
            raise JournalError(f"the order journal {self.where} is closed")
        if self._conn is None:
            self._conn = await self._connect()
        if not self._migrated:
            await self._migrate(self._conn)
            self._migrated = True
        return self._conn

    async def _connect(self) -> Conn:
        conn: Conn = await psycopg.AsyncConnection.connect(
            self._dsn, autocommit=True, connect_timeout=max(int(self._connect_timeout_s), 1),
            application_name=self.name[:63],
        )  # fmt: skip
        try:
            for name, value in _SETTINGS.items():
                await conn.execute(sql.SQL("SET {} = {}").format(sql.Identifier(name),
                                                                 sql.Literal(value)))  # fmt: skip
            await conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(self.schema)))
        except BaseException:
            await conn.close()
            raise
        return conn

    @asynccontextmanager
    async def _session(self) -> AsyncIterator[Conn]:
        """The connection, for this call alone. A driver error becomes :class:`JournalError`;
        a broken connection (or a call cancelled mid-way) is dropped, and the next call opens
        a new one."""
        async with self._lock:
            try:
                yield await self._connection()
            except psycopg.Error as error:
                if self._conn is None or self._conn.broken or self._conn.closed:
                    said = self.codec.text(str(error).strip())
                    log.warning("order journal %s: connection lost (%s); the next call "
                                "reconnects", self.where, said)  # fmt: skip
                    await self._drop()
                raise self._error(error) from None
            except asyncio.CancelledError:
                await self._drop()  # the transaction's fate is the server's; start clean
                raise

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[Conn]:
        """One transaction, committed when the block ends (rolled back if it raises)."""
        async with self._session() as conn, conn.transaction():
            yield conn

    async def _rows(self, query: Any, params: Any = None) -> list[tuple[Any, ...]]:
        async with self._session() as conn:
            cursor = await conn.execute(query, params)
            return await cursor.fetchall()

    @staticmethod
    async def _one(conn: Conn, query: Any, params: Any = None) -> tuple[Any, ...] | None:
        cursor = await conn.execute(query, params)
        return await cursor.fetchone()

    async def _now(self, conn: Conn) -> int:
        """The store's clock: the injected one, else the database server's."""
        if self._clock_ms is not None:
            return self._clock_ms()
        row = await self._one(conn, _NOW)
        assert row is not None
        return int(row[0])

    # -- migrations ----------------------------------------------------------------------------

    async def _migrate(self, conn: Conn) -> None:
        """Create or upgrade the schema: one transaction, under an advisory lock that every
        opener of this schema takes, so replicas starting together apply each file once.
        Without ``migrate`` (inspection), only check that the schema is this code's."""
        known = migrations()
        if not self._may_migrate:
            self._check_version(await self._stored_version(conn), len(known), migrate=False)
            return
        async with conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))",
                               (f"mt5gate:migrations:{self.schema}",))  # fmt: skip
            await conn.execute(
                sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(self.schema))
            )
            await conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY,"
                " name TEXT NOT NULL, applied_utc_ms BIGINT NOT NULL)"
            )
            applied = await self._stored_version(conn)
            self._check_version(applied, len(known), migrate=True)
            for version, name, text in known[applied:]:
                await conn.execute(text.encode())
                await conn.execute(
                    "INSERT INTO schema_migrations VALUES (%s, %s, %s)",
                    (version, name, await self._now(conn)),
                )
                log.info("order journal %s: applied migration %04d_%s", self.where, version, name)

    async def _stored_version(self, conn: Conn) -> int | None:
        """The schema's version; ``None`` when it has no ``schema_migrations`` table."""
        table = f"{self.schema}.schema_migrations"
        found = await self._one(conn, "SELECT to_regclass(%s) IS NOT NULL", (table,))
        if not found or not found[0]:
            return None
        row = await self._one(conn, "SELECT COALESCE(MAX(version), 0) FROM schema_migrations")
        return int(row[0]) if row else 0

    def _check_version(self, applied: int | None, known: int, *, migrate: bool) -> None:
        """Refuse a schema of a newer mt5gate; without ``migrate``, a missing or older one."""
        if applied is not None and applied > known:
            raise JournalError(
                f"order journal {self.where} has schema version {applied}, written by a "
                f"newer mt5gate; this one knows versions up to {known}: upgrade mt5gate"
            )
        if migrate:
            return
        if not applied:
            raise JournalError(f"no order journal at {self.where}")
        if applied < known:
            raise JournalError(
                f"order journal {self.where} has schema version {applied}; open it once with "
                "this mt5gate (mt5gate serve, or any trading command) to migrate it"
            )

    async def schema_version(self) -> int:
        """The schema version the database is at."""
        rows = await self._rows("SELECT COALESCE(MAX(version), 0) FROM schema_migrations")
        return int(rows[0][0])

    # -- leases --------------------------------------------------------------------------------

    async def _locked_lease(self, conn: Conn, login: int) -> Lease | None:
        """The account's lease, its row locked until the transaction ends."""
        return _lease(await self._one(conn, _LEASE + " WHERE login = %s FOR UPDATE", (login,)))

    async def _fenced(self, conn: Conn, fence: Fence) -> None:
        """Lock the account's lease row and refuse a fence that is not its lease."""
        check_fence(fence, await self._locked_lease(conn, fence.login))

    async def acquire(
        self,
        login: int,
        owner: str,
        ttl_s: float,
        info: Mapping[str, Any],
        *,
        dead: tuple[str, int] | None = None,
    ) -> Fence:
        """Take the account's lease (free, expired, ours, or held by ``dead``);
        :class:`~mt5gate.orders.store.LeaseHeldError` otherwise. Two stores racing for a free
        account: the row both lock decides, one wins."""
        ClientOrderId(login, 1, self.namespace)
        async with self._transaction() as conn:
            # a row to lock even for an account never leased (it is this placeholder only
            # until the UPDATE below, in the same transaction)
            await conn.execute(
                "INSERT INTO leases (login, owner, epoch, expires_utc_ms, acquired_utc_ms)"
                " VALUES (%s, '', 0, 0, 0) ON CONFLICT (login) DO NOTHING",
                (login,),
            )
            current = await self._locked_lease(conn, login)
            lease, took_over = take_lease(current, login, owner, ttl_s, info, dead,
                                          await self._now(conn))  # fmt: skip
            await conn.execute(
                "UPDATE leases SET owner = %s, epoch = %s, expires_utc_ms = %s,"
                " acquired_utc_ms = %s, info = %s WHERE login = %s",
                (owner, lease.epoch, lease.expires_utc_ms, lease.acquired_utc_ms,
                 json.dumps(dict(lease.info), sort_keys=True), login),
            )  # fmt: skip
            return Fence(login, owner, lease.epoch, lease.expires_utc_ms, took_over)

    async def renew(self, fence: Fence, ttl_s: float) -> Fence:
        """Extend the lease while ``fence`` is current; ``FencedOutError`` otherwise."""
        async with self._transaction() as conn:
            await self._fenced(conn, fence)
            expires = await self._now(conn) + _ttl_ms(ttl_s)
            await conn.execute("UPDATE leases SET expires_utc_ms = %s WHERE login = %s",
                               (expires, fence.login))  # fmt: skip
            return Fence(fence.login, fence.owner, fence.epoch, expires)

    async def release(self, fence: Fence) -> None:
        """Let the lease expire now if it is still ours (its epoch stays: it never goes down)."""
        async with self._transaction() as conn:
            await conn.execute(
                "UPDATE leases SET expires_utc_ms = LEAST(expires_utc_ms, %s)"
                " WHERE login = %s AND owner = %s AND epoch = %s",
                (await self._now(conn), fence.login, fence.owner, fence.epoch),
            )

    async def lease(self, login: int) -> Lease | None:
        """The account's lease as stored (live or expired), ``None`` if never taken."""
        rows = await self._rows(_LEASE + " WHERE login = %s", (login,))
        return _lease(rows[0]) if rows else None

    # -- writes --------------------------------------------------------------------------------

    async def intent(
        self,
        fence: Fence,
        request: Any,
        key: str | None,
        *,
        sent: Callable[[ClientOrderId], NewEvent] | None = None,
    ) -> ClientOrderId:
        """A fresh client id and its INTENT (and SENT), in one fenced transaction; a ``key``
        used before returns its first id for the same request (only without ``sent``), and is
        an :class:`~mt5gate.orders.store.IdempotencyConflict` otherwise."""
        login = fence.login
        ClientOrderId(login, 1, self.namespace)
        body = canonical_json(request)
        async with self._transaction() as conn:
            await self._fenced(conn, fence)
            if key is not None:
                first = await self._first_use(conn, login, key, body, sent is not None)
                if first is not None:
                    return first
            now = await self._now(conn)
            client_id = await self._allocate(conn, login, now)
            await self._insert(conn, NewEvent(EventKind.INTENT, client_id, request), key,
                               previous=None, now_ms=now)  # fmt: skip
            if sent is not None:
                await self._insert(conn, sent(client_id), None, previous=EventKind.INTENT,
                                   now_ms=now)  # fmt: skip
            return client_id

    async def _first_use(
        self, conn: Conn, login: int, key: str, body: str | None, sending: bool
    ) -> ClientOrderId | None:
        """The order ``key`` was first used for, when it was for this same ``body``;
        ``IdempotencyConflict`` for another body, or when the caller would send."""
        row = await self._one(
            conn,
            "SELECT client_id, request FROM events"
            " WHERE login = %s AND idempotency_key = %s AND kind = 'INTENT'",
            (login, key),
        )
        if row is None:
            return None
        first = ClientOrderId(login, row[0], self.namespace)
        if sending or row[1] != body:
            raise IdempotencyConflict(login, key, first)
        return first

    async def _allocate(self, conn: Conn, login: int, now_ms: int) -> ClientOrderId:
        """The account's next client sequence, never below the wall clock in ms since 2020."""
        row = await self._one(conn, _NEXT_SEQUENCE, (login, id_floor_ms(lambda: now_ms)))
        assert row is not None
        return ClientOrderId(login, row[0], self.namespace)

    async def append(self, fence: Fence, event: NewEvent) -> JournalEvent:
        """One event, refused unless ``fence`` is current and the order's last event allows
        it (:data:`~mt5gate.orders.core.TRANSITIONS`)."""
        cid = event.client_id
        async with self._transaction() as conn:
            await self._fenced(conn, fence)
            last = await self._one(conn, _LAST_KIND, (cid.login, cid.sequence))
            previous = EventKind(last[0]) if last else None
            return await self._insert(conn, event, None, previous=previous,
                                      now_ms=await self._now(conn))  # fmt: skip

    async def _insert(
        self, conn: Conn, event: NewEvent, key: str | None, *,
        previous: EventKind | None, now_ms: int,
    ) -> JournalEvent:  # fmt: skip
        """One event row, after the transition check (the caller's transaction)."""
        if not legal(previous, event.kind):
            raise IllegalTransitionError(event.client_id, previous, event.kind)
        mono, cid = self._monotonic_ns(), event.client_id
        row = await self._one(conn, _INSERT, (
            event.kind.value, now_ms, mono, cid.login, cid.sequence, key,
            canonical_json(event.request), canonical_json(event.result), event.retcode,
            event.note, event.order_ticket, event.deal_ticket,
        ))  # fmt: skip
        assert row is not None
        return JournalEvent(row[0], event.kind, now_ms, mono, cid, key, event.request,
                            event.result, event.retcode, event.note, event.order_ticket,
                            event.deal_ticket)  # fmt: skip

    # -- account blocks ------------------------------------------------------------------------

    async def block(self, fence: Fence, reason: str, sequences: Collection[int]) -> None:
        """Stop new orders on the account until an operator acknowledges (fenced); nothing is
        written when it is already blocked for all of ``sequences``."""
        async with self._transaction() as conn:
            await self._fenced(conn, fence)
            current = await self._block(conn, fence.login)
            known = set(current.sequences) if current is not None else set()
            if current is not None and set(sequences) <= known:
                return
            merged = sorted(known | set(sequences))
            now = await self._now(conn)
            await conn.execute(_ADD_BLOCK, (fence.login, "BLOCK", now, self.codec.text(reason),
                                            json.dumps(merged)))  # fmt: skip

    async def acknowledge(self, login: int, note: str) -> AccountBlock | None:
        """An operator's acknowledgement: new orders may go again. Returns the block it lifted
        (``None`` when there was none: nothing is written). Needs no fence (a person's
        decision), but locks the lease row so that it cannot pass a block being written."""
        async with self._transaction() as conn:
            await self._locked_lease(conn, login)
            current = await self._block(conn, login)
            if current is None:
                return None
            await conn.execute(_ADD_BLOCK, (login, "ACKNOWLEDGE", await self._now(conn),
                                            self.codec.text(note),
                                            json.dumps(list(current.sequences))))  # fmt: skip
            return current

    async def _block(self, conn: Conn, login: int) -> AccountBlock | None:
        row = await self._one(conn, _BLOCK, (login,))
        if row is None or row[0] != "BLOCK":
            return None
        return AccountBlock(login, row[2], row[1], tuple(json.loads(row[3])))

    async def account_block(self, login: int) -> AccountBlock | None:
        """The account's active block, if any."""
        async with self._session() as conn:
            return await self._block(conn, login)

    # -- reads ---------------------------------------------------------------------------------

    def _event(self, row: tuple[Any, ...]) -> JournalEvent:
        seq, kind, utc_ms, mono, login, client, key, request, result, retcode, note, o, d = row
        return JournalEvent(
            seq, EventKind(kind), utc_ms, mono, ClientOrderId(login, client, self.namespace),
            key, None if request is None else json.loads(request),
            None if result is None else json.loads(result), retcode, note, o, d,
        )  # fmt: skip

    async def events(self, login: int, sequence: int) -> list[JournalEvent]:
        """Every event of one order, oldest first."""
        rows = await self._rows(
            f"SELECT {_COLUMNS} FROM events WHERE login = %s AND client_id = %s ORDER BY seq",
            (login, sequence),
        )
        return [self._event(row) for row in rows]

    async def history(self, login: int, client_id: ClientOrderId | int) -> list[JournalEvent]:
        """Every event of one order, oldest first (the inspection name of :meth:`events`)."""
        sequence = client_id.sequence if isinstance(client_id, ClientOrderId) else client_id
        return await self.events(login, sequence)

    async def events_after(self, login: int, seq: int, limit: int = 500) -> list[JournalEvent]:
        """The account's events whose ``seq`` is above ``seq``, oldest first, at most
        ``limit``."""
        rows = await self._rows(
            f"SELECT {_COLUMNS} FROM events WHERE login = %s AND seq > %s ORDER BY seq LIMIT %s",
            (login, seq, max(limit, 0)),
        )
        return [self._event(row) for row in rows]

    async def by_key(self, login: int, key: str) -> ClientOrderId | None:
        """The order the account first used idempotency ``key`` for."""
        rows = await self._rows(
            "SELECT client_id FROM events"
            " WHERE login = %s AND idempotency_key = %s AND kind = 'INTENT'",
            (login, key),
        )
        return ClientOrderId(login, rows[0][0], self.namespace) if rows else None

    async def open_orders(self, login: int) -> list[ClientOrderId]:
        """Orders whose outcome is still open (``UNRESOLVED_KINDS``), oldest event first."""
        kinds = sorted(kind.value for kind in UNRESOLVED_KINDS)
        rows = await self._rows(_UNRESOLVED, (login, kinds))
        return [ClientOrderId(row[0], row[1], self.namespace) for row in rows]

    async def head_seq(self, login: int) -> int:
        """The account's newest journal seq (0 without events)."""
        rows = await self._rows("SELECT MAX(seq) FROM events WHERE login = %s", (login,))
        return int(rows[0][0] or 0) if rows else 0

    async def known_sequences(self, login: int) -> set[int]:
        """Every client sequence of the account with at least one event."""
        rows = await self._rows("SELECT DISTINCT client_id FROM events WHERE login = %s",
                                (login,))  # fmt: skip
        return {row[0] for row in rows}

    async def last_kinds(self, login: int, sequences: Collection[int]) -> dict[int, EventKind]:
        """The last event kind of each of ``sequences`` the journal knows."""
        rows = await self._rows(_LAST_KINDS, (login, sorted(set(sequences))))
        return {row[0]: EventKind(row[1]) for row in rows}

    async def flagged(self, login: int, kinds: Collection[EventKind]) -> set[int]:
        """Client sequences of the account with an event of one of ``kinds``."""
        names = sorted({EventKind(kind).value for kind in kinds})
        rows = await self._rows(
            "SELECT DISTINCT client_id FROM events WHERE login = %s AND kind = ANY(%s)",
            (login, names),
        )
        return {row[0] for row in rows}

    # -- inspection (mt5gate journal) ----------------------------------------------------------

    async def summaries(
        self,
        login: int | None = None,
        *,
        states: Collection[EventKind] | None = None,
        key: str | None = None,
        ticket: int | None = None,
        after_sequence: int = 0,
        limit: int | None = None,
        newest_first: bool = False,
    ) -> list[OrderSummary]:
        """One summary per order, as :meth:`SqliteJournal.summaries
        <mt5gate.orders.journal.SqliteJournal.summaries>` (same filters, same query)."""
        query, params = summary_query(login, states=states, key=key, ticket=ticket,
                                      after_sequence=after_sequence, limit=limit,
                                      newest_first=newest_first)  # fmt: skip
        return [summary_of(row, self.namespace) for row in
                await self._rows(_marks(query), params)]  # fmt: skip

    async def summary(self, login: int, client_id: ClientOrderId | int) -> OrderSummary | None:
        """The summary of one order; ``None`` when the journal never saw it."""
        query, params = one_summary_query(login, client_id)
        rows = await self._rows(_marks(query), params)
        return summary_of(rows[0], self.namespace) if rows else None

    async def logins(self) -> list[int]:
        """The accounts that have events, ascending."""
        rows = await self._rows("SELECT DISTINCT login FROM events ORDER BY login")
        return [row[0] for row in rows]

    # -- the fleet registry --------------------------------------------------------------------

    async def now_ms(self) -> int:
        """The store's clock (the database server's unless one was injected)."""
        async with self._session() as conn:
            return await self._now(conn)

    async def leases(self) -> list[Lease]:
        """Every account's lease as stored (live or expired), by login."""
        rows = await self._rows(_LEASE + " WHERE epoch > 0 ORDER BY login")
        return [lease for lease in map(_lease, rows) if lease is not None]

    async def heartbeat(self, member: str, info: Mapping[str, Any], ttl_s: float) -> Member:
        """``member`` runs for ``ttl_s`` more seconds (its draining flag is kept); members
        expired for over :data:`~mt5gate.orders.store.MEMBER_PRUNE_MS` are pruned."""
        async with self._transaction() as conn:
            now = await self._now(conn)
            await conn.execute("DELETE FROM members WHERE expires_utc_ms < %s",
                               (now - MEMBER_PRUNE_MS,))  # fmt: skip
            row = await self._one(
                conn,
                "INSERT INTO members (id, info, expires_utc_ms) VALUES (%s, %s, %s)"
                " ON CONFLICT (id) DO UPDATE SET info = excluded.info,"
                " expires_utc_ms = excluded.expires_utc_ms RETURNING draining",
                (member, json.dumps(dict(info), sort_keys=True), now + _ttl_ms(ttl_s)),
            )
            assert row is not None
            return Member(member, dict(info), now + _ttl_ms(ttl_s), bool(row[0]))

    async def members(self) -> list[Member]:
        """Every registered member (live or expired), by id."""
        rows = await self._rows(
            "SELECT id, info, expires_utc_ms, draining FROM members ORDER BY id"
        )
        return [Member(row[0], json.loads(row[1]), row[2], bool(row[3])) for row in rows]

    async def set_draining(self, member: str, draining: bool) -> bool:
        """Mark ``member`` draining or not; ``False`` when it is not registered."""
        async with self._transaction() as conn:
            cursor = await conn.execute("UPDATE members SET draining = %s WHERE id = %s",
                                        (draining, member))  # fmt: skip
            return cursor.rowcount > 0

    async def place(self, login: int, member: str | None) -> None:
        """Pin account ``login`` to ``member``; ``None`` removes the pin."""
        ClientOrderId(login, 1, self.namespace)
        async with self._transaction() as conn:
            if member is None:
                await conn.execute("DELETE FROM placements WHERE login = %s", (login,))
            else:
                await conn.execute(
                    "INSERT INTO placements (login, member) VALUES (%s, %s)"
                    " ON CONFLICT (login) DO UPDATE SET member = excluded.member",
                    (login, member),
                )

    async def placements(self) -> dict[int, str]:
        """Every pinned account and its member."""
        rows = await self._rows("SELECT login, member FROM placements ORDER BY login")
        return {row[0]: row[1] for row in rows}
