"""The reconciler's judgement, on hand-made snapshots: what proves present, what proves absent,
and what proves nothing (unhealthy scans, a broker clock that stands still, a vanished target).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from mt5gate.constants import (
    DealEntry,
    DealReason,
    DealType,
    OrderReason,
    OrderState,
    OrderType,
    PositionType,
    TradeAction,
)
from mt5gate.models import Deal, Order, Position
from mt5gate.orders import ClientOrderId, collect
from mt5gate.orders.reconcile import Reconciler, Snapshot, Verdict, Watch, state_check
from mt5gate.session import ReconcilePolicy
from mt5gate.session.ports import SessionPorts
from tests.session.conftest import make_session

ID = ClientOrderId(5001, 7)


def order(ticket: int = 11, magic: int = ID.magic, **kw: Any) -> Order:
    base = Order(ticket, "EURUSD", OrderType.BUY_LIMIT, OrderState.PLACED, 0.1, 0.1, 1.1, 0.0,
                 1.0, 1.2, magic, "", 0, 0, 0, 0, 0)  # fmt: skip
    return replace(base, **kw)


def deal(ticket: int = 21, order_ticket: int = 11, **kw: Any) -> Deal:
    base = Deal(ticket, order_ticket, 1, "EURUSD", DealType.BUY, DealEntry.IN, DealReason.EXPERT,
                0.1, 1.1, 0.0, 0.0, 0.0, 0.0, ID.magic, "", 0)  # fmt: skip
    return replace(base, **kw)


def position(ticket: int = 31, sl: float = 1.0, tp: float = 1.2) -> Position:
    return Position(ticket, "EURUSD", PositionType.BUY, 0.1, 1.1, 1.1, sl, tp, 0.0, 0.0, 0, "",
                    ticket, 0, 0)  # fmt: skip


def snap(
    *, at: float = 0.0, healthy: bool = True, server_ms: int = 1000, orders: tuple[Order, ...] = (),
    history: tuple[Order, ...] = (), deals: tuple[Deal, ...] = (),
    positions: tuple[Position, ...] = (),
) -> Snapshot:  # fmt: skip
    evidence = collect(5001, (*orders, *history), deals)
    return Snapshot(evidence, orders, positions, history, deals, {"EURUSD": server_ms}, healthy, at)


@pytest.fixture
def reconciler() -> Reconciler:
    session, _, clock = make_session()
    return Reconciler(SessionPorts(session), ReconcilePolicy(settle_s=3.0), ID.namespace, clock)


def test_an_order_or_a_deal_with_the_id_is_present(reconciler: Reconciler) -> None:
    assert reconciler.judge(Watch(ID, "EURUSD", 500), snap(history=(order(),))) is Verdict.PRESENT
    only_deal = snap(deals=(deal(),))
    watch = Watch(ID, "EURUSD", 500)
    assert reconciler.judge(watch, only_deal) is Verdict.PRESENT
    assert watch.evidence.tickets == {11}


def test_broker_closes_and_other_eas_are_not_evidence(reconciler: Reconciler) -> None:
    found = snap(history=(order(reason=OrderReason.SL), order(12, magic=99)),
                 deals=(deal(reason=DealReason.TP),))  # fmt: skip
    assert reconciler.judge(Watch(ID, "EURUSD", 500), found) is Verdict.UNKNOWN


def test_absence_needs_two_healthy_scans_over_the_settle_window(reconciler: Reconciler) -> None:
    watch = Watch(ID, "EURUSD", 500)
    assert reconciler.judge(watch, snap(at=0.0)) is Verdict.UNKNOWN
    assert reconciler.judge(watch, snap(at=1.0)) is Verdict.UNKNOWN  # too soon
    assert reconciler.judge(watch, snap(at=3.0)) is Verdict.ABSENT


def test_an_unhealthy_scan_starts_the_settle_window_again(reconciler: Reconciler) -> None:
    watch = Watch(ID, "EURUSD", 500)
    reconciler.judge(watch, snap(at=0.0))
    assert reconciler.judge(watch, snap(at=2.0, healthy=False)) is Verdict.UNKNOWN
    assert reconciler.judge(watch, snap(at=4.0)) is Verdict.UNKNOWN
    assert reconciler.judge(watch, snap(at=7.0)) is Verdict.ABSENT


def test_a_broker_clock_that_stands_still_proves_nothing(reconciler: Reconciler) -> None:
    watch = Watch(ID, "EURUSD", 1000)
    for at in (0.0, 5.0, 10.0):
        assert reconciler.judge(watch, snap(at=at, server_ms=1000)) is Verdict.UNKNOWN
    assert reconciler.judge(watch, snap(at=11.0, server_ms=1001)) is Verdict.UNKNOWN
    assert reconciler.judge(watch, snap(at=14.0, server_ms=1002)) is Verdict.ABSENT


def test_an_unknown_send_time_is_the_first_scans_broker_time(reconciler: Reconciler) -> None:
    watch = Watch(ID, "EURUSD", 0)
    assert reconciler.judge(watch, snap(at=0.0, server_ms=900)) is Verdict.UNKNOWN
    assert watch.sent_ms == 900
    assert reconciler.judge(watch, snap(at=3.0, server_ms=900)) is Verdict.UNKNOWN
    assert reconciler.judge(watch, snap(at=4.0, server_ms=901)) is Verdict.UNKNOWN
    assert reconciler.judge(watch, snap(at=7.0, server_ms=902)) is Verdict.ABSENT


def test_a_symbol_without_a_quote_proves_nothing(reconciler: Reconciler) -> None:
    watch = Watch(ID, "GBPUSD", 500)
    for at in (0.0, 5.0):
        assert reconciler.judge(watch, snap(at=at)) is Verdict.UNKNOWN


def test_sl_tp_modifications_are_recognised_by_the_position() -> None:
    request = {"action": int(TradeAction.SLTP), "position": 31, "sl": 1.05, "tp": 1.25}
    check = state_check(request)
    assert check is not None
    assert check(snap(positions=(position(sl=1.05, tp=1.25),))) is True
    assert check(snap(positions=(position(sl=1.0, tp=1.25),))) is False
    assert check(snap()) is None  # the position is gone: nothing to tell


def test_order_modifications_are_recognised_by_the_order() -> None:
    request = {"action": int(TradeAction.MODIFY), "order": 11, "price": 1.1, "stoplimit": 0.0,
               "sl": 1.0, "tp": 1.2, "type_time": 0, "expiration": 0}  # fmt: skip
    check = state_check(request)
    assert check is not None
    assert check(snap(orders=(order(),))) is True
    assert check(snap(orders=(order(price_open=1.09),))) is False
    assert check(snap()) is None


def test_cancels_are_recognised_by_the_history() -> None:
    check = state_check({"action": int(TradeAction.REMOVE), "order": 11})
    assert check is not None
    assert check(snap(orders=(order(),))) is False
    assert check(snap(history=(order(state=OrderState.CANCELED),))) is True
    assert check(snap(history=(order(state=OrderState.FILLED),))) is False
    assert check(snap()) is None


def test_orders_are_found_by_id_not_by_state() -> None:
    assert state_check({"action": int(TradeAction.DEAL)}) is None
    assert state_check({"action": int(TradeAction.PENDING)}) is None


def test_a_state_check_that_cannot_tell_never_proves_absence(reconciler: Reconciler) -> None:
    check = state_check({"action": int(TradeAction.SLTP), "position": 31, "sl": 1.0, "tp": 1.2})
    watch = Watch(ID, "EURUSD", 0, check)
    for at in (0.0, 5.0, 10.0):
        assert reconciler.judge(watch, snap(at=at)) is Verdict.UNKNOWN
    assert reconciler.judge(watch, snap(at=11.0, healthy=False)) is Verdict.UNKNOWN
    moved = (position(sl=1.1),)
    assert reconciler.judge(watch, snap(at=12.0, positions=moved)) is Verdict.UNKNOWN
    assert reconciler.judge(watch, snap(at=15.0, positions=moved)) is Verdict.ABSENT
    assert reconciler.judge(watch, snap(at=16.0, positions=(position(),))) is Verdict.PRESENT


def test_policy_values_are_validated() -> None:
    for bad in ({"multiplier": 0.5}, {"first_s": 0.0}, {"sweep_interval_s": 0.0},
                {"settle_s": -1.0}):  # fmt: skip
        with pytest.raises(ValueError, match="ReconcilePolicy"):
            ReconcilePolicy(**bad)  # type: ignore[arg-type]
    assert ReconcilePolicy(first_s=0.1, multiplier=2.0, max_interval_s=0.3).interval_s(5) == 0.3
