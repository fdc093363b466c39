"""The SQLite order journal on real files: durability, idempotency, states, redaction, errors."""

from __future__ import annotations

import contextlib
import enum
import json
import sqlite3
import threading
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from mt5gate.orders import (
    ClientOrderId,
    EventKind,
    IdempotencyConflict,
    JournalError,
    OrderJournal,
    SqliteJournal,
)
from mt5gate.orders.store import EPOCH_FLOOR
from mt5gate.records import OrderSendResult, TradeDeal, TradeOrder, TradeRequest
from mt5gate.redaction import Redactor

REQUEST: dict[str, Any] = {"action": 1, "symbol": "EURUSD", "volume": 0.1, "type": 0}
K = EventKind


def at_2020() -> int:
    """A journal clock standing at 2020-01-01 UTC, where client ids count from 1 (a journal
    on the real clock starts its ids at the milliseconds since then: see test_store.py)."""
    return EPOCH_FLOOR


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "journal.sqlite"


@pytest.fixture
def journal(path: Path) -> Iterator[SqliteJournal]:
    with SqliteJournal(path, clock_ms=at_2020) as opened:
        yield opened


def _record(cls: type[Any], **values: Any) -> Any:
    """A record with every field zero/empty except ``values``."""
    defaults = dict.fromkeys(cls.__match_args__, 0)
    return cls(tuple({**defaults, **values}[name] for name in cls.__match_args__))


def test_is_an_order_journal(journal: SqliteJournal) -> None:
    assert isinstance(journal, OrderJournal)
    assert "open" in repr(journal)


def test_sequence_survives_reopen_and_never_reuses(path: Path) -> None:
    seen: list[ClientOrderId] = []
    for _ in range(3):
        with SqliteJournal(path, clock_ms=at_2020) as journal:
            seen.append(journal.next_id(5001))
            seen.append(journal.record_intent(5001, REQUEST))
            seen.append(journal.next_id(5002))
    assert [c.sequence for c in seen if c.login == 5001] == [1, 2, 3, 4, 5, 6]
    assert [c.sequence for c in seen if c.login == 5002] == [1, 2, 3]
    assert len(set(seen)) == len(seen)


def test_intent_is_recorded(journal: SqliteJournal) -> None:
    cid = journal.record_intent(5001, REQUEST, "key-1")
    [event] = journal.history(5001, cid)
    assert event.kind is EventKind.INTENT
    assert event.client_id == cid
    assert event.request == REQUEST
    assert event.idempotency_key == "key-1"
    assert event.result is None
    assert event.retcode is None
    assert event.utc_ms == EPOCH_FLOOR  # the journal's clock
    assert event.monotonic_ns > 0


def test_idempotency_key(journal: SqliteJournal) -> None:
    first = journal.record_intent(5001, REQUEST, "k")
    reordered = dict(reversed(list(REQUEST.items())))
    assert journal.record_intent(5001, reordered, "k") == first
    assert journal.by_key(5001, "k") == first
    assert len(journal.history(5001, first)) == 1
    with pytest.raises(IdempotencyConflict, match="different request") as caught:
        journal.record_intent(5001, {**REQUEST, "volume": 0.2}, "k")
    assert caught.value.client_id == first
    assert caught.value.key == "k"
    other = journal.record_intent(5002, {**REQUEST, "volume": 0.2}, "k")
    assert other.login == 5002
    assert journal.by_key(5002, "k") == other
    assert journal.by_key(5001, "missing") is None
    assert journal.record_intent(5001, REQUEST).sequence == 2  # the conflict allocated nothing


def test_states_and_unresolved(journal: SqliteJournal) -> None:
    a = journal.record_intent(5001, REQUEST)
    b = journal.record_intent(5001, REQUEST)
    c = journal.record_intent(5002, REQUEST)
    d = journal.record_intent(5002, REQUEST)
    journal.record(EventKind.SENT, b, 5001)
    journal.record(EventKind.SENT, c.sequence, 5002)
    journal.record(EventKind.UNKNOWN, c, 5002, note="deadline")
    journal.record(EventKind.SENT, d, 5002)
    journal.record(EventKind.ACKNOWLEDGED, d, 5002, retcode=10009)
    assert journal.state(5001, a) is EventKind.INTENT
    assert journal.state(5001, b) is EventKind.SENT
    assert journal.state(5002, c) is EventKind.UNKNOWN
    assert journal.state(5002, d) is EventKind.ACKNOWLEDGED
    assert journal.state(5002, 99) is None
    assert journal.unresolved() == [a, b, c]
    assert journal.unresolved(5002) == [c]
    journal.record(EventKind.RECONCILED_PRESENT, c, 5002)
    journal.record(EventKind.RISK_REJECTED, a, 5001, note="max_volume_per_order")
    assert journal.unresolved() == [b]
    journal.record(EventKind.REJECTED, b, 5001, retcode=10004)  # a requote: not final
    journal.record(EventKind.RESUBMITTED, b, 5001)
    assert journal.unresolved() == [b]
    journal.record(EventKind.LATE_RESULT, b, 5001)
    assert journal.unresolved() == []


