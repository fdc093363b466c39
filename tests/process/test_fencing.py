"""Fencing in a ProcessTerminal's child: the child keeps the highest epoch and refuses lower
ones, and a child started to replace a hung one knows that epoch before its first call."""

from __future__ import annotations

import asyncio

import pytest

from mt5gate import MT5SessionManager, OrderRequest
from mt5gate.errors import MT5OwnershipError
from mt5gate.models import Side
from mt5gate.terminal.base import Fenceable, TerminalFencedError
from mt5gate.terminal.process import ProcessTerminal

from .conftest import HEDGING, Spawn

BUY = {"action": 1, "symbol": "EURUSD", "volume": 0.1, "type": 0, "type_filling": 1}


def test_the_child_refuses_an_epoch_lower_than_it_has_seen(spawn: Spawn) -> None:
    terminal = spawn()
    assert isinstance(terminal, Fenceable)
    terminal.fence(5)
    assert terminal.initialize(**HEDGING) is True
    sent = terminal.order_send(dict(BUY))
    assert sent is not None
    assert sent.retcode == 10009
    terminal.fence(3)  # a stale owner's epoch
    with pytest.raises(TerminalFencedError) as caught:
        terminal.order_send(dict(BUY))
    assert (caught.value.function, caught.value.epoch, caught.value.highest) == ("order_send", 3, 5)
    with pytest.raises(TerminalFencedError):
        terminal.symbol_info_tick("EURUSD")  # reads with a stale epoch are refused too
    assert terminal.last_error() == (1, "Success")  # the refused calls set nothing
    terminal.fence(5)
    assert terminal.positions_total() == 1  # nothing new in the ledger
    assert terminal.epoch == 5
    assert terminal.restarts == 0


def test_a_replacement_child_knows_the_highest_epoch_before_any_call(spawn: Spawn) -> None:
    terminal = spawn(call_timeout_s=1.0)
    terminal.fence(7)
    assert terminal.initialize(**HEDGING) is True
    first_pid = terminal.pid
    terminal.host_call("faults.hang", "symbol_info_tick", cap_s=30.0)
    assert terminal.symbol_info_tick("EURUSD") is None  # hung: the child is killed, replaced
    assert terminal.last_error() == (-10005, "IPC timeout")
    assert terminal.restarts == 1
    terminal.fence(6)  # lower than 7, and the new child has not seen a call yet
    with pytest.raises(TerminalFencedError) as caught:
        terminal.initialize(**HEDGING)
    assert caught.value.highest == 7
    assert terminal.pid != first_pid
    terminal.fence(8)
    assert terminal.initialize(**HEDGING) is True
    terminal.fence(7)
    with pytest.raises(TerminalFencedError):
        terminal.account_info()


def test_a_session_whose_terminal_carries_a_stale_epoch_gets_ownership_errors(
    spawn: Spawn,
) -> None:
    terminal: ProcessTerminal = spawn()

    async def main() -> None:
        async with MT5SessionManager(terminal=terminal, **HEDGING) as session:
            first = await session.place_order(OrderRequest("EURUSD", Side.BUY, 0.1))
            assert first.retcode == 10009  # sent with the epoch of the session's lease
            owned = session.ownership.held
            assert owned is not None
            session.terminal.fence(owned.epoch - 1)  # an older owner's epoch
            with pytest.raises(MT5OwnershipError) as caught:
                await session.place_order(OrderRequest("EURUSD", Side.BUY, 0.1))
            assert caught.value.epoch == owned.epoch
            session.terminal.fence(owned.epoch)
            positions = await session.positions()
            assert [p.ticket for p in positions] == [first.order]

    asyncio.run(main())


@pytest.mark.parametrize("epoch", [0, -2, False, 2.0])
def test_fence_takes_positive_ints_only(epoch: object, spawn: Spawn) -> None:
    terminal = spawn()
    with pytest.raises((TypeError, ValueError)):
        terminal.fence(epoch)  # type: ignore[arg-type]
    assert terminal.epoch is None
