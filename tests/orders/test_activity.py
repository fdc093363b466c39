"""The absence proof's siblings, read from a real journal file (mt5gate.orders.activity).

Which orders count: those of the account on the watched order's symbol that were sent and have
an event after the watched order's SENT, or whose outcome is open. What each one needs to be
accounted for is judged by the reconciler (tests/session/test_absence_siblings.py).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from mt5gate.orders import ClientOrderId, EventKind, SqliteJournal
from mt5gate.orders.activity import Sibling, SiblingReader, SiblingScan
from mt5gate.orders.sqlite import SqliteStore

K = EventKind
LOGIN = 5002


def _send(journal: SqliteJournal, key: str, symbol: str, action: int = 1) -> ClientOrderId:
    client = journal.record_intent(LOGIN, {"op": "place", "symbol": symbol}, key)
    request = {"action": action, "symbol": symbol, "volume": 0.01, "type": 0,
               "magic": client.magic}  # fmt: skip
    journal.record(K.SENT, client, LOGIN, request=request, result={"server_ms": 1, "before": {}})
    return client


def _ack(journal: SqliteJournal, client: ClientOrderId, order: int, deal: int) -> None:
    result = {"retcode": 10009, "order": order, "deal": deal, "volume": 0.01}
    journal.record(K.ACKNOWLEDGED, client, LOGIN, result=result, retcode=10009)


def _scan(path: Path, client: ClientOrderId, *, sending: bool = False) -> SiblingScan:
    async def main() -> SiblingScan:
        store = SqliteStore(SqliteJournal(path))
        try:
            return await SiblingReader(store, LOGIN).scan(client, "EURUSD", sending=sending)
        finally:
            await store.close()

    return asyncio.run(main())


def test_the_siblings_are_the_orders_on_the_symbol_sent_since_or_still_open(
    tmp_path: Path,
) -> None:
    path = tmp_path / "orders.db"
    with SqliteJournal(path) as journal:
        _ack(journal, _send(journal, "done-before", "EURUSD"), 10, 11)  # over before w's SENT
        still_open = _send(journal, "open-before", "EURUSD")  # open: it may execute any time
        w = _send(journal, "w", "EURUSD")
        journal.record(K.UNKNOWN, w, LOGIN, note="reply lost")
        acked = _send(journal, "acked", "EURUSD")
        _ack(journal, acked, 20, 21)
        rejected = _send(journal, "rejected", "EURUSD")
        journal.record(K.REJECTED, rejected, LOGIN, result={"retcode": 10019}, retcode=10019)
        sltp = _send(journal, "sltp", "EURUSD", action=6)
        _ack(journal, sltp, 0, 0)
        _send(journal, "other-symbol", "GBPUSD")
        journal.record_intent(LOGIN, {"op": "place", "symbol": "EURUSD"}, "never-sent")
    scan = _scan(path, w)
    by_seq = {s.sequence: s for s in scan.siblings}
    assert set(by_seq) == {still_open.sequence, acked.sequence, rejected.sequence, sltp.sequence}
    opened = by_seq[still_open.sequence]
    assert opened == Sibling(opened.sequence, frozenset(), frozenset(), inert=False, open=True,
                             sent_seq=opened.sent_seq)  # fmt: skip
    done = by_seq[acked.sequence]
    assert (done.deals, done.orders, done.open, done.inert) == ({21}, {20}, False, False)
    assert (by_seq[rejected.sequence].inert, by_seq[rejected.sequence].open) == (True, False)
    assert by_seq[sltp.sequence].inert  # a modification makes no deal
    assert by_seq[acked.sequence].sent_seq > by_seq[still_open.sequence].sent_seq
    # w's send is over (its UNKNOWN is its last event): the journal's newest seq marks it
    assert scan.ended_seq >= by_seq[sltp.sequence].sent_seq
    assert _scan(path, w, sending=True).ended_seq == 0  # its send may still be running


def test_siblings_are_found_past_a_page_of_events(tmp_path: Path) -> None:
    """More than one page (500) of events since the send: the reader pages through them."""
    path = tmp_path / "orders.db"
    with SqliteJournal(path) as journal:
        w = _send(journal, "w", "EURUSD")
        journal.record(K.UNKNOWN, w, LOGIN, note="reply lost")
        for n in range(260):  # 520 events on another symbol
            _send(journal, f"gbp-{n}", "GBPUSD")
        late = _send(journal, "late", "EURUSD")
        _ack(journal, late, 30, 31)
    scan = _scan(path, w)
    assert [s.sequence for s in scan.siblings] == [late.sequence]
    assert scan.siblings[0].deals == {31}
