"""One owner per account, and the guarantees that rest on it (issue 15, A2, A3, A5, B).

Real sessions over the simulator and real journal files: a second process's session on the same
journal (a second session object stands in for it; its lease is the same row), a lease taken
over after a pause, a journal behind the broker, evidence that is not the request, one key with
two bodies at once, and an unresolved order on one symbol that must not hold the others.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pytest

from mt5gate.errors import (
    MT5IdempotencyError,
    MT5OrderBlockedError,
    MT5OrderOutcomeUnknown,
    MT5OwnershipError,
    MT5TradeRetryable,
)
from mt5gate.health import Status, probe
from mt5gate.models import OrderRequest, Side
from mt5gate.orders import ClientOrderId, EventKind, LeasePolicy, SqliteJournal
from mt5gate.orders.store import EPOCH_FLOOR
from mt5gate.session import MT5SessionManager, RealAsyncClock, ReconcilePolicy
from mt5gate.sim import SimConfig, VirtualClock
from mt5gate.sim.terminal import SimTerminal
from tests.session.conftest import PASSWORD, TUESDAY_10, make_session

K = EventKind
LOGIN = 5001
BUY = OrderRequest("EURUSD", Side.BUY, 0.1)


def _sim() -> SimTerminal:
    return SimTerminal(SimConfig(history_days=1), clock=VirtualClock(TUESDAY_10))


def _trades(sim: SimTerminal) -> int:
    """Buy and sell deals in the simulated ledger (the initial deposit is no trade)."""
    return sum(1 for d in sim.broker.all_deals() if d.type in (0, 1))


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    running = asyncio.new_event_loop()
    yield running
    running.close()


def _session(path: Path, sim: SimTerminal, owner: str, **options: Any) -> MT5SessionManager:
    options.setdefault("reconcile", ReconcilePolicy(sweep_interval_s=None, settle_s=1.0))
    session, _, _ = make_session(sim, journal=SqliteJournal(path), owner=owner, **options)
    return session


# ---------------------------------------------------------------------------- the lease


def test_a_second_owner_is_refused_until_the_first_lets_go(
    tmp_path: Path, loop: asyncio.AbstractEventLoop
) -> None:
    path, sim = tmp_path / "orders.db", _sim()
    first = _session(path, sim, "serve-a", owner_info={"kind": "serve", "url": "http://x:1"})
    second = _session(path, sim, "cli-b")
    loop.run_until_complete(first.connect())
    with pytest.raises(MT5OwnershipError) as refused:
        loop.run_until_complete(second.connect())
    assert refused.value.owner is not None
    assert "serve" in refused.value.owner
    assert "http://x:1" in refused.value.owner
    assert loop.run_until_complete(first.place_order(BUY)).retcode == 10009
    loop.run_until_complete(first.close())  # gives the lease up
    loop.run_until_complete(second.connect())
    assert loop.run_until_complete(second.place_order(BUY)).retcode == 10009
    loop.run_until_complete(second.close())
    for session in (first, second):
        session.close_journal()


def test_an_owner_that_lost_its_lease_sends_nothing_and_writes_nothing(
    tmp_path: Path, loop: asyncio.AbstractEventLoop
) -> None:
    """A paused owner wakes after its lease passed to another: fenced by the store."""
    path, sim = tmp_path / "orders.db", _sim()
    paused = _session(path, sim, "paused")
    loop.run_until_complete(paused.connect())
    fence = paused.ownership.held
    assert fence is not None
    with SqliteJournal(path, clock_ms=lambda: fence.expires_utc_ms + 1) as later:
        later.acquire(LOGIN, "newer", 15.0)  # the lease expired while it was paused
    before = _trades(sim)
    with pytest.raises(MT5OwnershipError, match="no longer owns it"):
        loop.run_until_complete(paused.place_order(BUY, idempotency_key="after-pause"))
    assert _trades(sim) == before  # nothing reached the terminal
    assert paused.journal is not None
    assert paused.journal.by_key(LOGIN, "after-pause") is None
    loop.run_until_complete(paused.close())
    paused.close_journal()


def test_an_owner_that_cannot_renew_stops_trading_at_its_deadline(
    tmp_path: Path, loop: asyncio.AbstractEventLoop
) -> None:
    path, sim = tmp_path / "orders.db", _sim()
    session = _session(path, sim, "slow")
    loop.run_until_complete(session.connect())
    session.ownership._renewed_at -= LeasePolicy().deadline_s  # no renewal for 10 s
    with pytest.raises(MT5OwnershipError, match="not renewed"):
        loop.run_until_complete(session.place_order(BUY))
    assert _trades(sim) == 0
    loop.run_until_complete(session.ownership.renew())  # the store answers again
    assert loop.run_until_complete(session.place_order(BUY)).retcode == 10009
    health = loop.run_until_complete(probe(session, symbols=[]))
    assert next(c for c in health.checks if c.name == "orders:ownership").status is Status.PASS
    loop.run_until_complete(session.close())
    session.close_journal()


def test_a_lost_owner_takes_the_account_back_when_it_is_free_and_recovers_first(
    tmp_path: Path, loop: asyncio.AbstractEventLoop
) -> None:
    path, sim = tmp_path / "orders.db", _sim()
    session = _session(path, sim, "comes-back", clock=RealAsyncClock(),
                       lease=LeasePolicy(ttl_s=0.6, renew_s=0.1, deadline_s=0.4))  # fmt: skip
    loop.run_until_complete(session.connect())
    epoch = session.ownership.held.epoch  # type: ignore[union-attr]
    with SqliteJournal(path, clock_ms=lambda: int(time.time() * 1000) + 5_000) as other:
        taken = other.acquire(LOGIN, "interloper", 0.5)  # takes it (as if it had expired)...
        loop.run_until_complete(asyncio.sleep(0.3))
        assert session.ownership.lost is not None  # the renewal found the newer owner
        health = loop.run_until_complete(probe(session, symbols=[]))
        check = next(c for c in health.checks if c.name == "orders:ownership")
        assert (check.status, "interloper" in check.output) == (Status.FAIL, True)
        other.release(taken)  # ...and lets go

    async def back() -> None:
        deadline = time.monotonic() + 10
        while not session.pipeline.ready:
            assert time.monotonic() < deadline, "ownership never came back"
            await asyncio.sleep(0.05)

    loop.run_until_complete(back())
    assert session.ownership.held.epoch > epoch  # type: ignore[union-attr]
    assert loop.run_until_complete(session.place_order(BUY)).retcode == 10009
    loop.run_until_complete(session.close())
    session.close_journal()


# ---------------------------------------------------------------------------- journal behind


def _old_orders(sim: SimTerminal, sequences: range) -> None:
    """Orders an earlier journal placed (ids 1..n), that the current journal never issued."""
    assert sim.initialize(login=LOGIN, password=PASSWORD, server="MetaQuotes-Demo")
    for sequence in sequences:
        sent = sim.order_send({"action": 1, "symbol": "EURUSD", "volume": 0.01, "type": 0,
                               "type_filling": 1,
                               "magic": ClientOrderId(LOGIN, sequence).magic})  # fmt: skip
        assert sent is not None
        assert sent.retcode == 10009


def test_a_journal_behind_the_broker_stops_new_orders_until_acknowledged(
    tmp_path: Path, loop: asyncio.AbstractEventLoop
) -> None:
    path, sim = tmp_path / "orders.db", _sim()
    _old_orders(sim, range(1, 4))
    session = _session(path, sim, "gateway")
    loop.run_until_complete(session.connect())  # the start-up audit finds them
    with pytest.raises(MT5OrderBlockedError, match="journal is behind the broker") as stopped:
        loop.run_until_complete(session.place_order(BUY))
    assert "mt5gate journal acknowledge --login 5001" in str(stopped.value)
    assert _trades(sim) == 3  # nothing new was sent
    health = loop.run_until_complete(probe(session, symbols=[]))
    block = next(c for c in health.checks if c.name == "orders:block")
    assert (block.status, block.observed_value) == (Status.FAIL, 3)
    assert "acknowledge" in block.output
    assert health.status is Status.FAIL
    assert session.journal is not None
    assert session.journal.acknowledge(LOGIN, "checked by ann") is not None
    assert loop.run_until_complete(session.place_order(BUY)).retcode == 10009
    loop.run_until_complete(session.sweep_orders())  # the flagged ones do not block again
    assert loop.run_until_complete(session.place_order(BUY)).retcode == 10009
    loop.run_until_complete(session.close())
    session.close_journal()


def test_a_fresh_journal_never_reports_an_old_order_as_a_new_one(
    tmp_path: Path, loop: asyncio.AbstractEventLoop
) -> None:
    """The audit's case: a fresh journal against a broker holding mg:1..mg:N; a new SELL whose
    send hung and never executed was answered "reconciled" with an old BUY's ticket. Ids from
    the clock never collide with old ones, and an old order is never evidence of a new one."""
    path, sim = tmp_path / "orders.db", _sim()
    _old_orders(sim, range(1, 6))
    session = _session(path, sim, "gateway")
    loop.run_until_complete(session.connect())
    assert session.journal is not None
    session.journal.acknowledge(LOGIN, "old orders of the lost journal, checked")
    sim.faults.ipc_error("order_send", -10002)  # the send fails before anything executes
    with pytest.raises((MT5TradeRetryable, MT5OrderOutcomeUnknown)) as outcome:
        loop.run_until_complete(session.place_order(OrderRequest("EURUSD", Side.SELL, 0.01),
                                                    idempotency_key="sell"))  # fmt: skip
    assert outcome.value.client_id is not None
    assert outcome.value.client_id > 5
    kinds = [e.kind for e in session.journal.history(LOGIN, outcome.value.client_id)]
    assert K.RECONCILED_PRESENT not in kinds
    loop.run_until_complete(session.close())
    session.close_journal()


def test_evidence_that_is_not_the_request_is_a_conflict_never_a_match(
    tmp_path: Path, loop: asyncio.AbstractEventLoop
) -> None:
    """A restored journal reuses an id the broker already holds for another order: the order
    the broker has is a BUY of GBPUSD, the journal's request a SELL of EURUSD."""
    path, sim = tmp_path / "orders.db", _sim()
    sell = OrderRequest("EURUSD", Side.SELL, 0.01)
    with SqliteJournal(path, clock_ms=lambda: EPOCH_FLOOR) as old:  # ids count from 1
        client = old.record_intent(LOGIN, {"op": "place", **asdict(sell)}, "reused")
        request = {"action": 1, "symbol": "EURUSD", "volume": 0.01, "type": 1,
                   "magic": client.magic}  # fmt: skip
        old.record(K.SENT, client, LOGIN, request=request, result={"before": {"positions": []}})
    assert sim.initialize(login=LOGIN, password=PASSWORD, server="MetaQuotes-Demo")
    assert sim.order_send({"action": 1, "symbol": "GBPUSD", "volume": 0.2, "type": 0,
                           "type_filling": 1, "magic": client.magic}).retcode == 10009  # fmt: skip
    session = _session(path, sim, "gateway")
    loop.run_until_complete(session.connect())  # recovery meets the conflict
    assert session.journal is not None
    kinds = [e.kind for e in session.journal.history(LOGIN, client)]
    assert kinds[-1] is K.CONFLICT
    assert K.RECONCILED_PRESENT not in kinds
    with pytest.raises(MT5OrderBlockedError):  # the key is blocked
        loop.run_until_complete(session.place_order(sell, idempotency_key="reused"))
    assert session.pipeline.blocked is not None  # and the account stops until a person looks
    loop.run_until_complete(session.close())
    session.close_journal()


