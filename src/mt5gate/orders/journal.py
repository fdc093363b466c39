"""The order journal: every order's life, on disk before the order leaves the gateway.

:class:`OrderJournal` is the small interface the order pipeline needs; :class:`SqliteJournal`
is the embedded default (stdlib ``sqlite3``, WAL, ``synchronous=FULL``), and a server
database can replace it behind the same interface.

The journal is append-only: each fact about an order is an :class:`EventKind` row in
``events`` (UTC and monotonic time, account, client id, request, result, retcode, note). An
order's state is the kind of its last event. Requests and results pass through a
:class:`~mt5gate.redaction.Redactor` before they are stored, so no password reaches the file.
"""

from __future__ import annotations

import dataclasses
import json
import sqlite3
import threading
import time
from collections.abc import Callable, Collection, Iterator, Mapping
from contextlib import contextmanager
from enum import Enum, StrEnum
from pathlib import Path
from typing import Any, Final, Protocol, runtime_checkable

from pydantic import SecretStr

from mt5gate.orders.ids import DEFAULT_NAMESPACE, ClientOrderId
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

#: The schema this code writes and reads; a newer file is refused, never guessed at.
SCHEMA_VERSION: Final = 1


class EventKind(StrEnum):
    """What happened to an order; stored by name."""

    INTENT = "INTENT"
    SENT = "SENT"
    ACKNOWLEDGED = "ACKNOWLEDGED"
    REJECTED = "REJECTED"
    UNKNOWN = "UNKNOWN"
    LATE_RESULT = "LATE_RESULT"
    RECONCILED_PRESENT = "RECONCILED_PRESENT"
    RECONCILED_ABSENT = "RECONCILED_ABSENT"
    RESUBMITTED = "RESUBMITTED"
    UNEXPECTED = "UNEXPECTED"
    DUPLICATE = "DUPLICATE"
    RISK_REJECTED = "RISK_REJECTED"


#: Last events that leave an order's outcome open: it may be at the broker, and nobody knows
#: yet. RESUBMITTED is one: a resent order with no recorded result is as open as a SENT one.
UNRESOLVED_KINDS: Final = frozenset(
    {EventKind.INTENT, EventKind.SENT, EventKind.UNKNOWN, EventKind.RESUBMITTED}
)


#: What ``record_intent(..., sent=...)`` calls with the new id: (the request sent, a result).
SentFor = Callable[[ClientOrderId], tuple[Mapping[str, Any], object]]


class JournalError(Exception):
    """The journal cannot be used: corrupt or torn file, foreign or newer schema, closed."""


class IdempotencyConflict(ValueError):  # noqa: N818 - the name the order API documents
    """An idempotency key came back with a different request than the one it was first used
    for: the caller has a bug, and sending either order could be the wrong one."""

    def __init__(self, login: int, key: str, client_id: ClientOrderId) -> None:
        super().__init__(
            f"idempotency key {key!r} of account {login} was first used for order "
            f"{client_id.comment_tag} with a different request; use a new key for a new order"
        )
        self.login = login
        self.key = key
        self.client_id = client_id


@dataclasses.dataclass(frozen=True, slots=True)
class JournalEvent:
    """One row of the journal, as stored (request and result already redacted)."""

    seq: int
    kind: EventKind
    utc_ms: int
    monotonic_ns: int
    client_id: ClientOrderId
    idempotency_key: str | None
    request: Any
    result: Any
    retcode: int | None
    note: str
    order_ticket: int | None
    deal_ticket: int | None


@dataclasses.dataclass(frozen=True, slots=True)
class OrderSummary:
    """One order as the journal knows it: identity, state, and what its events carried."""

    client_id: ClientOrderId
    #: the key its INTENT was recorded with (``None`` without a key or without an INTENT)
    idempotency_key: str | None
    #: the kind of its last event
    state: EventKind
    #: how many events it has
    events: int
    #: wall time of its first event
    created_utc_ms: int
    #: wall time of its last event
    updated_utc_ms: int
    #: the request its INTENT stored (redacted); ``None`` for an order with no INTENT, such
    #: as one reconciliation found at the broker (UNEXPECTED)
    request: Any
    #: the latest non-null retcode of its events
    retcode: int | None
    #: the latest non-null order ticket of its events
    order_ticket: int | None
    #: the latest non-null deal ticket of its events
    deal_ticket: int | None

    @property
    def unresolved(self) -> bool:
        """Its outcome is still open (its state is in :data:`UNRESOLVED_KINDS`)."""
        return self.state in UNRESOLVED_KINDS


