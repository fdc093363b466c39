"""A bridged simulator with a state file: what a call changed is on disk before its reply
leaves, including the orders of a call answered "timeout" while it was stuck."""

from __future__ import annotations

import time
from pathlib import Path

from mt5gate.sim import SimConfig, SimTerminal, VirtualClock
from mt5gate.sim.faults import FaultPlan

from .conftest import HEDGING, TUESDAY_10, ServedBridge

BUY = {"action": 1, "symbol": "EURUSD", "volume": 0.1, "type": 0, "type_filling": 1}


def simulator(path: Path) -> SimTerminal:
    return SimTerminal(SimConfig(history_days=1), clock=VirtualClock(TUESDAY_10),
                       faults=FaultPlan(), state_file=path)  # fmt: skip


def test_an_order_is_on_disk_before_its_reply(tmp_path: Path) -> None:
    sim = simulator(tmp_path / "sim.json")
    served = ServedBridge(sim, terminal_kind="sim")
    try:
        assert sim._journal is not None
        assert sim._journal.deferred_sync  # the bridge syncs, not each call
        client = served.client()
        assert client.initialize(**HEDGING) is True
        for _ in range(3):
            sent = client.order_send(dict(BUY))
            assert sent is not None
            assert sent.retcode == 10009
            assert not sim.state_unsynced  # the reply came after the fdatasync
    finally:
        served.close()


def test_the_orders_of_a_call_answered_while_stuck_reach_the_disk(tmp_path: Path) -> None:
    sim = simulator(tmp_path / "sim.json")
    served = ServedBridge(sim, terminal_kind="sim", call_timeout_s=0.3)
    try:
        client = served.client()
        assert client.initialize(**HEDGING) is True
        first = client.order_send(dict(BUY))  # the state file is written whole once, first
        assert first is not None
        assert first.retcode == 10009
        sim.faults.reply_lost("order_send", hang=True, cap_s=10.0)  # executes, then hangs
        assert client.order_send(dict(BUY)) is None
        assert client.last_error() == (-10005, "IPC timeout")  # the bridge's watchdog answered
        assert sim.state_unsynced  # the order is written, the call still stuck in the terminal
        sim.faults.release()
        deadline = time.monotonic() + 5.0
        while sim.state_unsynced:  # no other call: the stuck thread syncs when it returns
            assert time.monotonic() < deadline
            time.sleep(0.02)
        assert client.positions_total() == 2
    finally:
        sim.faults.release()
        served.close()
