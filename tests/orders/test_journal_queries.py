"""Inspection queries of the SQLite journal: summaries, filters, paging, validation."""

from __future__ import annotations

import itertools
import random
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mt5gate.orders.core import TRANSITIONS
from mt5gate.orders.ids import ClientOrderId
from mt5gate.orders.journal import (
    UNRESOLVED_KINDS,
    EventKind,
    JournalError,
    OrderSummary,
    SqliteJournal,
)

REQUEST: dict[str, Any] = {"action": 1, "symbol": "EURUSD", "volume": 0.1, "type": 0}
T0 = 1_500_000_000_000  # before 2020: client ids count from 1 (see test_store.py)


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "journal.sqlite"


@pytest.fixture
def journal(path: Path) -> Iterator[SqliteJournal]:
    ticks = itertools.count(T0, 1000)
    with SqliteJournal(path, clock_ms=lambda: next(ticks)) as opened:
        yield opened


@pytest.fixture
def orders(journal: SqliteJournal) -> dict[str, ClientOrderId]:
    """Two accounts, every kind of order life:

    5001/1 key "a": a late reply, then reconciled (a later deal ticket, no retcode)
    5001/2 key "b": sent, then unknown (unresolved)
    5001/3 no key: only its intent (unresolved)
    5001/4: allocated, never journaled
    5001/5: found at the broker, no intent (UNEXPECTED)
    5001/6 key "c": requoted, resubmitted, filled
    5002/1 key "a": rejected
    5002/2 key "d": sent (unresolved)
    """
    filled = journal.record_intent(5001, REQUEST, "a")
    journal.record(EventKind.SENT, filled, 5001)
    journal.record(
        EventKind.LATE_RESULT, filled, 5001,
        result={"retcode": 10009, "order": 111, "deal": 222}, retcode=10009,
    )  # fmt: skip
    journal.record(
        EventKind.RECONCILED_PRESENT, filled, 5001,
        result={"entry": 0, "ticket": 223, "order": 111}, note="deal seen",
    )  # fmt: skip
    lost = journal.record_intent(5001, {**REQUEST, "volume": 0.2}, "b")
    journal.record(EventKind.SENT, lost, 5001)
    journal.record(EventKind.UNKNOWN, lost, 5001, note="deadline")
    waiting = journal.record_intent(5001, REQUEST)
    journal.next_id(5001)
    stranger = journal.next_id(5001)
    journal.record(EventKind.UNEXPECTED, stranger, 5001, result={"time_setup": 1, "ticket": 555})
    requoted = journal.record_intent(5001, {**REQUEST, "volume": 0.3}, "c")
    journal.record(EventKind.SENT, requoted, 5001)
    journal.record(EventKind.REJECTED, requoted, 5001, retcode=10004, note="requote")
    journal.record(EventKind.RESUBMITTED, requoted, 5001, request={**REQUEST, "price": 1.1})
    journal.record(EventKind.SENT, requoted, 5001, request={**REQUEST, "price": 1.1})
    journal.record(
        EventKind.ACKNOWLEDGED, requoted, 5001,
        result={"retcode": 10009, "order": 666, "deal": 0}, retcode=10009,
    )  # fmt: skip
    rejected = journal.record_intent(5002, REQUEST, "a")
    journal.record(EventKind.SENT, rejected, 5002)
    journal.record(
        EventKind.REJECTED, rejected, 5002,
        result={"retcode": 10006, "order": 0, "deal": 0}, retcode=10006,
    )  # fmt: skip
    pending = journal.record_intent(5002, REQUEST, "d")
    journal.record(EventKind.SENT, pending, 5002, result={"order": 222, "deal": 0})
    return {
        "filled": filled,
        "lost": lost,
        "waiting": waiting,
        "stranger": stranger,
        "requoted": requoted,
        "rejected": rejected,
        "pending": pending,
    }


def _ids(summaries: list[OrderSummary]) -> list[tuple[int, int]]:
    return [(s.client_id.login, s.client_id.sequence) for s in summaries]


