"""The exactly-once order pipeline over the simulator: one test per outcome class, idempotency
keys, risk limits, reconciliation (present, absent, unknown, late replies), recovery after a
crash and the sweep.

Every count is read from the simulated broker's ledger (positions, history orders, deals) and
from the journal; nothing in mt5gate is mocked.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from mt5gate.circuit_breaker import BreakerPolicy
from mt5gate.constants import DealEntry, ResultCode, TradeAction, TradeRetcode
from mt5gate.errors import (
    MT5CircuitBreakerOpen,
    MT5ConnectionError,
    MT5IdempotencyError,
    MT5OrderBlockedError,
    MT5OrderOutcomeUnknown,
    MT5RiskLimitError,
    MT5StateError,
    MT5TradeRejected,
    MT5TradeRetryable,
    MT5TradingDisabledError,
    MT5TradingHalted,
    MT5ValidationError,
)
from mt5gate.models import OrderKind, OrderRequest, Side
from mt5gate.orders import ClientOrderId, EventKind, RiskGate, RiskLimits, SqliteJournal
from mt5gate.session import (
    MT5SessionManager,
    RealAsyncClock,
    ReconcilePolicy,
    SessionObserver,
    Timeouts,
)
from mt5gate.sim import SimConfig, VirtualClock
from mt5gate.sim.terminal import SimTerminal
from tests.session.conftest import (
    PASSWORD,
    TUESDAY_10,
    Harness,
    close_all,
    connected,
    make_session,
)

K = EventKind
BUY, SELL = Side.BUY, Side.SELL
Build = Callable[..., Harness]
#: absence is proven on the simulator's standing clock (tests that need the broker's clock to
#: move use the default policy and step the simulator)
NO_ADVANCE = ReconcilePolicy(sweep_interval_s=None)


@pytest.fixture
def build() -> Iterator[Build]:
    """Connected harnesses with options, closed afterwards."""
    made: list[Harness] = []

    def make(*, terminal: SimTerminal | None = None, **options: Any) -> Harness:
        loop = asyncio.new_event_loop()
        session, sim, clock = make_session(terminal, **options)
        return connected(made, session, sim, clock, loop)

    yield make
    close_all(made)


@pytest.fixture
def h(build: Build) -> Harness:
    return build()


def market(
    symbol: str = "EURUSD", side: Side = BUY, volume: float = 0.1, **kw: Any
) -> OrderRequest:
    return OrderRequest(symbol, side, volume, **kw)


def kinds(h: Harness, client_id: int) -> list[EventKind]:
    return [e.kind for e in h.session.journal.history(5001, client_id)]


def only(h: Harness, login: int = 5001) -> int:
    """The client id of the account's one journaled order (ids come from the clock); 0 while
    there is none yet."""
    known = h.session.journal.known_sequences(login)
    assert len(known) <= 1, known
    return next(iter(known), 0)


def opened(h: Harness) -> int:
    """Opening deals in the simulated ledger: how often an order really executed."""
    start, end = TUESDAY_10 // 1000 - 86400, TUESDAY_10 // 1000 + 86400
    deals = h.run(h.session.history_deals(start, end))
    return sum(1 for d in deals if d.entry == DealEntry.IN and d.symbol)


def sent_orders(h: Harness) -> int:
    """Orders the simulated server created (open or in history)."""
    start, end = TUESDAY_10 // 1000 - 86400, TUESDAY_10 // 1000 + 86400
    return len(h.run(h.session.history_orders(start, end))) + len(h.run(h.session.orders()))


# ----------------------------------------------------------------- executed


def test_an_executed_order_is_journaled_intent_sent_acknowledged(h: Harness) -> None:
    result = h.run(h.session.place_order(market(comment="strategy-a"), idempotency_key="k1"))
    assert result.retcode == TradeRetcode.DONE
    assert kinds(h, result.client_id) == [K.INTENT, K.SENT, K.ACKNOWLEDGED]
    events = h.session.journal.history(5001, result.client_id)
    assert events[0].idempotency_key == "k1"
    assert events[0].request["op"] == "place"  # what the caller said
    sent = events[1].request  # what went to the terminal, with the id
    client = ClientOrderId(5001, result.client_id)
    assert (sent["magic"], sent["comment"]) == (client.magic, f"{client.comment_tag} strategy-a")
    assert events[2].order_ticket == result.order
    assert h.session.journal.by_ticket(result.order) == [client]


def test_the_same_key_returns_the_first_outcome_and_never_sends_again(h: Harness) -> None:
    first = h.run(h.session.place_order(market(), idempotency_key="same"))
    again = h.run(h.session.place_order(market(), idempotency_key="same"))
    assert again == first
    assert opened(h) == 1
    assert kinds(h, first.client_id) == [K.INTENT, K.SENT, K.ACKNOWLEDGED]


def test_the_same_key_with_another_request_is_refused(h: Harness) -> None:
    first = h.run(h.session.place_order(market(), idempotency_key="same"))
    with pytest.raises(MT5IdempotencyError) as caught:
        h.run(h.session.place_order(market(volume=0.2), idempotency_key="same"))
    assert (caught.value.field, caught.value.client_id) == ("idempotency_key", first.client_id)
    assert opened(h) == 1


def test_concurrent_calls_with_one_key_place_one_order(h: Harness) -> None:
    async def both() -> list[Any]:
        calls = [h.session.place_order(market(), idempotency_key="race") for _ in range(5)]
        return await asyncio.gather(*calls)

    results = h.run(both())
    assert len({r.client_id for r in results}) == 1
    assert opened(h) == 1


def test_orders_without_keys_get_fresh_ids(h: Harness) -> None:
    ids = [h.run(h.session.place_order(market())).client_id for _ in range(3)]
    assert ids == sorted(set(ids))  # fresh and increasing
    assert opened(h) == 3


@pytest.mark.parametrize("key", ["", "x" * 129, 17])
def test_a_bad_key_is_refused_before_anything_is_journaled(h: Harness, key: Any) -> None:
    with pytest.raises(MT5ValidationError) as caught:
        h.run(h.session.place_order(market(), idempotency_key=key))
    assert caught.value.field == "idempotency_key"
    assert h.session.journal.known_sequences(5001) == set()


def test_an_invalid_request_is_never_journaled(h: Harness) -> None:
    with pytest.raises(MT5ValidationError):
        h.run(h.session.place_order(market(volume=0), idempotency_key="bad"))
    assert h.session.journal.by_key(5001, "bad") is None


# ----------------------------------------------------------------- rejected, retryable, gate


def test_a_business_rejection_is_final_for_its_key(h: Harness) -> None:
    with pytest.raises(MT5TradeRejected) as caught:
        h.run(h.session.place_order(market(volume=90.0), idempotency_key="big"))  # no money
    first = caught.value
    assert first.retcode == TradeRetcode.NO_MONEY
    assert first.client_id is not None
    assert kinds(h, first.client_id) == [K.INTENT, K.SENT, K.REJECTED]
    with pytest.raises(MT5TradeRejected) as again:
        h.run(h.session.place_order(market(volume=90.0), idempotency_key="big"))
    assert (again.value.retcode, again.value.client_id) == (first.retcode, first.client_id)
    assert kinds(h, first.client_id) == [K.INTENT, K.SENT, K.REJECTED]  # nothing sent again
    assert sent_orders(h) == 0


def test_a_requote_rearms_the_key_with_the_same_client_id(h: Harness) -> None:
    ask = h.run(h.session.get_price("AUDUSD")).ask
    far = market("AUDUSD", price=ask + 0.01, deviation=5)
    with pytest.raises(MT5TradeRetryable) as caught:
        h.run(h.session.place_order(far, idempotency_key="rq"))
    client_id = caught.value.client_id
    assert caught.value.retcode == TradeRetcode.REQUOTE
    with pytest.raises(MT5TradeRetryable):  # still requoted, sent again under the same id
        h.run(h.session.place_order(far, idempotency_key="rq"))
    assert kinds(h, client_id or 0) == [
        K.INTENT, K.SENT, K.REJECTED, K.RESUBMITTED, K.SENT, K.REJECTED,
    ]  # fmt: skip
    assert opened(h) == 0


def test_a_gate_is_not_final_once_trading_is_switched_back_on(h: Harness) -> None:
    h.terminal.set_autotrading(False)
    with pytest.raises(MT5TradingDisabledError) as caught:
        h.run(h.session.place_order(market(), idempotency_key="gate"))
    assert caught.value.retcode == TradeRetcode.CLIENT_DISABLES_AT
    h.terminal.set_autotrading(True)
    result = h.run(h.session.place_order(market(), idempotency_key="gate"))
    assert result.client_id == only(h)
    assert kinds(h, only(h))[-3:] == [K.RESUBMITTED, K.SENT, K.ACKNOWLEDGED]
    assert opened(h) == 1


def test_an_open_breaker_refuses_before_anything_is_journaled(h: Harness) -> None:
    h.session.breaker.force_open("test")
    with pytest.raises(MT5CircuitBreakerOpen):
        h.run(h.session.place_order(market(), idempotency_key="br"))
    assert h.session.journal.by_key(5001, "br") is None
    h.session.breaker.release()
    assert h.run(h.session.place_order(market(), idempotency_key="br")).client_id == only(h)


def test_an_order_that_never_left_the_process_can_be_sent_later(h: Harness) -> None:
    h.terminal.faults.ipc_error("order_send", ResultCode.E_INTERNAL_FAIL_CONNECT)  # -10004
    with pytest.raises(MT5ConnectionError):
        h.run(h.session.place_order(market(), idempotency_key="gone"))
    last = h.session.journal.history(5001, only(h))[-1]
    assert (last.kind, last.note.startswith("not sent")) == (K.REJECTED, True)
    h.run(h.session.connection.wait_reconnected())
    assert h.run(h.session.place_order(market(), idempotency_key="gone")).client_id == only(h)
    assert opened(h) == 1


# ----------------------------------------------------------------- risk limits


def test_a_risk_breach_is_journaled_and_nothing_is_sent(build: Build) -> None:
    h = build(risk=RiskLimits(max_volume_per_order=0.5))
    with pytest.raises(MT5RiskLimitError) as caught:
        h.run(h.session.place_order(market(volume=1.0), idempotency_key="r"))
    assert caught.value.limit == "max_volume_per_order"
    assert kinds(h, only(h)) == [K.INTENT, K.RISK_REJECTED]
    assert sent_orders(h) == 0


def test_positions_and_exposure_limits_read_the_book(build: Build) -> None:
    h = build(risk=RiskLimits(max_positions_per_symbol=2, max_exposure_per_symbol=0.25))
    h.run(h.session.place_order(market(volume=0.1)))
    h.run(h.session.place_order(market(volume=0.1)))
    with pytest.raises(MT5RiskLimitError) as caught:
        h.run(h.session.place_order(market(volume=0.1)))
    assert caught.value.limit == "max_positions_per_symbol"
    assert h.run(h.session.place_order(market("GBPUSD", volume=0.1))).retcode == 10009
    assert opened(h) == 3


def test_the_halt_switch_stops_new_orders_but_not_closing(build: Build) -> None:
    h = build(risk=RiskGate(RiskLimits()))
    opened_result = h.run(h.session.place_order(market()))
    h.session.halt_trading("desk says stop")
    with pytest.raises(MT5TradingHalted):
        h.run(h.session.place_order(market(), idempotency_key="after-halt"))
    closed = h.run(h.session.close_position(opened_result.order))
    assert closed.retcode == TradeRetcode.DONE
    assert h.run(h.session.positions()) == []
    h.session.resume_trading()
    assert h.run(h.session.place_order(market(), idempotency_key="after-halt")).retcode == 10009


def test_the_rate_limit_counts_sent_orders(build: Build) -> None:
    h = build(risk=RiskLimits(max_orders_per_minute=2))
    for _ in range(2):
        h.run(h.session.place_order(market()))
    with pytest.raises(MT5RiskLimitError) as caught:
        h.run(h.session.place_order(market()))
    assert caught.value.limit == "max_orders_per_minute"


# ----------------------------------------------------------------- unknown outcomes


def test_unknown_then_proven_absent_raises_retryable_and_the_key_sends_it_later(
    build: Build,
) -> None:
    h = build(reconcile=NO_ADVANCE)
    h.terminal.faults.ipc_error("order_send", ResultCode.E_FAIL)  # never reached the server
    with pytest.raises(MT5TradeRetryable) as caught:
        h.run(h.session.place_order(market(), idempotency_key="abs"))
    assert caught.value.client_id == only(h)
    assert kinds(h, only(h)) == [K.INTENT, K.SENT, K.UNKNOWN, K.RECONCILED_ABSENT]
    assert opened(h) == 0
    result = h.run(h.session.place_order(market(), idempotency_key="abs"))
    assert result.client_id == only(h)
    assert opened(h) == 1


def test_resubmit_sends_a_proven_absent_order_once_with_the_same_id(build: Build) -> None:
    h = build(reconcile=NO_ADVANCE)
    h.terminal.faults.ipc_error("order_send", ResultCode.E_FAIL)
    result = h.run(h.session.place_order(market(), resubmit=True))
    assert kinds(h, result.client_id) == [
        K.INTENT, K.SENT, K.UNKNOWN, K.RECONCILED_ABSENT, K.RESUBMITTED, K.SENT, K.ACKNOWLEDGED,
    ]  # fmt: skip
    (position,) = h.run(h.session.positions())
    assert position.magic == ClientOrderId(5001, result.client_id).magic
    assert opened(h) == 1


def test_resubmission_happens_at_most_once(build: Build) -> None:
    h = build(reconcile=NO_ADVANCE)
    h.terminal.faults.ipc_error("order_send", ResultCode.E_FAIL, times=2)
    with pytest.raises(MT5TradeRetryable):
        h.run(h.session.place_order(market(), resubmit=True))
    assert kinds(h, only(h)).count(K.RESUBMITTED) == 1
    assert opened(h) == 0


def test_absence_can_require_the_broker_clock_to_move_past_the_send(build: Build) -> None:
    policy = ReconcilePolicy(sweep_interval_s=None, budget_s=5.0, require_clock_advance=True)
    h = build(reconcile=policy)
    h.terminal.faults.ipc_error("order_send", ResultCode.E_FAIL)
    with pytest.raises(MT5OrderOutcomeUnknown) as caught:  # the simulator's clock stands still
        h.run(h.session.place_order(market(), idempotency_key="still"))
    assert caught.value.code == ResultCode.E_FAIL
    assert h.run(h.session.unresolved_orders()) == [only(h)]
    h.terminal.clock.advance(1.0)  # type: ignore[attr-defined]
    result = h.run(h.session.place_order(market(), idempotency_key="still"))
    assert kinds(h, only(h))[3:] == [K.RECONCILED_ABSENT, K.RESUBMITTED, K.SENT, K.ACKNOWLEDGED]
    assert result.client_id == only(h)
    assert opened(h) == 1
    assert h.run(h.session.unresolved_orders()) == []


def test_a_lost_close_reply_is_reconciled_and_the_position_closed_once(h: Harness) -> None:
    ticket = h.run(h.session.place_order(market())).order
    h.terminal.faults.reply_lost("order_send")
    closed = h.run(h.session.close_position(ticket, idempotency_key="close-1"))
    assert closed.comment == "reconciled"
    assert h.run(h.session.positions()) == []
    assert kinds(h, closed.client_id)[-1] is K.RECONCILED_PRESENT


def test_a_late_reply_is_recorded_and_wins(build: Build) -> None:
    h = build(timeouts=Timeouts(call_s=2.0, connect_s=5.0, order_s=0.05, probe_s=0.5),
              clock=RealAsyncClock(), reconcile=ReconcilePolicy(sweep_interval_s=None))  # fmt: skip
    h.terminal.faults.latency("order_send", 0.3, times=1)  # executes, answers after 0.3 s

    async def place() -> Any:
        return await h.session.place_order(market())

    result = h.run(place())
    events = h.session.journal.history(5001, result.client_id)
    assert [e.kind for e in events][:3] == [K.INTENT, K.SENT, K.UNKNOWN]
    assert K.RECONCILED_PRESENT in [e.kind for e in events]
    assert opened(h) == 1

    async def late_recorded() -> None:
        for _ in range(200):
            if K.LATE_RESULT in kinds(h, result.client_id):
                return
            await asyncio.sleep(0.01)

    h.run(late_recorded())
    late = next(e for e in h.session.journal.history(5001, only(h)) if e.kind is K.LATE_RESULT)
    assert (late.retcode, late.order_ticket) == (TradeRetcode.DONE, result.order)


def test_cancelling_place_order_mid_send_journals_unknown(build: Build) -> None:
    h = build(timeouts=Timeouts(call_s=2.0, connect_s=5.0, order_s=5.0, probe_s=0.5))
    fault = h.terminal.faults.latency("order_send", 0.3, times=1)

    async def cancel_mid_send() -> None:
        task = asyncio.ensure_future(h.session.place_order(market(), idempotency_key="c"))
        for _ in range(1000):
            if h.terminal.faults.fired(fault):  # order_send is running on the worker
                break
            await asyncio.sleep(0.001)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    h.run(cancel_mid_send())
    assert kinds(h, only(h)) == [K.INTENT, K.SENT, K.UNKNOWN]
    h.run(asyncio.sleep(0.4))
    result = h.run(h.session.place_order(market(), idempotency_key="c"))  # reconciles
    assert kinds(h, only(h))[-1] is K.RECONCILED_PRESENT
    assert result.client_id == only(h)
    assert opened(h) == 1


def test_cancelling_before_the_send_journals_that_it_was_not_sent(h: Harness) -> None:
    async def cancel_while_journaling() -> None:
        task = asyncio.ensure_future(h.session.place_order(market(), idempotency_key="early"))
        # a bound in time, not in loop turns: the journal thread needs the GIL that this loop
        # hands over only at the interpreter's switch interval
        deadline = time.monotonic() + 10
        while h.session.journal.by_key(5001, "early") is None:
            assert time.monotonic() < deadline, "INTENT + SENT were never journaled"
            await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    h.run(cancel_while_journaling())
    found = kinds(h, only(h))
    assert found in (
        [K.INTENT, K.SENT, K.RECONCILED_ABSENT],  # cancelled while INTENT + SENT were written
        [K.INTENT, K.SENT, K.UNKNOWN],  # cancelled once the send had begun
    )
    assert opened(h) <= 1


# ----------------------------------------------------------------- modifications


def test_modifications_and_cancels_are_journaled(h: Harness) -> None:
    position = h.run(h.session.place_order(market())).order
    bid = h.run(h.session.get_price("EURUSD")).bid
    modified = h.run(h.session.modify_position(position, sl=round(bid - 0.01, 5)))
    assert kinds(h, modified.client_id) == [K.INTENT, K.SENT, K.ACKNOWLEDGED]
    limit = market(kind=OrderKind.LIMIT, price=round(bid - 0.02, 5))
    pending = h.run(h.session.place_order(limit)).order
    moved = h.run(h.session.modify_order(pending, price=round(bid - 0.03, 5)))
    cancelled = h.run(h.session.cancel_order(pending, idempotency_key="cx"))
    assert kinds(h, moved.client_id)[-1] is K.ACKNOWLEDGED
    again = h.run(h.session.cancel_order(pending, idempotency_key="cx"))
    assert again == cancelled  # the first outcome, not a second REMOVE (which would fail)
    sent = h.session.journal.history(5001, modified.client_id)[1].request
    assert sent["action"] == TradeAction.SLTP
    assert "magic" not in sent  # only orders carry the id; a modification creates none


def test_a_lost_modification_reply_is_reconciled_by_state(h: Harness) -> None:
    position = h.run(h.session.place_order(market())).order
    bid = h.run(h.session.get_price("EURUSD")).bid
    h.terminal.faults.reply_lost("order_send")
    result = h.run(h.session.modify_position(position, tp=round(bid + 0.02, 5)))
    assert kinds(h, result.client_id)[-1] is K.RECONCILED_PRESENT


def test_a_lost_cancel_reply_is_reconciled_by_state(h: Harness) -> None:
    bid = h.run(h.session.get_price("EURUSD")).bid
    pending = h.run(h.session.place_order(market(kind=OrderKind.LIMIT, price=round(bid - 0.02, 5))))
    h.terminal.faults.reply_lost("order_send")
    result = h.run(h.session.cancel_order(pending.order))
    assert kinds(h, result.client_id)[-1] is K.RECONCILED_PRESENT
    assert h.run(h.session.orders()) == []


# ----------------------------------------------------------------- recovery and the sweep


def _journaled_session(
    journal: Path, sim: SimTerminal, **options: Any
) -> tuple[MT5SessionManager, Any]:
    options.setdefault("reconcile", NO_ADVANCE)
    session, _, clock = make_session(sim, journal=SqliteJournal(journal), **options)
    return session, clock


def _sim() -> SimTerminal:
    return SimTerminal(SimConfig(history_days=1), clock=VirtualClock(TUESDAY_10))


def _crashed_before_the_reply(journal_path: Path, sim: SimTerminal, executed: bool) -> int:
    """What a gateway leaves behind when it dies between INTENT/SENT and the reply: the journal
    on disk, and (if ``executed``) the order at the broker."""
    with SqliteJournal(journal_path) as journal:
        client = journal.record_intent(5001, {"op": "place", "n": 1}, "crash-key")
        request = {
            "action": int(TradeAction.DEAL), "symbol": "EURUSD", "volume": 0.1, "type": 0,
            "type_filling": 1, "magic": client.magic, "comment": client.comment_tag,
        }  # fmt: skip
        before = {"positions": []}  # what the pipeline records: no EURUSD position yet
        journal.record(K.SENT, client, 5001, request=request, result={"before": before})
    if executed:
        sim.initialize(login=5001, password=PASSWORD, server="MetaQuotes-Demo")
        assert sim.order_send(request).retcode == TradeRetcode.DONE
    return client.sequence


@pytest.mark.parametrize("executed", [True, False])
def test_recovery_reconciles_unfinished_orders_before_accepting_new_ones(
    tmp_path: Path, executed: bool
) -> None:
    sim, path = _sim(), tmp_path / "orders.db"
    sequence = _crashed_before_the_reply(path, sim, executed)

    async def restart() -> tuple[list[EventKind], int]:
        session, _ = _journaled_session(path, sim)
        async with session:
            assert await session.unresolved_orders() == []
            kinds = [e.kind for e in session.journal.history(5001, sequence)]
            held = len(await session.positions())
        session.journal.close()
        return kinds, held

    loop = asyncio.new_event_loop()
    try:
        found, held = loop.run_until_complete(restart())
    finally:
        loop.close()
    expected = K.RECONCILED_PRESENT if executed else K.RECONCILED_ABSENT
    assert found == [K.INTENT, K.SENT, expected]
    assert held == (1 if executed else 0)


def test_recovery_settles_an_order_that_never_left_without_looking(tmp_path: Path) -> None:
    """INTENT without SENT: SENT is on disk before every order_send, so it was never sent."""
    path = tmp_path / "orders.db"
    with SqliteJournal(path) as journal:
        client = journal.record_intent(5001, {"op": "place"}, "early-crash")

    async def restart() -> list[EventKind]:
        session, _ = _journaled_session(
            path, _sim(), reconcile=ReconcilePolicy(sweep_interval_s=None)
        )
        async with session:
            kinds = [e.kind for e in session.journal.history(5001, client)]
        session.journal.close()
        return kinds

    assert asyncio.run(restart()) == [K.INTENT, K.RECONCILED_ABSENT]


def test_the_sweep_reports_unexpected_and_duplicate_orders_once(h: Harness) -> None:
    result = h.run(h.session.place_order(market(), idempotency_key="dup"))
    ours = ClientOrderId(5001, result.client_id)
    stranger = ClientOrderId(5001, 999)
    base = {"action": int(TradeAction.DEAL), "symbol": "EURUSD", "volume": 0.1, "type": 0,
            "type_filling": 1}  # fmt: skip
    h.terminal.order_send({**base, "magic": ours.magic})  # sent twice behind our back
    h.terminal.order_send({**base, "magic": stranger.magic})  # an id the journal never gave
    h.terminal.order_send({**base, "magic": 12345})  # another EA's: none of our business
    assert h.run(h.session.sweep_orders()) == ((999,), (ours.sequence,))
    assert h.run(h.session.sweep_orders()) == ((999,), (ours.sequence,))
    assert kinds(h, 999) == [K.UNEXPECTED]
    assert kinds(h, ours.sequence)[-1] is K.DUPLICATE
    with pytest.raises(MT5OrderBlockedError) as caught:  # an MT5StateError: not sent
        h.run(h.session.place_order(market(), idempotency_key="dup"))
    assert "blocked" in str(caught.value)
    assert "cannot help" in caught.value.hint


def test_sl_and_tp_closes_are_not_duplicates(h: Harness) -> None:
    bid = h.run(h.session.get_price("EURUSD")).bid
    h.run(h.session.place_order(market(sl=round(bid - 0.0005, 5))))
    h.terminal.clock.advance(3600)  # type: ignore[attr-defined]
    h.run(h.session.get_price("EURUSD"))
    assert h.run(h.session.sweep_orders()) == ((), ())


def test_the_periodic_sweep_runs_in_the_background(build: Build) -> None:
    h = build(reconcile=ReconcilePolicy(sweep_interval_s=0.5), clock=RealAsyncClock())
    h.terminal.order_send({"action": 1, "symbol": "EURUSD", "volume": 0.1, "type": 0,
                           "type_filling": 1, "magic": ClientOrderId(5001, 77).magic})  # fmt: skip

    async def flagged() -> bool:
        for _ in range(300):
            if h.session.journal.state(5001, 77) is K.UNEXPECTED:
                return True
            await asyncio.sleep(0.01)
        return False

    assert h.run(flagged())


def test_a_session_without_a_journal_says_so(caplog: pytest.LogCaptureFixture) -> None:
    session, _, _ = make_session()
    assert "journaled in memory only" in caplog.text
    assert isinstance(session.journal, SqliteJournal)


def test_orders_before_connect_are_refused() -> None:
    session, _, _ = make_session()
    with pytest.raises(MT5StateError):
        session.pipeline.login  # noqa: B018


def test_the_breaker_policy_is_untouched_by_the_pipeline(build: Build) -> None:
    h = build(breaker=BreakerPolicy(consecutive_failures=2))
    for _ in range(3):
        with pytest.raises(MT5TradeRejected):
            h.run(h.session.place_order(market(volume=90.0)))
    assert h.session.breaker.snapshot().state.name == "CLOSED"


def test_place_order_before_connect_fails_at_once() -> None:
    session, _, _ = make_session()

    async def early() -> None:
        await session.place_order(market())

    with pytest.raises(MT5StateError):
        asyncio.run(early())


def test_a_late_success_is_the_keys_outcome(build: Build) -> None:
    """The reply came after the caller gave up: the journal's LATE_RESULT answers the key."""
    h = build(timeouts=Timeouts(call_s=2.0, connect_s=5.0, order_s=0.05, probe_s=0.5),
              reconcile=ReconcilePolicy(sweep_interval_s=None, budget_s=0.01))  # fmt: skip
    h.terminal.faults.latency("order_send", 0.3, times=1)
    with pytest.raises(MT5OrderOutcomeUnknown):
        h.run(h.session.place_order(market(), idempotency_key="late"))

    async def late_recorded() -> None:
        for _ in range(300):
            if kinds(h, only(h))[-1] is K.LATE_RESULT:
                return
            await asyncio.sleep(0.01)

    h.run(late_recorded())
    assert h.run(h.session.unresolved_orders()) == []  # the late reply settled it
    result = h.run(h.session.place_order(market(), idempotency_key="late"))
    assert (result.client_id, result.retcode) == (only(h), TradeRetcode.DONE)
    assert kinds(h, only(h))[-1] is K.LATE_RESULT  # answered from the journal, nothing sent
    assert opened(h) == 1


