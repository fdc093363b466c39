"""The journal as a store with a fence: leases and epochs, fenced writes, the transition table,
ids that never repeat across journal lifetimes, account blocks, migrations and file modes.

Real SQLite files; the journal's clock is injected where a lease's expiry is the point.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from mt5gate.orders import (
    TRANSITIONS,
    UNRESOLVED_KINDS,
    EventKind,
    Fence,
    FencedOutError,
    IllegalTransitionError,
    JournalError,
    LeaseHeldError,
    SqliteJournal,
    SqliteStore,
)
from mt5gate.orders.core import legal
from mt5gate.orders.store import EPOCH_FLOOR, NewEvent, id_floor_ms

K = EventKind
REQUEST: dict[str, Any] = {"op": "place", "symbol": "EURUSD", "volume": 0.1}
ROOT = Path(__file__).resolve().parents[2]


class Clock:
    """The journal's wall clock, moved by hand (leases expire by it)."""

    def __init__(self, now_ms: int = 1_796_000_000_000) -> None:
        self.now_ms = now_ms

    def __call__(self) -> int:
        return self.now_ms


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def journal(tmp_path: Path, clock: Clock) -> SqliteJournal:
    return SqliteJournal(tmp_path / "orders.db", clock_ms=clock)


# ---------------------------------------------------------------------------- transitions


def test_every_kind_is_reachable_and_the_table_names_only_kinds() -> None:
    reachable: set[EventKind] = set()
    frontier: list[EventKind | None] = [None]
    while frontier:
        for kind in TRANSITIONS.get(frontier.pop(), frozenset()):
            if kind not in reachable:
                reachable.add(kind)
                frontier.append(kind)
    assert reachable == set(EventKind)
    assert set(TRANSITIONS) <= {None, *EventKind}


def test_an_illegal_event_is_refused_and_nothing_is_written(journal: SqliteJournal) -> None:
    client = journal.record_intent(5001, REQUEST)
    with pytest.raises(IllegalTransitionError, match="ACKNOWLEDGED cannot follow INTENT"):
        journal.record(K.ACKNOWLEDGED, client, 5001, retcode=10009)
    journal.record(K.SENT, client, 5001)
    journal.record(K.ACKNOWLEDGED, client, 5001, retcode=10009)
    with pytest.raises(IllegalTransitionError):  # an executed order is never sent again
        journal.record(K.RESUBMITTED, client, 5001)
    with pytest.raises(IllegalTransitionError, match="a new order"):
        journal.record(K.SENT, 424242, 5001)
    assert [e.kind for e in journal.history(5001, client)] == [K.INTENT, K.SENT, K.ACKNOWLEDGED]


@pytest.mark.parametrize("previous", [None, *EventKind])
def test_unresolved_orders_can_always_be_settled(previous: EventKind | None) -> None:
    """Whatever an unresolved order's last event, reconciliation can record its verdict."""
    if previous in UNRESOLVED_KINDS - {K.INTENT, K.RESUBMITTED}:
        for verdict in (K.RECONCILED_PRESENT, K.RECONCILED_ABSENT, K.CONFLICT, K.LATE_RESULT):
            assert legal(previous, verdict), (previous, verdict)
    if previous in (K.INTENT, K.RESUBMITTED):  # never sent: absent at once
        assert legal(previous, K.RECONCILED_ABSENT)


# ---------------------------------------------------------------------------- leases, fences


