"""Orders are built from a symbol specification kept a few seconds (``SpecPolicy``): one
``symbol_info`` serves many orders; a retcode that may mean the broker changed the contract,
the policy's TTL, and every session state change make it read again; and a kept
specification can make an order be refused by the broker, never by the gateway."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import pytest

from mt5gate.constants import OrderFilling, SymbolFilling, TradeRetcode
from mt5gate.errors import MT5TradeRejected, MT5ValidationError
from mt5gate.models import OrderRequest, Side
from mt5gate.orders import EventKind
from mt5gate.session import SessionObserver, SpecPolicy
from mt5gate.session.specs import SPEC_RETCODES
from mt5gate.sim.terminal import SimTerminal

from .conftest import Harness, _harness


class CallCounter(SessionObserver):
    """Counts terminal calls by function name."""

    def __init__(self) -> None:
        self.calls: dict[str, int] = {}

    def call_finished(self, function: str, outcome: str, duration_s: float) -> None:
        self.calls[function] = self.calls.get(function, 0) + 1


@pytest.fixture
def counted() -> Iterator[tuple[Harness, CallCounter]]:
    """A connected netting session (account 5002) whose terminal calls are counted."""
    counter = CallCounter()
    for harness in _harness(5002, "sim-pass-5002", observer=counter):
        yield harness, counter


def _order(side: Side = Side.BUY, volume: float = 0.01, **kw: Any) -> OrderRequest:
    return OrderRequest("EURUSD", side, volume, **kw)


def _respec(terminal: SimTerminal, symbol: str, **changes: Any) -> None:
    """The broker changes a contract (the simulator's market serves the new specification to
    ``symbol_info`` and to its order checks alike; it has no public hook for this)."""
    market, spec = terminal.market, terminal.market.spec(symbol)
    assert spec is not None
    market._by_name[symbol] = dataclasses.replace(spec, **changes)


def _place(h: Harness, request: OrderRequest) -> Any:
    return h.run(h.session.place_order(request))


def test_one_reading_serves_the_orders_of_its_ttl(counted: tuple[Harness, CallCounter]) -> None:
    h, counter = counted
    for n in range(4):
        assert _place(h, _order(Side.BUY if n % 2 == 0 else Side.SELL)).retcode == 10009
    assert counter.calls["symbol_info"] == 1
    assert counter.calls["order_send"] == 4
    assert counter.calls["symbol_info_tick"] >= 4  # the quote is never kept
    h.clock.now += h.session.spec_policy.ttl_s  # the clock the session was given
    _place(h, _order(Side.BUY))
    assert counter.calls["symbol_info"] == 2


def test_ttl_zero_reads_the_specification_for_every_order() -> None:
    counter = CallCounter()
    for h in _harness(5002, "sim-pass-5002", observer=counter, specs=SpecPolicy(ttl_s=0)):
        _place(h, _order(Side.BUY))
        _place(h, _order(Side.SELL))
        assert counter.calls["symbol_info"] == 2


def test_a_changed_filling_mode_is_refused_once_then_read_again(
    counted: tuple[Harness, CallCounter],
) -> None:
    h, counter = counted
    _place(h, _order(Side.BUY))  # kept: EURUSD allows FOK and IOC, so IOC is chosen
    _respec(h.terminal, "EURUSD", filling_mode=int(SymbolFilling.FOK))
    with pytest.raises(MT5TradeRejected) as refused:
        _place(h, _order(Side.SELL))
    assert refused.value.retcode == TradeRetcode.INVALID_FILL
    assert refused.value.request is not None
    assert refused.value.request["type_filling"] == OrderFilling.IOC
    journal = h.session.journal
    assert journal is not None
    last = journal.history(5002, refused.value.client_id or 0)[-1]
    assert (last.kind, last.retcode) == (EventKind.REJECTED, TradeRetcode.INVALID_FILL)
    placed = _place(h, _order(Side.SELL))  # the refusal dropped the kept specification
    assert placed.retcode == TradeRetcode.DONE
    assert counter.calls["symbol_info"] == 2


def test_a_kept_specification_never_refuses_what_the_broker_now_takes(
    counted: tuple[Harness, CallCounter],
) -> None:
    h, counter = counted
    _place(h, _order(Side.BUY, 0.01))
    _respec(h.terminal, "EURUSD", volume_min=0.001, volume_step=0.001)
    placed = _place(h, _order(Side.SELL, 0.005))  # off the kept step of 0.01: read again
    assert placed.retcode == TradeRetcode.DONE
    assert counter.calls["symbol_info"] == 2
    with pytest.raises(MT5ValidationError) as refused:  # off the fresh step too: refused
        _place(h, _order(Side.SELL, 0.0055))
    assert refused.value.field == "volume"


def test_a_partial_close_off_a_kept_step_is_checked_against_a_fresh_one(
    counted: tuple[Harness, CallCounter],
) -> None:
    h, _ = counted
    _place(h, _order(Side.BUY, 0.02))
    (position,) = h.run(h.session.positions(symbol="EURUSD"))
    _respec(h.terminal, "EURUSD", volume_min=0.001, volume_step=0.001)
    closed = h.run(h.session.close_position(position.ticket, volume=0.015))
    assert closed.retcode == TradeRetcode.DONE
    (left,) = h.run(h.session.positions(symbol="EURUSD"))
    assert left.volume == pytest.approx(0.005)


def test_every_session_state_change_forgets_the_specifications(
    counted: tuple[Harness, CallCounter],
) -> None:
    h, counter = counted
    _place(h, _order(Side.BUY))
    h.run(h.session.reconnect())
    _place(h, _order(Side.SELL))
    assert counter.calls["symbol_info"] == 2


def test_a_retcode_outside_refresh_on_keeps_the_specification(
    counted: tuple[Harness, CallCounter],
) -> None:
    h, counter = counted
    _place(h, _order(Side.BUY))
    h.terminal.set_autotrading(False)  # 10027: the terminal's switch, not the contract
    with pytest.raises(Exception) as gated:
        _place(h, _order(Side.SELL))
    assert getattr(gated.value, "retcode", None) == TradeRetcode.CLIENT_DISABLES_AT
    assert TradeRetcode.CLIENT_DISABLES_AT not in SPEC_RETCODES
    h.terminal.set_autotrading(True)
    _place(h, _order(Side.SELL))
    assert counter.calls["symbol_info"] == 1


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"ttl_s": -1.0}, "ttl_s"),
        ({"ttl_s": float("nan")}, "ttl_s"),
        ({"ttl_s": True}, "ttl_s"),
        ({"ttl_s": "5"}, "ttl_s"),
        ({"refresh_on": frozenset({"10030"})}, "refresh_on"),
    ],
)
def test_the_policy_refuses_nonsense_naming_the_field(options: Any, field: str) -> None:
    with pytest.raises(ValueError, match=f"SpecPolicy.{field}"):
        SpecPolicy(**options)
