"""The embedded order journal: one SQLite file, on disk before an order leaves the gateway.

:class:`SqliteJournal` is the storage engine behind :class:`~mt5gate.orders.sqlite.SqliteStore`
(the async :class:`~mt5gate.orders.store.OrderStore` the pipeline uses), and the synchronous
API that inspection (``mt5gate journal``) and tests read and write directly.

The journal is append-only (triggers refuse UPDATE and DELETE of events): each fact about an
order is an :class:`~mt5gate.orders.core.EventKind` row (UTC and monotonic time, account, client
id, request, result, retcode, note). Beside the events it keeps, per account:

* the client-id sequence, never below the wall clock in ms since 2020 (so a lost, empty or
  restored journal cannot hand out an id it gave before);
* the account's **lease** (owner, fencing epoch, expiry). Every write is checked against it in
  the same transaction: a write carrying an older epoch is refused (:class:`FencedOutError`), and so
  is an unfenced write once the account has ever been leased;
* **blocks**: the broker holds ids in our namespace this journal never issued (it is behind the
  broker), so new orders stop until an operator acknowledges it (``mt5gate journal
  acknowledge``). Append-only too.

Every event is also checked against :data:`~mt5gate.orders.core.TRANSITIONS`. Durability: WAL,
``synchronous=FULL``, one transaction per write committed before the method returns (an INTENT
and the SENT of a new order share one). The file is created 0600 (and its directory 0700 when
the journal creates it). Schema version 3; a version 1 or 2 file is migrated on open.

It is also the fleet registry of the replicas sharing it
(:class:`~mt5gate.orders.store.FleetRegistry`: heartbeats, draining flags, placements); with
one SQLite file that is one host's processes, the same interface the PostgreSQL store gives a
fleet.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Collection, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Final, Protocol, runtime_checkable

from pydantic import SecretStr

from mt5gate.orders.codec import EventCodec, canonical_json
from mt5gate.orders.core import UNRESOLVED_KINDS, EventKind, legal
from mt5gate.orders.ids import DEFAULT_NAMESPACE, ClientOrderId
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

__all__ = [
    "SCHEMA_VERSION",
    "UNRESOLVED_KINDS",
    "EventKind",
    "IdempotencyConflict",
    "JournalError",
    "JournalEvent",
    "OrderJournal",
    "OrderSummary",
    "SqliteJournal",
]

#: The schema this code writes and reads; an older file is migrated, a newer one refused.
SCHEMA_VERSION: Final = 3

#: What ``record_intent(..., sent=...)`` calls with the new id: (the request sent, a result).
SentFor = Callable[[ClientOrderId], tuple[Mapping[str, Any], object]]


@runtime_checkable
class OrderJournal(Protocol):
    """The synchronous journal API (inspection, tests); durable when a write returns."""

    namespace: int

    def record_intent(
        self,
        login: int,
        request: Mapping[str, Any],
        idempotency_key: str | None = None,
        *,
        sent: SentFor | None = None,
        fence: Fence | None = None,
    ) -> ClientOrderId:
        """Allocate an id and write INTENT (and SENT) in one transaction."""
        ...

    def record(
        self,
        kind: EventKind,
        client_id: ClientOrderId | int,
        login: int,
        *,
        result: object = None,
        retcode: int | None = None,
        note: str = "",
        request: object = None,
        fence: Fence | None = None,
    ) -> JournalEvent:
        """Append one event for an order."""
        ...

    def history(self, login: int, client_id: ClientOrderId | int) -> list[JournalEvent]:
        """Every event of one order, oldest first."""
        ...

    def unresolved(self, login: int | None = None) -> list[ClientOrderId]:
        """Orders whose last event is in :data:`UNRESOLVED_KINDS`, oldest first."""
        ...

    def protect(self, *secrets: str | SecretStr) -> None:
        """Mask these values wherever they would be stored."""
        ...

    def close(self) -> None:
        """Release the storage; later calls raise :class:`JournalError`."""
        ...


_SCHEMA_V1: Final = """
CREATE TABLE schema_version (version INTEGER NOT NULL);
CREATE TABLE sequences (login INTEGER PRIMARY KEY, last INTEGER NOT NULL);
CREATE TABLE events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    utc_ms INTEGER NOT NULL,
    monotonic_ns INTEGER NOT NULL,
    login INTEGER NOT NULL,
    client_id INTEGER NOT NULL,
    idempotency_key TEXT,
    request TEXT,
    result TEXT,
    retcode INTEGER,
    note TEXT NOT NULL DEFAULT '',
    order_ticket INTEGER,
    deal_ticket INTEGER
);
CREATE INDEX events_order ON events (login, client_id, seq);
CREATE UNIQUE INDEX events_key ON events (login, idempotency_key)
    WHERE kind = 'INTENT' AND idempotency_key IS NOT NULL;
CREATE INDEX events_order_ticket ON events (order_ticket) WHERE order_ticket IS NOT NULL;
CREATE INDEX events_deal_ticket ON events (deal_ticket) WHERE deal_ticket IS NOT NULL;
CREATE TRIGGER events_no_update BEFORE UPDATE ON events
    BEGIN SELECT RAISE(ABORT, 'the order journal is append-only'); END;
CREATE TRIGGER events_no_delete BEFORE DELETE ON events
    BEGIN SELECT RAISE(ABORT, 'the order journal is append-only'); END;
"""

#: Version 1 -> 2: account leases with fencing epochs, and account blocks (append-only).
_MIGRATE_V2: Final = """
CREATE TABLE leases (
    login INTEGER PRIMARY KEY,
    owner TEXT NOT NULL,
    epoch INTEGER NOT NULL,
    expires_utc_ms INTEGER NOT NULL,
    acquired_utc_ms INTEGER NOT NULL,
    info TEXT NOT NULL DEFAULT '{}'
);
CREATE TABLE blocks (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    login INTEGER NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('BLOCK', 'ACKNOWLEDGE')),
    utc_ms INTEGER NOT NULL,
    reason TEXT NOT NULL,
    sequences TEXT NOT NULL DEFAULT '[]'
);
CREATE INDEX blocks_login ON blocks (login, seq);
CREATE TRIGGER blocks_no_update BEFORE UPDATE ON blocks
    BEGIN SELECT RAISE(ABORT, 'account blocks are append-only'); END;
