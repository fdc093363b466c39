"""The store contract: the same tests on every store (SQLite file, PostgreSQL), at the async
``OrderStore`` + ``FleetRegistry`` level the pipeline and the fleet use.

Leases and epochs, fences refused with nothing written, the transition table, idempotency keys,
INTENT and SENT in one transaction, ids under concurrency and above the clock floor, blocks,
the account's event feed, the sweep's queries, two stores racing for one account, and the fleet
registry. A clock is injected where expiry is the point; elsewhere each store keeps its own
(the PostgreSQL server's).
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from mt5gate.orders.core import EventKind
from mt5gate.orders.ids import ClientOrderId
from mt5gate.orders.store import (
    MEMBER_PRUNE_MS,
    Fence,
    FencedOutError,
    IdempotencyConflict,
    IllegalTransitionError,
    JournalError,
    LeaseHeldError,
    NewEvent,
    id_floor_ms,
)
from tests.orders.conftest import Backend, Clock, Store, kinds_of

K = EventKind
LOGIN = 5001
REQUEST: dict[str, Any] = {"op": "place", "symbol": "EURUSD", "volume": 0.1}


def _sent(client: ClientOrderId) -> NewEvent:
    return NewEvent(K.SENT, client, {**REQUEST, "magic": client.magic}, {"retcode": 0})


async def _nothing_written(store: Store, login: int = LOGIN) -> None:
    assert await store.known_sequences(login) == set()
    assert await store.events_after(login, 0) == []
    assert await store.account_block(login) is None


# ---------------------------------------------------------------------------- leases


def test_a_lease_is_taken_held_renewed_and_released(backend: Backend) -> None:
    clock = Clock()

    async def main() -> None:
        store = backend.store(clock)
        fence = await store.acquire(LOGIN, "a", 15.0, {"kind": "serve", "pid": 1})
        assert fence.epoch >= id_floor_ms(clock)
        assert not fence.took_over
        again = await store.acquire(LOGIN, "a", 15.0, {"kind": "serve", "pid": 1})
        assert again == Fence(LOGIN, "a", fence.epoch, clock() + 15_000)
        with pytest.raises(LeaseHeldError, match="owned by mt5gate serve") as held:
            await store.acquire(LOGIN, "b", 15.0, {})
        assert held.value.lease.epoch == fence.epoch
        clock.now_ms += 10_000
        renewed = await store.renew(fence, 15.0)
        assert renewed.expires_utc_ms == clock() + 15_000
        clock.now_ms += 14_000
        with pytest.raises(LeaseHeldError):  # renewed: still held
            await store.acquire(LOGIN, "b", 15.0, {})
        await store.release(renewed)
        taken = await store.acquire(LOGIN, "b", 15.0, {"kind": "cli"})
        assert taken.epoch > fence.epoch
        assert taken.took_over
        lease = await store.lease(LOGIN)
        assert lease is not None
        assert (lease.owner, lease.epoch, lease.live(clock()), dict(lease.info)) == (
            "b", taken.epoch, True, {"kind": "cli"})  # fmt: skip
        assert await store.lease(LOGIN + 1) is None
        await store.release(fence)  # no longer ours: nothing happens
        assert (await store.lease(LOGIN)) == lease

    backend.run(main)


def test_an_expired_lease_passes_on_with_a_higher_epoch_and_fences_the_old_owner(
    backend: Backend,
) -> None:
    clock = Clock()

    async def main() -> None:
        store = backend.store(clock)
        old = await store.acquire(LOGIN, "old", 15.0, {})
        clock.now_ms += 15_000
        new = await store.acquire(LOGIN, "new", 15.0, {})
        assert new.epoch > old.epoch
        assert new.took_over
        with pytest.raises(FencedOutError, match="no longer owns it"):
            await store.renew(old, 15.0)
        with pytest.raises(FencedOutError):
            await store.intent(old, REQUEST, "stale", sent=_sent)
        with pytest.raises(FencedOutError):
            await store.block(old, "stale", [1])
        await _nothing_written(store)
        client = await store.intent(new, REQUEST, "fresh")
        with pytest.raises(FencedOutError):
            await store.append(old, NewEvent(K.SENT, client))
        assert kinds_of(await store.events(LOGIN, client.sequence)) == [K.INTENT]
        assert await store.by_key(LOGIN, "stale") is None
        lease = await store.lease(LOGIN)
        assert lease is not None
        assert (lease.owner, lease.epoch) == ("new", new.epoch)

    backend.run(main)


def test_a_fence_of_an_account_never_leased_is_refused(backend: Backend) -> None:
    async def main() -> None:
        store = backend.store()
        forged = Fence(LOGIN, "nobody", 10**12, 0)
        with pytest.raises(FencedOutError, match="held by nobody"):
            await store.intent(forged, REQUEST, None)
        await _nothing_written(store)

    backend.run(main)


def test_a_dead_holder_is_taken_over_before_its_lease_expires(backend: Backend) -> None:
    async def main() -> None:
        store = backend.store()
        gone = await store.acquire(LOGIN, "crashed", 15.0, {})
        with pytest.raises(LeaseHeldError):
            await store.acquire(LOGIN, "next", 15.0, {}, dead=("someone-else", gone.epoch))
        with pytest.raises(LeaseHeldError):
            await store.acquire(LOGIN, "next", 15.0, {}, dead=("crashed", gone.epoch - 1))
        taken = await store.acquire(LOGIN, "next", 15.0, {}, dead=("crashed", gone.epoch))
        assert taken.epoch > gone.epoch
        assert taken.took_over

    backend.run(main)


def test_two_stores_racing_for_one_account_give_it_to_exactly_one(backend: Backend) -> None:
    async def main() -> None:
        stores = [backend.store() for _ in range(4)]
        won = await asyncio.gather(
            *(store.acquire(LOGIN, f"replica-{i}", 15.0, {}) for i, store in enumerate(stores)),
            return_exceptions=True,
        )
        fences = [f for f in won if isinstance(f, Fence)]
        assert len(fences) == 1, won
        assert all(isinstance(f, LeaseHeldError) for f in won if not isinstance(f, Fence))
        lease = await stores[0].lease(LOGIN)
        assert lease is not None
        assert (lease.owner, lease.epoch) == (fences[0].owner, fences[0].epoch)

    backend.run(main)


# ---------------------------------------------------------------------------- writes


def test_an_illegal_event_is_refused_and_nothing_is_written(backend: Backend) -> None:
    async def main() -> None:
        store = backend.store()
        fence = await store.acquire(LOGIN, "me", 15.0, {})
        client = await store.intent(fence, REQUEST, None)
        with pytest.raises(IllegalTransitionError, match="ACKNOWLEDGED cannot follow INTENT"):
            await store.append(fence, NewEvent(K.ACKNOWLEDGED, client, retcode=10009))
        await store.append(fence, NewEvent(K.SENT, client))
        done = await store.append(fence, NewEvent(K.ACKNOWLEDGED, client, retcode=10009,
                                                  result={"order": 7}, order_ticket=7))  # fmt: skip
        assert (done.kind, done.retcode, done.order_ticket, done.result) == (
            K.ACKNOWLEDGED, 10009, 7, {"order": 7})  # fmt: skip
        with pytest.raises(IllegalTransitionError):
            await store.append(fence, NewEvent(K.RESUBMITTED, client))
        with pytest.raises(IllegalTransitionError, match="a new order"):
            await store.append(fence, NewEvent(K.SENT, ClientOrderId(LOGIN, 424242)))
        events = await store.events(LOGIN, client.sequence)
        assert kinds_of(events) == [K.INTENT, K.SENT, K.ACKNOWLEDGED]
        assert await store.known_sequences(LOGIN) == {client.sequence}

    backend.run(main)


def test_an_idempotency_key_returns_its_first_order_or_conflicts(backend: Backend) -> None:
    async def main() -> None:
        store = backend.store()
        fence = await store.acquire(LOGIN, "me", 15.0, {})
        first = await store.intent(fence, REQUEST, "k")
        assert await store.intent(fence, dict(reversed(REQUEST.items())), "k") == first
        with pytest.raises(IdempotencyConflict) as conflict:
            await store.intent(fence, {**REQUEST, "volume": 0.2}, "k")
        assert conflict.value.client_id == first
        with pytest.raises(IdempotencyConflict):  # someone else took the key: never send
            await store.intent(fence, REQUEST, "k", sent=_sent)
        assert await store.by_key(LOGIN, "k") == first
        assert await store.by_key(LOGIN, "other") is None
        assert await store.known_sequences(LOGIN) == {first.sequence}
        other = await store.acquire(LOGIN + 1, "me", 15.0, {})
        assert (await store.intent(other, {"another": "body"}, "k")).login == LOGIN + 1

    backend.run(main)


def test_intent_and_sent_are_written_together_or_not_at_all(backend: Backend) -> None:
    async def main() -> None:
        store = backend.store()
        fence = await store.acquire(LOGIN, "me", 15.0, {})
        client = await store.intent(fence, REQUEST, "k", sent=_sent)
        intent, sent = await store.events(LOGIN, client.sequence)
        assert (intent.kind, sent.kind) == (K.INTENT, K.SENT)
        assert (intent.idempotency_key, sent.idempotency_key) == ("k", None)
        assert intent.utc_ms == sent.utc_ms
        assert sent.request == {**REQUEST, "magic": client.magic}
        assert intent.request == REQUEST

        def illegal(client: ClientOrderId) -> NewEvent:
            return NewEvent(K.ACKNOWLEDGED, client)

        with pytest.raises(IllegalTransitionError):
            await store.intent(fence, REQUEST, "k2", sent=illegal)
        assert await store.by_key(LOGIN, "k2") is None  # the INTENT went with it
        assert await store.known_sequences(LOGIN) == {client.sequence}

    backend.run(main)


def test_ids_are_unique_and_increasing_under_16_concurrent_intents(backend: Backend) -> None:
    async def main() -> None:
        store = backend.store()
        fence = await store.acquire(LOGIN, "me", 15.0, {})
        now = await store.now_ms()  # the store's clock (the database server's for PostgreSQL)
        floor = id_floor_ms(lambda: now)
        ids = await asyncio.gather(*(store.intent(fence, {"n": n}, f"k{n}") for n in range(16)))
        sequences = [client.sequence for client in ids]
        assert len(set(sequences)) == 16
        assert min(sequences) >= floor
        feed = await store.events_after(LOGIN, 0)
        assert [e.client_id.sequence for e in feed] == sorted(sequences)  # commit order
        assert [e.seq for e in feed] == sorted(e.seq for e in feed)
        assert await store.head_seq(LOGIN) == feed[-1].seq  # the newest, for the proof
        assert await store.head_seq(LOGIN + 1) == 0  # per account

    backend.run(main)


def test_ids_and_epochs_are_never_below_the_clock_floor(backend: Backend) -> None:
    clock = Clock()

    async def main() -> None:
        store = backend.store(clock)
        fence = await store.acquire(LOGIN, "me", 15.0, {})
        assert fence.epoch >= id_floor_ms(clock)
        first = await store.intent(fence, REQUEST, None)
        assert first.sequence == id_floor_ms(clock)
        assert (await store.intent(fence, REQUEST, None)).sequence == first.sequence + 1
        clock.now_ms += 60_000  # a minute later the floor is above the last id
        assert (await store.intent(fence, REQUEST, None)).sequence == id_floor_ms(clock)
        await store.release(fence)
        clock.now_ms += 1
        assert (await store.acquire(LOGIN, "next", 15.0, {})).epoch >= id_floor_ms(clock)

    backend.run(main)


# ---------------------------------------------------------------------------- blocks


def test_a_block_holds_until_an_operator_acknowledges(backend: Backend) -> None:
    async def main() -> None:
        store = backend.store()
        fence = await store.acquire(LOGIN, "me", 15.0, {})
        assert await store.account_block(LOGIN) is None
        await store.block(fence, "journal behind the broker", [7, 8])
        await store.block(fence, "again", [8])  # nothing new: nothing written
        first = await store.account_block(LOGIN)
        assert first is not None
        assert (first.reason, first.sequences) == ("journal behind the broker", (7, 8))
        await store.block(fence, "one more", [9])
        block = await store.account_block(LOGIN)
        assert block is not None
        assert (block.login, block.reason, block.sequences) == (LOGIN, "one more", (7, 8, 9))
        assert await store.acknowledge(LOGIN, "checked by ann") == block
        assert await store.account_block(LOGIN) is None
        assert await store.acknowledge(LOGIN, "again") is None
        assert await store.account_block(LOGIN + 1) is None

    backend.run(main)


# ---------------------------------------------------------------------------- reads


def test_the_sweeps_queries_and_the_event_feed(backend: Backend) -> None:
    async def main() -> None:
        store = backend.store()
        fence = await store.acquire(LOGIN, "me", 15.0, {})
        done = await store.intent(fence, REQUEST, "done", sent=_sent)
        await store.append(fence, NewEvent(K.ACKNOWLEDGED, done, retcode=10009))
        lost = await store.intent(fence, REQUEST, "lost", sent=_sent)
        await store.append(fence, NewEvent(K.UNKNOWN, lost, note="deadline"))
        waiting = await store.intent(fence, REQUEST, None)
        stranger = ClientOrderId(LOGIN, 99)
        await store.append(fence, NewEvent(K.UNEXPECTED, stranger, result={"ticket": 5}))
        other = await store.acquire(LOGIN + 1, "me", 15.0, {})
        elsewhere = await store.intent(other, REQUEST, None)

        assert await store.open_orders(LOGIN) == [lost, waiting]
        assert await store.open_orders(LOGIN + 1) == [elsewhere]
        assert await store.known_sequences(LOGIN) == {
            done.sequence, lost.sequence, waiting.sequence, 99}  # fmt: skip
        assert await store.last_kinds(LOGIN, [done.sequence, lost.sequence, 99, 12345]) == {
            done.sequence: K.ACKNOWLEDGED, lost.sequence: K.UNKNOWN, 99: K.UNEXPECTED}  # fmt: skip
        assert await store.last_kinds(LOGIN, []) == {}
        assert await store.flagged(LOGIN, {K.UNEXPECTED, K.DUPLICATE}) == {99}
        assert await store.flagged(LOGIN, [K.UNKNOWN]) == {lost.sequence}

        feed = await store.events_after(LOGIN, 0)
        assert [(e.kind, e.client_id) for e in feed] == [
            (K.INTENT, done), (K.SENT, done), (K.ACKNOWLEDGED, done),
            (K.INTENT, lost), (K.SENT, lost), (K.UNKNOWN, lost),
            (K.INTENT, waiting), (K.UNEXPECTED, stranger),
        ]  # fmt: skip
        assert feed[5].note == "deadline"
        assert feed[7].result == {"ticket": 5}
        assert await store.events_after(LOGIN, feed[2].seq, limit=2) == feed[3:5]
        assert await store.events_after(LOGIN, feed[-1].seq) == []
        assert await store.events(LOGIN, 12345) == []

    backend.run(main)


# ---------------------------------------------------------------------------- the fleet


def test_the_fleet_registry(backend: Backend) -> None:
    clock = Clock()

    async def main() -> None:
        store = backend.store(clock)
        assert await store.now_ms() == clock()
        assert (await store.members(), await store.placements(), await store.leases()) == (
            [], {}, [])  # fmt: skip
        beat = await store.heartbeat("b", {"url": "http://b:8000"}, 10.0)
        assert (beat.id, beat.expires_utc_ms, beat.draining) == ("b", clock() + 10_000, False)
        await store.heartbeat("a", {"url": "http://a:8000"}, 10.0)
        assert await store.set_draining("b", True)
        assert not await store.set_draining("nobody", True)
        clock.now_ms += 5_000
        again = await store.heartbeat("b", {"url": "http://b:9000"}, 10.0)
        assert again.draining  # a heartbeat keeps the flag
        members = await store.members()
        assert [(m.id, dict(m.info), m.draining) for m in members] == [
            ("a", {"url": "http://a:8000"}, False),
            ("b", {"url": "http://b:9000"}, True),
        ]
        assert [m.live(clock()) for m in members] == [True, True]
        clock.now_ms += 6_000
        assert [m.live(clock()) for m in await store.members()] == [False, True]
        clock.now_ms += MEMBER_PRUNE_MS  # long gone: pruned at the next heartbeat
        await store.heartbeat("b", {}, 10.0)
        assert [m.id for m in await store.members()] == ["b"]
        assert await store.set_draining("b", False)
        assert not (await store.members())[0].draining

        await store.place(LOGIN, "a")
        await store.place(LOGIN + 1, "b")
        await store.place(LOGIN, "b")
        assert await store.placements() == {LOGIN: "b", LOGIN + 1: "b"}
        await store.place(LOGIN, None)
        await store.place(LOGIN + 7, None)  # nothing pinned: nothing happens
        assert await store.placements() == {LOGIN + 1: "b"}

        first = await store.acquire(LOGIN + 1, "b", 15.0, {"kind": "serve"})
        second = await store.acquire(LOGIN, "a", 15.0, {})
        leases = await store.leases()
        assert [(x.login, x.owner, x.epoch) for x in leases] == [
            (LOGIN, "a", second.epoch), (LOGIN + 1, "b", first.epoch)]  # fmt: skip

    backend.run(main)


def test_a_closed_store_refuses_calls(backend: Backend) -> None:
    async def main() -> None:
        store = backend.store()
        await store.acquire(LOGIN, "me", 15.0, {})
        await store.close()
        with pytest.raises(JournalError, match="closed"):
            await store.lease(LOGIN)

    backend.run(main)
