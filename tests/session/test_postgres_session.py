"""The order pipeline end to end on PostgreSQL: real sessions over the simulator, the journal and
the lease in a real PostgreSQL server (``tests/servers/postgres.py``, a schema per test).

Orders placed and journaled, a lost reply reconciled (and the retry with the same key answered
from the journal, nothing sent twice), and a second session (another replica) refused while the
first holds the account, then taking it with a higher epoch once it is let go.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from mt5gate.errors import MT5OwnershipError
from mt5gate.models import OrderRequest, Side
from mt5gate.orders import EventKind
from mt5gate.orders.postgres import PostgresStore
from mt5gate.session import MT5SessionManager, ReconcilePolicy
from mt5gate.sim import SimConfig, VirtualClock
from mt5gate.sim.terminal import SimTerminal
from tests.session.conftest import TUESDAY_10, make_session

K = EventKind
LOGIN = 5001
BUY = OrderRequest("BTCUSD", Side.BUY, 0.01)


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    running = asyncio.new_event_loop()
    yield running
    running.close()


@pytest.fixture
def schema() -> str:
    return "s_" + uuid.uuid4().hex[:16]


def _sim() -> SimTerminal:
    return SimTerminal(SimConfig(history_days=1), clock=VirtualClock(TUESDAY_10))


def _session(url: str, schema: str, sim: SimTerminal, owner: str, **options: Any) -> Any:
    options.setdefault("reconcile", ReconcilePolicy(sweep_interval_s=None, settle_s=1.0))
    store = PostgresStore(url, schema=schema)
    session, _, _ = make_session(sim, journal=store, owner=owner, **options)
    return session, store


def _trades(sim: SimTerminal) -> int:
    return sum(1 for d in sim.broker.all_deals() if d.type in (0, 1))


def test_orders_are_placed_and_journaled_in_postgresql(
    postgres_url: str, schema: str, loop: asyncio.AbstractEventLoop
) -> None:
    sim = _sim()
    session, store = _session(postgres_url, schema, sim, "replica-a")
    assert isinstance(session, MT5SessionManager)
    loop.run_until_complete(session.connect())
    try:
        first = loop.run_until_complete(session.place_order(BUY, idempotency_key="o-1"))
        assert first.retcode == 10009
        again = loop.run_until_complete(session.place_order(BUY, idempotency_key="o-1"))
        assert again.order == first.order  # answered from the journal
        second = loop.run_until_complete(session.place_order(BUY, idempotency_key="o-2"))
        assert second.order != first.order
        assert _trades(sim) == 2
        client = loop.run_until_complete(store.by_key(LOGIN, "o-1"))
        events = loop.run_until_complete(store.events(LOGIN, client.sequence))
        assert [e.kind for e in events] == [K.INTENT, K.SENT, K.ACKNOWLEDGED]
        assert events[-1].order_ticket == first.order
        assert loop.run_until_complete(store.open_orders(LOGIN)) == []
        lease = loop.run_until_complete(store.lease(LOGIN))
        assert lease is not None
        assert lease.owner == "replica-a"
    finally:
        loop.run_until_complete(session.close())
    released = loop.run_until_complete(_lease_after_close(postgres_url, schema))
    assert not released


async def _lease_after_close(url: str, schema: str) -> bool:
    async with PostgresStore(url, schema=schema) as store:
        lease = await store.lease(LOGIN)
        assert lease is not None
        return lease.live(await store.now_ms())


def test_a_lost_reply_is_reconciled_from_postgresql(
    postgres_url: str, schema: str, loop: asyncio.AbstractEventLoop
) -> None:
    sim = _sim()
    session, store = _session(postgres_url, schema, sim, "replica-a")
    loop.run_until_complete(session.connect())
    try:
        sim.faults.reply_lost("order_send")  # the order executes, its reply never comes
        result = loop.run_until_complete(session.place_order(BUY, idempotency_key="lost"))
        assert result.comment == "reconciled"
        assert _trades(sim) == 1
        client = loop.run_until_complete(store.by_key(LOGIN, "lost"))
        kinds = [e.kind for e in loop.run_until_complete(store.events(LOGIN, client.sequence))]
        assert kinds[:2] == [K.INTENT, K.SENT]
        assert kinds[-1] is K.RECONCILED_PRESENT
        retried = loop.run_until_complete(session.place_order(BUY, idempotency_key="lost"))
        assert retried.order == result.order
        assert _trades(sim) == 1  # never sent twice
    finally:
        sim.faults.clear()
        loop.run_until_complete(session.close())


def test_a_second_replica_is_refused_while_the_first_holds_the_account(
    postgres_url: str, schema: str, loop: asyncio.AbstractEventLoop
) -> None:
    sim = _sim()
    first, _ = _session(postgres_url, schema, sim, "replica-a",
                        owner_info={"kind": "serve", "url": "http://a:8000"})  # fmt: skip
    second, store = _session(postgres_url, schema, sim, "replica-b")
    loop.run_until_complete(first.connect())
    try:
        epoch = first.ownership.held.epoch
        with pytest.raises(MT5OwnershipError) as refused:
            loop.run_until_complete(second.connect())
        assert "http://a:8000" in str(refused.value.owner)
        assert loop.run_until_complete(first.place_order(BUY)).retcode == 10009
    finally:
        loop.run_until_complete(first.close())  # lets the account go
    loop.run_until_complete(second.connect())
    try:
        assert second.ownership.held.epoch > epoch
        assert loop.run_until_complete(second.place_order(BUY)).retcode == 10009
        assert _trades(sim) == 2
        lease = loop.run_until_complete(store.lease(LOGIN))
        assert lease is not None
        assert (lease.owner, lease.epoch) == ("replica-b", second.ownership.held.epoch)
    finally:
        loop.run_until_complete(second.close())