def test_a_lease_is_taken_held_renewed_and_released(journal: SqliteJournal, clock: Clock) -> None:
    fence = journal.acquire(5001, "a", 15.0, {"kind": "serve", "pid": 1})
    assert fence.epoch >= id_floor_ms(clock)  # above every epoch a lost journal gave out
    assert journal.acquire(5001, "a", 15.0) == Fence(5001, "a", fence.epoch, clock() + 15_000)
    with pytest.raises(LeaseHeldError, match="owned by mt5gate serve") as held:
        journal.acquire(5001, "b", 15.0)
    assert held.value.lease.epoch == fence.epoch
    clock.now_ms += 10_000
    renewed = journal.renew(fence, 15.0)
    assert renewed.expires_utc_ms == clock() + 15_000
    clock.now_ms += 14_000
    with pytest.raises(LeaseHeldError):  # renewed: still held
        journal.acquire(5001, "b", 15.0)
    journal.release(renewed)
    taken = journal.acquire(5001, "b", 15.0)
    assert taken.epoch > fence.epoch
    lease = journal.lease(5001)
    assert lease is not None
    assert (lease.owner, lease.epoch, lease.live(clock())) == ("b", taken.epoch, True)


def test_an_expired_lease_passes_to_a_new_owner_with_a_higher_epoch(
    journal: SqliteJournal, clock: Clock
) -> None:
    old = journal.acquire(5001, "old", 15.0)
    clock.now_ms += 15_000
    new = journal.acquire(5001, "new", 15.0)
    assert new.epoch > old.epoch
    with pytest.raises(FencedOutError, match="no longer owns it"):
        journal.renew(old, 15.0)  # the paused owner wakes: it cannot renew
    client = journal.record_intent(5001, REQUEST, fence=new)
    with pytest.raises(FencedOutError):  # nor write
        journal.record(K.SENT, client, 5001, fence=old)
    with pytest.raises(FencedOutError):
        journal.record_intent(5001, REQUEST, fence=old)
    with pytest.raises(JournalError, match="without the owner's fence"):
        journal.record(K.SENT, client, 5001)  # an account once leased takes no unfenced write
    journal.record(K.SENT, client, 5001, fence=new)
    assert [e.kind for e in journal.history(5001, client)] == [K.INTENT, K.SENT]


def test_a_dead_holder_can_be_taken_over_before_its_lease_expires(
    journal: SqliteJournal,
) -> None:
    gone = journal.acquire(5001, "crashed", 15.0)
    with pytest.raises(LeaseHeldError):
        journal.acquire(5001, "next", 15.0, dead=("someone-else", gone.epoch))
    taken = journal.acquire(5001, "next", 15.0, dead=("crashed", gone.epoch))
    assert taken.epoch > gone.epoch


def test_epochs_and_ids_of_a_lost_or_restored_journal_never_repeat(tmp_path: Path) -> None:
    """A journal replaced by an empty file, or by an old backup, hands out ids and epochs
    above any the first one gave: both start at the wall clock in ms since 2020."""
    clock = Clock()
    first_path, backup = tmp_path / "orders.db", tmp_path / "backup.db"
    with SqliteJournal(first_path, clock_ms=clock) as first:
        first.record_intent(5001, REQUEST)
        with sqlite3.connect(first_path) as source, sqlite3.connect(backup) as copy:
            source.backup(copy)  # the backup stops here
        clock.now_ms += 5
        given = [first.record_intent(5001, REQUEST).sequence for _ in range(3)]
        epoch = first.acquire(5001, "a", 15.0).epoch
    clock.now_ms += 60_000  # the journal is lost; a minute later the gateway starts again
    first_path.unlink()
    with SqliteJournal(first_path, clock_ms=clock) as fresh:
        assert fresh.record_intent(5001, REQUEST).sequence > max(given)
        assert fresh.acquire(5001, "b", 15.0).epoch > epoch
    with SqliteJournal(backup, clock_ms=clock) as restored:
        assert restored.record_intent(5001, REQUEST).sequence > max(given)


