"""A position that opened and closed between two looks is no proof of absence (issue 19's
fleet chaos run, seed 3: one duplicate order).

A lost SELL opens a netting position; a BUY of ours closes it; the broker's history is late
and shows neither deal. The positions before the SELL and now are the same (none): the old
proof called the SELL "proven absent" and its key sold a second time. The proof now accounts
for every order of ours sent on the symbol since the lost one (its siblings): their deals must
show, or a later order's deal must show the history caught up past the lost send.

The simulator runs on a standing virtual clock (the history stays late until the test moves it);
the session on a manual clock (settle windows pass instantly).
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from mt5gate.constants import ResultCode
from mt5gate.errors import MT5OrderOutcomeUnknown, MT5TradeRetryable
from mt5gate.models import OrderRequest, Side
from mt5gate.orders import ClientOrderId, EventKind, SqliteJournal
from mt5gate.session import ReconcilePolicy
from mt5gate.sim import BrokerOptions, SimConfig, VirtualClock
from mt5gate.sim.terminal import SimTerminal
from tests.session.conftest import LATE_MS, PASSWORDS, TUESDAY_10, Harness, make_session

K = EventKind
NETTING, HEDGING = 5002, 5001
#: history_lag_s far beyond the test: only evidence (and a watermark) settles an open sibling
POLICY = ReconcilePolicy(sweep_interval_s=None, settle_s=3.0, budget_s=20.0, replay_budget_s=5.0,
                         history_lag_s=1e6)  # fmt: skip
SELL = OrderRequest("EURUSD", Side.SELL, 0.01)
BUY = OrderRequest("EURUSD", Side.BUY, 0.01)


@pytest.fixture
def late(late_history: Any) -> Any:
    """``build(login, policy=POLICY)`` on an account whose history is 10 s late."""
    return lambda login, policy=POLICY: late_history(login, policy)


def _client(h: Harness, key: str, login: int = NETTING) -> ClientOrderId:
    assert h.session.journal is not None
    client = h.session.journal.by_key(login, key)
    assert client is not None
    return client


def _kinds(h: Harness, key: str, login: int = NETTING) -> list[EventKind]:
    assert h.session.journal is not None
    return [e.kind for e in h.session.journal.history(login, _client(h, key, login))]


def _deals_of(h: Harness, key: str, login: int = NETTING) -> int:
    magic = _client(h, key, login).magic
    return sum(1 for d in h.terminal.broker.all_deals() if d.magic == magic)


def _catch_up(h: Harness) -> None:
    h.terminal.clock.advance(LATE_MS / 1000 + 1)  # type: ignore[attr-defined]


def _lose_unseen(h: Harness, request: OrderRequest, key: str, *, executes: bool = True) -> None:
    """The order's reply is lost (it executes, or never reaches the server), and its own
    reconciliation cannot read the history: it ends unknown without having seen anything."""
    if executes:
        h.terminal.faults.reply_lost("order_send")
    else:
        h.terminal.faults.ipc_error("order_send", ResultCode.E_FAIL)
    h.terminal.faults.ipc_error("history_deals_get", ResultCode.E_FAIL, times=None)
    with pytest.raises(MT5OrderOutcomeUnknown):
        h.run(h.session.place_order(request, idempotency_key=key))
    h.terminal.faults.clear()
    h.run(h.session.connection.wait_reconnected())


def test_a_lost_order_whose_position_a_later_order_closed_is_never_proven_absent(
    late: Any,
) -> None:
    h: Harness = late(NETTING)
    _lose_unseen(h, SELL, "lost")  # the SELL opened a position
    h.run(h.session.place_order(BUY, idempotency_key="closer"))  # and this closes it
    assert h.run(h.session.positions()) == []  # as flat as before the SELL
    with pytest.raises(MT5OrderOutcomeUnknown):  # the closer's deal is not in the history yet
        h.run(h.session.place_order(SELL, idempotency_key="lost", resubmit=True))
    assert K.RECONCILED_ABSENT not in _kinds(h, "lost")
    assert _deals_of(h, "lost") == 1
    _catch_up(h)
    found = h.run(h.session.place_order(SELL, idempotency_key="lost"))
    assert found.comment == "reconciled"
    assert _deals_of(h, "lost") == 1  # sold once


def test_two_concurrent_orders_whose_deals_net_out_are_never_sent_twice(late: Any) -> None:
    """The fleet's case in one session: a BUY and a SELL go at once; the second send's reply
    is lost, and the first order closes the position it opened."""
    h: Harness = late(NETTING)
    h.terminal.faults.reply_lost("order_send", after=1, times=1)

    async def both() -> list[Any]:
        return await asyncio.gather(
            h.session.place_order(BUY, idempotency_key="a"),
            h.session.place_order(SELL, idempotency_key="b"),
            return_exceptions=True,
        )

    outcomes = h.run(both())
    lost = "a" if isinstance(outcomes[0], BaseException) else "b"
    assert isinstance(outcomes["ab".index(lost)], MT5OrderOutcomeUnknown), outcomes
    assert h.run(h.session.positions()) == []
    request = BUY if lost == "a" else SELL
    with pytest.raises(MT5OrderOutcomeUnknown):
        h.run(h.session.place_order(request, idempotency_key=lost, resubmit=True))
    _catch_up(h)
    assert h.run(h.session.place_order(request, idempotency_key=lost)).comment == "reconciled"
    assert (_deals_of(h, "a"), _deals_of(h, "b")) == (1, 1)


def test_two_lost_orders_that_net_out_wait_for_each_other(late: Any) -> None:
    """Both replies lost, both executed, their deals net out and the history shows neither:
    each is the other's unaccounted sibling, so neither is ever proven absent."""
    h: Harness = late(NETTING)
    _lose_unseen(h, SELL, "s")
    _lose_unseen(h, BUY, "b")
    assert h.run(h.session.positions()) == []
    for request, key in ((SELL, "s"), (BUY, "b")):
        with pytest.raises(MT5OrderOutcomeUnknown):
            h.run(h.session.place_order(request, idempotency_key=key, resubmit=True))
    _catch_up(h)
    for request, key in ((SELL, "s"), (BUY, "b")):
        assert h.run(h.session.place_order(request, idempotency_key=key)).comment == "reconciled"
        assert _deals_of(h, key) == 1