def test_a_late_failure_leaves_the_order_unresolved(build: Build) -> None:
    h = build(timeouts=Timeouts(call_s=2.0, connect_s=5.0, order_s=0.05, probe_s=0.5),
              reconcile=ReconcilePolicy(sweep_interval_s=None, budget_s=0.01))  # fmt: skip
    h.terminal.faults.reply_lost("order_send", hang=True, cap_s=0.3)  # executes, then -10001
    with pytest.raises(MT5OrderOutcomeUnknown):
        h.run(h.session.place_order(market(), idempotency_key="lf"))

    async def settled() -> None:
        for _ in range(300):
            if [e.note for e in h.session.journal.history(5001, only(h))][-1].startswith("late"):
                return
            await asyncio.sleep(0.01)

    h.run(settled())
    assert kinds(h, only(h))[-1] is K.UNKNOWN
    assert h.run(h.session.unresolved_orders()) == [only(h)]
    h.run(h.session.sweep_orders())  # the sweep reconciles it: it did execute
    assert kinds(h, only(h))[-1] is K.RECONCILED_PRESENT
    assert opened(h) == 1


def test_the_sweep_leaves_orders_in_flight_alone(h: Harness) -> None:
    h.terminal.faults.latency("order_send", 0.2, times=1)

    async def sweep_mid_send() -> list[EventKind]:
        task = asyncio.ensure_future(h.session.place_order(market()))
        for _ in range(500):
            if K.SENT in kinds(h, only(h)):
                break
            await asyncio.sleep(0.001)
        await h.session.sweep_orders()
        await task
        return kinds(h, only(h))

    assert h.run(sweep_mid_send()) == [K.INTENT, K.SENT, K.ACKNOWLEDGED]