@runtime_checkable
class OrderJournal(Protocol):
    """What the order pipeline needs from a journal; every write is durable when it returns."""

    def next_id(self, login: int) -> ClientOrderId:
        """A fresh id from the account's durable sequence (never one used before)."""
        ...

    def record_intent(
        self,
        login: int,
        request: Mapping[str, Any],
        idempotency_key: str | None = None,
        *,
        sent: SentFor | None = None,
    ) -> ClientOrderId:
        """Allocate an id and write INTENT in one transaction; an already used key returns its
        first id. With ``sent``, the order's SENT event is written in the same transaction."""
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
    ) -> JournalEvent:
        """Append one event for an order."""
        ...

    def history(self, login: int, client_id: ClientOrderId | int) -> list[JournalEvent]:
        """Every event of one order, oldest first."""
        ...

    def state(self, login: int, client_id: ClientOrderId | int) -> EventKind | None:
        """The kind of the order's last event; ``None`` for an order the journal never saw."""
        ...

    def unresolved(self, login: int | None = None) -> list[ClientOrderId]:
        """Orders whose last event is in :data:`UNRESOLVED_KINDS`, oldest first."""
        ...

    def by_key(self, login: int, key: str) -> ClientOrderId | None:
        """The order an idempotency key was first used for."""
        ...

    def by_ticket(self, ticket: int) -> list[ClientOrderId]:
        """Orders whose stored results carry ``ticket`` as an order or deal ticket."""
        ...

    def known_sequences(self, login: int) -> set[int]:
        """Every client sequence of the account with at least one event (the sweep's view)."""
        ...

    def summaries(
        self,
        login: int | None = None,
        *,
        states: Collection[EventKind] | None = None,
        key: str | None = None,
        ticket: int | None = None,
        after_sequence: int = 0,
        limit: int | None = None,
    ) -> list[OrderSummary]:
        """One summary per order, filtered (inspection, and the sweep's UNEXPECTED list)."""
        ...

    def protect(self, *secrets: str | SecretStr) -> None:
        """Mask these values wherever they would be stored (the session passes its password)."""
        ...

    def close(self) -> None:
        """Release the storage; later calls raise :class:`JournalError`."""
        ...


_SCHEMA: Final = """
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

_COLUMNS: Final = (
    "seq, kind, utc_ms, monotonic_ns, login, client_id, idempotency_key, request, result,"
    " retcode, note, order_ticket, deal_ticket"
)

_INSERT: Final = (
    "INSERT INTO events (kind, utc_ms, monotonic_ns, login, client_id, idempotency_key,"
    " request, result, retcode, note, order_ticket, deal_ticket)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING seq"
)

_NEXT_SEQUENCE: Final = (
    "INSERT INTO sequences (login, last) VALUES (?, 1)"
    " ON CONFLICT (login) DO UPDATE SET last = last + 1 RETURNING last"
)

_UNRESOLVED: Final = (
    "SELECT e.login, e.client_id FROM events e JOIN"
    " (SELECT login, client_id, MAX(seq) AS last FROM events {where} GROUP BY login, client_id)"
    " l ON e.seq = l.last WHERE e.kind IN ({kinds}) ORDER BY e.seq"
)

#: One row per order: its events grouped (one pass over the rows ``{where}`` keeps), then the
#: first, last, INTENT and latest retcode/ticket events fetched by their primary key.
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
ORDER BY o.login, o.client_id
{limit}
"""


def _unwrap(value: object) -> object:
    """Records (named tuples, nested ``request`` too) as dicts and numpy scalars as numbers,
    keeping key names so the redactor still sees ``password``."""
    if isinstance(value, tuple) and hasattr(value, "_asdict"):
        return {key: _unwrap(item) for key, item in value._asdict().items()}
    if isinstance(value, Mapping):
        return {key: _unwrap(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_unwrap(item) for item in value]
    item = getattr(value, "item", None)  # numpy scalars
    if callable(item) and type(value).__module__ == "numpy":
        return item()
    return value


def _plain(value: object) -> object:
    """Redacted data as JSON-ready values: string keys, lists for tuples, numbers for numpy."""
    if isinstance(value, Mapping):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_plain(item) for item in value]
    if isinstance(value, Enum):
        return _plain(value.value)
    if value is None or isinstance(value, str | int | float):
        return value
    return str(value)


