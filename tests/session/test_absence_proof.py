"""Absence is proven by evidence that cannot be late (issue 15, A1).

The audit's case: a netting account, a SELL that only reduces a BUY, its reply lost, and the
broker's history 10 s late (a documented real-terminal behaviour). On main, reconciliation called
the SELL "proven absent" after about 5 s and the retry with the same key sold a second time.
Here the history must be shown to have caught up: the position moved by a deal the history
does not show yet, so the outcome stays UNKNOWN (and nothing is resent) until it does.

The simulator runs on a standing virtual clock (history stays late until the test moves it);
the session on a manual clock (settle windows pass instantly).
"""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from mt5gate.constants import DealEntry, ResultCode
from mt5gate.errors import MT5OrderOutcomeUnknown, MT5TradeRetryable
from mt5gate.models import OrderRequest, OrderStatus, Side
from mt5gate.orders import ClientOrderId, EventKind, SqliteJournal
from mt5gate.orders.journal import SqliteJournal as Journal
from mt5gate.session import ReconcilePolicy
from mt5gate.sim import SimConfig, VirtualClock
from mt5gate.sim.terminal import SimTerminal
from tests.session.conftest import (
    LATE_MS,
    PASSWORDS,
    SATURDAY_12,
    TUESDAY_10,
    Harness,
    make_session,
)

K = EventKind
NETTING, HEDGING = 5002, 5001
POLICY = ReconcilePolicy(sweep_interval_s=None, settle_s=3.0, budget_s=20.0, replay_budget_s=5.0)


@pytest.fixture
def late(late_history: Any) -> Any:
    """``build(login)`` on an account whose history is 10 s late."""
    return lambda login: late_history(login, POLICY)


def _journal(h: Harness) -> Journal:
    assert h.session.journal is not None
    return h.session.journal


def _kinds(h: Harness, key: str, login: int) -> list[EventKind]:
    client = _journal(h).by_key(login, key)
    assert client is not None
    return [e.kind for e in _journal(h).history(login, client)]


def _sell_deals(sim: SimTerminal) -> int:
    return sum(1 for d in sim.broker.all_deals() if d.type == 1 and d.entry != DealEntry.IN)


def test_a_reduced_netting_position_is_never_proven_absent_while_history_is_late(
    late: Any,
) -> None:
    h: Harness = late(NETTING)
    sell = OrderRequest("EURUSD", Side.SELL, 0.01)
    h.run(h.session.place_order(OrderRequest("EURUSD", Side.BUY, 0.05)))
    h.terminal.faults.reply_lost("order_send")  # the SELL executes, its reply is lost
    with pytest.raises(MT5OrderOutcomeUnknown) as caught:
        h.run(h.session.place_order(sell, idempotency_key="reduce"))
    assert "Do not send it again under a new key" in str(caught.value)
    (position,) = h.run(h.session.positions())
    assert position.volume == pytest.approx(0.04)
    # a retry with the same key returns the current status: still unknown, nothing sent
    with pytest.raises(MT5OrderOutcomeUnknown):
        h.run(h.session.place_order(sell, idempotency_key="reduce"))
    status = h.run(h.session.order_status("reduce"))
    assert isinstance(status, OrderStatus)
    assert (status.outcome, status.state) == ("unknown", "UNKNOWN")
    assert _sell_deals(h.terminal) == 1
    # the history catches up: the SELL is found, once
    h.terminal.clock.advance(LATE_MS / 1000 + 1)  # type: ignore[attr-defined]
    result = h.run(h.session.place_order(sell, idempotency_key="reduce"))
    assert result.comment == "reconciled"
    assert _kinds(h, "reduce", NETTING)[-1] is K.RECONCILED_PRESENT
    (position,) = h.run(h.session.positions())
    assert position.volume == pytest.approx(0.04)  # never 0.03: no second SELL
    assert _sell_deals(h.terminal) == 1
    done = h.run(h.session.order_status("reduce"))
    assert done is not None
    assert (done.outcome, done.result) == ("executed", result)