def test_no_connection_retcode_is_unknown_until_the_link_is_back(build: Build) -> None:
    """10031: the request may have left before the link dropped. Unknown while the link is down
    (scans are not trusted in DEGRADED), settled once it is back."""
    h = build(reconcile=NO_ADVANCE)
    h.terminal.set_connected(False)
    with pytest.raises(MT5OrderOutcomeUnknown) as caught:
        h.run(h.session.place_order(market(), idempotency_key="link"))
    assert caught.value.retcode == TradeRetcode.CONNECTION
    assert kinds(h, only(h)) == [K.INTENT, K.SENT, K.UNKNOWN]
    h.terminal.set_connected(True)
    h.run(h.session.connection.refresh_link())
    result = h.run(h.session.place_order(market(), idempotency_key="link"))
    assert kinds(h, only(h))[3:] == [K.RECONCILED_ABSENT, K.RESUBMITTED, K.SENT, K.ACKNOWLEDGED]
    assert (result.client_id, opened(h)) == (only(h), 1)


def test_a_lost_order_modification_reply_is_reconciled_by_state(h: Harness) -> None:
    bid = h.run(h.session.get_price("EURUSD")).bid
    pending = h.run(h.session.place_order(market(kind=OrderKind.LIMIT, price=round(bid - 0.02, 5))))
    h.terminal.faults.reply_lost("order_send")
    moved = h.run(h.session.modify_order(pending.order, price=round(bid - 0.03, 5)))
    assert (moved.retcode, kinds(h, moved.client_id)[-1]) == (
        TradeRetcode.DONE,
        K.RECONCILED_PRESENT,
    )
    (order,) = h.run(h.session.orders())
    assert order.price_open == round(bid - 0.03, 5)