def test_summaries_carry_what_the_events_carried(
    journal: SqliteJournal, orders: dict[str, ClientOrderId]
) -> None:
    found = {s.client_id: s for s in journal.summaries()}
    assert _ids(list(found.values())) == [
        (5001, 1), (5001, 2), (5001, 3), (5001, 5), (5001, 6), (5002, 1), (5002, 2)
    ]  # fmt: skip
    filled = found[orders["filled"]]
    assert filled == OrderSummary(
        client_id=orders["filled"],
        idempotency_key="a",
        state=EventKind.RECONCILED_PRESENT,
        events=4,
        created_utc_ms=T0,
        updated_utc_ms=T0 + 3000,
        request=REQUEST,
        retcode=10009,  # the latest non-null one: the reconciliation had none
        order_ticket=111,
        deal_ticket=223,  # the reconciled deal's, later than the acknowledgement's
    )
    assert not filled.unresolved
    stranger = found[orders["stranger"]]
    assert stranger.state is EventKind.UNEXPECTED
    assert (stranger.request, stranger.idempotency_key, stranger.events) == (None, None, 1)
    assert (stranger.order_ticket, stranger.deal_ticket, stranger.retcode) == (555, None, None)
    assert stranger.created_utc_ms == stranger.updated_utc_ms
    requoted = found[orders["requoted"]]
    assert requoted.request == {**REQUEST, "volume": 0.3}  # the intent's, not the resubmission's
    assert (requoted.retcode, requoted.order_ticket, requoted.deal_ticket) == (10009, 666, None)
    assert requoted.events == 6
    waiting = found[orders["waiting"]]
    assert (waiting.state, waiting.events, waiting.retcode) == (EventKind.INTENT, 1, None)
    assert waiting.idempotency_key is None
    rejected = found[orders["rejected"]]
    assert (rejected.idempotency_key, rejected.retcode) == ("a", 10006)
    assert (rejected.order_ticket, rejected.deal_ticket) == (None, None)  # zero is no ticket


def test_unresolved_property_agrees_with_the_journal(
    journal: SqliteJournal, orders: dict[str, ClientOrderId]
) -> None:
    summaries = journal.summaries()
    for summary in summaries:
        assert summary.unresolved == (summary.state in UNRESOLVED_KINDS)
    open_ones = [s.client_id for s in summaries if s.unresolved]
    assert set(open_ones) == set(journal.unresolved())
    assert open_ones == [orders["lost"], orders["waiting"], orders["pending"]]
    assert journal.summaries(states=UNRESOLVED_KINDS) == [s for s in summaries if s.unresolved]


@pytest.mark.usefixtures("orders")
@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({"login": 5001}, [(5001, 1), (5001, 2), (5001, 3), (5001, 5), (5001, 6)]),
        ({"login": 5002}, [(5002, 1), (5002, 2)]),
        ({"login": 5003}, []),
        ({"states": {EventKind.SENT}}, [(5002, 2)]),
        ({"states": ["UNKNOWN", EventKind.INTENT]}, [(5001, 2), (5001, 3)]),
        ({"states": {EventKind.REJECTED}}, [(5002, 1)]),  # 5001/6 was rejected, then not
        ({"states": set()}, []),
        ({"key": "a"}, [(5001, 1), (5002, 1)]),
        ({"key": "a", "login": 5002}, [(5002, 1)]),
        ({"key": "zzz"}, []),
        ({"ticket": 111}, [(5001, 1)]),  # an order ticket
        ({"ticket": 223}, [(5001, 1)]),  # a deal ticket, only in a later event
        ({"ticket": 555}, [(5001, 5)]),  # the ticket of an UNEXPECTED order
        ({"ticket": 222}, [(5001, 1), (5002, 2)]),  # a deal ticket here, an order ticket there
        ({"ticket": 222, "login": 5002}, [(5002, 2)]),
        ({"ticket": 10009}, []),  # a retcode is no ticket
        ({"after_sequence": 2}, [(5001, 3), (5001, 5), (5001, 6)]),
        ({"after_sequence": 1, "login": 5002}, [(5002, 2)]),
        ({"limit": 2}, [(5001, 1), (5001, 2)]),
        ({"limit": 100, "login": 5002}, [(5002, 1), (5002, 2)]),
        ({"states": UNRESOLVED_KINDS, "login": 5001, "limit": 1}, [(5001, 2)]),
        ({"states": UNRESOLVED_KINDS, "after_sequence": 2}, [(5001, 3)]),
        ({"states": {EventKind.ACKNOWLEDGED}, "key": "c"}, [(5001, 6)]),
        ({"states": {EventKind.SENT}, "key": "c"}, []),
        ({"key": "a", "ticket": 111}, [(5001, 1)]),
        ({"key": "d", "ticket": 111}, []),
        (
            {
                "login": 5001,
                "key": "b",
                "states": {EventKind.UNKNOWN},
                "after_sequence": 1,
                "limit": 1,
            },
            [(5001, 2)],
        ),
    ],
)
def test_filters_combine(
    journal: SqliteJournal, filters: dict[str, Any], expected: list[tuple[int, int]]
) -> None:
    assert _ids(journal.summaries(**filters)) == expected