def test_a_later_order_whose_deal_shows_proves_two_lost_orders_absent(late: Any) -> None:
    """Two lost orders that never reached the server wait for each other; an order sent after
    both sends ended, once its deal shows, proves the history caught up past them: both are
    absent, and their keys send them (once)."""
    h: Harness = late(NETTING)
    _lose_unseen(h, SELL, "x", executes=False)
    h.terminal.faults.ipc_error("order_send", ResultCode.E_FAIL)
    with pytest.raises(MT5OrderOutcomeUnknown):  # x's outcome is open: it could have closed y
        h.run(h.session.place_order(BUY, idempotency_key="y"))
    with pytest.raises(MT5OrderOutcomeUnknown):  # and y's could have closed x
        h.run(h.session.place_order(SELL, idempotency_key="x", resubmit=True))
    h.run(h.session.place_order(OrderRequest("EURUSD", Side.SELL, 0.02), idempotency_key="mark"))
    with pytest.raises(MT5OrderOutcomeUnknown):  # the watermark's deal is not visible yet
        h.run(h.session.place_order(BUY, idempotency_key="y", resubmit=True))
    for request, key in ((SELL, "x"), (BUY, "y")):
        _catch_up(h)  # the watermark's deal shows; then x's resend's, which y must see first
        sent = h.run(h.session.place_order(request, idempotency_key=key, resubmit=True))
        assert sent.retcode == 10009
        assert _kinds(h, key)[-4:] == [K.RECONCILED_ABSENT, K.RESUBMITTED, K.SENT,
                                       K.ACKNOWLEDGED]  # fmt: skip
        assert _deals_of(h, key) == 1