CREATE TRIGGER blocks_no_delete BEFORE DELETE ON blocks
    BEGIN SELECT RAISE(ABORT, 'account blocks are append-only'); END;
"""

#: Version 2 -> 3: the fleet registry (members' heartbeats and draining flags, placements).
_MIGRATE_V3: Final = """
CREATE TABLE members (
    id TEXT PRIMARY KEY,
    info TEXT NOT NULL DEFAULT '{}',
    expires_utc_ms INTEGER NOT NULL,
    draining INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE placements (login INTEGER PRIMARY KEY, member TEXT NOT NULL);
"""

#: Each entry takes a file from version ``n`` to ``n + 1``, in one transaction.
_MIGRATIONS: Final[Mapping[int, str]] = {1: _MIGRATE_V2, 2: _MIGRATE_V3}

_COLUMNS: Final = (
    "seq, kind, utc_ms, monotonic_ns, login, client_id, idempotency_key, request, result,"
    " retcode, note, order_ticket, deal_ticket"
)

_INTO_EVENTS: Final = (
    "INSERT INTO events (kind, utc_ms, monotonic_ns, login, client_id, idempotency_key,"
    " request, result, retcode, note, order_ticket, deal_ticket)"
)
_COLUMNS_OF_ROW: Final = (
    "kind", "utc_ms", "monotonic_ns", "login", "client_id", "idempotency_key", "request",
    "result", "retcode", "note", "order_ticket", "deal_ticket",
)  # fmt: skip
_ROW: Final = f"({', '.join('?' * len(_COLUMNS_OF_ROW))})"

#: A new order's INTENT, or its INTENT and SENT: one statement (atomic without a savepoint).
_INSERT_ROWS: Final = {
    1: f"{_INTO_EVENTS} VALUES {_ROW}",
    2: f"{_INTO_EVENTS} VALUES {_ROW}, {_ROW}",
}


def _append_sql(kind: EventKind) -> str:
    """One event appended to an order, inserted only if the order's last event allows it
    (:func:`~mt5gate.orders.core.legal`, evaluated in the statement: one step, no read
    first). Its seq is the row id (``lastrowid``); no row inserted means the transition was
    refused. The kinds are the enum's own names, safe as SQL literals."""
    allowed = [p.value if p is not None else "" for p in (None, *EventKind) if legal(p, kind)]
    kinds = ", ".join(f"'{name}'" for name in allowed) or "NULL"
    return (
        f"{_INTO_EVENTS} SELECT {_ROW[1:-1]} WHERE COALESCE((SELECT kind"
        f" FROM events WHERE login = ? AND client_id = ? ORDER BY seq DESC LIMIT 1), '') IN"
        f" ({kinds})"
    )


_APPEND: Final = {kind: _append_sql(kind) for kind in EventKind}

_NEXT_SEQUENCE: Final = (
    "INSERT INTO sequences (login, last) VALUES (?, ?)"
    " ON CONFLICT (login) DO UPDATE SET last = MAX(last + 1, excluded.last) RETURNING last"
)

_UNRESOLVED: Final = (
    "SELECT e.login, e.client_id FROM events e JOIN"
    " (SELECT login, client_id, MAX(seq) AS last FROM events {where} GROUP BY login, client_id)"
    " l ON e.seq = l.last WHERE e.kind IN ({kinds}) ORDER BY e.seq"
)

_LAST_KIND: Final = (
    "SELECT kind FROM events WHERE login = ? AND client_id = ? ORDER BY seq DESC LIMIT 1"
)

_TAKE_LEASE: Final = (
    "INSERT INTO leases (login, owner, epoch, expires_utc_ms, acquired_utc_ms, info)"
    " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (login) DO UPDATE SET owner = excluded.owner,"
    " epoch = excluded.epoch, expires_utc_ms = excluded.expires_utc_ms,"
    " acquired_utc_ms = excluded.acquired_utc_ms, info = excluded.info"
)

_LEASE: Final = (
    "SELECT login, owner, epoch, expires_utc_ms, acquired_utc_ms, info FROM leases WHERE login = ?"
)

#: What a fence is compared with (the whole lease is read only to say why a write was refused).
_HOLDER: Final = "SELECT owner, epoch FROM leases WHERE login = ?"

_SUMMARIES: Final = """
WITH o AS (
    SELECT login, client_id, COUNT(*) AS n, MIN(seq) AS first, MAX(seq) AS last,
        MIN(CASE WHEN kind = 'INTENT' THEN seq END) AS intent,
        MAX(CASE WHEN retcode IS NOT NULL THEN seq END) AS rc,
        MAX(CASE WHEN order_ticket IS NOT NULL THEN seq END) AS ot,
        MAX(CASE WHEN deal_ticket IS NOT NULL THEN seq END) AS dt
    FROM events {where} GROUP BY login, client_id
)
SELECT o.login, o.client_id, i.idempotency_key, l.kind, o.n, f.utc_ms, l.utc_ms, i.request,
    r.retcode, t.order_ticket, d.deal_ticket
FROM o
    JOIN events f ON f.seq = o.first
    JOIN events l ON l.seq = o.last
    LEFT JOIN events i ON i.seq = o.intent
    LEFT JOIN events r ON r.seq = o.rc
    LEFT JOIN events t ON t.seq = o.ot
    LEFT JOIN events d ON d.seq = o.dt
{having}
ORDER BY {order}
{limit}
"""


# -- order summaries (shared with the PostgreSQL store: standard SQL, ``?`` marks) ------------


def summary_query(
    login: int | None = None,
    *,
    states: Collection[EventKind] | None = None,
    key: str | None = None,
    ticket: int | None = None,
    after_sequence: int = 0,
    limit: int | None = None,
    newest_first: bool = False,
) -> tuple[str, tuple[object, ...]]:
    """The query (``?`` parameter marks) and its parameters for
    :meth:`SqliteJournal.summaries`, the arguments validated."""
    where: list[str] = []
    params: list[object] = []
    if login is not None:
        where.append("login = ?")
        params.append(_whole("login", login, 1))
    if _whole("after_sequence", after_sequence, 0):
        where.append("client_id > ?")
        params.append(after_sequence)
    if key is not None:
        if not isinstance(key, str):
            raise TypeError(f"key must be a str, not {type(key).__name__}")
        same = "" if login is None else " AND login = ?"  # lets SQLite search events_key
        where.append(
            "(login, client_id) IN (SELECT login, client_id FROM events"
            f" WHERE kind = 'INTENT' AND idempotency_key = ?{same})"
        )
        params += [key] if login is None else [key, login]
    if ticket is not None:
        where.append(
            "(login, client_id) IN (SELECT login, client_id FROM events"
            " WHERE order_ticket = ? OR deal_ticket = ?)"
        )
        params += [_whole("ticket", ticket, 1)] * 2
    kinds = None if states is None else _kinds(states)
    if limit is not None:
        _whole("limit", limit, 1)
    return _summaries_sql(where, params, kinds, limit, newest_first=newest_first)


def one_summary_query(login: int, client_id: ClientOrderId | int) -> tuple[str, tuple[object, ...]]:
    """The query and parameters for the summary of one order (:meth:`SqliteJournal.summary`)."""
    _whole("login", login, 1)
    if isinstance(client_id, ClientOrderId):
        if client_id.login != login:
            raise ValueError(f"client_id {client_id} is not an order of account {login}")
        sequence = client_id.sequence
    else:
        sequence = _whole("client_id", client_id, 1)
    return _summaries_sql(["login = ?", "client_id = ?"], [login, sequence], None, 1)


def _summaries_sql(
    where: list[str],
    params: list[object],
    kinds: list[str] | None,
    limit: int | None,
    *,
    newest_first: bool = False,
) -> tuple[str, tuple[object, ...]]:
    sql = _SUMMARIES.format(
        where=f"WHERE {' AND '.join(where)}" if where else "",
        having="" if kinds is None else f"WHERE l.kind IN ({', '.join('?' * len(kinds))})",
        order="o.login DESC, o.client_id DESC" if newest_first else "o.login, o.client_id",
        limit="" if limit is None else "LIMIT ?",
    )
    return sql, (*params, *(kinds or ()), *(() if limit is None else (limit,)))


def summary_of(row: tuple[Any, ...] | Any, namespace: int) -> OrderSummary:
    """One row of a summary query as an :class:`OrderSummary`."""
    login, client, key, kind, n, created, updated, request, retcode, order, deal = row
    return OrderSummary(
        client_id=ClientOrderId(login, client, namespace),
        idempotency_key=key,
        state=EventKind(kind),
        events=n,
        created_utc_ms=created,
        updated_utc_ms=updated,
        request=None if request is None else json.loads(request),
        retcode=retcode,
        order_ticket=order,
        deal_ticket=deal,
    )


def _sequence(client_id: ClientOrderId | int) -> int:
    return client_id.sequence if isinstance(client_id, ClientOrderId) else client_id


def _wall_ms() -> int:
    return time.time_ns() // 1_000_000


def _whole(name: str, value: object, minimum: int) -> int:
    """``value`` as a query argument: an int (not a bool) of at least ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, not {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{name} must be at least {minimum}, got {value}")
    return value


def _kinds(states: object) -> list[str]:
    """``states`` (a collection of kinds or their names) as sorted kind names."""
    if isinstance(states, str | bytes) or not isinstance(states, Collection):
        raise TypeError(f"states must be a collection of EventKind, not {type(states).__name__}")
    try:
        return sorted({EventKind(state).value for state in states})
    except ValueError as error:
        raise ValueError(f"states: {error}") from None


def _private_file(path: Path) -> None:
    """Create ``path`` readable by its owner only (0600), and tighten an existing file that
    others could read: nothing of the journal is ever world-readable (SQLite gives its WAL and
    shared-memory files the database's mode). A missing directory is not created: it is a
    mistyped path more often than a wish (the service creates its data directory, 0700)."""
    if str(path) == ":memory:":
        return
    try:
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
    except FileExistsError:
        if path.stat().st_mode & 0o077:
            os.chmod(path, 0o600)
    except OSError as error:
        raise JournalError(f"cannot open order journal {path}: {error}") from error


def _lease(row: tuple[Any, ...] | None) -> Lease | None:
    if row is None:
        return None
    login, owner, epoch, expires, acquired, info = row
    return Lease(login, owner, epoch, expires, acquired, json.loads(info or "{}"))


#: How long opening waits for other openers of the same file to switch it to WAL.
_WAL_WAIT_S: Final = 10.0


def _write_ahead(conn: sqlite3.Connection) -> None:
    """Put the file in WAL mode. The switch needs the file to itself, and SQLite answers
    "locked" at once, without its busy handler, while another process opening the same new
    file holds it (several openers at one moment: a gateway and ``mt5gate journal``, replicas):
    it is tried again for up to :data:`_WAL_WAIT_S`. A file already in WAL mode stays so."""
    deadline = time.monotonic() + _WAL_WAIT_S
    while True:
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


class SqliteJournal:
    """The embedded journal: one SQLite file in WAL mode, ``synchronous=FULL``.

    Every write is one transaction committed (and so fsync'd by SQLite) before the method
    returns. One connection serves all threads; a lock is held only around statements.
    ``redactor`` hides known secrets in what the legacy ``record`` methods store; ``clock_ms``
    and ``monotonic_ns`` are injectable for tests (``clock_ms`` also dates leases and sets the
    floor of new client ids). Opening a corrupt, torn, foreign or newer-schema file raises
    :class:`JournalError`; a version 1 file is migrated.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        redactor: Redactor | None = None,
        namespace: int = DEFAULT_NAMESPACE,
        clock_ms: Callable[[], int] = _wall_ms,
        monotonic_ns: Callable[[], int] = time.monotonic_ns,
        readonly: bool = False,
    ) -> None:
        self.path = Path(path)
        self.namespace = namespace
        self.codec = EventCodec(redactor)
        self._clock_ms = clock_ms
        self._monotonic_ns = monotonic_ns
        self._readonly = readonly
        # Re-entrant: a group holds it for its whole batch, and each write inside takes it again.
        self._lock = threading.RLock()
        self._grouped = False  # inside group(): writes join one transaction (see _transaction)
        self._began = False  # the group's transaction has started (at its first write)
        # Inside a group's transaction, the (owner, epoch) holding each account, as read by
        # the group's first fenced write: the transaction holds SQLite's write lock, so no
        # other connection can change it before the commit; this journal's own lease writes
        # and any rolled-back write drop it.
        self._holders: dict[int, tuple[str, int] | None] = {}
        self.commits = 0  # durable commits (fsyncs) so far: a group's writes share one
        self._conn: sqlite3.Connection | None = self._open()

    def __repr__(self) -> str:
        state = "open" if self._conn is not None else "closed"
        return f"SqliteJournal({str(self.path)!r}, {state})"

    def __enter__(self) -> SqliteJournal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- opening -------------------------------------------------------------------------------

    def _open(self) -> sqlite3.Connection:
        if self._readonly:
            return self._open_readonly()
        self._refuse_torn()
        _private_file(self.path)
        try:
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        except sqlite3.Error as error:
            raise JournalError(f"cannot open order journal {self.path}: {error}") from error
        try:
            self._prepare(conn)
        except BaseException:
            conn.close()
            raise
        return conn

    def _open_readonly(self) -> sqlite3.Connection:
        """A connection that can only read (``mt5gate journal``, the CLI's owner look-up)."""
        if not self.path.is_file():
            raise JournalError(f"no order journal at {self.path}")
        uri = f"{self.path.resolve().as_uri()}?mode=ro"
        try:
            conn = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA busy_timeout=10000")
            self._check_schema(conn, migrate=False)
        except sqlite3.DatabaseError as error:
            raise JournalError(
                f"order journal {self.path} is not a readable SQLite database ({error})"
            ) from error
        return conn

    def _refuse_torn(self) -> None:
        """An empty main file next to a non-empty WAL is a journal that lost its body. The WAL
        is looked at first: a process creating the file switches it to WAL mode (which writes
        the main file's first page) before the WAL gets any content, so a main file still
        empty after that is torn, not new (the other order misread a creator's file)."""
        wal = self.path.with_name(self.path.name + "-wal")
        try:
            logged = wal.stat().st_size > 0
            empty = logged and self.path.stat().st_size == 0
        except OSError:  # no WAL or no file (or no directory: the connect says so)
            return
        if empty:
            raise JournalError(
                f"order journal {self.path} is empty but its WAL is not: the file is torn; "
                "restore it from a backup (do not delete it: unresolved orders may be in it)"
            )

    def _prepare(self, conn: sqlite3.Connection) -> None:
        try:
            conn.execute("PRAGMA busy_timeout=10000")
            _write_ahead(conn)
            conn.execute("PRAGMA synchronous=FULL")
            self._check_integrity(conn)
            if not self._tables(conn):  # new (or emptied by a creator that has not committed)
                stamp = f"INSERT INTO schema_version VALUES ({SCHEMA_VERSION});"
                self._change(conn, f"{_SCHEMA_V1}{_MIGRATE_V2}{_MIGRATE_V3}{stamp}")
            self._check_schema(conn, migrate=True)
        except sqlite3.DatabaseError as error:
            raise JournalError(
                f"order journal {self.path} is not a readable SQLite database ({error}); "
                "restore it from a backup (do not delete it: unresolved orders may be in it)"
            ) from error

    def _check_integrity(self, conn: sqlite3.Connection) -> None:
        verdict = [row[0] for row in conn.execute("PRAGMA quick_check")]
        if verdict != ["ok"]:
            raise JournalError(
                f"order journal {self.path} is corrupt: {'; '.join(map(str, verdict[:5]))}; "
                "restore it from a backup"
            )

    @staticmethod
    def _tables(conn: sqlite3.Connection) -> set[str]:
        rows = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        return {row[0] for row in rows} - {"sqlite_sequence"}

    def _check_schema(self, conn: sqlite3.Connection, *, migrate: bool) -> None:
        if "schema_version" not in self._tables(conn):
            raise JournalError(f"{self.path} is an SQLite file but not an mt5gate order journal")
        row = conn.execute("SELECT MAX(version) FROM schema_version").fetchone()
        version = row[0] if row else None
        if isinstance(version, int) and version > SCHEMA_VERSION:
            raise JournalError(
                f"order journal {self.path} has schema version {version}, written by a newer "
                f"mt5gate; this one reads version {SCHEMA_VERSION}: upgrade mt5gate"
            )
        if version not in _MIGRATIONS and version != SCHEMA_VERSION:
            raise JournalError(
                f"order journal {self.path} has an unknown schema version {version!r}"
            )
        if version == SCHEMA_VERSION:
            return
        if not migrate:
            raise JournalError(
                f"order journal {self.path} has schema version {version}; open it once with "
                f"this mt5gate (mt5gate serve, or any trading command) to migrate it"
            )
        assert isinstance(version, int)
        while version < SCHEMA_VERSION:
            self._change(conn, f"{_MIGRATIONS[version]}"
                               f"INSERT INTO schema_version VALUES ({version + 1});")  # fmt: skip
            moved = self._version(conn)
            if moved <= version:
                raise JournalError(f"order journal {self.path}: the migration from schema "
                                   f"version {version} did not apply")  # fmt: skip
            version = moved

    @staticmethod
    def _version(conn: sqlite3.Connection) -> int:
        row = conn.execute("SELECT MAX(version) FROM schema_version").fetchone()
        return int(row[0])

    def _change(self, conn: sqlite3.Connection, script: str) -> None:
        """Create or migrate the schema in one write transaction. Two processes opening the
        same new (or old) file at once, a gateway and ``mt5gate journal`` say, both find it
        to do; the second gets the write lock only after the first committed, and its script
        then fails on tables that exist: it is rolled back, and the first one's schema is
        what the caller checks next."""
        try:
            conn.executescript(f"BEGIN IMMEDIATE;{script}COMMIT;")
        except sqlite3.OperationalError as error:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            if "already exists" not in str(error):
                raise

    def protect(self, *secrets: str | SecretStr) -> None:
        """Mask ``secrets`` in everything written from now on (the session passes its
        password and tokens, so no order comment or request can carry them to disk)."""
        with self._lock:
            self.codec.protect(*secrets)

    def close(self) -> None:
        """Close the connection (idempotent); the journal cannot be used afterwards. Inside a
        group, what the group wrote is committed first (closing would roll it back)."""
        with self._lock:
            if self._conn is not None:
                if self._grouped and self._conn.in_transaction:
                    self._conn.execute("COMMIT")
                self._conn.close()
                self._conn = None

    # -- statements ----------------------------------------------------------------------------

    @contextmanager
    def group(self) -> Iterator[None]:
        """Group commit: every write inside the block joins one transaction, committed (one
        fsync) when the block ends; each write is a savepoint, so one that fails rolls back
        alone and the others stand.

        The caller must not report any write of the group as done before the block has
        ended: a write is durable only then, and a failed commit raises here, losing them all
        (:class:`~mt5gate.orders.sqlite.SqliteStore` answers a batch's callers only after
        its group). The lock is held throughout, so another thread's write cannot slip into
        the open transaction and return before it is on disk.
        """
        with self._lock:
            if self._grouped:
                raise JournalError("order journal groups do not nest")
            self._grouped, self._began = True, False
            try:
                yield
                self._commit_group()
            except BaseException:
                conn = self._conn
                if conn is not None and conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            finally:
                self._grouped = self._began = False
                self._holders.clear()

    def _commit_group(self) -> None:
        conn = self._conn
        if not self._began or conn is None:
            return  # nothing was written (a batch of reads), or close() committed it
        if not conn.in_transaction:  # SQLite rolled it all back (I/O error,
            raise JournalError(  # disk full): none of the group's writes is on disk
                f"order journal {self.path}: the group's transaction was rolled back"
            )
        try:
            conn.execute("COMMIT")
        except sqlite3.DatabaseError as error:
            raise JournalError(f"order journal {self.path}: commit failed: {error}") from error
        self.commits += 1

    @contextmanager
    def _transaction(self, *, savepoint: bool = True) -> Iterator[sqlite3.Connection]:
        """One write transaction under the lock, committed (synced) when the block ends; inside
        :meth:`group`, a savepoint of the group's transaction instead. A write whose lasting
        change is its last statement (what comes before only checks, or moves the id sequence
        on, which is harmless alone) needs no savepoint in a group (``savepoint=False``):
        SQLite undoes a failed statement by itself."""
        with self._lock:
            conn = self._connection()
            if self._readonly:
                raise JournalError(f"order journal {self.path} is open read-only")
            if self._grouped:
                if savepoint:
                    with self._savepoint(conn):
                        yield conn
                else:
                    self._join_group(conn)
                    yield conn
                return
            try:
                conn.execute("BEGIN IMMEDIATE")
                yield conn
                conn.execute("COMMIT")
                self.commits += 1
            except BaseException as error:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                if isinstance(error, sqlite3.DatabaseError):
                    raise JournalError(f"order journal {self.path}: {error}") from error
                raise

    def _join_group(self, conn: sqlite3.Connection) -> None:
        """The group's transaction starts at its first write (a batch of reads takes no write
        lock). Once started it must still be open: SQLite rolls a whole transaction back on
        some errors (I/O, disk full), and a write must not then start a new one whose commit
        would seem to cover the group's earlier writes."""
        try:
            if self._began:
                if not conn.in_transaction:
                    raise JournalError(
                        f"order journal {self.path}: the group's transaction was rolled back"
                    )
                return
            conn.execute("BEGIN IMMEDIATE")
            self._began = True
        except sqlite3.DatabaseError as error:
            raise JournalError(f"order journal {self.path}: {error}") from error

    @contextmanager
    def _savepoint(self, conn: sqlite3.Connection) -> Iterator[None]:
        """One write of a group, in its own savepoint: a failed write is undone alone."""
        self._join_group(conn)
        try:
            conn.execute("SAVEPOINT journal_write")
        except sqlite3.DatabaseError as error:
            raise JournalError(f"order journal {self.path}: {error}") from error
        try:
            yield
            conn.execute("RELEASE journal_write")
        except BaseException as error:
            self._holders.clear()  # what the write read or changed is undone with it
            if conn.in_transaction:
                conn.execute("ROLLBACK TO journal_write")
                conn.execute("RELEASE journal_write")
            if isinstance(error, sqlite3.DatabaseError):
                raise JournalError(f"order journal {self.path}: {error}") from error
            raise

    def _query(self, sql: str, params: tuple[object, ...] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            try:
                return self._connection().execute(sql, params).fetchall()
            except sqlite3.DatabaseError as error:
                raise JournalError(f"order journal {self.path}: {error}") from error

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            raise JournalError(f"order journal {self.path} is closed")
        return self._conn

    def _id(self, login: int, sequence: int) -> ClientOrderId:
        return ClientOrderId(login, sequence, self.namespace)

    def _event(self, row: tuple[Any, ...]) -> JournalEvent:
        seq, kind, utc_ms, mono, login, client, key, request, result, retcode, note, o, d = row
        return JournalEvent(
            seq=seq,
            kind=EventKind(kind),
            utc_ms=utc_ms,
            monotonic_ns=mono,
            client_id=self._id(login, client),
            idempotency_key=key,
            request=None if request is None else json.loads(request),
            result=None if result is None else json.loads(result),
            retcode=retcode,
            note=note,
            order_ticket=o,
            deal_ticket=d,
        )

    # -- leases --------------------------------------------------------------------------------

    def acquire(
        self,
        login: int,
        owner: str,
        ttl_s: float,
        info: Mapping[str, Any] | None = None,
        *,
        dead: tuple[str, int] | None = None,
    ) -> Fence:
        """Take the account's lease when it is free, expired or already ``owner``'s, or when
        it is still held by ``dead`` (an ``(owner, epoch)`` the caller saw is gone: a crashed
        process on this host); raise :class:`LeaseHeldError` otherwise. A new holder gets a
        higher epoch (never below the id floor); the same live holder keeps its epoch and
        extends the expiry."""
        _whole("login", login, 1)
        with self._transaction() as conn:
            current = _lease(conn.execute(_LEASE, (login,)).fetchone())
            lease, took_over = take_lease(current, login, owner, ttl_s, info, dead,
                                          self._clock_ms())  # fmt: skip
            self._holders.pop(login, None)
            conn.execute(_TAKE_LEASE, (
                login, owner, lease.epoch, lease.expires_utc_ms, lease.acquired_utc_ms,
                json.dumps(dict(lease.info), sort_keys=True),
            ))  # fmt: skip
            return Fence(login, owner, lease.epoch, lease.expires_utc_ms, took_over)

    def renew(self, fence: Fence, ttl_s: float) -> Fence:
        """Extend the lease while ``fence`` is still current (:class:`FencedOutError` otherwise)."""
        with self._transaction() as conn:
            self._check_fence(conn, fence)
            expires = self._clock_ms() + max(int(ttl_s * 1000), 1)
            self._holders.pop(fence.login, None)
            conn.execute(
                "UPDATE leases SET expires_utc_ms = ? WHERE login = ? AND owner = ? AND epoch = ?",
                (expires, fence.login, fence.owner, fence.epoch),
            )
            return Fence(fence.login, fence.owner, fence.epoch, expires)

    def release(self, fence: Fence) -> None:
        """Let the lease expire now, if it is still ours (the epoch is kept: it never goes down)."""
        with self._transaction() as conn:
            self._holders.pop(fence.login, None)
            conn.execute(
                "UPDATE leases SET expires_utc_ms = MIN(expires_utc_ms, ?)"
                " WHERE login = ? AND owner = ? AND epoch = ?",
                (self._clock_ms(), fence.login, fence.owner, fence.epoch),
            )

    def lease(self, login: int) -> Lease | None:
        """The account's lease as stored (live or expired); ``None`` if it was never taken."""
        rows = self._query(_LEASE, (_whole("login", login, 1),))
        return _lease(rows[0]) if rows else None

    def now_ms(self) -> int:
        """The journal's clock (leases are judged by it)."""
        return self._clock_ms()

    def _check_fence(self, conn: sqlite3.Connection, fence: Fence | None, login: int = 0) -> None:
        """The write's fence must be the account's lease; an unfenced write is allowed only on
        an account that was never leased (legacy journals, and the journal's own tests)."""
        account = fence.login if fence is not None else login
        holder = self._holder(conn, account)
        if fence is None:
            if holder is None:
                return
            raise JournalError(
                f"account {account} is owned through its lease (epoch {holder[1]}); "
                "a write without the owner's fence is refused"
            )
        if holder != (fence.owner, fence.epoch):  # refused: the whole lease says why
            self._holders.pop(account, None)
            check_fence(fence, _lease(conn.execute(_LEASE, (account,)).fetchone()))

    def _holder(self, conn: sqlite3.Connection, login: int) -> tuple[str, int] | None:
        """``(owner, epoch)`` of the account's lease (``None``: never leased), read once per
        group transaction (see ``_holders``)."""
        if self._grouped and login in self._holders:
            return self._holders[login]
        row = conn.execute(_HOLDER, (login,)).fetchone()
        holder = None if row is None else (str(row[0]), int(row[1]))
        if self._grouped:
            self._holders[login] = holder
        return holder

    # -- writes --------------------------------------------------------------------------------

    def next_id(self, login: int, *, fence: Fence | None = None) -> ClientOrderId:
        """A fresh id from the account's durable sequence; the number is never handed out
        again, even if no event is ever written for it, nor by a journal that replaces this
        one (new numbers are never below the wall clock in ms since 2020)."""
        ClientOrderId(login, 1, self.namespace)  # validates login before touching the file
        with self._transaction() as conn:
            self._check_fence(conn, fence, login)
            return self._allocate(conn, login, self._clock_ms())

    def _allocate(self, conn: sqlite3.Connection, login: int, now_ms: int) -> ClientOrderId:
        floor = id_floor_ms(lambda: now_ms)
        (sequence,) = conn.execute(_NEXT_SEQUENCE, (login, floor)).fetchone()
        return self._id(login, sequence)

    def intent(
        self,
        fence: Fence | None,
        login: int,
        request: object,
        key: str | None,
        sent: Callable[[ClientOrderId], NewEvent] | None = None,
    ) -> ClientOrderId:
        """Allocate an id and write its INTENT (``request`` is plain data) in one transaction,
        synced before returning; with ``sent``, the SENT event in the same transaction.

        A ``key`` this account used before returns that first id and writes nothing (only
        without ``sent``); with a different request, or with ``sent`` (another writer took the
        key: nothing may be sent), it raises :class:`IdempotencyConflict`."""
        ClientOrderId(login, 1, self.namespace)
        body = canonical_json(request)
        # No savepoint in a group: what comes before the one INSERT writes nothing but the id
        # sequence, whose moving on alone is harmless (an id may go unused, never repeat).
        with self._transaction(savepoint=False) as conn:
            self._check_fence(conn, fence, login)
            if key is not None:
                existing = self._intent_for_key(conn, login, key)
                if existing is not None:
                    first = self._id(login, existing[0])
                    if sent is not None or existing[1] != body:
                        raise IdempotencyConflict(login, key, first)
                    return first
            now = self._clock_ms()
            client_id = self._allocate(conn, login, now)
            rows = self._row(NewEvent(EventKind.INTENT, client_id, request), key, None, now)
            if sent is not None:
                rows += self._row(sent(client_id), None, EventKind.INTENT, now)
            conn.execute(_INSERT_ROWS[len(rows) // len(_COLUMNS_OF_ROW)], rows)
            return client_id

    def append(self, fence: Fence | None, event: NewEvent) -> JournalEvent:
        """Append one event, refused unless ``fence`` holds the account and the order's last
        event allows this one (:data:`~mt5gate.orders.core.TRANSITIONS`)."""
        cid = event.client_id
        self._id(cid.login, cid.sequence)
        with self._transaction(savepoint=False) as conn:  # checks, then one INSERT
            self._check_fence(conn, fence, cid.login)
            utc_ms = self._clock_ms()
            values = self._row(event, None, None, utc_ms, checked=False)
            cursor = conn.execute(_APPEND[event.kind], (*values, cid.login, cid.sequence))
            if cursor.rowcount != 1 or cursor.lastrowid is None:  # the transition is refused
                last = conn.execute(_LAST_KIND, (cid.login, cid.sequence)).fetchone()
                previous = EventKind(last[0]) if last else None
                raise IllegalTransitionError(cid, previous, event.kind)
            return JournalEvent(cursor.lastrowid, event.kind, utc_ms, values[2], cid, None,
                                event.request, event.result, event.retcode, event.note,
                                event.order_ticket, event.deal_ticket)  # fmt: skip

    def _row(
        self, event: NewEvent, key: str | None, previous: EventKind | None, now_ms: int, *,
        checked: bool = True,
    ) -> list[Any]:  # fmt: skip
        """One event's column values (:data:`_COLUMNS_OF_ROW`), stamped inside its
        transaction (time order follows seq order); ``checked``: refused here unless it may
        follow ``previous``."""
        if checked and not legal(previous, event.kind):
            raise IllegalTransitionError(event.client_id, previous, event.kind)
        cid = event.client_id
        return [
            event.kind.value, now_ms, self._monotonic_ns(), cid.login, cid.sequence, key,
            canonical_json(event.request), canonical_json(event.result), event.retcode,
            event.note, event.order_ticket, event.deal_ticket,
        ]  # fmt: skip

    def _intent_for_key(
        self, conn: sqlite3.Connection, login: int, key: str
    ) -> tuple[int, str | None] | None:
        row = conn.execute(
            "SELECT client_id, request FROM events"
            " WHERE login = ? AND idempotency_key = ? AND kind = 'INTENT'",
            (login, key),
        ).fetchone()
        return None if row is None else (row[0], row[1])

    # -- the record API (redacts here; the pipeline's store redacts before it calls) ---------

    def record_intent(
        self,
        login: int,
        request: Mapping[str, Any],
        idempotency_key: str | None = None,
        *,
        sent: SentFor | None = None,
        fence: Fence | None = None,
    ) -> ClientOrderId:
        """:meth:`intent` with ``request`` (and ``sent``'s request and result) redacted here."""

        def sent_event(client_id: ClientOrderId) -> NewEvent:
            assert sent is not None
            request_sent, result = sent(client_id)
            return self.codec.event(EventKind.SENT, client_id, request=request_sent, result=result)

        return self.intent(fence, login, self.codec.plain(request), idempotency_key,
                           sent_event if sent is not None else None)  # fmt: skip

    def record(
        self,
        kind: EventKind,
        client_id: ClientOrderId | int,
        login: int,
        *,
        result: object = None,
        retcode: int | None = None,
        note: str = "",
        request: object = None,
        fence: Fence | None = None,
    ) -> JournalEvent:
        """Append one event (synced before returning) and return it as stored.

        ``result`` may be an OrderSendResult, TradeOrder, TradeDeal (their tickets are indexed
        for :meth:`by_ticket`) or any mapping; ``request`` is for a re-priced resubmission.
        """
        cid = self._id(login, _sequence(client_id))
        event = self.codec.event(EventKind(kind), cid, request=request, result=result,
                                 retcode=retcode, note=note)  # fmt: skip
        return self.append(fence, event)

    # -- account blocks ------------------------------------------------------------------------

    def block(
        self, fence: Fence | None, login: int, reason: str, sequences: Collection[int]
    ) -> bool:
        """Stop new orders on the account (fenced) until :meth:`acknowledge`; ``False`` when
        it is already blocked for all of ``sequences`` (nothing is written)."""
        with self._transaction() as conn:
            self._check_fence(conn, fence, login)
            current = self._block(conn, login)
            known = set(current.sequences) if current is not None else set()
            if current is not None and set(sequences) <= known:
                return False
            merged = sorted(known | set(sequences))
            conn.execute(
                "INSERT INTO blocks (login, kind, utc_ms, reason, sequences)"
                " VALUES (?, 'BLOCK', ?, ?, ?)",
                (login, self._clock_ms(), self.codec.text(reason), json.dumps(merged)),
            )
            return True

    def acknowledge(self, login: int, note: str) -> AccountBlock | None:
        """An operator's acknowledgement: new orders may go again. Returns the block it lifted
        (``None`` when the account was not blocked: nothing is written). Needs no fence: it is
        a person's decision, not a trading process's."""
        with self._transaction() as conn:
            current = self._block(conn, login)
            if current is None:
                return None
            conn.execute(
                "INSERT INTO blocks (login, kind, utc_ms, reason, sequences)"
                " VALUES (?, 'ACKNOWLEDGE', ?, ?, ?)",
                (login, self._clock_ms(), self.codec.text(note), json.dumps(current.sequences)),
            )
            return current

    def account_block(self, login: int) -> AccountBlock | None:
        """The account's active block, if any."""
        with self._lock:
            return self._block(self._connection(), login)

    @staticmethod
    def _block(conn: sqlite3.Connection, login: int) -> AccountBlock | None:
        row = conn.execute(
            "SELECT kind, utc_ms, reason, sequences FROM blocks WHERE login = ?"
            " ORDER BY seq DESC LIMIT 1",
            (login,),
        ).fetchone()
        if row is None or row[0] != "BLOCK":
            return None
        return AccountBlock(login, row[2], row[1], tuple(json.loads(row[3])))

    # -- reads ---------------------------------------------------------------------------------

    def history(self, login: int, client_id: ClientOrderId | int) -> list[JournalEvent]:
        """Every event of one order, oldest first (empty for an order never journaled)."""
        rows = self._query(
            f"SELECT {_COLUMNS} FROM events WHERE login = ? AND client_id = ? ORDER BY seq",
            (login, _sequence(client_id)),
        )
        return [self._event(row) for row in rows]

    def events_after(self, login: int, seq: int, limit: int = 500) -> list[JournalEvent]:
        """The account's events with a journal ``seq`` above ``seq``, oldest first, at most
        ``limit``: what a publisher of trade events resumes from."""
        rows = self._query(
            f"SELECT {_COLUMNS} FROM events WHERE login = ? AND seq > ? ORDER BY seq LIMIT ?",
            (login, seq, max(limit, 0)),
        )
        return [self._event(row) for row in rows]

    def state(self, login: int, client_id: ClientOrderId | int) -> EventKind | None:
        """The kind of the order's last event, ``None`` when the journal never saw it."""
        rows = self._query(_LAST_KIND, (login, _sequence(client_id)))
        return EventKind(rows[0][0]) if rows else None

    def unresolved(self, login: int | None = None) -> list[ClientOrderId]:
        """Orders whose outcome is still open (:data:`UNRESOLVED_KINDS`), oldest event first;
        all accounts unless ``login`` is given."""
        kinds = sorted(k.value for k in UNRESOLVED_KINDS)
        where = "" if login is None else "WHERE login = ?"
        sql = _UNRESOLVED.format(where=where, kinds=", ".join("?" * len(kinds)))
        params: tuple[object, ...] = (*(() if login is None else (login,)), *kinds)
        return [self._id(row[0], row[1]) for row in self._query(sql, params)]

    def by_key(self, login: int, key: str) -> ClientOrderId | None:
        """The order the account first used idempotency ``key`` for, if any."""
        rows = self._query(
            "SELECT client_id FROM events"
            " WHERE login = ? AND idempotency_key = ? AND kind = 'INTENT'",
            (login, key),
        )
        return self._id(login, rows[0][0]) if rows else None

    def by_ticket(self, ticket: int) -> list[ClientOrderId]:
        """Orders whose results carried ``ticket`` as order or deal ticket (usually one; more
        means the same ticket on two accounts, or a duplicate to report)."""
        rows = self._query(
            "SELECT DISTINCT login, client_id FROM events"
            " WHERE order_ticket = ? OR deal_ticket = ? ORDER BY login, client_id",
            (ticket, ticket),
        )
        return [self._id(row[0], row[1]) for row in rows]

    def flagged(self, login: int, kinds: Collection[EventKind]) -> set[int]:
        """Client sequences of the account with an event of one of ``kinds``."""
        names = _kinds(kinds)
        rows = self._query(
            f"SELECT DISTINCT client_id FROM events WHERE login = ? AND kind IN"
            f" ({', '.join('?' * len(names))})",
            (login, *names),
        )
        return {row[0] for row in rows}

    # -- inspection ----------------------------------------------------------------------------

    def summaries(
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
        """One :class:`OrderSummary` per order, by login then client sequence (descending
        when ``newest_first``); all filters given must hold: ``login`` the account, ``states``
        the kinds its last event may have, ``key`` its idempotency key, ``ticket`` an order or
        deal ticket in any of its events, ``after_sequence`` a lower bound (exclusive) on its
        sequence, for paging; at most ``limit`` orders."""
        sql, params = summary_query(login, states=states, key=key, ticket=ticket,
                                    after_sequence=after_sequence, limit=limit,
                                    newest_first=newest_first)  # fmt: skip
        return [summary_of(row, self.namespace) for row in self._query(sql, params)]

    def summary(self, login: int, client_id: ClientOrderId | int) -> OrderSummary | None:
        """The summary of one order; ``None`` when the journal never saw it."""
        sql, params = one_summary_query(login, client_id)
        found = [summary_of(row, self.namespace) for row in self._query(sql, params)]
        return found[0] if found else None

    def head_seq(self, login: int) -> int:
        """The account's newest journal ``seq`` (0 without events): any event written later
        has a higher one."""
        rows = self._query("SELECT MAX(seq) FROM events WHERE login = ?",
                           (_whole("login", login, 1),))  # fmt: skip
        return int(rows[0][0] or 0) if rows else 0

    def known_sequences(self, login: int) -> set[int]:
        """Every client sequence of the account with at least one event (allocated numbers
        never journaled are not in it)."""
        rows = self._query(
            "SELECT DISTINCT client_id FROM events WHERE login = ?", (_whole("login", login, 1),)
        )
        return {row[0] for row in rows}

    def last_kinds(self, login: int, sequences: Collection[int]) -> dict[int, EventKind]:
        """The kind of the last event of each of ``sequences`` the journal knows (the sweep
        compares them with what the broker holds)."""
        wanted = sorted({_whole("sequence", s, 1) for s in sequences})
        found: dict[int, EventKind] = {}
        for start in range(0, len(wanted), 500):  # SQLite's bound on query parameters
            chunk = wanted[start : start + 500]
            marks = ", ".join("?" * len(chunk))
            rows = self._query(
                "SELECT e.client_id, e.kind FROM events e JOIN (SELECT client_id, MAX(seq) AS"
                f" last FROM events WHERE login = ? AND client_id IN ({marks})"
                " GROUP BY client_id) l ON e.seq = l.last",
                (login, *chunk),
            )
            found.update((row[0], EventKind(row[1])) for row in rows)
        return found

    def logins(self) -> list[int]:
        """The accounts that have events, ascending."""
        return [row[0] for row in self._query("SELECT DISTINCT login FROM events ORDER BY login")]

    # -- the fleet registry (FleetRegistry, through SqliteStore) ------------------------------

    def leases(self) -> list[Lease]:
        """Every account's lease as stored (live or expired), by login."""
        rows = self._query(_LEASE.replace(" WHERE login = ?", " ORDER BY login"))
        return [lease for lease in map(_lease, rows) if lease is not None]

    def heartbeat(self, member: str, info: Mapping[str, Any], ttl_s: float) -> Member:
        """``member`` runs for ``ttl_s`` more seconds (its draining flag is kept); members
        expired for over an hour are pruned on the way."""
        with self._transaction() as conn:
            now = self._clock_ms()
            expires = now + max(int(ttl_s * 1000), 1)
            conn.execute("DELETE FROM members WHERE expires_utc_ms < ?", (now - MEMBER_PRUNE_MS,))
            (draining,) = conn.execute(
                "INSERT INTO members (id, info, expires_utc_ms) VALUES (?, ?, ?)"
                " ON CONFLICT (id) DO UPDATE SET info = excluded.info,"
                " expires_utc_ms = excluded.expires_utc_ms RETURNING draining",
                (member, json.dumps(dict(info), sort_keys=True), expires),
            ).fetchone()
            return Member(member, dict(info), expires, bool(draining))

    def members(self) -> list[Member]:
        """Every registered member (live or expired), by id."""
        rows = self._query("SELECT id, info, expires_utc_ms, draining FROM members ORDER BY id")
        return [Member(row[0], json.loads(row[1]), row[2], bool(row[3])) for row in rows]

    def set_draining(self, member: str, draining: bool) -> bool:
        """Mark ``member`` draining or not; ``False`` when it is not registered."""
        with self._transaction() as conn:
            done = conn.execute(
                "UPDATE members SET draining = ? WHERE id = ?", (int(draining), member)
            )
            return done.rowcount > 0

    def place(self, login: int, member: str | None) -> None:
        """Pin account ``login`` to ``member``; ``None`` removes the pin."""
        _whole("login", login, 1)
        with self._transaction() as conn:
            if member is None:
                conn.execute("DELETE FROM placements WHERE login = ?", (login,))
            else:
                conn.execute(
                    "INSERT INTO placements (login, member) VALUES (?, ?)"
                    " ON CONFLICT (login) DO UPDATE SET member = excluded.member",
                    (login, member),
                )

    def placements(self) -> dict[int, str]:
        """Every pinned account and its member."""
        return dict(self._query("SELECT login, member FROM placements ORDER BY login"))