def test_paging_walks_every_order_once(journal: SqliteJournal) -> None:
    for _ in range(23):
        cid = journal.record_intent(5001, REQUEST)
        journal.record(EventKind.SENT, cid, 5001)
    seen: list[int] = []
    after = 0
    while page := journal.summaries(5001, after_sequence=after, limit=5):
        assert len(page) <= 5
        seen += [s.client_id.sequence for s in page]
        after = page[-1].client_id.sequence
    assert seen == list(range(1, 24))


def test_one_summary(journal: SqliteJournal, orders: dict[str, ClientOrderId]) -> None:
    by_id = journal.summary(5001, orders["lost"])
    assert by_id is not None
    assert by_id.state is EventKind.UNKNOWN
    assert by_id.request == {**REQUEST, "volume": 0.2}
    assert journal.summary(5001, orders["lost"].sequence) == by_id
    assert journal.summary(5001, 4) is None  # allocated, never journaled
    assert journal.summary(5002, 5) is None
    assert journal.summary(5009, 1) is None
    assert journal.summary(5002, 1) == journal.summaries(5002, key="a")[0]


def test_known_sequences_and_logins(
    journal: SqliteJournal, orders: dict[str, ClientOrderId]
) -> None:
    assert journal.known_sequences(5001) == {1, 2, 3, 5, 6}
    assert journal.known_sequences(5002) == {1, 2}
    assert journal.known_sequences(5003) == set()
    assert journal.logins() == [5001, 5002]


