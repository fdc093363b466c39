"""Fencing at the bridge: the highest epoch a client has shown holds the terminal.

Real ``mt5gate bridge`` processes and real BridgeTerminal clients, plus the same rules on an
in-process server (where coverage can see the server's side).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from mt5gate import MT5SessionManager, OrderRequest
from mt5gate.bridge.server import BridgeServer
from mt5gate.errors import MT5OwnershipError
from mt5gate.models import Side
from mt5gate.session.policies import Timeouts
from mt5gate.terminal.base import Fenceable, TerminalFencedError
from mt5gate.terminal.bridge import BridgeTerminal
from mt5gate.terminal.wire import (
    MalformedMessageError,
    decode_request,
    encode_fenced,
    encode_request,
    fenced_highest,
)

from .conftest import HEDGING, TOKEN, BridgeProcess, CountingTerminal, ServedBridge

BUY = {"action": 1, "symbol": "EURUSD", "volume": 0.1, "type": 0, "type_filling": 1}

Start = Callable[..., BridgeProcess]


def client(port: int, epoch: int | None = None, *, attach: bool = True) -> BridgeTerminal:
    terminal = BridgeTerminal("127.0.0.1", port, token=TOKEN, call_timeout_s=20.0)
    if epoch is not None:
        terminal.fence(epoch)
    if attach:
        assert terminal.initialize(**HEDGING) is True, terminal.last_error()
    return terminal


def bought(terminal: BridgeTerminal) -> int:
    sent = terminal.order_send(dict(BUY))
    assert sent is not None, terminal.last_error()
    assert sent.retcode == 10009
    return int(sent.order)


def refused(call: Callable[[], Any]) -> TerminalFencedError:
    with pytest.raises(TerminalFencedError) as caught:
        call()
    return caught.value


# ------------------------------------------------------------------- real bridge processes


def test_a_newer_owner_fences_the_older_one_out(start_bridge: Start) -> None:
    bridge = start_bridge()
    a = client(bridge.port, 5)
    first = bought(a)
    b = client(bridge.port, 6)  # B's initialize shows epoch 6 to the bridge
    error = refused(lambda: a.order_send(dict(BUY)))
    assert (error.function, error.epoch, error.highest) == ("order_send", 5, 6)
    positions = b.positions_get()
    assert positions is not None
    assert [p.ticket for p in positions] == [first]  # nothing new in the ledger
    # reads with a stale epoch are refused too: the ex-owner learns at its very next call
    assert refused(lambda: a.symbol_info_tick("EURUSD")).highest == 6
    assert refused(a.positions_get).function == "positions_get"
    assert a.connected  # the connection stays; only the calls are refused
    bought(b)
    assert b.positions_total() == 2
    for terminal in (a, b):
        terminal.close()
    code, err = bridge.stop()
    assert code == 0
    assert "refused order_send() of" in err
    assert "carried epoch 5, but a newer owner of the account holds epoch 6" in err
    assert "holds fencing epoch 6 now" in err
    assert TOKEN not in err


def test_an_unfenced_client_reads_but_cannot_trade_once_an_epoch_was_seen(
    start_bridge: Start,
) -> None:
    bridge = start_bridge()
    legacy = client(bridge.port)
    bought(legacy)  # no epoch seen yet: the bridge behaves as before fencing
    owner = client(bridge.port, 3)
    error = refused(lambda: legacy.order_send(dict(BUY)))
    assert (error.epoch, error.highest) == (None, 3)
    assert "it carried no epoch" in str(error)
    assert refused(lambda: legacy.login(5002, "sim-pass-5002")).function == "login"
    tick = legacy.symbol_info_tick("EURUSD")
    assert tick is not None
    assert legacy.positions_total() == 1
    checked = legacy.order_check({**BUY, "action": 1, "price": tick.ask})
    assert checked is not None  # order_check executes nothing: allowed
    assert legacy.initialize(**HEDGING) is True  # and so is attaching, for readers
    bought(owner)
    assert owner.positions_total() == 2
    legacy.close()
    owner.close()


def test_a_stale_call_queued_behind_a_newer_owner_is_refused_not_run(
    start_bridge: Start, tmp_path: Path
) -> None:
    """The check runs in the worker job, right before the call, in queue order.

    The worker is held by a hung call; the new owner's read (epoch 6) queues, then the old
    owner's order_send (epoch 5) queues behind it. When the old send arrived the bridge had only
    seen epoch 5, so a check made on arrival would have let it through, after the new owner's
    call. It must be refused, and the ledger stay empty.
    """
    plan = tmp_path / "hang.toml"
    plan.write_text('[[fault]]\nkind = "hang"\nfunctions = ["terminal_info"]\ntimes = 1\n'
                    "seconds = 2\n")  # fmt: skip
    bridge = start_bridge("--faults", str(plan))
    old = client(bridge.port, 5)
    new = client(bridge.port)  # attached unfenced: it has not shown epoch 6 yet
    new.fence(6)
    blocker = client(bridge.port)
    outcomes: dict[str, Any] = {}

    def run(name: str, call: Callable[[], Any]) -> threading.Thread:
        def target() -> None:
            try:
                outcomes[name] = call()
            except TerminalFencedError as error:
                outcomes[name] = error

        thread = threading.Thread(target=target, name=f"test-{name}")
        thread.start()
        return thread

    threads = [run("blocker", blocker.terminal_info)]
    time.sleep(0.4)  # the worker is inside the hung terminal_info()
    threads.append(run("new", lambda: new.symbol_info_tick("EURUSD")))
    time.sleep(0.4)  # the new owner's read is queued first ...
    threads.append(run("old", lambda: old.order_send(dict(BUY))))  # ... the stale send after
    for thread in threads:
        thread.join(30)
    assert outcomes["blocker"] is None  # the hang fault ends in -10005
    assert outcomes["new"] is not None
    assert isinstance(outcomes["old"], TerminalFencedError)
    assert (outcomes["old"].epoch, outcomes["old"].highest) == (5, 6)
    assert new.positions_total() == 0
    for terminal in (old, new, blocker):
        terminal.close()


def test_a_session_on_a_terminal_fenced_by_a_newer_epoch_gets_ownership_errors(
    start_bridge: Start,
) -> None:
    bridge = start_bridge()

    async def main() -> None:
        terminal = BridgeTerminal.from_url(f"bridge://127.0.0.1:{bridge.port}", token=TOKEN)
        assert isinstance(terminal, Fenceable)
        async with MT5SessionManager(terminal=terminal, **HEDGING) as session:
            first = await session.place_order(OrderRequest("EURUSD", Side.BUY, 0.1))
            assert first.retcode == 10009  # sent with the epoch of the session's lease
            owned = session.ownership.held
            assert owned is not None
            newer = await asyncio.to_thread(client, bridge.port, owned.epoch + 1)
            with pytest.raises(MT5OwnershipError) as caught:
                await session.place_order(OrderRequest("EURUSD", Side.BUY, 0.1))
            assert caught.value.epoch == owned.epoch + 1
            assert "nothing was executed" in str(caught.value)
            positions = await asyncio.to_thread(newer.positions_get)
            assert [p.ticket for p in positions] == [first.order]
            newer.close()

    asyncio.run(main())


# ---------------------------------------------------------------- the server, in this process


def test_the_server_applies_the_rule_and_logs_each_refusal(
    bridge: ServedBridge, counting: CountingTerminal, caplog: pytest.LogCaptureFixture
) -> None:
    a = bridge.client()
    a.fence(2)
    with caplog.at_level(logging.INFO, logger="mt5gate.bridge"):
        assert a.initialize(**HEDGING) is True
        legacy = bridge.client()
        assert legacy.initialize(**HEDGING) is True
        calls = len(counting.calls)
        assert refused(lambda: legacy.order_send(dict(BUY))).highest == 2
        a.fence(1)  # a lower epoch on the same client: the bridge judges, not the client
        assert refused(a.account_info).epoch == 1
        assert len(counting.calls) == calls  # refused calls never reached the terminal
    assert bridge.server.fence.highest == 2
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 2
    assert "refused order_send() of ('127.0.0.1'" in warnings[0].getMessage()
    assert "holds fencing epoch 2 now" in caplog.text
    assert TOKEN not in caplog.text


def _until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + 10.0
    while not condition():
        assert time.monotonic() < deadline, f"never {what}"
        time.sleep(0.01)


def test_an_ex_owner_is_refused_at_once_while_another_call_holds_the_terminal(
    counting: CountingTerminal,
) -> None:
    """Found by the chaos run's paused owner (tests/chaos/harness.py): when the ex-owner woke,
    the new owner's order_send was hung in the terminal. The ex-owner's calls waited for the
    terminal behind it, then met "timeout" (or "busy", once the hung call was past the bridge's
    deadline): IPC timeouts, which its session reports as MT5TimeoutError, not that it lost
    the account. A stale epoch is refused before the call waits for its turn."""
    served = ServedBridge(counting, call_timeout_s=0.5)
    old, new = served.client(call_timeout_s=5.0), served.client(call_timeout_s=5.0)
    old.fence(1)
    new.fence(2)
    assert old.initialize(**HEDGING) is True
    assert new.initialize(**HEDGING) is True  # the bridge holds epoch 2 now
    gate = served.server.gate
    counting.hang = "order_send"
    send = threading.Thread(target=new.order_send, args=(dict(BUY),), name="test-new-send")
    try:
        send.start()
        _until(lambda: gate.busy() is not None, "in the terminal")
        error = refused(lambda: old.symbol_info_tick("EURUSD"))  # not queued behind the send
        assert (error.function, error.epoch, error.highest) == ("symbol_info_tick", 1, 2)
        assert gate.busy() is not None  # refused while the send still held the terminal
        _until(lambda: gate.stuck, "stuck")  # past the bridge's deadline: new calls are "busy"
        reader = served.client(call_timeout_s=5.0)
        assert reader.initialize() is False  # an unfenced reader: busy, as before
        assert reader.last_error() == (-10005, "IPC timeout")
        assert refused(old.positions_get).highest == 2  # a stale one: refused, not "busy"
        assert refused(lambda: old.order_send(dict(BUY))).function == "order_send"
        assert gate.stuck
        assert "symbol_info_tick" not in counting.calls  # refused calls never reached it
        assert "positions_get" not in counting.calls
        assert counting.calls.count("order_send") == 1  # the new owner's, still hung
    finally:
        counting.release.set()
        send.join(10)
        served.close()


def test_a_session_fenced_out_while_the_terminal_is_busy_learns_it_at_once(
    counting: CountingTerminal,
) -> None:
    """The session's side of the test above: its read is refused (``MT5OwnershipError``, the
    newer epoch named), not failed at its deadline with ``MT5TimeoutError`` behind the newer
    owner's hung send."""
    served = ServedBridge(counting)
    gate = served.server.gate
    send: threading.Thread | None = None

    async def main() -> None:
        nonlocal send
        terminal = served.client()
        async with MT5SessionManager(terminal=terminal, timeouts=Timeouts(call_s=1.0),
                                     **HEDGING) as session:  # fmt: skip
            sent = await session.place_order(OrderRequest("EURUSD", Side.BUY, 0.1))
            assert sent.retcode == 10009  # the session's epoch is the bridge's highest now
            owned = session.ownership.held
            assert owned is not None
            assert terminal.epoch == owned.epoch
            newer = served.client(call_timeout_s=20.0)
            newer.fence(owned.epoch + 1)
            assert await asyncio.to_thread(newer.initialize, **HEDGING) is True
            counting.hang = "order_send"
            send = threading.Thread(target=newer.order_send, args=(dict(BUY),),
                                    name="test-new-send")  # fmt: skip
            send.start()
            await asyncio.to_thread(_until, lambda: gate.busy() is not None, "in the terminal")
            with pytest.raises(MT5OwnershipError) as caught:
                await session.get_price("EURUSD")
            assert caught.value.epoch == owned.epoch + 1
            assert gate.busy() is not None  # the newer owner's send still holds the terminal

    try:
        asyncio.run(main())
    finally:
        counting.release.set()
        if send is not None:
            send.join(10)
        served.close()


