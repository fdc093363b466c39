"""What the fleet chaos test found in mt5gate, each kept as the smallest case that shows it.

**A reconciled order reported with its position's volume** (fixed). The CI-scale run (seed 3)
once answered key ``fc-27`` with ``executed``, the right client id and order ticket, and
``volume: 0.02`` for an order of 0.01 lots: its reply had been lost, and while the broker's
history was still late (no deal or history order yet) the only evidence of the order was the
netting position that carries its id, to which another order of the same side had since added
0.01 lots. Evidence now *describes* an order only through an order, a deal, or a position
untouched since the order opened it; otherwise the order is known to be there (never sent
again) and its outcome waits for its deal. The session-level case is
``tests/session/test_absence_proof.py::test_an_order_seen_only_through_a_position_raised_since_waits_for_its_own_deal``.
"""

from __future__ import annotations

from dataclasses import replace

from mt5gate.constants import PositionType
from mt5gate.models import Position
from mt5gate.orders.evidence import Evidence
from mt5gate.orders.ids import ClientOrderId


def _position(client_id: ClientOrderId, *, volume: float, opened: int, updated: int) -> Position:
    return Position(ticket=500, symbol="BTCUSD", type=PositionType.BUY, volume=volume,
                    price_open=50_000.0, price_current=50_010.0, sl=0.0, tp=0.0, profit=0.2,
                    swap=0.0, magic=client_id.magic, comment="", identifier=500,
                    time_msc=opened, time_update_msc=updated)  # fmt: skip


def test_a_position_raised_since_the_order_opened_it_does_not_describe_the_order() -> None:
    client_id = ClientOrderId(9101, 27)
    raised = _position(client_id, volume=0.02, opened=1, updated=2)
    untouched = _position(client_id, volume=0.01, opened=1, updated=1)
    assert Evidence(positions=(raised,)).present
    assert not Evidence(positions=(raised,)).describes
    assert Evidence(positions=(untouched,)).describes
    assert Evidence(positions=(replace(raised, time_update_msc=1),)).describes