def test_an_order_that_moved_nothing_and_has_no_siblings_is_still_absent_at_once(
    late: Any,
) -> None:
    """The proof's liveness is kept where nothing else was sent: absence needs no history."""
    h: Harness = late(NETTING)
    h.run(h.session.place_order(OrderRequest("EURUSD", Side.BUY, 0.05), idempotency_key="old"))
    h.terminal.faults.ipc_error("order_send", ResultCode.E_FAIL)
    with pytest.raises(MT5TradeRetryable, match="proven absent"):
        h.run(h.session.place_order(SELL, idempotency_key="x"))


def test_a_hedging_position_closed_by_a_later_order_is_never_proven_absent(late: Any) -> None:
    """Hedging: the lost BUY opened its own position, which the caller found in the list and
    closed before the history shows either deal."""
    h: Harness = late(HEDGING)
    _lose_unseen(h, BUY, "lost")
    (position,) = h.run(h.session.positions())
    h.run(h.session.close_position(position.ticket, idempotency_key="close"))
    assert h.run(h.session.positions()) == []
    with pytest.raises(MT5OrderOutcomeUnknown):
        h.run(h.session.place_order(BUY, idempotency_key="lost", resubmit=True))
    _catch_up(h)
    assert h.run(h.session.place_order(BUY, idempotency_key="lost")).comment == "reconciled"
    assert _deals_of(h, "lost", HEDGING) == 1


def test_recovery_stops_early_when_its_orders_can_only_wait_for_each_other(tmp_path: Any) -> None:
    """A gateway died with two EURUSD orders in flight (neither reached the server). Each is
    the other's open sibling: recovery cannot settle them, and stops looking at once instead of
    holding EURUSD for its whole budget. The first new order's deal is their watermark: the
    next sweep proves both absent."""
    path = tmp_path / "orders.db"
    with SqliteJournal(path) as journal:
        left = []
        for key, side in (("first", 1), ("second", 0)):
            client = journal.record_intent(NETTING, {"op": "place", "symbol": "EURUSD"}, key)
            request = {"action": 1, "symbol": "EURUSD", "volume": 0.01, "type": side,
                       "magic": client.magic}  # fmt: skip
            result = {"server_ms": TUESDAY_10, "before": {"positions": []}}
            journal.record(K.SENT, client, NETTING, request=request, result=result)
            left.append(client)
    sim = SimTerminal(SimConfig(history_days=1), clock=VirtualClock(TUESDAY_10))

    async def restart() -> tuple[list[list[EventKind]], float, list[list[EventKind]]]:
        session, _, clock = make_session(sim, login=NETTING, password=PASSWORDS[NETTING],
                                         journal=SqliteJournal(path), reconcile=POLICY)  # fmt: skip
        journal = session.journal
        assert journal is not None
        started = clock.monotonic()
        async with session:
            held = [[e.kind for e in journal.history(NETTING, c)] for c in left]
            spent = clock.monotonic() - started
            await session.place_order(BUY, idempotency_key="new")
            await session.sweep_orders()
            settled = [[e.kind for e in journal.history(NETTING, c)] for c in left]
        session.close_journal()
        return held, spent, settled

    held, spent, settled = asyncio.run(restart())
    assert held == [[K.INTENT, K.SENT]] * 2  # unknown: either could have closed the other
    assert spent < POLICY.budget_s / 2  # recovery did not wait out its budget
    assert [kinds[-1] for kinds in settled] == [K.RECONCILED_ABSENT] * 2
    trades = [d for d in sim.broker.all_deals() if d.type in (0, 1)]  # not the deposit
    assert len(trades) == 1  # only the new order traded