def test_a_closed_position_is_never_proven_absent_while_history_is_late(late: Any) -> None:
    h: Harness = late(HEDGING)
    ticket = h.run(h.session.place_order(OrderRequest("EURUSD", Side.BUY, 0.1))).order
    h.terminal.faults.reply_lost("order_send")
    with pytest.raises(MT5OrderOutcomeUnknown):
        h.run(h.session.close_position(ticket, idempotency_key="close"))
    assert h.run(h.session.positions()) == []
    h.terminal.clock.advance(LATE_MS / 1000 + 1)  # type: ignore[attr-defined]
    closed = h.run(h.session.close_position(ticket, idempotency_key="close"))
    assert (closed.comment, closed.volume) == ("reconciled", pytest.approx(0.1))
    assert _sell_deals(h.terminal) == 1


def test_an_order_that_moved_nothing_is_proven_absent_even_with_late_history(late: Any) -> None:
    """Nothing moved since the state recorded before the send, so the late history has nothing
    to catch up on: absence is shown without waiting for it, and the key sends it again."""
    h: Harness = late(NETTING)
    h.run(h.session.place_order(OrderRequest("EURUSD", Side.BUY, 0.05)))
    h.terminal.faults.ipc_error("order_send", ResultCode.E_FAIL)  # never reached the server
    with pytest.raises(MT5TradeRetryable):
        h.run(h.session.place_order(OrderRequest("EURUSD", Side.SELL, 0.01), idempotency_key="x"))
    assert _kinds(h, "x", NETTING)[-2:] == [K.UNKNOWN, K.RECONCILED_ABSENT]
    sold = h.run(h.session.place_order(OrderRequest("EURUSD", Side.SELL, 0.01),
                                       idempotency_key="x"))  # fmt: skip
    assert sold.retcode == 10009
    (position,) = h.run(h.session.positions())
    assert position.volume == pytest.approx(0.04)


def test_a_journal_written_before_the_proof_needs_the_broker_clock_to_move(tmp_path: Any) -> None:
    """An unresolved order journaled without the account's state before its send (an older
    mt5gate) can only be judged the old way: the broker's clock must move past the send."""
    path = tmp_path / "orders.db"
    with SqliteJournal(path) as journal:
        client = journal.record_intent(HEDGING, {"op": "place"}, "old")
        request = {"action": 1, "symbol": "EURUSD", "volume": 0.1, "type": 0, "magic": client.magic}
        journal.record(K.SENT, client, HEDGING, request=request, result={"server_ms": TUESDAY_10})
    sim = SimTerminal(SimConfig(history_days=1), clock=VirtualClock(TUESDAY_10))

    async def restart() -> list[EventKind]:
        policy = ReconcilePolicy(sweep_interval_s=None, budget_s=5.0, settle_s=1.0)
        session, _, _ = make_session(sim, journal=SqliteJournal(path), reconcile=policy)
        async with session:
            still = [e.kind for e in session.journal.history(HEDGING, client)]  # type: ignore[union-attr]
            sim.clock.advance(2.0)  # type: ignore[attr-defined]
            await session.sweep_orders()
            settled = [e.kind for e in session.journal.history(HEDGING, client)]  # type: ignore[union-attr]
        session.close_journal()
        return [*still, K.INTENT, *settled]

    kinds = asyncio.run(restart())
    split = kinds.index(K.INTENT, 1)
    assert kinds[:split] == [K.INTENT, K.SENT]  # unknown until the clock moved
    assert kinds[split + 1 :][-1] is K.RECONCILED_ABSENT


def test_an_order_in_flight_on_a_closed_market_is_settled_without_waiting_for_it_to_open(
    tmp_path: Any,
) -> None:
    """The gateway died with an EURUSD order in flight on a Saturday (issue 15, A5). Its
    symbol's clock stands still until Monday, so the old rule (the tick time must move past the
    send) held it unknown all weekend. Nothing moved, and the history agrees: it is proven
    absent at once, and its key gets the broker's real answer (market closed, final)."""
    path = tmp_path / "orders.db"
    with SqliteJournal(path) as journal:
        client = journal.record_intent(HEDGING, {"op": "place"}, "weekend")
        request = {"action": 1, "symbol": "EURUSD", "volume": 0.1, "type": 0,
                   "magic": client.magic}  # fmt: skip
        journal.record(K.SENT, client, HEDGING, request=request,
                       result={"server_ms": SATURDAY_12, "before": {"positions": []}})  # fmt: skip
    sim = SimTerminal(SimConfig(history_days=1), clock=VirtualClock(SATURDAY_12))

    async def restart() -> tuple[list[EventKind], int]:
        policy = ReconcilePolicy(sweep_interval_s=None, settle_s=1.0, budget_s=5.0)
        session, _, _ = make_session(sim, journal=SqliteJournal(path), reconcile=policy)
        async with session:
            settled = [e.kind for e in session.journal.history(HEDGING, client)]  # type: ignore[union-attr]
            btc = await session.place_order(OrderRequest("BTCUSD", Side.BUY, 0.01))
        session.close_journal()
        return settled, btc.retcode

    settled, btc = asyncio.run(restart())
    assert settled == [K.INTENT, K.SENT, K.RECONCILED_ABSENT]
    assert btc == 10009  # the weekend's open market trades meanwhile