def test_the_async_store_writes_behind_the_fence(tmp_path: Path, clock: Clock) -> None:
    async def main() -> None:
        store = SqliteStore(SqliteJournal(tmp_path / "orders.db", clock_ms=clock), name="t")
        fence = await store.acquire(5001, "me", 15.0, {"kind": "test"})
        client = await store.intent(fence, REQUEST, "k")
        assert await store.by_key(5001, "k") == client
        await store.append(fence, NewEvent(K.SENT, client, {"symbol": "EURUSD"}))
        assert [c.sequence for c in await store.open_orders(5001)] == [client.sequence]
        assert [e.kind for e in await store.events(5001, client.sequence)] == [K.INTENT, K.SENT]
        assert await store.known_sequences(5001) == {client.sequence}
        assert (await store.lease(5001)).owner == "me"  # type: ignore[union-attr]
        other_account = await store.acquire(5002, "me", 15.0, {})
        await store.intent(other_account, REQUEST, None)
        after = await store.events_after(5001, 0)
        assert [(e.kind, e.client_id) for e in after] == [(K.INTENT, client), (K.SENT, client)]
        assert await store.events_after(5001, after[0].seq) == after[1:]
        assert await store.events_after(5001, after[-1].seq) == []
        assert await store.events_after(5001, 0, limit=1) == after[:1]
        clock.now_ms += 20_000
        other = await store.acquire(5001, "other", 15.0, {})
        with pytest.raises(FencedOutError):
            await store.append(fence, NewEvent(K.UNKNOWN, client))
        await store.release(other)
        await store.close()
        with pytest.raises(JournalError, match="closed"):
            await store.by_key(5001, "k")

    asyncio.run(main())


# ---------------------------------------------------------------------------- blocks


def test_an_account_block_holds_until_an_operator_acknowledges(journal: SqliteJournal) -> None:
    fence = journal.acquire(5001, "me", 15.0)
    assert journal.account_block(5001) is None
    assert journal.block(fence, 5001, "journal behind the broker", [7, 8])
    assert not journal.block(fence, 5001, "again", [8])  # nothing new: nothing written
    assert journal.block(fence, 5001, "one more", [9])
    block = journal.account_block(5001)
    assert block is not None
    assert (block.reason, block.sequences) == ("one more", (7, 8, 9))
    assert journal.acknowledge(5001, "checked by ann") == block
    assert journal.account_block(5001) is None
    assert journal.acknowledge(5001, "again") is None
    conn = sqlite3.connect(journal.path)
    try:
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            conn.execute("DELETE FROM blocks")
    finally:
        conn.close()


def test_only_the_owner_blocks(journal: SqliteJournal, clock: Clock) -> None:
    old = journal.acquire(5001, "old", 15.0)
    clock.now_ms += 16_000
    journal.acquire(5001, "new", 15.0)
    with pytest.raises(FencedOutError):
        journal.block(old, 5001, "stale", [1])
    assert journal.account_block(5001) is None


# ---------------------------------------------------------------------------- files, schema

_V1 = """
CREATE TABLE schema_version (version INTEGER NOT NULL);
CREATE TABLE sequences (login INTEGER PRIMARY KEY, last INTEGER NOT NULL);
CREATE TABLE events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT NOT NULL, utc_ms INTEGER NOT NULL,
    monotonic_ns INTEGER NOT NULL, login INTEGER NOT NULL, client_id INTEGER NOT NULL,
    idempotency_key TEXT, request TEXT, result TEXT, retcode INTEGER,
    note TEXT NOT NULL DEFAULT '', order_ticket INTEGER, deal_ticket INTEGER);
INSERT INTO schema_version VALUES (1);
INSERT INTO sequences VALUES (5001, 3);
INSERT INTO events (kind, utc_ms, monotonic_ns, login, client_id, idempotency_key, request)
    VALUES ('INTENT', 1, 1, 5001, 3, 'old-key', '{"op":"place"}');
"""


def test_a_version_1_journal_is_migrated_and_keeps_its_orders(tmp_path: Path) -> None:
    path = tmp_path / "v1.db"
    conn = sqlite3.connect(path)
    conn.executescript(_V1)
    conn.close()
    with pytest.raises(JournalError, match="open it once"):
        SqliteJournal(path, readonly=True)
    with SqliteJournal(path) as journal:
        assert journal.by_key(5001, "old-key") is not None
        assert journal.unresolved(5001)[0].sequence == 3
        assert journal.acquire(5001, "me", 15.0).epoch > 0  # the new tables exist
    versions = sqlite3.connect(path).execute("SELECT version FROM schema_version").fetchall()
    assert sorted(v for (v,) in versions) == [1, 2, 3]


