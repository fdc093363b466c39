"""The fencing rule every terminal host applies (``mt5gate.terminal.fencing``)."""

from __future__ import annotations

import pytest

from mt5gate.terminal.base import TerminalFencedError
from mt5gate.terminal.fencing import UNFENCED_REFUSED, EpochFence, checked_epoch


def test_the_highest_epoch_wins() -> None:
    fence = EpochFence()
    assert fence.admit("symbol_info_tick", None) is False  # nothing seen: all allowed
    assert fence.admit("order_send", None) is False
    assert fence.admit("initialize", 3) is True  # the first epoch raises the highest
    assert fence.admit("order_send", 3) is False  # the same epoch: allowed, no news
    assert fence.admit("account_info", 5) is True
    with pytest.raises(TerminalFencedError) as caught:
        fence.admit("account_info", 3)
    assert (caught.value.function, caught.value.epoch, caught.value.highest) == (
        "account_info", 3, 5,
    )  # fmt: skip
    assert fence.highest == 5
    assert repr(fence) == "<EpochFence highest=5>"


@pytest.mark.parametrize("function", sorted(UNFENCED_REFUSED))
def test_trading_and_login_need_an_epoch_once_one_was_seen(function: str) -> None:
    fence = EpochFence(2)
    with pytest.raises(TerminalFencedError, match="it carried no epoch"):
        fence.admit(function, None)
    for read in ("initialize", "order_check", "positions_get", "history_deals_get"):
        assert fence.admit(read, None) is False


@pytest.mark.parametrize(("epoch", "error"), [(0, ValueError), (-1, ValueError),
                                               (True, TypeError), (1.0, TypeError)])  # fmt: skip
def test_an_epoch_is_a_positive_int(epoch: object, error: type[Exception]) -> None:
    with pytest.raises(error, match="a fencing epoch is a positive int"):
        checked_epoch(epoch)
    assert checked_epoch(1) == 1


def test_check_refuses_what_admit_would_and_changes_nothing() -> None:
    """``check`` is the refusal half of ``admit``, safe on any thread: a host asks it before a
    call waits for the terminal (the bridge), so a stale call is refused at once."""
    fence = EpochFence()
    fence.check("order_send", None)  # nothing seen yet: nothing refused
    fence.check("account_info", 4)
    assert fence.highest is None  # a higher epoch passes check() but is not recorded by it
    fence.admit("initialize", 4)
    fence.check("account_info", 7)
    assert fence.highest == 4
    fence.check("positions_get", 4)
    fence.check("positions_get", None)  # reads without an epoch stay open
    for function, epoch in (("symbol_info_tick", 3), ("order_send", None), ("login", None)):
        with pytest.raises(TerminalFencedError) as caught:
            fence.check(function, epoch)
        assert (caught.value.function, caught.value.epoch, caught.value.highest) == (
            function, epoch, 4,
        )  # fmt: skip
        with pytest.raises(TerminalFencedError):
            fence.admit(function, epoch)
    assert fence.highest == 4