# ---------------------------------------------------------------------------- one key, two bodies


def test_one_key_with_two_bodies_at_the_same_moment_places_only_the_first(
    tmp_path: Path, loop: asyncio.AbstractEventLoop
) -> None:
    path, sim = tmp_path / "orders.db", _sim()
    session = _session(path, sim, "gateway")
    loop.run_until_complete(session.connect())

    async def both() -> list[Any]:
        buy = session.place_order(OrderRequest("EURUSD", Side.BUY, 0.01), idempotency_key="k")
        sell = session.place_order(OrderRequest("EURUSD", Side.SELL, 0.02), idempotency_key="k")
        return await asyncio.gather(buy, sell, return_exceptions=True)

    bought, sold = loop.run_until_complete(both())
    assert bought.retcode == 10009
    assert isinstance(sold, MT5IdempotencyError)  # never the BUY's order as its answer
    (position,) = loop.run_until_complete(session.positions())
    assert (position.type, position.volume) == (0, 0.01)
    loop.run_until_complete(session.close())
    session.close_journal()


# ---------------------------------------------------------------------------- recovery holds


def test_an_unresolved_order_holds_its_symbol_only_and_readiness_waits_for_it(
    tmp_path: Path, loop: asyncio.AbstractEventLoop
) -> None:
    """After a restart, an EURUSD order whose outcome cannot be settled yet (the link to the
    trade server is down for it) must not hold a BTCUSD order; the account is not ready until
    recovery is over."""
    path, sim = tmp_path / "orders.db", _sim()
    with SqliteJournal(path) as old:
        client = old.record_intent(LOGIN, {"op": "place"}, "stuck")
        request = {"action": 1, "symbol": "EURUSD", "volume": 0.01, "type": 0,
                   "magic": client.magic}  # fmt: skip
        old.record(K.SENT, client, LOGIN, request=request, result={"before": {"positions": []}})
    sim.faults.latency("history_deals_get", 0.4, times=6)  # settling it takes a while
    session = _session(path, sim, "gateway", clock=RealAsyncClock(),
                       reconcile=ReconcilePolicy(sweep_interval_s=None, settle_s=0.5,
                                                 budget_s=10.0, first_s=0.1))  # fmt: skip

    async def scenario() -> tuple[bool, float, float]:
        connecting = asyncio.ensure_future(session.connect())
        while not session.pipeline._held:  # recovery has started
            await asyncio.sleep(0.01)
        ready_during = session.pipeline.ready
        started = time.monotonic()
        await session.place_order(OrderRequest("BTCUSD", Side.BUY, 0.01))
        other_symbol = time.monotonic() - started
        assert not connecting.done(), "recovery finished before the BTCUSD order: no test"
        await connecting
        return ready_during, other_symbol, time.monotonic() - started

    ready_during, btc_took, recovery_took = loop.run_until_complete(scenario())
    assert not ready_during
    assert session.pipeline.ready
    assert btc_took < recovery_took  # it went while EURUSD was still being settled
    assert session.journal is not None
    assert session.journal.state(LOGIN, client) is K.RECONCILED_ABSENT
    loop.run_until_complete(session.close())
    session.close_journal()