def test_the_sweep_refuses_to_judge_an_unreadable_terminal(h: Harness) -> None:
    h.terminal.faults.ipc_error("orders_get", -10004, times=None)
    with pytest.raises(MT5StateError):
        h.run(h.session.sweep_orders())


def test_recovery_after_a_risk_rejection_rechecks_the_limits(build: Build) -> None:
    h = build(risk=RiskLimits(allowed_symbols={"GBPUSD"}))
    with pytest.raises(MT5RiskLimitError):
        h.run(h.session.place_order(market(), idempotency_key="risk"))
    with pytest.raises(MT5RiskLimitError):  # the key is re-armed, the limit still holds
        h.run(h.session.place_order(market(), idempotency_key="risk"))
    assert kinds(h, only(h)) == [K.INTENT, K.RISK_REJECTED, K.RISK_REJECTED]
    assert sent_orders(h) == 0


class Recorder(SessionObserver):
    """Records the order hooks."""

    def __init__(self) -> None:
        self.events: list[tuple[str, int | None]] = []
        self.journal_ops: list[str] = []

    def order_event(self, kind: str, retcode: int | None) -> None:
        self.events.append((kind, retcode))

    def journal_written(self, operation: str, duration_s: float) -> None:
        assert duration_s >= 0
        self.journal_ops.append(operation)


def test_the_observer_hears_every_journaled_event(build: Build) -> None:
    recorder = Recorder()
    h = build(observer=recorder, risk=RiskLimits(max_volume_per_order=1.0))
    h.run(h.session.place_order(market()))
    with pytest.raises(MT5RiskLimitError):
        h.run(h.session.place_order(market(volume=2.0)))
    assert recorder.events == [
        ("INTENT", None), ("SENT", None), ("ACKNOWLEDGED", TradeRetcode.DONE),
        ("INTENT", None), ("RISK_REJECTED", None),
    ]  # fmt: skip
    assert "record_intent" in recorder.journal_ops
    assert "record" in recorder.journal_ops