class PreFencingBridge(BridgeServer):
    """A bridge as it was before fencing: no "fencing" in its welcome, epochs ignored."""

    def server_info(self) -> dict[str, Any]:
        info = super().server_info()
        del info["fencing"]
        return info


def test_a_fenced_client_refuses_a_bridge_that_does_not_enforce_epochs(
    counting: CountingTerminal,
) -> None:
    served = ServedBridge(counting, server_class=PreFencingBridge)
    try:
        fenced = served.client()
        fenced.fence(4)
        assert fenced.initialize(**HEDGING) is False
        code, text = fenced.last_error()
        assert code == -10003
        assert "does not enforce fencing epochs" in text
        assert counting.calls == []
        late = served.client()
        assert late.initialize(**HEDGING) is True  # unfenced: fine with any bridge
        late.fence(4)  # fenced once connected: the next call is not sent
        assert late.symbol_info_tick("EURUSD") is None
        assert late.last_error()[0] == -10003
        assert not late.connected
        assert "symbol_info_tick" not in counting.calls
    finally:
        served.close()


# ----------------------------------------------------------------------------- the wire


def test_the_epoch_is_a_fifth_request_element_only_when_fenced() -> None:
    plain = decode_request(encode_request(1, "version", (), {}))
    assert plain.epoch is None
    fenced = decode_request(encode_request(2, "order_send", ({"a": 1},), {}, 7))
    assert (fenced.request_id, fenced.function, fenced.epoch) == (2, "order_send", 7)
    for bad in (0, -3):
        with pytest.raises(MalformedMessageError, match="fencing epoch"):
            decode_request(encode_request(3, "version", (), {}, bad))
    with pytest.raises(MalformedMessageError):
        decode_request(encode_request(3, "version", (), {}, True))  # type: ignore[arg-type]


def test_a_fenced_reply_names_the_highest_epoch() -> None:
    body = encode_fenced(9, 12, "order_send() refused")
    assert b"highest=12; order_send() refused" in body
    assert fenced_highest("highest=12; order_send() refused") == 12
    for message in ("order_send() refused", "highest=x; y", "highest=3"):
        with pytest.raises(MalformedMessageError):
            fenced_highest(message)


@pytest.mark.parametrize("epoch", [0, -1, True, 1.5, "3"])
def test_fence_takes_positive_ints_only(epoch: Any) -> None:
    terminal = BridgeTerminal("127.0.0.1", 1, token=TOKEN)
    with pytest.raises((TypeError, ValueError)):
        terminal.fence(epoch)
    assert terminal.epoch is None
    terminal.fence(3)
    assert terminal.epoch == 3
    assert "epoch=3" in repr(terminal)