def test_results_and_tickets(journal: SqliteJournal) -> None:
    cid = journal.record_intent(5001, REQUEST)
    journal.record(EventKind.SENT, cid, 5001)
    request = _record(TradeRequest, action=1, symbol="EURUSD", magic=cid.magic, comment="mg:1")
    result = _record(OrderSendResult, retcode=10009, order=1001, deal=2001, request=request)
    event = journal.record(EventKind.ACKNOWLEDGED, cid, 5001, result=result, retcode=10009)
    assert (event.order_ticket, event.deal_ticket) == (1001, 2001)
    assert event.result["request"]["magic"] == cid.magic
    assert event.result["request"]["symbol"] == "EURUSD"
    assert journal.history(5001, cid)[-1] == event
    other = journal.record_intent(5002, REQUEST)
    order = _record(TradeOrder, ticket=3001, time_setup=1, magic=other.magic)
    deal = _record(TradeDeal, ticket=4001, order=3001, entry=0)
    journal.record(EventKind.SENT, other, 5002)
    journal.record(EventKind.UNKNOWN, other, 5002)
    journal.record(EventKind.RECONCILED_PRESENT, other, 5002, result=order)
    journal.record(EventKind.LATE_RESULT, other, 5002, result=deal)
    journal.record(EventKind.DUPLICATE, other, 5002, result=[1, 2])
    journal.record(EventKind.UNEXPECTED, 77, 5002, result={"order": 0, "note": "x"})
    assert journal.by_ticket(1001) == journal.by_ticket(2001) == [cid]
    assert journal.by_ticket(3001) == journal.by_ticket(4001) == [other]
    assert journal.by_ticket(9) == []


class Side(enum.IntEnum):
    BUY = 0


def test_odd_values_become_json(journal: SqliteJournal) -> None:
    odd = {
        "side": Side.BUY,
        "price": np.float64(1.5),
        "n": np.int64(3),
        "tags": ("a", "b"),
        2: Decimal("0.1"),
    }
    cid = journal.record_intent(5001, odd)
    assert journal.history(5001, cid)[0].request == {
        "side": 0,
        "price": 1.5,
        "n": 3,
        "tags": ["a", "b"],
        "2": "0.1",
    }


def test_secrets_never_reach_the_file(path: Path) -> None:
    secret = "hunter2-SECRET-pw"
    redactor = Redactor([secret])
    with SqliteJournal(path, redactor=redactor) as journal:
        request = {**REQUEST, "password": "xyzzy-plain-pw", "comment": f"pw {secret}"}
        cid = journal.record_intent(5001, request, "k")
        journal.record(EventKind.SENT, cid, 5001)
        journal.record(
            EventKind.UNKNOWN, cid, 5001, result={"error": secret}, note=f"login with {secret}"
        )
        event = journal.history(5001, cid)[0]
        assert event.request["password"] == "**********"
    data = b"".join(p.read_bytes() for p in path.parent.iterdir())
    assert b"hunter2" not in data
    assert b"xyzzy-plain-pw" not in data
    assert b"EURUSD" in data


def test_events_are_append_only(path: Path, journal: SqliteJournal) -> None:
    journal.record_intent(5001, REQUEST)
    conn = sqlite3.connect(path)
    try:
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            conn.execute("UPDATE events SET kind = 'ACKNOWLEDGED'")
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            conn.execute("DELETE FROM events")
    finally:
        conn.close()


