"""A gateway process killed between INTENT and acknowledgement, then restarted.

The simulated broker runs behind a real bridge in this process (so it outlives the gateway);
the gateway is a separate Python process with a real SQLite journal. The broker holds the reply
of ``order_send`` (executed, or not executed), the test SIGKILLs the gateway while it waits,
and a new session on the same journal must settle the order before it takes new ones: present
exactly once, or proven absent and then sent once with the same client id.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from mt5gate.bridge.server import BridgeServer
from mt5gate.constants import DealEntry
from mt5gate.models import OrderRequest, Side
from mt5gate.orders import ClientOrderId, EventKind, JournalError, SqliteJournal
from mt5gate.session import MT5SessionManager, ReconcilePolicy, Timeouts
from mt5gate.sim import SimTerminal
from mt5gate.sim.clock import RealClock
from mt5gate.sim.faults import Fault

TOKEN = "crash-test-token-0123456789"
ACCOUNT = {"login": 5001, "password": "sim-pass-5001", "server": "MetaQuotes-Demo"}
K = EventKind

GATEWAY = textwrap.dedent(
    """
    import asyncio, sys
    from mt5gate.models import OrderRequest, Side
    from mt5gate.orders import SqliteJournal
    from mt5gate.session import MT5SessionManager, ReconcilePolicy, Timeouts

    async def main(port, journal):
        session = MT5SessionManager(
            terminal=f"bridge://127.0.0.1:{port}", terminal_token=sys.argv[3], login=5001,
            password="sim-pass-5001", server="MetaQuotes-Demo", journal=SqliteJournal(journal),
            timeouts=Timeouts(order_s=60.0), reconcile=ReconcilePolicy(sweep_interval_s=None),
        )
        async with session:
            print("connected", flush=True)
            await session.place_order(OrderRequest("BTCUSD", Side.BUY, 0.01),
                                      idempotency_key="crash-key")
            print("acknowledged", flush=True)  # never reached: killed while waiting

    asyncio.run(main(int(sys.argv[1]), sys.argv[2]))
    """
)


class Broker:
    """A simulator on a real-time clock behind a BridgeServer on a loop thread of this process."""

    def __init__(self) -> None:
        self.sim = SimTerminal(clock=RealClock())
        self.fault: Fault | None = None  # the fault holding order_send's reply
        self.loop = asyncio.new_event_loop()
        self.server = BridgeServer(self.sim, token=TOKEN, port=0)
        self.loop.run_until_complete(self.server.start())
        self.thread = threading.Thread(target=self.loop.run_forever, name="test-broker-loop")
        self.thread.start()

    def close(self) -> None:
        self.sim.faults.clear()
        asyncio.run_coroutine_threadsafe(self.server.close(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


@pytest.fixture
def broker() -> Iterator[Broker]:
    served = Broker()
    yield served
    served.close()


def _start_gateway(port: int, journal: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", GATEWAY, str(port), str(journal), TOKEN],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def _wait_for(
    predicate: object, gateway: subprocess.Popen[str], what: str, timeout_s: float = 60.0
) -> None:
    """Wait for ``predicate``; on a timeout (or the gateway's death) say what the gateway
    printed."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        if gateway.poll() is not None:
            break
        time.sleep(0.02)
    if gateway.poll() is None:
        gateway.kill()
    out, err = gateway.communicate(timeout=10)
    raise AssertionError(f"the gateway never got to {what} (exit {gateway.returncode}):\n"
                         f"{out}\n{err[-3000:]}")  # fmt: skip


def _last_kind(journal: Path) -> EventKind | None:
    if not journal.exists():
        return None
    try:
        reader = SqliteJournal(journal)
    except JournalError:  # the gateway is still creating it (no schema committed yet)
        return None
    with reader:
        found = reader.by_key(5001, "crash-key")
        return None if found is None else reader.state(5001, found)


def _kill_after_sent(broker: Broker, journal: Path) -> None:
    """Run the gateway until its order is SENT (on disk) and held by the broker; SIGKILL it."""
    gateway = _start_gateway(broker.server.port, journal)
    try:
        _wait_for(lambda: _last_kind(journal) is K.SENT, gateway, "SENT")
        fault = broker.fault
        assert fault is not None
        _wait_for(lambda: broker.sim.faults.fired(fault) == 1, gateway, "the held order_send")
        os.kill(gateway.pid, signal.SIGKILL)
        assert gateway.wait(10) == -signal.SIGKILL
    finally:
        if gateway.poll() is None:
            gateway.kill()
            gateway.wait(10)
        if gateway.stdout is not None:
            gateway.stdout.close()
        if gateway.stderr is not None:
            gateway.stderr.close()
    broker.sim.faults.release()  # the hung order_send returns; nobody is listening any more


async def _restart(port: int, journal: Path) -> tuple[list[EventKind], int, int]:
    """A new gateway on the same journal: recovery, then the same key again."""
    session = MT5SessionManager(
        terminal=f"bridge://127.0.0.1:{port}", terminal_token=TOKEN, **ACCOUNT,
        journal=SqliteJournal(journal), timeouts=Timeouts(order_s=5.0),
        reconcile=ReconcilePolicy(sweep_interval_s=None, settle_s=0.5, first_s=0.05),
    )  # fmt: skip
    async with session:
        client = session.journal.by_key(5001, "crash-key")
        assert client is not None
        recovered = [e.kind for e in session.journal.history(5001, client)]
        result = await session.place_order(
            OrderRequest("BTCUSD", Side.BUY, 0.01), idempotency_key="crash-key"
        )
        deals = await session.history_deals(0, int(time.time()) + 2 * 86400)
        ours = ClientOrderId(5001, result.client_id).magic
        opened = sum(1 for d in deals if d.magic == ours and d.entry == DealEntry.IN)
        assert await session.unresolved_orders() == []
    session.journal.close()
    return recovered, opened, result.client_id == client.sequence


def test_killed_after_execution_recovers_present_exactly_once(
    broker: Broker, tmp_path: Path
) -> None:
    journal = tmp_path / "orders.db"
    broker.fault = broker.sim.faults.reply_lost("order_send", hang=True, cap_s=30.0)
    _kill_after_sent(broker, journal)
    recovered, opened, client_id = asyncio.run(_restart(broker.server.port, journal))
    assert recovered == [K.INTENT, K.SENT, K.RECONCILED_PRESENT]  # settled before new orders
    assert (opened, client_id) == (1, True)


def test_killed_before_execution_recovers_absent_then_sends_once(
    broker: Broker, tmp_path: Path
) -> None:
    journal = tmp_path / "orders.db"
    broker.fault = broker.sim.faults.hang("order_send", cap_s=30.0)
    _kill_after_sent(broker, journal)
    recovered, opened, client_id = asyncio.run(_restart(broker.server.port, journal))
    assert recovered == [K.INTENT, K.SENT, K.RECONCILED_ABSENT]
    assert (opened, client_id) == (1, True)  # sent after the restart, with the same client id