def _tickets(result: object) -> tuple[int | None, int | None]:
    """The (order, deal) tickets a stored result carries: an OrderSendResult, a TradeOrder or
    a TradeDeal (as their dicts); ``None`` for absent or zero."""
    if not isinstance(result, Mapping):
        return None, None
    if "time_setup" in result:  # a TradeOrder: its ticket is the order's
        order, deal = result.get("ticket"), None
    elif "entry" in result:  # a TradeDeal: its ticket is the deal's, ``order`` the order's
        order, deal = result.get("order"), result.get("ticket")
    else:  # an OrderSendResult
        order, deal = result.get("order"), result.get("deal")
    return _ticket(order), _ticket(deal)


def _ticket(value: object) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    return None


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


class SqliteJournal:
    """The embedded :class:`OrderJournal`: one SQLite file in WAL mode, ``synchronous=FULL``.

    Every write is one transaction committed (and so fsync'd by SQLite) before the method
    returns. One connection serves all threads; a lock is held only around statements.
    ``redactor`` hides known secrets (pass the one that knows the account password);
    ``clock_ms`` and ``monotonic_ns`` are injectable for tests. Opening a corrupt, torn,
    foreign or newer-schema file raises :class:`JournalError`.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        redactor: Redactor | None = None,
        namespace: int = DEFAULT_NAMESPACE,
        clock_ms: Callable[[], int] = _wall_ms,
        monotonic_ns: Callable[[], int] = time.monotonic_ns,
    ) -> None:
        self.path = Path(path)
        self.namespace = namespace
        self._redactor = redactor if redactor is not None else Redactor()
        self._clock_ms = clock_ms
        self._monotonic_ns = monotonic_ns
        self._lock = threading.Lock()
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
        fresh = not self.path.exists() or self.path.stat().st_size == 0
        self._refuse_torn(fresh)
        try:
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        except sqlite3.Error as error:
            raise JournalError(f"cannot open order journal {self.path}: {error}") from error
        try:
            self._prepare(conn, fresh)
        except BaseException:
            conn.close()
            raise
        return conn

    def _refuse_torn(self, fresh: bool) -> None:
        """An empty main file next to a non-empty WAL is a journal that lost its body."""
        wal = self.path.with_name(self.path.name + "-wal")
        if fresh and self.path.exists() and wal.exists() and wal.stat().st_size > 0:
            raise JournalError(
                f"order journal {self.path} is empty but its WAL is not: the file is torn; "
                "restore it from a backup (do not delete it: unresolved orders may be in it)"
            )

    def _prepare(self, conn: sqlite3.Connection, fresh: bool) -> None:
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute("PRAGMA busy_timeout=10000")
            self._check_integrity(conn)
            if fresh and not self._tables(conn):
                conn.executescript(
                    f"BEGIN IMMEDIATE;{_SCHEMA}"
                    f"INSERT INTO schema_version VALUES ({SCHEMA_VERSION}); COMMIT;"
                )
            self._check_schema(conn)
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

    def _check_schema(self, conn: sqlite3.Connection) -> None:
        if "schema_version" not in self._tables(conn):
            raise JournalError(f"{self.path} is an SQLite file but not an mt5gate order journal")
        row = conn.execute("SELECT MAX(version) FROM schema_version").fetchone()
        version = row[0] if row else None
        if version == SCHEMA_VERSION:
            return
        if isinstance(version, int) and version > SCHEMA_VERSION:
            raise JournalError(
                f"order journal {self.path} has schema version {version}, written by a newer "
                f"mt5gate; this one reads version {SCHEMA_VERSION}: upgrade mt5gate"
            )
        raise JournalError(f"order journal {self.path} has an unknown schema version {version!r}")

    def protect(self, *secrets: str | SecretStr) -> None:
        """Mask ``secrets`` in everything written from now on (the session passes its
        password and tokens, so no order comment or request can carry them to disk)."""
        with self._lock:
            self._redactor = self._redactor.with_secrets(*secrets)

    def close(self) -> None:
        """Close the connection (idempotent); the journal cannot be used afterwards."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    # -- statements ----------------------------------------------------------------------------

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction under the lock, committed (synced) when the block ends."""
        with self._lock:
            conn = self._connection()
            try:
                conn.execute("BEGIN IMMEDIATE")
                yield conn
                conn.execute("COMMIT")
            except BaseException as error:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
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

    # -- conversion ----------------------------------------------------------------------------

    def _json(self, value: object) -> str | None:
        """Canonical JSON of ``value`` after redaction (records become dicts, nested too)."""
        return self._encode(value)[1]

    def _encode(self, value: object) -> tuple[object, str | None]:
        """``value`` redacted as plain data, and its canonical JSON (``None`` stays ``None``)."""
        if value is None:
            return None, None
        plain = _plain(self._redactor.redact(_unwrap(value)))
        return plain, json.dumps(plain, sort_keys=True, separators=(",", ":"), allow_nan=True)

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

    # -- writes --------------------------------------------------------------------------------

    def next_id(self, login: int) -> ClientOrderId:
        """A fresh id from the account's durable sequence; the number is never handed out
        again, even if no event is ever written for it."""
        ClientOrderId(login, 1, self.namespace)  # validates login before touching the file
        with self._transaction() as conn:
            return self._allocate(conn, login)

    def _allocate(self, conn: sqlite3.Connection, login: int) -> ClientOrderId:
        (sequence,) = conn.execute(_NEXT_SEQUENCE, (login,)).fetchone()
        return self._id(login, sequence)

    def record_intent(
        self,
        login: int,
        request: Mapping[str, Any],
        idempotency_key: str | None = None,
        *,
        sent: SentFor | None = None,
    ) -> ClientOrderId:
        """Allocate an id and write its INTENT in one transaction, synced before returning:
        the intent is on disk before the order can be sent.

        A ``idempotency_key`` this account used before returns that first id and writes
        nothing; with a different request it raises :class:`IdempotencyConflict`.

        ``sent(client_id)`` gives the exact request about to be sent (it carries the id, so it
        can only be made once the id exists) and a result to store with it: the SENT event is
        then written in the same transaction, one fsync for both. A key used before is then
        refused with :class:`IdempotencyConflict` (another writer took it: nothing may be sent).
        """
        ClientOrderId(login, 1, self.namespace)
        body = self._json(request)
        with self._transaction() as conn:
            if idempotency_key is not None:
                existing = self._intent_for_key(conn, login, idempotency_key)
                if existing is not None:
                    if sent is not None:
                        raise IdempotencyConflict(
                            login, idempotency_key, self._id(login, existing[0])
                        )
                    return self._same_request(login, idempotency_key, existing, body)
            client_id = self._allocate(conn, login)
            conn.execute(_INSERT, self._row(EventKind.INTENT, client_id, idempotency_key, body))
            if sent is not None:
                self._insert_sent(conn, client_id, *sent(client_id))
            return client_id

    def _insert_sent(
        self, conn: sqlite3.Connection, client_id: ClientOrderId, request: object, result: object
    ) -> None:
        (_, request_json), (plain, result_json) = self._encode(request), self._encode(result)
        row = self._row(EventKind.SENT, client_id, None, request_json, result_json, None, "", plain)
        conn.execute(_INSERT, row)

    def _intent_for_key(
        self, conn: sqlite3.Connection, login: int, key: str
    ) -> tuple[int, str | None] | None:
        row = conn.execute(
            "SELECT client_id, request FROM events"
            " WHERE login = ? AND idempotency_key = ? AND kind = 'INTENT'",
            (login, key),
        ).fetchone()
        return None if row is None else (row[0], row[1])

    def _same_request(
        self, login: int, key: str, existing: tuple[int, str | None], body: str | None
    ) -> ClientOrderId:
        client_id = self._id(login, existing[0])
        if existing[1] != body:
            raise IdempotencyConflict(login, key, client_id)
        return client_id

    def _row(
        self,
        kind: EventKind,
        client_id: ClientOrderId,
        key: str | None,
        request: str | None,
        result: str | None = None,
        retcode: int | None = None,
        note: str = "",
        plain_result: object = None,
    ) -> tuple[object, ...]:
        if plain_result is None and result is not None:
            plain_result = json.loads(result)
        order, deal = _tickets(plain_result)
        return (
            kind.value,
            self._clock_ms(),
            self._monotonic_ns(),
            client_id.login,
            client_id.sequence,
            key,
            request,
            result,
            retcode,
            self._redactor.redact_text(note),
            order,
            deal,
        )

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
    ) -> JournalEvent:
        """Append one event (synced before returning) and return it as stored.

        ``result`` may be an OrderSendResult, TradeOrder, TradeDeal (their tickets are indexed
        for :meth:`by_ticket`) or any mapping; ``request`` is for a re-priced resubmission.
        """
        cid = self._id(login, _sequence(client_id))
        (plain_request, request_json), (plain_result, result_json) = (
            self._encode(request),
            self._encode(result),
        )
        with self._transaction() as conn:  # stamped inside: time order follows seq order
            row = self._row(
                EventKind(kind), cid, None, request_json, result_json, retcode, note, plain_result
            )
            (seq,) = conn.execute(_INSERT, row).fetchone()
        kind_, utc_ms, mono = row[:3]
        return JournalEvent(
            seq, EventKind(kind_), utc_ms, mono, cid, None, plain_request, plain_result,  # type: ignore[arg-type]
            retcode, str(row[9]), row[10], row[11],  # type: ignore[arg-type]
        )  # fmt: skip

    # -- reads ---------------------------------------------------------------------------------

    def history(self, login: int, client_id: ClientOrderId | int) -> list[JournalEvent]:
        """Every event of one order, oldest first (empty for an order never journaled)."""
        rows = self._query(
            f"SELECT {_COLUMNS} FROM events WHERE login = ? AND client_id = ? ORDER BY seq",
            (login, _sequence(client_id)),
        )
        return [self._event(row) for row in rows]

    def state(self, login: int, client_id: ClientOrderId | int) -> EventKind | None:
        """The kind of the order's last event, ``None`` when the journal never saw it."""
        rows = self._query(
            "SELECT kind FROM events WHERE login = ? AND client_id = ? ORDER BY seq DESC LIMIT 1",
            (login, _sequence(client_id)),
        )
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
    ) -> list[OrderSummary]:
        """One :class:`OrderSummary` per order, by login then client sequence; all filters given
        must hold: ``login`` the account, ``states`` the kinds its last event may have,
        ``key`` its idempotency key, ``ticket`` an order or deal ticket in any of its events,
        ``after_sequence`` a lower bound (exclusive) on its sequence, for paging; at most
        ``limit`` orders."""
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
        return self._summaries(where, params, kinds, limit)

    def _summaries(
        self, where: list[str], params: list[object], kinds: list[str] | None, limit: int | None
    ) -> list[OrderSummary]:
        sql = _SUMMARIES.format(
            where=f"WHERE {' AND '.join(where)}" if where else "",
            having="" if kinds is None else f"WHERE l.kind IN ({', '.join('?' * len(kinds))})",
            limit="" if limit is None else "LIMIT ?",
        )
        args = [*params, *(kinds or ()), *(() if limit is None else (limit,))]
        return [self._summary(row) for row in self._query(sql, tuple(args))]

    def _summary(self, row: tuple[Any, ...]) -> OrderSummary:
        login, client, key, kind, n, created, updated, request, retcode, order, deal = row
        return OrderSummary(
            client_id=self._id(login, client),
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

    def summary(self, login: int, client_id: ClientOrderId | int) -> OrderSummary | None:
        """The summary of one order; ``None`` when the journal never saw it."""
        _whole("login", login, 1)
        if isinstance(client_id, ClientOrderId):
            if client_id.login != login:
                raise ValueError(f"client_id {client_id} is not an order of account {login}")
            sequence = client_id.sequence
        else:
            sequence = _whole("client_id", client_id, 1)
        found = self._summaries(["login = ?", "client_id = ?"], [login, sequence], None, 1)
        return found[0] if found else None

    def known_sequences(self, login: int) -> set[int]:
        """Every client sequence of the account with at least one event (allocated numbers
        never journaled are not in it)."""
        rows = self._query(
            "SELECT DISTINCT client_id FROM events WHERE login = ?", (_whole("login", login, 1),)
        )
        return {row[0] for row in rows}

    def logins(self) -> list[int]:
        """The accounts that have events, ascending."""
        return [row[0] for row in self._query("SELECT DISTINCT login FROM events ORDER BY login")]