def test_concurrent_writers_get_unique_ids(journal: SqliteJournal) -> None:
    ids: list[ClientOrderId] = []
    lock = threading.Lock()

    def work() -> None:
        mine = [journal.record_intent(5001, REQUEST) for _ in range(25)]
        mine += [journal.next_id(5001) for _ in range(5)]
        with lock:
            ids.extend(mine)

    threads = [threading.Thread(target=work, name=f"writer-{i}") for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(c.sequence for c in ids) == list(range(1, 241))
    assert len(journal.unresolved(5001)) == 200


def test_closed_journal_refuses(path: Path) -> None:
    journal = SqliteJournal(path)
    journal.close()
    journal.close()
    assert "closed" in repr(journal)
    with pytest.raises(JournalError, match="closed"):
        journal.next_id(5001)
    with pytest.raises(JournalError, match="closed"):
        journal.history(5001, 1)


def test_invalid_login_writes_nothing(journal: SqliteJournal) -> None:
    with pytest.raises(ValueError, match="login"):
        journal.record_intent(0, REQUEST)
    with pytest.raises(ValueError, match="login"):
        journal.next_id(-1)
    assert journal.unresolved() == []


def test_newer_schema_is_refused(path: Path) -> None:
    SqliteJournal(path).close()
    conn = sqlite3.connect(path)
    conn.execute("UPDATE schema_version SET version = 99")
    conn.commit()
    conn.close()
    with pytest.raises(JournalError, match="newer mt5gate"):
        SqliteJournal(path)


def test_unknown_schema_version_is_refused(path: Path) -> None:
    SqliteJournal(path).close()
    conn = sqlite3.connect(path)
    conn.execute("DELETE FROM schema_version")
    conn.commit()
    conn.close()
    with pytest.raises(JournalError, match="unknown schema version"):
        SqliteJournal(path)


def test_foreign_database_is_refused(path: Path) -> None:
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE other (x)")
    conn.commit()
    conn.close()
    with pytest.raises(JournalError, match="not an mt5gate order journal"):
        SqliteJournal(path)


def test_garbage_file_is_refused(path: Path) -> None:
    path.write_bytes(b"this is not a database at all" * 100)
    with pytest.raises(JournalError, match="not a readable SQLite database"):
        SqliteJournal(path)


def _filled(path: Path, orders: int = 300) -> None:
    with SqliteJournal(path) as journal:
        for _ in range(orders):
            journal.record_intent(5001, {**REQUEST, "comment": "x" * 200})
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()


def test_torn_file_is_refused(path: Path) -> None:
    _filled(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(JournalError):
        SqliteJournal(path)


def test_corrupt_page_is_refused(path: Path) -> None:
    _filled(path)
    data = bytearray(path.read_bytes())
    page = 4096
    data[page * 2 : page * 4] = b"\xff" * (page * 2)
    path.write_bytes(bytes(data))
    with pytest.raises(JournalError):
        SqliteJournal(path)


def test_empty_file_with_wal_is_torn(path: Path) -> None:
    path.write_bytes(b"")
    path.with_name(path.name + "-wal").write_bytes(b"\x00" * 64)
    with pytest.raises(JournalError, match="torn"):
        SqliteJournal(path)


def test_empty_file_alone_is_a_new_journal(path: Path) -> None:
    path.write_bytes(b"")
    with SqliteJournal(path, clock_ms=at_2020) as journal:
        assert journal.next_id(5001).sequence == 1


def test_unopenable_path(tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("not a directory")
    with pytest.raises(JournalError, match="cannot"):
        SqliteJournal(tmp_path / "a-file" / "journal.sqlite")


def test_rollback_on_error(journal: SqliteJournal) -> None:
    cid = journal.record_intent(5001, REQUEST)
    with pytest.raises(ValueError, match="is not a valid EventKind"):
        journal.record("NOPE", cid, 5001)  # type: ignore[arg-type]
    assert [e.kind for e in journal.history(5001, cid)] == [EventKind.INTENT]


def test_database_error_in_a_transaction(path: Path, journal: SqliteJournal) -> None:
    cid = journal.record_intent(5001, REQUEST)
    conn = sqlite3.connect(path)
    conn.execute("DROP TRIGGER events_no_update")
    conn.execute("CREATE TRIGGER boom BEFORE INSERT ON events BEGIN SELECT RAISE(ABORT, 'x'); END")
    conn.commit()
    conn.close()
    with pytest.raises(JournalError, match="x"):
        journal.record(EventKind.SENT, cid, 5001)
    assert journal.next_id(5001).sequence == 2  # the connection is usable after a rollback


def test_database_error_in_a_query(path: Path, journal: SqliteJournal) -> None:
    journal.record_intent(5001, REQUEST)
    conn = sqlite3.connect(path)
    conn.execute("ALTER TABLE events RENAME TO gone")
    conn.commit()
    conn.close()
    with pytest.raises(JournalError, match="no such table"):
        journal.history(5001, 1)


def test_injected_clocks(path: Path) -> None:
    with SqliteJournal(path, clock_ms=lambda: 123, monotonic_ns=lambda: 456) as journal:
        client = journal.record_intent(5001, REQUEST)
        event = journal.record(EventKind.RISK_REJECTED, client, 5001, note="volume")
    assert (event.utc_ms, event.monotonic_ns, event.note) == (123, 456, "volume")
    assert json.loads(json.dumps(event.request)) is None


def test_intent_and_sent_in_one_transaction(journal: SqliteJournal) -> None:
    def sent(client: ClientOrderId) -> tuple[dict[str, Any], object]:
        return {"magic": client.magic, "comment": client.comment_tag}, {"server_ms": 5}

    client = journal.record_intent(5001, {"op": "place"}, "k", sent=sent)
    intent, sent_event = journal.history(5001, client)
    assert (intent.kind, sent_event.kind) == (EventKind.INTENT, EventKind.SENT)
    assert sent_event.request == {"magic": client.magic, "comment": client.comment_tag}
    assert sent_event.result == {"server_ms": 5}
    with pytest.raises(IdempotencyConflict):  # the key is taken: nothing may be sent under it
        journal.record_intent(5001, {"op": "place"}, "k", sent=sent)
    assert len(journal.history(5001, client)) == 2


def test_a_failing_sent_builder_writes_nothing(journal: SqliteJournal) -> None:
    def broken(client: ClientOrderId) -> tuple[dict[str, Any], object]:
        raise RuntimeError("no request")

    with pytest.raises(RuntimeError):
        journal.record_intent(5001, {"op": "place"}, "k2", sent=broken)
    assert journal.by_key(5001, "k2") is None
    assert journal.unresolved(5001) == []


# ------------------------------------------------------------ every transition, in the SQL


TRANSITION_LOGIN = 5001


def _shortest_paths() -> dict[EventKind | None, list[EventKind]]:
    """For every kind an order can end in, the shortest legal history that ends in it."""
    from mt5gate.orders.core import TRANSITIONS

    paths: dict[EventKind | None, list[EventKind]] = {None: []}
    frontier: list[EventKind | None] = [None]
    while frontier:
        last = frontier.pop(0)
        for kind in sorted(TRANSITIONS.get(last, frozenset())):
            if kind not in paths:
                paths[kind] = [*paths[last], kind]
                frontier.append(kind)
    return paths


@pytest.mark.parametrize("grouped", [False, True])
def test_append_refuses_exactly_what_the_transition_table_refuses(
    tmp_path: Path, grouped: bool
) -> None:
    """The journal checks a transition inside its INSERT; for every reachable last kind and
    every next kind, it must store or refuse exactly as ``legal`` says (and store nothing
    when it refuses)."""
    from mt5gate.orders.core import legal
    from mt5gate.orders.store import IllegalTransitionError, NewEvent

    paths = _shortest_paths()
    assert set(paths) == {None, *EventKind}  # every kind is reachable
    with SqliteJournal(tmp_path / "orders.db") as journal:
        sequence = 1_000
        for previous, history in paths.items():
            for kind in EventKind:
                sequence += 1
                order = ClientOrderId(TRANSITION_LOGIN, sequence)
                for step in history:
                    journal.append(None, NewEvent(step, order))
                scope = journal.group() if grouped else contextlib.nullcontext()
                with scope:
                    if legal(previous, kind):
                        stored = journal.append(None, NewEvent(kind, order, note="next"))
                        assert (stored.kind, stored.client_id) == (kind, order)
                    else:
                        with pytest.raises(IllegalTransitionError) as refused:
                            journal.append(None, NewEvent(kind, order))
                        assert (refused.value.previous, refused.value.kind) == (previous, kind)
                kinds = [e.kind for e in journal.history(TRANSITION_LOGIN, order)]
                assert kinds == ([*history, kind] if legal(previous, kind) else history)