def test_an_order_that_executed_between_the_read_and_the_send_is_a_sibling(tmp_path: Any) -> None:
    """X (a BUY) executed after the lost SELL W read the account's state and before W was
    sent: X's answer is journaled before W's SENT. W then closed X's position, and the history
    shows neither deal: the account is as flat as W's recorded state. X is W's sibling
    because its events come after the journal seq W knew before its read, not only after W's
    SENT; until X's deal shows, W is not proven absent (and never sold again)."""
    path = tmp_path / "orders.db"
    config = SimConfig(history_days=1, broker=BrokerOptions(history_delay_ms=LATE_MS))
    sim = SimTerminal(config, clock=VirtualClock(TUESDAY_10))
    assert sim.initialize(login=NETTING, password=PASSWORDS[NETTING])
    with SqliteJournal(path) as journal:
        earlier = journal.record_intent(NETTING, {"op": "place", "symbol": "GBPUSD"}, "earlier")
        known = journal.record(K.RISK_REJECTED, earlier, NETTING, note="a limit").seq
        x = _sent_by_hand(journal, "x", Side.BUY, before={"positions": []})
        bought = sim.order_send({"action": 1, "symbol": "EURUSD", "volume": 0.01, "type": 0,
                                 "type_filling": 1, "magic": x.magic})  # fmt: skip
        assert bought is not None
        assert bought.retcode == 10009
        journal.record(K.ACKNOWLEDGED, x, NETTING, result=bought, retcode=10009)
        w = _sent_by_hand(journal, "w", Side.SELL,
                          before={"positions": [], "after_seq": known})  # fmt: skip
        sold = sim.order_send({"action": 1, "symbol": "EURUSD", "volume": 0.01, "type": 1,
                               "type_filling": 1, "magic": w.magic})  # fmt: skip
        assert sold is not None
        assert sold.retcode == 10009
        journal.record(K.UNKNOWN, w, NETTING, note="the reply was lost")
    assert sim.positions_get() == ()

    async def restart() -> list[EventKind]:
        session, _, _ = make_session(sim, login=NETTING, password=PASSWORDS[NETTING],
                                     journal=SqliteJournal(path), reconcile=POLICY)  # fmt: skip
        async with session:  # recovery reconciles W, then a sweep does again
            await session.sweep_orders()
            assert session.journal is not None
            kinds = [e.kind for e in session.journal.history(NETTING, w)]
        session.close_journal()
        return kinds

    assert asyncio.run(restart()) == [K.INTENT, K.SENT, K.UNKNOWN]  # never proven absent
    sim.clock.advance(LATE_MS / 1000 + 1)  # type: ignore[attr-defined]
    assert asyncio.run(restart())[-1] is K.RECONCILED_PRESENT  # once the history shows it


def _sent_by_hand(
    journal: SqliteJournal, key: str, side: Side, *, before: dict[str, Any]
) -> ClientOrderId:
    client = journal.record_intent(NETTING, {"op": "place", "symbol": "EURUSD"}, key)
    request = {"action": 1, "symbol": "EURUSD", "volume": 0.01, "type": int(side is Side.SELL),
               "magic": client.magic}  # fmt: skip
    journal.record(K.SENT, client, NETTING, request=request,
                   result={"server_ms": TUESDAY_10, "before": before})  # fmt: skip
    return client


def test_two_lost_orders_are_judged_once_the_historys_lag_has_passed(late: Any) -> None:
    """No order comes after two lost orders that wait for each other (a quiet symbol): once
    both sends ended ``history_lag_s`` ago, the history shows their deals, had they any.
    Neither reached the server: both are absent, and their keys send them, once each."""
    policy = ReconcilePolicy(sweep_interval_s=None, settle_s=3.0, budget_s=20.0,
                             replay_budget_s=5.0, history_lag_s=30.0)  # fmt: skip
    h: Harness = late(NETTING, policy)
    _lose_unseen(h, SELL, "x", executes=False)
    h.terminal.faults.ipc_error("order_send", ResultCode.E_FAIL)
    with pytest.raises(MT5OrderOutcomeUnknown):
        h.run(h.session.place_order(BUY, idempotency_key="y"))
    h.clock.now += 31.0  # the lag passes; nothing else was sent
    for request, key in ((SELL, "x"), (BUY, "y")):
        _catch_up(h)  # y then waits for x's resend's deal, as for any sibling's
        sent = h.run(h.session.place_order(request, idempotency_key=key, resubmit=True))
        assert sent.retcode == 10009
        assert K.RECONCILED_ABSENT in _kinds(h, key)
        assert _deals_of(h, key) == 1