def test_an_empty_journal(journal: SqliteJournal) -> None:
    journal.next_id(5001)  # a sequence without events is no order
    assert journal.summaries() == []
    assert journal.summary(5001, 1) is None
    assert journal.known_sequences(5001) == set()
    assert journal.logins() == []


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda j: j.summaries(0), ValueError, "login"),
        (lambda j: j.summaries(-5), ValueError, "login"),
        (lambda j: j.summaries("5001"), TypeError, "login"),
        (lambda j: j.summaries(True), TypeError, "login"),
        (lambda j: j.summaries(limit=0), ValueError, "limit"),
        (lambda j: j.summaries(limit=2.5), TypeError, "limit"),
        (lambda j: j.summaries(after_sequence=-1), ValueError, "after_sequence"),
        (lambda j: j.summaries(after_sequence=None), TypeError, "after_sequence"),
        (lambda j: j.summaries(ticket=0), ValueError, "ticket"),
        (lambda j: j.summaries(ticket="111"), TypeError, "ticket"),
        (lambda j: j.summaries(key=5), TypeError, "key"),
        (lambda j: j.summaries(states="SENT"), TypeError, "states"),
        (lambda j: j.summaries(states=5), TypeError, "states"),
        (lambda j: j.summaries(states={"SENDING"}), ValueError, "states"),
        (lambda j: j.summary(0, 1), ValueError, "login"),
        (lambda j: j.summary(5001, 0), ValueError, "client_id"),
        (lambda j: j.summary(5001, "1"), TypeError, "client_id"),
        (lambda j: j.summary(5001, ClientOrderId(5002, 1)), ValueError, "5001"),
        (lambda j: j.known_sequences(0), ValueError, "login"),
        (lambda j: j.known_sequences(None), TypeError, "login"),
    ],
)
def test_arguments_are_validated(
    journal: SqliteJournal, call: Any, error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        call(journal)


def test_closed_journal_refuses(path: Path) -> None:
    journal = SqliteJournal(path)
    journal.close()
    for call in (journal.summaries, journal.logins, lambda: journal.summary(5001, 1)):
        with pytest.raises(JournalError, match="closed"):
            call()


def test_database_error_is_a_journal_error(path: Path, journal: SqliteJournal) -> None:
    journal.record_intent(5001, REQUEST)
    conn = sqlite3.connect(path)
    conn.execute("ALTER TABLE events RENAME TO gone")
    conn.commit()
    conn.close()
    with pytest.raises(JournalError, match="no such table"):
        journal.summaries()


def _reference(journal: SqliteJournal, login: int, sequence: int) -> OrderSummary:
    """The summary computed the slow way, from the order's history."""
    events = journal.history(login, sequence)
    intents = [e for e in events if e.kind is EventKind.INTENT]

    def latest(name: str) -> Any:
        values = [getattr(e, name) for e in events if getattr(e, name) is not None]
        return values[-1] if values else None

    return OrderSummary(
        client_id=events[0].client_id,
        idempotency_key=intents[0].idempotency_key if intents else None,
        state=events[-1].kind,
        events=len(events),
        created_utc_ms=events[0].utc_ms,
        updated_utc_ms=events[-1].utc_ms,
        request=intents[0].request if intents else None,
        retcode=latest("retcode"),
        order_ticket=latest("order_ticket"),
        deal_ticket=latest("deal_ticket"),
    )


def test_random_histories_match_the_slow_reference(journal: SqliteJournal) -> None:
    rng = random.Random(5)
    for n in range(300):
        login = rng.choice((5001, 5002, 5003))
        known = sorted(journal.known_sequences(login))
        if not known or rng.random() < 0.2:
            journal.record_intent(login, {**REQUEST, "n": n}, rng.choice((None, f"k{n}")))
            continue
        result = rng.choice(
            (None, {"order": rng.randint(0, 50), "deal": rng.randint(0, 50)},
             {"entry": 1, "ticket": rng.randint(1, 50), "order": rng.randint(1, 50)})
        )  # fmt: skip
        sequence = rng.choice(known)
        allowed = sorted(TRANSITIONS[journal.state(login, sequence)])  # the journal's rule
        if not allowed:
            continue
        journal.record(
            rng.choice(allowed), sequence, login,
            result=result, retcode=rng.choice((None, 10009, 10004)),
        )  # fmt: skip
    summaries = journal.summaries()
    expected = [
        _reference(journal, login, sequence)
        for login in journal.logins()
        for sequence in sorted(journal.known_sequences(login))
    ]
    assert summaries == expected
    for ticket in range(1, 51):
        assert [s.client_id for s in journal.summaries(ticket=ticket)] == journal.by_ticket(ticket)


def test_a_large_journal_lists_fast(path: Path, journal: SqliteJournal) -> None:
    rows = []
    for login, sequence in itertools.product((5001, 5002), range(1, 25_001)):
        rows.append(("INTENT", T0, 1, login, sequence, f"k{sequence}", "{}", None, None, None))
        rows.append(("SENT", T0 + 1, 2, login, sequence, None, None, 10009, sequence, None))
    conn = sqlite3.connect(path)
    conn.executemany(
        "INSERT INTO events (kind, utc_ms, monotonic_ns, login, client_id, idempotency_key,"
        " request, retcode, order_ticket, deal_ticket) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        rows,
    )
    conn.commit()
    conn.close()
    started = time.perf_counter()
    everything = journal.summaries()
    assert len(everything) == 50_000
    assert everything[-1].order_ticket == 25_000
    assert _ids(journal.summaries(5002, after_sequence=24_998)) == [(5002, 24_999), (5002, 25_000)]
    assert len(journal.summaries(states={EventKind.SENT}, limit=10)) == 10
    assert _ids(journal.summaries(key="k7")) == [(5001, 7), (5002, 7)]
    assert len(journal.summaries(ticket=7)) == 2
    assert len(journal.known_sequences(5001)) == 25_000
    assert time.perf_counter() - started < 10  # about half a second; generous for slow CI