def test_the_journal_file_is_private(tmp_path: Path) -> None:
    path = tmp_path / "orders.db"
    with SqliteJournal(path) as journal:
        journal.record_intent(5001, REQUEST)
        for file in path.parent.iterdir():  # the database, its WAL and shared memory
            assert stat.S_IMODE(file.stat().st_mode) & 0o077 == 0, file
    loose = tmp_path / "loose.db"
    loose.touch(mode=0o644)
    os.chmod(loose, 0o644)
    SqliteJournal(loose).close()
    assert stat.S_IMODE(loose.stat().st_mode) == 0o600


def test_a_read_only_journal_reads_and_refuses_writes(tmp_path: Path) -> None:
    path = tmp_path / "orders.db"
    with SqliteJournal(path) as journal:
        client = journal.record_intent(5001, REQUEST, "k")
    with SqliteJournal(path, readonly=True) as reader:
        assert reader.by_key(5001, "k") == client
        with pytest.raises(JournalError, match="read-only"):
            reader.record_intent(5001, REQUEST)
    with pytest.raises(JournalError, match="no order journal"):
        SqliteJournal(tmp_path / "missing.db", readonly=True)
    assert not (tmp_path / "missing.db").exists()


def test_ids_start_at_the_clock_and_grow_past_it_under_load(journal: SqliteJournal) -> None:
    floor = id_floor_ms(journal.now_ms)
    ids = [journal.next_id(5001).sequence for _ in range(50)]  # 50 ids in one millisecond
    assert ids == list(range(floor, floor + 50))
    assert floor == journal.now_ms() - EPOCH_FLOOR


def test_a_killed_owner_on_this_host_is_taken_over_at_once(tmp_path: Path) -> None:
    """The lease of a process that died (SIGKILL) need not be waited out: its pid is gone."""
    path = tmp_path / "orders.db"
    child = subprocess.run(
        [sys.executable, "-c",
         "import sys, asyncio\n"
         "from mt5gate.orders import Ownership, SqliteStore\n"
         "async def main():\n"
         "    own = Ownership(SqliteStore(sys.argv[1]), 'child')\n"
         "    print((await own.acquire(5001)).epoch)\n"
         "asyncio.run(main())\n", str(path)],
        capture_output=True, text=True, timeout=60, check=True, cwd=ROOT,
    )  # fmt: skip
    epoch = int(child.stdout)

    async def take() -> Fence:
        from mt5gate.orders import Ownership

        store = SqliteStore(path)
        try:
            return await Ownership(store, "parent").acquire(5001)
        finally:
            await store.close()

    assert asyncio.run(take()).epoch > epoch


def test_a_version_2_journal_gains_the_fleet_registry_and_keeps_its_leases(
    tmp_path: Path,
) -> None:
    path = tmp_path / "v2.db"
    with SqliteJournal(path) as journal:
        fence = journal.acquire(5001, "me", 15.0)
        journal.record_intent(5001, REQUEST, "k", fence=fence)
    conn = sqlite3.connect(path)  # as version 2 left it: no registry tables
    conn.executescript(
        "DROP TABLE members; DROP TABLE placements; UPDATE schema_version SET version = 2;"
    )
    conn.close()
    with pytest.raises(JournalError, match="schema version 2; open it once"):
        SqliteJournal(path, readonly=True)
    with SqliteJournal(path) as journal:
        assert [lease.owner for lease in journal.leases()] == ["me"]
        assert journal.by_key(5001, "k") is not None
        journal.heartbeat("replica", {"url": "http://r"}, 10.0)
        journal.place(5001, "replica")
        assert [m.id for m in journal.members()] == ["replica"]
        assert journal.placements() == {5001: "replica"}
    versions = sqlite3.connect(path).execute("SELECT version FROM schema_version").fetchall()
    assert sorted(v for (v,) in versions) == [2, 3]
