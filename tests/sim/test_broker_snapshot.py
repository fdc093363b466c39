"""Snapshot / restore round trip of a broker's state."""

from __future__ import annotations

import json

from mt5gate.constants import OrderTime, OrderType
from mt5gate.sim.broker import TicketSource

from .broker_world import deal, pending, world


def test_round_trip() -> None:
    w = world()
    a = w.send(deal("EURUSD", 0.3, sl=1.09))
    w.send(deal("EURUSD", 0.1, buy=False, position=a.order))
    expiry = w.clock.now_ms() // 1000 + 3600
    w.send(
        pending(
            "EURUSD",
            OrderType.BUY_LIMIT,
            0.1,
            1.09,
            type_time=OrderTime.SPECIFIED,
            expiration=expiry,
        )
    )
    data = json.loads(json.dumps(w.broker.snapshot()))
    before = (
        w.broker.positions(),
        w.broker.orders(),
        w.broker.all_deals(),
        w.broker.account_info(),
    )
    other = world()
    other.broker.restore(data)
    after = (
        other.broker.positions(),
        other.broker.orders(),
        other.broker.all_deals(),
        other.broker.account_info(),
    )
    assert after == before
    assert other.broker.history_orders(0, expiry) == w.broker.history_orders(0, expiry)
    fresh = other.send(deal("EURUSD", 0.1))
    assert fresh.order > max(d.ticket for d in before[2])
    assert fresh.request_id == 4
    other.tick("EURUSD", 1.0899, 1.09)  # the restored SL and limit still fire
    assert sorted(p.price_open for p in other.broker.positions()) == [1.09, 1.1001]


def test_ticket_source() -> None:
    t = TicketSource(5)
    assert (t.next(), t.next()) == (5, 6)
    saved = t.snapshot()
    t.next()
    t.restore(saved)
    assert t.next() == 7
    t.ensure_above(100)
    assert t.next() == 101
    assert repr(t) == "TicketSource(next=102)"
