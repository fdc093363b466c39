"""Hypothesis: random opens, closes, pending orders and price moves keep the books consistent."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mt5gate.constants import OrderType

from .broker_world import World, deal, pending, world

steps = st.lists(
    st.one_of(
        st.tuples(st.just("open"), st.booleans(), st.integers(1, 30)),
        st.tuples(st.just("close"), st.integers(0, 5), st.integers(1, 30)),
        st.tuples(st.just("pending"), st.booleans(), st.integers(-40, 40)),
        st.tuples(st.just("move"), st.booleans(), st.integers(-60, 60)),
    ),
    max_size=25,
)


def _apply(w: World, step: tuple[str, object, int], mid: list[float]) -> None:
    kind, flag, n = step
    if kind == "open":
        w.send(deal("EURUSD", n / 100, buy=bool(flag)))
    elif kind == "close":
        positions = w.broker.positions()
        if positions:
            p = positions[int(flag) % len(positions)]  # type: ignore[call-overload]
            w.send(deal("EURUSD", min(n / 100, p.volume), buy=p.type == 1, position=p.ticket))
    elif kind == "pending":
        kind_ = OrderType.BUY_LIMIT if flag else OrderType.SELL_LIMIT
        offset = -abs(n) - 1 if flag else abs(n) + 1
        w.send(pending("EURUSD", kind_, 0.05, round(mid[0] + offset * 1e-4, 5)))
    else:
        mid[0] = round(mid[0] + n * 1e-4, 5)
        w.tick("EURUSD", mid[0], round(mid[0] + 1e-4, 5))


def _check(w: World, seen_closed: set[int]) -> None:
    info = w.broker.account_info()
    positions = w.broker.positions()
    floating = sum(p.profit + p.swap for p in positions)
    assert abs(info.equity - (info.balance + info.credit + floating)) < 1e-6
    assert abs(info.margin_free - (info.equity - info.margin)) < 1e-9
    for p in positions:
        steps_ = p.volume / 0.01
        assert abs(steps_ - round(steps_)) < 1e-6
        assert p.ticket not in seen_closed
    seen_closed |= w.broker.ledger.closed
    deals = [d.ticket for d in w.broker.all_deals()]
    orders = [o.ticket for _, o in w.broker.ledger.history_orders]
    orders += [o.ticket for o in w.broker.orders()]
    assert len(set(deals)) == len(deals)
    assert len(set(orders)) == len(orders)
    assert not set(deals) & set(orders)
    assert len({p.ticket for p in positions}) == len(positions)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps=steps, netting=st.booleans())
def test_books_stay_consistent(steps: list[tuple[str, object, int]], netting: bool) -> None:
    w = world(netting=netting)
    mid, closed = [1.1], set[int]()
    for step in steps:
        _apply(w, step, mid)
        _check(w, closed)