def test_deals_that_net_out_are_no_proof_that_the_history_caught_up(late: Any) -> None:
    """A lost SELL, then a BUY of the same volume, both still missing from the late history:
    the position's volume is back where it was, but not the time of its last change, which no
    visible deal reaches. The SELL stays unknown (found by the chaos run at 30 s of delay)."""
    h: Harness = late(NETTING)
    sell = OrderRequest("EURUSD", Side.SELL, 0.01)
    h.run(h.session.place_order(OrderRequest("EURUSD", Side.BUY, 0.05)))
    h.terminal.clock.advance(LATE_MS / 1000 + 1)  # type: ignore[attr-defined]
    h.terminal.faults.reply_lost("order_send")  # the SELL executes, its reply is lost
    with pytest.raises(MT5OrderOutcomeUnknown):
        h.run(h.session.place_order(sell, idempotency_key="lost"))
    h.run(h.session.place_order(OrderRequest("EURUSD", Side.BUY, 0.01)))  # nets it out
    with pytest.raises(MT5OrderOutcomeUnknown):  # still unknown: never sold a second time
        h.run(h.session.place_order(sell, idempotency_key="lost", resubmit=True))
    client = _journal(h).by_key(NETTING, "lost")
    assert client is not None
    assert sum(1 for d in h.terminal.broker.all_deals() if d.magic == client.magic) == 1
    h.terminal.clock.advance(LATE_MS / 1000 + 1)  # type: ignore[attr-defined]
    found = h.run(h.session.place_order(sell, idempotency_key="lost"))
    assert found.comment == "reconciled"  # once the history shows it, it is found, once
    assert sum(1 for d in h.terminal.broker.all_deals() if d.magic == client.magic) == 1


def test_a_new_stop_loss_is_no_unexplained_change(late: Any) -> None:
    """A modification (a new SL) moves a position's time of last change without a deal: it
    does not hold an unrelated lost order's absence proof forever."""
    h: Harness = late(NETTING)
    h.run(h.session.place_order(OrderRequest("EURUSD", Side.BUY, 0.05)))
    h.terminal.clock.advance(LATE_MS / 1000 + 1)  # type: ignore[attr-defined]
    (position,) = h.run(h.session.positions())
    h.terminal.faults.ipc_error("order_send", ResultCode.E_FAIL)  # never reached the server

    async def lose_then_modify() -> None:
        with pytest.raises(MT5TradeRetryable):  # proven absent: nothing moved
            await h.session.place_order(OrderRequest("EURUSD", Side.SELL, 0.01),
                                        idempotency_key="x")  # fmt: skip

    h.run(lose_then_modify())
    h.run(h.session.modify_position(position.ticket, sl=round(position.price_open - 0.01, 5)))
    sold = h.run(h.session.place_order(OrderRequest("EURUSD", Side.SELL, 0.01),
                                       idempotency_key="x"))  # fmt: skip
    assert sold.retcode == 10009


