"""Group commit: the journal calls queued together share one transaction and one fsync, each
caller is answered only once it is on disk, and a failing write takes nothing else with it."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest

from mt5gate.orders import EventKind, SqliteJournal
from mt5gate.orders.sqlite import SqliteStore
from mt5gate.orders.store import (
    FencedOutError,
    IdempotencyConflict,
    JournalError,
    LeaseHeldError,
    NewEvent,
)

LOGIN = 5001


def test_concurrent_intents_share_commits_and_are_all_on_disk(tmp_path: Path) -> None:
    path = tmp_path / "orders.db"
    store = SqliteStore(path)

    async def main() -> list[int]:
        fence = await store.acquire(LOGIN, "me", 30.0, {})
        ids = await asyncio.gather(
            *(store.intent(fence, {"op": "place", "n": n}, f"key-{n}") for n in range(64))
        )
        await store.close()
        return [i.sequence for i in ids]

    sequences = asyncio.run(main())
    commits = store.journal.commits
    assert len(set(sequences)) == 64
    with SqliteJournal(path, readonly=True) as reopened:  # what is on disk, not in memory
        events = reopened.events_after(LOGIN, 0, limit=1000)
    assert sorted(e.client_id.sequence for e in events if e.kind is EventKind.INTENT) == sorted(
        sequences
    )
    assert commits < 64  # the lease and 64 intents took fewer fsyncs than writes


def test_a_failing_write_in_a_group_is_undone_alone(tmp_path: Path) -> None:
    path = tmp_path / "orders.db"
    with SqliteJournal(path) as journal:
        before = journal.commits
        with journal.group():
            first = journal.intent(None, LOGIN, {"n": 1}, "same")
            with pytest.raises(IdempotencyConflict):
                journal.intent(None, LOGIN, {"n": 2}, "same")  # the key, another request
            third = journal.intent(None, LOGIN, {"n": 3}, "other")
        assert journal.commits == before + 1  # one fsync for the group
    with SqliteJournal(path, readonly=True) as reopened:
        kept = reopened.events_after(LOGIN, 0)
    assert [e.client_id for e in kept] == [first, third]
    assert [e.request for e in kept] == [{"n": 1}, {"n": 3}]


def test_a_group_of_reads_commits_nothing_and_groups_do_not_nest(tmp_path: Path) -> None:
    with SqliteJournal(tmp_path / "orders.db") as journal:
        journal.intent(None, LOGIN, {"n": 1}, None)
        before = journal.commits
        with journal.group():
            assert len(journal.events_after(LOGIN, 0)) == 1
            with pytest.raises(JournalError, match="do not nest"), journal.group():
                pass
        assert journal.commits == before


def test_another_threads_write_waits_for_the_open_group(tmp_path: Path) -> None:
    """A write from another thread cannot join the group's open transaction (and return before
    it is on disk): it waits for the group, then commits on its own."""
    journal = SqliteJournal(tmp_path / "orders.db")
    done = threading.Event()

    def other() -> None:
        journal.intent(None, LOGIN, {"from": "other"}, None)
        done.set()

    with journal.group():
        journal.intent(None, LOGIN, {"from": "group"}, None)
        writer = threading.Thread(target=other)
        writer.start()
        assert not done.wait(0.2)  # held off while the group is open
        commits_inside = journal.commits
    writer.join(5.0)
    assert done.is_set()
    assert journal.commits == commits_inside + 2  # the group's, then the other thread's
    journal.close()


def test_closing_inside_a_group_keeps_what_it_wrote(tmp_path: Path) -> None:
    path = tmp_path / "orders.db"
    journal = SqliteJournal(path)
    with journal.group():
        journal.intent(None, LOGIN, {"n": 1}, None)
        journal.close()
    with SqliteJournal(path, readonly=True) as reopened:
        assert len(reopened.events_after(LOGIN, 0)) == 1


def test_a_group_checks_each_fence_once_and_still_refuses_a_stale_one(tmp_path: Path) -> None:
    """The lease is read once per group transaction (it holds SQLite's write lock, so no other
    connection can change it); a lease write inside the group is seen by the next check."""
    path = tmp_path / "orders.db"
    with SqliteJournal(path) as journal:
        old = journal.acquire(LOGIN, "old", 30.0, {})
        with journal.group():
            first = journal.intent(old, LOGIN, {"n": 1}, None)
            journal.append(old, NewEvent(EventKind.SENT, first, {"n": 1}))
            new = journal.acquire(LOGIN, "new", 30.0, {}, dead=("old", old.epoch))
            with pytest.raises(FencedOutError):
                journal.append(old, NewEvent(EventKind.ACKNOWLEDGED, first, None, {"ok": 1}))
            with pytest.raises(FencedOutError):
                journal.intent(old, LOGIN, {"n": 2}, None)
            journal.append(new, NewEvent(EventKind.UNKNOWN, first, note="taken over"))
    with SqliteJournal(path, readonly=True) as reopened:
        kinds = [e.kind for e in reopened.history(LOGIN, first)]
    assert kinds == [EventKind.INTENT, EventKind.SENT, EventKind.UNKNOWN]


def test_a_lease_write_undone_in_a_group_is_not_trusted_later(tmp_path: Path) -> None:
    with SqliteJournal(tmp_path / "orders.db") as journal:
        mine = journal.acquire(LOGIN, "me", 30.0, {})
        with journal.group():
            journal.intent(mine, LOGIN, {"n": 1}, None)
            with pytest.raises(LeaseHeldError):  # refused: nothing of it stays
                journal.acquire(LOGIN, "other", 30.0, {})
            assert journal.intent(mine, LOGIN, {"n": 2}, None).login == LOGIN


def test_a_group_whose_transaction_sqlite_rolled_back_fails_whole(tmp_path: Path) -> None:
    """SQLite rolls a whole transaction back on some errors (I/O, disk full): the group's later
    writes must not start a new one whose commit would look like it covered the earlier ones.
    The engine's rollback is played here by rolling back under the journal."""
    path = tmp_path / "orders.db"
    journal = SqliteJournal(path)
    group = journal.group()
    group.__enter__()
    journal.intent(None, LOGIN, {"n": 1}, None)
    journal._connection().execute("ROLLBACK")  # what SQLite does on SQLITE_IOERR
    with pytest.raises(JournalError, match="rolled back"):
        journal.intent(None, LOGIN, {"n": 2}, None)
    with pytest.raises(JournalError, match="rolled back"):
        group.__exit__(None, None, None)  # the group's end: its commit would cover nothing
    journal.close()
    with SqliteJournal(path, readonly=True) as reopened:
        assert reopened.events_after(LOGIN, 0) == []