def test_a_restored_backup_never_resends_an_order_the_broker_already_executed(
    tmp_path: Any,
) -> None:
    """Key k: the first send never executed (proven absent), a backup is taken, the retry
    executes with the same client id. Restored from the backup, the journal says "k never
    executed"; before the id goes out again the broker is asked, and it holds the order: that
    is k's outcome, and nothing is sent (found by the chaos run's restored journals)."""
    sim = SimTerminal(SimConfig(history_days=1), clock=VirtualClock(TUESDAY_10))
    request = OrderRequest("EURUSD", Side.BUY, 0.01)
    path, copy = tmp_path / "orders.db", tmp_path / "backup.db"

    async def place() -> Any:
        session, _, _ = make_session(sim, journal=SqliteJournal(path), owner="gw")
        await session.connect()
        try:
            return await session.place_order(request, idempotency_key="k")
        finally:
            await session.close()
            session.close_journal()

    sim.faults.ipc_error("order_send", ResultCode.E_FAIL)
    with pytest.raises(MT5TradeRetryable, match="proven absent"):
        asyncio.run(place())
    with sqlite3.connect(path) as source, sqlite3.connect(copy) as target:
        source.backup(target)
    executed = asyncio.run(place())  # the retry executes, with the same client id
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    copy.rename(path)  # the journal is restored from the backup
    again = asyncio.run(place())
    assert (again.order, again.comment) == (executed.order, "reconciled")
    ours = [
        d
        for d in sim.broker.all_deals()
        if d.magic == ClientOrderId(5001, executed.client_id).magic
    ]
    assert len(ours) == 1


def test_an_order_seen_only_through_a_position_raised_since_waits_for_its_own_deal(
    late: Any,
) -> None:
    """Found by the fleet chaos test (seed 3): a 0.01 BUY opens a netting position, its reply is
    lost; another 0.01 BUY raises the position to 0.02 before the late history shows the first
    one's deal. The position carries the first order's id but the account's volume and average
    price: the first order was reported executed with 0.02 lots. Now it stays unknown (never
    resent: it is there) until its own deal shows, then reports 0.01."""
    h: Harness = late(NETTING)
    buy = OrderRequest("EURUSD", Side.BUY, 0.01)
    h.terminal.faults.reply_lost("order_send")
    h.terminal.faults.ipc_error("positions_get", times=None, after=1)  # the one before the send
    with pytest.raises(MT5OrderOutcomeUnknown):
        h.run(h.session.place_order(buy, idempotency_key="first"))
    h.terminal.faults.clear()
    h.terminal.clock.advance(1)  # type: ignore[attr-defined]
    # another client of the account (the session is reconnecting after the failed reads)
    assert h.terminal.initialize(login=NETTING, password=PASSWORDS[NETTING])
    raised = h.terminal.order_send({"action": 1, "symbol": "EURUSD", "volume": 0.01, "type": 0,
                                    "type_filling": 1, "comment": "another client"})  # fmt: skip
    assert raised is not None, h.terminal.last_error()
    assert raised.retcode == 10009
    h.run(h.session.connection.wait_reconnected())
    (position,) = h.run(h.session.positions())
    assert position.volume == pytest.approx(0.02)
    assert position.time_update_msc != position.time_msc
    with pytest.raises(MT5OrderOutcomeUnknown):  # there, but not yet describable
        h.run(h.session.place_order(buy, idempotency_key="first"))
    assert K.RECONCILED_ABSENT not in _kinds(h, "first", NETTING)
    h.terminal.clock.advance(LATE_MS / 1000 + 1)  # type: ignore[attr-defined]
    found = h.run(h.session.place_order(buy, idempotency_key="first"))
    assert (found.comment, found.volume) == ("reconciled", pytest.approx(0.01))
    (position,) = h.run(h.session.positions())
    assert position.volume == pytest.approx(0.02)  # nothing was sent again


def test_an_order_seen_through_a_position_untouched_since_is_settled_at_once(late: Any) -> None:
    """The position the lost order opened is unchanged since (update time = open time): its
    volume and price are the order's, so the outcome needs no history."""
    h: Harness = late(HEDGING)
    h.terminal.faults.reply_lost("order_send")
    found = h.run(h.session.place_order(OrderRequest("EURUSD", Side.BUY, 0.03),
                                        idempotency_key="alone"))  # fmt: skip
    (position,) = h.run(h.session.positions())
    assert position.time_update_msc == position.time_msc
    assert (found.comment, found.volume, found.price) == (
        "reconciled", pytest.approx(0.03), pytest.approx(position.price_open),
    )  # fmt: skip
    assert found.order == position.identifier
